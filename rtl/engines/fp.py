"""FP engine: event-driven forward currents of a fully connected layer (docs/numerics.md
§2.1–2.2), bit-exact with ``trident.golden.hw.forward.fc_forward``.

See docs/engines.md for the architecture, the memory layouts, the cycle model and the
counters.  In short: per step, the :class:`~.compress.EventCompressor` turns the input
vector into the ascending list of active inputs (double-buffered, so compression of step
``t+1`` overlaps accumulation of step ``t``); the issuer then replays that list once per
*block* of ``P`` output groups (``P`` = the lane unit's latency), reading for each active
input ``i`` the weight words ``(g, i)`` of the block's groups in ``P`` consecutive cycles.
Each of the ``L`` lanes is one pipelined FP16 unit whose ``P`` pipeline slots hold the
``P`` groups' running accumulators: the accumulator of group ``g`` leaves the unit exactly
when the next weight of ``g`` enters it, so no accumulator register file is needed and the
lanes start a new operation every cycle.
"""

from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import data, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..fp16 import FPAdd, FPFMA, Float16
from .compress import ONE, EventCompressor, event_layout

__all__ = ["FPEngine", "layer_config_layout", "weight_write_layout", "current_layout"]

POS_ZERO = 0x0000
NEG_ZERO = 0x8000

# round kinds
HOLD, ACC, ZERO = 0, 1, 2


def _bits_for(n):
    return max(1, int(n).bit_length())


def _times(value, constant):
    """``value · constant`` for a small constant, as shifts and adds (no multiplier)."""
    return sum(value << b for b in range(int(constant).bit_length()) if constant >> b & 1)


def _clog2(n):
    return max(1, (int(n) - 1).bit_length())


def layer_config_layout(max_inputs, weight_depth, max_steps, mac_support):
    """The layer descriptor accepted on ``cmd`` (fields LSB first).

    ``n_in`` inputs (1 .. max_inputs), ``n_groups`` output groups of ``L`` neurons
    (1 .. weight_depth), ``n_steps`` time steps (1 .. max_steps), ``w_base`` word address
    of the layer's first weight word and, with MAC support, ``mac`` (1: analog input).
    """
    fields = {
        "n_in": _bits_for(max_inputs),
        "n_groups": _bits_for(weight_depth),
        "n_steps": _bits_for(max_steps),
        "w_base": _clog2(weight_depth),
    }
    if mac_support:
        fields["mac"] = 1
    return data.StructLayout(fields)


def weight_write_layout(lanes, weight_depth):
    """Payload of a weight-scratchpad write: ``data`` (``lanes`` binary16, lane 0 in the
    low bits) then ``addr``."""
    return data.StructLayout({"data": data.ArrayLayout(Float16, lanes),
                              "addr": _clog2(weight_depth)})


def current_layout(lanes, weight_depth, max_steps):
    """Payload of one output word: ``value`` (the currents ``I[t][g·L + l]`` of lanes
    ``l = 0 .. L-1``, lane 0 in the low bits), ``group`` ``g`` and ``step`` ``t``."""
    return data.StructLayout({"value": data.ArrayLayout(Float16, lanes),
                              "group": _bits_for(weight_depth),
                              "step": _bits_for(max_steps)})


@dataclass
class _Blocks:
    """What the issuer needs from a block source (see :meth:`FPEngine._blocks`)."""
    ready: Value
    last: Value
    slots: Value
    slot_valid: Value
    slot_group: Value
    slot_base: Value
    skipped: Value


