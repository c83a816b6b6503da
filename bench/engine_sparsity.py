"""Engine cycles vs input density (FP, conv FP, BP FC, BP conv, WG FC), measured on the
RTL (cycle counters).

For a few fully connected layers, random binary spike inputs at densities 0, 1, 5, 10,
25, 50 and 100 % run through :class:`trident.rtl.engines.FPEngine` in simulation
(cocotb on Verilator by default; Icarus or the Amaranth simulator on request).  Every
run is checked bit for bit against the golden kernel (``golden.hw.forward.fc_forward``)
and its cycles are read from the engine's ``cnt_busy`` counter.  Reported against:

- *ideal*: one group operation (``L`` lane additions) per cycle for every non-zero input,
  nothing else — ``Σ_t events(t) · n_groups`` — proportional to the non-zeros;
- *model*: the documented cycle model (docs/engines.md §5);
- *dense*: the same engine without skipping = its 100 % figure.

Writes a markdown table and a PNG (cycles vs density, log-log) and checks the must-show
``cycles(10 %) ≤ 0.2 × cycles(100 %)`` for every FC layer, forward and backward.  A
convolution layer on :class:`trident.rtl.engines.ConvEngine` is reported alongside
(``--conv``); the BP engines (:class:`~trident.rtl.engines.BPEngine` on the same FC
layers, ``--bp``, and :class:`~trident.rtl.engines.ConvBPEngine`, ``--bp-conv``) against the
δ density, with the need mask off and, for one layer, swept; the WG engine
(:class:`~trident.rtl.engines.WGEngine`, ``--wg``) against the input spike density.

    python bench/engine_sparsity.py [--sim verilator|icarus|amaranth] [--steps 8]
        [--layers 64x256,256x64,256x10,1024x32] [--conv 2x16x16:8:3:1:1] [--lanes 4]
        [--bp 64x256,256x64,256x10,1024x32] [--bp-conv 2x16x16:8:3:1:1]
        [--wg 256:32,64:32] [--seed 1]
        [--report bench/reports/engine_sparsity.md]
"""

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DENSITIES = (0.0, 0.01, 0.05, 0.10, 0.25, 0.50, 1.0)
NEED_DENSITIES = (1.0, 0.5, 0.1, 0.0)


def _layers(text):
    out = []
    for item in text.split(","):
        a, b = item.lower().split("x")
        out.append((int(a), int(b)))
    return out


def _conv_layers(text):
    """``C x H x W : Co : K : stride : pad`` items, comma-separated."""
    out = []
    for item in filter(None, text.split(",")):
        shape, co, k, s, p = item.split(":")
        c, h, w = (int(v) for v in shape.lower().split("x"))
        out.append((c, h, w, int(co), int(k), int(s), int(p)))
    return out


