"""The surrogate unit: ``h(x)`` for rectangular, triangle and sigmoid (docs/numerics.md §3)."""

from amaranth.hdl import Cat, Const, Module, Mux
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..fp16 import FPFMA, FPMul, Float16
from .chain import POS_ZERO, GlueStage, Registered, link, max0, tag_layout
from .forward import _constructing, _resolve, _tag_width
from .registers import (SIGMOID_SEGMENTS, NeuronRegisters, SigmoidTableSignature,
                        SurrogateKind)

__all__ = ["SurrogateUnit", "abs_less", "less_than_8", "sigmoid_segment"]

_EIGHT_MAG = 0x4800         # magnitude bits of 8.0
_INF_MAG = 0x7C00


def abs_less(ax, w):
    """``lt(ax, w)`` for a non-negative ``ax`` (sign clear, maybe NaN) and any ``w``."""
    return ~w.sign & (w.magnitude() <= _INF_MAG) & (ax.magnitude() < w.magnitude())


def less_than_8(u):
    """``lt(u, 8)``: false for NaN; true for every negative value (and −0)."""
    nan = u.is_nan()
    return Mux(u.sign, ~nan, u.magnitude() < _EIGHT_MAG)


def sigmoid_segment(u):
    """``k = ⌊8u⌋`` (0..63) from ``u``'s exponent and fraction, for ``0 ≤ u < 8``; 0 for a
    negative ``u`` (the golden model clamps); anything for ``u ≥ 8`` (masked later).

    ``8u = 1.f × 2^(e − 12)``: for ``e`` in 12..17 the segment is the top ``e − 11`` bits of
    the 11-bit significand, below ``e = 12`` (``u < 1/8``, subnormals) it is 0.
    """
    sig = Cat(u.mantissa, Const(1, 1))
    k = Const(0, 6)
    for e in range(12, 18):
        k = Mux(u.exponent == e, sig[22 - e:11], k)
    return Mux(u.sign, 0, k)


