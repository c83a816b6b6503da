"""Phase II of dual-phase conversion: layer-wise calibration (ALGORITHMS.md §4).

Layers are calibrated first to last on a small calibration set.  The SNN's input to a layer
is recorded (earlier layers already calibrated) and frozen while the layer is calibrated:

(a) **initial-potential calibration**: ``u_init += (mean(a_ANN) − mean(r_SNN)) · T`` per
    neuron (``granularity="neuron"``, §4) or per channel (``"channel"``), where
    ``r_SNN = Σ_t θ S[t] / T`` and the means run over the calibration samples;
(b) **weight calibration**: train only this layer — weight, bias, initial potential and the
    surrogate sharpness ``α`` — with Adam on the KL divergence between
    ``softmax(a_ANN / τ)`` and ``softmax(r_SNN / τ)``, the softmax over all of a sample's
    outputs of the layer; gradients go through time with the tanh surrogate.  Mini-batches,
    a cosine learning-rate schedule, and early stopping on a held-out validation part of
    the calibration data, keeping the best state (the reference code's recipe).

For the output layer ``a_ANN`` are the ANN's logits and ``r_SNN`` the SNN's (its time-averaged
output potential), so (a) is a bias correction and (b) distillation of the logits.

``order="step"`` runs each step of ``steps`` over all layers before the next step (the
reference code: (a) for every layer, then (b) for every layer, then (a)); ``order="layer"``
runs all steps on one layer before moving to the next.

The ANN targets are the ANN's activations computed from the image, with the activations in
whatever mode the ANN is in (after Phase I: the ``T``-level quantizer).
"""
from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass

import torch
from torch.nn import functional as F

from .ann import ConvertibleANN
from .snn import ConvertedIF, ConvertedSNN

__all__ = ["CalibrationConfig", "calibrate", "calibrate_potential", "calibrate_weights", "output_gap",
           "GRANULARITIES", "ORDERS"]

GRANULARITIES = ("neuron", "channel")
ORDERS = ("step", "layer")


@dataclass(frozen=True)
class CalibrationConfig:
    """Phase II settings (see docs/conversion.md for which are [code] and which [ours]).

    steps : str
        Sequence of ``a`` (potential) and ``b`` (weight) calibrations (§4: ``aba``).
    order : {"step", "layer"}
        Step-major (reference code) or layer-major schedule.
    epochs : int
        Maximum passes over the calibration set in each weight calibration.
    batch_size : int
        Samples per Adam step.
    lr : float
        Adam learning rate (weights, bias, initial potential); cosine-annealed to 0.
    alpha_lr : float
        Adam learning rate of the surrogate sharpness ``α``.
    weight_decay : float
        Adam L2 weight decay of the weight calibration.
    patience : int
        Early stopping: epochs without a better validation loss before stopping.
    temperature : float
        Softmax temperature ``τ`` of the KL loss.
    granularity : {"neuron", "channel"}
        Initial-potential correction per neuron (§4) or per channel.
    skip_below : float
        Skip a weight calibration whose KL before training is at most this: the layer already
        matches (e.g. the first layer, whose IF neurons compute the quantizer exactly).
    keep_best : bool
        With validation samples: after each pass of the schedule, keep the network only if
        its output KL to the ANN on the validation samples improved, else go back to the best
        state so far (the reference code keeps the best of its stages, judged on test data;
        here it is judged on held-out training samples).
    """

    steps: str = "aba"
    order: str = "step"
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    alpha_lr: float = 1e-2
    weight_decay: float = 0.0
    patience: int = 5
    temperature: float = 1.0
    granularity: str = "neuron"
    skip_below: float = 1e-7
    keep_best: bool = True

    def __post_init__(self):
        if not self.steps or set(self.steps) - {"a", "b"}:
            raise ValueError(f"calibration steps must be a non-empty string of 'a' and 'b', got {self.steps!r}")
        if self.order not in ORDERS:
            raise ValueError(f"unknown calibration order {self.order!r}; valid choices: {', '.join(ORDERS)}")
        if self.granularity not in GRANULARITIES:
            raise ValueError(f"unknown granularity {self.granularity!r}; valid choices: {', '.join(GRANULARITIES)}")
        if self.epochs < 0 or self.batch_size < 1 or self.patience < 1:
            raise ValueError("calibration epochs must be >= 0, batch_size and patience >= 1")
        if not self.lr > 0 or not self.alpha_lr >= 0 or not self.temperature > 0 or self.weight_decay < 0:
            raise ValueError("calibration lr and temperature must be > 0, alpha_lr and weight_decay >= 0")

    def as_dict(self) -> dict:
        return asdict(self)


