"""FP16 adder/subtractor."""

from amaranth.hdl import Cat, Const, Mux

from .bits import below_mask, leading_zeros, round_pack, select_result
from .float16 import Float16
from .pipeline import PipelinedUnit

__all__ = ["FPAdd"]


class FPAdd(PipelinedUnit):
    """IEEE 754 binary16 addition and subtraction: ``z = a + b`` or ``z = a - b``.

    Round to nearest, ties to even; subnormal inputs and outputs are kept; an exact zero
    sum is +0 unless both addends are -0 (``-0 + -0 = -0``, ``-0 - +0 = -0``); every NaN
    result (a NaN operand, ``inf - inf``) is the canonical NaN 0x7E00.

    Datapath (one step each, registers placed by ``stages``): swap by magnitude;
    align the smaller operand (guard, round, sticky); add/subtract; leading-zero count
    bounded by the exponent (so subnormal results come out right); normalise; round
    and pack.

    Parameters
    ----------
    stages : int
        Register ranks (= latency in cycles), 0..6; default 4.
    backpressure : bool
        Honour ``o.ready`` with a global stall (see :class:`PipelinedUnit`).
    tag_width : int
        Optional side-band tag carried from ``i`` to ``o``.
    cuts : tuple of int, optional
        Explicit register placement (boundaries 1..6).

    Members
    -------
    i : In(stream.Signature(StructLayout))
        Payload fields ``a: Float16``, ``b: Float16``, ``sub: 1`` (1: ``a - b``)
        and ``tag`` when ``tag_width > 0``.
    o : Out(stream.Signature(StructLayout))
        Payload fields ``z: Float16`` and ``tag``.
    """

    STEPS = (
        ("swap", 4.0),       # 15-bit magnitude compare, operand swap, specials
        ("align", 4.5),      # right shift 0..13 with sticky
        ("add", 3.0),        # 15-bit add/subtract
        ("lzc", 3.5),        # leading zeros with exponent limit
        ("normalize", 4.0),  # left shift 0..15, exponent
        ("round", 4.5),      # round-to-nearest-even, pack, special cases
    )
    DEFAULT_STAGES = 4

    def __init__(self, stages=None, *, backpressure=False, tag_width=0, cuts=None):
        super().__init__({"a": Float16, "b": Float16, "sub": 1}, {"z": Float16},
                         stages=stages, backpressure=backpressure, tag_width=tag_width,
                         cuts=cuts)

    def datapath(self, m, pipe, p):
        a, b = p.a, p.b
        sb = b.sign ^ p.sub
        a_nan, b_nan = a.is_nan(), b.is_nan()
        a_inf, b_inf = a.is_inf(), b.is_inf()
        sub = a.sign ^ sb
        ea, eb = a.effective_exponent(), b.effective_exponent()
        swap = b.magnitude() > a.magnitude()
        # x: larger magnitude, y: smaller
        x_sig = Mux(swap, b.significand(), a.significand())
        y_sig = Mux(swap, a.significand(), b.significand())
        ex = Mux(swap, eb, ea)
        ey = Mux(swap, ea, eb)
        d = (ex - ey)[:5]
        s = pipe.stage(
            sign=Mux(swap, sb, a.sign), sub=sub, ex=ex, d=d, x_sig=x_sig, y_sig=y_sig,
            nan=a_nan | b_nan | (a_inf & b_inf & sub),
            inf=a_inf | b_inf, inf_sign=Mux(a_inf, a.sign, sb),
        )

        # align: y = {y_sig, G, R} >> d, sticky = OR of the bits shifted past R
        dc = Mux(s.d[4], 15, s.d[:4])
        aligned = (Cat(Const(0, 2), s.y_sig) >> dc)[:13]
        sticky = (s.y_sig & below_mask(dc, 11, offset=2)).any()
        # one-hot limit so the normalising shift stops at the subnormal boundary:
        # a 1 at bit (14 - ex) of the 15-bit sum caps the leading-zero count at ex.
        limit = Cat(*((s.ex == 14 - k) for k in range(15)))
        s = pipe.stage(
            sign=s.sign, sub=s.sub, ex=s.ex, x=Cat(Const(0, 3), s.x_sig),
            y=Cat(sticky, aligned), limit=limit,
            nan=s.nan, inf=s.inf, inf_sign=s.inf_sign,
        )

        # add / subtract in one carry chain: {x,1} + {y^sub, sub}
        wide = Cat(Const(1, 1), s.x) + Cat(s.sub, s.y ^ s.sub.replicate(14))
        total = Cat(wide[1:15], wide[15] & ~s.sub)      # 15 bits
        s = pipe.stage(
            sign=s.sign, sub=s.sub, ex=s.ex, total=total, limit=s.limit,
            nan=s.nan, inf=s.inf, inf_sign=s.inf_sign,
        )

        shift = leading_zeros(s.total | s.limit)          # 0..15, <= ex
        s = pipe.stage(
            sign=s.sign, sub=s.sub, ex=s.ex, total=s.total, shift=shift,
            zero=s.total == 0,
            nan=s.nan, inf=s.inf, inf_sign=s.inf_sign,
        )

        norm = (s.total << s.shift)[:15]
        exp_m1 = (s.ex - s.shift)[:5]   # exponent of bit 14 is ex + 1 - shift
        s = pipe.stage(
            sign=s.sign, sub=s.sub, exp_m1=exp_m1, sig=norm[4:15], guard=norm[3],
            sticky=norm[:3].any(), overflow=exp_m1 >= 30, zero=s.zero,
            nan=s.nan, inf=s.inf, inf_sign=s.inf_sign,
        )

        magnitude = round_pack(s.exp_m1, s.sig, s.guard, s.sticky)
        z = select_result(sign=s.sign, magnitude=magnitude, nan=s.nan, inf=s.inf,
                          inf_sign=s.inf_sign, overflow=s.overflow, zero=s.zero,
                          zero_sign=s.sign & ~s.sub)
        s = pipe.stage(z=z)
        return {"z": s.z}
