"""Float vs 4-bit integer-only networks with shift batch-norm on digits (ALGORITHMS.md §5).

For each network (MLP and CNN) and seed, trains the float twin (bias-free layers, BatchNorm +
ReLU, float input) and the 4-bit network (4-bit weights via shadow weights, shift-BN, 4-bit
unsigned activations, 8-bit unsigned input) with the same schedule (Adam, cosine, same
epochs and batch); then runs the pure-integer numpy reference on every test input, checks it
is bit-identical to the fake-quantized network layer by layer, exports the integer tables and
reloads them.  Writes a markdown report (and the raw numbers as JSON next to it).

Run:  .venv/bin/python bench/quant4.py [--epochs 80] [--seeds 0,1,2,3,4] [--report bench/reports/quant4.md]

Single-threaded torch (``--threads 1``): on a shared 2-core machine extra threads only
oversubscribe it.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from trident.golden.quant import QuantTrainConfig, from_network, train_quant
from trident.golden.quant.network import expand_architecture


def mean_sd(values):
    m = statistics.mean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return m, sd


def pct(m, sd=None):
    return f"{100 * m:.2f}" if sd is None else f"{100 * m:.2f} ± {100 * sd:.2f}"


def table_sizes(net) -> dict:
    integer = from_network(net)
    weights = sum(op.weight.size for op in integer.ops if hasattr(op, "weight"))
    channels = sum(op.bias.size for op in integer.ops if hasattr(op, "bias"))
    shifts = [int(s) for op in integer.ops if hasattr(op, "shift") for s in op.shift]
    return {"weights": int(weights), "weight_bytes_int8": int(weights), "weight_bytes_packed4": (int(weights) + 1) // 2,
            "bn_channels": int(channels), "table_bytes": int(channels) * 5,
            "shift_min": min(shifts), "shift_max": max(shifts)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="mlp,cnn")
    p.add_argument("--epochs", type=int, default=QuantTrainConfig.epochs)
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--lr", type=float, default=QuantTrainConfig.lr)
    p.add_argument("--float-lr", type=float, default=QuantTrainConfig.float_lr)
    p.add_argument("--batch", type=int, default=QuantTrainConfig.batch_size)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--report", default="bench/reports/quant4.md")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    models = args.models.split(",")
    wall = time.perf_counter()
    runs = []
    for model in models:
        for seed in seeds:
            with tempfile.TemporaryDirectory() as tmp:
                cfg = QuantTrainConfig(model=model, epochs=args.epochs, seed=seed, lr=args.lr,
                                       float_lr=args.float_lr, batch_size=args.batch, export=tmp)
                r = train_quant(cfg, return_models=True)
            sizes = table_sizes(r["models"]["quant"])
            run = {"model": model, "seed": seed, "float": r["float"]["test_accuracy"],
                   "quant": r["quant"]["test_accuracy"], "integer": r["integer"]["test_accuracy"],
                   "bit_identical": r["integer"]["bit_identical"], "reload_identical": r["export"]["reload_identical"],
                   "max_abs_intermediate": r["integer"]["max_abs_intermediate"],
                   "float_time_s": r["float"]["train_time_s"], "quant_time_s": r["quant"]["train_time_s"],
                   "sizes": sizes, "test_samples": r["test_samples"], "train_samples": r["train_samples"]}
            runs.append(run)
            print(f"{model} seed {seed}: float {pct(run['float'])}  4-bit {pct(run['quant'])}  integer "
                  f"{pct(run['integer'])}  bit-identical {run['bit_identical']}  reload {run['reload_identical']}",
                  file=sys.stderr, flush=True)
    wall = time.perf_counter() - wall

    lines = [
        "# 4-bit integer-only inference with shift batch-norm — digits",
        "",
        "Regenerate: `.venv/bin/python bench/quant4.py` "
        f"(`--epochs {args.epochs} --seeds {args.seeds} --models {args.models}`; {wall / 60:.1f} min here, "
        f"torch threads = {args.threads}).",
        "",
        "Method: ALGORITHMS.md §5 — 4-bit signed weights (shadow weights, straight-through round, "
        "no bias), shift batch-norm per channel (bias = round(mean), shift = round(log2 std) + K − n, "
        "EMA 0.9 with the first batch copied), 4-bit unsigned activations [0, 15], 8-bit unsigned "
        "inputs round(255·x); the classifier's int accumulators are the logits. The float twin has "
        "the same topology with BatchNorm (affine) + ReLU and float inputs. Both: Adam with a cosine "
        f"schedule, batch {args.batch}, {args.epochs} epochs, lr {args.float_lr} (float) / {args.lr} "
        "(4-bit, integer weight units). Data: sklearn digits, fixed 1437 / 360 split; accuracy on all "
        "360 test images (one image = 0.28 points).",
        "",
        "**4-bit** is the fake-quantized network in eval mode; **integer** is the pure-integer numpy "
        "reference (int MAC → − bias → arithmetic shift → clamp, no float) run from the exported and "
        "reloaded tables. *bit-identical*: every layer's output equal on every test input, every seed.",
        "",
        "| network | architecture | float acc % | 4-bit acc % | integer acc % | 4-bit − float (pp) | bit-identical | reload identical |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for model in models:
        rs = [r for r in runs if r["model"] == model]
        f, q, i = (mean_sd([r[k] for r in rs]) for k in ("float", "quant", "integer"))
        lines.append(f"| {model} | `{expand_architecture(model)}` → 10 | {pct(*f)} | {pct(*q)} | {pct(*i)} | "
                     f"{100 * (q[0] - f[0]):+.2f} | {all(r['bit_identical'] for r in rs)} | "
                     f"{all(r['reload_identical'] for r in rs)} |")
    lines += ["", f"Mean ± standard deviation over seeds {args.seeds}.", "", "## Per seed", "",
              "| network | seed | float % | 4-bit % | integer % | float train s | 4-bit train s | max abs intermediate |",
              "|---|---|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {r['model']} | {r['seed']} | {pct(r['float'])} | {pct(r['quant'])} | {pct(r['integer'])} | "
                     f"{r['float_time_s']:.1f} | {r['quant_time_s']:.1f} | {r['max_abs_intermediate']} |")
    lines += ["", "## Integer tables (seed " + str(seeds[0]) + ")", "",
              "| network | weights | bytes as int8 (export) | bytes packed 4-bit | shift-BN channels | bias+shift bytes | shift range |",
              "|---|---|---|---|---|---|---|"]
    for model in models:
        s = next(r for r in runs if r["model"] == model)["sizes"]
        lines.append(f"| {model} | {s['weights']} | {s['weight_bytes_int8']} | {s['weight_bytes_packed4']} | "
                     f"{s['bn_channels']} | {s['table_bytes']} | [{s['shift_min']}, {s['shift_max']}] |")
    worst = max(r["max_abs_intermediate"] for r in runs)
    lines += ["", f"The largest intermediate magnitude over all runs is {worst}: signed accumulators of "
              f"{worst.bit_length() + 1} bits suffice (int32 is ample). The export stores one weight per byte "
              "(format in docs/quant4.md).",
              "", f"Machine: {platform.machine()}, {platform.python_version()}, torch {torch.__version__}; "
              "timings are from a shared 2-core machine and only indicative.", ""]
    report = Path(args.report)
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text("\n".join(lines))
    report.with_suffix(".json").write_text(json.dumps({"args": vars(args), "runs": runs}, indent=2) + "\n")
    print(report.read_text())
    ok = all(r["bit_identical"] and r["reload_identical"] for r in runs)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
