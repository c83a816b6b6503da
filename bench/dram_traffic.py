"""DRAM bytes per training step: Trident's compiled programs against a GPU BPTT step.

For each network the same batch (N) and steps (T):

* **Trident** — the network compiled for a core (``golden.hw.compiler``) and one training step
  run on the golden device model (``golden.hw.program.train_step``); bytes = 4 × the DRAM words
  its descriptors read and write, counted per docs/descriptors.md §7 (the counting the RTL's
  counters implement) plus the host's own transfers (input, logits, loss gradient).
* **GPU BPTT** — ``golden.traffic.gpu_bptt_traffic``: every operator of an eager float32
  PyTorch step with per-step tensors kept for backward reads its operands and writes its
  results once (docs/dram-traffic.md).  The fp16 bound halves it.

Writes ``bench/reports/dram_traffic.{md,json}``.  Run: ``python bench/dram_traffic.py``.
"""
from __future__ import annotations

import argparse
import dataclasses
import platform
import time
from pathlib import Path

import torch

from trident.golden.hw import compiler as C
from trident.golden.hw import descriptors as D
from trident.golden.hw import program as P
from trident.golden.hw.network import HwExactNetwork
from trident.golden.network import SpikingNetwork
from trident.golden.neurons import NeuronConfig
from trident.golden.traffic import gpu_bptt_traffic

from _common import REPORTS, write_report


# name, architecture, input shape, classes, spike input (False: direct-encoded analog),
# core parameters other than the defaults (FC output tiles are multiples of 32 neurons, so a
# layer with I inputs needs 32·I/L weight words: the 256-input hidden layer needs 2048; a
# 2×34×34 event frame is a 2,312-input event list)
NETWORKS = [
    ("digits MLP 64-256-10", "mlp", (1, 8, 8), 10, False, {}),
    ("digits MLP 64-256-128-10", "mlp2", (1, 8, 8), 10, False, {"weight_depth": 2048}),
    ("event CNN (N-MNIST 2×34×34)", "cnn-nobn", (2, 34, 34), 10, True, {"max_inputs": 4096}),
]


def _batch(shape, steps, batch, spikes, generator):
    if spikes:
        return (torch.rand(steps, batch, *shape, generator=generator) < 0.1).float()
    frame = torch.rand(batch, *shape, generator=generator)
    return frame.unsqueeze(0).expand(steps, *frame.shape).contiguous()


def measure(name, arch, shape, classes, spikes, core_overrides, steps, batch) -> dict:
    core = dataclasses.replace(D.CoreParams(), **core_overrides)
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = SpikingNetwork(arch, shape, classes, NeuronConfig(kind="lif", detach_reset=True))
    x = _batch(shape, steps, batch, spikes, generator)
    y = torch.randint(0, classes, (batch,), generator=generator)

    net = HwExactNetwork.from_float(model, lr=0.1, momentum=0.9)
    program = C.compile(net, batch, core, steps=steps, direct_input=not spikes)
    memory = program.memory.copy()
    t0 = time.perf_counter()
    x_dev = x.reshape(steps, batch, *program.input.shape)    # the device's rows are flat
    _, _, (fwd, bwd) = P.train_step(program, memory, x_dev, y)
    device_s = time.perf_counter() - t0
    host_words = program.input.size + 2 * program.logits.size      # input, logits, G
    trident = 4 * (fwd.words_read + fwd.words_written + bwd.words_read + bwd.words_written + host_words)

    gpu = gpu_bptt_traffic(model, x, y)
    return {
        "network": name, "architecture": arch, "input_shape": list(shape), "spike_input": spikes,
        "steps": steps, "batch": batch, "core": dataclasses.asdict(core), "descriptors": len(program.forward) + len(program.backward),
        "trident_bytes": trident,
        "trident_detail": {"forward_read": 4 * fwd.words_read, "forward_written": 4 * fwd.words_written,
                           "backward_read": 4 * bwd.words_read, "backward_written": 4 * bwd.words_written,
                           "host": 4 * host_words},
        "gpu_fp32_bytes": gpu.total, "gpu_fp16_bound_bytes": gpu.bytes_fp16_bound, "gpu_detail": gpu.as_dict(),
        "reduction_vs_fp32": 1 - trident / gpu.total,
        "reduction_vs_fp16_bound": 1 - trident / gpu.bytes_fp16_bound,
        "golden_device_s": device_s,
    }


def _overrides(row) -> str:
    default = dataclasses.asdict(D.CoreParams())
    return ", ".join(f"{k} = {v}" for k, v in row["core"].items() if default[k] != v) or "default"


def _mb(b):
    return f"{b / 1e6:.2f}"


def report(rows, steps, batch) -> str:
    lines = [
        "# DRAM traffic per training step: Trident vs GPU BPTT",
        "",
        f"One training step (FP, loss gradient, BP, WG, SGD with momentum), batch N = {batch}, "
        f"T = {steps}, LIF. Trident: the compiled descriptor programs on one core (default "
        "`CoreParams` but for the sizes listed) — DRAM words counted per docs/descriptors.md §7 "
        "(the RTL counters' model) plus the host's input/logits/gradient transfers. GPU: every "
        "operator of an eager float32 PyTorch BPTT step reads its operands and writes its results "
        "once (docs/dram-traffic.md); the fp16 bound halves that.",
        "",
        "| network | core (non-default) | Trident MB | GPU fp32 MB | reduction | GPU fp16 bound MB | reduction vs bound |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['network']} | {_overrides(r)} | {_mb(r['trident_bytes'])} | {_mb(r['gpu_fp32_bytes'])} | "
                     f"{100 * r['reduction_vs_fp32']:.1f} % | {_mb(r['gpu_fp16_bound_bytes'])} | "
                     f"{100 * r['reduction_vs_fp16_bound']:.1f} % |")
    lines += ["", "Where Trident's bytes go (MB): forward read / written, backward read / written, host:", ""]
    for r in rows:
        d = r["trident_detail"]
        lines.append(f"* {r['network']}: {_mb(d['forward_read'])} / {_mb(d['forward_written'])}, "
                     f"{_mb(d['backward_read'])} / {_mb(d['backward_written'])}, {_mb(d['host'])} "
                     f"({r['descriptors']} descriptors)")
    lines += ["", f"Machine: {platform.machine()}, Python {platform.python_version()}, "
              f"torch {torch.__version__}. Reproduce: `python bench/dram_traffic.py`.", ""]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--out", type=Path, default=REPORTS / "dram_traffic")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = [measure(*net, args.steps, args.batch) for net in NETWORKS]
    for r in rows:
        print(f"{r['network']}: Trident {_mb(r['trident_bytes'])} MB, GPU {_mb(r['gpu_fp32_bytes'])} MB, "
              f"reduction {100 * r['reduction_vs_fp32']:.1f} %")
    write_report(args.out, {"steps": args.steps, "batch": args.batch, "networks": rows},
                 report(rows, args.steps, args.batch))


if __name__ == "__main__":
    main()
