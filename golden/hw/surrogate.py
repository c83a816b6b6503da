"""The surrogate unit: ``h(x)`` in binary16, bit for bit (docs/numerics.md §3).

Supported surrogates (names as in :mod:`trident.golden.surrogate`):

``rectangular``  ``h = α`` if ``|x| < w`` else ``+0``, with register constants
                 ``α16 = RNE(α)`` and ``w16 = RNE(1/(2α))``: one compare and a multiplexer.
``triangle``     ``h = max0(fma(−α²16, |x|, α16))`` with ``α²16 = RNE(α²)``: one FMA.
``sigmoid``      a 64-segment piecewise-linear table of ``f(u) = σ(u)(1 − σ(u))`` over
                 ``u = RNE(α16 · |x|) ∈ [0, 8)``; segment ``k = ⌊8u⌋``;
                 ``h = fma(A[k], u, B[k])``, and ``h = +0`` for ``u ≥ 8`` (or NaN).
                 ``A[k]``, ``B[k]`` are binary16 register contents that the host computes once
                 (:func:`sigmoid_table`): the line through ``(u_k, α f(u_k))`` and
                 ``(u_{k+1}, α f(u_{k+1}))`` with ``u_k = k/8`` and the last knot ``f(8) := 0``
                 so the cut-off is continuous.  Max error against the exact
                 ``α σ(αx)(1 − σ(αx))``: 3.4e-4·α (measured exhaustively in the tests).

``atan`` (and anything else) raises ``ValueError``: it has no hardware unit.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from . import fp16 as F

__all__ = ["SUPPORTED", "HwSurrogate", "Rectangular", "Triangle", "SigmoidPWL", "make", "from_registers",
           "sigmoid_table", "SIGMOID_SEGMENTS", "SIGMOID_RANGE"]

SUPPORTED = ("rectangular", "triangle", "sigmoid")
SIGMOID_SEGMENTS = 64
SIGMOID_RANGE = 8.0                      # u = α|x| beyond this gives h = 0
_SEG_PER_UNIT = SIGMOID_SEGMENTS / SIGMOID_RANGE   # 8 segments per unit of u


class HwSurrogate:
    """Base: ``__call__(x)`` maps a binary16 tensor ``x = Z − V_th`` to ``h(x)`` (binary16)."""

    name = "?"

    def __init__(self, alpha: float):
        self.alpha = float(alpha)
        self.alpha16 = F.const(alpha)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def registers(self) -> dict:
        """The constants the RTL loads, as 16-bit patterns."""
        return {"alpha": int(F.bits(self.alpha16))}

    def _load(self, regs: dict) -> None:
        """Set the constants from the 16-bit patterns of :meth:`registers`."""
        self.alpha16 = _const_bits(regs["alpha"])
        self.alpha = float(self.alpha16)

    def reference(self, x: np.ndarray) -> np.ndarray:
        """The same function in exact (float64) arithmetic with the same register constants."""
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}(alpha={self.alpha})"


class Rectangular(HwSurrogate):
    name = "rectangular"

    def __init__(self, alpha: float):
        super().__init__(alpha)
        self.half_width16 = F.const(0.5 / self.alpha)

    def __call__(self, x):
        return torch.where(F.lt(F.absolute(x), self.half_width16), self.alpha16, F.zeros(()))

    def registers(self):
        return {**super().registers(), "half_width": int(F.bits(self.half_width16))}

    def _load(self, regs):
        super()._load(regs)
        self.half_width16 = _const_bits(regs["half_width"])

    def reference(self, x):
        return np.where(np.abs(x) < float(self.half_width16), float(self.alpha16), 0.0)


class Triangle(HwSurrogate):
    name = "triangle"

    def __init__(self, alpha: float):
        super().__init__(alpha)
        self.neg_alpha_sq16 = F.const(-self.alpha * self.alpha)

    def __call__(self, x):
        a = self.alpha16.expand_as(x)
        return F.max0(F.fma(self.neg_alpha_sq16.expand_as(x), F.absolute(x), a))

    def registers(self):
        return {**super().registers(), "neg_alpha_sq": int(F.bits(self.neg_alpha_sq16))}

    def _load(self, regs):
        super()._load(regs)
        self.neg_alpha_sq16 = _const_bits(regs["neg_alpha_sq"])

    def reference(self, x):
        return np.maximum(float(self.neg_alpha_sq16) * np.abs(x) + float(self.alpha16), 0.0)


def _const_bits(pattern: int) -> torch.Tensor:
    return F.from_bits(int(pattern)).reshape(())


def _f(u: float) -> float:
    s = 1.0 / (1.0 + math.exp(-u))
    return s * (1.0 - s)


def sigmoid_table(alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The binary16 slope ``A`` and intercept ``B`` tables (64 entries each) for ``α``."""
    knots = [k / _SEG_PER_UNIT for k in range(SIGMOID_SEGMENTS + 1)]
    vals = [alpha * _f(u) for u in knots]
    vals[-1] = 0.0
    slopes = [(vals[k + 1] - vals[k]) * _SEG_PER_UNIT for k in range(SIGMOID_SEGMENTS)]
    inter = [vals[k] - slopes[k] * knots[k] for k in range(SIGMOID_SEGMENTS)]
    return F.round16(np.array(slopes)), F.round16(np.array(inter))


