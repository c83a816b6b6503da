"""Noise-based single-step training, conversion to an N-step SNN, and the BPTT comparison.

Members
-------
build_noisy_network(architecture, input_shape, classes, config)
    A :class:`~trident.golden.network.SpikingNetwork` whose spiking layers are
    :class:`~.neuron.NoisyNeuron` (train it with T = 1).
to_multistep(net, config)
    The same weights as a deterministic N-step SNN: soft-reset IF/LIF neurons of
    :mod:`trident.golden.neurons` starting from ``v_init`` (:class:`~.neuron.InitialPotential`).
    Works for any N: the network does not depend on T.
NoiseTrainConfig
    Data, network, optimiser and the noise parameters of a comparison.
Run
    One training run advanced epoch by epoch, so that several runs can be interleaved and
    timed under the same machine load.
compare(config) -> dict
    Trains the noise network (T = 1), the σ = 0 ablation (T = 1), optionally the literal
    μ = 0 variant, and BPTT at T = N for each N, interleaved epoch by epoch; evaluates all at
    every N and returns the report (accuracies, training times, and the ratio of median epoch
    times noise / BPTT).
evaluate(net, x, y, steps)
"""
from __future__ import annotations

import copy
import math
import statistics
import time
from dataclasses import asdict, dataclass, field

import torch
from torch.nn import functional as F

from ..data import get_encoder, load_dataset
from ..network import SpikingNetwork
from ..neurons import MultiStepNeuron, make_neuron
from .neuron import InitialPotential, NoiseConfig, NoisyNeuron

__all__ = ["build_noisy_network", "to_multistep", "NoiseTrainConfig", "Run", "compare", "evaluate",
           "DEFAULT_STEPS"]

DEFAULT_STEPS = (1, 2, 4, 8, 16)


def build_noisy_network(architecture: str, input_shape, classes: int, config: NoiseConfig) -> SpikingNetwork:
    """A SpikingNetwork with every spiking layer replaced by a :class:`NoisyNeuron`."""
    net = SpikingNetwork(architecture, input_shape, classes, config.neuron_config())
    for i, block in enumerate(net.body):
        if isinstance(block, MultiStepNeuron):
            net.body[i] = NoisyNeuron(config)
    return net


def to_multistep(net: SpikingNetwork, config: NoiseConfig) -> SpikingNetwork:
    """Copy of ``net`` with deterministic soft-reset neurons from ``v_init`` (shared weights copied)."""
    out = copy.deepcopy(net)
    for i, block in enumerate(out.body):
        if isinstance(block, NoisyNeuron):
            out.body[i] = InitialPotential(make_neuron(config.neuron_config()), config.v_init_value)
    return out


@torch.no_grad()
def evaluate(net, x: torch.Tensor, y: torch.Tensor, steps: int, encoding: str = "direct",
             batch_size: int = 512, seed: int = 0) -> float:
    """Accuracy of ``net`` run for ``steps`` time steps on the static inputs ``x``."""
    was = net.training
    net.eval()
    encode = get_encoder(encoding)
    gen = torch.Generator().manual_seed(seed)
    correct = 0
    for start in range(0, len(x), batch_size):
        logits = net(encode(x[start:start + batch_size], steps, generator=gen))
        correct += int((logits.argmax(1) == y[start:start + batch_size]).sum())
    net.train(was)
    return correct / max(len(x), 1)


@dataclass
class NoiseTrainConfig:
    """Settings of a noise-vs-BPTT comparison (one set of hyper-parameters for every run)."""

    dataset: str = "digits"
    model: str = "mlp"
    encoding: str = "direct"
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    steps: tuple = DEFAULT_STEPS
    epochs: int = 20
    batch_size: int = 32
    optimizer: str = "adam"
    lr: float = 1e-3
    seed: int = 0
    train_limit: int | None = None
    sigma_zero_ablation: bool = True
    literal_ablation: bool = True
    bptt: bool = True

    def validate(self) -> None:
        if not self.steps or any(int(n) != n or n < 1 for n in self.steps):
            raise ValueError(f"steps must be positive integers, got {self.steps}")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"unknown optimizer {self.optimizer!r}; valid: sgd, adam")


