"""Training throughput and memory of Trident's float path against a per-step PyTorch loop.

Both variants are the same network with the same weights and inputs:

- ``trident``: the golden model as it trains (fused multi-step neurons, spike inputs
  kept as bytes for the backward pass);
- ``per-step``: plain PyTorch as SpikingJelly's ``torch`` backend runs it — layers folded
  over ``T·N``, neurons stepped one time step at a time with autograd through every step.

Per network the variants alternate in one process (so machine noise hits both alike);
throughput is the median over repeats of a full optimisation step (forward, backward,
SGD).  Memory is the bytes autograd keeps for the backward pass (counted exactly through
``saved_tensors_hooks``): the activations that grow with T and batch in BPTT and set its
peak memory (the weights and their gradients are the same in both variants).

Run:  .venv/bin/python bench/train_throughput.py [--repeats 15] [--report bench/reports/train_throughput.md]
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.nn import functional as F

from trident.golden.network import SpikingNetwork
from trident.golden.neurons import NeuronConfig

NETWORKS = {
    "digits-mlp": dict(architecture="mlp", input_shape=(64,), T=8, batch=32, density=None),
    "mlp-784-512-256": dict(architecture="fc512,fc256", input_shape=(784,), T=16, batch=128, density=0.2),
    "event-cnn": dict(architecture="cnn", input_shape=(2, 34, 34), T=8, batch=32, density=0.1),
}


def build(name: str, variant: str):
    spec = NETWORKS[name]
    torch.manual_seed(0)
    model = SpikingNetwork(spec["architecture"], spec["input_shape"], 10, NeuronConfig(kind="lif"))
    if variant == "per-step":
        model = copy.deepcopy(model)
        model.set_fused(False)
        for layer in model.body:
            if hasattr(layer, "spike_input"):
                layer.spike_input = False
    g = torch.Generator().manual_seed(1)
    shape = (spec["T"], spec["batch"], *spec["input_shape"])
    x = torch.rand(shape, generator=g)
    if spec["density"] is not None:
        x = (x < spec["density"]).float()
    y = torch.randint(0, 10, (spec["batch"],), generator=g)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    return model, optimizer, x, y


def step(model, optimizer, x, y):
    loss = F.cross_entropy(model(x), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def saved_bytes(model, x, y) -> int:
    total = 0

    def pack(t):
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = F.cross_entropy(model(x), y)
    loss.backward()
    return total


def measure(name: str, repeats: int) -> dict:
    variants = {v: build(name, v) for v in ("trident", "per-step")}
    times = {v: [] for v in variants}
    for v, args in variants.items():
        for _ in range(2):
            step(*args)  # warm-up
    for _ in range(repeats):
        for v, args in variants.items():
            start = time.perf_counter()
            step(*args)
            times[v].append(time.perf_counter() - start)
    batch = NETWORKS[name]["batch"]
    result = {"network": name, **{k: v for k, v in NETWORKS[name].items()}}
    for v, args in variants.items():
        model, _, x, y = args
        result[v] = {"samples_per_s": batch / statistics.median(times[v]),
                     "saved_mib": saved_bytes(model, x, y) / 2 ** 20}
    result["speedup"] = result["trident"]["samples_per_s"] / result["per-step"]["samples_per_s"]
    result["saved_ratio"] = result["trident"]["saved_mib"] / result["per-step"]["saved_mib"]
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, nargs="*", default=[1, 2],
                        help="torch intra-op thread counts to measure (one table each)")
    parser.add_argument("--networks", nargs="*", default=list(NETWORKS), choices=list(NETWORKS))
    parser.add_argument("--report", default=str(Path(__file__).parent / "reports" / "train_throughput.md"))
    args = parser.parse_args(argv)
    lines = [
        "# Training throughput and memory: Trident float path vs per-step PyTorch loop",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}. "
        f"Same network, weights and inputs per row; variants alternate in one process, median of "
        f"{args.repeats} optimisation steps (forward, backward, SGD).",
    ]
    results = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        rows = [measure(n, args.repeats) | {"threads": threads} for n in args.networks]
        results += rows
        lines += ["", f"## {threads} thread{'s' if threads > 1 else ''}", "",
                  "| network | T | batch | Trident samples/s | per-step samples/s | speed-up | "
                  "saved for backward (MiB) Trident / per-step | memory ratio |",
                  "|---|---|---|---|---|---|---|---|"]
        lines += [_row(r) for r in rows]
    lines += ["", "Goal: ≥ 2× faster and ≤ 0.5× the memory of the per-step loop.", "",
              "Reproduce: `.venv/bin/python bench/train_throughput.py`", "",
              "```json", json.dumps(results, indent=1), "```", ""]
    Path(args.report).parent.mkdir(parents=True, exist_ok=True)
    Path(args.report).write_text("\n".join(lines))
    print("\n".join(lines[:lines.index("```json")]))


def _row(r):
    t, b = r["trident"], r["per-step"]
    return (f"| {r['network']} ({r['architecture']}) | {r['T']} | {r['batch']} | {t['samples_per_s']:.0f} | "
            f"{b['samples_per_s']:.0f} | **{r['speedup']:.2f}×** | {t['saved_mib']:.2f} / "
            f"{b['saved_mib']:.2f} | **{r['saved_ratio']:.2f}×** |")


if __name__ == "__main__":
    main()
