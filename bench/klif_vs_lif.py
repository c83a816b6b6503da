"""KLIF vs LIF across networks and time steps (ALGORITHMS.md §1), through ``sw.runtime.train``.

Two settings, each at T ∈ {2, 4, 8}, LIF and KLIF with identical everything else (seed, data,
initial weights, optimiser; KLIF's k starts at 1.0 and learns at ``k_lr_scale`` × lr):

- **digits / MLP** (`fc256`, direct encoding): the runtime's defaults (SGD lr 0.2, momentum 0.9,
  hard reset, k_lr_scale 0.05).
- **nmnist-synth / small CNN** (synthetic N-MNIST-like event digits, 34×34×2 binary frames, the
  digits split 1437 / 360; the generator's seed is the run's seed, so each seed has its own
  jitter): `conv16k5s2,maxpool2,fc128` (smaller than the `cnn` preset, to stay within minutes),
  the runtime's default neuron (τ = 2, threshold 1, hard reset, sigmoid), Adam lr 3e-3,
  10 epochs.  With Adam the step of k does not scale with its (summed) gradient, so k learns
  at the weights' rate (`--event-k-lr-scale 1`; SGD's default 0.05 would leave it near 1).

Run:  .venv/bin/python bench/klif_vs_lif.py [--seeds 0,1,2,3,4] [--event-seeds 0,1,2] [--report bench/reports/klif_vs_lif.md]
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

from trident.sw.runtime import TrainConfig, train

STEPS = (2, 4, 8)


def settings(args) -> dict:
    return {
        "digits / MLP": dict(dataset="digits", model="mlp", epochs=args.digits_epochs),
        "nmnist-synth / CNN": dict(dataset="nmnist-synth", model=args.event_model, epochs=args.event_epochs,
                                   train_limit=args.event_train_limit, optimizer="adam", lr=args.event_lr,
                                   k_lr_scale=args.event_k_lr_scale, data_root=args.data_root),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="0,1,2,3,4", help="seeds of the digits runs")
    p.add_argument("--event-seeds", default="0,1,2", help="seeds of the nmnist-synth runs (slower)")
    p.add_argument("--digits-epochs", type=int, default=20)
    p.add_argument("--event-model", default="conv16k5s2,maxpool2,fc128")
    p.add_argument("--event-epochs", type=int, default=10)
    p.add_argument("--event-train-limit", type=int, default=None, help="train on the first N samples only")
    p.add_argument("--event-lr", type=float, default=3e-3)
    p.add_argument("--event-k-lr-scale", type=float, default=1.0)
    p.add_argument("--data-root", default=None, help="where nmnist-synth is generated (default runs/data)")
    p.add_argument("--only", default=None, help="run one setting: digits or nmnist")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--report", default="bench/reports/klif_vs_lif.md")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    seed_lists = {"digits / MLP": [int(s) for s in args.seeds.split(",")],
                  "nmnist-synth / CNN": [int(s) for s in args.event_seeds.split(",")]}
    wall = time.perf_counter()
    runs = []
    for name, fields in settings(args).items():
        if args.only and not name.startswith(args.only):
            continue
        for T in STEPS:
            for seed in seed_lists[name]:
                for neuron in ("lif", "klif"):
                    r = train(TrainConfig(neuron=neuron, T=T, seed=seed, **fields), progress=False)
                    runs.append({"setting": name, "T": T, "seed": seed, "neuron": neuron,
                                 "test_accuracy": r["test_accuracy"], "train_time_s": r["train_time_s"],
                                 "klif_k": r["klif_k"], "train_samples": r["train_samples"],
                                 "test_samples": r["test_samples"], "config": r["config"]})
                    print(f"{name} T={T} seed {seed} {neuron}: {100 * r['test_accuracy']:.2f} %  k={r['klif_k']}  "
                          f"[{r['train_time_s']:.1f} s]", file=sys.stderr, flush=True)
    wall = time.perf_counter() - wall

    def pick(setting, T, neuron):
        return [r for r in runs if r["setting"] == setting and r["T"] == T and r["neuron"] == neuron]

    lines = ["# KLIF vs LIF — digits MLP and synthetic event digits CNN", "",
             f"Regenerate: `.venv/bin/python bench/klif_vs_lif.py` (`--seeds {args.seeds} --event-seeds "
             f"{args.event_seeds}`; {wall / 60:.1f} min here, "
             f"torch threads = {args.threads}).", "", __doc__.split("\n\n")[1].strip(), "",
             __doc__.split("\n\n")[2].strip(), ""]
    deltas = []
    for setting in dict.fromkeys(r["setting"] for r in runs):
        one = next(r for r in runs if r["setting"] == setting)
        c = one["config"]
        lines += [f"## {setting}", "",
                  f"Seeds {', '.join(map(str, seed_lists[setting]))}; `{c['model']}`, {c['epochs']} epochs, {one['train_samples']} training / {one['test_samples']} "
                  f"test samples, {c['optimizer']} lr {c['lr']}, k_lr_scale {c['k_lr_scale']}, threshold "
                  f"{c['v_threshold']}, decay_input {c['decay_input']}, {c['reset']} reset, τ = {c['tau']}.", "",
                  "| T | LIF acc % | KLIF acc % | KLIF − LIF (pp) | learned k per layer (KLIF) | LIF s | KLIF s |",
                  "|---|---|---|---|---|---|---|"]
        for T in STEPS:
            lif, klif = pick(setting, T, "lif"), pick(setting, T, "klif")
            if not lif:
                continue
            a_l = statistics.mean(r["test_accuracy"] for r in lif)
            a_k = statistics.mean(r["test_accuracy"] for r in klif)
            deltas.append(a_k - a_l)
            layers = len(klif[0]["klif_k"])
            ks = [statistics.mean(r["klif_k"][i] for r in klif) for i in range(layers)]
            per_seed = "; ".join(", ".join(f"{k:.3f}" for k in r["klif_k"]) for r in klif)
            lines.append(f"| {T} | {100 * a_l:.2f} | {100 * a_k:.2f} | {100 * (a_k - a_l):+.2f} | "
                         f"{', '.join(f'{k:.3f}' for k in ks)} (per seed: {per_seed}) | "
                         f"{statistics.mean(r['train_time_s'] for r in lif):.1f} | "
                         f"{statistics.mean(r['train_time_s'] for r in klif):.1f} |")
        lines.append("")
    if deltas:
        lines += [f"**Average KLIF − LIF over the {len(deltas)} (setting, T) cells: {100 * statistics.mean(deltas):+.2f} pp** "
                  f"(KLIF ahead in {sum(d > 0 for d in deltas)}, tied in {sum(d == 0 for d in deltas)}, behind in "
                  f"{sum(d < 0 for d in deltas)}). Accuracies are means over the seeds of each setting; one test image is "
                  "0.28 points (360 test images), so single-cell differences under ~1 pp are within seed noise.", ""]
    lines += ["## Per run", "", "| setting | T | seed | neuron | acc % | k per layer | train s |", "|---|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {r['setting']} | {r['T']} | {r['seed']} | {r['neuron']} | {100 * r['test_accuracy']:.2f} | "
                     f"{', '.join(f'{k:.3f}' for k in r['klif_k']) or '—'} | {r['train_time_s']:.1f} |")
    lines += ["", f"Machine: {platform.machine()}, Python {platform.python_version()}, torch {torch.__version__}; "
              "shared 2-core machine, times indicative only.", ""]
    report = Path(args.report)
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text("\n".join(lines))
    configs = {r["setting"]: {k: v for k, v in r["config"].items() if k not in ("neuron", "T", "seed")} for r in runs}
    slim = [{k: v for k, v in r.items() if k != "config"} for r in runs]
    report.with_suffix(".json").write_text(json.dumps({"args": vars(args), "settings": configs, "runs": slim},
                                                      indent=2) + "\n")
    print(report.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
