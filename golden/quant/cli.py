"""``trident quant4``: train a 4-bit shift-BN network, export its integer tables, run them.

Wire into the ``trident`` command with ``add_quant4_parser(subparsers)``; each subcommand
sets ``handler`` (``fn(args) -> int``).

    trident quant4 train --model cnn --epochs 40 --export runs/q4-cnn --report runs/q4-cnn.json
    trident quant4 eval runs/q4-cnn            # integer-only accuracy from the exported tables
"""
from __future__ import annotations

import argparse
import json
import sys
import time

__all__ = ["add_quant4_parser"]


def add_quant4_parser(subparsers) -> None:
    from .train import QuantTrainConfig
    d = QuantTrainConfig()
    p = subparsers.add_parser("quant4", help="4-bit integer-only networks with shift batch-norm",
                              description="Train, export and run 4-bit integer-only networks with shift "
                                          "batch-normalisation (ALGORITHMS.md §5).")
    sub = p.add_subparsers(dest="quant4_command", required=True, metavar="ACTION")

    t = sub.add_parser("train", help="train the float baseline and the n-bit network",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    t.add_argument("--dataset", default=d.dataset, help="a static dataset (digits)")
    t.add_argument("--model", default=d.model, help="mlp, cnn, or a description such as 'fc256' or "
                                                    "'conv16k3p1,maxpool2'")
    t.add_argument("--bits", type=int, default=d.bits, help="weight and activation bit width")
    t.add_argument("--signed", dest="signed_activations", action="store_true",
                   help="signed hidden activations [-(2^(n-1)-1), 2^(n-1)-1] instead of unsigned [0, 2^n-1]")
    t.add_argument("--epochs", type=int, default=d.epochs)
    t.add_argument("--batch", dest="batch_size", type=int, default=d.batch_size)
    t.add_argument("--lr", type=float, default=d.lr, help="Adam rate of the n-bit network (integer units)")
    t.add_argument("--float-lr", type=float, default=d.float_lr, help="Adam rate of the float baseline")
    t.add_argument("--seed", type=int, default=d.seed)
    t.add_argument("--train-limit", type=int, default=d.train_limit)
    t.add_argument("--no-float", dest="float_baseline", action="store_false", help="skip the float baseline")
    t.add_argument("--export", default=d.export, metavar="DIR", help="write the integer tables here")
    t.add_argument("--report", default=None, metavar="FILE.json")
    t.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    t.set_defaults(handler=_run_train)

    e = sub.add_parser("eval", help="integer-only inference from exported tables")
    e.add_argument("export_dir", metavar="DIR")
    e.add_argument("--dataset", default="digits")
    e.set_defaults(handler=_run_eval)


def _run_train(args) -> int:
    import torch

    from .train import QuantTrainConfig, train_quant
    torch.set_num_threads(max(1, args.threads))
    config = QuantTrainConfig(dataset=args.dataset, model=args.model, bits=args.bits,
                              signed_activations=args.signed_activations, epochs=args.epochs,
                              batch_size=args.batch_size, lr=args.lr, float_lr=args.float_lr, seed=args.seed,
                              train_limit=args.train_limit, float_baseline=args.float_baseline,
                              export=args.export)
    try:
        report = train_quant(config)
    except ValueError as exc:
        print(f"trident quant4: error: {exc}", file=sys.stderr)
        return 2
    if "float" in report:
        print(f"float     test accuracy {report['float']['test_accuracy']:.4f}  "
              f"[{report['float']['train_time_s']:.1f} s]")
    print(f"{config.bits}-bit     test accuracy {report['quant']['test_accuracy']:.4f}  "
          f"[{report['quant']['train_time_s']:.1f} s]")
    i = report["integer"]
    print(f"integer   test accuracy {i['test_accuracy']:.4f}  bit-identical to fake-quant: {i['bit_identical']}")
    if "export" in report:
        print(f"exported  {report['export']['manifest']}  reload identical: {report['export']['reload_identical']}")
    if args.report:
        from trident.atomic import atomic_write_text
        atomic_write_text(args.report, json.dumps(report, indent=2, default=str) + "\n")
    ok = i["bit_identical"] and report.get("export", {}).get("reload_identical", True)
    return 0 if ok else 1


def _run_eval(args) -> int:
    import numpy as np

    from ..data import load_dataset
    from .export import ExportError, load_export
    from .integer import quantize_input
    try:
        model = load_export(args.export_dir)
    except (ExportError, OSError) as exc:
        print(f"trident quant4 eval: error: {exc}", file=sys.stderr)
        return 2
    data = load_dataset(args.dataset, 1)
    x = quantize_input(data.x_test)
    start = time.perf_counter()
    pred = model.predict(x)
    elapsed = time.perf_counter() - start
    acc = float(np.mean(pred == data.y_test.numpy()))
    print(f"integer-only inference: {len(x)} test samples, accuracy {acc:.4f} [{elapsed:.2f} s]")
    return 0
