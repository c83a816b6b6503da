"""The neuron unit: charge, fire and reset of one neuron per cycle (docs/numerics.md §2.5)."""

from contextlib import contextmanager

from amaranth.hdl import Module, Mux
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..fp16 import FPAdd, FPCompare, FPFMA, FPMul, Float16
from .chain import NEG_ZERO, ONE, GlueStage, link, max0, tag_layout
from .registers import NeuronKind, NeuronRegisters

__all__ = ["NeuronUnit", "DEFAULT_STAGES"]

#: Register ranks of the FP16 units inside the neuron units, chosen for ~75 MHz on an
#: ECP5-85F speed 6 with the glue logic between the units (docs/neuron-unit.md §5).
DEFAULT_STAGES = {"add": 3, "mul": 3, "fma": 6, "cmp": 1}


@contextmanager
def _constructing(unit):
    """Parameter checks of a constructor: a unit whose constructor raised is not reported
    as an unused elaboratable."""
    try:
        yield
    except ValueError:
        unit._MustUse__silence = True
        raise


def _tag_width(value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"tag_width must be a non-negative integer, not {value!r}")
    return value


_UNITS = {"add": FPAdd, "mul": FPMul, "fma": FPFMA, "cmp": FPCompare}


def _resolve(add=None, mul=None, fma=None, cmp=None):
    """Stage counts with defaults filled in, checked against each FP16 unit's range."""
    given = {"add": add, "mul": mul, "fma": fma, "cmp": cmp}
    out = {}
    for name, value in given.items():
        value = DEFAULT_STAGES[name] if value is None else value
        limit = len(_UNITS[name].STEPS)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= limit:
            raise ValueError(f"{name}_stages must be an integer in 0..{limit} "
                             f"({_UNITS[name].__name__}), not {value!r}")
        out[name] = value
    return out


