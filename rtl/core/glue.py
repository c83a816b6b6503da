"""Word-format adapters between the DMA channels (32-bit DRAM words, two binary16 per word)
and the engines' ``L``-lane words (docs/core.md §4).

DRAM holds weights and gradients row-major (one row per output neuron, two binary16 per
word, docs/descriptors.md §5); the engines want lane-interleaved words.  The DMA's address
programs visit the DRAM words in the order each adapter consumes them, so the adapters
only count and shuffle halves:

:class:`FPWeightLoader`   FP: ``L`` rows' word ``p`` → engine words ``(g, 2p)``, ``(g, 2p+1)``
:class:`BPWeightLoader`   BP: row ``j``'s span of a column group → engine words ``(g, j, k)``
:class:`LaneGather`       ``L/2`` words → one ``L``-lane value (WG deltas)
:class:`LaneSplit`        one ``L``-lane word → ``L/2`` words (BP currents → ``δS``)
:class:`GradScatter`      WG gradients of inputs ``2p``, ``2p+1`` → one word per row
:class:`HalfScaler`       both halves of a word times a binary16 constant (``δO = G·inv_T``)
:class:`RowReplay`        a per-sample row read once, presented for every step
:class:`StreamFork`       one stream to two consumers, each behind a FIFO (BPWG: ``δI`` to BP and WG)

The adapters' configuration inputs (counts, words per row) must hold their values from the
cycle before ``start`` to the end of the run: the units compare against registered copies
(:func:`last_of`).
"""

from amaranth.hdl import Cat, Elaboratable, Module, Mux, Signal
from amaranth.lib import data, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..engines.credit import CreditBuffer
from ..fp16 import FPMul, Float16
from .dma import write_layout
from .ports import WORD_BITS

__all__ = ["last_of", "FPWeightLoader", "BPWeightLoader", "LaneGather", "LaneSplit", "GradScatter",
           "HalfScaler", "RowReplay", "StreamFork"]


class _LastIndex(Elaboratable):
    """``last = value − 1``, registered (its own module: no enclosing ``If`` can gate it)."""

    def __init__(self, value):
        self.value = value
        self.last = Signal.like(value, name="last")

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.last.eq(self.value - 1)
        return m


def last_of(m, value):
    """``value − 1`` in a register of ``value``'s width, for a unit's "last index"
    comparisons: its configuration inputs hold steady while it runs, so the comparison
    needs no subtractor (a carry chain) in its path; the register follows a changed input
    one cycle later.  Safe to call inside ``m.If``/``m.FSM`` blocks."""
    unit = _LastIndex(value)
    m.submodules += unit
    return unit.last


def _lanes_word(lanes):
    return data.ArrayLayout(Float16, lanes)


