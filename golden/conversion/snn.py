"""The converted SNN: IF neurons with §4's semantics, and the two conversions.

:class:`ConvertedIF` is this package's own integrate-and-fire neuron rather than the golden
:class:`~trident.golden.neurons.IFNode`, because §4 asks for things the golden neuron does
not have:

- **strict fire** ``U > θ`` (the golden neuron, like SpikingJelly, fires on ``U ≥ θ``;
  ``fire="geq"`` selects that rule here too);
- an **initial potential** per neuron (``θ/2`` to round instead of floor, then calibrated),
  or a constant per-step input ``θ/(2T)`` (``offset="step"``);
- a **learnable surrogate** ``σ_α(x) = 0.5·tanh(αx) + 0.5`` for weight calibration, with
  ``α`` (init 2.5) trained by its own gradient ``∂σ/∂α = 0.5·x·(1 − tanh²(αx))``.

Dynamics per step (multi-step, ``[T, N, ...]``, charge–fire–reset in one step as §1):
``H[t] = U[t−1] + I[t] (+ θ/(2T))``, ``S[t] = Θ(H[t] − θ)``, ``U[t] = H[t] − θ·S[t]`` (soft
reset), starting from ``U[0] = u_init``.  The outgoing spike carries the weight ``θ``: the
next layer receives ``θ·S[t]``.  The surrogate's argument is ``x = (H − θ)/θ`` by default.

The last layer is an :class:`OutputIntegrator`: it neither fires nor resets, and the network
output is its time-averaged potential ``(u_init + Σ_t I[t]) / T`` — the logits.

The first layer sees the analog input directly (direct encoding: the same current every
step, i.e. the FP engine's multiply-accumulate mode).
"""
from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import nn

from .ann import ConvertibleANN
from .quantize import FIRE_RULES, ClipActivation

__all__ = ["OFFSETS", "ConvertedIF", "OutputIntegrator", "SpikingStage", "ConvertedSNN", "convert",
           "max_norm_thresholds", "max_norm_convert", "tanh_spike", "SURROGATE_SCALES"]

#: How the neuron is made to round: ``init`` (initial potential θ/2), ``step`` (constant input
#: θ/(2T) each step) or ``none`` (no offset: floor, as plain max-norm conversion).
OFFSETS = ("init", "step", "none")
#: The surrogate's argument: ``(H − θ)/θ`` (``threshold``) or ``H − θ`` (``absolute``).
SURROGATE_SCALES = ("threshold", "absolute")


