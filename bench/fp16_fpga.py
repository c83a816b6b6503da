#!/usr/bin/env python3
"""FP16 units on the LFE5U-85F (speed 6): LUT4 / FF / MULT18X18D / Fmax per unit and depth.

Each point is a full open-flow build (``trident build --config fp16-<unit> --stages N``):
yosys synth_ecp5 -abc9, nextpnr-ecp5 timing-driven P&R at the target frequency, ecppack.
The unit sits in the measurement harness (inputs registered from LFSRs,
outputs registered and XOR-reduced to an LED), so Fmax is the unit's register-to-register
Fmax. The unit's own cells come from an extra yosys pass over the same Verilog that keeps
the unit's hierarchy (``units`` in the build report); the totals are nextpnr's.

Writes a Markdown report (default ``bench/reports/fp16_fpga.md``; ``--json`` for the raw
rows). Builds run in separate processes (``--jobs``); each takes tens of seconds to minutes.

    python bench/fp16_fpga.py                       # add, mul, fma at 2..max stages
    python bench/fp16_fpga.py --units mul --stages 3,4 --seeds 1,2,3
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Targets (DESIGN/plan): LUT4 budget, MULT18X18D budget, Fmax floor, for the unit itself.
TARGETS = {
    "add": {"lut4": 400, "dsp": None, "fmax": 100.0},
    "mul": {"lut4": 350, "dsp": 1, "fmax": 100.0},
    "fma": {"lut4": None, "dsp": None, "fmax": 90.0},
}
UNIT_NAMES = {"add": "adder", "mul": "multiplier", "fma": "FMA"}


def _one_build(job: dict) -> dict:
    """Run in a worker process: one `trident build`, returning the report (or the error)."""
    from trident.fpga.build import build
    t0 = time.monotonic()
    prev = Path(job["build_dir"]) / "build.json"
    if job.get("reuse") and prev.exists():
        r = json.loads(prev.read_text())
        if (r.get("config"), r.get("board"), r.get("seed"), r.get("target_mhz")) == \
                (job["config"], job["board"], job["seed"], job["freq"]) and \
                all(r.get("params", {}).get(k) == v for k, v in job["params"].items()) and \
                r.get("bitstream") and Path(r["bitstream"]).exists():
            return {**job, "report": r, "wall_s": 0.0, "reused": True}
    try:
        r = build(job["config"], job["board"], build_dir=job["build_dir"],
                  freq_mhz=job["freq"], seed=job["seed"], params=job["params"],
                  log=lambda msg: None)
    except Exception as exc:                                   # reported, not fatal
        return {**job, "error": f"{type(exc).__name__}: {exc}",
                "wall_s": round(time.monotonic() - t0, 1)}
    r.pop("critical_path_text", None) if not job.get("keep_text") else None
    return {**job, "report": r, "wall_s": round(time.monotonic() - t0, 1)}


def _fmt(x, nd=1):
    return "–" if x is None else (f"{x:.{nd}f}" if isinstance(x, float) else str(x))


def _check(unit: str, lut4, dsp, fmax) -> str:
    t = TARGETS[unit]
    misses = []
    if t["lut4"] is not None and lut4 is not None and lut4 > t["lut4"]:
        misses.append(f"LUT4 {lut4} > {t['lut4']}")
    if t["dsp"] is not None and dsp is not None and dsp > t["dsp"]:
        misses.append(f"MULT18X18D {dsp} > {t['dsp']}")
    if fmax is not None and fmax < t["fmax"]:
        misses.append(f"Fmax {fmax:.1f} < {t['fmax']:g}")
    return "meets" if not misses else "misses: " + "; ".join(misses)


def _rtl_stamp() -> str:
    files = list((ROOT / "rtl" / "fp16").glob("*.py"))
    if not files:
        return "?"
    t = max(f.stat().st_mtime for f in files)
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds")


def _reg(cell):
    """A register's RTL name from its FF cell name (``x.s2_sub_TRELLIS_FF_Q_3``)."""
    return re.sub(r"_TRELLIS_FF_Q(_\d+)?$", "", cell or "?")


