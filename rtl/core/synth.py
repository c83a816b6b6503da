"""Out-of-context ECP5 figures of one Trident core (the engines' shell flow,
:func:`trident.rtl.engines.synth.synthesize_engine`: every port behind a shift register /
XOR reduction, Yosys ``synth_ecp5`` + nextpnr-ecp5 on an LFE5U-85F).

Usage::

    python -m trident.rtl.core.synth [--param lanes=2] [--param weight_depth=512] [--seed 1]
        [--router router2]
    python -m trident.rtl.core.synth --breakdown [--depth 2] [--param conv=True]

``--breakdown`` places nothing: it maps each submodule on its own (Yosys ``-noflatten``)
and prints a Markdown table of where the logic goes (:func:`~..engines.synth.area_breakdown`).
"""

import argparse
import ast
import json

from ...fpga.launcher import DEFAULT_ROUTER, ROUTERS
from ..engines.synth import area_breakdown, breakdown_table, synthesize_engine
from .core import TridentCore

__all__ = ["main"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--param", action="append", default=[],
                    help="TridentCore parameter, name=python-literal")
    ap.add_argument("--speed", type=int, default=6)
    ap.add_argument("--freq", type=float, default=75.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--router", choices=ROUTERS, default=DEFAULT_ROUTER,
                    help="nextpnr's router (router2 for congested builds; compare like with like)")
    ap.add_argument("--build-dir", default="build/synth")
    ap.add_argument("--breakdown", action="store_true",
                    help="per-submodule cells (Yosys -noflatten, no place and route)")
    ap.add_argument("--depth", type=int, default=1, help="submodule levels of --breakdown")
    args = ap.parse_args(argv)
    params = dict((k, ast.literal_eval(v)) for k, v in (p.split("=", 1) for p in args.param))
    if args.breakdown:
        res = area_breakdown(TridentCore, params, build_dir=args.build_dir, depth=args.depth)
        print(f"TridentCore({', '.join(f'{k}={v!r}' for k, v in params.items())}), Yosys "
              f"synth_ecp5 -noflatten ({'ABC9' if res['abc9'] else 'classic ABC'}, "
              f"{res['yosys_s']} s)\n")
        print(breakdown_table(res))
        return 0
    res = synthesize_engine(TridentCore, params, build_dir=args.build_dir, speed=args.speed,
                            freq=args.freq, seed=args.seed, router=args.router)
    print(json.dumps({"core": "TridentCore", "params": params, **res}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