class Run:
    """One training run (network, optimiser, train-time clock) advanced by :meth:`epoch`."""

    def __init__(self, name: str, net, T: int, config: NoiseTrainConfig, x, y):
        self.name, self.net, self.T, self.config = name, net, int(T), config
        self.x, self.y = x, y
        params = list(net.parameters())
        if config.optimizer == "adam":
            self.optimizer = torch.optim.Adam(params, lr=config.lr)
        else:
            self.optimizer = torch.optim.SGD(params, lr=config.lr, momentum=0.9)
        self.encode = get_encoder(config.encoding)
        self.shuffle = torch.Generator().manual_seed(config.seed + 1)
        self.encode_gen = torch.Generator().manual_seed(config.seed + 2)
        self.train_time = 0.0
        self.epoch_times: list[float] = []
        self.losses: list[float] = []

    def epoch(self) -> float:
        cfg = self.config
        self.net.train()
        perm = torch.randperm(len(self.x), generator=self.shuffle)
        total = 0.0
        start = time.perf_counter()
        for b in range(math.ceil(len(self.x) / cfg.batch_size)):
            idx = perm[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            x_seq = self.encode(self.x[idx], self.T, generator=self.encode_gen)
            loss = F.cross_entropy(self.net(x_seq), self.y[idx])
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += loss.item() * len(idx)
        self.epoch_times.append(time.perf_counter() - start)
        self.train_time += self.epoch_times[-1]
        self.losses.append(total / len(self.x))
        return self.losses[-1]


def compare(config: NoiseTrainConfig, progress=None) -> dict:
    """Train every variant interleaved epoch by epoch and evaluate at every N (see module doc)."""
    config.validate()
    data = load_dataset(config.dataset, 1)
    if data.temporal:
        raise ValueError("noise training here uses static datasets (direct/rate encoding)")
    x, y = data.x_train, data.y_train
    if config.train_limit:
        x, y = x[:config.train_limit], y[:config.train_limit]
    shape, classes = data.input_shape, data.n_classes

    def seeded(factory):
        torch.manual_seed(config.seed)
        return factory()

    noise = config.noise
    variants = {"noise": noise}
    if config.sigma_zero_ablation:
        variants["sigma0"] = noise.with_(sigma=0.0)
    if config.literal_ablation:
        variants["literal"] = noise.with_(noise_mean=0.0, v_init=0.0)
    runs = [Run(name, seeded(lambda c=cfg: build_noisy_network(config.model, shape, classes, c)), 1, config, x, y)
            for name, cfg in variants.items()]
    if config.bptt:
        for n in config.steps:
            runs.append(Run(f"bptt{n}", seeded(lambda: SpikingNetwork(config.model, shape, classes,
                                                                      noise.neuron_config())), n, config, x, y))
    torch.manual_seed(config.seed + 7)  # noise samples
    for epoch in range(config.epochs):
        for run in runs:
            run.epoch()
        if progress:
            progress(epoch + 1, {r.name: r.losses[-1] for r in runs})

    steps = [int(n) for n in config.steps]
    results = {}
    for run in runs:
        if run.name in variants:
            multi = to_multistep(run.net, variants[run.name])
            acc = {n: evaluate(multi, data.x_test, data.y_test, n, config.encoding, seed=config.seed + 3)
                   for n in steps}
            results[run.name] = {"train_T": 1, "train_time_s": run.train_time, "accuracy": acc,
                                 "median_epoch_s": statistics.median(run.epoch_times),
                                 "noise": variants[run.name].resolved(), "final_loss": run.losses[-1]}
        else:
            n = run.T
            results[run.name] = {"train_T": n, "train_time_s": run.train_time, "final_loss": run.losses[-1],
                                 "median_epoch_s": statistics.median(run.epoch_times),
                                 "accuracy": {n: evaluate(run.net, data.x_test, data.y_test, n, config.encoding,
                                                          seed=config.seed + 3)}}
    report = {"config": {**asdict(config), "noise": noise.resolved()}, "results": results,
              "train_samples": len(x), "test_samples": len(data.x_test), "steps": steps}
    if config.bptt:
        # Ratio of median epoch times: robust to a load spike on the shared machine hitting one epoch.
        report["time_ratio_noise_vs_bptt"] = {n: results["noise"]["median_epoch_s"] / results[f"bptt{n}"]["median_epoch_s"]
                                              for n in steps}
    return report
