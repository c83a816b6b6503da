"""``trident convert``: dual-phase ANN→SNN conversion from the command line.

The ``trident`` command (``trident.sw.cli``) calls :func:`add_convert_parser`; its handler
:func:`run_convert` returns the exit code (0 ok, 2 bad input).  ``python -m
trident.golden.conversion.cli ...`` runs the same thing on its own.

Example::

    trident convert --model digits-cnn --T 1,2,4,8 --report runs/convert.json
"""
from __future__ import annotations

import argparse
import json
import sys

__all__ = ["add_convert_parser", "run_convert", "main", "parse_T_list"]


def parse_T_list(text: str) -> tuple[int, ...]:
    """``"1,2,4"`` → ``(1, 2, 4)``; ``argparse.ArgumentTypeError`` for anything else."""
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}")
    return values


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def add_convert_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``convert`` subcommand to an argparse ``subparsers`` object."""
    from .ann import PRESETS
    from .pipeline import ConversionConfig
    from .quantize import FIRE_RULES
    from .snn import OFFSETS
    from .calibrate import GRANULARITIES, ORDERS
    from .snn import SURROGATE_SCALES

    d = ConversionConfig()
    p = subparsers.add_parser(
        "convert", help="ANN→SNN conversion (dual-phase, with a max-norm baseline)",
        description="Train an ANN with learnable clipping (or load one), fold BatchNorm, fine-tune with noisy "
                    "quantization (Phase I), convert to IF neurons, calibrate layer by layer (Phase II) and "
                    "evaluate at each T; also the plain max-norm conversion. Writes a JSON report.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = p.add_argument_group("data and model")
    g.add_argument("--dataset", default=d.dataset, help="a static dataset (digits)")
    g.add_argument("--model", default=d.model,
                   help=f"a preset ({', '.join(PRESETS)}) or a description such as 'fc256,bn,fc128' "
                        "(avgpool only: max pooling does not convert)")
    g.add_argument("--T", "-T", dest="T", type=parse_T_list, default=",".join(map(str, d.T)),
                   help="time steps to evaluate, comma-separated")
    g.add_argument("--seed", type=int, default=d.seed)
    g.add_argument("--ann", metavar="FILE.pt", default=None,
                   help="load this ANN (written by --save-ann) instead of training one")
    g.add_argument("--save-ann", metavar="FILE.pt", default=None, help="save the trained, BN-folded ANN")
    g = p.add_argument_group("phase 0: ANN training")
    g.add_argument("--epochs", type=int, default=d.epochs)
    g.add_argument("--batch", dest="batch_size", type=_positive_int, default=d.batch_size)
    g.add_argument("--lr", type=float, default=d.lr)
    g.add_argument("--weight-decay", type=float, default=d.weight_decay)
    g.add_argument("--theta-init", type=float, default=d.theta_init, help="initial clipping level θ")
    g.add_argument("--theta-lr", type=float, default=None, help="learning rate of θ (default: --lr)")
    g = p.add_argument_group("phase I: noisy quantization")
    g.add_argument("--noise-p", type=float, default=d.noise_p, help="probability an element is not rounded")
    g.add_argument("--finetune-epochs", type=int, default=d.finetune_epochs)
    g.add_argument("--finetune-lr", type=float, default=d.finetune_lr)
    g.add_argument("--finetune-theta-lr", type=float, default=d.finetune_theta_lr, help="learning rate of θ")
    g.add_argument("--finetune-T", type=_positive_int, default=None,
                   help="fine-tune once at this T for every evaluated T (default: at each T)")
    g = p.add_argument_group("conversion")
    g.add_argument("--offset", choices=OFFSETS, default=d.offset,
                   help="rounding offset: initial potential θ/2, per-step input θ/(2T), or none")
    g.add_argument("--fire", choices=FIRE_RULES, default=d.fire, help="strict: U > θ; geq: U ≥ θ")
    g.add_argument("--alpha-init", type=float, default=d.alpha_init, help="tanh surrogate sharpness")
    g.add_argument("--no-detach-reset", dest="detach_reset", action="store_false",
                   help="let weight-calibration gradients flow through the soft reset")
    g.add_argument("--surrogate-scale", choices=SURROGATE_SCALES, default=d.surrogate_scale,
                   help="surrogate argument (H − θ)/θ (threshold) or H − θ (absolute)")
    g = p.add_argument_group("phase II: calibration")
    g.add_argument("--calib-samples", type=_positive_int, default=d.calib_samples,
                   help="training samples used to calibrate")
    g.add_argument("--calib-val-samples", type=int, default=d.calib_val_samples,
                   help="further training samples for early stopping of weight calibration")
    g.add_argument("--calib-steps", default=d.calib_steps, help="a = potential, b = weight calibration")
    g.add_argument("--calib-order", choices=ORDERS, default=d.calib_order,
                   help="step: each step over all layers; layer: all steps on one layer, then the next")
    g.add_argument("--calib-epochs", type=int, default=d.calib_epochs, help="max epochs per weight calibration")
    g.add_argument("--calib-batch", type=_positive_int, default=d.calib_batch)
    g.add_argument("--calib-lr", type=float, default=d.calib_lr)
    g.add_argument("--calib-alpha-lr", type=float, default=d.calib_alpha_lr)
    g.add_argument("--calib-weight-decay", type=float, default=d.calib_weight_decay)
    g.add_argument("--calib-patience", type=_positive_int, default=d.calib_patience)
    g.add_argument("--calib-temperature", type=float, default=d.calib_temperature)
    g.add_argument("--calib-granularity", choices=GRANULARITIES, default=d.calib_granularity)
    g.add_argument("--no-keep-best", dest="calib_keep_best", action="store_false",
                   help="keep every calibration pass even if the validation KL got worse")
    g = p.add_argument_group("baseline and output")
    g.add_argument("--no-baseline", dest="baseline", action="store_false", help="skip max-norm conversion")
    g.add_argument("--baseline-percentile", type=float, default=d.baseline_percentile,
                   help="max-norm threshold: this percentile of positive activations (100 = max)")
    g.add_argument("--report", metavar="FILE.json", default=None, help="write the JSON report here")
    g.add_argument("--json", action="store_true", help="print the JSON report to stdout")
    g.add_argument("--quiet", action="store_true", help="no progress lines")
    g.add_argument("--threads", type=_positive_int, default=None,
                   help="torch intra-op threads (default: torch's choice; 1 is often fastest for these small nets)")
    p.set_defaults(handler=run_convert)
    return p


def run_convert(args) -> int:
    """Handler of ``trident convert``: returns 0, or 2 with a message for bad input."""
    from dataclasses import fields

    from .pipeline import ConversionConfig, run_conversion

    if getattr(args, "threads", None):
        import torch
        torch.set_num_threads(args.threads)
    values = {f.name: getattr(args, f.name) for f in fields(ConversionConfig) if hasattr(args, f.name)}
    if isinstance(values.get("T"), str):
        values["T"] = parse_T_list(values["T"])
    try:
        config = ConversionConfig(**values)
        report = run_conversion(config, progress=not args.quiet,
                                log=lambda msg: print(msg, file=sys.stderr if args.json else sys.stdout))
    except ValueError as exc:
        print(f"trident convert: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ntrident convert: interrupted", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_table(report)
    return 0


def _print_table(report: dict) -> None:
    has_base = report["baseline_ann_accuracy"] is not None
    print(f"ANN {report['architecture']}: {100 * report['ann_accuracy']:.2f} %"
          + (f"   ReLU ANN (max-norm baseline): {100 * report['baseline_ann_accuracy']:.2f} %" if has_base else ""))
    head = f"{'T':>4} {'quant. ANN':>10} {'converted':>10} {'dual-phase':>10}" + (f" {'max-norm':>9}" if has_base else "")
    print(head)
    for row in report["results"]:
        line = (f"{row['T']:>4} {100 * row['quantized_ann']:>10.2f} {100 * row['converted']:>10.2f} "
                f"{100 * row['dual_phase']:>10.2f}")
        if has_base:
            line += f" {100 * row['max_norm']:>9.2f}"
        print(line)
    if report["config"]["report"]:
        print(f"report: {report['config']['report']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="trident")
    add_convert_parser(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args = parser.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
