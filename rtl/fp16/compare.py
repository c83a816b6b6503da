"""FP16 comparison, minimum and maximum."""

from amaranth.hdl import Const, Mux

from .float16 import CANONICAL_NAN, Float16
from .pipeline import PipelinedUnit

__all__ = ["FPCompare"]


class FPCompare(PipelinedUnit):
    """IEEE 754 binary16 comparison, minimum and maximum of ``a`` and ``b``.

    - ``equal``, ``less``, ``less_equal``: the IEEE quiet predicates ``a == b``,
      ``a < b``, ``a <= b`` (``-0 == +0``; any NaN operand makes them 0); swap the
      operands for ``>`` and ``>=``.
    - ``unordered``: at least one operand is a NaN.
    - ``min``, ``max``: IEEE 754-2019 ``minimumNumber``/``maximumNumber`` (as RISC-V
      ``fmin``/``fmax``): a NaN operand is ignored when the other is a number, two NaNs
      give the canonical NaN 0x7E00, and ``-0 < +0``.

    Parameters
    ----------
    stages : int
        Register ranks (= latency in cycles), 0..2; default 1.
    backpressure : bool
        Honour ``o.ready`` with a global stall (see :class:`PipelinedUnit`).
    tag_width : int
        Optional side-band tag carried from ``i`` to ``o``.
    cuts : tuple of int, optional
        Explicit register placement (boundaries 1..2).

    Members
    -------
    i : In(stream.Signature(StructLayout))
        Payload fields ``a: Float16``, ``b: Float16`` and ``tag``.
    o : Out(stream.Signature(StructLayout))
        Payload fields ``equal, less, less_equal, unordered: 1``, ``min, max: Float16``
        and ``tag``.
    """

    STEPS = (
        ("compare", 4.0),   # 15-bit magnitude compare, classification
        ("select", 2.5),    # predicates and min/max multiplexers
    )
    DEFAULT_STAGES = 1

    def __init__(self, stages=None, *, backpressure=False, tag_width=0, cuts=None):
        super().__init__(
            {"a": Float16, "b": Float16},
            {"equal": 1, "less": 1, "less_equal": 1, "unordered": 1,
             "min": Float16, "max": Float16},
            stages=stages, backpressure=backpressure, tag_width=tag_width, cuts=cuts)

    def datapath(self, m, pipe, p):
        a, b = p.a, p.b
        s = pipe.stage(
            a=a, b=b, a_nan=a.is_nan(), b_nan=b.is_nan(),
            mag_lt=a.magnitude() < b.magnitude(),
            mag_eq=a.magnitude() == b.magnitude(),
            both_zero=a.is_zero() & b.is_zero(),
        )

        unordered = s.a_nan | s.b_nan
        same_sign = s.a.sign == s.b.sign
        # total order on non-NaN values with -0 < +0
        a_before_b = Mux(same_sign,
                         Mux(s.a.sign, ~s.mag_lt & ~s.mag_eq, s.mag_lt),
                         s.a.sign)
        equal_bits = same_sign & s.mag_eq
        eq = ~unordered & (equal_bits | s.both_zero)
        lt = ~unordered & ~s.both_zero & a_before_b
        nan = Const(CANONICAL_NAN, 16)
        min_ = Mux(s.a_nan & s.b_nan, nan,
                   Mux(s.a_nan, s.b, Mux(s.b_nan, s.a, Mux(a_before_b, s.a, s.b))))
        max_ = Mux(s.a_nan & s.b_nan, nan,
                   Mux(s.a_nan, s.b, Mux(s.b_nan, s.a, Mux(a_before_b, s.b, s.a))))
        s = pipe.stage(eq=eq, lt=lt, le=lt | eq, unordered=unordered, min=min_, max=max_)
        return {"equal": s.eq, "less": s.lt, "less_equal": s.le, "unordered": s.unordered,
                "min": s.min, "max": s.max}
