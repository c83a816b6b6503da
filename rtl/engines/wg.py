"""WG engine: the weight gradient of a fully connected layer in exact fixed point
(docs/numerics.md §5), bit-exact with ``trident.golden.hw.gradient.fc_weight_grad``.

See docs/engines.md §12.  The engine computes one *tile*: ``L`` output neurons (a group
``g``, one per lane) × ``n_in`` inputs.  It streams the batch's rows ``r = (n, t)``: per
row the ``L`` values ``δI[r, g·L + l]`` and the row's input words.  Rows whose ``L``
deltas are all ``±0`` are discarded at one cycle per word; otherwise the
:class:`~.compress.EventCompressor` turns the row into its active inputs and each active
``i`` adds ``L`` exact terms into the accumulators of ``(g·L + l, i)``:

- spike input: the term is ``δI[r, j]`` itself, aligned once per row to an integer in
  units of 2^−24 (``fixed.float16_to_fixed``);
- analog input (MAC layer): the term is ``RNE(δI[r, j] · x[r, i])`` (an ``FPMul`` per
  lane, then aligned); a pair with ``δI = ±0`` contributes nothing.

±inf and NaN terms set flags beside the integer.  After the last row every accumulator is
rounded once to binary16 (``fixed.fixed_to_float16``), sent out and cleared.  The sum
being exact, the order of the terms does not matter; the hardware still adds them in
row order.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..fp16 import FPMul, Float16
from .compress import EventCompressor
from .fixed import TERM_BITS, fixed_normalize, fixed_round, float16_to_fixed, special_flags
from .fp import _bits_for, _clog2

__all__ = ["WGEngine", "ExactAccumulators", "wg_config_layout", "grad_layout",
           "acc_update_layout"]


def wg_config_layout(max_inputs, max_rows, groups_bits, mac_support):
    """The WG tile descriptor: ``n_in`` inputs of the tile, ``n_rows`` rows of the batch
    (samples × steps), ``group`` (carried to the output words as a label) and, with MAC
    support, ``mac`` (1: analog inputs)."""
    fields = {"n_in": _bits_for(max_inputs), "n_rows": _bits_for(max_rows),
              "group": groups_bits}
    if mac_support:
        fields["mac"] = 1
    return data.StructLayout(fields)


def grad_layout(lanes, max_inputs, groups_bits):
    """One output word: ``value`` (L binary16 gradients ``g[g·L + l, i]``), ``index``
    ``i`` and ``group``."""
    return data.StructLayout({"value": data.ArrayLayout(Float16, lanes),
                              "index": _clog2(max_inputs), "group": groups_bits})


def acc_update_layout(lanes, addr_bits):
    """One accumulator update: word ``addr`` gets ``term[l]`` (a signed ``TERM_BITS``-bit
    integer in units of 2^−24) added in lane ``l``, and ``flags[l]`` (NaN, +inf, −inf)
    ORed in."""
    return data.StructLayout({
        "addr": addr_bits,
        "term": data.ArrayLayout(signed(TERM_BITS), lanes),
        "flags": data.ArrayLayout(3, lanes),
    })


class ExactAccumulators(wiring.Component):
    """The WG engines' exact accumulators: a memory of ``L``-lane fixed-point words, a
    read-modify-write per update, and the read-out that rounds every word once to
    binary16 (docs/numerics.md §5).  Shared by :class:`WGEngine` and
    :class:`~.wg_conv.ConvWGEngine`.

    Accumulator memory (``lib.memory.Memory``): ``depth`` words, word ``a`` = ``L`` ×
    (``acc_bits``-bit two's-complement sum + NaN/+inf/−inf flags); zero between tiles
    (the read-out clears every word it reads).

    Updates: one per cycle, no stall.  An update is read in its cycle (A), registered (B)
    and added and written back in the next (C); the two previous writes are forwarded, so
    updates of one word in consecutive cycles are exact.

    Read-out: while ``readout`` is high (the owner raises it once every update has been
    given and ``pending`` is low) words ``0 … n_words − 1`` are read, cleared, rounded
    lane by lane through one two-stage rounding unit (``fixed_normalize`` |
    ``fixed_round``) and pushed to the output FIFO with their ``index`` and the ``group``
    label: ``L + 4`` cycles per word.

    Parameters
    ----------
    lanes : int
        ``L``.
    depth : int
        Accumulator words (a power of two).
    acc_bits : int
        Accumulator width.
    out_layout : StructLayout
        :func:`grad_layout` of the output words.
    out_depth : int
        Output FIFO depth.

    Members
    -------
    upd : In(stream.Signature(acc_update_layout))
        Updates; ``ready`` is always 1.  Never valid while ``readout`` is high.
    pending : Out(1)
        An update is still on its way into the memory.
    readout : In(1)
        Run the read-out (level).
    restart : In(1)
        Start a new tile: the read-out begins again at word 0.
    n_words : In
        Words to read out (sampled during the read-out).
    group : In
        Label copied into the output words.
    done : Out(1)
        The read-out has finished and every output word has been taken.
    grads : Out(stream.Signature(out_layout))
        ``value`` (L × binary16), ``index`` (the word), ``group``; ``index`` ascending.
    """

    def __init__(self, lanes, *, depth, acc_bits, out_layout, out_depth):
        self.lanes = int(lanes)
        self.addr_bits = _clog2(depth)
        self.acc_bits = int(acc_bits)
        self.out_layout = out_layout
        self.out_depth = int(out_depth)
        super().__init__({
            "upd": In(stream.Signature(acc_update_layout(self.lanes, self.addr_bits))),
            "pending": Out(1),
            "readout": In(1),
            "restart": In(1),
            "n_words": In(self.addr_bits + 1),
            "group": In(out_layout["group"].width),
            "done": Out(1),
            "grads": Out(stream.Signature(out_layout)),
        })

    def elaborate(self, platform):
        m = Module()
        L, ib, AB = self.lanes, self.addr_bits, self.acc_bits
        lane_layout = data.StructLayout({"acc": signed(AB), "nan": 1, "pinf": 1, "ninf": 1})
        acc_layout = data.ArrayLayout(lane_layout, L)
        amem = memory.Memory(shape=acc_layout, depth=1 << ib, init=[])
        m.submodules.amem = amem
        awr, ard = amem.write_port(), amem.read_port(domain="sync")
        m.d.comb += self.upd.ready.eq(1)
        a_valid, a_addr = self.upd.valid, self.upd.payload.addr
        a_term, a_flags = self.upd.payload.term, self.upd.payload.flags
        readout = self.readout

        # ---- read-modify-write: A read, B register, C add + write (forwarding from the two
        # previous writes, whose results the read could not see yet) ----------------------
        ro_addr = Signal(ib)
        ro_read = Signal()
        m.d.comb += [ard.addr.eq(Mux(readout, ro_addr, a_addr)), ard.en.eq(1)]
        b_valid, b_addr = Signal(), Signal(ib)
        b_term = [Signal(signed(TERM_BITS), name=f"b_term{l}") for l in range(L)]
        b_flags = [Signal(3, name=f"b_flags{l}") for l in range(L)]
        c_valid, c_addr = Signal(), Signal(ib)
        c_term = [Signal(signed(TERM_BITS), name=f"c_term{l}") for l in range(L)]
        c_flags = [Signal(3, name=f"c_flags{l}") for l in range(L)]
        c_mem = Signal(acc_layout)
        m.d.sync += [b_valid.eq(a_valid), b_addr.eq(a_addr), c_valid.eq(b_valid),
                     c_addr.eq(b_addr), c_mem.eq(ard.data)]
        m.d.sync += [b_term[l].eq(a_term[l]) for l in range(L)]
        m.d.sync += [b_flags[l].eq(a_flags[l]) for l in range(L)]
        m.d.sync += [c_term[l].eq(b_term[l]) for l in range(L)]
        m.d.sync += [c_flags[l].eq(b_flags[l]) for l in range(L)]
        w1_valid, w1_addr, w1_data = Signal(), Signal(ib), Signal(acc_layout)
        w2_valid, w2_addr, w2_data = Signal(), Signal(ib), Signal(acc_layout)
        old = Signal(acc_layout)
        m.d.comb += old.eq(Mux(w1_valid & (w1_addr == c_addr), w1_data,
                               Mux(w2_valid & (w2_addr == c_addr), w2_data, c_mem)))
        new = Signal(acc_layout)
        for l in range(L):
            m.d.comb += [
                new[l].acc.eq(old[l].acc + c_term[l]),
                new[l].nan.eq(old[l].nan | c_flags[l][0]),
                new[l].pinf.eq(old[l].pinf | c_flags[l][1]),
                new[l].ninf.eq(old[l].ninf | c_flags[l][2]),
            ]
        m.d.sync += [w1_valid.eq(c_valid), w1_addr.eq(c_addr), w1_data.eq(new),
                     w2_valid.eq(w1_valid), w2_addr.eq(w1_addr), w2_data.eq(w1_data)]
        with m.If(ro_read):                 # read-out: clear the word as it is read
            m.d.comb += [awr.addr.eq(ro_addr), awr.data.eq(0), awr.en.eq(1)]
        with m.Else():
            m.d.comb += [awr.addr.eq(c_addr), awr.data.eq(new), awr.en.eq(c_valid)]

        # ---- read-out: once every update is in and nothing is in flight ------------------
        # per index: read (and clear), latch; then the L lanes through the rounding unit,
        # one per cycle; then the word goes to the FIFO (L + 4 cycles per index)
        ofifo = fifo.SyncFIFO(width=self.out_layout.size, depth=self.out_depth)
        m.submodules.ofifo = ofifo
        m.d.comb += self.pending.eq(b_valid | c_valid)
        ro_state = Signal(range(4))         # 0 read + clear, 1 latch, 2 lanes, 3 push
        ro_buf = Signal(acc_layout)
        ro_lane = Signal(range(L + 1))
        ro_vals = Signal(data.ArrayLayout(Float16, L))
        ro_done = Signal()
        # lanes leave ro_buf (and enter ro_vals) by shifting: no variable indexing.  The
        # rounding unit has two stages (magnitude and leading zeros | shift and round), so
        # a word's L lanes take L + 1 cycles.
        sel = Signal(lane_layout)
        m.d.comb += sel.eq(ro_buf[0])
        sign, mag, lz = fixed_normalize(m, sel.acc)
        q1_sign, q1_mag, q1_flags, q1_valid = Signal(), Signal(AB), Signal(3), Signal()
        q1_lz = Signal(range(AB + 1))
        conv = Signal(16)
        m.d.comb += conv.eq(fixed_round(m, q1_sign, q1_mag, q1_lz, q1_flags[0], q1_flags[1],
                                        q1_flags[2]))
        last_i = ro_addr == self.n_words - 1
        m.d.comb += ro_read.eq(readout & ~ro_done & (ro_state == 0) & ofifo.w_rdy)
        # (If/Elif rather than Switch: see compress.py)
        with m.If(readout & ~ro_done):
            with m.If(ro_state == 0):
                with m.If(ro_read):
                    m.d.sync += ro_state.eq(1)
            with m.Elif(ro_state == 1):     # the word read before it was cleared
                m.d.sync += [ro_buf.eq(ard.data), ro_lane.eq(0), ro_state.eq(2),
                             q1_valid.eq(0)]
            with m.Elif(ro_state == 2):
                lane_w = lane_layout.size
                m.d.sync += [ro_buf.eq(ro_buf.as_value() >> lane_w), ro_lane.eq(ro_lane + 1),
                             q1_sign.eq(sign), q1_mag.eq(mag), q1_lz.eq(lz),
                             q1_flags.eq(Cat(sel.nan, sel.pinf, sel.ninf)),
                             q1_valid.eq(ro_lane < L)]
                with m.If(q1_valid):
                    m.d.sync += ro_vals.eq(Cat(ro_vals.as_value()[16:], conv))
                with m.If(ro_lane == L):
                    m.d.sync += ro_state.eq(3)
            with m.Else():
                m.d.sync += [ro_state.eq(0), ro_addr.eq(ro_addr + 1)]
                with m.If(last_i):
                    m.d.sync += ro_done.eq(1)
        word = Signal(self.out_layout)
        m.d.comb += [word.value.eq(ro_vals), word.index.eq(ro_addr), word.group.eq(self.group),
                     ofifo.w_data.eq(word),
                     ofifo.w_en.eq(readout & ~ro_done & (ro_state == 3))]
        m.d.comb += [self.grads.payload.eq(ofifo.r_data), self.grads.valid.eq(ofifo.r_rdy),
                     ofifo.r_en.eq(self.grads.ready)]

        m.d.comb += self.done.eq(ro_done & (ofifo.level == 0))
        with m.If(self.restart):
            m.d.sync += [ro_state.eq(0), ro_addr.eq(0), ro_done.eq(0)]
        return m


class WGEngine(wiring.Component):
    """Exact-accumulator weight-gradient engine for one FC tile (``L`` × ``n_in``).

    ``g[j, i] = RNE(Σ_r term(r, j, i) · 2^−24)`` over the rows ``r`` with input ``i``
    active and ``δI[r, j] ≠ ±0``; ``term`` = ``δI`` (spikes) or ``RNE(δI · x)`` (analog),
    as an exact integer in units of 2^−24; NaN if any NaN term or both infinities, else
    the infinity.

    Accumulator memory (``lib.memory.Memory``): ``2^⌈log2 max_inputs⌉`` words, word ``i``
    = ``L`` × (``acc_bits``-bit two's-complement sum + NaN/+inf/−inf flags); zero between
    tiles (the read-out clears it).  ``acc_bits = 64`` holds ≥ 2^23 terms of the largest
    magnitude (the contract's limit).

    Parameters
    ----------
    lanes : int
        ``L``, output neurons of the tile.
    mac_support : bool
        Analog inputs (one ``FPMul`` per lane).
    mul_stages : int, optional
        ``FPMul`` pipeline depth.
    max_inputs : int
        Largest ``n_in`` (the tile width).
    word_bits : int
        Input word width.
    max_rows : int
        Largest ``n_rows``.
    acc_bits : int
        Accumulator width (≥ 41).
    groups_bits : int
        Width of the ``group`` label.
    out_depth : int
        Output FIFO depth.
    counter_width : int
        Counter width.

    Members
    -------
    cmd : In(stream.Signature(wg_config_layout))
        The tile descriptor; accepted while idle.
    deltas : In(stream.Signature(ArrayLayout(Float16, L)))
        Per row, ``δI[r, g·L + l]`` for the tile's lanes.
    inputs : In(stream.Signature(word_bits))
        Per row, ``ceil(n_in / per_word)`` words (spike bits, or binary16 values in MAC
        mode), as for :class:`~.compress.EventCompressor`.
    grads : Out(stream.Signature(grad_layout))
        ``n_in`` words after the last row, ``i`` ascending.
    busy : Out(1)
        From the accepted ``cmd`` to the last gradient word taken.
    cnt_clear : In(1)
        Clears the counters.
    cnt_busy, cnt_events, cnt_ops, cnt_skipped : Out(counter_width)
        Busy cycles; active inputs of the non-skipped rows; lane terms accumulated
        (``L`` per accumulator update); rows skipped because all their deltas were ±0.
    """

    def __init__(self, lanes=4, *, mac_support=False, mul_stages=None, max_inputs=512,
                 word_bits=32, max_rows=1 << 16, acc_bits=64, groups_bits=10, out_depth=8,
                 counter_width=32):
        if acc_bits < TERM_BITS:
            raise ValueError(f"acc_bits must be at least {TERM_BITS}")
        if word_bits < 1 or word_bits & (word_bits - 1) or (mac_support and word_bits < 16):
            raise ValueError(f"word_bits must be a power of two (>= 16 for MAC mode), "
                             f"not {word_bits}")
        self.lanes = int(lanes)
        self.mac_support = bool(mac_support)
        self.mul_stages = FPMul.DEFAULT_STAGES if mul_stages is None else int(mul_stages)
        self.max_inputs = int(max_inputs)
        self.word_bits = int(word_bits)
        self.max_rows = int(max_rows)
        self.acc_bits = int(acc_bits)
        self.groups_bits = int(groups_bits)
        self.out_depth = int(out_depth)
        self.counter_width = int(counter_width)
        self.config_layout = wg_config_layout(self.max_inputs, self.max_rows,
                                              self.groups_bits, self.mac_support)
        self.delta_layout = data.ArrayLayout(Float16, self.lanes)
        self.out_layout = grad_layout(self.lanes, self.max_inputs, self.groups_bits)
        super().__init__({
            "cmd": In(stream.Signature(self.config_layout)),
            "deltas": In(stream.Signature(self.delta_layout)),
            "inputs": In(stream.Signature(self.word_bits)),
            "grads": Out(stream.Signature(self.out_layout)),
            "busy": Out(1),
            "cnt_clear": In(1),
            "cnt_busy": Out(self.counter_width),
            "cnt_events": Out(self.counter_width),
            "cnt_ops": Out(self.counter_width),
            "cnt_skipped": Out(self.counter_width),
        })

    def elaborate(self, platform):
        m = Module()
        L = self.lanes
        mac_support = self.mac_support
        ib = _clog2(self.max_inputs)
        rbits = _bits_for(self.max_rows)
        AB = self.acc_bits

        cfg = Signal(self.config_layout)
        running = Signal()
        m.d.comb += [self.cmd.ready.eq(~running), self.busy.eq(running)]
        start = self.cmd.valid & self.cmd.ready
        with m.If(start):
            m.d.sync += cfg.eq(self.cmd.payload)
        mac = cfg.mac if mac_support else Const(0, 1)

        # ---- rows: the deltas of the current row, and the compressor --------------------
        comp = EventCompressor(self.max_inputs, self.word_bits, mac_support)
        m.submodules.compress = comp
        row_loaded = Signal()               # a row's deltas are held
        row_skip = Signal()                 # ... and they are all ±0
        delta = Signal(self.delta_layout)
        term = [Signal(signed(TERM_BITS), name=f"term{l}") for l in range(L)]   # spike terms
        tflags = [Signal(3, name=f"tflags{l}") for l in range(L)]
        rows_in = Signal(rbits)             # rows whose deltas were taken
        rows_done = Signal(rbits)           # rows whose end marker was taken
        end_taken = comp.o.valid & comp.o.ready & comp.o.payload.end
        can_load = ~row_loaded | end_taken
        take_delta = self.deltas.valid & self.deltas.ready
        m.d.comb += self.deltas.ready.eq(running & can_load & (rows_in != cfg.n_rows))
        with m.If(end_taken):
            m.d.sync += [row_loaded.eq(0), rows_done.eq(rows_done + 1)]
        with m.If(take_delta):
            d = self.deltas.payload
            m.d.sync += [row_loaded.eq(1), delta.eq(d), rows_in.eq(rows_in + 1),
                         row_skip.eq(Cat(*((d[l].as_value()[:15] == 0) for l in range(L))).all())]
            for l in range(L):
                nan, pinf, ninf = special_flags(d[l])
                m.d.sync += [term[l].eq(float16_to_fixed(d[l])),
                             tflags[l].eq(Cat(nan, pinf, ninf))]
        m.d.comb += [
            comp.n_in.eq(self.cmd.payload.n_in),
            comp.mac.eq(self.cmd.payload.mac if mac_support else 0),
            comp.restart.eq(start),
            comp.discard.eq(row_skip),
            comp.i.payload.eq(self.inputs.payload),
            comp.i.valid.eq(self.inputs.valid & running & row_loaded & ~end_taken),
            self.inputs.ready.eq(comp.i.ready & running & row_loaded & ~end_taken),
            comp.o.ready.eq(running),
        ]
        event = comp.o.valid & ~comp.o.payload.end & ~row_skip

        # ---- terms of an event (analog: through the multipliers) --------------------------
        # A: the accumulator read; terms and flags travel with it to C
        a_valid = Signal()
        a_addr = Signal(ib)
        a_term = [Signal(signed(TERM_BITS), name=f"a_term{l}") for l in range(L)]
        a_flags = [Signal(3, name=f"a_flags{l}") for l in range(L)]
        spike_valid = event & ~mac
        if mac_support:
            muls = []
            for l in range(L):
                u = FPMul(self.mul_stages, tag_width=(ib + 2) if l == 0 else 0)
                m.submodules[f"mul{l}"] = u
                muls.append(u)
                m.d.comb += [u.i.valid.eq(event & mac), u.i.payload.a.eq(delta[l]),
                             u.i.payload.b.eq(comp.o.payload.value)]
            zero_delta = Signal(L)
            m.d.comb += zero_delta.eq(Cat(*((delta[l].as_value()[:15] == 0)
                                            for l in range(L))))
            m.d.comb += muls[0].i.payload.tag.eq(Cat(comp.o.payload.index, event & mac, 0))
            # the zero-delta mask travels beside the multipliers
            zd_pipe = [zero_delta]
            for k in range(self.mul_stages):
                r = Signal(L, name=f"zd{k}")
                m.d.sync += r.eq(zd_pipe[-1])
                zd_pipe.append(r)
            mul_out = muls[0].o.valid & muls[0].o.payload.tag[ib]
            with m.If(mul_out):
                m.d.sync += [a_valid.eq(1), a_addr.eq(muls[0].o.payload.tag[:ib])]
                for l in range(L):
                    p = muls[l].o.payload.z
                    nan, pinf, ninf = special_flags(p)
                    skip = zd_pipe[-1][l]
                    m.d.sync += [a_term[l].eq(Mux(skip, 0, float16_to_fixed(p))),
                                 a_flags[l].eq(Mux(skip, 0, Cat(nan, pinf, ninf)))]
            with m.Elif(spike_valid):
                m.d.sync += [a_valid.eq(1), a_addr.eq(comp.o.payload.index)]
                m.d.sync += [a_term[l].eq(term[l]) for l in range(L)]
                m.d.sync += [a_flags[l].eq(tflags[l]) for l in range(L)]
            with m.Else():
                m.d.sync += a_valid.eq(0)
            in_mul = Signal(range(self.mul_stages + 2))
            m.d.sync += in_mul.eq(in_mul + (event & mac) - mul_out)
        else:
            m.d.sync += [a_valid.eq(spike_valid), a_addr.eq(comp.o.payload.index)]
            m.d.sync += [a_term[l].eq(term[l]) for l in range(L)]
            m.d.sync += [a_flags[l].eq(tflags[l]) for l in range(L)]
            in_mul = Const(0, 1)

        # ---- accumulators: read-modify-write, then the read-out -----------------------------
        bank = ExactAccumulators(L, depth=1 << ib, acc_bits=AB, out_layout=self.out_layout,
                                 out_depth=self.out_depth)
        m.submodules.bank = bank
        drained = ((rows_done == cfg.n_rows) & ~a_valid & ~bank.pending
                   & (in_mul == 0) & ~row_loaded)
        m.d.comb += [
            bank.upd.valid.eq(a_valid), bank.upd.payload.addr.eq(a_addr),
            bank.readout.eq(running & drained), bank.restart.eq(start),
            bank.n_words.eq(cfg.n_in), bank.group.eq(cfg.group),
        ]
        m.d.comb += [bank.upd.payload.term[l].eq(a_term[l]) for l in range(L)]
        m.d.comb += [bank.upd.payload.flags[l].eq(a_flags[l]) for l in range(L)]
        wiring.connect(m, bank.grads, wiring.flipped(self.grads))

        done = running & bank.done
        with m.If(start):
            m.d.sync += [running.eq(1), row_loaded.eq(0), row_skip.eq(0), rows_in.eq(0),
                         rows_done.eq(0)]
        with m.Elif(done):
            m.d.sync += running.eq(0)

        # ---- counters ------------------------------------------------------------------
        cw = self.counter_width
        busy_c, events_c, ops_c, skipped_c = (Signal(cw, name=n) for n in
                                              ("busy_c", "events_c", "ops_c", "skipped_c"))
        m.d.sync += [busy_c.eq(busy_c + running),
                     events_c.eq(events_c + event),
                     ops_c.eq(ops_c + Mux(a_valid, L, 0)),
                     skipped_c.eq(skipped_c + (take_delta & Cat(
                         *((self.deltas.payload[l].as_value()[:15] == 0)
                           for l in range(L))).all()))]
        with m.If(self.cnt_clear):
            m.d.sync += [busy_c.eq(0), events_c.eq(0), ops_c.eq(0), skipped_c.eq(0)]
        m.d.comb += [self.cnt_busy.eq(busy_c), self.cnt_events.eq(events_c),
                     self.cnt_ops.eq(ops_c), self.cnt_skipped.eq(skipped_c)]
        return m
