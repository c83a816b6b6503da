"""FP16 multiplier."""

from amaranth.hdl import Cat, Const, Mux

from .bits import gt_const, leading_zeros, round_pack, select_result, trailing_zeros
from .float16 import Float16
from .pipeline import PipelinedUnit

__all__ = ["FPMul"]


class FPMul(PipelinedUnit):
    """IEEE 754 binary16 multiplication ``z = a * b``.

    Round to nearest, ties to even; subnormals kept (a subnormal operand is normalised
    after the product, a subnormal result is produced by the same shifter); the sign of
    a zero or infinite result is ``a.sign ^ b.sign``; ``0 * inf`` and NaN operands give
    the canonical NaN 0x7E00.

    The 11x11-bit significand product is one ``*`` that synthesis maps onto a single
    ECP5 MULT18X18D; with ``stages >= 3`` registers sit right before and right after it.

    Datapath steps: unpack and exponent sum; product; leading-zero count of the
    product and shift amount (left for a subnormal operand, right for a subnormal
    result); one funnel shift with sticky; round and pack.

    Parameters
    ----------
    stages : int
        Register ranks (= latency in cycles), 0..5; default 4.
    backpressure : bool
        Honour ``o.ready`` with a global stall (see :class:`PipelinedUnit`).
    tag_width : int
        Optional side-band tag carried from ``i`` to ``o``.
    cuts : tuple of int, optional
        Explicit register placement (boundaries 1..5).

    Members
    -------
    i : In(stream.Signature(StructLayout))
        Payload fields ``a: Float16``, ``b: Float16`` and ``tag`` when ``tag_width > 0``.
    o : Out(stream.Signature(StructLayout))
        Payload fields ``z: Float16`` and ``tag``.
    """

    STEPS = (
        ("unpack", 3.5),     # exponent sum, trailing zeros, special cases
        ("multiply", 6.0),   # 11x11 product (DSP), overflow
        ("lzc", 5.0),        # leading zeros of the product, shift amount
        ("shift", 4.5),      # 12-bit window of the product, sticky
        ("round", 4.0),      # round, pack, special cases
    )
    DEFAULT_STAGES = 4

    def __init__(self, stages=None, *, backpressure=False, tag_width=0, cuts=None):
        super().__init__({"a": Float16, "b": Float16}, {"z": Float16},
                         stages=stages, backpressure=backpressure, tag_width=tag_width,
                         cuts=cuts)

    def datapath(self, m, pipe, p):
        a, b = p.a, p.b
        a_zero, b_zero = a.is_zero(), b.is_zero()
        a_inf, b_inf = a.is_inf(), b.is_inf()
        # esum = ea + eb (one short carry chain); everything else derives from it in
        # parallel.  The biased exponent - 1 of the product with its leading one at bit
        # 21 is em1 = esum - 15; a subnormal result is shifted right by r_sub = 26 - esum.
        esum = a.effective_exponent() + b.effective_exponent()     # 2..60
        s = pipe.stage(
            sign=a.sign ^ b.sign, ma=a.significand(), mb=b.significand(),
            tz_a=trailing_zeros(a.significand()), tz_b=trailing_zeros(b.significand()),
            em1=esum - 15, r_sub=(26 - esum)[:5],
            # overflow needs both operands normal, so the product's leading zeros are 0/1
            ovf_ge31=gt_const(esum, 45), ovf_eq30=esum == 45,
            nan=a.is_nan() | b.is_nan() | (a_inf & b_zero) | (b_inf & a_zero),
            inf=a_inf | b_inf, zero=a_zero | b_zero,
        )

        product = s.ma * s.mb                                  # 22 bits
        # the product has tz_a + tz_b trailing zeros: its sticky bits need no OR tree
        s = pipe.stage(sign=s.sign, product=product, em1=s.em1, r_sub=s.r_sub,
                       tz1=s.tz_a + s.tz_b + 1,
                       overflow=s.ovf_ge31 | (s.ovf_eq30 & product[21]),
                       nan=s.nan, inf=s.inf, zero=s.zero)

        # Normal result: shift left by lz (0 or 1, up to 11 for a subnormal operand);
        # exponent em1 - lz.  If that would go below 1 the result is subnormal: the
        # shift is em1 instead (negative = right) and the exponent field 0.
        # window[k] = product[k + r - 1] with r = 11 - shift (clamped at 23: all sticky)
        lz = leading_zeros(s.product[10:22])                   # 0..12
        normal = s.em1 >= lz
        r = Mux(normal, (11 - lz)[:5], s.r_sub)[:5]
        s = pipe.stage(sign=s.sign, product=s.product, r=r, em1=s.em1, lz=lz, tz1=s.tz1,
                       normal=normal, overflow=s.overflow,
                       nan=s.nan, inf=s.inf, zero=s.zero)

        p2 = Cat(Const(0, 1), s.product)                       # p2[j] = product[j-1]
        window = (p2 >> s.r)[:12]
        sticky = s.tz1 < s.r            # some p2[j] = 1 with j < r (p2 has tz + 1 zeros)
        exp_m1 = Mux(s.normal, (s.em1 - s.lz)[:5], 0)[:5]
        s = pipe.stage(sign=s.sign, sig=window[1:12], guard=window[0], sticky=sticky,
                       exp_m1=exp_m1, overflow=s.overflow,
                       nan=s.nan, inf=s.inf, zero=s.zero)

        magnitude = round_pack(s.exp_m1, s.sig, s.guard, s.sticky)
        z = select_result(sign=s.sign, magnitude=magnitude, nan=s.nan, inf=s.inf,
                          inf_sign=s.sign, overflow=s.overflow, zero=s.zero,
                          zero_sign=s.sign)
        s = pipe.stage(z=z)
        return {"z": s.z}
