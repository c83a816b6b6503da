"""Straight-through estimators and integer bounds of the 4-bit shift-BN method (ALGORITHMS.md §5).

A straight-through estimator (STE) computes a non-differentiable function in the forward
pass and lets the gradient through unchanged (as if it were the identity) in the backward
pass: ``round_ste(x) = x + (round(x) − x).detach()``.

Members
-------
round_ste(x), floor_ste(x)
    Rounding (half to even, as :func:`torch.round`) and floor with an identity gradient.
signed_bounds(n), unsigned_bounds(n), bounds(n, signed)
    ``[−(2^(n−1) − 1), 2^(n−1) − 1]`` and ``[0, 2^n − 1]``.
quantize_weight(w, bits)
    ``clamp(round(w), ±(2^(bits−1) − 1))`` forward, identity backward: the n-bit signed
    integer weight seen through its float shadow weight.
shift_k(signed)
    The constant ``K`` of the shift formula: 3 for a signed output, 2 for an unsigned one.
"""
from __future__ import annotations

import torch

__all__ = ["round_ste", "floor_ste", "signed_bounds", "unsigned_bounds", "bounds",
           "quantize_weight", "shift_k", "INPUT_BITS", "INPUT_MAX"]

#: Inputs are 8-bit unsigned integers.
INPUT_BITS = 8
INPUT_MAX = (1 << INPUT_BITS) - 1


class _RoundSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.round(x)

    @staticmethod
    def backward(ctx, grad):
        return grad


class _FloorSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.floor(x)

    @staticmethod
    def backward(ctx, grad):
        return grad


class _ClampRoundSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, low, high):
        return torch.clamp(torch.round(x), low, high)

    @staticmethod
    def backward(ctx, grad):
        return grad, None, None


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """``round(x)`` (half to even) forward — exactly, not ``x + (round(x) − x)`` — identity gradient."""
    return _RoundSTE.apply(x)


def floor_ste(x: torch.Tensor) -> torch.Tensor:
    """``floor(x)`` forward (exact), identity gradient."""
    return _FloorSTE.apply(x)


def _check_bits(n: int) -> int:
    if int(n) != n or not 2 <= n <= 16:
        raise ValueError(f"bit width must be an integer in 2..16, got {n!r}")
    return int(n)


def signed_bounds(n: int) -> tuple[int, int]:
    """Symmetric signed range of ``n`` bits: ``(−(2^(n−1) − 1), 2^(n−1) − 1)`` ((−7, 7) for 4)."""
    n = _check_bits(n)
    top = (1 << (n - 1)) - 1
    return -top, top


def unsigned_bounds(n: int) -> tuple[int, int]:
    """Unsigned range of ``n`` bits: ``(0, 2^n − 1)`` ((0, 15) for 4 bits; doubles as ReLU)."""
    n = _check_bits(n)
    return 0, (1 << n) - 1


def bounds(n: int, signed: bool) -> tuple[int, int]:
    return signed_bounds(n) if signed else unsigned_bounds(n)


def shift_k(signed: bool) -> int:
    """``K`` in ``shift = round(log2 std) + K − n``: 3 for signed outputs, 2 for unsigned."""
    return 3 if signed else 2


def quantize_weight(w: torch.Tensor, bits: int) -> torch.Tensor:
    """The n-bit signed integer weight of a float shadow weight, with an identity gradient.

    Forward ``clamp(round(w), −q, q)`` with ``q = 2^(bits−1) − 1``; backward passes the
    gradient to ``w`` unchanged (also outside the range: the trainer keeps shadow weights
    inside ``[−q, q]`` by clipping them after every step, see
    :meth:`trident.golden.quant.network.QuantNetwork.clip_shadow_weights_`).
    """
    low, high = signed_bounds(bits)
    return _ClampRoundSTE.apply(w, low, high)
