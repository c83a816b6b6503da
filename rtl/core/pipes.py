"""The layer pipes of a core: what sits between the engines and the DMA channels.

:class:`ForwardPipe`   FP engine currents → neuron unit → packed spike words and saved ``H``
                       words (a hidden layer), or the readout integrator → logits.
:class:`BackwardPipe`  saved ``H`` and the incoming ``δS`` → spike recomputation → the
                       δU recursion (t = T … 1) → ``δI`` words (BPN).

Both keep one 16-bit word per neuron in the core's state memory (``V`` in FP, the δU carry
in BP; docs/neuron-unit.md §1.1) through a :data:`StateSignature` port, and both serve one
neuron per cycle.  Hazard rule: an item may enter the neuron pipeline only while fewer
than ``n_out`` items are in flight — its own previous step is then out and its state word
written back, for any layer size (small layers simply run at ``n_out / latency`` items per
cycle).
"""

from amaranth.hdl import Assert, Cat, Const, Module, Mux, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from ..fp16 import FPMul, Float16
from ..neuron import NeuronBackwardUnit, NeuronKind, NeuronRegisters, SigmoidTableSignature
from .dma import write_layout
from .glue import last_of
from .ports import WORD_BITS

__all__ = ["StateSignature", "NeuronSignature", "ForwardPipe", "BackwardPipe", "CANONICAL_NAN"]

#: binary16 canonical NaN: the readout's threshold (``ge(Z, NaN)`` is false: never fires).
CANONICAL_NAN = 0x7E00


def StateSignature(depth):
    """Port of the per-neuron state memory (synchronous read with enable, one write)."""
    return wiring.Signature({
        "raddr": Out(range(depth)), "ren": Out(1), "rdata": In(16),
        "waddr": Out(range(depth)), "wdata": Out(16), "wen": Out(1),
    })


def NeuronSignature(neuron_unit):
    """How a pipe uses the core's one :class:`~trident.rtl.neuron.NeuronUnit` (FP and BPN
    never run together): its ``i`` and ``o`` streams and its ``regs``, seen from the pipe.
    A pipe's tag takes the low bits of the unit's ``tag``."""
    return wiring.Signature({
        "i": Out(stream.Signature(neuron_unit.i.payload.shape())),
        "o": In(stream.Signature(neuron_unit.o.payload.shape())),
        "regs": Out(NeuronRegisters),
    })


#: Depth of the pipes' output FIFOs: deeper than the neuron units' latency, so that the
#: credit-based admission (no back-pressure into the units) still admits an item per cycle.
OUT_DEPTH = 32


def neuron_tag_width(max_neurons):
    """The unit tag width both pipes need (BPN's: ``δS``, neuron index, last step)."""
    return 16 + max(1, (max_neurons - 1).bit_length()) + 1


class _HalfPacker:
    """Two binary16 values per 32-bit word (even index low); a row's last word is padded
    with ``+0``.  ``push`` keeps an even value and returns when a word is complete;
    ``word`` is that word."""

    def __init__(self, m, name):
        self.m = m
        self.lo = Signal(16, name=f"{name}_lo")

    def word(self, value, j):
        return Mux(j[0], Cat(self.lo, value), Cat(value, Const(0, 16)))

    def push(self, fire, value, j, last):
        emit = j[0] | last
        with self.m.If(fire & ~emit):
            self.m.d.sync += self.lo.eq(value)
        return fire & emit


