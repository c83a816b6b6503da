"""Parsing of tool outputs into the build report.

* nextpnr's ``--report`` JSON: utilisation per BEL type, achieved Fmax per clock, critical
  paths (with the RTL source locations of each net, from the Verilog ``src`` attributes).
* nextpnr's log (fallback when the JSON is missing): the "Device utilisation" table and the
  last "Max frequency for clock" lines.
* yosys' log: the cell statistics of the synthesised netlist and the yosys version.
* the launcher's ``trident-tools.jsonl``: per-tool wall times.

Report fields: ``lut4`` = ``TRELLIS_COMB`` cells placed (one per LUT4 site: a LUT4, or half
of a CCU2C carry cell; the 85F has 83,640), ``ff`` = ``TRELLIS_FF``, ``dsp`` =
``MULT18X18D``, ``bram`` = ``DP16KD`` (18 Kb blocks).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

__all__ = ["parse_nextpnr_report", "parse_nextpnr_log", "parse_yosys_stat", "yosys_version",
           "parse_yosys_stat_modules", "lut4_equivalent",
           "tool_times", "parse_build_dir", "main_clock", "critical_path_summary",
           "critical_path_text", "tail", "SUMMARY_CELLS"]

# report field -> nextpnr BEL type
SUMMARY_CELLS = {"lut4": "TRELLIS_COMB", "ff": "TRELLIS_FF", "dsp": "MULT18X18D",
                 "bram": "DP16KD"}


def tail(path, n: int) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def main_clock(clocks, clock_port: str = "clk") -> str | None:
    """The design's main clock among nextpnr's clock net names (``$glbnet$clk$TRELLIS_IO_IN``
    for a top port ``clk``): the one whose name has ``clock_port`` as a ``$``/``.``-separated
    token, else the only one, else the first."""
    clocks = list(clocks)
    if not clocks:
        return None
    for name in clocks:
        if clock_port in re.split(r"[$.\[\]]", name):
            return name
    return clocks[0]


def _summary(utilization: dict) -> dict:
    out = {}
    for field, bel in SUMMARY_CELLS.items():
        out[field] = int(utilization.get(bel, {}).get("used", 0))
    return out


def critical_path_summary(entry: dict, max_nets: int = 40) -> dict:
    """Condense one ``critical_paths`` entry of nextpnr's report."""
    path = entry.get("path", [])
    logic = sum(p.get("delay", 0.0) for p in path if p.get("type") in ("logic", "clk-to-q", "setup"))
    routing = sum(p.get("delay", 0.0) for p in path if p.get("type") == "routing")
    levels = sum(1 for p in path if p.get("type") == "logic")
    nets = []
    for p in path:
        if p.get("type") == "routing":
            nets.append({"net": p.get("net"), "delay_ns": round(p.get("delay", 0.0), 3),
                         "to": f"{p['to']['cell']}.{p['to']['port']}" if "to" in p else None,
                         "sources": p.get("sources", [])})
    start = path[0]["from"]["cell"] if path and "from" in path[0] else None
    end = path[-1]["to"]["cell"] if path and "to" in path[-1] else None
    return {"from": entry.get("from"), "to": entry.get("to"),
            "delay_ns": round(logic + routing, 3), "logic_ns": round(logic, 3),
            "routing_ns": round(routing, 3), "logic_levels": levels,
            "start": start, "end": end, "nets": nets[:max_nets]}


def parse_nextpnr_report(data: dict, clock_port: str = "clk") -> dict:
    """Fields of the build report from nextpnr's ``--report`` JSON."""
    util = data.get("utilization", {})
    out = _summary(util)
    out["utilization"] = {k: v for k, v in sorted(util.items()) if v.get("used")}
    fmax = data.get("fmax", {})
    out["clocks"] = {k: {"achieved_mhz": round(v.get("achieved", 0.0), 2),
                         "constraint_mhz": v.get("constraint")} for k, v in fmax.items()}
    clk = main_clock(fmax, clock_port)
    out["clock"] = clk
    out["fmax_mhz"] = round(fmax[clk]["achieved"], 2) if clk else None
    if clk:
        out["timing_met"] = fmax[clk]["achieved"] >= fmax[clk].get("constraint", 0) - 1e-9
    crit = None
    for entry in data.get("critical_paths", []):
        frm, to = entry.get("from", ""), entry.get("to", "")
        if clk and frm.endswith(clk) and to.endswith(clk):
            crit = entry
            break
    if crit is not None:
        out["critical_path"] = critical_path_summary(crit)
    return out


_UTIL_RE = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%\s*$")
_FMAX_RE = re.compile(r"^(?:Info|Warning): Max frequency for clock '([^']+)': ([\d.]+) MHz "
                      r"\((PASS|FAIL) at ([\d.]+) MHz\)")


