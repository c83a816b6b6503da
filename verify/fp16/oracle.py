"""Reference results for FP16 operations from Berkeley SoftFloat (softfloatpy) and NumPy.

All functions take and return NumPy arrays of raw bit patterns (``uint16`` for FP16
values), element by element.  Every NaN result is replaced by the canonical NaN 0x7E00,
which is the contract of the RTL.  There is deliberately no home-grown bit-level model
here: SoftFloat (RISC-V specialisation, round to nearest even) is the oracle for every
operation, NumPy's float16 a second, independent one for add/sub/mul.
"""

import numpy as np
import softfloatpy as sf

__all__ = [
    "CANONICAL_NAN", "canonicalize", "is_nan",
    "sf_add", "sf_sub", "sf_mul", "sf_fma", "sf_compare", "sf_from_int", "sf_to_int",
    "np_add", "np_sub", "np_mul",
]

CANONICAL_NAN = 0x7E00
_F16 = None


def _table():
    global _F16
    if _F16 is None:
        _F16 = [sf.Float16.from_bytes(i.to_bytes(2, "big")) for i in range(1 << 16)]
    return _F16


def _u16(a):
    return np.asarray(a).astype(np.uint16, copy=False).ravel()


def is_nan(bits):
    """Boolean array: the FP16 bit patterns that are NaNs."""
    bits = _u16(bits)
    return ((bits & 0x7C00) == 0x7C00) & ((bits & 0x03FF) != 0)


def canonicalize(bits):
    """Replace every NaN bit pattern by 0x7E00."""
    bits = _u16(bits).copy()
    bits[is_nan(bits)] = CANONICAL_NAN
    return bits


def _with_rne():
    sf.set_rounding_mode(sf.RoundingMode.NEAR_EVEN)


def _binary(fn, a, b):
    _with_rne()
    table = _table()
    fb = int.from_bytes
    a, b = _u16(a), _u16(b)
    out = np.fromiter((fb(fn(table[x], table[y]).to_bytes(), "big")
                       for x, y in zip(a.tolist(), b.tolist())), dtype=np.uint16, count=len(a))
    return canonicalize(out)


def sf_add(a, b):
    """``a + b`` (SoftFloat ``f16_add``)."""
    return _binary(sf.f16_add, a, b)


def sf_sub(a, b):
    """``a - b`` (SoftFloat ``f16_sub``)."""
    return _binary(sf.f16_sub, a, b)


def sf_mul(a, b):
    """``a * b`` (SoftFloat ``f16_mul``)."""
    return _binary(sf.f16_mul, a, b)


def sf_fma(a, b, c, neg_prod=0, neg_c=0):
    """``(±a) * b ± c`` with one rounding (SoftFloat ``f16_mulAdd``).

    Negating an operand is exact, so ``neg_prod`` flips the sign bit of ``a`` and
    ``neg_c`` that of ``c`` before the fused operation.
    """
    _with_rne()
    table = _table()
    fb = int.from_bytes
    a, b, c = _u16(a), _u16(b), _u16(c)
    n = len(a)
    neg_prod = np.broadcast_to(np.asarray(neg_prod, dtype=np.uint16), (n,))
    neg_c = np.broadcast_to(np.asarray(neg_c, dtype=np.uint16), (n,))
    a = a ^ (neg_prod << 15).astype(np.uint16)
    c = c ^ (neg_c << 15).astype(np.uint16)
    fma = sf.f16_mul_add
    out = np.fromiter((fb(fma(table[x], table[y], table[z]).to_bytes(), "big")
                       for x, y, z in zip(a.tolist(), b.tolist(), c.tolist())),
                      dtype=np.uint16, count=n)
    return canonicalize(out)


