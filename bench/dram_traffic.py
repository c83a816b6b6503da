"""DRAM bytes per training step: Trident's compiled programs against a GPU BPTT step.

For each network the same batch (N) and steps (T):

* **Trident** — the network compiled for a ``TridentCore`` configuration and one training step
  on the golden device model (``golden.hw.program.train_step``): 4 × the DRAM words its
  descriptors read and write per docs/descriptors.md §7, plus the host's own transfers
  (input, logits, loss gradient).
* **The RTL's count** — the same step on the SoC RTL (one core, Verilator, through the
  runtime's device backend): the cores' DRAM byte counters must equal the model's count, and
  the weights the golden device's.
* **GPU BPTT** — ``golden.traffic.gpu_bptt_traffic``: every operator of an eager float32
  PyTorch step with per-step tensors kept for backward reads its operands and writes its
  results once (docs/dram-traffic.md).  The fp16 bound halves it.

Writes ``bench/reports/dram_traffic.{md,json}``.  Run: ``python bench/dram_traffic.py``
(about 15 minutes: three Verilator builds, the event CNN's step is 16.6 M cycles);
``--model-only`` skips the RTL.
"""
from __future__ import annotations

import argparse
import dataclasses
import platform
import time
from pathlib import Path

import torch

from trident.golden.hw import program as P
from trident.golden.network import SpikingNetwork
from trident.golden.neurons import NeuronConfig
from trident.golden.traffic import gpu_bptt_traffic
from trident.golden.training import weights_sha256
from trident.rtl.core.core import core_params
from trident.sw.device_backend import DeviceBackend, open_device

from _common import REPORTS, write_report

LR, MOMENTUM, LOSS_SCALE = 0.1, 0.9, 1024.0

# name, architecture, input shape, classes, spike input (0/1 events, taken as spikes; False:
# direct-encoded analog), ``TridentCore`` arguments other than the defaults.  FC output tiles
# are multiples of 32 neurons, so a layer with I inputs needs 32·I/L weight words (the
# 256-input hidden layer needs 2048); a 2×34×34 event frame is a 2,312-input event list, and a
# tile of the first conv layer's 17×17 maps needs more than the default 256 neurons of state
NETWORKS = [
    ("digits MLP 64-256-10", "mlp", (1, 8, 8), 10, False, {}),
    ("digits MLP 64-256-128-10", "mlp2", (1, 8, 8), 10, False, {"weight_depth": 2048}),
    ("event CNN (N-MNIST 2×34×34)", "cnn-nobn", (2, 34, 34), 10, True,
     {"conv": True, "state_depth": 1024, "max_inputs": 4096}),
]


def _batch(shape, steps, batch, spikes, generator):
    if spikes:
        return (torch.rand(steps, batch, *shape, generator=generator) < 0.1).float()
    frame = torch.rand(batch, *shape, generator=generator)
    return frame.unsqueeze(0).expand(steps, *frame.shape).contiguous()


def model_copy(arch, shape, classes):
    """The network as the bench builds it (seed 0), untouched by any step."""
    torch.manual_seed(0)
    return SpikingNetwork(arch, shape, classes, NeuronConfig(kind="lif", detach_reset=True))


def _backend(kind, arch, shape, classes, spikes, core_kwargs, steps, batch):
    return DeviceBackend(model_copy(arch, shape, classes),
                         lambda words: open_device(kind, words, core_kwargs=core_kwargs),
                         lr=LR, momentum=MOMENTUM, loss_scale=LOSS_SCALE, batch_size=batch, steps=steps,
                         direct_input=not spikes, spike_input=spikes, core=core_params(**core_kwargs),
                         timeout=7200.0)


def model_step(net, x, y) -> dict:
    """One step on the golden device: the descriptor model's DRAM words (forward / backward,
    read / written), the host's words, and the weights it ends with (as the runtime's
    ``DeviceBackend.weights()`` names them)."""
    name, arch, shape, classes, spikes, core_kwargs = net
    steps, batch = x.shape[:2]
    backend = _backend("golden-soc", arch, shape, classes, spikes, core_kwargs, steps, batch)
    program = backend.program
    memory = program.memory.copy()
    t0 = time.perf_counter()
    _, _, (fwd, bwd) = P.train_step(program, memory, x.reshape(steps, batch, *program.input.shape), y)
    device_s = time.perf_counter() - t0
    weights = weights_sha256(dict(zip(backend.names, program.read_weights(memory))) | backend.fixed)
    backend.close()
    return {"words": {"forward_read": fwd.words_read, "forward_written": fwd.words_written,
                      "backward_read": bwd.words_read, "backward_written": bwd.words_written},
            "host_words": program.input.size + 2 * program.logits.size,      # input, logits, G
            "descriptors": len(program.forward) + len(program.backward),
            "weights_sha256": weights, "golden_device_s": device_s}


def rtl_step(net, x, y) -> dict:
    """One training step on the SoC RTL (one core on Verilator): its DRAM counters, cycles and
    weights."""
    name, arch, shape, classes, spikes, core_kwargs = net
    steps, batch = x.shape[:2]
    t0 = time.perf_counter()
    backend = _backend("sim", arch, shape, classes, spikes, core_kwargs, steps, batch)
    opened = time.perf_counter()
    try:
        backend.train_step(x, y)
        figures = backend.device_report()
        weights = weights_sha256(backend.weights())
    finally:
        backend.close()
    return {"batch": batch, "core_bytes": figures["dram_bytes_read"] + figures["dram_bytes_written"],
            "cycles": figures["device_cycles"], "weights_sha256": weights,
            "open_s": opened - t0, "step_s": time.perf_counter() - opened}