class FPEngine(wiring.Component):
    """Event-driven FP engine for fully connected layers (spike mode and MAC mode).

    For every step ``t`` and output neuron ``j`` it computes ``I[t][j]``, the binary16
    accumulator of docs/numerics.md §2.1 that starts at ``+0`` and takes, in ascending
    input index and for active inputs only, ``acc ← add(acc, W[j, i])`` (spike mode) or
    ``acc ← fma(W[j, i], x[i], acc)`` (MAC mode).  Neuron ``j`` is lane ``j mod L`` of
    group ``j div L``.

    Weight scratchpad (``lib.memory.Memory``, ``weight_depth`` words of ``L`` binary16):
    word ``w_base + g·n_in + i`` holds ``W[g·L + l, i]`` in lane ``l`` (group-major,
    then input index; one read gives the ``L`` lanes' weights of input ``i``).  Lanes past
    the layer's last neuron should hold ``+0`` (their outputs are meaningless anyway).

    Parameters
    ----------
    lanes : int
        ``L``, parallel lane accumulators (one FP16 unit each).
    lane_unit : {"add", "fma"}
        ``"add"``: one :class:`~trident.rtl.fp16.FPAdd` per lane, spike mode only;
        ``"fma"``: one :class:`~trident.rtl.fp16.FPFMA` per lane (one multiplier each),
        spike mode (as ``fma(W, 1, acc)``, the same bits) and MAC mode.
    stages : int, optional
        Pipeline depth of the lane unit (default: the unit's default, 4 for FPAdd and
        6 for FPFMA).  It is also ``P``, the number of groups interleaved per block.
    max_inputs : int
        Largest ``n_in``; each of the two event buffers has this many entries.
    weight_depth : int
        Words of the weight scratchpad.
    word_bits : int
        Width of an input word (a power of two; ≥ 16 for MAC mode).
    max_steps : int
        Largest ``n_steps``.
    out_depth : int, optional
        Depth of the output FIFO (default ``4·P``: enough for back-to-back final rounds
        when the consumer takes one word per cycle; at least ``P``).
    counter_width : int
        Width of the performance counters (they wrap).

    Members
    -------
    cmd : In(stream.Signature(layer_config_layout))
        A layer descriptor; accepted (``cmd.ready``) only while idle.  The layer then runs
        for ``n_steps`` steps: it reads ``n_steps·ceil(n_in/per_word)`` words from
        ``inputs`` and writes ``n_steps·n_groups`` words to ``currents``.
    weights : In(stream.Signature(weight_write_layout))
        Scratchpad writes, always ready (one word per cycle).  Do not write the words of
        a layer while it runs.
    inputs : In(stream.Signature(word_bits))
        Input words, step after step (see :class:`~.compress.EventCompressor` for the bit
        order): spike bits, or ``word_bits/16`` binary16 values in MAC mode.
    currents : Out(stream.Signature(current_layout))
        The currents, one word per (step, group), step ascending then group ascending.
    busy : Out(1)
        From the accepted ``cmd`` until the last current word has been taken.
    cnt_clear : In(1)
        Clears the counters.
    cnt_busy : Out(counter_width)
        Cycles with ``busy`` high.
    cnt_events : Out(counter_width)
        Active inputs, summed over steps.
    cnt_ops : Out(counter_width)
        Lane operations executed (adds / FMAs into an accumulator): ``L`` per group and
        active input, i.e. ``Σ_t events(t)·n_groups·L``.
    cnt_skipped : Out(counter_width)
        Lane operations skipped because their input was zero:
        ``Σ_t (n_in − events(t))·n_groups·L``.  ``cnt_ops + cnt_skipped`` is the dense
        count ``n_steps·n_in·n_groups·L``.
    """

    def __init__(self, lanes=4, *, lane_unit="add", stages=None, max_inputs=1024,
                 weight_depth=1024, word_bits=32, max_steps=256, out_depth=None,
                 counter_width=32):
        if lane_unit not in ("add", "fma"):
            raise ValueError(f"lane_unit must be 'add' or 'fma', not {lane_unit!r}")
        if lanes < 1:
            raise ValueError(f"lanes must be positive, not {lanes}")
        self.lanes = int(lanes)
        self.lane_unit = lane_unit
        self.mac_support = lane_unit == "fma"
        unit_cls = FPFMA if self.mac_support else FPAdd
        self.stages = unit_cls.DEFAULT_STAGES if stages is None else int(stages)
        if self.stages < 1:
            raise ValueError("the lane unit needs at least one pipeline stage")
        self.P = self.stages
        self.max_inputs = int(max_inputs)
        self.weight_depth = int(weight_depth)
        self.word_bits = int(word_bits)
        self.max_steps = int(max_steps)
        self.out_depth = 4 * self.P if out_depth is None else int(out_depth)
        if self.out_depth < self.P:
            raise ValueError(f"out_depth must be at least P = {self.P}")
        self.counter_width = int(counter_width)
        self.config_layout = self._make_config_layout()
        self.write_layout = weight_write_layout(self.lanes, self.weight_depth)
        self.out_layout = current_layout(self.lanes, self.weight_depth, self.max_steps)
        if self.word_bits < 1 or self.word_bits & (self.word_bits - 1) or \
                (self.mac_support and self.word_bits < 16):
            raise ValueError(f"word_bits must be a power of two (>= 16 for MAC mode), "
                             f"not {self.word_bits}")
        members = {
            "cmd": In(stream.Signature(self.config_layout)),
            "weights": In(stream.Signature(self.write_layout)),
            "inputs": In(stream.Signature(self.word_bits)),
            "currents": Out(stream.Signature(self.out_layout)),
            "busy": Out(1),
            "cnt_clear": In(1),
            "cnt_busy": Out(self.counter_width),
            "cnt_events": Out(self.counter_width),
            "cnt_ops": Out(self.counter_width),
            "cnt_skipped": Out(self.counter_width),
        }
        if self.need_support:
            members["need"] = In(stream.Signature(self.P * self.lanes))
        super().__init__(members)

    # The BP engine (:class:`~.bp.BPEngine`) is this engine on transposed weights: analog
    # inputs only, plus the ``need`` mask.  It overrides ``need_support``, the descriptor
    # layout, the block source (``_blocks``) and the output stage (``_output``).
    need_support = False
    """Whether the engine has the ``need`` stream (the descriptor then has a ``need`` bit)."""

    def _make_config_layout(self):
        return layer_config_layout(self.max_inputs, self.weight_depth, self.max_steps,
                                   self.mac_support)

    @property
    def mac_only(self):
        """Analog inputs only (no ``mac`` bit: every layer is a MAC layer)."""
        return self.need_support

    def _blocks(self, m, cfg, k, go, final, start, running):
        """The issuer's block source: the groups of each step, ``P`` per block, in order
        (the BP engine replaces it with the needed groups only).

        ``k`` is the slot counter, ``go`` / ``final`` the issuer's round decision (a round
        of the block is issued / it is the block's last).  Returns a :class:`_Blocks`:
        ``ready`` (the next block is known), ``last`` (it is the step's last block),
        ``slots`` (its valid slots, for the output credits), the current round's slot
        ``k`` — ``slot_valid``, ``slot_group``, ``slot_base`` (weight address of the
        group's column) — and ``skipped`` (lane operations skipped outside the rounds,
        added to ``cnt_skipped`` every cycle).
        """
        P = self.P
        gbits = _bits_for(self.weight_depth)
        aw = _clog2(self.weight_depth)
        st_gb = Signal(gbits + 1)           # first group of the next block
        st_base = Signal(aw)                # weight address of that group's column
        left = Signal(gbits + 1)            # groups from st_gb on
        r_gb = Signal(gbits + 1)            # first group of the current round's block
        slot_base = Signal(aw)
        stride = Signal(aw)                 # P·n_in by shifts and adds (no multiplier)
        m.d.comb += stride.eq(_times(cfg.n_in, P))
        last = (st_gb + P) >= cfg.n_groups
        with m.If(running):
            m.d.sync += slot_base.eq(slot_base + cfg.n_in)
        with m.If(go):
            m.d.sync += [r_gb.eq(st_gb), slot_base.eq(st_base)]
            with m.If(final & last):
                m.d.sync += [st_gb.eq(0), st_base.eq(cfg.w_base), left.eq(cfg.n_groups)]
            with m.Elif(final):
                m.d.sync += [st_gb.eq(st_gb + P), st_base.eq(st_base + stride),
                             left.eq(left - P)]
        with m.If(start):
            m.d.sync += [st_gb.eq(0), st_base.eq(self.cmd.payload.w_base),
                         left.eq(self.cmd.payload.n_groups)]
        g = Signal(gbits + 1)
        m.d.comb += g.eq(r_gb + k)
        return _Blocks(ready=Const(1, 1), last=last, slots=Mux(left < P, left, P),
                       slot_valid=g < cfg.n_groups, slot_group=g, slot_base=slot_base,
                       skipped=Const(0, 1))

    def _output(self, m, cfg, ofifo, running, start):
        """Connect ``currents`` to the output FIFO (the BP engine merges in the +0 words
        of its unneeded groups here).  Returns the condition for the layer's end besides
        the issuer's (all words out of the FIFO)."""
        m.d.comb += [
            self.currents.payload.eq(ofifo.r_data),
            self.currents.valid.eq(ofifo.r_rdy),
            ofifo.r_en.eq(self.currents.ready),
        ]
        return Const(1, 1)

    @property
    def latency(self):
        """Cycles from a slot's issue to its sum leaving the lane unit (3 + P)."""
        return 3 + self.P

    def elaborate(self, platform):
        m = Module()
        L, P = self.lanes, self.P
        mac_support = self.mac_support
        cfg_l = self.config_layout

        # ---- configuration, latched when a command is accepted --------------------------
        cfg = Signal(cfg_l)
        running = Signal()
        m.d.comb += [self.cmd.ready.eq(~running), self.busy.eq(running)]
        start = self.cmd.valid & self.cmd.ready
        with m.If(start):
            m.d.sync += cfg.eq(self.cmd.payload)
        if self.mac_only:
            mac, cmd_mac = Const(1, 1), Const(1, 1)
        elif mac_support:
            mac, cmd_mac = cfg.mac, self.cmd.payload.mac
        else:
            mac, cmd_mac = Const(0, 1), Const(0, 1)

        # ---- weight scratchpad ---------------------------------------------------------
        aw = _clog2(self.weight_depth)
        wmem = memory.Memory(shape=data.ArrayLayout(Float16, L), depth=self.weight_depth,
                             init=[])
        m.submodules.wmem = wmem
        wwr = wmem.write_port()
        wrd = wmem.read_port(domain="sync")
        m.d.comb += [
            self.weights.ready.eq(1),
            wwr.addr.eq(self.weights.payload.addr),
            wwr.data.eq(self.weights.payload.data),
            wwr.en.eq(self.weights.valid),
        ]

        # ---- compressor and the double-buffered event lists -----------------------------
        comp = EventCompressor(self.max_inputs, self.word_bits, mac_support)
        m.submodules.compress = comp
        ev_bits = comp.index_bits
        ev_layout = event_layout(ev_bits, mac_support)
        ev_entries = 1 << max(1, (self.max_inputs - 1).bit_length())
        ev_store = data.StructLayout({k: v.shape for k, v in ev_layout
                                      if k != "end"})
        evmem = memory.Memory(shape=ev_store, depth=2 * ev_entries, init=[])
        m.submodules.evmem = evmem
        ewr = evmem.write_port()
        erd = evmem.read_port(domain="sync")
        nbits = _bits_for(self.max_inputs)
        sbits = _bits_for(self.max_steps)
        full = Signal(2)                    # bank holds a complete step's list
        count = [Signal(nbits, name=f"count{b}") for b in range(2)]
        last_e = [Signal(nbits, name=f"last_e{b}") for b in range(2)]     # count − 1
        no_ev = [Signal(name=f"no_ev{b}") for b in range(2)]               # count == 0
        wbank = Signal()                    # bank being written
        wcount = Signal(nbits)
        c_steps = Signal(sbits)             # steps compressed so far

        m.d.comb += [
            comp.n_in.eq(self.cmd.payload.n_in),        # sampled on restart
            comp.mac.eq(cmd_mac),
            comp.restart.eq(start),
            comp.i.payload.eq(self.inputs.payload),
            comp.i.valid.eq(self.inputs.valid & running & (c_steps != cfg.n_steps)),
            self.inputs.ready.eq(comp.i.ready & running & (c_steps != cfg.n_steps)),
            comp.o.ready.eq(running & ~full.bit_select(wbank, 1)),
            ewr.addr.eq(Cat(wcount[:ev_bits], wbank)),
            ewr.data.index.eq(comp.o.payload.index),
        ]
        if mac_support:
            m.d.comb += ewr.data.value.eq(comp.o.payload.value)
        ev_in = comp.o.valid & comp.o.ready
        m.d.comb += ewr.en.eq(ev_in & ~comp.o.payload.end)
        set_full = Signal(2)
        with m.If(ev_in):
            with m.If(comp.o.payload.end):
                m.d.comb += set_full.eq(Mux(wbank, 0b10, 0b01))
                m.d.sync += [wbank.eq(~wbank), wcount.eq(0), c_steps.eq(c_steps + 1)]
                for b in range(2):
                    with m.If(wbank == b):
                        m.d.sync += [count[b].eq(wcount), last_e[b].eq(wcount - 1),
                                     no_ev[b].eq(wcount == 0)]
            with m.Else():
                m.d.sync += wcount.eq(wcount + 1)

        # ---- output FIFO and credits ---------------------------------------------------
        out_w = self.out_layout.size
        ofifo = fifo.SyncFIFO(width=out_w, depth=self.out_depth)
        m.submodules.ofifo = ofifo
        out_done = self._output(m, cfg, ofifo, running, start)
        # output words issued (final rounds decided) and not yet taken by the consumer
        occupancy = Signal(range(self.out_depth + P + 1))
        push = Signal()
        reserve = Signal(range(P + 1))

        # ---- issuer: rounds of P slots -------------------------------------------------
        gbits = _bits_for(self.weight_depth)
        k = Signal(range(P))                # slot within the round
        r_kind = Signal(2)
        r_first = Signal()
        r_final = Signal()
        r_t = Signal(sbits)
        st_t = Signal(sbits)                # step of the next round
        st_bank = Signal()
        st_e = Signal(nbits)                # next event of the current block
        started = Signal()                  # the current block has accumulated
        issued = Signal()                   # all rounds of the layer issued
        clear_full = Signal(2)

        n_ev = Signal(nbits)
        m.d.comb += n_ev.eq(Mux(st_bank, count[1], count[0]))
        bank_ready = full.bit_select(st_bank, 1)
        empty_step = Mux(st_bank, no_ev[1], no_ev[0])

        # the blocks of the step: which groups the slots of the next rounds serve
        decide = running & (k == P - 1)
        go = Signal()
        final = Signal()
        blk = self._blocks(m, cfg, k, go, final, start, running)
        m.d.comb += reserve.eq(blk.slots)
        # a block without valid slots (BP: no needed group) or a step without events:
        # one zero round
        zero_round = empty_step | (blk.slots == 0)
        m.d.comb += final.eq(zero_round | (st_e == Mux(st_bank, last_e[1], last_e[0])))
        credit_ok = occupancy <= self.out_depth - P
        m.d.comb += go.eq(decide & ~issued & bank_ready & blk.ready & (~final | credit_ok))

        m.d.comb += [erd.addr.eq(Cat(st_e[:ev_bits], st_bank)), erd.en.eq(decide | ~running)]

        with m.If(running):
            m.d.sync += k.eq(Mux(k == P - 1, 0, k + 1))
        with m.If(decide):
            m.d.sync += [r_kind.eq(HOLD), r_final.eq(0), r_first.eq(~started)]
        with m.If(go):
            m.d.sync += [
                r_kind.eq(Mux(zero_round, ZERO, ACC)),
                r_first.eq(~started),
                r_final.eq(final),
                r_t.eq(st_t),
                started.eq(~final),
            ]
            with m.If(final):
                m.d.sync += st_e.eq(0)
                with m.If(blk.last):
                    m.d.comb += clear_full.eq(Mux(st_bank, 0b10, 0b01))
                    m.d.sync += [st_bank.eq(~st_bank), st_t.eq(st_t + 1)]
                    with m.If(st_t == cfg.n_steps - 1):
                        m.d.sync += issued.eq(1)
            with m.Else():
                m.d.sync += st_e.eq(st_e + 1)
        m.d.sync += full.eq((full | set_full) & ~clear_full)

        # Slot pipeline.  A: round state and slot counter.  B: the slot's control and the
        # round's event, registered (the event list's block-RAM output is too slow to
        # feed the address adder directly); the weight read is issued.  C: the weight
        # word leaves the block RAM.  D: it is registered (same reason) and enters the
        # lanes.  The loop through a lane stays P cycles: every slot's operands are
        # delayed alike.
        slot_valid = running & (r_kind != HOLD) & blk.slot_valid
        acc_op = slot_valid & (r_kind == ACC)
        ctl_layout = data.StructLayout({"valid": 1, "first": 1, "op": 1, "emit": 1,
                                        "group": gbits, "step": sbits, "value": 16})
        a_ctl = Signal(ctl_layout)
        m.d.comb += [
            a_ctl.valid.eq(running), a_ctl.first.eq(r_first), a_ctl.op.eq(acc_op),
            a_ctl.emit.eq(slot_valid & r_final), a_ctl.group.eq(blk.slot_group),
            a_ctl.step.eq(r_t),
        ]
        b_ctl = Signal(ctl_layout)
        b_base = Signal(aw)
        ev = Signal(ev_store)               # the round's event, registered
        m.d.sync += [b_ctl.eq(a_ctl), b_base.eq(blk.slot_base), ev.eq(erd.data)]
        m.d.comb += [wrd.addr.eq(b_base + ev.index), wrd.en.eq(1)]
        value = Signal(16)
        m.d.comb += value.eq(Mux(mac, ev.value, ONE) if mac_support else ONE)
        c_ctl = Signal(ctl_layout)
        m.d.sync += c_ctl.eq(b_ctl)
        m.d.sync += c_ctl.value.eq(value)
        d_ctl = Signal(ctl_layout)
        d_w = Signal(data.ArrayLayout(Float16, L))
        m.d.sync += [d_ctl.eq(c_ctl), d_w.eq(wrd.data)]
        s2_first, s2_op, s2_emit = d_ctl.first, d_ctl.op, d_ctl.emit
        s2_group, s2_t, s2_value, s2_valid = d_ctl.group, d_ctl.step, d_ctl.value, d_ctl.valid
        s2_w = d_w

        tag_layout = data.StructLayout({"emit": 1, "group": gbits, "step": sbits})
        unit_cls = FPFMA if mac_support else FPAdd
        units = []
        for lane in range(L):
            tag_width = tag_layout.size if lane == 0 else 0
            u = unit_cls(self.stages, tag_width=tag_width)
            m.submodules[f"lane{lane}"] = u
            units.append(u)
            w_lane = s2_w[lane]
            fb = Mux(s2_first, POS_ZERO, u.o.payload.z)
            p = u.i.payload
            m.d.comb += u.i.valid.eq(s2_valid)
            if mac_support:
                m.d.comb += [
                    p.a.eq(Mux(s2_op, w_lane, NEG_ZERO)),
                    p.b.eq(Mux(s2_op, s2_value, ONE)),
                    p.c.eq(fb),
                    p.neg_prod.eq(0),
                    p.neg_c.eq(0),
                ]
            else:
                m.d.comb += [
                    p.a.eq(fb),
                    p.b.eq(Mux(s2_op, w_lane, NEG_ZERO)),
                    p.sub.eq(0),
                ]
            if lane == 0:
                tag = data.View(tag_layout, p.tag)
                m.d.comb += [tag.emit.eq(s2_emit), tag.group.eq(s2_group), tag.step.eq(s2_t)]

        # results leaving the lanes: final sums into the FIFO
        out_tag = data.View(tag_layout, units[0].o.payload.tag)
        m.d.comb += push.eq(units[0].o.valid & out_tag.emit)
        word = Signal(self.out_layout)
        for lane in range(L):
            m.d.comb += word.value[lane].eq(units[lane].o.payload.z)
        m.d.comb += [word.group.eq(out_tag.group), word.step.eq(out_tag.step),
                     ofifo.w_data.eq(word), ofifo.w_en.eq(push)]
        m.d.sync += occupancy.eq(occupancy + Mux(go & final, reserve, 0)
                                 - (ofifo.r_rdy & ofifo.r_en))

        # ---- start and completion ------------------------------------------------------
        done = running & issued & (occupancy == 0) & out_done
        with m.If(start):
            m.d.sync += [
                running.eq(1), k.eq(P - 1), r_kind.eq(HOLD), r_first.eq(1), r_final.eq(0),
                st_t.eq(0), st_bank.eq(0), st_e.eq(0), started.eq(0), issued.eq(0),
                full.eq(0), wbank.eq(0), wcount.eq(0), c_steps.eq(0),
            ]
        with m.Elif(done):
            m.d.sync += running.eq(0)

        # ---- counters ------------------------------------------------------------------
        cw = self.counter_width
        busy_c = Signal(cw)
        events_c = Signal(cw)
        ops_c = Signal(cw)
        skipped_c = Signal(cw)
        # skipped: during a block's final round every valid group adds (n_in − events)·L,
        # plus what the block source skips (BP: unneeded groups).  The increments are
        # registered first (off the slot-decode path).
        skip_amount = Signal(cw)            # (n_in − events of the next round's step)·L
        skip_inc = Signal(cw)
        ops_inc = Signal(range(L + 1))
        with m.If(go):
            m.d.sync += skip_amount.eq(_times(cfg.n_in - n_ev, L))
        m.d.sync += [
            skip_inc.eq(Mux(slot_valid & r_final, skip_amount, 0) + blk.skipped),
            ops_inc.eq(Mux(acc_op, L, 0)),
            busy_c.eq(busy_c + running),
            events_c.eq(events_c + (ev_in & ~comp.o.payload.end)),
            ops_c.eq(ops_c + ops_inc),
            skipped_c.eq(skipped_c + skip_inc),
        ]
        with m.If(self.cnt_clear):
            m.d.sync += [busy_c.eq(0), events_c.eq(0), ops_c.eq(0), skipped_c.eq(0),
                         skip_inc.eq(0), ops_inc.eq(0)]
        m.d.comb += [self.cnt_busy.eq(busy_c), self.cnt_events.eq(events_c),
                     self.cnt_ops.eq(ops_c), self.cnt_skipped.eq(skipped_c)]
        return m