def sf_compare(a, b):
    """IEEE quiet predicates and minimumNumber/maximumNumber.

    Returns
    -------
    dict of str to ndarray
        ``equal``, ``less``, ``less_equal``, ``unordered`` (uint8) from SoftFloat's ``f16_eq``,
        ``f16_lt_quiet``, ``f16_le_quiet``; ``min``/``max`` (uint16): the other operand
        when exactly one is a NaN, 0x7E00 when both are, ``-0`` below ``+0``, otherwise
        the operand SoftFloat orders first/last.
    """
    table = _table()
    a, b = _u16(a), _u16(b)
    eq = np.fromiter((sf.f16_eq(table[x], table[y]) for x, y in zip(a.tolist(), b.tolist())),
                     dtype=np.uint8, count=len(a))
    lt = np.fromiter((sf.f16_lt_quiet(table[x], table[y])
                      for x, y in zip(a.tolist(), b.tolist())), dtype=np.uint8, count=len(a))
    le = np.fromiter((sf.f16_le_quiet(table[x], table[y])
                      for x, y in zip(a.tolist(), b.tolist())), dtype=np.uint8, count=len(a))
    a_nan, b_nan = is_nan(a), is_nan(b)
    unordered = (a_nan | b_nan).astype(np.uint8)
    both_zero = ((a & 0x7FFF) == 0) & ((b & 0x7FFF) == 0)
    # a before b in the total order with -0 < +0 (only used when neither is a NaN)
    a_first = np.where(both_zero, (a >> 15) > (b >> 15), lt.astype(bool))
    mn = np.where(a_first, a, b)
    mx = np.where(a_first, b, a)
    # equal non-zero values: both choices are the same bits
    mn = np.where(a_nan & ~b_nan, b, np.where(b_nan & ~a_nan, a, mn))
    mx = np.where(a_nan & ~b_nan, b, np.where(b_nan & ~a_nan, a, mx))
    mn = np.where(a_nan & b_nan, CANONICAL_NAN, mn).astype(np.uint16)
    mx = np.where(a_nan & b_nan, CANONICAL_NAN, mx).astype(np.uint16)
    return {"equal": eq, "less": lt, "less_equal": le, "unordered": unordered,
            "min": mn, "max": mx}


def sf_from_int(values, width=16, signed=True):
    """Integer to FP16, round to nearest even (SoftFloat ``i32/i64/ui32/ui64_to_f16``)."""
    _with_rne()
    values = np.asarray(values).ravel().tolist()
    if signed:
        conv, make = ((sf.i32_to_f16, sf.Int32.from_int) if width <= 32
                      else (sf.i64_to_f16, sf.Int64.from_int))
    else:
        conv, make = ((sf.ui32_to_f16, sf.UInt32.from_int) if width <= 32
                      else (sf.ui64_to_f16, sf.UInt64.from_int))
    fb = int.from_bytes
    out = np.fromiter((fb(conv(make(int(v))).to_bytes(), "big") for v in values),
                      dtype=np.uint16, count=len(values))
    return canonicalize(out)


def sf_to_int(a, width=16, signed=True, rounding="nearest_even"):
    """FP16 to a ``width``-bit integer with RISC-V saturation.

    SoftFloat's ``f16_to_i32``/``f16_to_ui32`` (``f16_to_i64``/``ui64`` above 32 bits)
    give the rounded value, the RISC-V out-of-range results (NaN and +overflow: the
    largest integer; -overflow: the smallest) and the invalid flag; narrower widths are
    then clamped, and clamping raises invalid.

    Returns
    -------
    (ndarray of int64 or object, ndarray of uint8)
        The integers (as Python-sized values) and the invalid flags.
    """
    mode = {"nearest_even": sf.RoundingMode.NEAR_EVEN,
            "toward_zero": sf.RoundingMode.MIN_MAG}[rounding]
    if signed:
        conv = sf.f16_to_i32 if width <= 32 else sf.f16_to_i64
        lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    else:
        conv = sf.f16_to_ui32 if width <= 32 else sf.f16_to_ui64
        lo, hi = 0, (1 << width) - 1
    table = _table()
    a = _u16(a)
    values, invalid = [], []
    invalid_flag = sf.ExceptionFlag.INVALID
    for x in a.tolist():
        sf.set_exception_flags(0)
        r = conv(table[x], mode, False).to_int()
        inv = sf.test_exception_flags(invalid_flag)
        if r < lo:
            r, inv = lo, True
        elif r > hi:
            r, inv = hi, True
        values.append(r)
        invalid.append(inv)
    dtype = np.int64 if width <= 63 or signed else object
    return np.array(values, dtype=dtype), np.array(invalid, dtype=np.uint8)


def _np_binary(op, a, b):
    a16 = _u16(a).view(np.float16)
    b16 = _u16(b).view(np.float16)
    with np.errstate(all="ignore"):
        r = op(a16, b16)
    return canonicalize(r.view(np.uint16))


def np_add(a, b):
    """``a + b`` with NumPy float16 (computed wider and rounded once: exact for +, -, *)."""
    return _np_binary(np.add, a, b)


def np_sub(a, b):
    """``a - b`` with NumPy float16."""
    return _np_binary(np.subtract, a, b)


def np_mul(a, b):
    """``a * b`` with NumPy float16."""
    return _np_binary(np.multiply, a, b)
