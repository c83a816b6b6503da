"""``trident fed``: federated on-edge training across workers with Flower.

Wire into the ``trident`` command with ``add_fed_parser(subparsers)``; the parser sets
``handler`` (``fn(args) -> exit code``).
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import fields
from pathlib import Path

__all__ = ["add_fed_parser", "fed_config", "run_fed"]


def add_fed_parser(subparsers) -> argparse.ArgumentParser:
    from .config import FedConfig
    from .devices import DEVICES

    d = FedConfig()
    p = subparsers.add_parser(
        "fed", help="federated training across workers (Flower)",
        description="Federated training of a spiking network across workers, each a Flower SuperNode "
                    "training on its own device and data partition, coordinated by a SuperLink on "
                    "127.0.0.1. Every process is started and stopped by this command.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    fed = p.add_argument_group("federation")
    fed.add_argument("--workers", type=int, default=d.workers, help="number of workers (SuperNodes)")
    fed.add_argument("--rounds", type=int, default=d.rounds, help="federated rounds")
    fed.add_argument("--local-epochs", type=int, default=d.local_epochs, help="epochs over its partition per round")
    fed.add_argument("--strategy", default=d.strategy, choices=("fedavg", "fedprox"), help="server strategy")
    fed.add_argument("--mu", type=float, default=None,
                     help="FedProx proximal weight μ (default 0.01 with --strategy fedprox)")
    fed.add_argument("--partition", default=d.partition, help="iid or dirichlet:ALPHA (non-IID by label)")
    fed.add_argument("--min-workers", type=int, default=d.min_workers,
                     help="fewest valid updates that change the global model in a round")
    fed.add_argument("--round-timeout", type=float, default=d.round_timeout, metavar="S",
                     help="seconds the server waits for replies in a round")
    fed.add_argument("--startup-timeout", type=float, default=d.startup_timeout, metavar="S",
                     help="seconds the server waits for all workers before round 1")
    fed.add_argument("--device", default=d.device, choices=list(DEVICES),
                     help="golden: hardware-exact FP16 device model; sim: the SoC RTL in Verilator; "
                          "board: not available yet")
    fed.add_argument("--worker-device", dest="worker_devices", action="append", default=[],
                     metavar="WORKER:DEVICE", help="put one worker on another device, e.g. 2:sim (repeatable)")
    sec = p.add_argument_group("deployment")
    sec.add_argument("--run-dir", default=None, metavar="DIR",
                     help="where every process writes (default runs/fed-YYYYmmdd-HHMMSS); must be empty")
    sec.add_argument("--tls", action="store_true", help="TLS on every API (CA and certificate generated into DIR)")
    sec.add_argument("--auth", action="store_true",
                     help="SuperNode authentication: the SuperLink accepts only the registered worker keys")
    sec.add_argument("--port", type=int, default=None, metavar="BASE",
                     help="SuperLink on BASE, SuperNodes on BASE+1… (default: free ports)")
    sec.add_argument("--max-restarts", type=int, default=3,
                     help="restarts of a SuperNode that died (it rejoins the federation)")
    sec.add_argument("--rejoin-delay", type=float, default=1.0, metavar="S",
                     help="seconds before a dead SuperNode is restarted")
    sec.add_argument("--rejoin-window", type=float, default=120.0, metavar="S",
                     help="how long a SuperNode the SuperLink refuses is retried before the worker is given up")
    sec.add_argument("--inject-fault", action="append", default=[], metavar="WORKER:KIND@ROUND",
                     help="testing: kill (SIGKILL the SuperNode mid-round, then restart it), nan, inf, shape "
                          "(corrupt update), crash (ClientApp raises), hang (no reply before the timeout)")
    model = p.add_argument_group("model and local training (as trident train)")
    model.add_argument("--dataset", default=d.dataset)
    model.add_argument("--model", default=d.model)
    model.add_argument("--neuron", default=d.neuron)
    model.add_argument("--surrogate", default=d.surrogate)
    model.add_argument("--tau", type=float, default=d.tau)
    model.add_argument("--v-threshold", type=float, default=d.v_threshold)
    model.add_argument("--reset", default=d.reset, choices=("hard", "soft"))
    model.add_argument("--T", "-T", dest="T", type=int, default=d.T)
    model.add_argument("--batch", dest="batch_size", type=int, default=d.batch_size)
    model.add_argument("--lr", type=float, default=d.lr)
    model.add_argument("--momentum", type=float, default=d.momentum)
    model.add_argument("--loss-scale", type=float, default=d.loss_scale)
    model.add_argument("--seed", type=int, default=d.seed)
    out = p.add_argument_group("output")
    out.add_argument("--report", default=None, metavar="FILE.json")
    out.add_argument("--plot", default=None, metavar="FILE.png", help="accuracy per round (default DIR/accuracy.png)")
    out.add_argument("--quiet", action="store_true")
    p.set_defaults(handler=run_fed)
    return p


def fed_config(args):
    """The :class:`~.config.FedConfig` of parsed ``trident fed`` arguments (raises ValueError)."""
    from .config import FedConfig
    values = {f.name: getattr(args, f.name) for f in fields(FedConfig) if hasattr(args, f.name)}
    values["worker_devices"] = ",".join(values.get("worker_devices") or [])
    if values.get("mu") is None:
        values["mu"] = 0.01 if args.strategy == "fedprox" else 0.0
    return FedConfig(**values)


def run_fed(args) -> int:
    from .config import FedConfig, parse_fault
    from .devices import DeviceUnavailableError
    from .orchestrator import FedOptions, Federation, FederationError, FederationInterrupted
    from .report import summary_rows

    prog = "trident fed"
    try:
        cfg = fed_config(args)
        faults = [parse_fault(t) for t in args.inject_fault]
        run_dir = Path(args.run_dir or Path("runs") / time.strftime("fed-%Y%m%d-%H%M%S"))
        options = FedOptions(run_dir=run_dir, report=Path(args.report) if args.report else None,
                             plot=Path(args.plot) if args.plot else None, tls=args.tls, auth=args.auth,
                             faults=faults, rejoin_delay=args.rejoin_delay, max_restarts=args.max_restarts,
                             rejoin_window=args.rejoin_window,
                             base_port=args.port, progress=not args.quiet)
        report = Federation(cfg, options).run()
    except (FederationInterrupted, KeyboardInterrupt) as exc:
        print(f"\n{prog}: interrupted ({exc or 'SIGINT'}); every federation process was stopped", file=sys.stderr)
        return 130
    except DeviceUnavailableError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, FederationError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ValueError) else 1
    if not args.quiet:
        rows = summary_rows(report)
        width = max(len(k) for k, _ in rows)
        rule = "─" * (width + 3 + max(len(v) for _, v in rows))
        print(rule)
        for key, value in rows:
            print(f"{key:<{width}} │ {value}")
        print(rule)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Standalone entry (``python -m trident.sw.federated.cli``) until ``trident`` wires it."""
    parser = argparse.ArgumentParser(prog="trident")
    sub = parser.add_subparsers(dest="command", required=True)
    add_fed_parser(sub)
    args = parser.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
