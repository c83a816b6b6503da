"""The ``trident`` command.

Subcommands
-----------
train
    Train an SNN on a device (the golden model now) and write a JSON report.
build
    Build an FPGA bitstream with the open flow (``trident.fpga``).
convert
    Dual-phase ANN→SNN conversion (``trident.golden.conversion``).
quant4
    4-bit integer-only networks with shift batch-norm: train, export, integer evaluation.
noise-train
    Noise-based single-step training run as a multi-step SNN.
"""
from __future__ import annotations

import argparse
import sys

from trident.golden import surrogate
from trident.golden.network import PRESETS
from trident.golden.neurons import NEURON_KINDS

__all__ = ["main", "build_parser"]


def _add_train_parser(subparsers) -> None:
    from .runtime import DEVICES, PRECISIONS, TrainConfig
    d = TrainConfig()
    p = subparsers.add_parser("train", help="train a spiking network",
                              description="Train a spiking neural network with surrogate-gradient BPTT.",
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    data = p.add_argument_group("data")
    data.add_argument("--dataset", default=d.dataset,
                      help="digits, nmnist-synth (synthetic event digits), or nmnist / cifar10-dvs / "
                           "dvs-gesture read from --data-root")
    data.add_argument("--data-root", default=d.data_root, help="where datasets are read or generated")
    data.add_argument("--encoding", default=d.encoding, help="direct, rate or latency (static datasets)")
    data.add_argument("--train-limit", type=int, default=d.train_limit,
                      help="train on the first N training samples only")
    model = p.add_argument_group("model")
    model.add_argument("--model", "--preset", dest="model", default=d.model,
                       help=f"a preset ({', '.join(PRESETS)}) or a description such as 'fc256,fc128'")
    model.add_argument("--neuron", default=d.neuron, choices=NEURON_KINDS)
    model.add_argument("--surrogate", default=d.surrogate, help=f"one of {', '.join(surrogate.names())}")
    model.add_argument("--surrogate-alpha", type=float, default=d.surrogate_alpha)
    model.add_argument("--tau", type=float, default=d.tau)
    model.add_argument("--v-threshold", type=float, default=d.v_threshold)
    model.add_argument("--reset", default=d.reset, choices=("hard", "soft"))
    model.add_argument("--no-decay-input", dest="decay_input", action="store_false")
    model.add_argument("--detach-reset", action="store_true")
    model.add_argument("--T", "-T", dest="T", type=int, default=d.T, help="time steps")
    opt = p.add_argument_group("training")
    opt.add_argument("--epochs", type=int, default=d.epochs)
    opt.add_argument("--batch", dest="batch_size", type=int, default=d.batch_size)
    opt.add_argument("--lr", type=float, default=d.lr)
    opt.add_argument("--optimizer", default=d.optimizer, choices=("sgd", "adam"))
    opt.add_argument("--momentum", type=float, default=d.momentum)
    opt.add_argument("--k-lr-scale", type=float, default=d.k_lr_scale,
                     help="learning-rate multiplier of KLIF's k")
    opt.add_argument("--loss-scale", type=float, default=d.loss_scale,
                     help="fp16-hw: power-of-two scale of the output gradient")
    opt.add_argument("--seed", type=int, default=d.seed)
    opt.add_argument("--precision", default=d.precision, choices=PRECISIONS)
    opt.add_argument("--device", default=d.device, choices=DEVICES,
                     help="golden: the golden model in this process; golden-soc: the driver on the SoC's "
                          "register/memory model; sim: the SoC RTL in a simulator (fp16-hw only)")
    opt.add_argument("--cores", type=int, default=d.cores,
                     help="--device golden-soc/sim: cores the program is split across (bit-identical results)")
    opt.add_argument("--simulator", default=d.simulator, choices=("verilator", "icarus"),
                     help="--device sim: which simulator runs the RTL")
    opt.add_argument("--dram", default=d.dram, choices=("bram", "axi"),
                     help="--device sim: the SoC's DRAM: block RAM inside, or its AXI4 port in bursts "
                          "with cocotbext-axi's AxiRam behind it (same results, other cycle counts)")
    opt.add_argument("--threads", type=int, default=d.threads,
                     help="torch intra-op threads (default: torch's choice); 1 is often fastest on a "
                          "busy machine")
    out = p.add_argument_group("output")
    out.add_argument("--report", default=d.report, metavar="FILE.json")
    out.add_argument("--plot", default=d.plot, metavar="FILE.png", help="training-curve plot")
    out.add_argument("--checkpoint", default=d.checkpoint, metavar="DIR",
                     help="run directory: a checkpoint is written there after every epoch")
    out.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every, metavar="STEPS",
                     help="also checkpoint every STEPS optimisation steps")
    out.add_argument("--resume", action="store_true", help="continue the run saved in --checkpoint")
    out.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_run_train)


def _run_train(args) -> int:
    from dataclasses import fields

    from .checkpoint import CheckpointError
    from .runtime import TrainConfig, TrainingError, train

    config = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})
    try:
        report = train(config, progress=not args.quiet)
    except KeyboardInterrupt:
        where = f"; resume with --resume --checkpoint {config.checkpoint}" if config.checkpoint else ""
        print(f"\ntrident train: interrupted{where}", file=sys.stderr)
        return 130
    except (ValueError, TrainingError, CheckpointError) as exc:
        print(f"trident train: error: {exc}", file=sys.stderr)
        return 2
    _print_summary(report)
    return 0


def _print_summary(report: dict) -> None:
    c = report["config"]
    rows = [
        ("dataset", f"{c['dataset']} ({report['train_samples']} train / {report['test_samples']} test)"),
        ("model", f"{c['model']} · {c['neuron']} · {c['surrogate']} · T={c['T']}"),
        ("device / precision", f"{report['device']} / {report['precision']}"),
        ("epochs", str(c["epochs"])),
        ("test accuracy", f"{report['test_accuracy']:.4f}"),
        ("train accuracy", f"{report['train_accuracy']:.4f}"),
        ("train time", f"{report['train_time_s']:.1f} s"),
        ("throughput", f"{report['samples_per_s']:.0f} samples/s"),
        ("weights sha256", report["weights_sha256"][:16] + "…"),
    ]
    figures = report.get("device_figures")
    if figures:
        rows.append(("device cycles / step", f"{figures['device_cycles_per_step']:.0f}"))
        rows.append(("DRAM bytes / step", f"{figures['dram_bytes_per_step']:.0f}"))
    if report["klif_k"]:
        rows.append(("KLIF k per layer", ", ".join(f"{k:.3f}" for k in report["klif_k"])))
    if c["report"]:
        rows.append(("report", c["report"]))
    width = max(len(k) for k, _ in rows)
    rule = "─" * (width + 3 + max(len(v) for _, v in rows))
    print(rule)
    for key, value in rows:
        print(f"{key:<{width}} │ {value}")
    print(rule)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trident", description="Trident: train SNNs on an open accelerator.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train_parser(subparsers)
    from trident.fpga.cli import add_build_parser
    from trident.sw.federated.cli import add_fed_parser
    from trident.golden.conversion.cli import add_convert_parser
    from trident.golden.noise.cli import add_noise_train_parser
    from trident.golden.quant.cli import add_quant4_parser
    from trident.rtl.soc.cli import add_regmap_parser
    add_build_parser(subparsers)
    add_convert_parser(subparsers)
    add_quant4_parser(subparsers)
    add_noise_train_parser(subparsers)
    add_fed_parser(subparsers)
    add_regmap_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
