"""Conversions between FP16 and two's-complement / unsigned integers."""

from amaranth.hdl import Cat, Const, Mux, unsigned
from amaranth.hdl import signed as signed_shape

from .bits import gt_const, leading_zeros, round_pack, select_result
from .float16 import Float16
from .pipeline import PipelinedUnit

__all__ = ["FPFromInt", "FPToInt"]

ROUNDING_MODES = ("nearest_even", "toward_zero")


def _check_width(unit, width, is_signed):
    lo = 2 if is_signed else 1
    if not isinstance(width, int) or not lo <= width <= 64:
        unit._reject(f"width must be an integer in {lo}..64, not {width!r}")


class FPFromInt(PipelinedUnit):
    """Integer to IEEE 754 binary16, ``z = float16(value)``.

    Rounds to nearest, ties to even (integers above 65519 in magnitude become ±inf);
    0 gives +0.  Any width from 2 to 64 bits (1 to 64 unsigned).

    Datapath steps: absolute value; leading-zero count; normalising shift; round and
    pack.

    Parameters
    ----------
    stages : int
        Register ranks (= latency in cycles), 0..4; default 2.
    width : int
        Integer width (default 16).
    signed : bool
        Two's complement (default) or unsigned input.
    backpressure : bool
        Honour ``o.ready`` with a global stall (see :class:`PipelinedUnit`).
    tag_width : int
        Optional side-band tag carried from ``i`` to ``o``.
    cuts : tuple of int, optional
        Explicit register placement (boundaries 1..4).

    Members
    -------
    i : In(stream.Signature(StructLayout))
        Payload fields ``value: signed(width)`` (or ``unsigned(width)``) and ``tag``.
    o : Out(stream.Signature(StructLayout))
        Payload fields ``z: Float16`` and ``tag``.
    """

    STEPS = (
        ("abs", 3.0),
        ("lzc", 3.5),
        ("normalize", 4.0),
        ("round", 4.5),
    )
    DEFAULT_STAGES = 2

    def __init__(self, stages=None, *, width=16, signed=True, backpressure=False,
                 tag_width=0, cuts=None):
        _check_width(self, width, signed)
        self.width = width
        self.signed = bool(signed)
        shape = signed_shape(width) if signed else unsigned(width)
        super().__init__({"value": shape}, {"z": Float16}, stages=stages,
                         backpressure=backpressure, tag_width=tag_width, cuts=cuts)

    def datapath(self, m, pipe, p):
        w = self.width
        x = p.value.as_unsigned()
        neg = x[w - 1] if self.signed else Const(0, 1)
        mag = Mux(neg, -x, x)[:w]
        s = pipe.stage(neg=neg, mag=mag)

        lz = leading_zeros(s.mag)
        s = pipe.stage(neg=s.neg, mag=s.mag, lz=lz, zero=s.mag == 0)

        frame_w = max(w, 12)
        norm = (s.mag << s.lz)[:w]
        frame = Cat(Const(0, frame_w - w), norm) if frame_w > w else norm
        # leading one at bit w-1 has weight 2^(w-1-lz): biased exponent 15 + w-1-lz
        exp_m1 = (13 + w - s.lz)
        sticky = frame[:frame_w - 12].any() if frame_w > 12 else Const(0, 1)
        s = pipe.stage(neg=s.neg, zero=s.zero, sig=frame[frame_w - 11:frame_w],
                       guard=frame[frame_w - 12], sticky=sticky,
                       exp_m1=exp_m1.as_unsigned()[:5], overflow=exp_m1 >= 30)

        magnitude = round_pack(s.exp_m1, s.sig, s.guard, s.sticky)
        z = select_result(sign=s.neg, magnitude=magnitude, nan=0, inf=0, inf_sign=0,
                          overflow=s.overflow, zero=s.zero, zero_sign=0)
        s = pipe.stage(z=z)
        return {"z": s.z}


