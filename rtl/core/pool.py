"""Max pooling inside the core (kernel = stride = ``P``, no padding, ragged edges dropped):
two stream transformers on the DRAM-format rows of one output tile (docs/descriptors.md §5).

:class:`SpikePool`   FP: rows of spike bits → rows of pooled spike bits (an OR per window)
:class:`PoolRouter`  BPN: saved ``H`` rows and pooled ``δS`` rows → ``H`` rows unchanged and
                     ``δS`` rows routed to each window's first active position

Bit for bit as ``trident.golden.hw.forward.maxpool_forward`` and
``trident.golden.hw.backward.maxpool_backward``: a tile of ``maps`` channels of
``out_h × out_w`` neurons in flat ``(c, y, x)`` order; ``pool_h = out_h div P``,
``pool_w = out_w div P`` (≥ 1); the window ``(c, py, px)`` holds rows
``P·py … P·py + P − 1`` and columns ``P·px … P·px + P − 1``; its ``first`` is the raster
index ``ym·P + xm`` in the window of the first active input, 0 when none is active.  Rows ≥ ``pool_h·P`` and columns
≥ ``pool_w·P`` belong to no window (their spikes are dropped, their ``δS`` is ``+0``).

Configuration inputs (``maps``, ``out_h``, ``out_w``, ``pool``, ``pool_h``, ``pool_w`` and
the router's neuron constants) hold their values from the cycle before ``start`` to the
end of the run: the units compare against registered copies (:func:`~.glue.last_of`).
``start`` (a one-cycle pulse) clears all state; a run begins at a row's first word and the
streams are endless sequences of rows.  No unit multiplies or divides: window coordinates
come from counters (:class:`_Walker`) that follow the raster order.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..fp16 import FPCompare, FPMul, Float16
from ..neuron.chain import ONE, max0
from .glue import last_of
from .ports import WORD_BITS

__all__ = ["SpikePool", "PoolRouter"]


def _geometry_members():
    return {"maps": In(16), "out_h": In(8), "out_w": In(8), "pool": In(8),
            "pool_h": In(8), "pool_w": In(8), "start": In(1)}


class _Geometry:
    """Registered last indices (``value − 1``) of the tile geometry, shared by a unit's
    counters."""

    def __init__(self, m, unit):
        self.pool = unit.pool
        self.pool_w = unit.pool_w
        self.ow_last = last_of(m, unit.out_w)
        self.oh_last = last_of(m, unit.out_h)
        self.maps_last = last_of(m, unit.maps)
        self.p_last = last_of(m, unit.pool)
        self.pw_last = last_of(m, unit.pool_w)
        self.ph_last = last_of(m, unit.pool_h)


class _Walker:
    """Counters that follow a row neuron by neuron in flat ``(c, y, x)`` order and say where
    the current neuron lies in the pooling grid; they advance on ``step`` and wrap to the
    row's first neuron after its last (``row_end``), and ``clear`` resets them.

    Attributes (of the current neuron)
    ----------------------------------
    xm, ym : Signal
        Position in its window (``x mod P``, ``y mod P``).
    px : Signal
        Window column ``x div P`` (meaningful while ``in_x``).
    in_x, in_y, in_area : Signal / Value
        Column ``< pool_w·P``, row ``< pool_h·P``, both (the neuron belongs to a window).
    xm_end, ym_end : Value
        Last column / row of its window.
    row_end : Value
        The row's last neuron.
    odd, word : Signal
        Parity of the flat index and the index of its two-per-word binary16 word.
    q, widx : Signal (``windows=True`` only)
        Flat index ``(c, py, px)`` of its window in the pooled row, and ``ym·P + xm``.
    """

    def __init__(self, m, g, step, clear, *, max_pool, word_bits=1, q_bits=1, windows=False,
                 name="wk"):
        self.x, self.y = x, y = Signal(8, name=f"{name}_x"), Signal(8, name=f"{name}_y")
        self.c = c = Signal(16, name=f"{name}_c")
        self.xm = xm = Signal(range(max_pool), name=f"{name}_xm")
        self.ym = ym = Signal(range(max_pool), name=f"{name}_ym")
        self.px = px = Signal(8, name=f"{name}_px")
        self.py = py = Signal(8, name=f"{name}_py")
        self.in_x = in_x = Signal(init=1, name=f"{name}_in_x")
        self.in_y = in_y = Signal(init=1, name=f"{name}_in_y")
        self.odd = odd = Signal(name=f"{name}_odd")
        self.word = word = Signal(word_bits, name=f"{name}_word")
        self.in_area = in_x & in_y
        line_end = x == g.ow_last
        map_end = line_end & (y == g.oh_last)
        self.row_end = row_end = map_end & (c == g.maps_last)
        self.xm_end = xm_end = xm == g.p_last
        self.ym_end = ym_end = ym == g.p_last

        if windows:
            wbits = max(1, (max_pool * max_pool - 1).bit_length())
            self.q = q = Signal(q_bits, name=f"{name}_q")
            base = Signal(q_bits, name=f"{name}_base")       # q of the line's first window
            self.widx = widx = Signal(wbits, name=f"{name}_widx")
            wrow = Signal(wbits, name=f"{name}_wrow")         # ym·P
            # a line that ends the map's window row moves the base by one window row
            next_base = Mux(row_end, 0, base + Mux(ym_end & in_y, g.pool_w, 0))

        with m.If(step):
            m.d.sync += [odd.eq(~odd & ~row_end), word.eq(Mux(row_end, 0, word + odd))]
            with m.If(~line_end):
                m.d.sync += x.eq(x + 1)
                with m.If(xm_end):
                    m.d.sync += xm.eq(0)
                    with m.If(in_x):
                        with m.If(px == g.pw_last):
                            m.d.sync += in_x.eq(0)
                        with m.Else():
                            m.d.sync += px.eq(px + 1)
                    if windows:
                        m.d.sync += [widx.eq(wrow), q.eq(q + in_x)]
                with m.Else():
                    m.d.sync += xm.eq(xm + 1)
                    if windows:
                        m.d.sync += widx.eq(widx + 1)
            with m.Else():
                m.d.sync += [x.eq(0), xm.eq(0), px.eq(0), in_x.eq(1)]
                if windows:
                    m.d.sync += [base.eq(next_base), q.eq(next_base)]
                with m.If(map_end):
                    m.d.sync += [y.eq(0), ym.eq(0), py.eq(0), in_y.eq(1),
                                 c.eq(Mux(row_end, 0, c + 1))]
                    if windows:
                        m.d.sync += [wrow.eq(0), widx.eq(0)]
                with m.Else():
                    m.d.sync += y.eq(y + 1)
                    with m.If(ym_end):
                        m.d.sync += ym.eq(0)
                        with m.If(py == g.ph_last):
                            m.d.sync += in_y.eq(0)
                        with m.Else():
                            m.d.sync += py.eq(py + 1)
                        if windows:
                            m.d.sync += [wrow.eq(0), widx.eq(0)]
                    with m.Else():
                        m.d.sync += ym.eq(ym + 1)
                        if windows:
                            m.d.sync += [wrow.eq(wrow + g.pool), widx.eq(wrow + g.pool)]
        with m.If(clear):
            m.d.sync += [x.eq(0), y.eq(0), c.eq(0), xm.eq(0), ym.eq(0), px.eq(0), py.eq(0),
                         in_x.eq(1), in_y.eq(1), odd.eq(0), word.eq(0)]
            if windows:
                m.d.sync += [q.eq(0), base.eq(0), widx.eq(0), wrow.eq(0)]


class SpikePool(wiring.Component):
    """FP max pooling of spike rows: each pooled bit is the OR of its ``P × P`` window.

    Input rows are ``maps·out_h·out_w`` spike bits, output rows ``maps·pool_h·pool_w``
    pooled bits in flat ``(c, py, px)`` order; both 32 per word, LSB first, each row padded
    to whole words with 0 (the input's padding bits are ignored).  The core puts it behind
    the forward pipe's spike words only when ``P > 1`` (``P = 1`` gives the identity, but
    the core bypasses the unit then).

    Rate: one input bit (neuron) per cycle, the forward pipe's rate, with no bubble between
    words of two or more neurons (a word waits in an input register, taken while its
    predecessor is shifted out and loaded in the cycle the predecessor's last bit is used;
    a row's last word takes as many cycles as it has neurons).  A window's OR over its rows
    is kept per window column in a ``pool_w``-bit memory read combinationally (distributed
    RAM); a pooled bit is final at the window's last position and goes to the output packer
    there.  ``i.ready`` and ``o.valid`` come from registers (no path from the window logic
    back into the producer's FIFO); an output word waits in one register (a bit that would
    complete another word while it is still full stalls the input; full words come ≥ 32·P
    cycles apart, so a consumer that keeps up never causes a stall).

    Parameters
    ----------
    max_neurons : int
        Largest ``maps·out_h·out_w``; sizes the window-column memory
        (``min(256, max_neurons) / 2`` entries, enough for every ``pool_w`` with ``P ≥ 2``).
    max_pool : int
        Largest ``P`` (sizes the in-window counters).

    Members
    -------
    i : In(stream.Signature(32))
        Spike words, rows of ``ceil(maps·out_h·out_w / 32)`` words.
    o : Out(stream.Signature(32))
        Pooled spike words, rows of ``ceil(maps·pool_h·pool_w / 32)`` words.
    maps : In(16)
        Channels of the tile (≥ 1).
    out_h, out_w : In(8)
        Map size before pooling.
    pool : In(8)
        ``P``, 2 … ``max_pool``.
    pool_h, pool_w : In(8)
        ``out_h div P``, ``out_w div P`` (≥ 1).
    start : In(1)
        One-cycle pulse: clear all state; the next input word starts a row.
    """

    def __init__(self, *, max_neurons=256, max_pool=4):
        self.max_pool = max_pool
        self.acc_depth = max(1, min(256, max_neurons) // 2)
        super().__init__({
            "i": In(stream.Signature(WORD_BITS)),
            "o": Out(stream.Signature(WORD_BITS)),
            **_geometry_members(),
        })

    def elaborate(self, platform):
        m = Module()
        g = _Geometry(m, self)
        have = Signal()                 # sr holds the rest of a word
        ahead = Signal(WORD_BITS)       # the next input word, taken ahead
        ahead_full = Signal()
        sr = Signal(WORD_BITS)          # its bits, the current one in bit 0
        pos = Signal(5)                 # index of the current bit in its word
        seg = Signal()                  # OR of the window's bits on this line so far
        obuf = Signal(WORD_BITS)        # pooled bits of the word being packed
        opos = Signal(5)
        out_valid = Signal()
        out_word = Signal(WORD_BITS)
        step = Signal()
        w = _Walker(m, g, step, self.start, max_pool=self.max_pool)

        acc = memory.Memory(shape=1, depth=self.acc_depth, init=[])
        m.submodules.acc = acc
        acc_r = acc.read_port(domain="comb")
        acc_w = acc.write_port()

        seg_now = sr[0] | (seg & (w.xm != 0))
        # this window's part of the line is complete; ragged columns and lines never get
        # there (fewer than P of them), so no area test is needed
        line_done = w.xm_end
        # the window's first line starts its OR afresh: no clearing pass over the memory
        merged = seg_now | (acc_r.data & (w.ym != 0))
        push = line_done & w.ym_end               # the window's last position: bit final
        m.d.comb += [acc_r.addr.eq(w.px), acc_w.addr.eq(w.px), acc_w.data.eq(merged),
                     acc_w.en.eq(step & line_done)]

        packed = Signal(WORD_BITS)
        m.d.comb += packed.eq(obuf)
        with m.If(push):
            m.d.comb += packed.bit_select(opos, 1).eq(merged)
        # a full word, or the row's end with pooled bits pending (all of them may have gone
        # out with an earlier full word when the row ends in ragged lines)
        emits = (push & (opos == 31)) | (w.row_end & (push | (opos != 0)))
        # registered stall (no path from o.ready to i.ready): a word is emitted only into an
        # output register that is empty at the cycle's start
        m.d.comb += step.eq(have & ~(emits & out_valid))
        word_end = (pos == 31) | w.row_end        # the row's last word ends at its last neuron
        load = ahead_full & (~have | (step & word_end))
        m.d.comb += self.i.ready.eq(~ahead_full)

        with m.If(step):
            m.d.sync += seg.eq(seg_now)
            with m.If(push):
                m.d.sync += [obuf.eq(packed), opos.eq(opos + 1)]
            with m.If(emits):
                m.d.sync += [out_word.eq(packed), obuf.eq(0), opos.eq(0)]
            with m.If(word_end):
                m.d.sync += have.eq(0)
            with m.Else():
                m.d.sync += [sr.eq(sr >> 1), pos.eq(pos + 1)]
        with m.If(load):
            m.d.sync += [sr.eq(ahead), have.eq(1), pos.eq(0), ahead_full.eq(0)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [ahead.eq(self.i.payload), ahead_full.eq(1)]

        with m.If(self.o.ready):
            m.d.sync += out_valid.eq(0)
        with m.If(step & emits):
            m.d.sync += out_valid.eq(1)
        m.d.comb += [self.o.valid.eq(out_valid), self.o.payload.eq(out_word)]

        with m.If(self.start):
            m.d.sync += [have.eq(0), ahead_full.eq(0), pos.eq(0), seg.eq(0), obuf.eq(0),
                         opos.eq(0), out_valid.eq(0)]
        return m


class PoolRouter(wiring.Component):
    """BPN max-pool routing: the pooled ``δS`` of each window goes to the window's first
    active position (``+0`` elsewhere), the winners recomputed from the saved ``H``.

    The spike is the forward neuron's, recomputed exactly as
    :class:`~trident.rtl.neuron.NeuronUnit` does (``trident.golden.hw.neuron``)::

        Z = klif ? max0(mul(k, H)) : H        (mul(1, H) = H otherwise)
        S = ge(Z, V_th)                       (FPCompare's le(V_th, Z): NaN never fires,
                                               −0 ≥ +0, ±inf ordered)

    Per row two passes over a buffer (the decision for a window's first position needs
    the whole window, which spans ``P`` lines of the map), double-buffered: a row loads
    into one bank while the row before is emitted from the other.

    1. *load*: the ``H`` words are written to a memory of ``max_neurons/2`` words per bank
       and their halves go, one per cycle, through the multiplier and the comparator; behind
       them each window's ``(found, first)`` is updated in a small memory indexed by the
       window (``first`` is reset to 0 at the window's first position, then takes the first
       active position's ``ym·P + xm``).  Meanwhile the pooled ``δS`` words go to their own
       memory (``max_neurons/8`` words per bank).  When every spike is in and the ``δS``
       row has arrived, the bank is full and the next row loads into the other one (once
       that has been emitted).
    2. *emit*, from a full bank, one neuron per cycle: its routed value is its window's
       ``δS`` if its ``ym·P + xm`` equals the window's ``first`` (``+0`` outside the pooled
       area); each completed pair goes out as one word on ``ds_o`` together with the same
       row's ``H`` word on ``h_o``.

    Rate: back to back rows of ``N`` neurons take ``N + latency + 3`` cycles each when the
    inputs and the consumer keep up (``latency`` = the multiplier's and the comparator's
    stages, 5 by default): ``N`` to load (one ``H`` word per 2 cycles, one ``δS`` word per
    2 cycles at most), the spike pipeline's drain and the bank switch; the emit pass (one
    word pair per 2 cycles, the :class:`~.pipes.BackwardPipe`'s rate) overlaps the next
    row's load, and the last row's adds ``N + 2`` (one more for odd ``N``: the last,
    one-neuron word waits for the pair before it to be taken).

    The ``H`` buffer is a block RAM whose read address follows the emit walker's next word
    (no extra pipeline stage); the window and ``δS`` memories are small distributed RAMs
    read combinationally (the window memory through two ports: the load's
    read-modify-write and the emit).

    ``h_o`` and ``ds_o`` carry word ``k`` of the row at the same time: both become valid in
    the same cycle and each drops when it is taken; the next pair comes only when both have
    been taken (a consumer that takes both together, as the backward pipe does, sees them in
    step).  All ``ready`` and ``valid`` outputs come from registers.

    Parameters
    ----------
    max_neurons : int
        Largest ``maps·out_h·out_w`` (even); ``maps·pool_h·pool_w ≤ max_neurons/4``
        holds for ``P ≥ 2``.
    max_pool : int
        Largest ``P`` (≤ 4 keeps ``first`` in 4 bits).
    mul_stages, cmp_stages : int, optional
        Register ranks of the spike recomputation's ``FPMul`` and ``FPCompare`` (their
        defaults: 4 and 1).

    Attributes
    ----------
    latency : int
        Cycles of the spike recomputation pipeline.

    Members
    -------
    h : In(stream.Signature(32))
        Saved ``H``: rows of ``ceil(maps·out_h·out_w / 2)`` words, two binary16 per word
        (even index low).
    ds : In(stream.Signature(32))
        Pooled ``δS``: rows of ``ceil(maps·pool_h·pool_w / 2)`` words.
    h_o : Out(stream.Signature(32))
        The ``H`` rows, unchanged.
    ds_o : Out(stream.Signature(32))
        Routed ``δS``: rows of ``ceil(maps·out_h·out_w / 2)`` words (padding half ``+0``).
    v_th : In(Float16)
        The layer's threshold.
    k : In(Float16)
        KLIF's scale (used when ``klif``).
    klif : In(1)
        The layer's neurons are KLIF (``regs.kind == NeuronKind.KLIF``).
    maps : In(16)
    out_h, out_w : In(8)
    pool : In(8)
        ``P``, 2 … ``max_pool``.
    pool_h, pool_w : In(8)
    start : In(1)
        One-cycle pulse: clear all state (results of words taken before it are dropped);
        the next words of ``h`` and ``ds`` start a row.
    """

    def __init__(self, *, max_neurons=256, max_pool=4, mul_stages=None, cmp_stages=None):
        if max_neurons < 4 or max_neurons % 2:
            raise ValueError(f"max_neurons must be an even number ≥ 4, not {max_neurons!r}")
        self.max_neurons = max_neurons
        self.max_pool = max_pool
        self.h_depth = max_neurons // 2
        self.win_depth = max_neurons // 4
        self.ds_depth = max(1, -(-self.win_depth // 2))
        self.q_bits = max(1, max_neurons.bit_length())
        self.w_bits = max(1, (max_pool * max_pool - 1).bit_length())
        self._mul_stages, self._cmp_stages = mul_stages, cmp_stages
        self.latency = (FPMul.DEFAULT_STAGES if mul_stages is None else mul_stages) + \
                       (FPCompare.DEFAULT_STAGES if cmp_stages is None else cmp_stages)
        super().__init__({
            "h": In(stream.Signature(WORD_BITS)),
            "ds": In(stream.Signature(WORD_BITS)),
            "h_o": Out(stream.Signature(WORD_BITS)),
            "ds_o": Out(stream.Signature(WORD_BITS)),
            "v_th": In(Float16), "k": In(Float16), "klif": In(1),
            **_geometry_members(),
        })

    def elaborate(self, platform):
        m = Module()
        g = _Geometry(m, self)
        tag = data.StructLayout({"q": self.q_bits, "widx": self.w_bits, "area": 1, "last": 1})
        win_layout = data.StructLayout({"found": 1, "first": self.w_bits})

        # Two banks: a row loads into bank `lb` while the row before is emitted from `eb`.
        full = Signal(2)                # the bank holds a loaded row not yet emitted
        lb, eb = Signal(), Signal()
        loading = ~full.bit_select(lb, 1)
        emitting = full.bit_select(eb, 1)
        issue = Signal()
        advance = Signal()
        wl = _Walker(m, g, issue, self.start, max_pool=self.max_pool, windows=True,
                     word_bits=range(self.h_depth), q_bits=self.q_bits, name="load")
        we = _Walker(m, g, advance, self.start, max_pool=self.max_pool, windows=True,
                     word_bits=range(self.h_depth), q_bits=self.q_bits, name="emit")

        def banked(bank, index, depth):
            return Mux(bank, index + depth, index)

        h_mem = memory.Memory(shape=WORD_BITS, depth=2 * self.h_depth, init=[])
        ds_mem = memory.Memory(shape=WORD_BITS, depth=2 * self.ds_depth, init=[])
        win_mem = memory.Memory(shape=win_layout, depth=2 * self.win_depth, init=[])
        m.submodules.h_mem, m.submodules.ds_mem, m.submodules.win_mem = h_mem, ds_mem, win_mem
        h_w, h_r = h_mem.write_port(), h_mem.read_port()
        ds_w, ds_r = ds_mem.write_port(), ds_mem.read_port(domain="comb")
        win_w = win_mem.write_port()
        win_load, win_emit = win_mem.read_port(domain="comb"), win_mem.read_port(domain="comb")

        mul = m.submodules.mul = FPMul(self._mul_stages, tag_width=tag.size)
        cmp = m.submodules.cmp = FPCompare(self._cmp_stages, tag_width=tag.size)

        # ---- load, input side: H words → memory; halves → Z → S, one per cycle
        have = Signal()
        hw = Signal(WORD_BITS)
        half = Signal()
        h_done = Signal()               # the row's last H half has been issued
        itag = tag(mul.i.payload.tag)
        m.d.comb += [
            issue.eq(loading & have),
            mul.i.valid.eq(issue),
            mul.i.payload.a.eq(Mux(self.klif, self.k, ONE)),
            mul.i.payload.b.eq(hw.word_select(half, 16)),
            itag.q.eq(wl.q), itag.widx.eq(wl.widx), itag.area.eq(wl.in_area),
            itag.last.eq(wl.row_end),
            h_w.addr.eq(banked(lb, wl.word, self.h_depth)), h_w.data.eq(hw),
            h_w.en.eq(issue & ~half),
            self.h.ready.eq(loading & ~h_done & (~have | (half & ~wl.row_end))),
        ]
        with m.If(issue):
            m.d.sync += half.eq(~half & ~wl.row_end)
            with m.If(half | wl.row_end):
                m.d.sync += have.eq(0)
            with m.If(wl.row_end):
                m.d.sync += h_done.eq(1)
        with m.If(self.h.valid & self.h.ready):
            m.d.sync += [hw.eq(self.h.payload), have.eq(1), half.eq(0)]

        z = Mux(self.klif, max0(mul.o.payload.z), mul.o.payload.z)
        m.d.comb += [cmp.i.valid.eq(mul.o.valid), cmp.i.payload.a.eq(self.v_th),
                     cmp.i.payload.b.eq(z), cmp.i.payload.tag.eq(mul.o.payload.tag)]

        # ---- load, result side: each window's (found, first), read-modify-write.  The
        # bank switches only after the row's last result, so every result is `lb`'s.
        # Items taken before a start may still be in the pipeline: drop results for its
        # latency (the units have no reset).
        flush = Signal(range(self.latency + 1))
        with m.If(flush != 0):
            m.d.sync += flush.eq(flush - 1)
        rtag = tag(cmp.o.payload.tag)
        live = cmp.o.valid & (flush == 0)
        spike = cmp.o.payload.less_equal
        old = win_load.data
        at_first = rtag.widx == 0
        new = Signal(win_layout)
        m.d.comb += [new.found.eq(spike | (~at_first & old.found)),
                     new.first.eq(Mux(at_first, 0, Mux(spike & ~old.found, rtag.widx, old.first)))]
        spikes_done = Signal()
        win_addr = banked(lb, rtag.q, self.win_depth)
        m.d.comb += [win_load.addr.eq(win_addr),
                     win_w.addr.eq(win_addr), win_w.data.eq(new), win_w.en.eq(live & rtag.area)]
        with m.If(live & rtag.last):
            m.d.sync += spikes_done.eq(1)

        # ---- load: δS words → memory; pooled counters find the row's last word
        ds_hi = Signal()                # the upper half of the word taken last is counted next
        ds_done = Signal()
        dk = Signal(range(self.ds_depth))
        dpx, dpy, dc = Signal(8), Signal(8), Signal(16)
        d_fire = self.ds.valid & self.ds.ready
        d_step = d_fire | ds_hi
        d_last = (dpx == g.pw_last) & (dpy == g.ph_last) & (dc == g.maps_last)
        m.d.comb += [self.ds.ready.eq(loading & ~ds_done & ~ds_hi),
                     ds_w.addr.eq(banked(lb, dk, self.ds_depth)), ds_w.data.eq(self.ds.payload),
                     ds_w.en.eq(d_fire)]
        with m.If(d_fire):
            m.d.sync += dk.eq(dk + 1)
        with m.If(d_step):
            m.d.sync += ds_hi.eq(d_fire & ~d_last)
            with m.If(dpx != g.pw_last):
                m.d.sync += dpx.eq(dpx + 1)
            with m.Else():
                m.d.sync += dpx.eq(0)
                with m.If(dpy != g.ph_last):
                    m.d.sync += dpy.eq(dpy + 1)
                with m.Else():
                    m.d.sync += [dpy.eq(0), dc.eq(Mux(dc == g.maps_last, 0, dc + 1))]
            with m.If(d_last):
                m.d.sync += [ds_done.eq(1), dk.eq(0)]

        loaded = loading & spikes_done & ds_done
        with m.If(loaded):
            m.d.sync += [lb.eq(~lb), spikes_done.eq(0), ds_done.eq(0), h_done.eq(0)]

        # ---- emit: one neuron per cycle, a word pair per two
        hv, dv = Signal(), Signal()     # h_o / ds_o hold a word not yet taken
        h_out, ds_out = Signal(WORD_BITS), Signal(WORD_BITS)
        lo = Signal(16)
        completes = we.odd | we.row_end
        emitted = advance & we.row_end
        routed = Mux(we.in_area & (win_emit.data.first == we.widx),
                     ds_r.data.word_select(we.q[0], 16), 0)
        # the read address follows the walker's next word (in the next bank after a row),
        # so h_r.data is always the current word's H (no extra pipeline stage)
        next_bank = Mux(emitted, ~eb, eb)
        next_word = Mux(advance & completes, Mux(we.row_end, 0, we.word + 1), we.word)
        m.d.comb += [advance.eq(emitting & ~(completes & (hv | dv))),
                     win_emit.addr.eq(banked(eb, we.q, self.win_depth)),
                     ds_r.addr.eq(banked(eb, we.q[1:], self.ds_depth)),
                     h_r.addr.eq(banked(next_bank, next_word, self.h_depth))]
        with m.If(advance):
            with m.If(completes):
                m.d.sync += [h_out.eq(h_r.data), ds_out.eq(Mux(we.odd, Cat(lo, routed),
                                                               Cat(routed, Const(0, 16))))]
            with m.Else():
                m.d.sync += lo.eq(routed)
        with m.If(emitted):
            m.d.sync += eb.eq(~eb)
        # a row loads into the bank that is not being emitted (loading needs ~full[lb],
        # emitting full[eb]), so the two updates never touch the same bit
        m.d.sync += full.eq((full | Mux(loaded, 1 << lb, 0)) & ~Mux(emitted, 1 << eb, 0))
        with m.If(self.h_o.ready):
            m.d.sync += hv.eq(0)
        with m.If(self.ds_o.ready):
            m.d.sync += dv.eq(0)
        with m.If(advance & completes):
            m.d.sync += [hv.eq(1), dv.eq(1)]
        m.d.comb += [self.h_o.valid.eq(hv), self.h_o.payload.eq(h_out),
                     self.ds_o.valid.eq(dv), self.ds_o.payload.eq(ds_out)]

        with m.If(self.start):
            m.d.sync += [full.eq(0), lb.eq(0), eb.eq(0), have.eq(0), half.eq(0), h_done.eq(0),
                         spikes_done.eq(0), flush.eq(self.latency), ds_hi.eq(0), ds_done.eq(0),
                         dk.eq(0), dpx.eq(0), dpy.eq(0), dc.eq(0), hv.eq(0), dv.eq(0)]
        return m
