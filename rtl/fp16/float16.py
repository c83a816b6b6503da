"""The IEEE 754 binary16 value type shared by every FP16 unit."""

from amaranth.hdl import Cat, Const, Mux
from amaranth.lib import data

__all__ = [
    "Float16", "CANONICAL_NAN", "POS_INF", "NEG_INF", "MAX_FINITE", "BIAS",
]

#: The one NaN every unit produces (quiet, positive, payload 0x200).
CANONICAL_NAN = 0x7E00
#: +infinity and -infinity.
POS_INF = 0x7C00
NEG_INF = 0xFC00
#: Largest finite magnitude (65504.0).
MAX_FINITE = 0x7BFF
#: Exponent bias of binary16.
BIAS = 15


class Float16(data.Struct):
    """An IEEE 754 binary16 number, laid out as in memory (bit 15 = sign).

    A ``Signal(Float16)`` or any 16-bit value cast with ``Float16(value)`` is a
    view with the members below and the classification helpers.

    Members
    -------
    mantissa : unsigned(10)
        Fraction field, bits 0-9 (without the hidden bit).
    exponent : unsigned(5)
        Biased exponent field, bits 10-14 (0: zero/subnormal, 31: inf/NaN).
    sign : unsigned(1)
        Sign, bit 15 (1: negative).
    """

    mantissa: 10
    exponent: 5
    sign: 1

    def is_nan(self):
        """1 when the value is a NaN (quiet or signalling)."""
        return (self.exponent == 0x1F) & (self.mantissa != 0)

    def is_inf(self):
        """1 when the value is +inf or -inf."""
        return (self.exponent == 0x1F) & (self.mantissa == 0)

    def is_zero(self):
        """1 when the value is +0 or -0."""
        return (self.exponent == 0) & (self.mantissa == 0)

    def is_subnormal(self):
        """1 when the value is a (non-zero) subnormal."""
        return (self.exponent == 0) & (self.mantissa != 0)

    def magnitude(self):
        """The 15 bits below the sign (orders finite values by magnitude)."""
        return Cat(self.mantissa, self.exponent)

    def hidden(self):
        """The implicit leading bit: 1 for normal numbers, 0 for zero/subnormals."""
        return self.exponent != 0

    def significand(self):
        """The 11-bit significand including the hidden bit."""
        return Cat(self.mantissa, self.hidden())

    def effective_exponent(self):
        """The biased exponent with subnormals mapped to 1 (their true scale)."""
        return Mux(self.exponent == 0, Const(1, 5), self.exponent)