def _rate(stage, out):
    return out if stage.is_output else out.mean(0)


def _kl(rate, target, temperature):
    log_p = F.log_softmax(rate.flatten(1) / temperature, dim=1)
    log_q = F.log_softmax(target.flatten(1) / temperature, dim=1)
    return F.kl_div(log_p, log_q, log_target=True, reduction="batchmean")


def _select(inp, static, index):
    return inp[index] if static else inp[:, index]


@torch.no_grad()
def calibrate_potential(stage, inp, static, target, T, granularity="neuron") -> float:
    """(a): shift ``u_init`` so the layer's mean output matches the ANN's; returns the mean
    absolute per-neuron difference before the shift."""
    diff = target.mean(0) - _rate(stage, stage(inp, T, static)).mean(0)
    if granularity == "channel" and diff.dim() == 3:
        diff = diff.mean(dim=(1, 2), keepdim=True).expand_as(diff)
    stage.neuron.u_init += diff * T
    return diff.abs().mean().item()


@torch.no_grad()
def _loss(stage, inp, static, target, T, temperature, batch=256):
    total = 0.0
    for i in range(0, target.shape[0], batch):
        index = slice(i, i + batch)
        part = _kl(_rate(stage, stage(_select(inp, static, index), T, static)), target[index], temperature)
        total += part.item() * target[index].shape[0]
    return total / target.shape[0]


def calibrate_weights(stage, inp, static, target, T, config: CalibrationConfig, val=None,
                      generator: torch.Generator | None = None) -> dict:
    """(b): KL-through-time training of this stage only, in place.

    ``val`` is ``(inp, target)`` of held-out samples for early stopping (default: the
    calibration samples themselves).  Returns the training and validation KL before and
    after, and the number of epochs run."""
    val_inp, val_target = val if val is not None else (inp, target)
    u_init = stage.neuron.u_init
    groups = [{"params": list(stage.weight.parameters()) + [u_init], "lr": config.lr}]
    if isinstance(stage.neuron, ConvertedIF) and config.alpha_lr > 0:
        groups.append({"params": [stage.neuron.alpha], "lr": config.alpha_lr})
    inp = inp.detach()
    before = _loss(stage, inp, static, target, T, config.temperature)
    best = _loss(stage, val_inp, static, val_target, T, config.temperature)
    result = {"step": "b", "kl_before": before, "val_kl_before": best, "epochs": 0}
    if before <= config.skip_below or config.epochs == 0:
        result.update(kl_after=before, val_kl_after=best, skipped=True)
        return result
    best_state, stale = copy.deepcopy(stage.state_dict()), 0
    u_init.requires_grad_(True)
    optimizer = torch.optim.Adam(groups, weight_decay=config.weight_decay)
    samples = target.shape[0]
    steps_per_epoch = math.ceil(samples / config.batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs * steps_per_epoch)
    try:
        for epoch in range(config.epochs):
            order = torch.randperm(samples, generator=generator)
            for i in range(0, samples, config.batch_size):
                index = order[i:i + config.batch_size]
                out = stage(_select(inp, static, index), T, static)
                loss = _kl(_rate(stage, out), target[index], config.temperature)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
            result["epochs"] = epoch + 1
            current = _loss(stage, val_inp, static, val_target, T, config.temperature)
            if current < best:
                best, best_state, stale = current, copy.deepcopy(stage.state_dict()), 0
            else:
                stale += 1
                if stale >= config.patience:
                    break
    finally:
        u_init.requires_grad_(False)
    stage.load_state_dict(best_state)
    result.update(kl_after=_loss(stage, inp, static, target, T, config.temperature), val_kl_after=best,
                  skipped=False)
    return result


