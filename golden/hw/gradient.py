"""WG engine kernels: the weight gradient in an exact fixed-point accumulator
(docs/numerics.md §5).

Contract.  Each weight owns an accumulator that holds the **exact** sum of its terms in
two's-complement fixed point with 24 fractional bits (units of 2^−24, the binary16 subnormal
step).  A term is

- spike input:   ``δI[r, j]`` for every row ``r`` (= sample n, step t) with ``s[r, i] = 1``
  and ``δI[r, j] ≠ 0`` — every binary16 value is an integer number of 2^−24 units, < 2^40;
- analog input:  ``RNE(δI[r, j] · x[r, i])`` (a binary16 multiply) for ``δI, x ≠ 0``.

After the whole batch the accumulator is rounded once to binary16: ``g = RNE(acc · 2^−24)``.
Because the sum is exact, the result does not depend on the order of the terms, on batch
chunking, on the number of lanes or on how many cores split the batch (partial accumulators
merge exactly).  With at most 2^23 terms per weight per batch the sum fits in 64 bits.
Infinite and NaN terms are tracked beside the integer: NaN if any NaN term or both signs of
infinity, else the infinity.

The golden evaluates the exact sums with float64 matrix products on integer-valued operands
split into a high and a low part (every partial sum is an integer below 2^53, so any
summation order is exact), then combines the parts in int64.

The ``sequential_*`` functions are *ablations, not the contract*: FP16 or FP32 accumulation
in the fixed order (n, t ascending), kept to measure what the exact accumulator buys
(docs/numerics.md §10.3).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from . import fp16 as F

__all__ = ["ExactGrad", "fc_weight_grad", "conv2d_weight_grad", "sequential_fc_weight_grad",
           "FRACTION_BITS", "MAX_TERMS"]

FRACTION_BITS = 24
MAX_TERMS = 2 ** 23
_SCALE = float(2 ** FRACTION_BITS)
_LO_BITS = 21


@dataclass
class ExactGrad:
    """An exact gradient accumulator: ``acc`` (int64, units of 2^−24) and ``special``
    (float64: 0 where finite, else ±inf / NaN)."""

    acc: torch.Tensor
    special: torch.Tensor

    def to_fp16(self) -> torch.Tensor:
        """``RNE(acc · 2^−24)``, specials substituted (one rounding)."""
        value = self.acc.double() * (1.0 / _SCALE)
        value = torch.where(self.special != 0, self.special, value)
        return F.round16(value)

    def value(self) -> torch.Tensor:
        """The exact sum as float64 (exact while |acc| < 2^53)."""
        return torch.where(self.special != 0, self.special, self.acc.double() / _SCALE)

    def __add__(self, other: "ExactGrad") -> "ExactGrad":
        """Merging two partial accumulators (e.g. two cores' halves of a batch) is exact."""
        return ExactGrad(self.acc + other.acc, _merge_special(self.special, other.special))


def _merge_special(a, b):
    both = (a != 0) & (b != 0)
    s = torch.where(a != 0, a, b)
    return torch.where(both & ~(a == b), torch.full_like(a, float("nan")), s)


def _units(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """binary16 → (int64 units of 2^−24 with non-finite set to 0, finite mask)."""
    x64 = x.double()
    finite = torch.isfinite(x64)
    q = torch.where(finite, x64 * _SCALE, torch.zeros_like(x64)).to(torch.int64)
    return q, finite


def _exact_matmul(q: torch.Tensor, sel: torch.Tensor, contract: str) -> torch.Tensor:
    """Exact integer ``einsum(contract, q, sel)`` for int64 ``q`` (|q| < 2^40) and 0/1 or small
    integer ``sel`` (float64), through two float64 products with integer partial sums < 2^53."""
    lo = (q & ((1 << _LO_BITS) - 1)).double()
    hi = (q >> _LO_BITS).double()
    s_lo = torch.einsum(contract, lo, sel)
    s_hi = torch.einsum(contract, hi, sel)
    return (s_hi.round().to(torch.int64) << _LO_BITS) + s_lo.round().to(torch.int64)


def _specials_from_terms(nan_c, pinf_c, ninf_c) -> torch.Tensor:
    special = torch.zeros_like(nan_c, dtype=torch.float64)
    special = torch.where(pinf_c > 0, torch.full_like(special, float("inf")), special)
    special = torch.where(ninf_c > 0, torch.full_like(special, float("-inf")), special)
    nan = (nan_c > 0) | ((pinf_c > 0) & (ninf_c > 0))
    return torch.where(nan, torch.full_like(special, float("nan")), special)


def _check_terms(count: int):
    if count > MAX_TERMS:
        raise ValueError(f"{count} terms per weight exceed the accumulator's guarantee of "
                         f"{MAX_TERMS}; split the batch")


def _binary_grad(d: torch.Tensor, sel: torch.Tensor, contract: str) -> ExactGrad:
    """Sum of ``d`` (binary16) over the positions selected by 0/1 ``sel`` (float64)."""
    q, finite = _units(d)
    acc = _exact_matmul(q, sel, contract)
    if bool(finite.all()):
        return ExactGrad(acc, torch.zeros(acc.shape, dtype=torch.float64))
    d64 = d.double()
    counts = [torch.einsum(contract, m.double(), sel) for m in
              (d64.isnan(), d64 == float("inf"), d64 == float("-inf"))]
    return ExactGrad(acc, _specials_from_terms(*counts))


def _analog_grad(d: torch.Tensor, x: torch.Tensor, sum_dims, budget: int = 1 << 22) -> ExactGrad:
    """Exact sum over ``sum_dims`` of the terms ``RNE(d · x)`` (``d``, ``x`` binary16 tensors that
    broadcast; rows are dim 0).  A float32 product of two binary16 values is exact (22 bits),
    so ``.half()`` rounds it once; float64 sums of ≤ 2^13 binary16 values are exact in any
    order, and the chunk sums are combined in int64.  An ±inf / NaN term makes the float64
    sum ±inf / NaN exactly as the accumulator's special rule says."""
    d32, x32 = d.float(), x.float()
    if not (bool(torch.isfinite(d32).all()) and bool(torch.isfinite(x32).all())):
        zero_pair = (d32 == 0) | (x32 == 0)            # skipped pairs (inf·0 must not be formed)
    else:
        zero_pair = None
    per_row = max(1, math.prod(torch.broadcast_shapes(d.shape, x.shape)[1:]))
    chunk = max(1, min(1 << 13, budget // per_row))
    acc, special = None, None
    for a in range(0, d.shape[0], chunk):
        p = (d32[a:a + chunk] * x32[a:a + chunk]).half()
        if zero_pair is not None:
            p = torch.where(zero_pair[a:a + chunk], F.zeros(()), p)
        s = torch.from_numpy(np.ascontiguousarray(p.numpy().sum(axis=sum_dims, dtype=np.float64)))
        fin = torch.isfinite(s)
        part = torch.where(fin, s * _SCALE, torch.zeros_like(s)).to(torch.int64)
        sp = torch.where(fin, torch.zeros_like(s), s)
        if acc is None:
            acc, special = part, sp
        else:
            acc, special = acc + part, _merge_special(special, sp)
    return ExactGrad(acc, special)


def _product_terms(d: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``RNE(d · x)`` for binary16 tensors that broadcast, ``+0`` where either is zero."""
    p = (d.float() * x.float()).half()
    return F.canon(torch.where((d != 0) & (x != 0), p, F.zeros(())))


def fc_weight_grad(di: torch.Tensor, inputs: torch.Tensor) -> ExactGrad:
    """``∂L/∂W [J, I]`` from ``di [R, J]`` (binary16) and ``inputs [R, I]`` (bool or binary16)."""
    _check_terms(di.shape[0])
    if inputs.dtype == torch.bool:
        return _binary_grad(di, inputs.double(), "rj,ri->ji")
    return _analog_grad(di[:, :, None], inputs[:, None, :], 0)


def _unfold(x: torch.Tensor, k: int, stride: int, padding: int) -> torch.Tensor:
    """``[R, C, H, W]`` → columns ``[R, C·K·K, L]`` (float64; padding reads as 0 = no input)."""
    return torch.nn.functional.unfold(x.double(), k, padding=padding, stride=stride)


def conv2d_weight_grad(di: torch.Tensor, inputs: torch.Tensor, kernel: int, stride: int = 1,
                       padding: int = 0) -> ExactGrad:
    """``∂L/∂W [Co, C, K, K]`` from ``di [R, Co, Ho, Wo]`` and ``inputs [R, C, H, W]``."""
    rows, out_ch = di.shape[:2]
    chans = inputs.shape[1]
    locs = di.shape[2] * di.shape[3]
    _check_terms(rows * locs)
    d = di.reshape(rows, out_ch, locs)
    shape = (out_ch, chans, kernel, kernel)
    if inputs.dtype == torch.bool:
        cols = _unfold(inputs, kernel, stride, padding)
        g = _binary_grad(d, cols, "rol,rkl->ok")
    else:
        cols16 = _unfold(inputs, kernel, stride, padding).half()     # exact: the values are binary16
        g = _analog_grad(d[:, :, None, :], cols16[:, None, :, :], (0, 3))
    return ExactGrad(g.acc.reshape(shape), g.special.reshape(shape))


def sequential_fc_weight_grad(di: torch.Tensor, inputs: torch.Tensor, accumulator: str) -> torch.Tensor:
    """Ablation (not the contract): accumulate rows in ascending order in ``"fp16"`` or
    ``"fp32"``; returns the binary16 gradient (fp32 rounded once at the end)."""
    rows = di.shape[0]
    if inputs.dtype == torch.bool:
        terms_of = lambda r: torch.where(inputs[r][None, :], di[r][:, None], F.zeros(()))  # noqa: E731
    else:
        terms_of = lambda r: _product_terms(di[r][:, None], inputs[r][None, :])           # noqa: E731
    if accumulator == "fp16":
        acc = F.zeros(di.shape[1], inputs.shape[1])
        for r in range(rows):
            acc = F.add(acc, terms_of(r))
        return acc
    if accumulator == "fp32":
        acc = torch.zeros(di.shape[1], inputs.shape[1], dtype=torch.float32)
        for r in range(rows):
            if inputs.dtype == torch.bool:
                acc = acc + terms_of(r).float()
            else:  # fp32 accumulate of the exact product (fma32): δ·x is exact in float32
                acc = acc + torch.where(inputs[r][None, :] != 0, di[r][:, None].float() * inputs[r][None, :].float(),
                                        torch.zeros(()))
        return F.round16(acc.double())
    raise ValueError(f"unknown accumulator {accumulator!r}; choose fp16 or fp32")
