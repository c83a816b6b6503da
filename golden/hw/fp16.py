"""IEEE binary16 primitives of the numeric contract (docs/numerics.md §1).

Every value the hardware stores is a ``torch.float16`` tensor.  Each function here is one
operation of the FP16 datapath and rounds exactly once, to nearest with ties to even;
subnormals are kept (no flush to zero) and a NaN result is always the canonical quiet NaN
``0x7E00``.

How the rounding is made exact on a CPU
---------------------------------------
- ``add``, ``sub``, ``mul``: PyTorch's CPU half kernels compute in float32 and round the
  float32 result to half.  For one ``+``, ``−`` or ``×`` of two binary16 operands this double
  rounding is innocuous (24 ≥ 2·11 + 2 bits), so the result is the correctly rounded one.
- ``fma`` and the other fused operations: the exact product of two binary16 numbers has at
  most 22 significant bits and is exact in float64; adding the third operand rounds once in
  float64, and numpy rounds that float64 *directly* to binary16 (``astype(np.float16)``).
  The float64 rounding cannot change the final binary16 result: when the float64 sum is
  inexact, either the addend is far below half an ulp of the binary16 result (no tie can be
  created), or the product is ≥ 2^29 and the result overflows anyway (docs/numerics.md §1.3).
  PyTorch's own float64 → float16 cast goes through float32 and double-rounds: never use it.

All of it is checked against Berkeley SoftFloat (softfloatpy) in tests/golden/hw/test_fp16.py.
"""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["HALF", "U", "ETA", "NAN_BITS", "MAX", "MIN_NORMAL", "MIN_SUBNORMAL",
           "canon", "round16", "const", "zeros", "bits", "from_bits",
           "add", "sub", "mul", "fma", "fma_scaled", "neg", "absolute", "max0", "ge", "gt", "lt",
           "is_zero", "nonzero", "where"]

HALF = torch.float16
U = 2.0 ** -11                 # unit roundoff of binary16 (RNE)
ETA = 2.0 ** -25               # half the smallest subnormal: the absolute underflow error
NAN_BITS = 0x7E00              # the canonical NaN
MAX = 65504.0
MIN_NORMAL = 2.0 ** -14
MIN_SUBNORMAL = 2.0 ** -24

_NAN = torch.tensor(NAN_BITS, dtype=torch.int16).view(HALF)
_ZERO = torch.zeros((), dtype=HALF)


def _check(*xs):
    for x in xs:
        if not (isinstance(x, torch.Tensor) and x.dtype == HALF):
            raise TypeError(f"binary16 operation expects torch.float16 tensors, got "
                            f"{getattr(x, 'dtype', type(x).__name__)}")


def canon(x: torch.Tensor) -> torch.Tensor:
    """Replace every NaN by the canonical NaN 0x7E00 (other values unchanged)."""
    if x.numel() == 0 or not bool(torch.isnan(x.sum(dtype=torch.float32))):
        return x            # no NaN (a float32 sum is NaN whenever an element is)
    return torch.where(x.isnan(), _NAN, x)


def round16(x) -> torch.Tensor:
    """Round float64 (or float32, or anything numpy reads) to binary16, once, RNE."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    a = np.asarray(x, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        h = a.astype(np.float16)
    return canon(torch.from_numpy(np.ascontiguousarray(h)))


def const(value: float) -> torch.Tensor:
    """A register constant: ``value`` rounded once to binary16 (0-dim tensor)."""
    return round16(float(value)).reshape(())


def zeros(*shape) -> torch.Tensor:
    """A tensor of +0."""
    return torch.zeros(*shape, dtype=HALF)


def bits(x: torch.Tensor) -> torch.Tensor:
    """The 16-bit patterns as int32 in 0..65535 (for bit-exact comparisons)."""
    _check(x)
    return x.contiguous().view(torch.int16).to(torch.int32) & 0xFFFF


def from_bits(b) -> torch.Tensor:
    """binary16 tensor from 16-bit patterns (ints 0..65535)."""
    b = torch.as_tensor(b, dtype=torch.int32)
    return ((b & 0xFFFF).to(torch.int32) - ((b & 0x8000) << 1)).to(torch.int16).view(HALF)


def add(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``RNE(a + b)``."""
    _check(a, b)
    return canon(a + b)


def sub(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``RNE(a − b)``."""
    _check(a, b)
    return canon(a - b)


def mul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``RNE(a · b)``."""
    _check(a, b)
    return canon(a * b)


def _f64(x: torch.Tensor) -> np.ndarray:
    return x.numpy().astype(np.float64)


def fma(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """``RNE(a · b + c)`` with a single rounding (IEEE fusedMultiplyAdd)."""
    _check(a, b, c)
    with np.errstate(invalid="ignore", over="ignore"):
        r = _f64(a) * _f64(b) + _f64(c)
    return round16(r)


def fma_scaled(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, shift: int) -> torch.Tensor:
    """``RNE(c − a · b · 2^−shift)`` with a single rounding (the SGD update, §5).

    The power-of-two scale only shifts the exponent of the exact product, so the argument of
    :func:`fma` carries over unchanged.
    """
    _check(a, b, c)
    with np.errstate(invalid="ignore", over="ignore"):
        r = _f64(c) - (_f64(a) * _f64(b)) * (2.0 ** -int(shift))
    return round16(r)


def neg(a: torch.Tensor) -> torch.Tensor:
    """``−a`` (sign flip, exact)."""
    _check(a)
    return canon(-a)


def absolute(a: torch.Tensor) -> torch.Tensor:
    """``|a|`` (sign cleared, exact)."""
    _check(a)
    return canon(a.abs())


def max0(a: torch.Tensor) -> torch.Tensor:
    """``a if a > 0 else +0`` (a NaN gives +0: a comparator and a multiplexer)."""
    _check(a)
    return torch.where(a > 0, a, _ZERO)


def ge(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a ≥ b`` (IEEE compare: false if either is NaN)."""
    _check(a, b)
    return a >= b


def gt(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    _check(a, b)
    return a > b


def lt(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    _check(a, b)
    return a < b


def is_zero(a: torch.Tensor) -> torch.Tensor:
    """True for +0 and −0: the engines' skip condition."""
    _check(a)
    return a == 0


def nonzero(a: torch.Tensor) -> torch.Tensor:
    """True for every value that is not ±0 (NaN included)."""
    _check(a)
    return a != 0


def where(cond: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """A multiplexer (no arithmetic)."""
    return torch.where(cond, a, b)
