"""binary16 ↔ exact fixed point in units of 2^−24 (docs/numerics.md §5): the aligner that
feeds the WG engine's integer accumulators, and the single rounding back to binary16.

Every finite binary16 value is an integer number of units of 2^−24 (the subnormal step),
below 2^40: ``significand << (max(exponent, 1) − 1)`` with the sign applied.  The sum of
such terms is exact in a wide two's-complement integer; ``fixed_to_float16`` rounds it
once (to nearest, ties to even).  Infinite and NaN terms are tracked beside the integer as
three flags (NaN seen, +inf seen, −inf seen).
"""

from amaranth.hdl import Cat, Const, Mux, Signal, Value

from ..fp16 import Float16
from ..fp16.bits import leading_zeros, round_pack

__all__ = ["FIXED_FRACTION_BITS", "TERM_BITS", "float16_to_fixed", "fixed_to_float16",
           "fixed_normalize", "fixed_round", "special_flags"]

#: The accumulator's unit is 2^−FIXED_FRACTION_BITS.
FIXED_FRACTION_BITS = 24
#: Width of one term: sign + 40 magnitude bits (|x| < 2^40 units for every finite x).
TERM_BITS = 41


def special_flags(x):
    """``(nan, pinf, ninf)`` of a binary16 value."""
    v = Float16(Value.cast(x))
    return v.is_nan(), v.is_inf() & ~v.sign, v.is_inf() & v.sign


def float16_to_fixed(x):
    """A binary16 value as a signed ``TERM_BITS``-bit integer in units of 2^−24.

    ±0, ±inf and NaN give 0 (use :func:`special_flags` for the last two).  Pure
    combinational logic: an 11-bit significand shifted left by 0 … 29.
    """
    v = Float16(Value.cast(x))
    finite = v.exponent != 0x1F
    shift = Mux(v.exponent == 0, 0, v.exponent - 1)[:5]
    magnitude = Mux(finite, v.significand() << shift, 0)[:TERM_BITS - 1]
    mag = Cat(magnitude, Const(0, 1)).as_signed()
    return Mux(v.sign, -mag, mag)[:TERM_BITS].as_signed()


def fixed_to_float16(m, acc, nan, pinf, ninf):
    """``RNE(acc · 2^−24)`` as binary16, or the special value (NaN if ``nan`` or both
    infinities were seen, else the infinity seen).  ``acc`` is a two's-complement integer
    of any width.  Exact zero → +0.  Combinational logic added to module ``m``
    (:func:`fixed_normalize` then :func:`fixed_round`); returns a 16-bit Value.
    """
    sign, a, lz = fixed_normalize(m, acc)
    return fixed_round(m, sign, a, lz, nan, pinf, ninf)


def fixed_normalize(m, acc):
    """First half of the rounding: ``(sign, magnitude, leading zeros)`` of ``acc`` (the
    two halves can be split by a register)."""
    acc = Value.cast(acc)
    width = len(acc)
    sign = Signal(name="f2h_sign")
    a = Signal(width, name="f2h_mag")        # signals, so that every use shares the logic
    lz = Signal(range(width + 1), name="f2h_lz")
    m.d.comb += [
        sign.eq(acc[-1]),
        a.eq(Mux(acc[-1], -acc.as_signed(), acc.as_signed()).as_unsigned()[:width]),
        lz.eq(leading_zeros(a)),
    ]
    return sign, a, lz


def fixed_round(m, sign, a, lz, nan, pinf, ninf):
    """Second half: normalising shift, one rounding, specials; a 16-bit Value."""
    a = Value.cast(a)
    width = len(a)
    norm = Signal(width, name="f2h_norm")
    m.d.comb += norm.eq((a << lz)[:width])            # leading one at bit width−1
    # a < 2^10: a subnormal (or zero) result, exact; otherwise the leading one is at
    # position p = width−1−lz ≥ 10, the biased exponent is p − 9, exp_m1 = p − 10.
    small = lz > width - 11
    exp_m1 = _unsigned(width - 11 - lz, width)
    sig = norm[width - 11:width]
    guard = norm[width - 12]
    sticky = norm[:width - 12].any()
    overflow = ~small & (exp_m1 >= 30)
    mag_normal = round_pack(exp_m1[:5], sig, guard, sticky)
    mag = Mux(small, a[:15], mag_normal)
    result = Mux(overflow, Cat(Const(0x7C00, 15), sign), Cat(mag, sign))
    result = Mux(a == 0, Const(0, 16), result)
    return Mux(nan | (pinf & ninf), Const(0x7E00, 16),
               Mux(pinf, Const(0x7C00, 16), Mux(ninf, Const(0xFC00, 16), result)))


def _unsigned(value, width):
    """``value`` as an unsigned Value wide enough for 0 … width."""
    return Value.cast(value).as_unsigned()[:max(1, width.bit_length() + 1)]