def parse_nextpnr_log(text: str, clock_port: str = "clk") -> dict:
    """Fields of the build report from nextpnr's log (the JSON is preferred)."""
    util = {}
    for line in text.splitlines():
        m = _UTIL_RE.match(line)
        if m:
            util[m.group(1)] = {"used": int(m.group(2)), "available": int(m.group(3))}
    fmax = {}
    for line in text.splitlines():          # the last report (after routing) wins
        m = _FMAX_RE.match(line)
        if m:
            fmax[m.group(1)] = {"achieved": float(m.group(2)), "constraint": float(m.group(4))}
    out = parse_nextpnr_report({"utilization": util, "fmax": fmax}, clock_port)
    crit = critical_path_text(text, out.get("clock"))
    if crit:
        out["critical_path_text"] = crit
    return out


def critical_path_text(text: str, clock: str | None) -> str | None:
    """The last 'Critical path report for clock' block of a nextpnr log, for ``clock``."""
    lines = text.splitlines()
    start = None
    for i, line in enumerate(lines):
        if line.startswith("Info: Critical path report for clock") and \
                (clock is None or f"'{clock}'" in line):
            start = i
    if start is None:
        return None
    block = [lines[start]]
    for line in lines[start + 1:]:
        if not line.strip() or line.startswith("Info: Critical path report") or \
                line.startswith("Info: Max frequency"):
            break
        block.append(line)
    return "\n".join(block)


_STAT_RE = re.compile(r"^\s+(\d+)\s+([A-Z][A-Z0-9_]*)\s*$")


def parse_yosys_stat(text: str) -> dict:
    """Cell counts of the last ``stat`` in a yosys log: ``{"LUT4": n, "CCU2C": n, ...}``."""
    idx = text.rfind("Printing statistics.")
    if idx < 0:
        return {}
    cells = {}
    for line in text[idx:].splitlines():
        m = _STAT_RE.match(line)
        if m and m.group(2) not in cells:
            cells[m.group(2)] = int(m.group(1))
    return cells


def parse_yosys_stat_modules(text: str) -> dict:
    """Per-module local cell counts of the last ``stat``: ``{"top.core.u": {"LUT4": n}}``."""
    idx = text.rfind("Printing statistics.")
    if idx < 0:
        return {}
    out = {}
    current = None
    for line in text[idx:].splitlines():
        m = re.match(r"^=== (.+) ===$", line.strip())
        if m:
            current = None if m.group(1) == "design hierarchy" else m.group(1)
            if current is not None:
                out[current] = {}
            continue
        if current is None:
            continue
        m = _STAT_RE.match(line)
        if m and m.group(2) not in out[current]:
            out[current][m.group(2)] = int(m.group(1))
    return out


def lut4_equivalent(cells: dict) -> int:
    """LUT4 sites a netlist's logic needs: LUT4s plus two per CCU2C (a carry cell is a
    LUT4 pair). nextpnr's ``TRELLIS_COMB`` after packing is this plus a few route-through
    LUTs (distributed RAM is not counted here)."""
    return cells.get("LUT4", 0) + 2 * cells.get("CCU2C", 0)


def yosys_version(log_path) -> str | None:
    try:
        with open(log_path, errors="replace") as f:
            for _ in range(50):
                line = f.readline()
                if not line:
                    break
                m = re.search(r"(Yosys \d+\.\d+\S*(?: \(git sha1 \w+)?)", line)
                if m:
                    return m.group(1) + (")" if "(" in m.group(1) else "")
    except OSError:
        pass
    return None


def tool_times(path) -> dict:
    """Wall seconds per tool from the launcher's JSON-lines record (summed over reruns)."""
    out = {}
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        out[rec["tool"]] = round(out.get(rec["tool"], 0.0) + float(rec["wall_s"]), 3)
    return out


def parse_build_dir(build_dir, *, nextpnr_report: str = "nextpnr-report.json",
                    nextpnr_log: str = "next.log", yosys_log: str = "yosys.log",
                    clock_port: str = "clk") -> dict:
    build_dir = Path(build_dir)
    out = {}
    log_text = ""
    try:
        log_text = (build_dir / nextpnr_log).read_text(errors="replace")
    except OSError:
        pass
    try:
        data = json.loads((build_dir / nextpnr_report).read_text())
        out.update(parse_nextpnr_report(data, clock_port))
        out["utilization_source"] = nextpnr_report
    except (OSError, json.JSONDecodeError):
        out.update(parse_nextpnr_log(log_text, clock_port))
        out["utilization_source"] = nextpnr_log
    if log_text and "critical_path_text" not in out:
        crit = critical_path_text(log_text, out.get("clock"))
        if crit:
            out["critical_path_text"] = crit
    try:
        out["yosys_cells"] = parse_yosys_stat((build_dir / yosys_log).read_text(errors="replace"))
    except OSError:
        pass
    return out