def _critical_path_md(r: dict, limit: int = 14) -> list[str]:
    cp = r.get("critical_path")
    if not cp:
        return ["(no critical path in the report)"]

    def srcs(n):
        return [x.replace(str(ROOT) + "/", "") for x in n["sources"] if not x.startswith("/share/")]

    def short(net, n=72):
        return net if len(net) <= n else net[:n] + "…"

    lines = [f"{cp['delay_ns']:.2f} ns = {cp['logic_ns']:.2f} ns logic + "
             f"{cp['routing_ns']:.2f} ns routing, {cp['logic_levels']} logic levels "
             f"(carry-chain hops included); from register `{_reg(cp['start'])}` to register "
             f"`{_reg(cp['end'])}`.", ""]
    seen = []
    for n in cp["nets"]:
        for x in srcs(n):
            if x not in seen:
                seen.append(x)
    if seen:
        lines += ["RTL source lines along the path, in order: " +
                  ", ".join(f"`{x}`" for x in seen), ""]
    lines += ["| net (routing ≥ 0.05 ns) | ns | RTL source |", "|---|---:|---|"]
    shown = [n for n in cp["nets"] if n["delay_ns"] >= 0.05]
    for n in shown[:limit]:
        lines.append(f"| `{short(n['net'])}` | {n['delay_ns']:.2f} | "
                     f"{', '.join(srcs(n)[:2]) or '(synthesis-generated)'} |")
    if len(shown) > limit:
        lines.append(f"| … {len(shown) - limit} more | | |")
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--units", default="add,mul,fma", help="comma list of add,mul,fma")
    ap.add_argument("--stages", default="auto",
                    help="comma list of pipeline depths, or 'auto': 2 up to each unit's "
                         "number of datapath steps (its largest legal depth)")
    ap.add_argument("--board", default="ulx3s-85f")
    ap.add_argument("--freq", type=float, default=125.0,
                    help="nextpnr target MHz (above the goals, so P&R keeps pushing)")
    ap.add_argument("--seeds", default="1", help="comma list of nextpnr seeds (best is shown)")
    ap.add_argument("--jobs", type=int, default=max(1, min(2, os.cpu_count() or 1)))
    ap.add_argument("--build-root", default=str(ROOT / "build" / "bench-fp16"))
    ap.add_argument("--out", default=str(ROOT / "bench" / "reports" / "fp16_fpga.md"))
    ap.add_argument("--json", metavar="FILE", help="also write every row as JSON")
    ap.add_argument("--reuse", action="store_true",
                    help="reuse finished builds found in --build-root (same config, params, "
                         "seed and target) instead of rebuilding, to re-render the report "
                         "(it does not notice RTL changes since those builds)")
    args = ap.parse_args(argv)

    units = [u.strip() for u in args.units.split(",") if u.strip()]
    for u in units:
        if u not in TARGETS:
            ap.error(f"unknown unit {u!r} (add, mul, fma)")
    def depths(u):
        if args.stages != "auto":
            return [int(x) for x in args.stages.split(",")]
        from trident.fpga.configs import fp16_unit_class
        return list(range(2, len(fp16_unit_class(f"fp16-{u}").STEPS) + 1))
    stages_of = {u: depths(u) for u in units}
    from trident.fpga.configs import fp16_unit_class
    default_stages = {u: getattr(fp16_unit_class(f"fp16-{u}"), "DEFAULT_STAGES", None)
                      for u in units}
    seeds = [int(s) for s in args.seeds.split(",")]
    root = Path(args.build_root)

    jobs = []
    for u in units:
        for s in stages_of[u]:
            for seed in seeds:
                jobs.append({"unit": u, "stages": s, "seed": seed, "reuse": args.reuse,
                             "config": f"fp16-{u}", "board": args.board, "freq": args.freq,
                             "params": {"stages": s},
                             "build_dir": str(root / f"{u}-s{s}-seed{seed}")})

    print(f"fp16_fpga: {len(jobs)} builds, {args.jobs} at a time, target {args.freq:g} MHz",
          file=sys.stderr)
    t0 = time.monotonic()
    results = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = {pool.submit(_one_build, j): j for j in jobs}
        for fut in as_completed(futures):
            res = fut.result()
            results.append(res)
            tag = f"{res['unit']} s{res['stages']} seed{res['seed']}"
            if "error" in res:
                print(f"  {tag}: ERROR {res['error'].splitlines()[0]}", file=sys.stderr)
            else:
                r = res["report"]
                print(f"  {tag}: {r['lut4']} LUT4 {r['ff']} FF {r['dsp']} DSP "
                      f"{r['fmax_mhz']} MHz ({res['wall_s']} s)", file=sys.stderr)
    elapsed = time.monotonic() - t0

    rows = []
    for u in units:
        for s in stages_of[u]:
            pts = [r for r in results if r["unit"] == u and r["stages"] == s]
            ok = [r for r in pts if "report" in r]
            if not ok:
                rows.append({"unit": u, "stages": s, "error": pts[0]["error"] if pts else "?"})
                continue
            best = max(ok, key=lambda r: r["report"]["fmax_mhz"] or 0)
            rep = best["report"]
            unit = rep.get("units", {}).get(f"fp16_{u}", {})
            cells = unit.get("cells", {})
            row = {"unit": u, "stages": s, "seed": best["seed"],
                   "lut4_total": rep["lut4"], "ff_total": rep["ff"], "dsp": rep["dsp"],
                   "bram": rep["bram"], "fmax_mhz": rep["fmax_mhz"],
                   "fmax_all_seeds": [r["report"]["fmax_mhz"] for r in ok],
                   "yosys_cells": rep.get("yosys_cells", {}),
                   "unit_cells": cells, "harness": rep.get("harness"),
                   "lut4_unit": unit.get("lut4"), "lut4_kept": unit.get("lut4_kept"),
                   "ff_unit": unit.get("ff"), "dsp_unit": unit.get("dsp"),
                   "times_s": rep["times_s"], "critical_path": rep.get("critical_path"),
                   "bitstream": rep["bitstream"]}
            lut_for_check = row["lut4_unit"] if row["lut4_unit"] is not None else rep["lut4"]
            row["check"] = _check(u, lut_for_check, rep["dsp"], rep["fmax_mhz"])
            rows.append(row)

    some = next((r["report"] for r in results if "report" in r), {})
    cmd = "python bench/fp16_fpga.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]) if a != "--reuse")
    build_min = sum(r["report"]["times_s"]["total"] for r in results if "report" in r) / 60
    md = [
        "# FP16 units on the ECP5 LFE5U-85F (open flow)", "",
        f"Generated {datetime.now(timezone.utc).isoformat(timespec='seconds')} by "
        "`bench/fp16_fpga.py`. Reproduce with:", "", "```", f"make setup && .venv/bin/{cmd.strip()}",
        "```", "",
        f"Board `{args.board}` ({some.get('part', '?')}); nextpnr target {args.freq:g} MHz; "
        f"seeds {', '.join(map(str, seeds))} (best Fmax shown); {len(jobs)} builds, "
        f"{build_min:.1f} min of build time in all, {args.jobs} at a time on "
        f"{os.cpu_count()} cores ({platform.machine()}, shared machine: times ±30 %).",
        f"Tools: {json.dumps(some.get('tool_versions', {}))}",
        f"RTL: `rtl/fp16/*.py` as last modified {_rtl_stamp()}.", "",
        "How to read it: every unit sits in the measurement harness (inputs registered from "
        "64-bit LFSRs, outputs registered and XOR-reduced to an LED). *LUT4 total* is "
        "nextpnr's placed `TRELLIS_COMB` count for the whole design (LUT4s, two per CCU2C "
        "carry cell, plus route-through LUTs; the 85F has 83,640). *LUT4 unit* = LUT4 total − "
        "the harness's own logic (LUT4 + 2×CCU2C outside the unit, from a second yosys pass "
        "that keeps the unit's hierarchy): the figure the budgets are checked against, "
        "comparable with `python -m trident.rtl.fp16.synth`. *LUT4 kept* is the unit "
        "alone in that pass, before placement (LUT4 + 2×CCU2C: no route-through LUTs, and abc "
        "maps a unit kept apart somewhat differently from the flattened design). *FF unit* "
        "from the same pass. Fmax is nextpnr's post-route figure "
        "for the single clock: the worst register-to-register path, which lies inside the "
        "unit (its first stage starts at the harness's input registers). `MULT18X18D`: "
        "18×18 DSP multipliers.", "",
        "| unit | stages | LUT4 unit | LUT4 kept | FF unit | MULT18X18D | "
        "LUT4 total | FF total | Fmax MHz | target | build s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for row in rows:
        if "error" in row:
            md.append(f"| {UNIT_NAMES[row['unit']]} | {row['stages']} | build failed: "
                      f"{row['error'].splitlines()[0][:120]} | | | | | | | | |")
            continue
        t = TARGETS[row["unit"]]
        tgt = ", ".join(x for x in (
            f"≤{t['lut4']} LUT4" if t["lut4"] else "", f"≤{t['dsp']} DSP" if t["dsp"] else "",
            f"≥{t['fmax']:g} MHz") if x)
        dflt = " (default)" if row["stages"] == default_stages.get(row["unit"]) else ""
        md.append(f"| {UNIT_NAMES[row['unit']]} | {row['stages']}{dflt} | {_fmt(row['lut4_unit'])} | "
                  f"{_fmt(row['lut4_kept'])} | {_fmt(row['ff_unit'])} | "
                  f"{row['dsp']} | {row['lut4_total']} | {row['ff_total']} | "
                  f"{row['fmax_mhz']:.1f} | {tgt}: **{row['check']}** | "
                  f"{row['times_s']['total']:.0f} |")
    md += ["", "## Summary", ""]
    for u in units:
        ok = [r for r in rows if r["unit"] == u and "error" not in r]
        meets = [r["stages"] for r in ok if r["check"] == "meets"]
        d = default_stages.get(u)
        at_d = next((r for r in ok if r["stages"] == d), None)
        line = f"- **{UNIT_NAMES[u]}**: " + (
            f"meets every target at {', '.join(map(str, meets))} stages" if meets
            else "misses at every depth")
        if at_d:
            line += (f"; at its default {d} stages: {at_d['lut4_unit']} LUT4, "
                     f"{at_d['dsp']} MULT18X18D, {at_d['fmax_mhz']:.1f} MHz ({at_d['check']})")
        misses = [r for r in ok if r["check"] != "meets"]
        if misses:
            worst = max(misses, key=lambda r: r["stages"])
            cp = worst.get("critical_path") or {}
            line += (f". Deepest miss: {worst['stages']} stages, critical path from "
                     f"`{_reg(cp.get('start'))}` to `{_reg(cp.get('end'))}` "
                     f"({cp.get('delay_ns', 0):.2f} ns, {cp.get('logic_levels', '?')} levels)")
        md.append(line + ".")
    if len(seeds) > 1:
        md += ["", "Fmax over seeds: " + "; ".join(
            f"{UNIT_NAMES[r['unit']]} s{r['stages']}: "
            + "/".join(f"{f:.1f}" for f in r["fmax_all_seeds"]) for r in rows if "error" not in r)]
    harn = {UNIT_NAMES[r["unit"]]: r["harness"] for r in rows if r.get("harness")}
    if harn:
        md += ["", "Harness logic (subtracted): " + "; ".join(
            f"{k}: {v['lut4_equiv']} LUT4, {v['ff']} FF" for k, v in harn.items())]
    md += ["", "## The unit's cells (yosys, in context, hierarchy kept)", "",
           "| unit | stages | LUT4 | CCU2C | PFUMX | L6MUX21 | TRELLIS_FF | MULT18X18D | ALU54B |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        if "error" in row:
            continue
        c = row["unit_cells"]
        md.append(f"| {UNIT_NAMES[row['unit']]} | {row['stages']} | " + " | ".join(
            str(c.get(k, 0)) for k in ("LUT4", "CCU2C", "PFUMX", "L6MUX21", "TRELLIS_FF",
                                        "MULT18X18D", "ALU54B")) + " |")
    md += ["", "## Critical paths", "",
           "The worst register-to-register path of each build, as nextpnr reports it (nets "
           "with the Amaranth source line that created them).", ""]
    for row in rows:
        if "error" in row:
            continue
        md += [f"### {UNIT_NAMES[row['unit']]}, {row['stages']} stages: "
               f"{row['fmax_mhz']:.1f} MHz ({row['check']})", ""]
        md += _critical_path_md(row) + [""]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(md) + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"args": vars(args), "rows": rows, "elapsed_s": round(elapsed, 1)},
            indent=2, default=str) + "\n")
    print(f"fp16_fpga: wrote {out} ({elapsed / 60:.1f} min)", file=sys.stderr)
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
