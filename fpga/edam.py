"""Design generation: an Amaranth core on a board -> Verilog + constraints + an EDAM.

The EDAM (edalize's design description) lists files by names relative to the build
directory, which is also edalize's work root: the YoWASP tools run there and cannot see
absolute ``/tmp`` paths.
"""
from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

from .boards import Board
from .configs import Config
from .harness import BoardTop
from .launcher import DEFAULT_ROUTER, find_tool, router_args

__all__ = ["TOP", "design_name", "verilog_for", "constraints_for", "make_edam", "write_sources", "make_top",
           "DEFAULT_SYNTH_OPTIONS",
           "builtin_yosys"]

TOP = "top"   # the Verilog top-level module


def design_name(config: str, board: str) -> str:
    """edalize's design name (the bitstream is ``<name>.bit``): ``fp16_add__ulx3s_85f``."""
    clean = lambda s: re.sub(r"[^0-9A-Za-z]+", "_", s).strip("_").lower()
    return f"{clean(config)}__{clean(board)}"


@contextlib.contextmanager
def builtin_yosys():
    """Make Amaranth use its bundled yosys for Verilog generation, whatever is on PATH."""
    old = os.environ.get("AMARANTH_USE_YOSYS")
    os.environ["AMARANTH_USE_YOSYS"] = "builtin"
    try:
        yield
    finally:
        if old is None:
            del os.environ["AMARANTH_USE_YOSYS"]
        else:
            os.environ["AMARANTH_USE_YOSYS"] = old


def make_top(config: Config, board: Board, params: dict | None = None) -> BoardTop:
    core = config.make_core(len(board.leds), params)
    invert = sum(1 << i for i, pin in enumerate(board.leds) if pin.invert)
    return BoardTop(core, len(board.leds), led_invert=invert,
                    differential_clock=board.clock.differential)


def verilog_for(top: BoardTop) -> str:
    """The board top's Verilog for synthesis: Amaranth's RTLIL through the full Yosys
    (YoWASP), with the design's simulation assertions removed (``chformal -remove``): the
    synthesis flow reads plain Verilog, which has no immediate ``assert``, and a bitstream
    has no use for them (the simulators check them; ``Print`` statements stay)."""
    from amaranth.back import rtlil

    from trident.verify.verilog import rtlil_to_verilog
    with builtin_yosys():
        text = rtlil.convert(top, name=TOP, emit_src=True)
    # the steps of Amaranth's own Verilog back end, after the assertions' removal
    return rtlil_to_verilog(text, "chformal -remove; proc -nomux -norom; memory_collect",
                            yosys=find_tool("yosys"))


def constraints_for(board: Board, freq_mhz: float) -> tuple[str, str, str]:
    """(file name, edalize file type, text) of the board's constraints at ``freq_mhz``."""
    if board.flow == "trellis":
        return f"{TOP}.lpf", "LPF", board.lpf(freq_mhz)
    if board.flow == "vivado":
        return f"{TOP}.xdc", "xdc", board.xdc(freq_mhz)
    raise ValueError(f"board {board.name}: unsupported flow {board.flow!r}")


# Yosys 0.70's synth_ecp5 (an alias of synth_lattice -family ecp5) always maps LUTs with
# abc9 (timing-driven); the old -abc9 switch is accepted and changes nothing.
DEFAULT_SYNTH_OPTIONS: tuple[str, ...] = ()


def make_edam(name: str, board: Board, files: list[dict], *, freq_mhz: float, seed: int = 1,
              router: str = DEFAULT_ROUTER, report_json: str = "nextpnr-report.json",
              synth_options: tuple[str, ...] | list[str] = DEFAULT_SYNTH_OPTIONS) -> dict:
    """The EDAM for ``board``'s flow. ``files`` are ``{"name", "file_type"}`` relative to
    the build directory; ``router`` is nextpnr's (:data:`~.launcher.ROUTERS`)."""
    edam = {"name": name, "toplevel": TOP, "files": list(files)}
    if board.flow == "trellis":
        edam["flow_options"] = {
            "nextpnr_options": board.nextpnr_args() + [
                "--seed", str(int(seed)),
                *router_args(router),
                "--timing-allow-fail",
                "--report", report_json,
            ],
            "yosys_synth_options": list(synth_options),
            "ecppack_options": ["--compress"],
        }
    elif board.flow == "vivado":
        edam["flow_options"] = {"part": board.part}
    else:
        raise ValueError(f"board {board.name}: unsupported flow {board.flow!r}")
    return edam


def write_sources(build_dir: Path, top: BoardTop, board: Board, *,
                  freq_mhz: float) -> list[dict]:
    """Write ``top.v`` and the constraints into ``build_dir``; return their EDAM entries."""
    build_dir.mkdir(parents=True, exist_ok=True)
    (build_dir / f"{TOP}.v").write_text(verilog_for(top))
    cname, ctype, ctext = constraints_for(board, freq_mhz)
    (build_dir / cname).write_text(ctext)
    return [{"name": f"{TOP}.v", "file_type": "verilogSource"},
            {"name": cname, "file_type": ctype}]