def measure(net, steps, batch, rtl=True) -> dict:
    name, arch, shape, classes, spikes, core_kwargs = net
    generator = torch.Generator().manual_seed(0)
    x = _batch(shape, steps, batch, spikes, generator)
    y = torch.randint(0, classes, (batch,), generator=generator)
    model = model_step(net, x, y)
    words = model["words"]
    trident = 4 * (sum(words.values()) + model["host_words"])
    row = {"network": name, "architecture": arch, "input_shape": list(shape), "spike_input": spikes,
           "steps": steps, "batch": batch, "core_kwargs": core_kwargs,
           "core": dataclasses.asdict(core_params(**core_kwargs)), "descriptors": model["descriptors"],
           "trident_bytes": trident,
           "trident_detail": {**{k: 4 * v for k, v in words.items()}, "host": 4 * model["host_words"]},
           "golden_device_s": model["golden_device_s"]}
    if rtl:
        run = rtl_step(net, x, y)
        run["model_core_bytes"] = 4 * sum(words.values())
        run["equals_model"] = run["core_bytes"] == run["model_core_bytes"]
        run["weights_equal_golden"] = run.pop("weights_sha256") == model["weights_sha256"]
        row["rtl"] = run
    gpu = gpu_bptt_traffic(model_copy(arch, shape, classes), x, y)
    row.update({"gpu_fp32_bytes": gpu.total, "gpu_fp16_bound_bytes": gpu.bytes_fp16_bound, "gpu_detail": gpu.as_dict(),
                "reduction_vs_fp32": 1 - trident / gpu.total,
                "reduction_vs_fp16_bound": 1 - trident / gpu.bytes_fp16_bound})
    return row


def _overrides(row) -> str:
    return ", ".join(f"{k} = {v}" for k, v in row["core_kwargs"].items()) or "default"


def _mb(b):
    return f"{b / 1e6:.2f}"


def report(rows, steps, batch) -> str:
    rtl = all("rtl" in r for r in rows)
    lines = [
        "# DRAM traffic per training step: Trident vs GPU BPTT",
        "",
        f"One training step (FP, loss gradient, BP, WG, SGD with momentum), batch N = {batch}, "
        f"T = {steps}, LIF. Trident: the network compiled for one `TridentCore` (default "
        "arguments but those listed); DRAM bytes = the words its descriptors read and write "
        "(docs/descriptors.md §7, what the SoC's DRAM counters count) plus the host's "
        "input/logits/gradient transfers. GPU: every operator of an eager float32 PyTorch BPTT "
        "step reads its operands and writes its results once (docs/dram-traffic.md); the fp16 "
        "bound halves that.",
        "",
        "| network | core (non-default) | Trident MB | GPU fp32 MB | reduction | GPU fp16 bound MB | "
        "reduction vs bound |",
        "|---|---|---:|---:|---:|---:|---:|",
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
    if rtl:
        lines += ["", "**The RTL's count** — the same step on the SoC RTL (one core, Verilator, "
                  "block-RAM DRAM; the cores' DRAM byte counters) against the model's count of the "
                  "same step, and its weights against the golden device's:", "",
                  "| network | N | cycles | core DRAM bytes, RTL | model | equal | weights = golden | "
                  "Verilator build + step (s) |", "|---|---:|---:|---:|---:|:-:|:-:|---:|"]
        for r in rows:
            x = r["rtl"]
            lines.append(f"| {r['network']} | {x['batch']} | {x['cycles']:,} | {x['core_bytes']:,} | "
                         f"{x['model_core_bytes']:,} | {'yes' if x['equals_model'] else '**no**'} | "
                         f"{'yes' if x['weights_equal_golden'] else '**no**'} | "
                         f"{x['open_s']:.0f} + {x['step_s']:.0f} |")
    else:
        lines += ["", "(This run did not simulate the RTL: `--model-only`.)"]
    lines += ["", f"Machine: {platform.machine()}, Python {platform.python_version()}, "
              f"torch {torch.__version__}. Reproduce: `python bench/dram_traffic.py"
              f"{'' if rtl else ' --model-only'}`.", ""]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--out", type=Path, default=REPORTS / "dram_traffic")
    parser.add_argument("--model-only", action="store_true",
                        help="count with the descriptor model only (no RTL simulation; seconds)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for net in NETWORKS:
        rows.append(measure(net, args.steps, args.batch, rtl=not args.model_only))
        r = rows[-1]
        rtl = (f"; RTL: = model {r['rtl']['equals_model']}, weights = golden "
               f"{r['rtl']['weights_equal_golden']}, {r['rtl']['cycles']:,} cycles" if "rtl" in r else "")
        print(f"{r['network']}: model {_mb(r['trident_bytes'])} MB{rtl}, GPU {_mb(r['gpu_fp32_bytes'])} MB, "
              f"reduction {100 * r['reduction_vs_fp32']:.1f} %", flush=True)
    write_report(args.out, {"steps": args.steps, "batch": args.batch, "networks": rows},
                 report(rows, args.steps, args.batch))


if __name__ == "__main__":
    main()
