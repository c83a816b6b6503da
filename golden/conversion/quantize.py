"""Phase 0 and Phase I activations of dual-phase conversion (ALGORITHMS.md §4).

One module, :class:`ClipActivation`, is the activation of every hidden layer of the ANN,
in one of three modes:

``relu``
    plain ReLU (the ANN of the max-norm baseline; ``θ`` unused);
``clip``
    Phase 0: ``y = |θ| · clamp(x / |θ|, 0, 1)`` with a learnable ``θ`` per layer;
``quant``
    Phase I: noisy quantization for ``T`` steps.  With ``z = x·T/|θ|`` and
    ``m ~ Bernoulli(1 − p)`` per element, ``z' = m ? round(z) : z`` and
    ``y = |θ| · clamp(z'/T, 0, 1)``; ``round`` passes gradients straight through.  At
    inference (``eval()``) or with ``p = 0`` every element is rounded, so the activation is
    exactly the ``T``-level quantizer :func:`quantize`.

``z' = z + m ⊙ (round(z) − z)`` of §4 is computed as ``where(m, round(z), z)``: the same
value and gradients, but the forward result is exactly ``round(z)`` where ``m = 1`` instead
of ``z + (round(z) − z)`` with its float rounding, so the inference quantizer is exact.

Rounding ties
-------------
An IF neuron with threshold ``θ``, soft reset and initial potential ``θ/2`` that sees a
constant input ``x`` for ``T`` steps emits ``round(x·T/θ)`` spikes (clamped to ``0..T``),
where a tie (``x·T/θ`` exactly half an integer) goes *down* when the neuron fires on
``U > θ`` (§4's strict fire) and *up* when it fires on ``U ≥ θ`` (the golden IF neuron).
:func:`round_ties` implements both, so the quantizer matches the converted SNN bit for bit,
ties included (see ``docs/conversion.md`` for the proof).
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["FIRE_RULES", "ACTIVATION_MODES", "round_ties", "quantize", "ClipActivation"]

#: ``strict``: fire on ``U > θ`` (§4); ``geq``: fire on ``U ≥ θ`` (golden IF, SpikingJelly).
FIRE_RULES = ("strict", "geq")
ACTIVATION_MODES = ("relu", "clip", "quant")


def _check_fire(fire: str) -> None:
    if fire not in FIRE_RULES:
        raise ValueError(f"unknown fire rule {fire!r}; valid choices: {', '.join(FIRE_RULES)}")


def round_ties(z: torch.Tensor, fire: str = "strict") -> torch.Tensor:
    """Round to the nearest integer; ties down for ``fire="strict"``, up for ``"geq"``."""
    _check_fire(fire)
    return torch.ceil(z - 0.5) if fire == "strict" else torch.floor(z + 0.5)


def quantize(x: torch.Tensor, theta, T: int, fire: str = "strict") -> torch.Tensor:
    """The ``T``-level quantizer ``|θ|/T · clamp(round(x·T/|θ|), 0, T)``.

    This is what the Phase-I activation computes at inference and what a converted IF
    neuron (threshold ``|θ|``, soft reset, initial potential ``|θ|/2``) computes as its
    firing rate times ``|θ|`` for a constant input over ``T`` steps.
    """
    theta = torch.as_tensor(theta, dtype=x.dtype).abs()
    return theta * torch.clamp(round_ties(x * T / theta, fire), 0, T) / T


class _RoundSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z, fire):
        return round_ties(z, fire)

    @staticmethod
    def backward(ctx, grad):
        return grad, None


class ClipActivation(nn.Module):
    """Learnable-clip activation of the convertible ANN; see the module docstring.

    Parameters
    ----------
    theta_init : float
        Initial clipping level ``θ`` (§4: 5.0).
    mode : {"relu", "clip", "quant"}
    T : int
        Quantization levels (``quant`` mode): the SNN's time steps.
    p : float
        Probability that an element is *not* rounded during training (§4: 0.1).
    fire : {"strict", "geq"}
        Tie rule of the rounding (match the converted neuron's fire rule).
    """

    def __init__(self, theta_init: float = 5.0, mode: str = "clip", T: int = 8, p: float = 0.1,
                 fire: str = "strict"):
        super().__init__()
        self.theta = nn.Parameter(torch.tensor(float(theta_init)))
        self.mode, self.T, self.p, self.fire = "clip", 8, 0.1, "strict"
        self.configure(mode=mode, T=T, p=p, fire=fire)

    def configure(self, mode: str | None = None, T: int | None = None, p: float | None = None,
                  fire: str | None = None) -> "ClipActivation":
        """Change mode and quantization settings (``None`` keeps the current value)."""
        if mode is not None:
            if mode not in ACTIVATION_MODES:
                raise ValueError(f"unknown activation mode {mode!r}; valid choices: {', '.join(ACTIVATION_MODES)}")
            self.mode = mode
        if T is not None:
            if int(T) != T or T < 1:
                raise ValueError(f"T must be a positive integer, got {T}")
            self.T = int(T)
        if p is not None:
            if not 0 <= p <= 1:
                raise ValueError(f"noise probability p must be in [0, 1], got {p}")
            self.p = float(p)
        if fire is not None:
            _check_fire(fire)
            self.fire = fire
        return self

    @property
    def threshold(self) -> float:
        """``|θ|``: the converted neuron's threshold and its spike's weight."""
        return self.theta.detach().abs().item()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "relu":
            return torch.relu(x)
        theta = self.theta.abs()
        if self.mode == "clip":
            return theta * torch.clamp(x / theta, 0.0, 1.0)
        z = x * self.T / theta
        rounded = _RoundSTE.apply(z, self.fire)
        if self.training and self.p > 0:
            keep = torch.rand_like(z) >= self.p  # m ~ Bernoulli(1 − p)
            z = torch.where(keep, rounded, z)
        else:
            z = rounded
        return theta * torch.clamp(z, 0.0, float(self.T)) / self.T  # as quantize(), bit for bit

    def extra_repr(self) -> str:
        extra = f", T={self.T}, p={self.p}, fire={self.fire}" if self.mode == "quant" else ""
        return f"mode={self.mode}, theta={self.theta.item():.4g}{extra}"
