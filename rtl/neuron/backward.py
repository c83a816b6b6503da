"""The BP neuron recursion: δU[t] from δS[t], the stored H[t], S[t] and δU[t+1]
(docs/numerics.md §4.1)."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..fp16 import FPAdd, FPFMA, FPMul, Float16
from .chain import ONE, POS_ZERO, GlueStage, is_nonzero, is_positive, link, tag_layout
from .forward import _constructing, _resolve, _tag_width
from .registers import NeuronKind, NeuronRegisters, SigmoidTableSignature
from .surrogate import SurrogateUnit

__all__ = ["NeuronBackwardUnit"]


class NeuronBackwardUnit(wiring.Component):
    """One step of the δU recursion per cycle (t = T … 1), pipelined, reset path detached.

    Bit for bit as ``trident.golden.hw.neuron.neuron_backward``::

        carry = IF ? δU[t+1] : mul(δU[t+1], leak)           (δU[T+1] = +0: ``last``)
        hard reset: carry = S[t] ? +0 : carry
        Z     = KLIF ? max0(mul(k, H[t])) : H[t]
        sg    = surrogate(sub(Z, V_th))                      (a SurrogateUnit inside)
        δZ    = (δS[t] = ±0 or sg = ±0) ? carry : fma(δS[t], sg, carry)
        δU[t] = KLIF ? (gt(mul(k, H[t]), +0) ? mul(δZ, k) : +0) : δZ
        δI[t] = LIF/KLIF with decay_input ? mul(δU[t], inv_tau) : δU[t]

    Like :class:`~trident.rtl.neuron.NeuronUnit` it keeps no state: the carry ``δU[t+1]``
    comes in with the item (``du_next``; ``last`` marks t = T, where it is ``+0`` and
    ``du_next`` is ignored) and ``δU[t]`` goes out, for the caller to store in the neuron's
    state word (the same memory that held ``V`` in FP).  An item may enter once the same
    neuron's step t+1 has come out: streaming step-major needs no bubbles with at least
    ``latency`` neurons per step.

    Datapath: ``FPMul (carry) → FPMul (k·H) → max0 (one rank) → FPAdd (x = Z − V_th) →
    SurrogateUnit →
    FPFMA (δZ) → FPMul (·k) → FPMul (·inv_tau) → output multiplexer``; values a
    configuration does not transform pass by multiplexers (bit for bit, NaN payloads
    included).  The latency is the same for every configuration.

    Parameters
    ----------
    tag_width : int
        Side-band carried unchanged from ``i`` to ``o``.
    backpressure : bool
        Honour ``o.ready`` (global stall), as :class:`NeuronUnit`.
    add_stages, mul_stages, fma_stages : int, optional
        Register ranks of the FP16 units (default ``DEFAULT_STAGES``).

    Attributes
    ----------
    latency : int
        ``add + 5·mul + 2·fma + 5`` cycles.

    Members
    -------
    regs : In(NeuronRegisters)
        Uses ``kind``, ``soft_reset``, ``decay_input``, ``surrogate``, ``v_th``, ``leak``,
        ``inv_tau``, ``k``, ``alpha``, ``half_width``, ``neg_alpha_sq``.
    table : In(SigmoidTableSignature)
        Write port of the sigmoid table (see :class:`SurrogateUnit`).
    i : In(stream.Signature(StructLayout))
        ``h: Float16`` (the stored charged potential ``H[t]``), ``s: 1`` (``S[t]``),
        ``ds: Float16`` (``δS[t]``), ``du_next: Float16`` (``δU[t+1]``), ``last: 1``
        (t = T), ``tag``.
    o : Out(stream.Signature(StructLayout))
        ``sg: Float16`` (the surrogate value), ``du: Float16`` (``δU[t]``, the next carry),
        ``di: Float16`` (``δI[t]``, to the transposed product and WG), ``tag``.
    """

    def __init__(self, *, tag_width=0, backpressure=False, add_stages=None, mul_stages=None,
                 fma_stages=None):
        with _constructing(self):
            self.tag_width = _tag_width(tag_width)
            st = _resolve(add_stages, mul_stages, fma_stages, None)
        self.backpressure = bool(backpressure)
        del st["cmp"]
        self.stages = st
        self.latency = st["add"] + 5 * st["mul"] + 2 * st["fma"] + 5
        tag = {"tag": tag_width} if tag_width else {}
        self.in_layout = data.StructLayout({"h": Float16, "s": 1, "ds": Float16,
                                            "du_next": Float16, "last": 1, **tag})
        self.out_layout = data.StructLayout({"sg": Float16, "du": Float16, "di": Float16,
                                             **tag})
        super().__init__({
            "regs": In(NeuronRegisters),
            "table": In(SigmoidTableSignature),
            "i": In(stream.Signature(self.in_layout)),
            "o": Out(stream.Signature(self.out_layout)),
        })

    def elaborate(self, platform):
        m = Module()
        r, st, bp, uw = self.regs, self.stages, self.backpressure, self.tag_width
        is_if = r.kind == NeuronKind.IF
        is_klif = r.kind == NeuronKind.KLIF
        decay = ~is_if & r.decay_input
        p = self.i.payload

        def carry_user(tg, src):
            if uw:
                m.d.comb += tg.user.eq(src)

        # 1. carry = mul(δU[t+1], leak)   (IF: δU[t+1] itself, selected below)
        t1 = tag_layout({"h": Float16, "s": 1, "ds": Float16, "du_in": Float16}, uw)
        mul_c = m.submodules.mul_carry = FPMul(st["mul"], backpressure=bp, tag_width=t1.size)
        du_in = Mux(p.last, POS_ZERO, p.du_next)
        tg = t1(mul_c.i.payload.tag)
        m.d.comb += [mul_c.i.payload.a.eq(du_in), mul_c.i.payload.b.eq(r.leak),
                     tg.h.eq(p.h), tg.s.eq(p.s), tg.ds.eq(p.ds), tg.du_in.eq(du_in),
                     mul_c.i.valid.eq(self.i.valid), self.i.ready.eq(mul_c.i.ready)]
        carry_user(tg, p.tag if uw else None)
        q = t1(mul_c.o.payload.tag)
        carry = Mux(~r.soft_reset & q.s, POS_ZERO, Mux(is_if, q.du_in, mul_c.o.payload.z))

        # 2. k·H (KLIF); mul(1, H) = H (canonical) otherwise
        t2 = tag_layout({"carry": Float16, "ds": Float16}, uw)
        mul_k = m.submodules.mul_k = FPMul(st["mul"], backpressure=bp, tag_width=t2.size)
        link(m, mul_c.o, mul_k.i)
        tg = t2(mul_k.i.payload.tag)
        m.d.comb += [mul_k.i.payload.a.eq(Mux(is_klif, r.k, ONE)), mul_k.i.payload.b.eq(q.h),
                     tg.carry.eq(carry), tg.ds.eq(q.ds)]
        carry_user(tg, q.user if uw else None)
        # Z = max0(k·H) for KLIF, and the KLIF gradient mask gt(k·H, +0); registered, so
        # that the adder's first stage starts from a register
        t3 = tag_layout({"carry": Float16, "ds": Float16, "kpos": 1}, uw)
        scale_layout = data.StructLayout({"z": Float16, "tag": t3.size})

        def scale(m, payload, ce):
            t = t2(payload.tag)
            kpos = is_positive(payload.z)
            tag = Signal(t3)
            m.d.comb += [tag.carry.eq(t.carry), tag.ds.eq(t.ds), tag.kpos.eq(kpos)]
            if uw:
                m.d.comb += tag.user.eq(t.user)
            return {"z": Mux(is_klif & ~kpos, POS_ZERO, payload.z), "tag": tag}

        sc = m.submodules.scale = GlueStage(mul_k.out_layout, scale_layout, scale,
                                            backpressure=bp)
        link(m, mul_k.o, sc.i)
        m.d.comb += sc.i.payload.eq(mul_k.o.payload)

        # 3. x = Z − V_th
        add_x = m.submodules.add_x = FPAdd(st["add"], backpressure=bp, tag_width=t3.size)
        link(m, sc.o, add_x.i)
        m.d.comb += [add_x.i.payload.a.eq(sc.o.payload.z), add_x.i.payload.b.eq(r.v_th),
                     add_x.i.payload.sub.eq(1), add_x.i.payload.tag.eq(sc.o.payload.tag)]

        # 4. surrogate value sg = h(x)
        sgu = m.submodules.surrogate = SurrogateUnit(
            tag_width=t3.size, backpressure=bp, mul_stages=st["mul"], fma_stages=st["fma"])
        m.d.comb += sgu.regs.eq(r)
        wiring.connect(m, wiring.flipped(self.table), sgu.table)
        link(m, add_x.o, sgu.i)
        m.d.comb += [sgu.i.payload.x.eq(add_x.o.payload.z),
                     sgu.i.payload.tag.eq(add_x.o.payload.tag)]
        q = t3(sgu.o.payload.tag)
        sg = sgu.o.payload.sg

        # 5. δZ = fma(δS, sg, carry), skipped when δS or sg is ±0
        t5 = tag_layout({"carry": Float16, "active": 1, "kpos": 1, "sg": Float16}, uw)
        fma = m.submodules.fma_dz = FPFMA(st["fma"], backpressure=bp, tag_width=t5.size)
        link(m, sgu.o, fma.i)
        tg = t5(fma.i.payload.tag)
        m.d.comb += [fma.i.payload.a.eq(q.ds), fma.i.payload.b.eq(sg),
                     fma.i.payload.c.eq(q.carry),
                     fma.i.payload.neg_prod.eq(0), fma.i.payload.neg_c.eq(0),
                     tg.carry.eq(q.carry), tg.active.eq(is_nonzero(q.ds) & is_nonzero(sg)),
                     tg.kpos.eq(q.kpos), tg.sg.eq(sg)]
        carry_user(tg, q.user if uw else None)
        q = t5(fma.o.payload.tag)
        dz = Mux(q.active, fma.o.payload.z, q.carry)

        # 6. KLIF: δU = kpos ? mul(δZ, k) : +0; otherwise δU = δZ
        t6 = tag_layout({"dz": Float16, "kpos": 1, "sg": Float16}, uw)
        mul_u = m.submodules.mul_du = FPMul(st["mul"], backpressure=bp, tag_width=t6.size)
        link(m, fma.o, mul_u.i)
        tg = t6(mul_u.i.payload.tag)
        m.d.comb += [mul_u.i.payload.a.eq(dz), mul_u.i.payload.b.eq(r.k),
                     tg.dz.eq(dz), tg.kpos.eq(q.kpos), tg.sg.eq(q.sg)]
        carry_user(tg, q.user if uw else None)
        q = t6(mul_u.o.payload.tag)
        du = Mux(is_klif, Mux(q.kpos, mul_u.o.payload.z, POS_ZERO), q.dz)

        # 7. δI = mul(δU, inv_tau) (LIF/KLIF with decay_input); δU otherwise
        t7 = tag_layout({"du": Float16, "sg": Float16}, uw)
        mul_i = m.submodules.mul_di = FPMul(st["mul"], backpressure=bp, tag_width=t7.size)
        link(m, mul_u.o, mul_i.i)
        tg = t7(mul_i.i.payload.tag)
        m.d.comb += [mul_i.i.payload.a.eq(du), mul_i.i.payload.b.eq(r.inv_tau),
                     tg.du.eq(du), tg.sg.eq(q.sg)]
        carry_user(tg, q.user if uw else None)

        # 8. output multiplexer, registered
        def output(m, payload, ce):
            t = t7(payload.tag)
            out = {"sg": t.sg, "du": t.du, "di": Mux(decay, payload.z, t.du)}
            if uw:
                out["tag"] = t.user
            return out

        out = m.submodules.output = GlueStage(mul_i.out_layout, self.out_layout, output,
                                              backpressure=bp)
        link(m, mul_i.o, out.i)
        m.d.comb += out.i.payload.eq(mul_i.o.payload)
        wiring.connect(m, out.o, wiring.flipped(self.o))
        return m
