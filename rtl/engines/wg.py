"""WG engine: the weight gradient of a fully connected layer in exact fixed point
(docs/numerics.md §5), bit-exact with ``trident.golden.hw.gradient.fc_weight_grad``.

See docs/engines.md §12.  The engine computes one *tile*: ``G`` groups of ``L`` output
neurons (one per lane) × ``n_in`` inputs.  It streams the batch's rows ``r = (n, t)``: per
row the ``G·L`` values ``δI[r, g·L + l]`` and the row's input words, read once for all
groups.  Rows whose deltas are all ``±0`` are discarded at one cycle per word; otherwise
the :class:`~.compress.EventCompressor` turns the row into its active inputs and each
active ``i`` adds, for every group ``g`` with a non-zero delta, ``L`` exact terms into the
accumulators of ``(g·L + l, i)``:

- spike input: the term is ``δI[r, j]`` itself, aligned to an integer in units of 2^−24
  (``fixed.float16_to_fixed``);
- analog input (MAC layer): the term is ``RNE(δI[r, j] · x[r, i])`` (an ``FPMul`` per
  lane, then aligned); a pair with ``δI = ±0`` contributes nothing.

±inf and NaN terms set flags beside the integer.  After the last row every accumulator is
rounded once to binary16 (``fixed.fixed_to_float16``), sent out and cleared.  The sum
being exact, the order of the terms does not matter; the hardware still adds them in
row order.
"""

from amaranth.hdl import Assert, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..fp16 import FPMul, Float16
from ..fp16.bits import trailing_zeros
from .compress import EventCompressor
from .fixed import TERM_BITS, fixed_normalize, fixed_round, float16_to_fixed, special_flags
from .fp import _bits_for, _clog2

__all__ = ["WGEngine", "ExactAccumulators", "wg_config_layout", "grad_layout",
           "acc_update_layout"]


def wg_config_layout(max_inputs, max_rows, max_groups, mac_support):
    """The WG tile descriptor: ``n_in`` inputs of the tile, ``n_rows`` rows of the batch
    (samples × steps), ``n_groups`` groups of ``L`` outputs, ``delta_rows`` (the rows that
    one row of deltas serves: 1, or T when the deltas are per sample) and, with MAC
    support, ``mac`` (1: analog inputs)."""
    fields = {"n_in": _bits_for(max_inputs), "n_rows": _bits_for(max_rows),
              "n_groups": _bits_for(max_groups), "delta_rows": 8}
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


