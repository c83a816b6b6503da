"""FP16 fused multiply-add."""

from amaranth.hdl import Cat, Const, Mux

from .bits import below_mask, gt_const, leading_zeros, round_pack, select_result
from .float16 import Float16
from .pipeline import PipelinedUnit

__all__ = ["FPFMA"]

# Window of the sum, 38 bits (3p + 5 for p = 11):
#   bit 37      carry
#   bits 36..26 addend significand at its left-most position (addend 13 binades above
#               the product's unit); shifted right from there by 13 - delta
#   bits 24..3  the exact 22-bit product (its bit 20, the unit of a normalised product,
#               sits at bit 23)
#   bits 2..1   two more exact addend bits below the product
#   bit 0       sticky: OR of the addend bits shifted out of the window
# If the addend is more than 13 binades above the product's unit, the product only
# matters as a sticky bit: it is replaced by one at bit 0 ("pmode"; also used when the
# product is zero, so that a tiny addend is anchored at its own exponent).  Two exact
# addend bits below the product suffice: an addend reaching further down is below 2^-2
# of a non-zero product (whose leading one is at least product bit 10), so the sum's
# leading one stays within one position of the product's and the addend bits below the
# guard position only matter as sticky.
_W = 38


class FPFMA(PipelinedUnit):
    """IEEE 754 binary16 fused multiply-add, ``z = (±a) * b ± c`` with a single rounding.

    The product is exact (22 bits); the sum is rounded once, to nearest, ties to even.
    Subnormals are kept.  An exact zero result is +0 unless the product and the addend
    are zeros of the same sign.  NaN operands, ``0 * inf`` and ``inf - inf`` give the
    canonical NaN 0x7E00 (also when ``c`` is a NaN and the product is ``0 * inf``).

    ``neg_prod`` negates the product and ``neg_c`` the addend (fmsub: ``neg_c``;
    fnmadd: both; fnmsub: ``neg_prod``), exactly as negating the operand would.

    With ``scale_width > 0`` the payload has a ``scale`` field and the unit computes
    ``z = (±a) * b * 2^-scale ± c``, still with one rounding (the SGD update's
    ``W − lr·g·2^−s``, docs/numerics.md §6): the scale only moves the exact product's
    exponent, so it enters the alignment amount and the normalisation limit and nothing
    else.  A product scaled below the window keeps acting as a sticky bit, so subnormal
    and zero results round correctly for any scale.  With ``scale_width = 0`` (default)
    the logic is exactly the unscaled unit's.

    Datapath steps: unpack and exponent arithmetic; product (one MULT18X18D) beside the
    addend alignment shifter; add/subtract in a 38-bit window (both ``P-A`` and ``A-P``
    so no negation step is needed); 38-bit leading-zero count; normalising shift in two
    halves (the shift is capped at the subnormal boundary), sticky beside it; round and
    pack.

    Parameters
    ----------
    stages : int
        Register ranks (= latency in cycles), 0..7; default 6.
    backpressure : bool
        Honour ``o.ready`` with a global stall (see :class:`PipelinedUnit`).
    tag_width : int
        Optional side-band tag carried from ``i`` to ``o``.
    cuts : tuple of int, optional
        Explicit register placement (boundaries 1..7).
    scale_width : int
        Width of the optional unsigned ``scale`` input (0: none).

    Members
    -------
    i : In(stream.Signature(StructLayout))
        Payload fields ``a, b, c: Float16``, ``neg_prod: 1``, ``neg_c: 1``, [``scale``]
        and ``tag``.
    o : Out(stream.Signature(StructLayout))
        Payload fields ``z: Float16`` and ``tag``.
    """

    STEPS = (
        ("unpack", 5.0),     # exponent arithmetic, alignment amount, special cases
        ("multiply", 6.0),   # product (DSP) || addend alignment shift
        ("add", 5.0),        # 38-bit add, P-A and A-P in parallel
        ("lzc", 5.0),        # 38-bit leading-zero count
        ("shift_hi", 5.5),   # shift cap, shift by 0/8/16/24/32, sticky
        ("shift_lo", 3.0),   # shift by 0..7
        ("round", 4.5),      # round, pack, special cases
    )
    DEFAULT_STAGES = 6

    def __init__(self, stages=None, *, backpressure=False, tag_width=0, cuts=None,
                 scale_width=0):
        if not isinstance(scale_width, int) or scale_width < 0:
            self._MustUse__silence = True
            raise ValueError(f"scale_width must be a non-negative integer, not {scale_width!r}")
        self.scale_width = scale_width
        fields = {"a": Float16, "b": Float16, "c": Float16, "neg_prod": 1, "neg_c": 1}
        if scale_width:
            fields["scale"] = scale_width
        super().__init__(
            fields,
            {"z": Float16},
            stages=stages, backpressure=backpressure, tag_width=tag_width, cuts=cuts)

    def datapath(self, m, pipe, p):
        a, b, c = p.a, p.b, p.c
        sp = a.sign ^ p.neg_prod ^ b.sign
        sc = c.sign ^ p.neg_c
        sub = sp ^ sc
        a_zero, b_zero = a.is_zero(), b.is_zero()
        a_inf, b_inf, c_inf = a.is_inf(), b.is_inf(), c.is_inf()
        prod_inf = a_inf | b_inf
        ea, eb, ec = a.effective_exponent(), b.effective_exponent(), c.effective_exponent()
        # Product unit exponent EP = ea + eb - 15, delta = ec - EP.  The addend is shifted
        # right from its left-most slot by 13 - delta = ea + eb - ec - 2 = u - 1 with
        # u = ea + eb + ~ec (7-bit): one carry-save level and one carry chain.
        x, y = ea.as_unsigned(), eb.as_unsigned()
        if self.scale_width:
            # the scaled product's unit sits `scale` binades lower: u = ea + eb + ~ec +
            # ~scale + 1 in a wider word, a second carry-save level keeping one carry chain
            wd = max(7, self.scale_width + 1) + 1
            xw, yw = Cat(x, Const(0, wd - 5)), Cat(y, Const(0, wd - 5))
            zw = ~Cat(ec, Const(0, wd - 5))
            nw = ~Cat(p.scale, Const(0, wd - self.scale_width))
            s1 = xw ^ yw ^ zw
            c1 = Cat(Const(0, 1), ((xw & yw) | (xw & zw) | (yw & zw))[:wd - 1])
            s2 = s1 ^ c1 ^ nw
            c2 = Cat(Const(1, 1), ((s1 & c1) | (s1 & nw) | (c1 & nw))[:wd - 1])
            u = (s2 + c2)[:wd].as_signed()
            esum = ea + eb - p.scale
            u_low, u_high = u < 1, u > 38
        else:
            z = ~Cat(ec, Const(0, 2))
            csa_sum = (Cat(x, Const(0, 2)) ^ Cat(y, Const(0, 2)) ^ z)[:7]
            csa_carry = Cat(Const(0, 1), (x & y) | (x & z[:5]) | (y & z[:5]), Const(0, 1))
            u = (csa_sum + csa_carry)[:7].as_signed()           # sh + 1, -30..58
            esum = ea + eb
            u_low, u_high = u[6] | (u[:6] == 0), gt_const(u[:6], 38)
        # addend far above the product (or the product is zero): anchor the window at
        # the addend and keep the product only as a sticky bit
        prod_zero = a_zero | b_zero
        pmode = u_low | prod_zero
        u_sat = Mux(pmode, 1, Mux(u_high, 38, u[:6]))[:6]                  # 1..38
        s = pipe.stage(
            sp=sp, sc=sc, sub=sub, ma=a.significand(), mb=b.significand(),
            mc=c.significand(), u=u_sat, pmode=pmode, prod_zero=prod_zero,
            esum=esum, ec=ec,
            nan=(a.is_nan() | b.is_nan() | c.is_nan() | (a_inf & b_zero) | (b_inf & a_zero)
                 | (prod_inf & c_inf & sub)),
            inf=prod_inf | c_inf, inf_sign=Mux(prod_inf, sp, sc),
        )

        product = s.ma * s.mb                                            # 22 bits
        field = (Cat(Const(0, 26), s.mc) >> s.u)[:36]                    # window 36..1
        sticky_c = (s.mc & below_mask(s.u, 11, offset=26)).any()
        # largest normalising shift keeping the exponent >= 1 (E_ref + 13, E_ref the
        # exponent of window bit 23: EP, or ec - 13 when the product is only sticky)
        lim = Mux(s.pmode, s.ec, (s.esum - 2)[:6])[:6]
        addend = Cat(sticky_c, field, Const(0, 1))
        prod_w = Mux(s.pmode, Cat(~s.prod_zero, Const(0, _W - 1)),
                     Cat(Const(0, 3), product, Const(0, _W - 25)))
        s = pipe.stage(sp=s.sp, sc=s.sc, sub=s.sub, prod=prod_w, addend=addend, lim=lim,
                       nan=s.nan, inf=s.inf, inf_sign=s.inf_sign)

        # S1 = P + (sub ? ~A + 1 : A) in one carry chain; S2 = A - P beside it
        wide = Cat(Const(1, 1), s.prod) + Cat(s.sub, s.addend ^ s.sub.replicate(_W))
        s1 = wide[1:_W + 2]                                              # 39 bits
        s2 = (s.addend - s.prod)[:_W]
        neg = s.sub & ~s1[_W]
        mag = Mux(neg, s2, s1[:_W])
        s = pipe.stage(sign=Mux(neg, s.sc, s.sp), zero_sign=s.sp & ~s.sub, mag=mag,
                       lim=s.lim, nan=s.nan, inf=s.inf, inf_sign=s.inf_sign)

        lzc = leading_zeros(s.mag)                                       # 0..38
        # sticky of the coarse shift (by 0/8/16/24/32): the bits that stay below bit 19
        # are mag[0:19-8q]; their ORs are ready before the shift amount is
        s = pipe.stage(sign=s.sign, zero_sign=s.zero_sign, mag=s.mag, lzc=lzc,
                       lim=s.lim, zero=s.mag == 0, or3=s.mag[:3].any(),
                       or11=s.mag[:11].any(), or19=s.mag[:19].any(),
                       nan=s.nan, inf=s.inf, inf_sign=s.inf_sign)

        shift = Mux(s.lzc < s.lim, s.lzc, s.lim)[:6]                     # 0..38
        exp_m1 = (s.lim - shift)[:6]
        q = shift[3:6]
        hi = (s.mag << Cat(Const(0, 3), q))[:_W]
        sticky_hi = Mux(q == 0, s.or19, Mux(q == 1, s.or11, Mux(q == 2, s.or3, 0)))
        s = pipe.stage(sign=s.sign, zero_sign=s.zero_sign, top=hi[_W - 19:_W],
                       shift_lo=shift[:3], sticky_hi=sticky_hi, exp_m1=exp_m1[:5],
                       overflow=gt_const(exp_m1, 29), zero=s.zero,
                       nan=s.nan, inf=s.inf, inf_sign=s.inf_sign)

        # top = hi[19:38]; the final guard is bit 26 = top[7]; top[k] ends below it
        # when k + shift_lo < 7
        out = (s.top << s.shift_lo)[7:19]                                # guard + 11
        sticky_lo = (s.top[:7] & Cat(*(~gt_const(s.shift_lo, 6 - k) for k in range(7)))).any()
        s = pipe.stage(sign=s.sign, zero_sign=s.zero_sign, sig=out[1:12], guard=out[0],
                       sticky=s.sticky_hi | sticky_lo, exp_m1=s.exp_m1,
                       overflow=s.overflow, zero=s.zero,
                       nan=s.nan, inf=s.inf, inf_sign=s.inf_sign)

        magnitude = round_pack(s.exp_m1, s.sig, s.guard, s.sticky)
        z = select_result(sign=s.sign, magnitude=magnitude, nan=s.nan, inf=s.inf,
                          inf_sign=s.inf_sign, overflow=s.overflow, zero=s.zero,
                          zero_sign=s.zero_sign)
        s = pipe.stage(z=z)
        return {"z": s.z}