class FPToInt(PipelinedUnit):
    """IEEE 754 binary16 to integer, with saturation.

    ``rounding="nearest_even"`` rounds to nearest, ties to even (IEEE
    ``convertToIntegerTiesToEven``); ``"toward_zero"`` truncates (C casts).  Results
    out of range saturate and raise ``invalid``, RISC-V style: +inf and too-large values
    give the largest integer, -inf and too-small values the smallest (0 for unsigned),
    NaN gives the largest integer.  Negative values that round to 0 give 0 without
    ``invalid`` (also unsigned).  Any width from 2 to 64 bits (1 to 64 unsigned); FP16
    values reach ±65504, so with ``width >= 18`` (``17`` unsigned) only inf/NaN saturate.

    Datapath steps: unpack; right shift into integer and fraction; rounding increment;
    negate and saturate.

    Parameters
    ----------
    stages : int
        Register ranks (= latency in cycles), 0..4; default 2.
    width : int
        Integer width (default 16).
    signed : bool
        Two's complement (default) or unsigned result.
    rounding : str
        ``"nearest_even"`` (default) or ``"toward_zero"``.
    backpressure : bool
        Honour ``o.ready`` with a global stall (see :class:`PipelinedUnit`).
    tag_width : int
        Optional side-band tag carried from ``i`` to ``o``.
    cuts : tuple of int, optional
        Explicit register placement (boundaries 1..4).

    Members
    -------
    i : In(stream.Signature(StructLayout))
        Payload fields ``a: Float16`` and ``tag``.
    o : Out(stream.Signature(StructLayout))
        Payload fields ``value: signed(width)`` (or ``unsigned(width)``),
        ``invalid: 1`` (NaN, infinity or out of range: the value saturated) and ``tag``.
    """

    STEPS = (
        ("unpack", 3.0),
        ("shift", 4.5),
        ("round", 3.5),
        ("saturate", 4.5),
    )
    DEFAULT_STAGES = 2

    def __init__(self, stages=None, *, width=16, signed=True, rounding="nearest_even",
                 backpressure=False, tag_width=0, cuts=None):
        _check_width(self, width, signed)
        if rounding not in ROUNDING_MODES:
            self._reject(f"rounding must be one of {ROUNDING_MODES}, not {rounding!r}")
        self.width = width
        self.signed = bool(signed)
        self.rounding = rounding
        shape = signed_shape(width) if signed else unsigned(width)
        super().__init__({"a": Float16}, {"value": shape, "invalid": 1}, stages=stages,
                         backpressure=backpressure, tag_width=tag_width, cuts=cuts)

    def datapath(self, m, pipe, p):
        w = self.width
        a = p.a
        # value = sig * 2^(e-25) = (sig << 5) >> (30 - e) = (sig << 6) >> ~e (5-bit ~e:
        # no subtraction).  For |a| < 1/2 the guard and integer come out 0 by themselves.
        s = pipe.stage(sign=a.sign, sig=a.significand(), t=~a.effective_exponent(),
                       nan=a.is_nan(), inf=a.is_inf())

        q = (Cat(Const(0, 17), s.sig) >> s.t)[:27]
        s = pipe.stage(sign=s.sign, integer=q[11:27], guard=q[10], sticky=q[:10].any(),
                       nan=s.nan, inf=s.inf)

        if self.rounding == "nearest_even":
            inc = s.guard & (s.sticky | s.integer[0])
        else:
            inc = Const(0, 1)
        mag = (s.integer + inc)[:17]                          # <= 65504
        s = pipe.stage(sign=s.sign, mag=mag, nan=s.nan, inf=s.inf)

        if self.signed:
            pos_max = (1 << (w - 1)) - 1
            neg_max = 1 << (w - 1)
            too_big = s.inf | gt_const(s.mag, pos_max)
            too_small = s.inf | gt_const(s.mag, neg_max)
            invalid = s.nan | Mux(s.sign, too_small, too_big)
            mag_w = Cat(s.mag, Const(0, max(0, w - 17)))[:w]
            value = Mux(s.nan | (~s.sign & too_big), Const(pos_max, w),
                        Mux(s.sign & too_small, Const(neg_max, w), Mux(s.sign, -mag_w, mag_w)))
        else:
            umax = (1 << w) - 1
            too_big = s.inf | gt_const(s.mag, umax)
            negative = s.sign & (s.inf | (s.mag != 0))
            invalid = s.nan | negative | (~s.sign & too_big)
            mag_w = Cat(s.mag, Const(0, max(0, w - 17)))[:w]
            value = Mux(s.nan | (~s.sign & too_big), Const(umax, w),
                        Mux(s.sign, Const(0, w), mag_w))
        s = pipe.stage(value=value[:w], invalid=invalid)
        return {"value": s.value, "invalid": s.invalid}