class NeuronUnit(wiring.Component):
    """Forward neuron update, one neuron and step per cycle, pipelined.

    For each item (neuron ``j``, step ``t``) it computes, bit for bit as
    ``trident.golden.hw.neuron.neuron_forward``::

        V0 = first ? V_rest : v
        IF:            H = add(V0, X)
        LIF/KLIF, decay_input:     dv = sub(V0, V_rest); d = sub(X, dv); H = fma(d, inv_tau, V0)
        LIF/KLIF, no decay_input:  dv = sub(V0, V_rest); a = fma(dv, −inv_tau, V0); H = add(a, X)
        Z = KLIF ? max0(mul(k, H)) : H
        S = ge(Z, V_th)
        V = S ? (soft_reset ? sub(Z, V_th) : V_reset) : Z

    The unit keeps no state: the potential ``V[t−1]`` comes in with the current and the new
    ``V[t]`` goes out with ``S`` and ``H``; the caller keeps ``V`` in its state memory (the
    same memory holds the δU carry during BP) and writes ``o.v`` back, using ``tag`` to carry
    the address.  ``first`` marks step t = 1 (``V[0] = V_rest``; ``v`` is then ignored).
    An item's next step may enter once its result has come out (``latency`` cycles later):
    streaming all neurons of step t, then all of step t+1, needs no bubbles when a layer
    has at least ``latency`` neurons.

    Datapath: a linear chain ``FPAdd → FPAdd → FPFMA → FPAdd → FPMul → FPCompare → FPAdd →
    glue`` (IF uses the FMA as ``fma(V0, 1, X)``, which equals ``add(V0, X)``; stages a
    configuration does not need pass their operand through exactly: ``add(h, −0) = h``,
    ``mul(h, 1) = h``).  The latency is the same for every configuration.

    Parameters
    ----------
    tag_width : int
        Width of ``tag``, a side-band carried unchanged from ``i`` to ``o`` (0: none).
    backpressure : bool
        Honour ``o.ready`` (global stall of every stage; ``i.ready`` then depends on
        ``o.ready`` combinationally).  Default: never stall, ``i.ready = 1``, the consumer
        takes ``o`` whenever it is valid.
    add_stages, mul_stages, fma_stages, cmp_stages : int, optional
        Register ranks of the FP16 units (default :data:`DEFAULT_STAGES`; ranges as the
        units': add 0..6, mul 0..5, fma 0..7, cmp 0..2).

    Attributes
    ----------
    stages : dict of str to int
        The resolved depths.
    in_layout, out_layout : data.StructLayout
        The payloads of ``i`` and ``o``.
    latency : int
        Cycles from an accepted input to its output when nothing stalls:
        ``4·add + fma + mul + cmp + 1``.

    Members
    -------
    regs : In(NeuronRegisters)
        Configuration (uses ``kind``, ``soft_reset``, ``decay_input``, ``v_th``,
        ``v_reset``, ``v_rest``, ``inv_tau``, ``k``).
    i : In(stream.Signature(StructLayout))
        ``x: Float16`` (input current ``I[t]``), ``v: Float16`` (``V[t−1]``),
        ``first: 1`` (t = 1), ``tag``.
    o : Out(stream.Signature(StructLayout))
        ``s: 1`` (spike), ``h: Float16`` (charged potential, kept for BP),
        ``v: Float16`` (``V[t]``, the new state), ``tag``.
    """

    def __init__(self, *, tag_width=0, backpressure=False, add_stages=None, mul_stages=None,
                 fma_stages=None, cmp_stages=None):
        with _constructing(self):
            self.tag_width = _tag_width(tag_width)
            self.stages = _resolve(add_stages, mul_stages, fma_stages, cmp_stages)
        self.backpressure = bool(backpressure)
        s = self.stages
        self.latency = 4 * s["add"] + s["fma"] + s["mul"] + s["cmp"] + 1
        tag = {"tag": tag_width} if tag_width else {}
        self.in_layout = data.StructLayout({"x": Float16, "v": Float16, "first": 1, **tag})
        self.out_layout = data.StructLayout({"s": 1, "h": Float16, "v": Float16, **tag})
        super().__init__({
            "regs": In(NeuronRegisters),
            "i": In(stream.Signature(self.in_layout)),
            "o": Out(stream.Signature(self.out_layout)),
        })

    def elaborate(self, platform):
        m = Module()
        r, s, bp, uw = self.regs, self.stages, self.backpressure, self.tag_width
        is_if = r.kind == NeuronKind.IF
        is_klif = r.kind == NeuronKind.KLIF
        decay = ~is_if & r.decay_input
        no_decay = ~is_if & ~r.decay_input
        p = self.i.payload

        # 1. dv = V0 − V_rest
        t1 = tag_layout({"x": Float16, "v0": Float16}, uw)
        add1 = m.submodules.add_dv = FPAdd(s["add"], backpressure=bp, tag_width=t1.size)
        v0 = Mux(p.first, r.v_rest, p.v)
        tg = t1(add1.i.payload.tag)
        m.d.comb += [add1.i.payload.a.eq(v0), add1.i.payload.b.eq(r.v_rest),
                     add1.i.payload.sub.eq(1), tg.x.eq(p.x), tg.v0.eq(v0)]
        if uw:
            m.d.comb += tg.user.eq(p.tag)
        m.d.comb += [add1.i.valid.eq(self.i.valid), self.i.ready.eq(add1.i.ready)]
        q = t1(add1.o.payload.tag)

        # 2. d = X − dv (decay_input)
        t2 = tag_layout({"x": Float16, "v0": Float16, "dv": Float16}, uw)
        add2 = m.submodules.add_d = FPAdd(s["add"], backpressure=bp, tag_width=t2.size)
        link(m, add1.o, add2.i)
        tg = t2(add2.i.payload.tag)
        m.d.comb += [add2.i.payload.a.eq(q.x), add2.i.payload.b.eq(add1.o.payload.z),
                     add2.i.payload.sub.eq(1),
                     tg.x.eq(q.x), tg.v0.eq(q.v0), tg.dv.eq(add1.o.payload.z)]
        if uw:
            m.d.comb += tg.user.eq(q.user)
        q = t2(add2.o.payload.tag)

        # 3. IF: H = fma(V0, 1, X); decay: H = fma(d, inv_tau, V0);
        #    no decay: a = fma(dv, −inv_tau, V0)
        t3 = tag_layout({"x": Float16}, uw)
        fma = m.submodules.fma_charge = FPFMA(s["fma"], backpressure=bp, tag_width=t3.size)
        link(m, add2.o, fma.i)
        tg = t3(fma.i.payload.tag)
        m.d.comb += [
            fma.i.payload.a.eq(Mux(is_if, q.v0, Mux(decay, add2.o.payload.z, q.dv))),
            fma.i.payload.b.eq(Mux(is_if, ONE, r.inv_tau)),
            fma.i.payload.c.eq(Mux(is_if, q.x, q.v0)),
            fma.i.payload.neg_prod.eq(no_decay),
            fma.i.payload.neg_c.eq(0),
            tg.x.eq(q.x),
        ]
        if uw:
            m.d.comb += tg.user.eq(q.user)
        q = t3(fma.o.payload.tag)

        # 4. no decay: H = add(a, X); otherwise H = add(H, −0) = H
        t4 = tag_layout({}, uw)
        add3 = m.submodules.add_x = FPAdd(s["add"], backpressure=bp, tag_width=t4.size)
        link(m, fma.o, add3.i)
        m.d.comb += [add3.i.payload.a.eq(fma.o.payload.z),
                     add3.i.payload.b.eq(Mux(no_decay, q.x, NEG_ZERO)),
                     add3.i.payload.sub.eq(0)]
        if uw:
            m.d.comb += t4(add3.i.payload.tag).user.eq(q.user)
            q = t4(add3.o.payload.tag)
        h = add3.o.payload.z

        # 5. KLIF: k·H; otherwise mul(H, 1) = H
        t5 = tag_layout({"h": Float16}, uw)
        mul = m.submodules.mul_k = FPMul(s["mul"], backpressure=bp, tag_width=t5.size)
        link(m, add3.o, mul.i)
        tg = t5(mul.i.payload.tag)
        m.d.comb += [mul.i.payload.a.eq(Mux(is_klif, r.k, ONE)), mul.i.payload.b.eq(h),
                     tg.h.eq(h)]
        if uw:
            m.d.comb += tg.user.eq(q.user)
        q = t5(mul.o.payload.tag)
        z = Mux(is_klif, max0(mul.o.payload.z), mul.o.payload.z)

        # 6. S = ge(Z, V_th) = le(V_th, Z)
        t6 = tag_layout({"h": Float16, "z": Float16}, uw)
        cmp = m.submodules.cmp_fire = FPCompare(s["cmp"], backpressure=bp, tag_width=t6.size)
        link(m, mul.o, cmp.i)
        tg = t6(cmp.i.payload.tag)
        m.d.comb += [cmp.i.payload.a.eq(r.v_th), cmp.i.payload.b.eq(z),
                     tg.h.eq(q.h), tg.z.eq(z)]
        if uw:
            m.d.comb += tg.user.eq(q.user)
        q = t6(cmp.o.payload.tag)

        # 7. soft reset value Z − V_th
        t7 = tag_layout({"h": Float16, "z": Float16, "s": 1}, uw)
        add4 = m.submodules.add_reset = FPAdd(s["add"], backpressure=bp, tag_width=t7.size)
        link(m, cmp.o, add4.i)
        tg = t7(add4.i.payload.tag)
        m.d.comb += [add4.i.payload.a.eq(q.z), add4.i.payload.b.eq(r.v_th),
                     add4.i.payload.sub.eq(1),
                     tg.h.eq(q.h), tg.z.eq(q.z), tg.s.eq(cmp.o.payload.less_equal)]
        if uw:
            m.d.comb += tg.user.eq(q.user)

        # 8. reset multiplexer, registered output
        def reset(m, payload, ce):
            t = t7(payload.tag)
            out = {"s": t.s, "h": t.h,
                   "v": Mux(t.s, Mux(r.soft_reset, payload.z, r.v_reset), t.z)}
            if uw:
                out["tag"] = t.user
            return out

        out = m.submodules.reset = GlueStage(add4.out_layout,
                                             self.out_layout, reset, backpressure=bp)
        link(m, add4.o, out.i)
        m.d.comb += out.i.payload.eq(add4.o.payload)
        wiring.connect(m, out.o, wiring.flipped(self.o))
        return m
