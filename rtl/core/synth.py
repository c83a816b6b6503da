"""Out-of-context ECP5 figures of one Trident core (the engines' shell flow,
:func:`trident.rtl.engines.synth.synthesize_engine`: every port behind a shift register /
XOR reduction, Yosys ``synth_ecp5`` + nextpnr-ecp5 on an LFE5U-85F).

Usage::

    python -m trident.rtl.core.synth [--param lanes=2] [--param weight_depth=512] [--seed 1]
"""

import argparse
import ast
import json

from ..engines.synth import synthesize_engine
from .core import TridentCore

__all__ = ["main"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--param", action="append", default=[],
                    help="TridentCore parameter, name=python-literal")
    ap.add_argument("--speed", type=int, default=6)
    ap.add_argument("--freq", type=float, default=75.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--build-dir", default="build/synth")
    args = ap.parse_args(argv)
    params = dict((k, ast.literal_eval(v)) for k, v in (p.split("=", 1) for p in args.param))
    res = synthesize_engine(TridentCore, params, build_dir=args.build_dir, speed=args.speed,
                            freq=args.freq, seed=args.seed)
    print(json.dumps({"core": "TridentCore", "params": params, **res}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
