"""What fusing a layer's BP and WG into one ``BPWG`` descriptor saves: one training step on the
simulated SoC (one core), compiled with ``fuse=True`` (BP and WG concurrently on one read of
``δI``) and ``fuse=False`` (a ``WG``, then a ``BP``), from the same weights.

Each configuration is the real SoC RTL (``TridentCore`` defaults, block-RAM DRAM) on Verilator
driven by the runtime's device backend; cycles are the SoC's over the queued passes, the
engines' busy cycles and the DRAM words are the core's own counters.  Both programs must end
with the golden model's weights bit for bit.  Then, on the trained device's DRAM, each
``BPWG`` of the step runs again as a program of its own, and so do its ``BP`` and ``WG``
(``descriptors.split_bpwg``) alone and one after the other: the overlap of the two engines.  Writes ``bench/reports/bpwg_sim.{md,json}``.
Run: ``python bench/bpwg_sim.py`` (a Verilator build of about half a minute the first time).
"""
from __future__ import annotations

import argparse

import torch

from trident.golden.hw import descriptors as D
from trident.golden.network import SpikingNetwork
from trident.golden.neurons import NeuronConfig
from trident.golden.training import HwBackend, weights_sha256
from trident.sw.device_backend import DeviceBackend, open_device

from _common import digits_step, sim_step_arguments, write_report


def one_step(arch, steps, batch, simulator):
    """``{"fused": figures, "apart": figures, "golden": sha}`` of one step of ``arch`` on digits."""
    data, x, y = digits_step(steps, batch)

    def model():
        torch.manual_seed(0)
        return SpikingNetwork(arch, data.input_shape, data.n_classes, NeuronConfig(kind="lif", detach_reset=True))
    reference = HwBackend(model(), lr=0.5, momentum=0.9)
    reference.train_step(x, y)
    out = {"golden": weights_sha256(reference.weights()), "layers": []}
    for fuse in (True, False):
        backend = DeviceBackend(model(), lambda words: open_device("sim", words, simulator=simulator),
                                lr=0.5, momentum=0.9, loss_scale=1024.0, batch_size=batch, steps=steps,
                                direct_input=True, fuse=fuse)
        backend.train_step(x, y)
        figures = backend.device_report()
        ops = [D.Opcode(d.op).name for d in backend.program.backward if d.op != D.Opcode.END]
        out["fused" if fuse else "apart"] = {
            "device_cycles": figures["device_cycles"], "core_busy_cycles": figures["core_busy_cycles"],
            "engine_busy": dict(backend.engine_busy), "dram_bytes_read": figures["dram_bytes_read"],
            "dram_bytes_written": figures["dram_bytes_written"], "backward_ops": ops,
            "weights_sha256": weights_sha256(backend.weights())}
        if fuse:
            out["layers"] = [dict(tag=d.tag, **descriptor_cycles(backend, d))
                             for d in backend.program.backward if d.op == D.Opcode.BPWG]
        backend.close()
    return out


def descriptor_cycles(backend, bpwg) -> dict:
    """SoC cycles of ``bpwg``, of its BP and its WG alone and of BP then WG, each run as a
    program (+ END) placed past the compiled image; the DRAM holds a trained step's tensors,
    and these descriptors only rewrite the δS and gradient words they computed before."""
    device, end = backend.device, D.Descriptor(op=D.Opcode.END)
    at = len(backend.program.memory)
    bp, wg = D.split_bpwg(bpwg)
    cycles = {}
    for name, descs in (("bp", [bp]), ("wg", [wg]), ("bp_then_wg", [bp, wg]), ("bpwg", [bpwg])):
        words = [w for d in (*descs, end) for w in D.pack(d)]
        device.write_mem(at, words)
        cycles[name] = device.run_queued([[at]]).cycles
    return cycles


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", nargs="+", default=["fc128", "fc64,fc48"])
    sim_step_arguments(parser, "bpwg_sim")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = {}
    for arch in args.arch:
        rows[arch] = r = one_step(arch, args.steps, args.batch, args.simulator)
        f, a = r["fused"], r["apart"]
        print(f"{arch}: {f['device_cycles']} cycles fused, {a['device_cycles']} apart; read "
              f"{f['dram_bytes_read']} / {a['dram_bytes_read']} bytes; weights equal golden: "
              f"{f['weights_sha256'] == a['weights_sha256'] == r['golden']}", flush=True)
    lines = ["# BP and WG fused (`BPWG`) against apart, one training step on the simulated SoC", "",
             f"digits, LIF, T = {args.steps}, batch {args.batch}, direct input, SGD momentum 0.9; one "
             f"`TridentCore` (defaults) in the SoC on {args.simulator}, each pass through the program "
             "queue; cycles: the SoC's over both passes; busy: the core's engine counters (the FP/BP "
             "engine's `bp_busy`, the WG engine's `wg_busy`); bytes: the core's memory-port counters.", "",
             "| network | backward descriptors | step cycles | bp_busy | wg_busy | DRAM bytes read | DRAM bytes written | weights = golden |",
             "|---|---|---:|---:|---:|---:|---:|---|"]
    for arch, r in rows.items():
        for mode in ("apart", "fused"):
            m = r[mode]
            ops = " ".join(m["backward_ops"])
            lines.append(f"| `{arch}` {mode} | {ops} | {m['device_cycles']:,} | {m['engine_busy'].get('bp_busy', 0):,} | "
                         f"{m['engine_busy'].get('wg_busy', 0):,} | {m['dram_bytes_read']:,} | "
                         f"{m['dram_bytes_written']:,} | {'yes' if m['weights_sha256'] == r['golden'] else 'NO'} |")
        f, a = r["fused"], r["apart"]
        lines.append(f"| `{arch}` fused / apart | | {f['device_cycles'] / a['device_cycles']:.3f}× | | | "
                     f"{f['dram_bytes_read'] / a['dram_bytes_read']:.3f}× | "
                     f"{f['dram_bytes_written'] / a['dram_bytes_written']:.3f}× | |")
    lines += ["", "Each `BPWG` of the step as a program of its own (SoC cycles from the queued start to "
              "the drained queue, the descriptor fetch and parameter header included), against its BP "
              "and its WG alone and one after the other (`descriptors.split_bpwg`):", "",
              "| network | layer | BP alone | WG alone | BP then WG | BPWG | BPWG / (BP then WG) | BPWG / max(BP, WG) |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for arch, r in rows.items():
        for c in r["layers"]:
            lines.append(f"| `{arch}` | {c['tag']} | {c['bp']:,} | {c['wg']:,} | {c['bp_then_wg']:,} | {c['bpwg']:,} | "
                         f"{c['bpwg'] / c['bp_then_wg']:.3f} | {c['bpwg'] / max(c['bp'], c['wg']):.3f} |")
    lines += ["", "Reproduce: `python bench/bpwg_sim.py`.", ""]
    write_report(args.out, {"config": vars(args) | {"out": str(args.out)}, "rows": rows}, "\n".join(lines))


if __name__ == "__main__":
    main()
