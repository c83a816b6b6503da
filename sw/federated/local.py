"""What a worker and the server compute, without any Flower in between.

The ClientApp and the ServerApp are thin adapters around these functions, and
:func:`simulate` runs the same rounds in one process (tests use it to check that the
deployment runtime changes nothing: a deployed run with full participation ends with the
same ``weights_sha256``).

Determinism
-----------
- The initial global model is the one ``trident train`` starts from with the same seed
  (``torch.manual_seed(seed)`` before building the network), so centralised and federated
  runs start from the same weights.
- Worker ``k`` in round ``r`` shuffles its partition with a generator seeded from
  ``SeedSequence([seed, k, r])``; encoding uses a second generator from
  ``SeedSequence([seed, k, r, 1])`` (the default ``direct`` encoding draws nothing).
- A worker starts every round from the global model with a fresh optimiser state (momentum
  buffers at zero): workers keep nothing between rounds.
- Server-side evaluation is ``trident.sw.runtime``'s test-set evaluation (batch 256, encoding
  seed ``seed + 3``), on the golden device.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from trident.golden.data import load_dataset
from trident.golden.network import SpikingNetwork
from trident.golden.training import weights_sha256
from trident.sw.runtime import SequenceInputs, evaluate

from .aggregate import fedavg_exact
from .config import FedConfig
from .devices import make_device
from .partition import make_partition

__all__ = ["FedData", "load_fed_data", "build_device", "initial_weights", "local_train", "GlobalEvaluator",
           "global_sha256", "simulate"]


@dataclass
class FedData:
    dataset: object
    parts: list[np.ndarray]


@lru_cache(maxsize=4)
def _load(dataset: str, T: int, seed: int):
    return load_dataset(dataset, T, seed=seed)


def load_fed_data(cfg: FedConfig) -> FedData:
    """The dataset and every worker's partition of its training split."""
    data = _load(cfg.dataset, cfg.T, cfg.seed)
    return FedData(data, make_partition(cfg.partition, data.y_train, cfg.workers, cfg.seed))


def build_device(cfg: FedConfig, data, device: str | None = None):
    """A device (``cfg.device`` unless named) holding the model every run of these settings
    starts from."""
    tc = cfg.train_config()
    torch.manual_seed(cfg.seed)
    model = SpikingNetwork(tc.model, data.input_shape, data.n_classes, tc.neuron_config())
    return make_device(device or cfg.device, model, tc)


def initial_weights(cfg: FedConfig, data=None) -> dict[str, np.ndarray]:
    data = data if data is not None else _load(cfg.dataset, cfg.T, cfg.seed)
    return build_device(cfg, data).get_weights()


def global_sha256(weights: dict[str, np.ndarray]) -> str:
    """``golden.training.weights_sha256`` of named numpy arrays (binary16 for the golden device)."""
    return weights_sha256({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in weights.items()})


def _generator(*key: int) -> torch.Generator:
    state = np.random.SeedSequence([int(k) for k in key]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def local_train(cfg: FedConfig, worker: int, server_round: int, global_weights: dict[str, np.ndarray],
                mu: float = 0.0, fed_data: FedData | None = None) -> tuple[dict[str, np.ndarray], dict]:
    """Train worker ``worker``'s device for ``cfg.local_epochs`` epochs from ``global_weights``.

    Returns the new weights and the metrics the worker reports (``num-examples`` = its
    partition size, the aggregation weight).
    """
    if not 0 <= worker < cfg.workers:
        raise ValueError(f"worker id {worker} is outside 0..{cfg.workers - 1}")
    fed_data = fed_data or load_fed_data(cfg)
    data = fed_data.dataset
    index = torch.from_numpy(fed_data.parts[worker])
    x, y = data.x_train[index], data.y_train[index]
    tc = cfg.train_config()
    inputs = SequenceInputs(data, tc)
    device = build_device(cfg, data, cfg.device_of(worker))
    try:
        return _train_on(device, cfg, worker, server_round, global_weights, mu, x, y, inputs)
    finally:
        if hasattr(device, "close"):          # a simulator: stop it with the round
            device.close()


def _train_on(device, cfg, worker, server_round, global_weights, mu, x, y, inputs):
    device.set_weights(global_weights)
    device.begin_round(mu)
    shuffle = _generator(cfg.seed, worker, server_round)
    encode = _generator(cfg.seed, worker, server_round, 1)
    n = len(x)
    loss_sum, correct, seen, steps = 0.0, 0, 0, 0
    start = time.perf_counter()
    for _ in range(cfg.local_epochs):
        perm = torch.randperm(n, generator=shuffle)
        for b in range(0, n, cfg.batch_size):
            idx = perm[b:b + cfg.batch_size]
            loss, logits = device.train_step(inputs(x[idx], encode), y[idx])
            loss_sum += float(loss) * len(idx)
            correct += int((logits.argmax(1) == y[idx]).sum())
            seen += len(idx)
            steps += 1
    train_time = time.perf_counter() - start
    metrics = {"num-examples": int(n), "worker-id": int(worker), "train-loss": loss_sum / max(seen, 1),
               "train-accuracy": correct / max(seen, 1), "train-time-s": train_time, "steps": steps,
               "overflow-steps": int(getattr(device, "overflow_steps", 0))}
    return device.get_weights(), metrics


class GlobalEvaluator:
    """Accuracy of a global model on the test split, on the golden device."""

    def __init__(self, cfg: FedConfig):
        self.cfg = cfg
        self.data = _load(cfg.dataset, cfg.T, cfg.seed)
        self.inputs = SequenceInputs(self.data, cfg.train_config())
        self.device = build_device(cfg, self.data)

    def __call__(self, weights: dict[str, np.ndarray]) -> float:
        self.device.set_weights(weights)
        return evaluate(self.device, self.inputs, self.data.x_test, self.data.y_test, 256, self.cfg.seed + 3)


def simulate(cfg: FedConfig, participants=None, progress=None) -> dict:
    """All rounds in this process: every worker trains, exact FedAvg, server-side evaluation.

    ``participants(round) -> list of worker ids`` restricts who takes part (default: all).
    Returns ``{"history": [...], "weights": {...}, "weights_sha256": str}``.
    """
    cfg.validate()
    fed_data = load_fed_data(cfg)
    weights = initial_weights(cfg, fed_data.dataset)
    evaluate = GlobalEvaluator(cfg)
    mu = cfg.mu if cfg.strategy == "fedprox" else 0.0
    history = [{"round": 0, "accuracy": evaluate(weights), "participants": []}]
    for rnd in range(1, cfg.rounds + 1):
        who = sorted(participants(rnd)) if participants else list(range(cfg.workers))
        updates = []
        for k in who:
            w, m = local_train(cfg, k, rnd, weights, mu, fed_data)
            updates.append((k, m["num-examples"], w))
        if len(updates) >= cfg.min_workers:
            weights = fedavg_exact(updates)
        history.append({"round": rnd, "accuracy": evaluate(weights), "participants": who})
        if progress:
            progress(history[-1])
    return {"history": history, "weights": weights, "weights_sha256": global_sha256(weights)}
