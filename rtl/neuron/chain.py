"""Plumbing shared by the neuron units: stream links between pipelined stages, a glue stage
with one register rank, and bit-level binary16 predicates.

Every unit here is a *linear chain* of stream stages (the FP16 units of
:mod:`trident.rtl.fp16` plus :class:`GlueStage`).  Whatever a later stage needs travels in
the ``tag`` side-band of the stages in between, so each item's operands and context move
together: the chain behaves like one pipelined unit, also under back-pressure (each stage
stalls globally, bubbles collapse).
"""

from amaranth.hdl import Const, Module, Mux, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..fp16 import Float16

__all__ = ["ONE", "POS_ZERO", "NEG_ZERO", "is_positive", "is_nonzero", "max0",
           "Registered", "GlueStage", "link", "tag_view", "tag_layout"]

#: binary16 constants used as pass-through operands.
ONE = Const(0x3C00, 16)
POS_ZERO = Const(0x0000, 16)
NEG_ZERO = Const(0x8000, 16)


def _f16(value):
    if isinstance(value, data.View):
        return value
    return Float16(Value.cast(value))


def is_positive(value):
    """``gt(a, +0)``: not NaN, not ±0, sign clear."""
    a = _f16(value)
    return ~a.sign & ~a.is_zero() & ~a.is_nan()


def is_nonzero(value):
    """``a != ±0`` (NaN counts as non-zero): the engines' no-skip condition."""
    return ~_f16(value).is_zero()


def max0(value):
    """``max0(a)``: ``a`` if ``a > 0`` else ``+0`` (NaN and −0 give +0)."""
    return Mux(is_positive(value), Value.cast(value), POS_ZERO)


def tag_layout(fields, user_width):
    """A tag layout: ``fields`` plus ``user`` (the caller's own tag) when ``user_width``."""
    fields = dict(fields)
    if user_width:
        fields["user"] = user_width
    return data.StructLayout(fields)


def tag_view(layout, unit_payload):
    """View the flat ``tag`` field of an FP16 unit's payload with a struct ``layout``."""
    return layout(unit_payload.tag)


def link(m, src, dst):
    """Connect the handshake of stream ``src`` (an ``Out`` member) to ``dst`` (an ``In``
    member); the caller drives ``dst.payload`` itself (with glue logic)."""
    m.d.comb += [dst.valid.eq(src.valid), src.ready.eq(dst.ready)]


class Registered:
    """Marks a :class:`GlueStage` output that is registered already (a memory read)."""

    def __init__(self, value):
        self.value = value


class GlueStage(wiring.Component):
    """Combinational glue followed by one register rank (or none), as a stream stage.

    Parameters
    ----------
    in_layout, out_layout : data.StructLayout
        Payloads of ``i`` and ``o``.
    function : callable
        ``function(m, payload, ce) -> dict`` of output field values; ``ce`` is the stage's
        clock enable (a Value, 1 when nothing stalls).  A value wrapped in
        :class:`Registered` is passed through as is (it must already be one rank late, e.g.
        a synchronous memory read enabled by ``ce``).
    stages : int
        1 (registered, latency 1) or 0 (combinational; no :class:`Registered` values).
    backpressure : bool
        Global-stall back-pressure, as the FP16 units: everything advances while
        ``~o.valid | o.ready``; without it ``i.ready`` is 1 and ``o.ready`` is ignored.

    Members
    -------
    i : In(stream.Signature(in_layout))
    o : Out(stream.Signature(out_layout))
    """

    def __init__(self, in_layout, out_layout, function, *, stages=1, backpressure=False):
        if stages not in (0, 1):
            raise ValueError(f"a glue stage has 0 or 1 register ranks, not {stages!r}")
        self.function = function
        self.stages = self.latency = stages
        self.backpressure = bool(backpressure)
        super().__init__({"i": In(stream.Signature(in_layout)),
                          "o": Out(stream.Signature(out_layout))})

    def elaborate(self, platform):
        m = Module()
        if self.stages and self.backpressure:
            ce = Signal(name="ce")
            m.d.comb += [ce.eq(~self.o.valid | self.o.ready), self.i.ready.eq(ce)]
        else:
            ce = Const(1, 1)
            m.d.comb += self.i.ready.eq(self.o.ready if self.backpressure else 1)
        values = self.function(m, self.i.payload, ce)
        for name, value in values.items():
            target = getattr(self.o.payload, name)
            if isinstance(value, Registered):
                if not self.stages:
                    raise ValueError("a combinational glue stage cannot pass registered values")
                m.d.comb += target.eq(value.value)
            elif self.stages:
                reg = Signal.like(Value.cast(target), name=f"r_{name}", reset_less=True)
                with m.If(ce):
                    m.d.sync += reg.eq(value)
                m.d.comb += target.eq(reg)
            else:
                m.d.comb += target.eq(value)
        if self.stages:
            valid = Signal(name="r_valid")
            with m.If(ce):
                m.d.sync += valid.eq(self.i.valid)
            m.d.comb += self.o.valid.eq(valid)
        else:
            m.d.comb += self.o.valid.eq(self.i.valid)
        return m
