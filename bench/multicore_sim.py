"""Cycles of one training step on the simulated SoC with N = 1, 2, 4 cores (same step, same
weights afterwards), the DRAM bytes the RTL counted, and what the host does per step with
the program queue and without it.

Each configuration is the real SoC RTL (``TridentCore`` × N, round-robin interconnect,
block-RAM DRAM) on Verilator, driven by the runtime's device backend (docs/descriptors.md §10).
The same step runs twice from the same weights: through the SoC's program queue (one queued
run per pass; cycles are the SoC's from the first queued program to the drained queue) and
phase by phase from the host (a phase lasts as long as its slowest core's busy counter).
Host transactions are the transport's register/memory requests and ``RUN`` waits.
Writes ``bench/reports/multicore_sim.{md,json}``.  Run: ``python bench/multicore_sim.py``
(each N is a Verilator build of about half a minute the first time).
"""
from __future__ import annotations

import argparse
import time
from collections import Counter

import torch

from trident.golden.network import PRESETS, SpikingNetwork
from trident.golden.neurons import NeuronConfig
from trident.golden.training import HwBackend, weights_sha256
from trident.golden.traffic import gpu_bptt_traffic
from trident.sw.device_backend import DeviceBackend, core_kwargs_for, open_device

from _common import digits_step, sim_step_arguments, write_report


def one_step(cores, model_name, steps, batch, simulator):
    data, x, y = digits_step(steps, batch)
    torch.manual_seed(0)
    model = SpikingNetwork(model_name, data.input_shape, data.n_classes, NeuronConfig(kind="lif", detach_reset=True))
    gpu_bytes = gpu_bptt_traffic(SpikingNetwork(model_name, data.input_shape, data.n_classes,
                                                NeuronConfig(kind="lif", detach_reset=True)), x, y).total
    reference = HwBackend(model, lr=0.5, momentum=0.9)
    reference.train_step(x, y)
    t0 = time.perf_counter()
    backend = DeviceBackend(model, lambda words: open_device("sim", words, cores=cores, simulator=simulator,
                                                             core_kwargs=core_kwargs_for(model)),
                            lr=0.5, momentum=0.9, loss_scale=1024.0, batch_size=batch, steps=steps,
                            direct_input=True, cores=cores)
    opened = time.perf_counter()
    calls = count_requests(backend.device.transport)
    start = backend.state_dict()
    modes = {}
    for queued in (True, False):
        backend.load_state_dict(start)
        backend.queued = queued
        backend.reset_figures()
        calls.clear()
        t = time.perf_counter()
        backend.train_step(x, y)
        modes["queued" if queued else "host"] = {
            "step_s": time.perf_counter() - t, "requests": dict(calls),
            "figures": backend.device_report(), "weights_sha256": weights_sha256(backend.weights())}
    backend.close()
    figures = modes["queued"]["figures"]
    golden = weights_sha256(reference.weights())
    return {"cores": cores, "device_cycles": figures["device_cycles"],
            "host_phase_cycles": modes["host"]["figures"]["device_cycles"],
            "core_busy_cycles": figures["core_busy_cycles"],
            "dram_bytes": figures["dram_bytes_per_step"], "gpu_fp32_bytes": gpu_bytes,
            "engine_utilization": figures["engine_utilization"],
            "weights_equal_golden": all(m["weights_sha256"] == golden for m in modes.values()),
            "weights_sha256": modes["queued"]["weights_sha256"], "open_s": opened - t0,
            "step_s": modes["queued"]["step_s"], "host_phase_step_s": modes["host"]["step_s"],
            "requests": modes["queued"]["requests"], "host_phase_requests": modes["host"]["requests"]}


def count_requests(transport) -> Counter:
    """Count the transport's requests by kind (wraps the instance's methods)."""
    calls = Counter()

    def counted(name, method):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return method(*args, **kwargs)
        return wrapper
    for name in ("read_words", "write_words", "pause"):
        setattr(transport, name, counted(name, getattr(transport, name)))
    return calls


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--model", default="mlp-small")
    sim_step_arguments(parser, "multicore_sim")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for cores in args.cores:
        rows.append(one_step(cores, args.model, args.steps, args.batch, args.simulator))
        r = rows[-1]
        print(f"N = {cores}: {r['device_cycles']} cycles ({r['host_phase_cycles']} phase by phase), "
              f"{r['dram_bytes']:.0f} DRAM bytes, host requests {sum(r['requests'].values())} "
              f"({sum(r['host_phase_requests'].values())}), weights equal golden: "
              f"{r['weights_equal_golden']}", flush=True)
    base = rows[0]["device_cycles"]
    core = "TridentCore defaults" + (", with the conv engines" if "conv" in PRESETS.get(args.model, args.model) else "")
    reproduce = "" if args.model == parser.get_default("model") else f" --model {args.model} --out {args.out}"
    lines = ["# One training step on the simulated SoC, N cores", "",
             f"digits, `{args.model}`, LIF, T = {args.steps}, batch {args.batch}, direct input, SGD momentum 0.9; "
             f"the SoC RTL on {args.simulator} ({core}, block-RAM DRAM); cycles: the SoC's "
             "`global.cycles` from the first queued program to the drained program queue (each pass one "
             "queued run); DRAM bytes counted by the cores at their memory ports.", "",
             "| N | cycles | speed-up | core busy cycles (sum) | DRAM bytes (RTL) | vs GPU fp32 BPTT | weights = golden (bit for bit) |",
             "|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['cores']} | {r['device_cycles']:,} | {base / r['device_cycles']:.2f}× | "
                     f"{r['core_busy_cycles']:,} | {r['dram_bytes']:,.0f} | "
                     f"−{100 * (1 - r['dram_bytes'] / r['gpu_fp32_bytes']):.1f} % | {'yes' if r['weights_equal_golden'] else 'NO'} |")
    lines += ["", "The same step started phase by phase from the host (`DeviceBackend(queued=False)`; cycles: "
              "per phase the slowest core's busy counter, summed) against the program queue, same run "
              "(host requests: register/memory transfers of the transport, `RUN` waits included; the "
              "weights of both modes equal the golden model's):", "",
              "| N | cycles, queue | cycles, host phases | host requests, queue | host requests, host phases "
              "| ratio | step wall s, queue / host phases |",
              "|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        q, h = sum(r["requests"].values()), sum(r["host_phase_requests"].values())
        lines.append(f"| {r['cores']} | {r['device_cycles']:,} | {r['host_phase_cycles']:,} | {q:,} | {h:,} | "
                     f"{h / q:.1f}× | {r['step_s']:.2f} / {r['host_phase_step_s']:.2f} |")
    lines += ["", f"GPU fp32 BPTT step of the same network and batch (golden.traffic, docs/dram-traffic.md): "
              f"{rows[0]['gpu_fp32_bytes']:,} bytes.", "", f"All N give the same weights: {'yes' if len({r['weights_sha256'] for r in rows}) == 1 else 'NO'}.",
              "", f"Reproduce: `python bench/multicore_sim.py{reproduce}`.", ""]
    write_report(args.out, {"config": vars(args) | {"out": str(args.out)}, "rows": rows}, "\n".join(lines))


if __name__ == "__main__":
    main()
