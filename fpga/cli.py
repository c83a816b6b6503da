"""``trident build``: the command-line face of :mod:`trident.fpga.build`.

The ``trident`` command (``trident.sw.cli``) calls :func:`add_build_parser` to add the
``build`` subcommand, whose handler is :func:`run_build`. ``python -m trident.fpga build ...``
runs the same thing without the rest of the CLI.
"""
from __future__ import annotations

import argparse
import sys

__all__ = ["add_build_parser", "run_build", "main", "describe_choices"]

DEFAULT_BOARD = "ulx3s-85f"


def describe_choices() -> str:
    from .boards import board_names, get_board
    from .configs import config_names, get_config
    lines = ["boards:"]
    for name in board_names():
        b = get_board(name)
        where = "" if b.can_run_here else "  [project generation only]"
        lines.append(f"  {name:<16} {b.part:<22} {b.description}{where}")
    lines.append("configs:")
    for name in config_names():
        c = get_config(name)
        params = " ".join(f"{k}={'unit default' if v is None else v}"
                          for k, v in c.params.items())
        lines.append(f"  {name:<16} {c.description}" + (f"  [{params}]" if params else ""))
    return "\n".join(lines)


def add_build_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``build`` subcommand to an argparse ``subparsers`` object."""
    from .build import DEFAULT_TARGET_MHZ
    from .launcher import DEFAULT_ROUTER, ROUTERS
    p = subparsers.add_parser(
        "build", help="build an FPGA bitstream with the open flow",
        description="Build a configuration for a board: Amaranth -> Verilog -> edalize "
                    "(yosys, nextpnr-ecp5, ecppack via YoWASP) -> bitstream + JSON report. "
                    "Boards with the vivado flow get a generated Vivado project only.",
        epilog="Use --list to see boards and configs.")
    p.add_argument("--config", metavar="NAME", help="what to build (see --list)")
    p.add_argument("--board", metavar="NAME", default=DEFAULT_BOARD,
                   help=f"target board (default {DEFAULT_BOARD})")
    p.add_argument("--report", metavar="FILE.json", help="write the build report here")
    p.add_argument("--build-dir", metavar="DIR",
                   help="where every build product goes (default build/CONFIG-PARAMS-BOARD)")
    p.add_argument("--freq", type=float, metavar="MHZ", default=None,
                   help=f"target clock frequency (default {DEFAULT_TARGET_MHZ:g} MHz); the "
                        "LPF/XDC clock constraint")
    p.add_argument("--seed", type=int, default=1, help="nextpnr placer seed (default 1)")
    p.add_argument("--router", choices=ROUTERS, default=DEFAULT_ROUTER,
                   help="nextpnr's router (default router1; router2 finishes congested builds, "
                        "with Fmax figures comparable only to other router2 builds)")
    p.add_argument("--stages", type=int, metavar="N", help="shorthand for --param stages=N")
    p.add_argument("--param", action="append", metavar="NAME=VALUE", default=[],
                   help="a configuration parameter (repeatable)")
    p.add_argument("--list", action="store_true", help="list boards and configs, then exit")
    p.add_argument("--quiet", action="store_true", help="print only the summary line")
    p.set_defaults(handler=run_build)
    return p


def _error(msg: str, code: int = 2) -> int:
    print(f"trident build: error: {msg}", file=sys.stderr)
    return code


def run_build(args) -> int:
    """Handler of ``trident build``; returns the exit status."""
    from .boards import UnknownBoardError, get_board
    from .build import BuildError, build
    from .configs import ConfigUnavailableError, UnknownConfigError, get_config, parse_params
    from .launcher import ToolNotFoundError

    if args.list:
        print(describe_choices())
        return 0
    if not args.config:
        return _error("--config is required\n" + describe_choices())
    try:
        get_board(args.board)
        get_config(args.config)
    except (UnknownBoardError, UnknownConfigError) as exc:
        return _error(f"{exc}\n{describe_choices()}")
    try:
        params = parse_params(args.param)
        if args.stages is not None:
            params["stages"] = args.stages
        if args.freq is not None and args.freq <= 0:
            raise ValueError("--freq must be positive")
        report = build(args.config, args.board, build_dir=args.build_dir, freq_mhz=args.freq,
                       seed=args.seed, router=args.router, params=params, report_path=args.report,
                       log=(lambda msg: None) if args.quiet else None)
    except ValueError as exc:
        return _error(str(exc))
    except ToolNotFoundError as exc:
        return _error(str(exc), 3)
    except ConfigUnavailableError as exc:
        return _error(str(exc), 4)
    except BuildError as exc:
        return _error(str(exc), 1)
    except KeyboardInterrupt:
        print("\ntrident build: interrupted", file=sys.stderr)
        return 130
    if report.get("bitstream"):
        print(f"{report['bitstream']}: {report.get('lut4')} LUT4, {report.get('ff')} FF, "
              f"{report.get('dsp')} MULT18X18D, {report.get('bram')} DP16KD, "
              f"Fmax {report.get('fmax_mhz')} MHz (target {report['target_mhz']:g} MHz), "
              f"{report['times_s']['total']:.1f} s")
    else:
        print(report.get("note", "generated"))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trident.fpga",
                                     description="Trident's open FPGA flow.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_build_parser(sub)
    lp = sub.add_parser("list", help="list boards and configs")
    lp.set_defaults(handler=lambda args: print(describe_choices()) or 0)
    args = parser.parse_args(argv)
    return args.handler(args)
