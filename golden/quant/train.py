"""Training of the 4-bit shift-BN network and of its float twin, on a static dataset.

Members
-------
QuantTrainConfig
    Every setting of a run.
fit(model, data, config) -> dict
    Trains ``model`` (a :class:`~.network.QuantNetwork` or :class:`~.network.FloatNetwork`)
    with Adam and a cosine learning-rate schedule; returns the test accuracy and timings.
train_quant(config) -> dict
    Float baseline and 4-bit network with the same topology, data and schedule; checks the
    integer-only inference against the fake-quantized network on every test input, and
    optionally exports the integer tables.  Returns the report (and the models).
evaluate(model, x, y) -> float
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch.nn import functional as F

from .integer import from_network, quantize_input
from .network import FloatNetwork, QuantNetwork, expand_architecture

__all__ = ["QuantTrainConfig", "fit", "train_quant", "evaluate", "compare_integer"]


@dataclass
class QuantTrainConfig:
    """Settings of a 4-bit run (and of its float baseline).

    ``lr`` is the 4-bit network's Adam rate, in integer weight units (shadow weights live in
    ``[−7, 7]``); ``float_lr`` the float network's.
    """

    dataset: str = "digits"
    model: str = "mlp"
    bits: int = 4
    signed_activations: bool = False
    epochs: int = 80
    batch_size: int = 64
    lr: float = 0.1
    float_lr: float = 3e-3
    weight_decay: float = 0.0
    seed: int = 0
    train_limit: int | None = None
    float_baseline: bool = True
    export: str | None = None

    def validate(self) -> None:
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.lr > 0 or not self.float_lr > 0:
            raise ValueError("learning rates must be > 0")


def _load(config: QuantTrainConfig):
    from ..data import load_dataset
    data = load_dataset(config.dataset, 1)
    if data.temporal:
        raise ValueError(f"the 4-bit network takes static images; {config.dataset!r} is an event dataset")
    x_train, y_train = data.x_train, data.y_train
    if config.train_limit:
        x_train, y_train = x_train[:config.train_limit], y_train[:config.train_limit]
    return data, x_train, y_train


@torch.no_grad()
def evaluate(model, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> float:
    was = model.training
    model.eval()
    correct = 0
    for start in range(0, len(x), batch_size):
        correct += int((model(x[start:start + batch_size]).argmax(1) == y[start:start + batch_size]).sum())
    model.train(was)
    return correct / max(len(x), 1)


def fit(model, x_train, y_train, x_test, y_test, *, epochs: int, batch_size: int, lr: float,
        weight_decay: float = 0.0, seed: int = 0) -> dict:
    """Adam + cosine schedule; clips shadow weights after every step of a QuantNetwork."""
    quant = isinstance(model, QuantNetwork)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps_per_epoch = math.ceil(len(x_train) / batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch)
    gen = torch.Generator().manual_seed(seed + 1)
    history = []
    train_time = 0.0
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(x_train), generator=gen)
        start = time.perf_counter()
        loss_sum = 0.0
        for b in range(steps_per_epoch):
            idx = perm[b * batch_size:(b + 1) * batch_size]
            if len(idx) < 2:  # batch statistics need two samples
                continue
            logits = model(x_train[idx])
            loss = F.cross_entropy(model.loss_logits(logits), y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            if quant:
                model.clip_shadow_weights_()
            loss_sum += loss.item() * len(idx)
        train_time += time.perf_counter() - start
        history.append({"epoch": epoch + 1, "loss": loss_sum / len(x_train),
                        "test_accuracy": evaluate(model, x_test, y_test), "train_time_s": train_time})
    return {"test_accuracy": history[-1]["test_accuracy"], "train_time_s": train_time, "history": history}


def compare_integer(model: QuantNetwork, x: torch.Tensor) -> dict:
    """Run the integer reference and the eval-mode network on ``x``; compare every layer."""
    integer = from_network(model)
    x_int = quantize_input(x)
    ints = integer.trace(x_int)
    fakes = model.activations(x)[1:]  # drop the input quantizer's output
    mismatched = [i for i, (a, b) in enumerate(zip(ints, fakes))
                  if a.shape != tuple(b.shape) or not np.array_equal(a, b.numpy().astype(np.int64))]
    logits = ints[-1]
    return {"bit_identical": not mismatched and len(ints) == len(fakes), "mismatched_layers": mismatched,
            "logits": logits, "predictions": logits.argmax(1), "max_abs": integer.check_ranges(x_int)}


def train_quant(config: QuantTrainConfig, return_models: bool = False) -> dict:
    """Train the float baseline and the 4-bit network; see the module docstring."""
    config.validate()
    data, x_train, y_train = _load(config)
    report = {"config": asdict(config), "architecture": expand_architecture(config.model),
              "train_samples": len(x_train), "test_samples": len(data.x_test)}
    models = {}
    if config.float_baseline:
        torch.manual_seed(config.seed)
        net = FloatNetwork(config.model, data.input_shape, data.n_classes)
        report["float"] = fit(net, x_train, y_train, data.x_test, data.y_test, epochs=config.epochs,
                              batch_size=config.batch_size, lr=config.float_lr,
                              weight_decay=config.weight_decay, seed=config.seed)
        models["float"] = net
    torch.manual_seed(config.seed)
    qnet = QuantNetwork(config.model, data.input_shape, data.n_classes, bits=config.bits,
                        signed_activations=config.signed_activations)
    report["quant"] = fit(qnet, x_train, y_train, data.x_test, data.y_test, epochs=config.epochs,
                          batch_size=config.batch_size, lr=config.lr, weight_decay=config.weight_decay,
                          seed=config.seed)
    models["quant"] = qnet
    check = compare_integer(qnet, data.x_test)
    integer_acc = float((torch.from_numpy(check["predictions"]) == data.y_test).float().mean())
    report["integer"] = {"test_accuracy": integer_acc, "bit_identical": check["bit_identical"],
                         "mismatched_layers": check["mismatched_layers"], "max_abs_intermediate": check["max_abs"]}
    if config.export:
        from .export import export_model, load_export
        path = export_model(qnet, config.export, meta={"config": asdict(config), "test_accuracy": integer_acc})
        reloaded = load_export(path.parent).forward(quantize_input(data.x_test))
        report["export"] = {"manifest": str(path), "reload_identical": bool(np.array_equal(reloaded, check["logits"]))}
    if return_models:
        report["models"] = models
    return report