def calibrate(snn: ConvertedSNN, ann: ConvertibleANN, x_cal: torch.Tensor, T: int | None = None,
              config: CalibrationConfig = CalibrationConfig(), x_val: torch.Tensor | None = None,
              generator: torch.Generator | None = None) -> list[dict]:
    """Calibrate ``snn`` in place against ``ann`` on ``x_cal`` (Phase II).

    ``x_val`` (optional) are held-out samples for the early stopping of weight calibration.
    Returns a log: per layer, each step's mean-output error (a) or KL before/after (b); with
    ``keep_best`` and ``x_val`` a last entry ``{"selection": [...]}`` says which passes were kept."""
    T = snn.T if T is None else int(T)
    was_training = ann.training
    ann.eval()
    with torch.no_grad():
        targets = [t.detach() for t in ann.layer_outputs(x_cal)]
        val_targets = [t.detach() for t in ann.layer_outputs(x_val)] if x_val is not None else None
    ann.train(was_training)
    if len(targets) != len(snn.stages):
        raise ValueError(f"ANN has {len(targets)} layers, SNN {len(snn.stages)}")
    log = [{"layer": layer, "steps": []} for layer in range(len(snn.stages))]
    passes = list(config.steps) if config.order == "step" else [config.steps]
    select = config.keep_best and x_val is not None
    if select:
        best_kl, best_state = _network_kl(snn, x_val, val_targets[-1], T), copy.deepcopy(snn.state_dict())
        selection = [{"pass": "converted", "val_output_kl": best_kl, "kept": True}]
    for steps in passes:
        inp = x_cal.reshape(x_cal.shape[0], *snn.input_shape)
        val_inp = x_val.reshape(x_val.shape[0], *snn.input_shape) if x_val is not None else None
        static = True
        for layer, stage in enumerate(snn.stages):
            for step in steps:
                if step == "a":
                    err = calibrate_potential(stage, inp, static, targets[layer], T, config.granularity)
                    log[layer]["steps"].append({"step": "a", "mean_output_error": err})
                else:
                    val = (val_inp, val_targets[layer]) if x_val is not None else None
                    log[layer]["steps"].append(calibrate_weights(stage, inp, static, targets[layer], T, config,
                                                                 val, generator))
            with torch.no_grad():
                inp = stage(inp, T, static)
                val_inp = stage(val_inp, T, static) if x_val is not None else None
            static = False
        if select:
            current = _network_kl(snn, x_val, val_targets[-1], T)
            kept = current < best_kl
            if kept:
                best_kl, best_state = current, copy.deepcopy(snn.state_dict())
            else:
                snn.load_state_dict(best_state)
            selection.append({"pass": steps, "val_output_kl": current, "kept": kept})
    if select:
        log.append({"selection": selection})
    for entry, stage in zip(log, snn.stages):
        if isinstance(stage.neuron, ConvertedIF):
            entry["alpha"] = stage.neuron.alpha.item()
    return log


@torch.no_grad()
def _network_kl(snn, x, target_logits, T):
    return _kl(snn(x, T), target_logits, 1.0).item()


@torch.no_grad()
def output_gap(snn: ConvertedSNN, ann: ConvertibleANN, x: torch.Tensor, T: int | None = None) -> dict:
    """How far the SNN's logits are from the ANN's on ``x``: mean absolute difference, mean
    KL(softmax ANN ‖ softmax SNN), and the fraction of samples whose argmax agrees."""
    was_training = ann.training
    ann.eval()
    a = ann(x)
    ann.train(was_training)
    s = snn(x, T)
    return {"mae": (a - s).abs().mean().item(), "kl": _kl(s, a, 1.0).item(),
            "agreement": (a.argmax(1) == s.argmax(1)).float().mean().item()}