class ForwardPipe(wiring.Component):
    """Currents → neuron unit → output words (docs/core.md §3.1).

    Items run neuron-major within a step, steps in order, ``n_steps`` per sample, samples
    one after the other (the FP engine's step index is not used: the order is fixed).

    Parameters
    ----------
    current_layout : data.StructLayout
        The FP engine's current word (``value``: ``L`` binary16).
    neuron_unit : NeuronUnit
        The core's neuron unit (built without back-pressure, tag ≥
        :func:`neuron_tag_width`); only its port shapes are used here.
    lanes : int
        ``L``.
    max_neurons : int
        Largest ``n_out`` (state memory depth).
    step_bits : int
        Width of ``n_steps``.

    Members
    -------
    currents : In(stream.Signature(current_layout))
    regs : In(NeuronRegisters)
        The layer's neuron registers (ignored by the readout).
    n_out, n_steps : In
        ``J`` neurons, ``T`` steps per sample (sampled while running, held by the core).
    readout : In(1)
        Readout layer: integrator ``V ← add(V, I[t])`` from ``+0`` (the neuron unit as IF
        with ``V_rest = +0`` and a NaN threshold), ``logits = mul(V, inv_t)`` at the last
        step to ``values``; ``spikes`` stays empty.
    inv_t : In(Float16)
    start : In(1)
        Restart the item counters (a new layer).
    state : Out(StateSignature)
    neuron : Out(NeuronSignature)
        To the shared neuron unit.
    spikes : Out(stream.Signature(write_layout))
        Hidden layer: per row ``ceil(J/32)`` words, bit ``j mod 32`` = ``S[j]``.
    values : Out(stream.Signature(write_layout))
        Hidden layer: per row ``ceil(J/2)`` words of ``H`` (two binary16, even ``j`` low);
        readout: per sample ``ceil(J/2)`` words of logits.
    busy : Out(1)
        Items in flight, or words in the output FIFOs not yet taken.
    """

    def __init__(self, current_layout, neuron_unit, *, lanes, max_neurons, step_bits):
        self.lanes = lanes
        self.max_neurons = max_neurons
        self.jbits = max(1, (max_neurons - 1).bit_length())
        super().__init__({
            "currents": In(stream.Signature(current_layout)),
            "regs": In(NeuronRegisters),
            "n_out": In(range(max_neurons + 1)),
            "n_steps": In(step_bits),
            "readout": In(1),
            "inv_t": In(Float16),
            "start": In(1),
            "state": Out(StateSignature(max_neurons)),
            "neuron": Out(NeuronSignature(neuron_unit)),
            "spikes": Out(stream.Signature(write_layout)),
            "values": Out(stream.Signature(write_layout)),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        L = self.lanes
        J, T = self.n_out, self.n_steps
        j_last, t_last = last_of(m, J), last_of(m, T)
        tag = data.StructLayout({"j": self.jbits, "last": 1})
        nu = self.neuron
        mul = FPMul(3, tag_width=self.jbits)
        m.submodules.logit_mul = mul
        regs = Signal(NeuronRegisters)
        m.d.comb += regs.eq(self.regs)
        with m.If(self.readout):
            m.d.comb += [regs.kind.eq(NeuronKind.IF), regs.v_rest.eq(0),
                         regs.v_th.eq(CANONICAL_NAN)]
        m.d.comb += nu.regs.eq(regs)

        spk_fifo = fifo.SyncFIFO(width=WORD_BITS, depth=OUT_DEPTH)
        val_fifo = fifo.SyncFIFO(width=WORD_BITS, depth=OUT_DEPTH)
        m.submodules.spk_fifo, m.submodules.val_fifo = spk_fifo, val_fifo

        # ---- admission and serializer: one neuron of the current word per cycle.  The
        # neuron unit and the logit multiplier never stall: an item is admitted only when
        # its neuron's previous step has left the unit (in_flight < J: the state memory's
        # read-modify-write) and both output FIFOs have room for every word the admitted
        # items can still write (one each at most).
        lane = Signal(range(L))
        j = Signal(self.jbits)
        t = Signal.like(T)
        in_flight = Signal(range(self.max_neurons + 2))     # admitted, not out of the unit
        pending = Signal(range(OUT_DEPTH + 1))               # admitted, words not yet written
        s1_valid = Signal()
        s1 = Signal(data.StructLayout({"x": 16, "first": 1, "tag": tag}))
        room = ((pending + spk_fifo.level < OUT_DEPTH) & (pending + val_fifo.level < OUT_DEPTH))
        take = self.currents.valid & (in_flight < J) & room
        row_end = j == j_last
        m.d.comb += [
            self.currents.ready.eq(take & ((lane == L - 1) | row_end)),
            self.state.raddr.eq(j), self.state.ren.eq(1),
        ]
        m.d.sync += s1_valid.eq(take)
        with m.If(take):
            m.d.sync += [s1.x.eq(self.currents.payload.value[lane]),
                         s1.first.eq(t == 0), s1.tag.j.eq(j), s1.tag.last.eq(t == t_last)]
            with m.If(row_end):
                m.d.sync += [j.eq(0), lane.eq(0), t.eq(Mux(t == t_last, 0, t + 1))]
            with m.Else():
                m.d.sync += [j.eq(j + 1), lane.eq(Mux(lane == L - 1, 0, lane + 1))]
        # the state word is registered before the unit: the block RAM's output (slow on
        # ECP5) goes no further than a register
        s2_valid = Signal()
        s2 = Signal.like(s1)
        s2_v = Signal(16)
        m.d.sync += [s2_valid.eq(s1_valid), s2.eq(s1), s2_v.eq(self.state.rdata)]
        with m.If(self.start):
            m.d.sync += [j.eq(0), lane.eq(0), t.eq(0), s1_valid.eq(0), s2_valid.eq(0)]
        m.d.comb += [nu.i.valid.eq(s2_valid), nu.i.payload.x.eq(s2.x),
                     nu.i.payload.v.eq(s2_v), nu.i.payload.first.eq(s2.first),
                     nu.i.payload.tag.eq(s2.tag)]

        # ---- outputs
        o = nu.o.payload
        otag = tag(o.tag[:tag.size])
        m.d.comb += nu.o.ready.eq(1)
        fired = nu.o.valid
        m.d.comb += [self.state.waddr.eq(otag.j), self.state.wdata.eq(o.v),
                     self.state.wen.eq(fired)]
        # an item retires when its words are written: at the unit's output, or (the
        # readout's last step) at the logit multiplier's
        via_mul = self.readout & otag.last
        retired = (fired & ~via_mul) + mul.o.valid
        m.d.sync += [in_flight.eq(in_flight + take - fired),
                     pending.eq(pending + take - retired)]
        with m.If(self.start):
            m.d.sync += [in_flight.eq(0), pending.eq(0)]
        # a word still in a FIFO counts: a consumer may be done before it takes the row's
        # last word (max pooling has all its windows before a row's ragged last lines), and
        # a word left behind would start the next descriptor's row
        m.d.comb += self.busy.eq((pending != 0) | spk_fifo.r_rdy | val_fifo.r_rdy)
        m.d.sync += Assert(~self.start | ~(spk_fifo.r_rdy | val_fifo.r_rdy),
                           "forward pipe: restarted with output words not taken")

        # spikes: 32 per word
        bits = Signal(32)
        pos = otag.j[:5]
        out_last = otag.j == j_last
        word = bits | (o.s << pos)[:32]
        hidden = fired & ~self.readout
        with m.If(hidden):
            m.d.sync += bits.eq(Mux((pos == 31) | out_last, 0, word))
        m.d.comb += [spk_fifo.w_data.eq(word),
                     spk_fifo.w_en.eq(hidden & ((pos == 31) | out_last))]

        # readout: logits = mul(V, inv_T) at the last step
        m.d.comb += [mul.i.valid.eq(fired & via_mul),
                     mul.i.payload.a.eq(o.v), mul.i.payload.b.eq(self.inv_t),
                     mul.i.payload.tag.eq(otag.j), mul.o.ready.eq(1)]

        # values: H (hidden) or logits (readout), two per word
        packer = _HalfPacker(m, "val")
        v_fire = Mux(self.readout, mul.o.valid, hidden)
        v_val = Mux(self.readout, mul.o.payload.z, o.h)
        v_j = Mux(self.readout, mul.o.payload.tag, otag.j)
        emit = packer.push(v_fire, v_val, v_j, v_j == j_last)
        m.d.comb += [val_fifo.w_data.eq(packer.word(v_val, v_j)), val_fifo.w_en.eq(emit)]

        for name, buf in (("spike", spk_fifo), ("value", val_fifo)):
            m.d.sync += Assert(~buf.w_en | buf.w_rdy,
                               f"forward pipe: {name} word written to a full FIFO (admission credit)")
        for port, buf in ((self.spikes, spk_fifo), (self.values, val_fifo)):
            m.d.comb += [port.valid.eq(buf.r_rdy), port.payload.data.eq(buf.r_data),
                         port.payload.skip.eq(0), buf.r_en.eq(port.ready)]
        return m


class BackwardPipe(wiring.Component):
    """Saved ``H`` and the incoming ``δS`` → the δU recursion → ``δI`` words (BPN, docs/core.md
    §3.2).

    Rows arrive sample by sample, ``t = T−1 … 0`` within a sample (the DMA reads them in
    that order), ``J`` neurons each.  Only ``H`` is kept from FP: the spike ``S = ge(Z, V_th)``
    is recomputed by the core's forward :class:`~trident.rtl.neuron.NeuronUnit` (idle in BPN),
    run with the charge made an identity (``decay_input``, ``inv_tau = 1``,
    ``V_rest = −0``, ``first``: ``dv = +0``, ``d = X``, ``H = fma(X, 1, −0) = X`` bit for
    bit), so its ``S`` is the FP spike exactly; the δU recursion runs in the
    :class:`~trident.rtl.neuron.NeuronBackwardUnit` behind it.

    Parameters
    ----------
    neuron_unit : NeuronUnit
        The core's neuron unit (only its port shapes are used here).
    max_neurons, step_bits : int

    Members
    -------
    h_in, ds_in : In(stream.Signature(32))
        Per row ``ceil(J/2)`` words of ``H`` and of ``δS``.
    regs : In(NeuronRegisters)
    table : In(SigmoidTableSignature)
        Sigmoid table writes, forwarded to the BP unit.
    n_out, n_steps : In
        ``J``, ``T``.
    start : In(1)
        Restart the counters.
    state : Out(StateSignature)
    neuron : Out(NeuronSignature)
        To the shared neuron unit (spike recomputation).
    di : Out(stream.Signature(write_layout))
        Per row ``ceil(J/2)`` words of ``δI``, in the input row order.
    busy : Out(1)
        Items in flight.
    """

    def __init__(self, neuron_unit, *, max_neurons, step_bits):
        self.max_neurons = max_neurons
        self.jbits = max(1, (max_neurons - 1).bit_length())
        super().__init__({
            "h_in": In(stream.Signature(WORD_BITS)),
            "ds_in": In(stream.Signature(WORD_BITS)),
            "regs": In(NeuronRegisters),
            "table": In(SigmoidTableSignature),
            "n_out": In(range(max_neurons + 1)),
            "n_steps": In(step_bits),
            "start": In(1),
            "state": Out(StateSignature(max_neurons)),
            "neuron": Out(NeuronSignature(neuron_unit)),
            "di": Out(stream.Signature(write_layout)),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        J, T = self.n_out, self.n_steps
        j_last, t_last = last_of(m, J), last_of(m, T)
        tag = data.StructLayout({"ds": 16, "j": self.jbits, "last": 1})
        fwd = self.neuron
        bu = NeuronBackwardUnit(tag_width=self.jbits)
        m.submodules.neuron_bwd = bu
        fregs = Signal(NeuronRegisters)
        m.d.comb += [fregs.eq(self.regs), fregs.decay_input.eq(1), fregs.inv_tau.eq(0x3C00),
                     fregs.v_rest.eq(0x8000), fwd.regs.eq(fregs), bu.regs.eq(self.regs)]
        wiring.connect(m, wiring.flipped(self.table), bu.table)

        out_fifo = fifo.SyncFIFO(width=WORD_BITS, depth=OUT_DEPTH)
        m.submodules.out_fifo = out_fifo

        # ---- admission: one neuron per cycle from the two word streams into the spike
        # unit.  Neither unit stalls: an item is admitted only when its neuron's later
        # step has left the BP unit (in_flight < J: the δU read-modify-write) and the δI
        # FIFO has room for a word from every admitted item.
        j = Signal(self.jbits)
        t = Signal.like(T)                  # steps done in this sample (0: t = T−1)
        in_flight = Signal(range(max(self.max_neurons, OUT_DEPTH) + 2))
        row_end = j == j_last
        pair_end = j[0] | row_end
        take = (self.h_in.valid & self.ds_in.valid & (in_flight < J)
                & (in_flight + out_fifo.level < OUT_DEPTH))
        m.d.comb += [self.h_in.ready.eq(take & pair_end), self.ds_in.ready.eq(take & pair_end)]
        with m.If(take):
            with m.If(row_end):
                m.d.sync += [j.eq(0), t.eq(Mux(t == t_last, 0, t + 1))]
            with m.Else():
                m.d.sync += j.eq(j + 1)
        with m.If(self.start):
            m.d.sync += [j.eq(0), t.eq(0)]
        ftag = tag(fwd.i.payload.tag[:tag.size])
        m.d.comb += [fwd.i.valid.eq(take),
                     fwd.i.payload.x.eq(self.h_in.payload.word_select(j[0], 16)),
                     fwd.i.payload.first.eq(1),
                     ftag.ds.eq(self.ds_in.payload.word_select(j[0], 16)),
                     ftag.j.eq(j), ftag.last.eq(t == 0)]

        # ---- state read, BP unit
        s1_valid = Signal()
        s1 = Signal(data.StructLayout({"h": 16, "s": 1, "tag": tag}))
        otag = tag(fwd.o.payload.tag[:tag.size])
        m.d.comb += [fwd.o.ready.eq(1), self.state.raddr.eq(otag.j), self.state.ren.eq(1)]
        m.d.sync += s1_valid.eq(fwd.o.valid)
        with m.If(fwd.o.valid):
            m.d.sync += [s1.h.eq(fwd.o.payload.h), s1.s.eq(fwd.o.payload.s), s1.tag.eq(otag)]
        # the δU word is registered before the BP unit, as in the forward pipe: the block
        # RAM's output goes no further than a register (the in-flight count covers the stage)
        s2_valid = Signal()
        s2 = Signal.like(s1)
        s2_du = Signal(16)
        m.d.sync += [s2_valid.eq(s1_valid), s2.eq(s1), s2_du.eq(self.state.rdata)]
        with m.If(self.start):
            m.d.sync += [s1_valid.eq(0), s2_valid.eq(0)]
        m.d.comb += [bu.i.valid.eq(s2_valid), bu.i.payload.h.eq(s2.h), bu.i.payload.s.eq(s2.s),
                     bu.i.payload.ds.eq(s2.tag.ds), bu.i.payload.du_next.eq(s2_du),
                     bu.i.payload.last.eq(s2.tag.last), bu.i.payload.tag.eq(s2.tag.j)]

        # ---- outputs: δU back to the state memory, δI two per word
        m.d.comb += bu.o.ready.eq(1)
        fired = bu.o.valid
        oj = bu.o.payload.tag
        m.d.comb += [self.state.waddr.eq(oj), self.state.wdata.eq(bu.o.payload.du),
                     self.state.wen.eq(fired)]
        m.d.sync += in_flight.eq(in_flight + take - fired)
        with m.If(self.start):
            m.d.sync += in_flight.eq(0)
        m.d.comb += self.busy.eq(in_flight != 0)
        packer = _HalfPacker(m, "di")
        emit = packer.push(fired, bu.o.payload.di, oj, oj == j_last)
        m.d.sync += Assert(~emit | out_fifo.w_rdy,
                           "backward pipe: δI word written to a full FIFO (admission credit)")
        m.d.comb += [out_fifo.w_data.eq(packer.word(bu.o.payload.di, oj)), out_fifo.w_en.eq(emit),
                     self.di.valid.eq(out_fifo.r_rdy), self.di.payload.data.eq(out_fifo.r_data),
                     self.di.payload.skip.eq(0), out_fifo.r_en.eq(self.di.ready)]
        return m
