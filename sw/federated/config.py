"""Settings of a federated run, shared by the orchestrator, the ServerApp and the ClientApps.

:class:`FedConfig` is written once by ``trident fed`` (into the run directory and into the
Flower App's run configuration), read by the ServerApp, and sent to every ClientApp inside
each training message, so a worker needs nothing but its own partition id to take part.

Members
-------
FedConfig
    Every setting of a federated run (``asdict`` of it is stored in the report).
STRATEGIES
    ``fedavg``, ``fedprox``.
parse_partition(spec) -> (kind, alpha)
    ``"iid"`` or ``"dirichlet:ALPHA"``.
Fault, parse_fault(text)
    The fault-injection hooks used by tests and demos (``WORKER:KIND@ROUND``).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields

from trident.sw.runtime import TrainConfig

__all__ = ["FedConfig", "STRATEGIES", "FAULT_KINDS", "Fault", "parse_partition", "parse_fault"]

STRATEGIES = ("fedavg", "fedprox")
FAULT_KINDS = ("kill", "nan", "inf", "shape", "crash", "hang")


def parse_partition(spec: str) -> tuple[str, float | None]:
    """``"iid"`` → ``("iid", None)``; ``"dirichlet:0.5"`` → ``("dirichlet", 0.5)``."""
    text = spec.strip().lower()
    if text == "iid":
        return "iid", None
    if text.startswith("dirichlet:"):
        try:
            alpha = float(text.split(":", 1)[1])
        except ValueError:
            alpha = float("nan")
        if not (math.isfinite(alpha) and alpha > 0):
            raise ValueError(f"partition {spec!r}: the Dirichlet concentration must be a number > 0, "
                             f"e.g. dirichlet:0.5")
        return "dirichlet", alpha
    raise ValueError(f"unknown partition {spec!r}; use iid or dirichlet:ALPHA (e.g. dirichlet:0.5)")


@dataclass(frozen=True)
class Fault:
    """An injected fault: worker ``worker`` does ``kind`` in round ``round``.

    ``kill``  — the orchestrator SIGKILLs the worker's SuperNode (its whole process group) as
    soon as the worker starts training in that round, then restarts it (the worker rejoins);
    ``nan`` / ``inf`` — the worker sends an update with NaN / +inf values;
    ``shape`` — the worker sends an update whose first array has a wrong shape;
    ``crash`` — the ClientApp raises (Flower returns an error reply);
    ``hang`` — the ClientApp sleeps past the round timeout before replying.
    """

    worker: int
    kind: str
    round: int

    def __str__(self) -> str:
        return f"{self.worker}:{self.kind}@{self.round}"


def parse_fault(text: str) -> Fault:
    """Parse ``WORKER:KIND@ROUND`` (e.g. ``2:kill@3``)."""
    try:
        worker, rest = text.split(":", 1)
        kind, rnd = rest.split("@", 1)
        fault = Fault(int(worker), kind.strip().lower(), int(rnd))
    except ValueError:
        raise ValueError(f"cannot parse fault {text!r}; expected WORKER:KIND@ROUND, e.g. 2:kill@3") from None
    if fault.kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind {fault.kind!r} in {text!r}; valid: {', '.join(FAULT_KINDS)}")
    if fault.worker < 0 or fault.round < 1:
        raise ValueError(f"fault {text!r}: worker must be ≥ 0 and round ≥ 1")
    return fault


@dataclass
class FedConfig:
    """Settings of one federated run.

    Federation: ``workers`` (SuperNodes, one data partition each), ``rounds``,
    ``local_epochs`` (passes over its partition per round), ``strategy`` and ``mu`` (FedProx's
    proximal weight), ``min_workers`` (the fewest valid updates a round needs to change the
    global model), ``round_timeout`` (seconds the server waits for replies),
    ``startup_timeout`` (seconds it waits for all workers before round 1), ``partition``,
    ``device`` (every worker's, and the server's evaluation) and ``worker_devices``
    (``"W:DEVICE,…"``: workers on another device, e.g. ``"2:sim"``).
    Device and model: the rest mirrors :class:`trident.sw.runtime.TrainConfig`; the golden
    device trains with the hardware-exact FP16 kernels, which implement the detached reset.
    """

    workers: int = 5
    rounds: int = 10
    local_epochs: int = 5
    strategy: str = "fedavg"
    mu: float = 0.0
    min_workers: int = 1
    round_timeout: float = 120.0
    startup_timeout: float = 180.0
    partition: str = "iid"
    device: str = "golden"
    worker_devices: str = ""
    dataset: str = "digits"
    model: str = "mlp"
    neuron: str = "lif"
    surrogate: str = "sigmoid"
    tau: float = 2.0
    v_threshold: float = 1.0
    reset: str = "hard"
    T: int = 8
    batch_size: int = 32
    lr: float = 0.2
    momentum: float = 0.9
    loss_scale: float = 1024.0
    seed: int = 0

    def validate(self) -> None:
        if self.workers < 1:
            raise ValueError(f"--workers must be at least 1, got {self.workers}")
        for name in ("rounds", "local_epochs", "batch_size", "T"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {self.strategy!r}; valid choices: {', '.join(STRATEGIES)}")
        if not (math.isfinite(self.mu) and self.mu >= 0):
            raise ValueError(f"--mu must be ≥ 0, got {self.mu}")
        if self.strategy == "fedavg" and self.mu:
            raise ValueError("--mu is FedProx's proximal weight; use --strategy fedprox with it")
        if not 1 <= self.min_workers <= self.workers:
            raise ValueError(f"--min-workers must be between 1 and --workers ({self.workers}), "
                             f"got {self.min_workers}")
        if not self.round_timeout > 0 or not self.startup_timeout > 0:
            raise ValueError("--round-timeout and the startup timeout must be > 0 seconds")
        parse_partition(self.partition)
        for worker in self.worker_device_map():
            if not 0 <= worker < self.workers:
                raise ValueError(f"--worker-device {worker}:…: there are workers 0..{self.workers - 1}")
        self.train_config().validate()

    def worker_device_map(self) -> dict[int, str]:
        """``worker_devices`` parsed: ``{worker: device}``."""
        out = {}
        for item in filter(None, (t.strip() for t in self.worker_devices.split(","))):
            worker, sep, device = item.partition(":")
            if not sep or not worker.strip().isdigit() or not device.strip():
                raise ValueError(f"worker device {item!r}: expected WORKER:DEVICE, e.g. 2:sim")
            out[int(worker)] = device.strip()
        return out

    def device_of(self, worker: int) -> str:
        """The device worker ``worker`` trains on."""
        return self.worker_device_map().get(worker, self.device)

    def train_config(self, epochs: int | None = None) -> TrainConfig:
        """The equivalent centralised run's settings (``epochs`` defaults to rounds × local epochs)."""
        return TrainConfig(dataset=self.dataset, model=self.model, neuron=self.neuron, surrogate=self.surrogate,
                           tau=self.tau, v_threshold=self.v_threshold, reset=self.reset, detach_reset=True,
                           T=self.T, epochs=epochs or self.rounds * self.local_epochs,
                           batch_size=self.batch_size, lr=self.lr, optimizer="sgd", momentum=self.momentum,
                           loss_scale=self.loss_scale, seed=self.seed, precision="fp16-hw", device="golden")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "FedConfig":
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown federated settings: {', '.join(sorted(unknown))}")
        return cls(**data)