class SigmoidPWL(HwSurrogate):
    name = "sigmoid"

    def __init__(self, alpha: float):
        super().__init__(alpha)
        self.slope16, self.intercept16 = sigmoid_table(self.alpha)
        self.range16 = F.const(SIGMOID_RANGE)

    def segment(self, u: torch.Tensor) -> torch.Tensor:
        """``k = ⌊8u⌋`` for ``0 ≤ u < 8`` (int64; callers mask ``u ≥ 8``)."""
        inside = F.lt(u, self.range16)
        k = torch.floor(torch.where(inside, u, F.zeros(())).float() * _SEG_PER_UNIT).long()
        return k.clamp_(0, SIGMOID_SEGMENTS - 1)

    def __call__(self, x):
        u = F.mul(self.alpha16.expand_as(x), F.absolute(x))
        inside = F.lt(u, self.range16)           # false for NaN
        k = self.segment(u)
        h = F.fma(self.slope16[k], u, self.intercept16[k])
        return torch.where(inside, h, F.zeros(()))

    def registers(self):
        return {**super().registers(),
                "slope": F.bits(self.slope16).tolist(), "intercept": F.bits(self.intercept16).tolist()}

    def _load(self, regs):
        super()._load(regs)
        self.slope16 = F.from_bits(list(regs["slope"]))
        self.intercept16 = F.from_bits(list(regs["intercept"]))
        self.range16 = F.const(SIGMOID_RANGE)

    def reference(self, x):
        u = float(self.alpha16) * np.abs(x)
        inside = u < SIGMOID_RANGE
        k = np.clip(np.floor(np.where(inside, u, 0.0) * _SEG_PER_UNIT).astype(np.int64), 0,
                    SIGMOID_SEGMENTS - 1)
        a = self.slope16.double().numpy()[k]
        b = self.intercept16.double().numpy()[k]
        return np.where(inside, a * u + b, 0.0)


_CLASSES = {"rectangular": Rectangular, "triangle": Triangle, "sigmoid": SigmoidPWL}


def make(name: str, alpha: float) -> HwSurrogate:
    """The hardware surrogate ``name`` with sharpness ``alpha``; ``ValueError`` if unsupported."""
    try:
        cls = _CLASSES[name]
    except KeyError:
        raise ValueError(f"surrogate {name!r} has no hardware unit; the hardware-exact mode "
                         f"supports: {', '.join(SUPPORTED)}") from None
    return cls(alpha)


def from_registers(name: str, regs: dict) -> HwSurrogate:
    """The unit ``name`` as the hardware sees it: constants taken from the 16-bit patterns of
    ``regs`` (the keys of :meth:`HwSurrogate.registers`), not recomputed from ``α``."""
    try:
        cls = _CLASSES[name]
    except KeyError:
        raise ValueError(f"surrogate {name!r} has no hardware unit; the hardware-exact mode "
                         f"supports: {', '.join(SUPPORTED)}") from None
    unit = cls.__new__(cls)
    unit._load(regs)
    return unit