def run_conv(args):
    """Conv layers on the ConvEngine: same densities, cycles from ``cnt_busy``."""
    from trident.rtl.engines.harness import (ConvCase, conv_cycle_model, random_spikes,
                                             random_weights, run_cocotb_fc, simulate_fc)

    rng = np.random.default_rng(args.seed + 1)
    rows = []
    for c, h, w, co, k, s, p in _conv_layers(args.conv):
        ho = (h + 2 * p - k) // s + 1
        wo = (w + 2 * p - k) // s + 1
        groups = -(-co // args.lanes)
        params = {"lanes": args.lanes, "max_width": w, "max_height": h, "max_channels": c,
                  "max_kernel": k, "max_stride": max(2, s),
                  "acc_depth": 1 << (groups * ho * (1 << (wo - 1).bit_length()) - 1).bit_length(),
                  "weight_depth": 1 << (groups * c * k * k - 1).bit_length(),
                  "max_steps": max(args.steps, 8)}
        weight = random_weights(rng, co, c * k * k, "normal").reshape(co, c, k, k)
        name = f"conv {c}x{h}x{w}→{co} k{k}s{s}p{p}"
        cases = [ConvCase(f"{name}-d{d:g}", weight,
                          random_spikes(rng, args.steps, c * h * w, d).reshape(
                              args.steps, c, h, w), s, p) for d in DENSITIES]
        t0 = time.perf_counter()
        if args.sim == "amaranth":
            res = simulate_fc(params, cases)
        else:
            res, _ = run_cocotb_fc(params, args.sim, cases, label="bench-conv")
        for d, cs, r in zip(DENSITIES, cases, res):
            if not r.exact:
                raise SystemExit(f"{cs.name}: RTL differs from the golden: {r.mismatches[:3]}")
            m = conv_cycle_model(params, cs)
            rows.append({"layer": name, "density": d, "events": cs.active(),
                         "cycles": r.cycles, "ideal": m["ideal"], "readout": m["readout"],
                         "model": m["model"], "words": r.checked})
        dense = rows[-1]["cycles"]
        for row in rows[-len(DENSITIES):]:
            row["vs_dense"] = row["cycles"] / dense
        print(f"[bench] {name}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return rows


def _simulate(args, params, cases, label):
    from trident.rtl.engines.harness import run_cocotb_fc, simulate_fc
    if args.sim == "amaranth":
        return simulate_fc(params, cases)
    return run_cocotb_fc(params, args.sim, cases, label=label)[0]


def _checked(cases, res):
    for c, r in zip(cases, res):
        if not r.exact:
            raise SystemExit(f"{c.name}: RTL differs from the golden: {r.mismatches[:3]}"
                             f" {r.counter_errors}")
    return res


def _vs_dense(rows, n):
    dense = rows[-1]["cycles"]
    for row in rows[-n:]:
        row["vs_dense"] = row["cycles"] / dense


def run_bp(args):
    """BP FC on the forward layers ``n_in x n_out``: δ rows of length n_out at every
    density (need off: every output computed), T rows; then one layer's need sweep at
    50 % δ density.  Cycles from ``cnt_busy``; ideal = Σ_r events(r) · needed groups."""
    from trident.rtl.engines.harness import (BPCase, cycle_model, random_bp_deltas,
                                             random_need, random_weights)

    rng = np.random.default_rng(args.seed + 2)
    layers = _layers(args.bp)
    lanes = args.lanes
    params = {"lanes": lanes, "max_inputs": 1 << (max(o for _, o in layers) - 1).bit_length(),
              "weight_depth": 1 << (max(-(-i // lanes) * o for i, o in layers) - 1).bit_length(),
              "max_rows": max(args.steps, 8)}
    rows, need_rows = [], []
    for n_in, n_out in layers:
        w = random_weights(rng, n_out, n_in, "normal")
        name = f"BP {n_in}x{n_out}"
        cases = [BPCase(f"{name}-d{d:g}", w, random_bp_deltas(rng, args.steps, n_out, d))
                 for d in DENSITIES]
        if not need_rows:
            x = random_bp_deltas(rng, args.steps, n_out, 0.5)
            cases += [BPCase(f"{name}-need{nd:g}", w, x, random_need(rng, args.steps, n_in, nd))
                      for nd in NEED_DENSITIES]
        t0 = time.perf_counter()
        res = _checked(cases, _simulate(args, params, cases, "bench-bp"))
        for k, (c, r) in enumerate(zip(cases, res)):
            m = cycle_model(params, c)
            row = {"layer": name, "events": c.active(), "cycles": r.cycles,
                   "ideal": m["ideal"], "model": m["model"], "ops": r.counters["ops"],
                   "skipped": r.counters["skipped"], "words": r.checked}
            if k < len(DENSITIES):
                rows.append(dict(row, density=DENSITIES[k]))
            else:
                need_rows.append(dict(row, density=0.5, need=float(c.need.float().mean())))
        _vs_dense(rows, len(DENSITIES))
        print(f"[bench] {name}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return params, rows, need_rows


def run_bp_conv(args):
    """BP conv (transposed convolution) of the forward layers: δ maps at every density,
    every output needed.  ideal = accumulator updates; read-out = groups·H·W·T."""
    from trident.rtl.engines.harness import (ConvBPCase, conv_cycle_model, random_bp_deltas,
                                             random_weights)
    from trident.rtl.engines.layout import conv_geometry

    rng = np.random.default_rng(args.seed + 3)
    rows = []
    for c, h, w, co, k, s, p in _conv_layers(args.bp_conv):
        ho, wo, _ = conv_geometry(c, h, w, k, s, p)
        groups = -(-c // args.lanes)
        params = {"lanes": args.lanes, "max_width": w, "max_height": h,
                  "max_channels": max(c, co), "max_kernel": k, "max_stride": max(2, s),
                  "acc_depth": 1 << (groups * h * (1 << (w - 1).bit_length()) - 1).bit_length(),
                  "weight_depth": 1 << (groups * co * k * k - 1).bit_length(),
                  "max_rows": max(args.steps, 8)}
        weight = random_weights(rng, co, c * k * k, "normal").reshape(co, c, k, k)
        name = f"BP conv {c}x{h}x{w}→{co} k{k}s{s}p{p}"
        cases = [ConvBPCase(f"{name}-d{d:g}", weight,
                            random_bp_deltas(rng, args.steps, co * ho * wo, d).reshape(
                                args.steps, co, ho, wo), (c, h, w), s, p) for d in DENSITIES]
        t0 = time.perf_counter()
        res = _checked(cases, _simulate(args, params, cases, "bench-bp-conv"))
        for d, cs, r in zip(DENSITIES, cases, res):
            m = conv_cycle_model(params, cs)
            rows.append({"layer": name, "density": d, "events": cs.active(),
                         "cycles": r.cycles, "ideal": m["ideal"], "readout": m["readout"],
                         "model": m["model"], "words": r.checked})
        _vs_dense(rows, len(DENSITIES))
        print(f"[bench] {name}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return rows


def run_wg(args):
    """WG FC tiles ``n_in : rows`` (L neurons, every row live): input spikes at every
    density.  ideal = (row, active input) pairs, one accumulator update each; read-out =
    the dense rounding of the tile's n_in gradient words."""
    from trident.rtl.engines.harness import WGCase, random_deltas, random_spikes, wg_cycle_model

    rng = np.random.default_rng(args.seed + 4)
    rows = []
    for item in filter(None, args.wg.split(",")):
        n_in, n_rows = (int(v) for v in item.split(":"))
        params = {"lanes": args.lanes, "max_inputs": 1 << (n_in - 1).bit_length(),
                  "max_rows": 1 << 10}
        deltas = random_deltas(rng, n_rows, args.lanes, 1.0)
        name = f"WG {n_in} inputs × {n_rows} rows"
        cases = [WGCase(f"{name}-d{d:g}", deltas, random_spikes(rng, n_rows, n_in, d))
                 for d in DENSITIES]
        t0 = time.perf_counter()
        res = _checked(cases, _simulate(args, params, cases, "bench-wg"))
        for d, cs, r in zip(DENSITIES, cases, res):
            m = wg_cycle_model(params, cs)
            rows.append({"layer": name, "density": d, "events": r.counters["events"],
                         "cycles": r.cycles, "ideal": m["pairs"] // args.lanes,
                         "readout": m["readout"], "model": m["model"], "words": r.checked})
        _vs_dense(rows, len(DENSITIES))
        print(f"[bench] {name}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return rows


def run(args):
    from trident.rtl.engines.harness import (FCCase, cycle_model, random_spikes,
                                             random_weights, run_cocotb_fc, simulate_fc)

    rng = np.random.default_rng(args.seed)
    layers = _layers(args.layers)
    lanes = args.lanes
    max_in = max(n for n, _ in layers)
    words = max(-(-o // lanes) * i for i, o in layers)
    params = {"lanes": lanes, "max_inputs": 1 << (max_in - 1).bit_length(),
              "weight_depth": 1 << (words - 1).bit_length(), "max_steps": max(args.steps, 8)}
    rows = []
    t_all = time.perf_counter()
    for n_in, n_out in layers:
        w = random_weights(rng, n_out, n_in, "normal")
        cases = [FCCase(f"{n_in}x{n_out}-d{d:g}", w, random_spikes(rng, args.steps, n_in, d))
                 for d in DENSITIES]
        t0 = time.perf_counter()
        if args.sim == "amaranth":
            res = simulate_fc(params, cases)
        else:
            res, _ = run_cocotb_fc(params, args.sim, cases, label="bench-sparsity")
        wall = time.perf_counter() - t0
        for d, c, r in zip(DENSITIES, cases, res):
            if not r.exact:
                raise SystemExit(f"{c.name}: RTL differs from the golden: {r.mismatches[:3]}")
            m = cycle_model(params, c)
            rows.append({"layer": f"{n_in}x{n_out}", "n_in": n_in, "n_out": n_out,
                         "density": d, "events": c.active(),
                         "cycles": r.cycles, "ideal": m["ideal"], "model": m["model"],
                         "ops": r.counters["ops"], "skipped": r.counters["skipped"],
                         "words": r.checked})
        dense = rows[-1]["cycles"]
        for row in rows[-len(DENSITIES):]:
            row["vs_dense"] = row["cycles"] / dense
        print(f"[bench] {n_in}x{n_out}: {len(cases)} densities, {wall:.1f} s", file=sys.stderr)
    return params, rows, time.perf_counter() - t_all


def _plot(rows, path, params, steps, conv_rows=(), back=None):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(13, 4.8))
    _plot_back(bx, back or {}, steps)
    layers = list(dict.fromkeys(r["layer"] for r in rows))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, layer in enumerate(layers):
        rs = [r for r in rows if r["layer"] == layer]
        x = [max(r["density"], 0.003) * 100 for r in rs]
        c = colors[k % len(colors)]
        ax.plot(x, [r["cycles"] for r in rs], "o-", color=c, label=f"{layer} RTL")
        ideal = [(xx, r["ideal"]) for xx, r in zip(x, rs) if r["ideal"] > 0]
        ax.plot([a for a, _ in ideal], [b for _, b in ideal], "--", color=c, alpha=0.6,
                label=f"{layer} ideal")
    for k, layer in enumerate(dict.fromkeys(r["layer"] for r in conv_rows)):
        rs = [r for r in conv_rows if r["layer"] == layer]
        x = [max(r["density"], 0.003) * 100 for r in rs]
        c = colors[(len(layers) + k) % len(colors)]
        ax.plot(x, [r["cycles"] for r in rs], "s-", color=c, label=f"{layer} RTL")
        ax.plot(x, [max(r["ideal"] + r["readout"], 1) for r in rs], ":", color=c, alpha=0.7,
                label=f"{layer} updates + read-out")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks([0.3, 1, 5, 10, 25, 50, 100])
    ax.set_xticklabels(["0", "1", "5", "10", "25", "50", "100"])
    ax.set_xlabel("input spike density, % (0 % plotted at the left edge)")
    ax.set_ylabel(f"FP engine busy cycles (T = {steps})")
    ax.set_title(f"FP engines: cycles vs input density (L = {params['lanes']}, FPAdd lanes)",
                 fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_back(ax, back, steps):
    """Right panel: BP FC, BP conv and WG FC cycles (solid) against their ideal (dashed:
    proportional to the non-zeros; conv and WG plus their dense read-out)."""
    colors = plt_colors()
    series = ([(r, "o-") for r in _by_layer(back.get("bp", []))]
              + [(r, "s-") for r in _by_layer(back.get("bp_conv", []))]
              + [(r, "^-") for r in _by_layer(back.get("wg", []))])
    for k, (rs, style) in enumerate(series):
        c = colors[k % len(colors)]
        x = [max(r["density"], 0.003) * 100 for r in rs]
        ax.plot(x, [r["cycles"] for r in rs], style, color=c, label=f"{rs[0]['layer']} RTL")
        ideal = [(xx, r["ideal"] + r.get("readout", 0)) for xx, r in zip(x, rs)
                 if r["ideal"] + r.get("readout", 0) > 0]
        ax.plot([a for a, _ in ideal], [b for _, b in ideal], "--", color=c, alpha=0.6,
                label=f"{rs[0]['layer']} ideal" + (" + read-out" if "readout" in rs[0] else ""))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks([0.3, 1, 5, 10, 25, 50, 100])
    ax.set_xticklabels(["0", "1", "5", "10", "25", "50", "100"])
    ax.set_xlabel("δ density (BP) / input spike density (WG), %")
    ax.set_ylabel(f"busy cycles (T = {steps} rows; WG: its rows)")
    ax.set_title("BP engines (FPFMA lanes, need off) and WG engine", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=6, ncol=2)


def plt_colors():
    import matplotlib.pyplot as plt
    return plt.rcParams["axes.prop_cycle"].by_key()["color"]


def _by_layer(rows):
    return [[r for r in rows if r["layer"] == layer]
            for layer in dict.fromkeys(r["layer"] for r in rows)]


def _back_report(back, steps):
    """Markdown of the BP and WG sections; returns ``(lines, must-show ok)``."""
    lines, ok_all = [], True
    bp, params = back.get("bp", []), back.get("bp_params", {})
    if bp:
        lines += [
            "",
            "## BP engine, FC (BPEngine: transposed product)",
            "",
            f"`BPEngine(lanes={params['lanes']})` (FPFMA lanes, P = 6; the FP datapath on the "
            f"transposed weights), forward layer `n_in x n_out` → δ rows of n_out values, "
            f"δS rows of n_in values, R = {steps} rows (one sample × T), δ non-zeros "
            "N(0, 0.5), need mask off (every output computed).  Every run bit-exact with "
            "`golden.hw.backward.fc_backward`.  **ideal** = Σ_r events(r) · n_groups (one "
            "group of L FMAs per cycle per non-zero δ).",
            "",
            "| layer | δ density | events | RTL cycles | ideal | RTL / ideal | model | vs 100 % |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in bp:
            ratio = f"{r['cycles'] / r['ideal']:.2f}" if r["ideal"] else "—"
            lines.append(f"| {r['layer']} | {r['density'] * 100:g} % | {r['events']} | "
                         f"{r['cycles']:,} | {r['ideal']:,} | {ratio} | {r['model']:,} | "
                         f"{r['vs_dense']:.3f} |")
        lines += ["", "Must-show (BP): cycles at 10 % δ ≤ 0.2 × cycles at 100 %:", ""]
        for rs in _by_layer(bp):
            d = {r["density"]: r for r in rs}
            ratio = d[0.10]["cycles"] / d[1.0]["cycles"]
            ok_all &= ratio <= 0.2
            lines.append(f"- {rs[0]['layer']}: {d[0.10]['cycles']:,} / {d[1.0]['cycles']:,} "
                         f"= **{ratio:.3f}** {'✔' if ratio <= 0.2 else '✘'}")
    need = back.get("bp_need", [])
    if need:
        lines += [
            "",
            f"Dual sparsity, {need[0]['layer']} at 50 % δ density: the need mask drawn per "
            "neuron (Bernoulli) for runs of 4 rows (as a surrogate window stays closed); "
            "only groups of L outputs with a needed one get a slot in the blocks, so the "
            "issuer's work follows the needed groups (a group is needed with probability "
            "1 − (1 − need)^L); the merger still emits every group's word (one per cycle), "
            "the floor at low need.  **ideal** = Σ_r events(r) · needed groups(r).",
            "",
            "| need density | RTL cycles | FMAs executed | FMAs skipped | ideal | model |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        for r in need:
            lines.append(f"| {r['need'] * 100:.0f} % | {r['cycles']:,} | {r['ops']:,} | "
                         f"{r['skipped']:,} | {r['ideal']:,} | {r['model']:,} |")
    for key, title, what in (
            ("bp_conv", "BP engine, conv (ConvBPEngine: transposed convolution)",
             "each non-zero δI scatters its clipped K×K footprint to `ceil(C/L)` "
             "accumulator words (one read-modify-write per cycle); after each row the "
             "`groups·H·W` δS words are read out (dense).  **ideal** = accumulator "
             "updates; **read-out** = groups·H·W·R."),
            ("wg", "WG engine, FC (WGEngine: exact fixed-point gradient)",
             "L = 4 neurons × n_in inputs, every row live (non-zero δ), input spikes at "
             "the density; **ideal** = (row, active input) pairs, one accumulator update "
             "per cycle; **read-out** = the dense rounding of the n_in gradient words "
             "((L + 4) cycles each, one shared rounding unit).")):
        rs_all = back.get(key, [])
        if not rs_all:
            continue
        lines += ["", f"## {title}", "", what, "",
                  "| layer | density | events | RTL cycles | ideal | read-out | "
                  "RTL − read-out | vs 100 % |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for r in rs_all:
            lines.append(f"| {r['layer']} | {r['density'] * 100:g} % | {r['events']} | "
                         f"{r['cycles']:,} | {r['ideal']:,} | {r['readout']:,} | "
                         f"{r['cycles'] - r['readout']:,} | {r['vs_dense']:.3f} |")
        for rs in _by_layer(rs_all):
            d = {r["density"]: r for r in rs}
            lines += ["", f"- {rs[0]['layer']}: cycles(10 %) / cycles(100 %) = "
                      f"{d[0.10]['cycles'] / d[1.0]['cycles']:.3f}; without the read-out "
                      f"{(d[0.10]['cycles'] - d[0.10]['readout']) / (d[1.0]['cycles'] - d[1.0]['readout']):.3f}."]
    return lines, ok_all


def _report(args, params, rows, wall, png, conv_rows=(), back=None):
    from trident.rtl.engines.harness import make_engine

    engine = make_engine(params)
    lines = [
        "# Engines: cycles vs input density (RTL simulation)",
        "",
        f"`bench/engine_sparsity.py` — `FPEngine(lanes={params['lanes']})` (FPAdd lanes, "
        f"P = {engine.P}, {engine.word_bits}-bit input words), T = {args.steps} steps, "
        f"random Bernoulli spikes, weights N(0, 1/√I).  Cycles are the engine's `cnt_busy` "
        f"counter (descriptor accepted → last current word taken) from cocotb on "
        f"**{args.sim}**; every run was checked bit for bit against "
        f"`golden.hw.forward.fc_forward` (all exact).  Scratchpads sized to the largest "
        f"layer for the bench (`max_inputs={params['max_inputs']}`, "
        f"`weight_depth={params['weight_depth']}`).",
        "",
        "- **ideal** = Σ_t events(t) · n_groups: one group operation (L lane adds) per cycle "
        "per non-zero input, no overhead — proportional to the non-zeros.",
        "- **model** = the cycle model of docs/engines.md §5 "
        "(P · max(1, events(t)) per block of P groups and step, plus prologue/epilogue).",
        "- **vs 100 %** = cycles / cycles at 100 % density (a dense engine with the same "
        "lanes always takes the 100 % figure).",
        "",
        "| layer | density | events | RTL cycles | ideal | RTL / ideal | model | vs 100 % |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ratio = f"{r['cycles'] / r['ideal']:.2f}" if r["ideal"] else "—"
        lines.append(f"| {r['layer']} | {r['density'] * 100:g} % | {r['events']} | "
                     f"{r['cycles']:,} | {r['ideal']:,} | {ratio} | {r['model']:,} | "
                     f"{r['vs_dense']:.3f} |")
    lines += ["", "## Must-show: cycles at 10 % ≤ 0.2 × cycles at 100 %", ""]
    ok_all = True
    for layer in dict.fromkeys(r["layer"] for r in rows):
        rs = {r["density"]: r for r in rows if r["layer"] == layer}
        ratio = rs[0.10]["cycles"] / rs[1.0]["cycles"]
        ok = ratio <= 0.2
        ok_all &= ok
        lines.append(f"- {layer}: {rs[0.10]['cycles']:,} / {rs[1.0]['cycles']:,} = "
                     f"**{ratio:.3f}** {'✔' if ok else '✘'}")
    if conv_rows:
        lines += [
            "",
            "## Convolution (ConvEngine, same lanes)",
            "",
            "Each active input scatters its K×K footprint (clipped at the borders) to "
            "`ceil(Co/L)` accumulator words, one read-modify-write per cycle; after the "
            "step the `groups·Ho·Wo` accumulators are read out (and cleared) — that part "
            "is dense, as the neuron unit must see every output anyway.  **ideal** = "
            "accumulator updates (Σ footprint · groups over active inputs); **read-out** = "
            "groups·Ho·Wo·T.",
            "",
            "| layer | density | events | RTL cycles | ideal (updates) | read-out | "
            "RTL − read-out | vs 100 % |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in conv_rows:
            lines.append(f"| {r['layer']} | {r['density'] * 100:g} % | {r['events']} | "
                         f"{r['cycles']:,} | {r['ideal']:,} | {r['readout']:,} | "
                         f"{r['cycles'] - r['readout']:,} | {r['vs_dense']:.3f} |")
        for layer in dict.fromkeys(r["layer"] for r in conv_rows):
            rs = {r["density"]: r for r in conv_rows if r["layer"] == layer}
            lines.append("")
            lines.append(f"- {layer}: cycles(10 %) / cycles(100 %) = "
                         f"{rs[0.10]['cycles'] / rs[1.0]['cycles']:.3f}; without the "
                         f"read-out {(rs[0.10]['cycles'] - rs[0.10]['readout']) / (rs[1.0]['cycles'] - rs[1.0]['readout']):.3f}.")
    back_lines, back_ok = _back_report(back or {}, args.steps)
    lines += back_lines
    ok_all &= back_ok
    lines += [
        "",
        "## Reading the numbers",
        "",
        "- Work follows the non-zeros: from 1 % up the RTL stays within a small factor of "
        "the ideal, and the 10 %/100 % ratio is close to 0.10.",
        "- RTL / ideal > 1 has three causes, all in the cycle model: (1) a block of P slots "
        "is issued even when fewer than P groups are left (a layer with n_groups < P, like "
        "256x10 with 3 groups, uses 3 of 4 slots); (2) a step or block without any event "
        "still costs one round of P cycles: every step must deliver its n_groups current "
        "words (+0) to the neuron unit, so a step costs at least one cycle per output word "
        "(64x256 at 1 %: 2 events in 8 steps, the floor of 8 × 64 words dominates); (3) a "
        "fixed prologue (compressing step 0 before its first round, ~words + events(0) "
        "cycles) and epilogue (P + 2 cycles of pipeline).  At 0 % only (2) and (3) remain.",
        "- The compressor (one active index per cycle, one cycle per input word) runs one "
        "step ahead in a double-buffered event list, so it is hidden behind the "
        "accumulation except for step 0.",
        "- BP FC is the same datapath on FMA lanes (P = 6) and `δI` words of 2 values: "
        "its floor at 0–1 % is the compressor's word scan (J/2 cycles per row) or the "
        "n_groups output words per row; above it the cycles follow the non-zero `δI` and, "
        "with a need mask, the needed groups.",
        "- BP conv and WG add a dense read-out per row / per tile (every δS or gradient "
        "word is written), which is why their 10 %/100 % ratio is above the update-only "
        "ratio; WG's read-out (L + 4 cycles per input) dominates at low density.",
        "",
        f"![cycles vs density]({png.name})",
        "",
        "## Machine",
        "",
        f"- {os.cpu_count()} CPU cores ({platform.machine()}), shared; load average "
        f"{os.getloadavg()[0]:.1f} at the end.  Cycle counts do not depend on the machine.",
        f"- total bench time {wall:.0f} s",
        "",
        "## Reproduce",
        "",
        "```",
        f"python bench/engine_sparsity.py --sim {args.sim} --steps {args.steps} "
        f"--layers {args.layers} --conv '{args.conv}' --bp '{args.bp}' "
        f"--bp-conv '{args.bp_conv}' --wg '{args.wg}' --lanes {args.lanes} "
        f"--seed {args.seed}",
        "```",
        "",
    ]
    return "\n".join(lines), ok_all


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sim", default="verilator", choices=("verilator", "icarus", "amaranth"))
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--layers", default="64x256,256x64,256x10,1024x32")
    ap.add_argument("--conv", default="2x16x16:8:3:1:1",
                    help="conv layers C x H x W : Co : K : stride : pad, comma-separated "
                         "('' for none)")
    ap.add_argument("--bp", default="64x256,256x64,256x10,1024x32",
                    help="BP FC: forward layers n_in x n_out ('' for none)")
    ap.add_argument("--bp-conv", default="2x16x16:8:3:1:1",
                    help="BP conv: forward conv layers, as --conv ('' for none)")
    ap.add_argument("--wg", default="256:32,64:64",
                    help="WG FC tiles n_in : rows, comma-separated ('' for none)")
    ap.add_argument("--lanes", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--report", default=str(REPO / "bench" / "reports" / "engine_sparsity.md"))
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    params, rows, _ = run(args)
    conv_rows = run_conv(args) if args.conv else []
    back = {}
    if args.bp:
        back["bp_params"], back["bp"], back["bp_need"] = run_bp(args)
    if args.bp_conv:
        back["bp_conv"] = run_bp_conv(args)
    if args.wg:
        back["wg"] = run_wg(args)
    wall = time.perf_counter() - t0
    report = Path(args.report)
    report.parent.mkdir(parents=True, exist_ok=True)
    png = report.with_suffix(".png")
    _plot(rows, png, params, args.steps, conv_rows, back)
    text, ok = _report(args, params, rows, wall, png, conv_rows, back)
    report.write_text(text)
    report.with_suffix(".json").write_text(json.dumps(
        {"params": params, "rows": rows, "conv_rows": conv_rows, **back}, indent=1))
    print(text)
    if not ok:
        raise SystemExit("must-show failed: cycles(10 %) > 0.2 × cycles(100 %) (FP or BP)")


if __name__ == "__main__":
    main()
