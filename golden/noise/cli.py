"""``trident noise-train``: noise-based single-step training vs BPTT, evaluated at several N.

Wire into the ``trident`` command with ``add_noise_train_parser(subparsers)`` (sets
``handler``, ``fn(args) -> int``).

    trident noise-train --model mlp2 --steps 1,2,4,8,16 --epochs 20 --report runs/noise.json
    trident noise-train --neuron lif --calibrate 8        # fit μ, σ to LIF's 8-step rate curve
"""
from __future__ import annotations

import argparse
import json
import sys

__all__ = ["add_noise_train_parser"]


def _steps(text: str) -> tuple:
    try:
        steps = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not steps or min(steps) < 1:
        raise argparse.ArgumentTypeError(f"steps must be positive, got {text!r}")
    return steps


def add_noise_train_parser(subparsers) -> None:
    from .neuron import NoiseConfig
    from .train import DEFAULT_STEPS, NoiseTrainConfig
    d, n = NoiseTrainConfig(), NoiseConfig()
    p = subparsers.add_parser("noise-train", help="noise-based single-step training, run as an N-step SNN",
                              description="Train with T = 1 on neurons that fire on a noisy potential, then run "
                                          "the weights as a deterministic N-step SNN; compare with BPTT at "
                                          "T = N (ALGORITHMS.md §6).",
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--dataset", default=d.dataset)
    p.add_argument("--model", default=d.model, help="network description or preset (mlp, mlp2, ...)")
    p.add_argument("--encoding", default=d.encoding, help="direct or rate")
    p.add_argument("--neuron", default=n.kind, choices=("if", "lif"))
    p.add_argument("--tau", type=float, default=n.tau)
    p.add_argument("--v-threshold", type=float, default=n.v_threshold)
    p.add_argument("--sigma", type=float, default=None, help="noise std (default V_th/sqrt(2 pi))")
    p.add_argument("--noise-mean", type=float, default=None, help="noise mean mu (default V_th/2; 0 = literal)")
    p.add_argument("--v-init", type=float, default=None, help="initial potential of the N-step SNN (default V_th/2)")
    p.add_argument("--calibrate", type=int, default=None, metavar="N",
                   help="fit mu and sigma to the deterministic neuron's N-step rate curve (overrides both)")
    p.add_argument("--surrogate", default=n.surrogate)
    p.add_argument("--surrogate-at", default=n.surrogate_at, choices=("noisy", "mean"))
    p.add_argument("--steps", type=_steps, default=DEFAULT_STEPS, help="N values, e.g. 1,2,4,8,16")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch", dest="batch_size", type=int, default=d.batch_size)
    p.add_argument("--optimizer", default=d.optimizer, choices=("sgd", "adam"))
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--train-limit", type=int, default=d.train_limit)
    p.add_argument("--no-bptt", dest="bptt", action="store_false", help="skip the BPTT baselines")
    p.add_argument("--no-ablations", dest="ablations", action="store_false",
                   help="skip the sigma = 0 and mu = 0 variants")
    p.add_argument("--report", default=None, metavar="FILE.json")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.set_defaults(handler=_run)


def _run(args) -> int:
    import torch

    from .neuron import NoiseConfig, calibrate_noise
    from .train import NoiseTrainConfig, compare
    torch.set_num_threads(max(1, args.threads))
    try:
        noise = NoiseConfig(kind=args.neuron, tau=args.tau, v_threshold=args.v_threshold, sigma=args.sigma,
                            noise_mean=args.noise_mean, v_init=args.v_init, surrogate=args.surrogate,
                            surrogate_at=args.surrogate_at)
        if args.calibrate:
            mu, sigma = calibrate_noise(noise, args.calibrate)
            noise = noise.with_(noise_mean=mu, sigma=sigma)
        config = NoiseTrainConfig(dataset=args.dataset, model=args.model, encoding=args.encoding, noise=noise,
                                  steps=args.steps, epochs=args.epochs, batch_size=args.batch_size,
                                  optimizer=args.optimizer, lr=args.lr, seed=args.seed, train_limit=args.train_limit,
                                  sigma_zero_ablation=args.ablations, literal_ablation=args.ablations,
                                  bptt=args.bptt)
        report = compare(config)
    except ValueError as exc:
        print(f"trident noise-train: error: {exc}", file=sys.stderr)
        return 2
    steps = report["steps"]
    print("accuracy at N steps (deterministic soft-reset SNN)")
    print(f"{'run':<10}{'train T':>8}{'time s':>9}" + "".join(f"{'N=' + str(s):>8}" for s in steps))
    for name, r in report["results"].items():
        cells = "".join(f"{r['accuracy'][s]:>8.4f}" if s in r["accuracy"] else f"{'':>8}" for s in steps)
        print(f"{name:<10}{r['train_T']:>8}{r['train_time_s']:>9.2f}{cells}")
    if "time_ratio_noise_vs_bptt" in report:
        print("train time noise / BPTT(T=N): " + ", ".join(f"N={s}: {v:.2f}" for s, v in
                                                          report["time_ratio_noise_vs_bptt"].items()))
    if args.report:
        from trident.atomic import atomic_write_text
        atomic_write_text(args.report, json.dumps(report, indent=2) + "\n")
    return 0
