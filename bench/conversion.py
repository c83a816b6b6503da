"""Accuracy vs T of dual-phase ANN→SNN conversion against its ANN and max-norm conversion.

For each model (the ``digits-mlp`` and ``digits-cnn`` presets of
``trident.golden.conversion``) and each seed, :func:`run_conversion` trains the clipped ANN
(Phase 0, BN folded), and for every T fine-tunes it with noisy quantization (Phase I),
converts it to IF neurons, calibrates it (Phase II) and evaluates it on the 360 test digits;
the baseline is a ReLU ANN of the same architecture trained the same way and converted with
per-layer thresholds at the 99.9th percentile of its activations (no offset, no calibration).

Run:  .venv/bin/python bench/conversion.py [--seeds 0,1,2] [--report bench/reports/conversion.md]
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from trident.golden.conversion import ConversionConfig, run_conversion

MODELS = ("digits-mlp", "digits-cnn")
T_LIST = (1, 2, 4, 8, 16, 32)


def _ints(text):
    return tuple(int(v) for v in text.split(",") if v.strip())


def mean_std(values):
    values = [100 * v for v in values]
    m = statistics.fmean(values)
    s = statistics.stdev(values) if len(values) > 1 else 0.0
    return m, s


def fmt(values):
    m, s = mean_std(values)
    return f"{m:.1f} ± {s:.1f}" if len(values) > 1 else f"{m:.1f}"


def model_section(model, reports, T_list):
    r0 = reports[0]
    seeds = [r["config"]["seed"] for r in reports]
    lines = [f"### {model}: `{r0['architecture']}` + linear classifier", ""]
    lines.append(f"ANN (clip, BN folded): {fmt([r['ann_accuracy'] for r in reports])} % · "
                 f"ReLU ANN for max-norm: {fmt([r['baseline_ann_accuracy'] for r in reports])} % · "
                 f"seeds {', '.join(map(str, seeds))} · test accuracy in %, mean ± std over seeds")
    lines.append("")
    lines.append("| T | ANN (Phase 0) | quantized ANN (Phase I) | converted, no Phase II | **dual-phase** | max-norm (p99.9) |")
    lines.append("|---:|---:|---:|---:|---:|---:|")
    for i, T in enumerate(T_list):
        rows = [r["results"][i] for r in reports]
        lines.append(f"| {T} | {fmt([r['ann_accuracy'] for r in reports])} | {fmt([x['quantized_ann'] for x in rows])} | "
                     f"{fmt([x['converted'] for x in rows])} | **{fmt([x['dual_phase'] for x in rows])}** | "
                     f"{fmt([x['max_norm'] for x in rows])} |")
    lines.append("")
    lines.append("Per seed, dual-phase / max-norm:")
    lines.append("")
    lines.append("| seed | " + " | ".join(f"T={T}" for T in T_list) + " |")
    lines.append("|---:|" + "---:|" * len(T_list))
    for r in reports:
        cells = [f"{100 * x['dual_phase']:.1f} / {100 * x['max_norm']:.1f}" for x in r["results"]]
        lines.append(f"| {r['config']['seed']} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("ANN–SNN output gap on the test set (KL(softmax quantized ANN ‖ softmax SNN), mean over seeds) "
                 "before → after Phase II:")
    lines.append("")
    lines.append("| T | " + " | ".join(str(T) for T in T_list) + " |")
    lines.append("|---|" + "---:|" * len(T_list))
    kl = []
    for i in range(len(T_list)):
        before = statistics.fmean(r["results"][i]["gap_before"]["kl"] for r in reports)
        after = statistics.fmean(r["results"][i]["gap_after"]["kl"] for r in reports)
        kl.append(f"{before:.4f} → {after:.4f}")
    lines.append("| KL | " + " | ".join(kl) + " |")
    lines.append("")
    return lines


def goals(model, reports, T_list):
    out = []
    i8 = T_list.index(8) if 8 in T_list else None
    if i8 is not None:
        gaps = [100 * (r["ann_accuracy"] - r["results"][i8]["dual_phase"]) for r in reports]
        ok = sum(g <= 1.0 for g in gaps)
        out.append(f"- **{model}**, dual-phase at T = 8 at most 1 pp below its ANN (Phase 0, BN folded): "
                   f"{ok}/{len(gaps)} seeds (ANN − dual-phase = {', '.join(f'{g:+.1f}' for g in gaps)} pp, "
                   f"mean {statistics.fmean(gaps):+.2f} pp; negative = the SNN is better).")
    small = [i for i, T in enumerate(T_list) if T <= 8]
    wins = ties = losses = 0
    for r in reports:
        for i in small:
            d, m = r["results"][i]["dual_phase"], r["results"][i]["max_norm"]
            wins, ties, losses = wins + (d > m), ties + (d == m), losses + (d < m)
    strict_means = all(mean_std([r["results"][i]["dual_phase"] for r in reports])[0]
                       > mean_std([r["results"][i]["max_norm"] for r in reports])[0] for i in small)
    out.append(f"- **{model}**, dual-phase better than max-norm at every T ≤ 8: on the seed means "
               f"{'yes' if strict_means else 'no'}; per (seed, T) pair {wins} better, {ties} equal, {losses} worse.")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--seeds", type=_ints, default=(0, 1, 2))
    parser.add_argument("--T", type=_ints, default=T_LIST)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared)")
    parser.add_argument("--report", default=str(Path(__file__).parent / "reports" / "conversion.md"))
    parser.add_argument("--json", default=str(Path(__file__).parent / "reports" / "conversion.json"),
                        help="all run reports as JSON ('' to skip)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    models = [m for m in args.models.split(",") if m]
    T_list = list(args.T)
    start = time.perf_counter()
    all_reports = {}
    for model in models:
        all_reports[model] = []
        for seed in args.seeds:
            t0 = time.perf_counter()
            report = run_conversion(ConversionConfig(model=model, seed=seed, T=tuple(T_list)))
            all_reports[model].append(report)
            dp = " ".join(f"{100 * x['dual_phase']:.1f}" for x in report["results"])
            mn = " ".join(f"{100 * x['max_norm']:.1f}" for x in report["results"])
            print(f"{model} seed {seed}: ANN {100 * report['ann_accuracy']:.1f} | dual-phase {dp} | "
                  f"max-norm {mn}  ({time.perf_counter() - t0:.0f} s)", flush=True)
    wall = time.perf_counter() - start

    c = ConversionConfig()
    lines = ["# Dual-phase ANN→SNN conversion on digits", "",
             "Generated by `.venv/bin/python bench/conversion.py` "
             f"(seeds {', '.join(map(str, args.seeds))}; {wall:.0f} s wall on {platform.machine()}, "
             f"{args.threads} torch thread(s), torch {torch.__version__}, a shared 2-core machine). "
             "Method and parameters: `docs/conversion.md`; ALGORITHMS.md §4.", "",
             "Data: scikit-learn digits, fixed split 1437 train / 360 test (1 test sample = 0.28 pp), "
             "pixels in [0, 1] fed directly (the same analog input every step). "
             f"Phase 0: Adam {c.lr:g}, {c.epochs} epochs, batch {c.batch_size}, θ init {c.theta_init:g}; "
             f"Phase I at each T: p = {c.noise_p:g}, {c.finetune_epochs} epochs, Adam {c.finetune_lr:g} "
             f"(θ: {c.finetune_theta_lr:g}); conversion: IF, soft reset, strict fire U > θ, initial potential θ/2; "
             f"Phase II: {c.calib_samples} calibration + {c.calib_val_samples} validation training samples, "
             f"steps `{c.calib_steps}` ({c.calib_order}-major), KL temperature {c.calib_temperature:g}. "
             "Max-norm: a ReLU ANN (same architecture, seed and training), per-layer threshold = "
             f"{c.baseline_percentile:g}th percentile of its positive activations on the training set, "
             "soft reset, no offset, no calibration. *Converted, no Phase II* is the Phase-I SNN before "
             "calibration.", "",
             "## Goals", ""]
    for model in models:
        lines += goals(model, all_reports[model], T_list)
    lines += ["", "## Accuracy vs T", ""]
    for model in models:
        lines += model_section(model, all_reports[model], T_list)
    lines += ["## Reading the numbers", "",
              "- The first hidden layer sees the same analog current every step, so its IF neurons emit "
              "exactly the quantizer's spike count (proved in docs/conversion.md and tested); at T = 1 the "
              "whole SNN equals the quantized ANN. Conversion error therefore only comes from deeper layers, "
              "whose input spike trains are uneven in time — on these shallow networks that error is small, "
              "and so is what Phase II can recover.",
              "- Differences below ~0.5 pp are 1–2 test images and within the seed-to-seed spread.",
              "- Phase I is also 20 more epochs of training, so the quantized ANN (and the SNN) can beat the "
              "Phase-0 ANN by a few tenths of a point; the goal is measured against the Phase-0 ANN anyway.",
              "- Phase II: on the CNN it shrinks the ANN–SNN output gap on the test set at every T > 1 (the "
              "KL rows); on the MLP, whose only inexact layer is the second hidden one, it does not "
              "(slightly larger KL at T = 2 and 4) and the accuracy is unchanged within noise. Its "
              "validation-based keep-best guard judges on held-out *training* samples, where the SNN "
              "is already almost exact, so it cannot see this.",
              "- At T = 1 max-norm without an offset cannot fire unless the input exceeds the threshold "
              "in one step: 10 % is chance.", ""]
    Path(args.report).parent.mkdir(parents=True, exist_ok=True)
    Path(args.report).write_text("\n".join(lines))
    if args.json:  # compact: the per-layer calibration logs stay out
        compact = {m: [{**r, "results": [{k: v for k, v in row.items() if k != "calibration"}
                                         for row in r["results"]]} for r in rs] for m, rs in all_reports.items()}
        Path(args.json).write_text(json.dumps(compact, indent=1) + "\n")
    print(f"wrote {args.report} ({wall:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