class SurrogateUnit(wiring.Component):
    """Surrogate gradient ``h(x)``, one value per cycle, pipelined; the function is chosen
    at run time by ``regs.surrogate``.  Bit for bit as ``trident.golden.hw.surrogate``::

        rectangular:  h = lt(|x|, half_width) ? alpha : +0
        triangle:     h = max0(fma(neg_alpha_sq, |x|, alpha))
        sigmoid:      u = mul(alpha, |x|); h = lt(u, 8) ? fma(A[k], u, B[k]) : +0,
                      k = ⌊8u⌋ read from u's exponent and fraction

    Datapath: ``FPMul (u) → table read (a 64 × 32-bit synchronous memory, one rank, and
    one more rank behind it) → FPFMA → output multiplexer (one rank)``; the rectangular
    compare is logic beside the multiplier.  The latency does not depend on the surrogate.

    Parameters
    ----------
    tag_width : int
        Side-band carried unchanged from ``i`` to ``o``.
    backpressure : bool
        Honour ``o.ready`` (global stall), as :class:`~trident.rtl.neuron.NeuronUnit`.
    mul_stages, fma_stages : int, optional
        Register ranks of the FP16 units (default ``DEFAULT_STAGES``).

    Attributes
    ----------
    latency : int
        ``mul + fma + 3`` cycles.

    Members
    -------
    regs : In(NeuronRegisters)
        Uses ``surrogate``, ``alpha``, ``half_width``, ``neg_alpha_sq``.
    table : In(SigmoidTableSignature)
        Write port of the sigmoid's ``(A[k], B[k])`` table (``en``, ``addr``, ``slope``,
        ``intercept``); load it before streaming a sigmoid layer.
    i : In(stream.Signature(StructLayout))
        ``x: Float16`` (``Z − V_th``), ``tag``.
    o : Out(stream.Signature(StructLayout))
        ``sg: Float16`` (the surrogate value ``h``), ``tag``.
    """

    def __init__(self, *, tag_width=0, backpressure=False, mul_stages=None, fma_stages=None):
        with _constructing(self):
            self.tag_width = _tag_width(tag_width)
            st = _resolve(mul=mul_stages, fma=fma_stages)
        self.backpressure = bool(backpressure)
        self.stages = {"mul": st["mul"], "fma": st["fma"]}
        self.latency = self.stages["mul"] + self.stages["fma"] + 3
        tag = {"tag": tag_width} if tag_width else {}
        self.in_layout = data.StructLayout({"x": Float16, **tag})
        self.out_layout = data.StructLayout({"sg": Float16, **tag})
        super().__init__({
            "regs": In(NeuronRegisters),
            "table": In(SigmoidTableSignature),
            "i": In(stream.Signature(self.in_layout)),
            "o": Out(stream.Signature(self.out_layout)),
        })

    def elaborate(self, platform):
        m = Module()
        r, bp, uw = self.regs, self.backpressure, self.tag_width
        p = self.i.payload
        sigmoid = r.surrogate == SurrogateKind.SIGMOID

        # 1. u = alpha·|x|; the rectangular window test beside it
        ax = Float16(Cat(p.x.mantissa, p.x.exponent, Const(0, 1)))
        t1 = tag_layout({"ax": Float16, "rect": 1}, uw)
        mul = m.submodules.mul_u = FPMul(self.stages["mul"], backpressure=bp,
                                         tag_width=t1.size)
        tg = t1(mul.i.payload.tag)
        m.d.comb += [mul.i.payload.a.eq(r.alpha), mul.i.payload.b.eq(ax),
                     tg.ax.eq(ax), tg.rect.eq(abs_less(ax, r.half_width)),
                     mul.i.valid.eq(self.i.valid), self.i.ready.eq(mul.i.ready)]
        if uw:
            m.d.comb += tg.user.eq(p.tag)

        # 2. segment k, table read (the memory's output register is this stage's rank)
        t2 = tag_layout({"u": Float16, "ax": Float16, "rect": 1, "inside": 1,
                         "slope": Float16, "intercept": Float16}, uw)
        table = self.table

        def lookup(m, payload, ce):
            t = t1(payload.tag)
            u = payload.z
            mem = m.submodules.table = Memory(shape=32, depth=SIGMOID_SEGMENTS, init=[])
            wp = mem.write_port()
            m.d.comb += [wp.en.eq(table.en), wp.addr.eq(table.addr),
                         wp.data.eq(Cat(table.slope, table.intercept))]
            rp = mem.read_port(domain="sync")
            m.d.comb += [rp.addr.eq(sigmoid_segment(u)), rp.en.eq(ce)]
            out = {"u": u, "ax": t.ax, "rect": t.rect, "inside": less_than_8(u),
                   "slope": Registered(rp.data[:16]), "intercept": Registered(rp.data[16:])}
            if uw:
                out["user"] = t.user
            return out

        look = m.submodules.lookup = GlueStage(mul.out_layout, t2, lookup, backpressure=bp)
        link(m, mul.o, look.i)
        m.d.comb += look.i.payload.eq(mul.o.payload)
        # a second rank right behind the block RAM, whose clock-to-output (~5.6 ns on ECP5
        # without its output register) would otherwise start the FMA's first stage
        hold = m.submodules.table_out = GlueStage(
            t2, t2, lambda m, payload, ce: {name: getattr(payload, name) for name, _ in t2},
            backpressure=bp)
        link(m, look.o, hold.i)
        m.d.comb += hold.i.payload.eq(look.o.payload)
        look = hold
        q = look.o.payload

        # 3. sigmoid: fma(A[k], u, B[k]); triangle: fma(−α², |x|, α)
        t3 = tag_layout({"rect": 1, "inside": 1}, uw)
        fma = m.submodules.fma_sg = FPFMA(self.stages["fma"], backpressure=bp,
                                          tag_width=t3.size)
        link(m, look.o, fma.i)
        tg = t3(fma.i.payload.tag)
        m.d.comb += [fma.i.payload.a.eq(Mux(sigmoid, q.slope, r.neg_alpha_sq)),
                     fma.i.payload.b.eq(Mux(sigmoid, q.u, q.ax)),
                     fma.i.payload.c.eq(Mux(sigmoid, q.intercept, r.alpha)),
                     fma.i.payload.neg_prod.eq(0), fma.i.payload.neg_c.eq(0),
                     tg.rect.eq(q.rect), tg.inside.eq(q.inside)]
        if uw:
            m.d.comb += tg.user.eq(q.user)

        # 4. select the surrogate's result
        def select(m, payload, ce):
            t = t3(payload.tag)
            z = payload.z
            sg = Mux(r.surrogate == SurrogateKind.RECTANGULAR, Mux(t.rect, r.alpha, POS_ZERO),
                     Mux(r.surrogate == SurrogateKind.TRIANGLE, max0(z),
                         Mux(sigmoid & t.inside, z, POS_ZERO)))
            out = {"sg": sg}
            if uw:
                out["tag"] = t.user
            return out

        out = m.submodules.select = GlueStage(fma.out_layout, self.out_layout, select,
                                              backpressure=bp)
        link(m, fma.o, out.i)
        m.d.comb += out.i.payload.eq(fma.o.payload)
        wiring.connect(m, out.o, wiring.flipped(self.o))
        return m