def relabel_grads(m, words, grads, row_len, restart):
    """``grads`` = the accumulators' read-out ``words`` (words ``g·row_len + i``, in order)
    with their ``group`` g and ``index`` i, counted as they leave (from 0 after
    ``restart``)."""
    index = Signal.like(grads.payload.index)
    group = Signal.like(grads.payload.group)
    m.d.comb += [grads.valid.eq(words.valid), words.ready.eq(grads.ready),
                 grads.payload.value.eq(words.payload.value),
                 grads.payload.index.eq(index), grads.payload.group.eq(group)]
    with m.If(grads.valid & grads.ready):
        with m.If(index == row_len - 1):
            m.d.sync += [index.eq(0), group.eq(group + 1)]
        with m.Else():
            m.d.sync += index.eq(index + 1)
    with m.If(restart):
        m.d.sync += [index.eq(0), group.eq(0)]


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
        m.d.sync += Assert(~(self.upd.valid & readout),
                           "exact accumulators: an update arrived during the read-out")
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
    """Exact-accumulator weight-gradient engine for one FC tile of ``G`` groups of ``L``
    outputs × ``n_in`` inputs, reading every input row once for all ``G`` groups.

    ``g[j, i] = RNE(Σ_r term(r, j, i) · 2^−24)`` over the rows ``r`` with input ``i``
    active and ``δI[r, j] ≠ ±0``; ``term`` = ``δI`` (spikes) or ``RNE(δI · x)`` (analog),
    as an exact integer in units of 2^−24; NaN if any NaN term or both infinities, else
    the infinity.

    Per row the engine takes the ``G`` delta words into a delta buffer (``max_groups``
    words of ``L`` binary16; with ``delta_rows = T`` once per sample, kept for its ``T``
    rows), then the row's input words; each active input ``i`` is paired
    with every group whose ``L`` deltas are not all ``±0`` (one accumulator update of ``L``
    lanes per pair and cycle, the groups found by a priority encoder).  A row whose
    ``G·L`` deltas are all ``±0`` is discarded at one cycle per input word.

    Accumulator memory (``lib.memory.Memory``): ``2^⌈log2 max_inputs⌉`` words, word
    ``g·n_in + i`` = ``L`` × (``acc_bits``-bit two's-complement sum + NaN/+inf/−inf flags);
    ``G·n_in`` must fit.  ``acc_bits = 64`` holds ≥ 2^23 terms of the largest magnitude
    (the contract's limit).  The base addresses ``g·n_in`` are tabulated while the tile
    starts (``G`` cycles, no multiplier).

    Parameters
    ----------
    lanes : int
        ``L``, output neurons of a group.
    mac_support : bool
        Analog inputs (one ``FPMul`` per lane).
    mul_stages : int, optional
        ``FPMul`` pipeline depth.
    max_inputs : int
        Largest ``G·n_in`` (accumulator words).
    max_groups : int
        Largest ``G`` (delta buffer words; a power of two).
    word_bits : int
        Input word width.
    max_rows : int
        Largest ``n_rows``.
    acc_bits : int
        Accumulator width (≥ 41).
    out_depth : int
        Output FIFO depth.
    counter_width : int
        Counter width.

    Members
    -------
    cmd : In(stream.Signature(wg_config_layout))
        The tile descriptor (``n_in``, ``n_rows``, ``n_groups`` = ``G``, ``delta_rows``,
        with MAC support ``mac``); accepted while idle.  ``G·n_in ≤ 2^⌈log2 max_inputs⌉`` is the caller's
        to ensure.
    deltas : In(stream.Signature(ArrayLayout(Float16, L)))
        Per ``delta_rows`` rows, ``G`` words: ``δI[r, g·L + l]``, ``g`` ascending.
    inputs : In(stream.Signature(word_bits))
        Per row, ``ceil(n_in / per_word)`` words (spike bits, or binary16 values in MAC
        mode), as for :class:`~.compress.EventCompressor`.
    grads : Out(stream.Signature(grad_layout))
        ``G·n_in`` words after the last row: for ``g`` ascending, ``i`` ascending, with
        ``group`` = ``g`` and ``index`` = ``i``.
    busy : Out(1)
        From the accepted ``cmd`` to the last gradient word taken.
    cnt_clear : In(1)
        Clears the counters.
    cnt_busy, cnt_events, cnt_ops, cnt_skipped : Out(counter_width)
        Busy cycles; active inputs of the non-skipped rows; lane terms accumulated
        (``L`` per accumulator update); rows skipped because all their deltas were ±0.
    """

    def __init__(self, lanes=4, *, mac_support=False, mul_stages=None, max_inputs=512,
                 max_groups=32, word_bits=32, max_rows=1 << 16, acc_bits=64, out_depth=8,
                 counter_width=32):
        if acc_bits < TERM_BITS:
            raise ValueError(f"acc_bits must be at least {TERM_BITS}")
        if word_bits < 1 or word_bits & (word_bits - 1) or (mac_support and word_bits < 16):
            raise ValueError(f"word_bits must be a power of two (>= 16 for MAC mode), "
                             f"not {word_bits}")
        if max_groups < 1 or max_groups & (max_groups - 1):
            raise ValueError(f"max_groups must be a power of two, not {max_groups}")
        self.lanes = int(lanes)
        self.mac_support = bool(mac_support)
        self.mul_stages = FPMul.DEFAULT_STAGES if mul_stages is None else int(mul_stages)
        self.max_inputs = int(max_inputs)
        self.max_groups = int(max_groups)
        self.word_bits = int(word_bits)
        self.max_rows = int(max_rows)
        self.acc_bits = int(acc_bits)
        self.out_depth = int(out_depth)
        self.counter_width = int(counter_width)
        self.acc_words = 1 << _clog2(self.max_inputs)
        self.config_layout = wg_config_layout(self.max_inputs, self.max_rows,
                                              self.max_groups, self.mac_support)
        self.delta_layout = data.ArrayLayout(Float16, self.lanes)
        self.out_layout = grad_layout(self.lanes, self.max_inputs, _clog2(self.max_groups) or 1)
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
        L, P = self.lanes, self.max_groups
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

        # ---- base table: base[g] = g·n_in, G cycles at the start of a tile ---------------
        bases = memory.Memory(shape=ib + 1, depth=P, init=[])
        m.submodules.bases = bases
        base_wr, base_rd = bases.write_port(), bases.read_port(domain="sync")
        tab_g = Signal(range(P + 1))
        tab_acc = Signal(ib + 1)            # ends as G·n_in: the words to read out
        tab_ready = Signal()
        m.d.comb += [base_wr.addr.eq(tab_g), base_wr.data.eq(tab_acc),
                     base_wr.en.eq(running & ~tab_ready & (tab_g != cfg.n_groups))]
        with m.If(running & ~tab_ready):
            with m.If(tab_g == cfg.n_groups):
                m.d.sync += tab_ready.eq(1)
            with m.Else():
                m.d.sync += [tab_g.eq(tab_g + 1), tab_acc.eq(tab_acc + cfg.n_in)]

        # ---- rows: G delta words into the buffer, then the input words -------------------
        dbuf = memory.Memory(shape=self.delta_layout, depth=P, init=[])
        m.submodules.dbuf = dbuf
        dbuf_wr, dbuf_rd = dbuf.write_port(), dbuf.read_port(domain="sync")
        comp = EventCompressor(self.max_inputs, self.word_bits, mac_support)
        m.submodules.compress = comp
        row_loaded = Signal()               # the row's G delta words are held
        nz = Signal(P)                      # groups of the row with a non-zero delta
        nz_any = Signal()                   # ... at least one
        nz_more = Signal()                  # ... at least two
        row_skip = Signal()                 # ... none
        d_word = Signal(range(P))           # delta words of the row taken so far
        rows_in = Signal(rbits)             # rows covered by the deltas taken
        rows_done = Signal(rbits)           # rows whose end marker was taken
        reuse = Signal(8)                   # further rows the held deltas serve
        end_taken = comp.o.valid & comp.o.ready & comp.o.payload.end
        take_delta = self.deltas.valid & self.deltas.ready
        zero_word = Cat(*((self.deltas.payload[l].as_value()[:15] == 0) for l in range(L))).all()
        last_word = d_word == cfg.n_groups - 1
        # from registers: the engine's pairing logic (which decides ``end_taken``) does not
        # reach the gather unit and the delta buffer's write enable; the next row's first
        # delta word waits one cycle after the held row's end marker
        m.d.comb += [
            self.deltas.ready.eq(running & ~row_loaded & (rows_in != cfg.n_rows)),
            dbuf_wr.addr.eq(d_word), dbuf_wr.data.eq(self.deltas.payload),
            dbuf_wr.en.eq(take_delta),
        ]
        with m.If(end_taken):
            m.d.sync += rows_done.eq(rows_done + 1)
            with m.If(reuse == 0):
                m.d.sync += row_loaded.eq(0)
            with m.Else():
                m.d.sync += reuse.eq(reuse - 1)
        row_nz = Signal(P)                  # nz with the word being taken
        first = d_word == 0
        m.d.comb += row_nz.eq(Mux(first, 0, nz) | Mux(zero_word, 0, Const(1, P) << d_word))
        # a word adds at most one group: counted as the words come, not from row_nz
        row_any = (nz_any & ~first) | ~zero_word
        with m.If(take_delta):
            m.d.sync += [nz.eq(row_nz), d_word.eq(Mux(last_word, 0, d_word + 1)),
                         nz_any.eq(row_any),
                         nz_more.eq((nz_more & ~first) | (nz_any & ~first & ~zero_word))]
            with m.If(last_word):
                m.d.sync += [row_loaded.eq(1), rows_in.eq(rows_in + cfg.delta_rows),
                             reuse.eq(cfg.delta_rows - 1), row_skip.eq(~row_any)]
        m.d.comb += [
            comp.n_in.eq(self.cmd.payload.n_in),
            comp.mac.eq(self.cmd.payload.mac if mac_support else 0),
            comp.restart.eq(start),
            comp.discard.eq(row_skip),
            comp.i.payload.eq(self.inputs.payload),
            comp.i.valid.eq(self.inputs.valid & running & row_loaded & ~end_taken),
            self.inputs.ready.eq(comp.i.ready & running & row_loaded & ~end_taken),
        ]

        # ---- pairs: an event with each non-zero group (issue I, then P with the buffers) --
        event = comp.o.valid & ~comp.o.payload.end & ~row_skip & tab_ready
        pending_groups = Signal(P)          # groups still to pair with the held event
        pending_more = Signal()             # ... at least two
        fresh = Signal(init=1)             # the held event has not been paired yet
        remaining = Mux(fresh, nz, pending_groups)
        g_sel = Signal(range(P))
        m.d.comb += g_sel.eq(trailing_zeros(remaining))     # the lowest remaining group
        rest = remaining & (remaining - 1)
        # from registers: the compressor's ready (and through it the input's and the DMA's)
        # waits for no priority encoder
        last_pair = ~Mux(fresh, nz_more, pending_more)
        m.d.comb += comp.o.ready.eq(running & (comp.o.payload.end | row_skip | (tab_ready & last_pair)))
        with m.If(event):
            m.d.sync += [pending_groups.eq(rest), pending_more.eq((rest & (rest - 1)) != 0),
                         fresh.eq(last_pair)]
        m.d.comb += [dbuf_rd.addr.eq(g_sel), base_rd.addr.eq(g_sel), dbuf_rd.en.eq(1),
                     base_rd.en.eq(1)]
        p_valid, p_index = Signal(), Signal(ib)
        p_value = Signal(16)
        m.d.sync += [p_valid.eq(event), p_index.eq(comp.o.payload.index)]
        if mac_support:
            m.d.sync += p_value.eq(comp.o.payload.value)
        delta = Signal(self.delta_layout)
        m.d.comb += delta.eq(dbuf_rd.data)
        p_addr = Signal(ib)
        m.d.comb += p_addr.eq(base_rd.data + p_index)

        # ---- terms of a pair (analog: through the multipliers) ---------------------------
        # A: the accumulator update
        a_valid = Signal()
        a_addr = Signal(ib)
        a_term = [Signal(signed(TERM_BITS), name=f"a_term{l}") for l in range(L)]
        a_flags = [Signal(3, name=f"a_flags{l}") for l in range(L)]
        spike_valid = p_valid & ~mac
        spike_terms = []
        for l in range(L):
            nan, pinf, ninf = special_flags(delta[l])
            spike_terms.append((float16_to_fixed(delta[l]), Cat(nan, pinf, ninf)))
        if mac_support:
            muls = []
            for l in range(L):
                u = FPMul(self.mul_stages, tag_width=(ib + 1) if l == 0 else 0)
                m.submodules[f"mul{l}"] = u
                muls.append(u)
                m.d.comb += [u.i.valid.eq(p_valid & mac), u.i.payload.a.eq(delta[l]),
                             u.i.payload.b.eq(p_value)]
            zero_delta = Signal(L)
            m.d.comb += zero_delta.eq(Cat(*((delta[l].as_value()[:15] == 0)
                                            for l in range(L))))
            m.d.comb += muls[0].i.payload.tag.eq(Cat(p_addr, p_valid & mac))
            # the zero-delta mask travels beside the multipliers
            zd_pipe = [zero_delta]
            for k in range(self.mul_stages):
                r = Signal(L, name=f"zd{k}")
                m.d.sync += r.eq(zd_pipe[-1])
                zd_pipe.append(r)
            # the products are registered before the aligner (its shift and negation are a
            # cycle of their own, not behind the multipliers' last stage)
            mul_out = muls[0].o.valid & muls[0].o.payload.tag[ib]
            q_valid, q_addr = Signal(), Signal(ib)
            q_prod = [Signal(16, name=f"q_prod{l}") for l in range(L)]
            m.d.sync += [q_valid.eq(mul_out), q_addr.eq(muls[0].o.payload.tag[:ib])]
            # a zero delta's product is taken as +0: no term and no flags
            m.d.sync += [q_prod[l].eq(Mux(zd_pipe[-1][l], 0, muls[l].o.payload.z))
                         for l in range(L)]
            with m.If(q_valid):
                m.d.sync += [a_valid.eq(1), a_addr.eq(q_addr)]
                for l in range(L):
                    nan, pinf, ninf = special_flags(q_prod[l])
                    m.d.sync += [a_term[l].eq(float16_to_fixed(q_prod[l])),
                                 a_flags[l].eq(Cat(nan, pinf, ninf))]
            with m.Elif(spike_valid):
                m.d.sync += [a_valid.eq(1), a_addr.eq(p_addr)]
                m.d.sync += [a_term[l].eq(spike_terms[l][0]) for l in range(L)]
                m.d.sync += [a_flags[l].eq(spike_terms[l][1]) for l in range(L)]
            with m.Else():
                m.d.sync += a_valid.eq(0)
            in_mul = Signal(range(self.mul_stages + 3))
            m.d.sync += in_mul.eq(in_mul + (p_valid & mac) - q_valid)
        else:
            m.d.sync += [a_valid.eq(spike_valid), a_addr.eq(p_addr)]
            m.d.sync += [a_term[l].eq(spike_terms[l][0]) for l in range(L)]
            m.d.sync += [a_flags[l].eq(spike_terms[l][1]) for l in range(L)]
            in_mul = Const(0, 1)

        # ---- accumulators: read-modify-write, then the read-out -----------------------------
        bank = ExactAccumulators(L, depth=1 << ib, acc_bits=AB, out_layout=self.out_layout,
                                 out_depth=self.out_depth)
        m.submodules.bank = bank
        drained = ((rows_done == cfg.n_rows) & ~p_valid & ~a_valid & ~bank.pending
                   & (in_mul == 0) & ~row_loaded & tab_ready)
        # the read-out starts a cycle after the bank drained (nothing more comes in a run
        # once it has): the row count's comparison reaches no accumulator write
        readout = Signal()
        m.d.sync += readout.eq(running & drained & ~start)
        m.d.comb += [
            bank.upd.valid.eq(a_valid), bank.upd.payload.addr.eq(a_addr),
            bank.readout.eq(readout), bank.restart.eq(start),
            bank.n_words.eq(tab_acc), bank.group.eq(0),
        ]
        m.d.comb += [bank.upd.payload.term[l].eq(a_term[l]) for l in range(L)]
        m.d.comb += [bank.upd.payload.flags[l].eq(a_flags[l]) for l in range(L)]
        relabel_grads(m, bank.grads, self.grads, cfg.n_in, start)

        done = running & bank.done
        with m.If(start):
            m.d.sync += [running.eq(1), row_loaded.eq(0), row_skip.eq(0), rows_in.eq(0),
                         rows_done.eq(0), d_word.eq(0), reuse.eq(0), fresh.eq(1), tab_g.eq(0), tab_acc.eq(0),
                         tab_ready.eq(0)]
        with m.Elif(done):
            m.d.sync += running.eq(0)

        # ---- counters ------------------------------------------------------------------
        cw = self.counter_width
        busy_c, events_c, ops_c, skipped_c = (Signal(cw, name=n) for n in
                                              ("busy_c", "events_c", "ops_c", "skipped_c"))
        m.d.sync += [busy_c.eq(busy_c + running),
                     events_c.eq(events_c + (event & last_pair)),
                     ops_c.eq(ops_c + Mux(a_valid, L, 0)),
                     skipped_c.eq(skipped_c + (end_taken & row_skip))]
        with m.If(self.cnt_clear):
            m.d.sync += [busy_c.eq(0), events_c.eq(0), ops_c.eq(0), skipped_c.eq(0)]
        m.d.comb += [self.cnt_busy.eq(busy_c), self.cnt_events.eq(events_c),
                     self.cnt_ops.eq(ops_c), self.cnt_skipped.eq(skipped_c)]
        return m