class FPWeightLoader(wiring.Component):
    """Row-major weights → the FP engine's words (``W[g·L + l, i]`` in lane ``l``).

    Input order: for each group ``g``, for each word ``p`` of a row, the word ``p`` of the
    group's rows ``g·L … g·L + lanes(g) − 1`` (``lanes(g) = L``, or ``last_lanes`` for the
    last group).  Output: engine words ``(g, 2p)`` then ``(g, 2p + 1)`` (the latter only if
    ``2p + 1 < n_in``) at consecutive addresses from 0; missing lanes are ``+0``.

    Members
    -------
    i : In(stream.Signature(32))
    o : Out(stream.Signature(StructLayout{data, addr}))
        The engine's weight-write payload.
    n_in, row_words, n_groups, last_lanes : In
        Layer geometry (held while loading).
    start : In(1)
        Restart the counters.
    """

    def __init__(self, write_layout_, *, lanes, count_bits):
        if lanes < 2 or lanes % 2:
            raise ValueError("the core needs an even lane count")
        self.lanes = lanes
        super().__init__({
            "i": In(stream.Signature(WORD_BITS)),
            "o": Out(stream.Signature(write_layout_)),
            "n_in": In(count_bits), "row_words": In(count_bits), "n_groups": In(count_bits),
            "last_lanes": In(range(lanes + 1)),
            "start": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        L = self.lanes
        lane = Signal(range(L))
        p = Signal.like(self.row_words)
        g = Signal.like(self.n_groups)
        lo = Signal(_lanes_word(L))
        hi = Signal(_lanes_word(L))
        hi_pending = Signal()
        addr = Signal.like(self.o.payload.addr)
        # "g is the last group" in a register (the geometry is steady from before
        # ``start``): the lane and ready logic start from flip-flops, not from a comparison
        last_g = last_of(m, self.n_groups)
        last_group = Signal()
        n_lanes = Mux(last_group, self.last_lanes, L)
        group_end = lane == Mux(last_group, last_of(m, self.last_lanes), L - 1)
        # the odd word goes out in the cycle after the even one; only a one-lane group can
        # complete again in that cycle, so only then is the input held back
        m.d.comb += self.i.ready.eq(~(hi_pending & group_end & (n_lanes == 1)))
        fire = self.i.valid & self.i.ready
        with m.If(fire):
            m.d.sync += [lo[lane].eq(self.i.payload[:16]), hi[lane].eq(self.i.payload[16:])]
            with m.If(group_end):
                m.d.sync += lane.eq(0)
                with m.If(p == last_of(m, self.row_words)):
                    m.d.sync += [p.eq(0), g.eq(g + 1), last_group.eq(g + 1 == last_g)]
                with m.Else():
                    m.d.sync += p.eq(p + 1)
            with m.Else():
                m.d.sync += lane.eq(lane + 1)
        even = Signal(_lanes_word(L))
        odd = Signal(_lanes_word(L))
        for l in range(L):
            keep = l < n_lanes
            m.d.comb += [
                even[l].eq(Mux(keep, Mux(lane == l, self.i.payload[:16], lo[l]), 0)),
                odd[l].eq(Mux(keep, Mux(lane == l, self.i.payload[16:], hi[l]), 0)),
            ]
        emit_even = fire & group_end
        held = Signal(_lanes_word(L))
        with m.If(emit_even):
            m.d.sync += [held.eq(odd), hi_pending.eq((p << 1) + 1 < self.n_in)]
        with m.Elif(hi_pending):
            m.d.sync += hi_pending.eq(0)
        m.d.comb += [self.o.valid.eq(emit_even | hi_pending),
                     self.o.payload.data.eq(Mux(hi_pending, held, even)),
                     self.o.payload.addr.eq(addr)]
        with m.If(self.o.valid):
            m.d.sync += addr.eq(addr + 1)
        with m.If(self.start):
            m.d.sync += [lane.eq(0), p.eq(0), g.eq(0), addr.eq(0), hi_pending.eq(0),
                         last_group.eq(last_g == 0)]
        return m


class BPWeightLoader(wiring.Component):
    """Row-major weights → the transposed engine words ``W[j, g·L + l, k]`` in lane ``l``,
    for FC (``kk = 1``) and convolution (``kk = K²``).

    A weight row ``j`` (output neuron or channel) holds the elements ``(c, k)`` at flat
    index ``c·kk + k``, two per word (element ``2w`` low).  The *span* of column group
    ``g`` in a row is the ``L·kk`` elements of its ``L`` input channels; it starts at an
    even element.

    Input order: for each group ``g``, for each row ``j``, the words of the span:
    ``L·kk/2``, or ``last_words`` for the last group (``ceil(lanes·kk/2)``).  Output: for
    each ``g``, ``j``, ``k = 0 … kk−1``, the word ``{W[j, g·L + l, k]}_l`` at consecutive
    addresses from 0 (address ``(g·n_rows + j)·kk + k``, the FC and conv BP layouts).
    A lane of the last group is ``+0`` unless all its ``kk`` elements were read,
    ``(l + 1)·kk ≤ 2·last_words``: with ``kk = 1`` that keeps every lane of a read word
    (FC: the odd half of the last word passes, as before); with ``kk ≥ 2`` it drops the
    extra element that ends an odd-length span (the first of a channel outside the tile).

    Rate.  ``o`` has no back-pressure (the engine's weight port is always ready):
    ``o.valid`` is a one-cycle pulse per word and ``o.ready`` is ignored.  Word ``k`` of a
    span goes out, one per cycle, as soon as the element ``k`` of its top lane is in (in
    the cycle it arrives); the next span's words enter meanwhile, into slots already sent.
    ``i.ready`` is low only while a word would overwrite a slot not yet sent: never with
    ``kk = 1`` nor with spans of two or more lanes (tested at full rate); a one-lane last
    group (``kk ≥ 2``: ``kk`` words out per ``ceil(kk/2)`` in) is held to the output rate.
    The buffer: per lane, two memories (even and odd ``k``) of ``ceil(max_kk/2)`` and
    ``floor(max_kk/2)`` binary16, read asynchronously (LUT RAM; for ``max_kk = 1`` one
    register per lane, as before).

    Members
    -------
    i : In(stream.Signature(32))
    o : Out(stream.Signature(StructLayout{data, addr}))
        The engine's weight-write payload; ``ready`` ignored.
    n_rows, n_groups : In(count_bits)
    last_words : In(range(L·max_kk/2 + 1))
        Words of the last group's span (≥ 1).
    kk : In(range(max_kk + 1)), init 1
        Elements per channel (``K²``; 1 for FC, the default for a user that leaves it).
    start : In(1)
        Restart the counters.
    """

    def __init__(self, write_layout_, *, lanes, count_bits, max_kk=1):
        if lanes < 2 or lanes % 2:
            raise ValueError("the core needs an even lane count")
        self.lanes = lanes
        self.max_kk = max_kk
        super().__init__({
            "i": In(stream.Signature(WORD_BITS)),
            "o": Out(stream.Signature(write_layout_)),
            "n_rows": In(count_bits), "n_groups": In(count_bits),
            "last_words": In(range(lanes // 2 * max_kk + 1)),
            "kk": In(range(max_kk + 1), init=1),
            "start": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        L, half = self.lanes, self.lanes // 2
        # registered copies of the configuration (held from the cycle before start)
        one = Signal()
        slot_range = range(max(2, self.max_kk))     # ≥ 1 bit: bit 0 picks the bank
        kk_m1 = Signal(slot_range)
        kk_m2 = Signal(slot_range)
        span_m1 = Signal(range(half * self.max_kk))
        keep_last = Signal(L)                   # lanes of the last group that are sent
        top_last = Signal(range(-1, L))         # the last of them
        m.d.sync += [one.eq(self.kk == 1), kk_m1.eq(self.kk - 1), kk_m2.eq(self.kk - 2),
                     span_m1.eq(self.kk * half - 1)]
        full_lane = [(l + 1) * self.kk <= self.last_words * 2 for l in range(L)]
        m.d.sync += [keep_last.eq(Cat(full_lane)), top_last.eq(sum(full_lane) - 1)]

        # input side: word iw of the span of (group g, row j); its low element is slot ik
        # of lane il
        iw = Signal(range(half * self.max_kk))
        il = Signal(range(L))
        ik = Signal(slot_range)
        j = Signal.like(self.n_rows)
        g = Signal.like(self.n_groups)
        in_last = g == last_of(m, self.n_groups)
        span_end = iw == Mux(in_last, last_of(m, self.last_words), span_m1)
        wrap = ik == kk_m1                      # the high element opens the next lane
        hl = il + wrap
        hk = Mux(wrap, 0, ik + 1)
        nl = Signal(range(L + 2))               # the next word's low element
        nk = Signal.like(ik)
        with m.If(one):
            m.d.comb += [nl.eq(il + 2), nk.eq(0)]
        with m.Elif(wrap):
            m.d.comb += [nl.eq(il + 1), nk.eq(1)]
        with m.Elif(ik == kk_m2):
            m.d.comb += [nl.eq(il + 1), nk.eq(0)]
        with m.Else():
            m.d.comb += [nl.eq(il), nk.eq(ik + 2)]

        # output side: slot ek of the oldest span not yet sent; ``behind``: that span is
        # complete and the input is in the next one (never further: a span writes slot
        # kk−1 of its lane 0, which waits for the previous span's last word)
        ek = Signal(slot_range)
        behind = Signal()
        ended_last = Signal()                   # the completed span is of the last group
        addr = Signal.like(self.o.payload.addr)
        # while behind, every cycle sends a slot, so a word may write the slots up to ek
        m.d.comb += self.i.ready.eq(~behind | (Mux(wrap, ik, ik + 1) <= ek))
        fire = self.i.valid & self.i.ready
        span_fire = fire & span_end
        top = Mux(in_last, top_last, L - 1)     # the span's slot k is in once the top lane's is
        pl = Mux(fire, nl, il)                  # the first element not yet written
        pk = Mux(fire, nk, ik)
        # (a span must have begun: a last group without lanes, top −1, sends nothing)
        streamed = (fire | (iw != 0)) & ((pl > top) | ((pl == top) & (pk > ek)))
        emit = behind | streamed
        finish = emit & (ek == kk_m1)

        lo, hi = self.i.payload[:16], self.i.payload[16:]
        word = Signal(_lanes_word(L))
        e_last = Mux(behind, ended_last, in_last)
        for l in range(L):
            # two banks of slots (even, odd k): a word's elements are adjacent slots of
            # one lane or lie in two lanes, so each bank takes at most one per cycle
            reads = []
            for b in range(2):
                depth = (self.max_kk + 1 - b) // 2
                if depth == 0:
                    continue
                bank = memory.Memory(shape=16, depth=depth, init=[])
                m.submodules[f"lane{l}_bank{b}"] = bank
                wr = bank.write_port()
                rd = bank.read_port(domain="comb")
                lo_hit = (il == l) & (ik[0] == b)
                hi_hit = (hl == l) & (hk[0] == b)
                m.d.comb += [wr.en.eq(fire & (lo_hit | hi_hit)),
                             wr.addr.eq(Mux(lo_hit, ik >> 1, hk >> 1)),
                             wr.data.eq(Mux(lo_hit, lo, hi)),
                             rd.addr.eq(ek >> 1)]
                reads.append(rd.data)
            value = Mux(ek[0], reads[1], reads[0]) if len(reads) == 2 else reads[0]
            # a slot written in this cycle is sent in it (not when behind: the write
            # belongs to the next span)
            now = fire & ~behind
            value = Mux(now & (il == l) & (ik == ek), lo,
                        Mux(now & (hl == l) & (hk == ek), hi, value))
            m.d.comb += word[l].eq(Mux(~e_last | keep_last[l], value, 0))
        m.d.comb += [self.o.valid.eq(emit), self.o.payload.data.eq(word),
                     self.o.payload.addr.eq(addr)]

        with m.If(fire):
            with m.If(span_end):
                m.d.sync += [iw.eq(0), il.eq(0), ik.eq(0), ended_last.eq(in_last)]
                with m.If(j == last_of(m, self.n_rows)):
                    m.d.sync += [j.eq(0), g.eq(g + 1)]
                with m.Else():
                    m.d.sync += j.eq(j + 1)
            with m.Else():
                m.d.sync += [iw.eq(iw + 1), il.eq(nl), ik.eq(nk)]
        with m.If(emit):
            m.d.sync += [ek.eq(Mux(finish, 0, ek + 1)), addr.eq(addr + 1)]
        m.d.sync += behind.eq(Mux(finish, behind & span_fire, behind | span_fire))
        with m.If(self.start):
            m.d.sync += [iw.eq(0), il.eq(0), ik.eq(0), j.eq(0), g.eq(0), ek.eq(0),
                         behind.eq(0), addr.eq(0)]
        return m


class LaneGather(wiring.Component):
    """Rows of ``row_words`` words → ``L``-lane values of ``L/2`` words each; the last value
    of a row takes the row's remaining words, its missing lanes ``+0``.

    A value leaves from a register (one cycle after its last word; one value per word
    at full rate): the WG engine's event compressor, which tests every lane of ``o`` for
    non-zero, then starts from a flip-flop and not from the DMA's LUT-RAM FIFO.  A second
    register takes a value that completes while ``o`` is stalled, so ``i.ready`` comes from
    that register alone: the WG engine's ``ready``, which its pairing logic decides, does not
    reach back through the gather into the DMA or the δO scaler in the same cycle.

    Members
    -------
    i : In(stream.Signature(32))
    o : Out(stream.Signature(ArrayLayout(Float16, L)))
    row_words : In
        Words per row (≥ 1).
    start : In(1)
        A new run begins at a row's first word.
    """

    def __init__(self, lanes, *, count_bits):
        self.lanes = lanes
        super().__init__({
            "i": In(stream.Signature(WORD_BITS)),
            "o": Out(stream.Signature(_lanes_word(lanes))),
            "row_words": In(count_bits),
            "start": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        half = self.lanes // 2
        k = Signal(range(max(2, half)))         # word within the value
        w = Signal.like(self.row_words)         # word within the row
        acc = Signal(half * WORD_BITS)
        row_end = w == last_of(m, self.row_words)
        last = (k == half - 1) | row_end
        word = Signal(half * WORD_BITS)
        for q in range(half):
            m.d.comb += word.word_select(q, WORD_BITS).eq(
                Mux(k == q, self.i.payload, Mux(q < k, acc.word_select(q, WORD_BITS), 0)))
        full = Signal()                         # o holds a value
        spare = Signal.like(word)               # a value completed while o was stalled
        spare_full = Signal()
        m.d.comb += [self.o.valid.eq(full), self.i.ready.eq(~spare_full)]
        with m.If(self.o.ready):
            m.d.sync += [full.eq(spare_full), self.o.payload.eq(spare), spare_full.eq(0)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [acc.word_select(k, WORD_BITS).eq(self.i.payload),
                         k.eq(Mux(last, 0, k + 1)), w.eq(Mux(row_end, 0, w + 1))]
            with m.If(last):
                with m.If(full & ~self.o.ready):
                    m.d.sync += [spare.eq(word), spare_full.eq(1)]
                with m.Else():
                    m.d.sync += [self.o.payload.eq(word), full.eq(1)]
        with m.If(self.start):
            m.d.sync += [k.eq(0), w.eq(0)]
        return m


class LaneSplit(wiring.Component):
    """One ``L``-lane word → ``L/2`` words, lane ``2q`` low in word ``q``; words at or past
    ``row_words`` within a row of ``n_groups`` lane words are marked ``skip``.

    Members
    -------
    i : In(stream.Signature(StructLayout{value: ArrayLayout(Float16, L), ...}))
        The engine's current words (other fields ignored).
    o : Out(stream.Signature(write_layout))
    row_words, n_groups : In
    start : In(1)
    """

    def __init__(self, in_layout, *, lanes, count_bits):
        self.lanes = lanes
        super().__init__({
            "i": In(stream.Signature(in_layout)),
            "o": Out(stream.Signature(write_layout)),
            "row_words": In(count_bits), "n_groups": In(count_bits),
            "start": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        half = self.lanes // 2
        q = Signal(range(max(2, half)))
        g = Signal.like(self.n_groups)
        col = Signal.like(self.row_words)          # word index within the row
        value = self.i.payload.value
        m.d.comb += [self.o.valid.eq(self.i.valid),
                     self.o.payload.data.eq(value.as_value().word_select(q, WORD_BITS)),
                     self.o.payload.skip.eq(col >= self.row_words),
                     self.i.ready.eq(self.o.ready & (q == half - 1))]
        with m.If(self.o.valid & self.o.ready):
            with m.If(q == half - 1):
                m.d.sync += q.eq(0)
                with m.If(g == last_of(m, self.n_groups)):
                    m.d.sync += [g.eq(0), col.eq(0)]
                with m.Else():
                    m.d.sync += [g.eq(g + 1), col.eq(col + 1)]
            with m.Else():
                m.d.sync += [q.eq(q + 1), col.eq(col + 1)]
        with m.If(self.start):
            m.d.sync += [q.eq(0), g.eq(0), col.eq(0)]
        return m


class GradScatter(wiring.Component):
    """WG gradient words (``L`` lanes of input ``i``, ``n_in`` words per group, groups one
    after the other) → row-major words: per pair of inputs ``(2p, 2p+1)`` one word per lane
    ``l`` (row ``g·L + l``); lanes of the last group ``≥ last_lanes`` are ``skip``; an odd
    ``n_in`` pads the last word with ``+0``.  Also flags non-finite gradients of the written
    lanes.  The gradients come in and the words leave through two-word FIFOs: ``i.ready``
    is the input FIFO's level (registers), not the pair/lane logic, and that logic sees the
    output FIFO's level and not the consumer's ``ready``.

    Members
    -------
    i : In(stream.Signature(grad_layout))
    o : Out(stream.Signature(write_layout))
    n_in : In
    n_groups : In
        Groups of this run.
    last_lanes : In
        Rows of the last group that exist.
    start : In(1)
    overflow : Out(1)
        Pulse, one cycle after a gradient of an existing row taken is ±inf or NaN.
    """

    def __init__(self, in_layout, *, lanes, count_bits):
        self.lanes = lanes
        super().__init__({
            "i": In(stream.Signature(in_layout)),
            "o": Out(stream.Signature(write_layout)),
            "n_in": In(count_bits),
            "n_groups": In(count_bits),
            "last_lanes": In(range(lanes + 1)),
            "start": In(1),
            "overflow": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        L = self.lanes
        even = Signal(_lanes_word(L))
        idx = Signal.like(self.n_in)              # inputs of the group taken
        group = Signal.like(self.n_groups)
        n_lanes = Mux(group == last_of(m, self.n_groups), self.last_lanes, L)
        lane = Signal(range(L))
        inq = fifo.SyncFIFO(width=self.i.payload.shape().size, depth=2)
        m.submodules.inq = inq
        m.d.comb += [inq.w_en.eq(self.i.valid), inq.w_data.eq(self.i.payload),
                     self.i.ready.eq(inq.w_rdy)]
        grad = data.View(self.i.payload.shape(), inq.r_data)
        value = grad.value
        take = Signal()                           # the pair/lane logic takes inq's word
        odd_in = idx[0]
        # "idx is the last input" kept in a register: the run's configuration is steady
        # from before ``start``, so the comparisons feed a flip-flop and not ``take``
        last_idx = last_of(m, self.n_in)
        last_in = Signal()
        # a pair is complete with its odd input, or with the even one if it is the last
        pair = Signal()
        m.d.comb += pair.eq(inq.r_rdy & (odd_in | last_in))
        hi = Mux(odd_in, value[lane], 0)
        lo = Mux(odd_in, even[lane], value[lane])
        out = fifo.SyncFIFO(width=write_layout.size, depth=2)
        m.submodules.out = out
        word = Signal(write_layout)
        m.d.comb += [word.data.eq(Cat(lo, hi)), word.skip.eq(lane >= n_lanes),
                     out.w_en.eq(pair), out.w_data.eq(word),
                     self.o.valid.eq(out.r_rdy), self.o.payload.eq(out.r_data),
                     out.r_en.eq(self.o.ready),
                     take.eq(inq.r_rdy & (~pair | (out.w_rdy & (lane == L - 1)))),
                     inq.r_en.eq(take)]
        with m.If(take):
            m.d.sync += [idx.eq(Mux(last_in, 0, idx + 1)), lane.eq(0),
                         last_in.eq(Mux(last_in, last_idx == 0, idx + 1 == last_idx))]
            with m.If(last_in):
                m.d.sync += group.eq(group + 1)
            with m.If(~pair):
                m.d.sync += even.eq(value)
        with m.Elif(pair & out.w_rdy):
            m.d.sync += lane.eq(lane + 1)
        # registered: the flag feeds the core's overflow register and its outputs, which
        # must not hang on the pair/ready logic (a chip-crossing path in place and route)
        nonfinite = Cat(*[(l < n_lanes) & (value[l].exponent == 0x1F) for l in range(L)]).any()
        m.d.sync += self.overflow.eq(take & nonfinite)
        with m.If(self.start):
            m.d.sync += [idx.eq(0), lane.eq(0), group.eq(0), last_in.eq(last_idx == 0)]
        return m


class HalfScaler(wiring.Component):
    """Both binary16 halves of each word times ``k`` (one ``FPMul``, two cycles per word).

    The multiplier never stalls: a word's products go into a small output FIFO, and a half
    is issued only while the words in flight plus the FIFO's level leave room (credits), so
    ``i.ready`` depends on registers only.  An issued half, ``k`` and the half's tag are
    registered before the multiplier (one cycle of latency), so the stream routing in front
    of ``i`` does not reach the multiplier's DSP input.

    Members
    -------
    i : In(stream.Signature(32))
    o : Out(stream.Signature(32))
    k : In(Float16)
    """

    # a word holds a credit from its upper half's issue until it leaves the FIFO, so words
    # in flight + queued never exceed the FIFO (at any depth); the depth sets the rate: the
    # input register + the multiplier's 3 cycles hold two words, 4 keeps two cycles per word
    # with a ready consumer, 5 keeps the slack of the unregistered scaler's 4 under stalls
    DEPTH = 5

    def __init__(self):
        super().__init__({
            "i": In(stream.Signature(WORD_BITS)),
            "o": Out(stream.Signature(WORD_BITS)),
            "k": In(Float16),
        })

    def elaborate(self, platform):
        m = Module()
        mul = FPMul(3, tag_width=1)
        m.submodules.mul = mul
        out = CreditBuffer(WORD_BITS, depth=self.DEPTH)
        m.submodules.out = out
        half = Signal()                       # 1: the word's upper half goes next
        issue = self.i.valid & out.room
        m.d.comb += self.i.ready.eq(issue & half)
        with m.If(issue):
            m.d.sync += half.eq(~half)
        # the issued half, k and the tag, registered in front of the multiplier
        a_valid, a = Signal(name="a_valid"), Signal(16, name="a")
        k, tag = Signal(Float16, name="k"), Signal(name="tag")
        m.d.sync += [a_valid.eq(issue), a.eq(self.i.payload.word_select(half, 16)),
                     k.eq(self.k), tag.eq(half)]
        m.d.comb += [mul.i.valid.eq(a_valid), mul.i.payload.a.eq(a), mul.i.payload.b.eq(k),
                     mul.i.payload.tag.eq(tag)]
        lo = Signal(16)
        with m.If(mul.o.valid & ~mul.o.payload.tag):
            m.d.sync += lo.eq(mul.o.payload.z)
        m.d.comb += [out.admit.eq(self.i.valid & self.i.ready),
                     out.done.eq(mul.o.valid & mul.o.payload.tag),
                     out.result.eq(Cat(lo, mul.o.payload.z))]
        wiring.connect(m, out.o, wiring.flipped(self.o))
        return m


class RowReplay(wiring.Component):
    """A per-sample input row repeated for every step from one DRAM read (an input slot
    with ``tstride = 0``: direct-encoded input, ``δS`` below the readout).

    With ``replay`` the row's first pass goes through from ``i`` (and into a buffer); the
    ``steps − 1`` further passes come from the buffer, so DRAM is read once per sample, as
    the traffic model of docs/descriptors.md §7 counts.  Without ``replay`` it is a wire.

    Members
    -------
    i : In(stream.Signature(32))
    o : Out(stream.Signature(32))
    words : In(count_bits)
        Words per row (≤ ``depth``).
    steps : In(8)
        Passes per row (T).
    replay : In(1)
    start : In(1)
        Restart (a new descriptor).
    """

    def __init__(self, depth, count_bits):
        self.depth = depth
        super().__init__({
            "i": In(stream.Signature(WORD_BITS)),
            "o": Out(stream.Signature(WORD_BITS)),
            "words": In(count_bits), "steps": In(8), "replay": In(1), "start": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        buf = memory.Memory(shape=WORD_BITS, depth=self.depth, init=[])
        m.submodules.buf = buf
        wr, rd = buf.write_port(), buf.read_port()
        w = Signal(range(self.depth + 1))          # words presented in this pass
        fetch = Signal(range(self.depth + 1))      # words read from the buffer in this pass
        have = Signal()                            # rd.data is the next word to present
        t = Signal(8)
        o_fire = self.o.valid & self.o.ready
        last_word = w == last_of(m, self.words)
        with m.If(~self.replay | (t == 0)):
            m.d.comb += [self.o.valid.eq(self.i.valid), self.o.payload.eq(self.i.payload),
                         self.i.ready.eq(self.o.ready),
                         wr.addr.eq(w), wr.data.eq(self.i.payload), wr.en.eq(o_fire & self.replay)]
        with m.Else():
            advance = ~have | self.o.ready
            m.d.comb += [self.o.valid.eq(have), self.o.payload.eq(rd.data),
                         rd.addr.eq(fetch), rd.en.eq(advance)]
            with m.If(advance):
                m.d.sync += [have.eq(fetch != self.words), fetch.eq(Mux(fetch != self.words, fetch + 1, fetch))]
        with m.If(o_fire & self.replay):
            m.d.sync += w.eq(Mux(last_word, 0, w + 1))
            with m.If(last_word):
                m.d.sync += [t.eq(Mux(t == last_of(m, self.steps), 0, t + 1)), fetch.eq(0), have.eq(0)]
        with m.If(self.start):
            m.d.sync += [w.eq(0), fetch.eq(0), have.eq(0), t.eq(0)]
        return m


class StreamFork(wiring.Component):
    """Every word of ``i`` to both ``a`` and ``b``, through a FIFO of ``depth`` words on each
    branch: ``i`` advances when both FIFOs have room, so each consumer may run up to
    ``depth`` words ahead of the other (and the fork's ready comes from registers).

    BPWG: the BP and the WG engine on one ``δI`` stream; with no slack the pair would take,
    row by row, the longer of the two engines' times, which over rows of varying sparsity
    adds up to more than the longer engine's total.

    Parameters
    ----------
    depth : int
        Words of each branch's FIFO.

    Members
    -------
    i : In(stream.Signature(32))
    a, b : Out(stream.Signature(32))
    """

    def __init__(self, depth):
        self.depth = depth
        super().__init__({
            "i": In(stream.Signature(WORD_BITS)),
            "a": Out(stream.Signature(WORD_BITS)),
            "b": Out(stream.Signature(WORD_BITS)),
        })

    def elaborate(self, platform):
        m = Module()
        room = []
        for name in ("a", "b"):
            buf = fifo.SyncFIFOBuffered(width=WORD_BITS, depth=self.depth)
            m.submodules[f"fifo_{name}"] = buf
            wiring.connect(m, buf.r_stream, wiring.flipped(getattr(self, name)))
            m.d.comb += [buf.w_en.eq(self.i.valid & self.i.ready), buf.w_data.eq(self.i.payload)]
            room.append(buf.w_rdy)
        m.d.comb += self.i.ready.eq(room[0] & room[1])
        return m
