"""Bit-level building blocks of the FP16 datapaths (pure functions returning Values)."""

from amaranth.hdl import Cat, Const, Mux, Value

from .float16 import CANONICAL_NAN

__all__ = ["leading_zeros", "trailing_zeros", "gt_const", "below_mask", "round_pack",
           "select_result"]


def leading_zeros(value):
    """Leading-zero count of ``value`` as a balanced tree of 2:1 selections.

    The count saturates at ``len(value)`` for an all-zero input.  The tree pads the input
    with ones below its LSB up to a power of two, so every node is a (valid, count) pair
    merged as ``count = {~valid_hi, valid_hi ? count_hi : count_lo}``: depth log2(n) with
    one LUT level per tree level.

    Returns
    -------
    Value
        ``unsigned(ceil(log2(len(value) + 1)))``.
    """
    value = Value.cast(value)
    width = len(value)
    n = 2
    while n < width + 1:
        n *= 2
    padded = Cat(Const((1 << (n - width)) - 1, n - width), value)
    # level 0: pairs of bits (hi = odd index) -> (valid, count of 1 bit)
    nodes = []
    for k in range(0, n, 2):
        lo, hi = padded[k], padded[k + 1]
        nodes.append((hi | lo, ~hi))
    while len(nodes) > 1:
        merged = []
        for k in range(0, len(nodes), 2):
            (v_lo, c_lo), (v_hi, c_hi) = nodes[k], nodes[k + 1]
            merged.append((v_hi | v_lo, Cat(Mux(v_hi, c_hi, c_lo), ~v_hi)))
        nodes = merged
    count = nodes[0][1]
    out_width = max(1, width.bit_length())
    return count[:out_width]


def trailing_zeros(value):
    """Trailing-zero count of ``value`` (saturating at ``len(value)``), same tree."""
    value = Value.cast(value)
    return leading_zeros(Cat(*(value[k] for k in reversed(range(len(value))))))


def gt_const(value, constant):
    """``value > constant`` for an unsigned value, as plain logic.

    Yosys maps ``$gt`` against a constant to a carry chain on ECP5; this AND/OR ladder
    becomes one or two LUT levels instead.
    """
    value = Value.cast(value).as_unsigned()
    if constant < 0:
        return Const(1, 1)
    if constant >= (1 << len(value)) - 1:
        return Const(0, 1)
    result = Const(0, 1)
    for k in range(len(value)):
        result = (value[k] & result) if (constant >> k) & 1 else (value[k] | result)
    return result


def below_mask(amount, width, offset=0):
    """Thermometer mask: bit ``k`` is set when ``k + offset < amount``.

    ``(x & below_mask(n, len(x))) != 0`` is the OR of the ``n`` lowest bits of ``x``:
    the sticky bit of a right shift by ``n``, computed beside the shifter instead of
    through it.
    """
    return Cat(*(gt_const(amount, k + offset) for k in range(width)))


def round_pack(exp_m1, significand, guard, sticky):
    """Round to nearest, ties to even, and pack exponent and fraction.

    Parameters
    ----------
    exp_m1 : Value
        Biased exponent minus one of the significand's hidden-bit position; 0 for a
        subnormal (whose hidden bit is then 0).  Must be <= 29 (callers flag overflow
        themselves when it is larger).
    significand : Value
        11 bits, hidden bit included.
    guard, sticky : Value
        The first dropped bit and the OR of all bits below it.

    Returns
    -------
    Value
        The 15-bit magnitude ``exponent:fraction``.  Rounding carries propagate from
        the fraction into the exponent, so a subnormal can round up to the smallest
        normal and the largest finite value up to infinity (0x7C00) by construction.
    """
    round_up = guard & (sticky | significand[0])
    base = Cat(significand[:10], Value.cast(exp_m1)[:5])
    addend = Cat(round_up, Const(0, 9), significand[10])
    return (base + addend)[:15]


def select_result(*, sign, magnitude, nan, inf, inf_sign, overflow, zero, zero_sign):
    """The final 16-bit result: NaN > infinity > overflow > exact zero > rounded value."""
    return Mux(nan, Const(CANONICAL_NAN, 16),
               Mux(inf, Cat(Const(0x7C00, 15), inf_sign),
                   Mux(overflow, Cat(Const(0x7C00, 15), sign),
                       Mux(zero, Cat(Const(0, 15), zero_sign),
                           Cat(magnitude, sign)))))