class _TanhSpike(torch.autograd.Function):
    """``Θ(x)`` forward (strict or not); derivative of ``0.5·tanh(αx) + 0.5`` backward,
    for ``x`` and for ``α``."""

    @staticmethod
    def forward(ctx, x, alpha, strict):
        ctx.save_for_backward(x, alpha)
        return (x > 0).to(x.dtype) if strict else (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        x, alpha = ctx.saved_tensors
        sech2 = 1 - torch.tanh(alpha * x) ** 2
        grad_x = grad * 0.5 * alpha * sech2
        grad_alpha = (grad * 0.5 * x * sech2).sum().reshape(alpha.shape) if ctx.needs_input_grad[1] else None
        return grad_x, grad_alpha, None


def _if_forward(current, u_init, theta: float, strict: bool):
    """The IF loop without a graph: spikes and charged potentials ``H`` per step."""
    u = u_init.expand_as(current[0])
    spikes = torch.empty_like(current)
    charged = torch.empty_like(current)
    for t in range(current.shape[0]):
        h = u + current[t]
        s = ((h > theta) if strict else (h >= theta)).to(current.dtype)
        u = h - theta * s
        spikes[t], charged[t] = s, h
    return spikes, charged


class _FusedIF(torch.autograd.Function):
    """A whole IF sequence as one node; backward is BPTT by hand with the tanh surrogate."""

    @staticmethod
    def forward(ctx, current, u_init, alpha, theta, strict, detach_reset, scale):
        spikes, charged = _if_forward(current, u_init, theta, strict)
        ctx.save_for_backward(charged, alpha)
        ctx.theta, ctx.detach_reset, ctx.u_shape, ctx.scale = theta, detach_reset, u_init.shape, scale
        return spikes

    @staticmethod
    def backward(ctx, grad_s):
        charged, alpha = ctx.saved_tensors
        theta, scale = ctx.theta, ctx.scale
        grad_current = torch.empty_like(grad_s)
        grad_u = torch.zeros_like(grad_s[0])
        grad_alpha = torch.zeros((), dtype=grad_s.dtype)
        for t in range(grad_s.shape[0] - 1, -1, -1):
            x = (charged[t] - theta) / scale
            sech2 = 1 - torch.tanh(alpha * x) ** 2
            grad_spike = grad_s[t] if ctx.detach_reset else grad_s[t] - theta * grad_u
            grad_h = grad_spike * (0.5 * alpha * sech2 / scale) + grad_u
            grad_alpha = grad_alpha + (grad_spike * 0.5 * x * sech2).sum()
            grad_current[t] = grad_h
            grad_u = grad_h
        grad_u_init = None
        if ctx.needs_input_grad[1]:
            grad_u_init = grad_u.sum_to_size(ctx.u_shape) if ctx.u_shape else grad_u.sum()
        grad_alpha = grad_alpha.reshape(alpha.shape) if ctx.needs_input_grad[2] else None
        return grad_current, grad_u_init, grad_alpha, None, None, None, None


def tanh_spike(x: torch.Tensor, alpha: torch.Tensor, strict: bool = True) -> torch.Tensor:
    """Heaviside forward, surrogate ``d/dx (0.5·tanh(αx) + 0.5)`` backward (α learnable)."""
    return _TanhSpike.apply(x, alpha, strict)


class ConvertedIF(nn.Module):
    """IF neuron of a converted SNN; see the module docstring.

    Parameters
    ----------
    threshold : float
        ``θ`` (> 0): threshold, soft-reset amount and weight of an outgoing spike.
    shape : tuple of int
        Shape of one sample's neurons (``u_init`` has this shape).
    offset : {"init", "step", "none"}
    fire : {"strict", "geq"}
    alpha_init : float
        Initial surrogate sharpness (§4: 2.5).
    detach_reset : bool
        Cut the gradient through the soft reset in weight calibration.
    surrogate_scale : {"threshold", "absolute"}
        The surrogate's argument: ``x = (H − θ)/θ`` (in units of the threshold, as in a
        network whose weights are normalised to threshold 1) or ``x = H − θ``.

    Members
    -------
    fused : bool
        With gradients on, run the whole sequence as one autograd node with a hand-written
        BPTT backward (default) rather than per-step autograd (the reference it is tested
        against).  Without gradients both are the same plain loop.
    u_init : buffer
        Initial potential per neuron (``θ/2`` for ``offset="init"``, else 0); Phase II (a)
        adds to it.
    alpha : nn.Parameter
        Surrogate sharpness, learned in weight calibration.
    """

    def __init__(self, threshold: float, shape, offset: str = "init", fire: str = "strict",
                 alpha_init: float = 2.5, detach_reset: bool = True, surrogate_scale: str = "threshold"):
        super().__init__()
        if surrogate_scale not in SURROGATE_SCALES:
            raise ValueError(f"unknown surrogate scale {surrogate_scale!r}; valid choices: "
                             f"{', '.join(SURROGATE_SCALES)}")
        self.surrogate_scale = surrogate_scale
        if not threshold > 0:
            raise ValueError(f"threshold must be > 0, got {threshold}")
        if offset not in OFFSETS:
            raise ValueError(f"unknown offset {offset!r}; valid choices: {', '.join(OFFSETS)}")
        if fire not in FIRE_RULES:
            raise ValueError(f"unknown fire rule {fire!r}; valid choices: {', '.join(FIRE_RULES)}")
        self.offset, self.fire, self.detach_reset = offset, fire, bool(detach_reset)
        self.shape = tuple(shape)
        # float64, so that a float64 network sees exactly the ANN's θ (float32 ones round it back)
        self.register_buffer("threshold", torch.tensor(float(threshold), dtype=torch.float64))
        self.register_buffer("u_init", torch.full(self.shape, float(threshold) / 2 if offset == "init" else 0.0))
        self.alpha = nn.Parameter(torch.tensor(float(alpha_init)))
        self.fused = True

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        """Spikes ``S`` (0/1) ``[T, N, ...]`` for input currents ``[T, N, ...]``."""
        steps = current.shape[0]
        theta = float(self.threshold)
        if self.offset == "step":
            current = current + theta / (2 * steps)
        strict = self.fire == "strict"
        scale = theta if self.surrogate_scale == "threshold" else 1.0
        u_init = self.u_init.to(current.dtype)
        if not torch.is_grad_enabled():
            return _if_forward(current, u_init, theta, strict)[0]
        if self.fused:
            return _FusedIF.apply(current, u_init, self.alpha, theta, strict, self.detach_reset, scale)
        u = u_init.expand_as(current[0])
        spikes = []
        for t in range(steps):
            h = u + current[t]
            s = tanh_spike((h - theta) / scale, self.alpha, strict)
            u = h - theta * (s.detach() if self.detach_reset else s)
            spikes.append(s)
        return torch.stack(spikes)

    def extra_repr(self):
        return (f"threshold={self.threshold.item():.4g}, shape={self.shape}, offset={self.offset}, "
                f"fire={self.fire}, alpha={self.alpha.item():.3g}, detach_reset={self.detach_reset}, "
                f"surrogate_scale={self.surrogate_scale}")


class OutputIntegrator(nn.Module):
    """Non-spiking output: the time-averaged potential ``(u_init + Σ_t I[t]) / T``."""

    def __init__(self, classes: int):
        super().__init__()
        self.register_buffer("u_init", torch.zeros(classes))

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        return (self.u_init.to(current.dtype) + current.sum(0)) / current.shape[0]


class SpikingStage(nn.Module):
    """Stateless ops on the incoming (weighted) spikes, a weight layer, then neurons.

    ``forward`` returns ``θ·S`` ``[T, N, ...]`` for an IF stage, logits ``[N, classes]``
    for the output stage.  The input is a sequence ``[T, N, ...]`` or, for the first stage,
    a static ``[N, ...]`` image applied every step.
    """

    def __init__(self, pre: nn.Sequential, weight: nn.Module, neuron: nn.Module):
        super().__init__()
        self.pre, self.weight, self.neuron = pre, weight, neuron

    @property
    def is_output(self) -> bool:
        return isinstance(self.neuron, OutputIntegrator)

    def currents(self, inp: torch.Tensor, T: int, static: bool) -> torch.Tensor:
        if static:
            current = self.weight(self.pre(inp))
            return current.unsqueeze(0).expand(T, *current.shape)
        steps, batch = inp.shape[:2]
        current = self.weight(self.pre(inp.reshape(steps * batch, *inp.shape[2:])))
        return current.reshape(steps, batch, *current.shape[1:])

    def forward(self, inp: torch.Tensor, T: int, static: bool = False) -> torch.Tensor:
        out = self.neuron(self.currents(inp, T, static))
        return out if self.is_output else out * self.neuron.threshold.to(out.dtype)


class ConvertedSNN(nn.Module):
    """A stack of :class:`SpikingStage` taking a static image ``[N, ...]`` to logits.

    Members
    -------
    stages : nn.ModuleList
    input_shape : tuple of int
    T : int
        Default number of time steps of :meth:`forward`.
    """

    def __init__(self, stages, input_shape, T: int):
        super().__init__()
        self.stages = nn.ModuleList(stages)
        self.input_shape = tuple(input_shape)
        self.T = _check_T(T)

    def neurons(self) -> list[ConvertedIF]:
        return [s.neuron for s in self.stages if isinstance(s.neuron, ConvertedIF)]

    def thresholds(self) -> list[float]:
        return [n.threshold.item() for n in self.neurons()]

    def run(self, x: torch.Tensor, T: int | None = None) -> list[torch.Tensor]:
        """Outputs of every stage: ``θ·S`` sequences ``[T, N, ...]``, then the logits."""
        T = self.T if T is None else _check_T(T)
        per_sample = math.prod(self.input_shape)
        if x.dim() < 1 or x[0].numel() != per_sample:
            raise ValueError(f"expected input [N, {', '.join(map(str, self.input_shape))}], got {tuple(x.shape)}")
        inp, static, outputs = x.reshape(x.shape[0], *self.input_shape), True, []
        for stage in self.stages:
            inp = stage(inp, T, static)
            static = False
            outputs.append(inp)
        return outputs

    def forward(self, x: torch.Tensor, T: int | None = None) -> torch.Tensor:
        return self.run(x, T)[-1]

    def layer_rates(self, x: torch.Tensor, T: int | None = None) -> list[torch.Tensor]:
        """Time-averaged output of every stage (``θ·mean_t S``, then the logits): the
        quantities that match the ANN's :meth:`~ConvertibleANN.layer_outputs`."""
        return [out if stage.is_output else out.mean(0) for stage, out in zip(self.stages, self.run(x, T))]


def _check_T(T) -> int:
    if int(T) != T or T < 1:
        raise ValueError(f"T must be a positive integer, got {T}")
    return int(T)


@torch.no_grad()
def convert(ann: ConvertibleANN, T: int, thresholds=None, offset: str = "init", fire: str = "strict",
            alpha_init: float = 2.5, detach_reset: bool = True, surrogate_scale: str = "threshold"
            ) -> ConvertedSNN:
    """Turn a (BatchNorm-folded) ANN into a :class:`ConvertedSNN`; the ANN is not changed.

    Each hidden activation becomes a :class:`ConvertedIF` with threshold ``thresholds[l]``
    (default: the activation's ``|θ_l|``), the head becomes the output integrator.  Weights
    and biases are copied unchanged: the spike's weight ``θ`` is applied to the spikes.
    """
    if ann.has_batchnorm():
        raise ValueError("fold BatchNorm into the weight layers first (ConvertibleANN.fold_batchnorm())")
    acts = ann.activations()
    if thresholds is None:
        if any(a.mode == "relu" for a in acts):
            raise ValueError("a ReLU ANN has no clipping level: pass thresholds (e.g. max_norm_thresholds())")
        thresholds = [a.threshold for a in acts]
    thresholds = [float(t) for t in thresholds]
    if len(thresholds) != len(acts):
        raise ValueError(f"need {len(acts)} thresholds, got {len(thresholds)}")
    was_training = ann.training
    ann.eval()
    x = torch.zeros(1, *ann.input_shape, dtype=ann.head.weight.dtype)
    stages, pre, weight, layer = [], [], None, 0
    for block in ann.body:
        x = block(x)
        if isinstance(block, (nn.Linear, nn.Conv2d)):
            if weight is not None:
                raise ValueError("two weight layers without an activation between them cannot be converted")
            weight = copy.deepcopy(block)
        elif isinstance(block, ClipActivation):
            neuron = ConvertedIF(thresholds[layer], x.shape[1:], offset, fire, alpha_init, detach_reset,
                                 surrogate_scale)
            stages.append(SpikingStage(nn.Sequential(*pre), weight, neuron))
            pre, weight, layer = [], None, layer + 1
        elif isinstance(block, (nn.AvgPool2d, nn.Flatten)):
            if weight is not None:
                raise ValueError(f"{type(block).__name__} between a weight layer and its activation")
            pre.append(copy.deepcopy(block))
        else:
            raise ValueError(f"cannot convert layer {block!r}")
    stages.append(SpikingStage(nn.Sequential(*pre), copy.deepcopy(ann.head), OutputIntegrator(ann.classes)))
    ann.train(was_training)
    return ConvertedSNN(stages, ann.input_shape, T)


@torch.no_grad()
def max_norm_thresholds(ann: ConvertibleANN, x: torch.Tensor, percentile: float = 99.9,
                        batch_size: int = 512) -> list[float]:
    """Per hidden layer, the ``percentile`` of its positive activations on ``x``
    (``100`` = the maximum), as in Rueckauer et al.'s robust normalisation."""
    if not 0 < percentile <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {percentile}")
    was_training = ann.training
    ann.eval()
    chunks = [ann.layer_outputs(x[i:i + batch_size])[:-1] for i in range(0, len(x), batch_size)]
    ann.train(was_training)
    thresholds = []
    for layer in range(len(chunks[0])):
        values = torch.cat([c[layer].flatten() for c in chunks]).numpy()
        positive = values[values > 0]
        thresholds.append(float(np.percentile(positive, percentile)) if positive.size else 1.0)
    return thresholds


def max_norm_convert(ann: ConvertibleANN, x_norm: torch.Tensor, T: int, percentile: float = 99.9,
                     fire: str = "strict") -> ConvertedSNN:
    """Plain data-based normalisation: threshold (and spike weight) of layer ``l`` is the
    ``percentile`` of its activations on ``x_norm``; soft reset, no offset, no calibration.

    Threshold ``λ_l`` with spike weight ``λ_l`` is the same network as Rueckauer's weights
    ``W·λ_{l−1}/λ_l`` and biases ``b/λ_l`` with threshold 1.
    """
    return convert(ann, T, max_norm_thresholds(ann, x_norm, percentile), offset="none", fire=fire)
