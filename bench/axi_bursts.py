"""AXI transactions of one training step: the SoC's DRAM port in single beats against bursts.

Each configuration is the real SoC RTL (``TridentCore`` × N, ``dram="axi"``) on Verilator
with cocotbext-axi's ``AxiRam`` on the AXI port, which takes an address on one cycle in
``k`` only (a memory controller's cost per transaction) and may pause its channels at
random, driven by the runtime's device backend through the program queue.  The same step
runs from the same weights with ``max_burst = 1`` (one AXI transaction per word), with
bursts, and with bursts and the cores' DMA keeping a tensor's words together
(``TridentCore(dma_run=…)``).  The SoC's ``dram.read_bursts``/``dram.write_bursts`` count
the AR and AW transactions and ``dram.bytes_*`` the beats.  Writes
``bench/reports/axi_bursts.{md,json}``.  Run: ``python bench/axi_bursts.py`` (one Verilator
build per SoC configuration).
"""
from __future__ import annotations

import argparse
import time

import torch

from trident.golden.network import SpikingNetwork
from trident.golden.neurons import NeuronConfig
from trident.golden.training import HwBackend, weights_sha256
from trident.sw.device_backend import AxiPort, DeviceBackend, core_kwargs_for, open_device

from _common import digits_step, sim_step_arguments, write_report


def one_step(cores, max_burst, dma_run, stall, command_cycles, model_name, steps, batch, simulator):
    data, x, y = digits_step(steps, batch)

    def network():
        torch.manual_seed(0)
        return SpikingNetwork(model_name, data.input_shape, data.n_classes,
                              NeuronConfig(kind="lif", detach_reset=True))

    reference = HwBackend(network(), lr=0.5, momentum=0.9)
    reference.train_step(x, y)
    model = network()
    port = AxiPort(max_burst=max_burst, dma_run=dma_run, stall=stall, command_cycles=command_cycles)

    def device(words):
        return open_device("sim", words, cores=cores, simulator=simulator, core_kwargs=core_kwargs_for(model),
                           dram="axi", axi=port)

    backend = DeviceBackend(model, device, lr=0.5, momentum=0.9, loss_scale=1024.0,
                            batch_size=batch, steps=steps, direct_input=True, cores=cores)
    try:
        backend.device.clear_counters()
        t = time.perf_counter()
        backend.train_step(x, y)
        step_s = time.perf_counter() - t
        traffic = backend.device.dram_traffic()
        figures = backend.device_report()
        sha = weights_sha256(backend.weights())
    finally:
        backend.close()
    beats = (traffic["bytes_read"] + traffic["bytes_written"]) // 4
    bursts = traffic["read_bursts"] + traffic["write_bursts"]
    return {"cores": cores, "max_burst": max_burst, "dma_run": dma_run, "stall": stall,
            "command_cycles": command_cycles,
            "device_cycles": figures["device_cycles"],
            "read_beats": traffic["bytes_read"] // 4, "write_beats": traffic["bytes_written"] // 4,
            "read_bursts": traffic["read_bursts"], "write_bursts": traffic["write_bursts"],
            "beats_per_burst": beats / bursts, "step_s": step_s,
            "weights_equal_golden": sha == weights_sha256(reference.weights())}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--configs", nargs="+", default=["1:1", "16:1", "16:8"],
                        help="max_burst:dma_run pairs; the first is the baseline")
    parser.add_argument("--stall", type=float, default=0.0,
                        help="probability that the AXI memory pauses a channel in a cycle")
    parser.add_argument("--command-cycles", type=int, nargs="+", default=[1, 4],
                        help="the AXI memory takes an address on one cycle in this many (its "
                             "cost per transaction); one run per value")
    parser.add_argument("--model", default="mlp-small")
    sim_step_arguments(parser, "axi_bursts")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    configs = [tuple(int(v) for v in c.split(":")) for c in args.configs]
    rows = []
    for cores in args.cores:
        for command_cycles in args.command_cycles:
            for max_burst, dma_run in configs:
                rows.append(one_step(cores, max_burst, dma_run, args.stall, command_cycles,
                                     args.model, args.steps, args.batch, args.simulator))
                r = rows[-1]
                print(f"N = {cores}, address every {command_cycles} cycles, max_burst {max_burst}, "
                      f"dma_run {dma_run}: {r['device_cycles']:,} cycles, AR {r['read_bursts']:,} "
                      f"AW {r['write_bursts']:,}, {r['beats_per_burst']:.2f} beats/transaction, "
                      f"weights equal golden: {r['weights_equal_golden']}", flush=True)
    lines = ["# AXI transactions of one training step: single beats against bursts", "",
             f"digits, `{args.model}`, LIF, T = {args.steps}, batch {args.batch}, direct input, SGD "
             f"momentum 0.9; the SoC RTL on {args.simulator} (TridentCore defaults but `dma_run`, "
             "`dram=\"axi\"`) with cocotbext-axi's AxiRam, which takes an address (AR or AW) on "
             "one cycle in k (a memory controller's cost per command; k = 1: none) and pauses "
             f"every channel at random with probability {args.stall}; the step through the "
             "program queue; counts from the SoC's `dram.*` registers; each block compared "
             "with its first row.", "",
             "| N | k | max_burst | dma_run | cycles | read beats | AR | write beats | AW "
             "| beats per transaction | transactions | cycles | weights = golden |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    first = {}
    for r in rows:
        base = first.setdefault((r["cores"], r["command_cycles"]), r)
        ratio = (r["read_bursts"] + r["write_bursts"]) / (base["read_bursts"] + base["write_bursts"])
        lines.append(f"| {r['cores']} | {r['command_cycles']} | {r['max_burst']} | {r['dma_run']} | "
                     f"{r['device_cycles']:,} | {r['read_beats']:,} | {r['read_bursts']:,} | "
                     f"{r['write_beats']:,} | {r['write_bursts']:,} | {r['beats_per_burst']:.2f} | "
                     f"{ratio:.3f}× | {r['device_cycles'] / base['device_cycles']:.3f}× | "
                     f"{'yes' if r['weights_equal_golden'] else 'NO'} |")
    options = (("cores", args.cores), ("configs", args.configs), ("stall", args.stall),
               ("command_cycles", args.command_cycles), ("model", args.model))
    reproduce = "".join(f" --{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
                        for k, v in options if v != parser.get_default(k))
    lines += ["", f"Reproduce: `python bench/axi_bursts.py{reproduce}`.", ""]
    write_report(args.out, {"config": vars(args) | {"out": str(args.out)}, "rows": rows},
                 "\n".join(lines))


if __name__ == "__main__":
    main()
