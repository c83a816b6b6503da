"""``trident regmap``: export the register map (JSON, C header, CMSIS-SVD, Markdown).

Wired into the ``trident`` command by ``add_regmap_parser(subparsers)``.
"""

import argparse
import sys
from pathlib import Path

__all__ = ["add_regmap_parser", "run_regmap"]


def add_regmap_parser(subparsers) -> None:
    from .export import EXPORTERS
    from .regmap import SoCParams
    d = SoCParams()
    p = subparsers.add_parser(
        "regmap", help="export the SoC register map",
        description="Export the SoC register map (declared once in trident.rtl.soc.regmap) as "
                    "JSON, a C header, CMSIS-SVD, or the Markdown table of docs/soc.md.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--format", default="json", choices=sorted(EXPORTERS))
    p.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    p.add_argument("--cores", type=int, default=d.cores, help="cores of the build")
    p.add_argument("--addr-width", type=int, default=d.addr_width,
                   help="bits of a DRAM word address")
    p.add_argument("--dram-words", type=int, default=d.dram_words, help="DRAM size in words")
    p.set_defaults(handler=run_regmap)


def run_regmap(args) -> int:
    from .export import EXPORTERS
    from .regmap import SoCParams, build_regmap
    try:
        params = SoCParams(cores=args.cores, addr_width=args.addr_width,
                           dram_words=args.dram_words)
    except ValueError as e:
        print(f"trident regmap: {e}", file=sys.stderr)
        return 2
    text = EXPORTERS[args.format](build_regmap(params), params)
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0
