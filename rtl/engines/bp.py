"""BP engine: the transposed products that hand the error to the layer below
(docs/numerics.md §4.3–4.4), with dual sparsity, bit-exact with
``trident.golden.hw.backward.fc_backward`` / ``conv2d_backward``.

FC (:class:`BPEngine`): ``δS_below[r, i] = Σ_j W[j, i]·δI[r, j]``, per input neuron ``i``
one binary16 accumulator from ``+0`` taking ``fma(W[j, i], δI[r, j], acc)`` in ascending
``j`` for the ``δI ≠ ±0``.  That is the FP engine's MAC mode on the transposed weights
(``layout.fc_weight_words(W.T, L)``), so :class:`BPEngine` *is* an
:class:`~.fp.FPEngine` (FMA lanes, analog inputs only) with the ``need`` mask added.

Conv (:class:`ConvBPEngine`): the transposed convolution, the :class:`~.conv.ConvEngine`'s
scatter with the footprint turned around (an active ``δI[co, y, x]`` updates the inputs
``(c, y·s − p + ky, x·s − p + kx)``), lanes over input channels, plus a read-out need mask.

See docs/engines.md §13 for the need interface, the cycle model and the limits.
"""

from amaranth.hdl import Cat, Mux, Signal
from amaranth.lib import data, fifo

from .conv import ConvEngine
from .fp import FPEngine, _Blocks, _bits_for, _clog2, _times

__all__ = ["BPEngine", "bp_config_layout", "ConvBPEngine"]


def bp_config_layout(max_inputs, weight_depth, max_rows):
    """The BP descriptor accepted on ``cmd`` (fields LSB first).

    ``n_in`` = ``J``, the length of a ``δI`` row (the forward layer's outputs,
    1 .. max_inputs); ``n_groups`` = ``ceil(I / L)``, groups of ``L`` input neurons (the
    results); ``n_steps`` = ``R``, rows (samples × steps, 1 .. max_rows); ``w_base``, the
    first word of the transposed weights; ``need`` (1: a need word per block and row is
    read from ``need``; 0: every output is needed, ``need`` is not read).
    """
    return data.StructLayout({
        "n_in": _bits_for(max_inputs),
        "n_groups": _bits_for(weight_depth),
        "n_steps": _bits_for(max_rows),
        "w_base": _clog2(weight_depth),
        "need": 1,
    })


class BPEngine(FPEngine):
    """Event-driven BP engine for fully connected layers (transposed product, dual sparsity).

    For every row ``r`` (a sample's step) and input neuron ``i`` it computes
    ``δS[r, i]``: a binary16 accumulator from ``+0`` that takes
    ``fma(W[j, i], δI[r, j], acc)`` for ``j`` ascending with ``δI[r, j] ≠ ±0``; ``+0``
    where ``need[r, i] = 0`` (docs/numerics.md §4.3).  Input neuron ``i`` is lane
    ``i mod L`` of group ``i div L``.  The datapath is the FP engine's (docs/engines.md
    §4): event compressor over the ``δI`` row, rounds of ``P`` slots, accumulators in
    the ``L`` FPFMA lane pipelines.

    Weight scratchpad: the transposed matrix in the FP layout, word ``w_base + g·J + j``
    holds ``W[j, g·L + l]`` in lane ``l`` (``layout.fc_weight_words(W.T, L, w_base)``).
    The same words are **not** the FP engine's (whose words are ``W[g·L + l, i]``): a core
    that runs both keeps both copies, or the FP engine's for FP and this one for BP.

    Dual sparsity.  Zero ``δI`` are skipped by the compressor (a cycle per input word
    without a non-zero, none per zero).  The ``need`` stream carries, per row,
    ``ceil(n_groups / P)`` words of ``P·L`` bits: bit ``b`` of word ``B`` is
    ``need[r, B·P·L + b]`` (``layout.need_words``: the row's bits chunked into
    ``P·L``-bit words, bits past ``I`` zero).  A *scanner* walks each row's groups (one
    per cycle, ahead of the issuer) and packs only the **needed groups** (a group with a
    needed lane) into the blocks, ``P`` per block (two slot tables: one filled while the
    other is issued); unneeded groups get no slot and no FMA.  A *merger* in front of
    ``currents`` restores the order: per row, every group ascending — a computed group's
    sum with its unneeded lanes replaced by ``+0``, an unneeded group as ``+0`` — from
    the per-group need bits the scanner queued (merge FIFO, ``merge_depth`` entries).  A
    block also closes ``D = merge_depth/2`` groups after its first slot, so the scanner
    can never fill the merge FIFO while the merger waits for an open block.  With
    ``need = 0`` in the descriptor the stream is not read and every group is needed
    (the FP engine's blocks).  A row of zero ``δI`` costs one zero round per block.

    Parameters
    ----------
    lanes : int
        ``L``, input neurons per group (one FPFMA lane each).
    stages : int, optional
        FPFMA pipeline depth ``P`` (default 6), also the groups per block.
    max_inputs : int
        Largest ``J`` (the ``δI`` row length); each event buffer has this many entries.
    weight_depth : int
        Words of the weight scratchpad (``ceil(I/L)·J`` per layer).
    word_bits : int
        Width of a ``δI`` input word (``word_bits/16`` binary16 values; ≥ 16).
    max_rows : int
        Largest ``R`` (rows = samples × steps of one call).
    out_depth : int, optional
        Depth of the FIFO of computed sums in front of the merger (default ``4·P``).
    merge_depth : int
        Entries (one per group: its ``L`` need bits) of the merge FIFO, a power of two;
        ``D = merge_depth/2`` bounds how many groups one block may span.
    counter_width : int
        Counter width.

    Members
    -------
    cmd : In(stream.Signature(bp_config_layout))
        The descriptor (``layout.pack_config``); accepted only while idle.  The layer then
        reads ``R·ceil(J / (word_bits/16))`` words from ``inputs``, with ``need`` set
        ``R·ceil(n_groups/P)`` words from ``need``, and writes ``R·n_groups`` words.
    weights : In(stream.Signature(weight_write_layout))
        Scratchpad writes (``data`` L × binary16, ``addr``), always ready.
    inputs : In(stream.Signature(word_bits))
        The ``δI`` rows, ``word_bits/16`` binary16 values per word, value ``v`` of word
        ``w`` is ``δI[r, w·word_bits/16 + v]`` (``layout.analog_words``).
    need : In(stream.Signature(P·L))
        Need words, row after row, block after block (see above).
    currents : Out(stream.Signature(current_layout))
        One word per (row, group), row ascending then group ascending: ``value``
        (``δS[r, g·L + l]`` in lane ``l``), ``group`` g, ``step`` r.
    busy : Out(1)
        From the accepted ``cmd`` until the last word has been taken.
    cnt_clear : In(1)
        Clears the counters.
    cnt_busy : Out(counter_width)
        Cycles with ``busy`` high.
    cnt_events : Out(counter_width)
        Non-zero ``δI``, summed over rows.
    cnt_ops : Out(counter_width)
        FMAs executed: ``L`` per needed group and non-zero ``δI``.
    cnt_skipped : Out(counter_width)
        FMAs not executed (zero ``δI`` or unneeded group); ``cnt_ops + cnt_skipped`` is
        the dense count ``R·J·n_groups·L``.
    """

    need_support = True

    def __init__(self, lanes=4, *, stages=None, max_inputs=1024, weight_depth=1024,
                 word_bits=32, max_rows=256, out_depth=None, merge_depth=128,
                 counter_width=32):
        if merge_depth < 2 or merge_depth & (merge_depth - 1):
            raise ValueError(f"merge_depth must be a power of two ≥ 2, not {merge_depth}")
        self.merge_depth = int(merge_depth)
        super().__init__(lanes, lane_unit="fma", stages=stages, max_inputs=max_inputs,
                         weight_depth=weight_depth, word_bits=word_bits, max_steps=max_rows,
                         out_depth=out_depth, counter_width=counter_width)

    @property
    def max_rows(self):
        return self.max_steps

    @property
    def block_span(self):
        """``D``: a block closes ``D`` groups after its first needed group at the latest
        (half the merge FIFO, so the scanner can never fill it while the merger waits
        for a block that is still open)."""
        return self.merge_depth // 2

    def _make_config_layout(self):
        return bp_config_layout(self.max_inputs, self.weight_depth, self.max_steps)

    def _output(self, m, cfg, ofifo, running, start):
        """The merger: per row, every group in ascending order — a computed group's sum
        from the output FIFO with its unneeded lanes replaced by ``+0``, an unneeded
        group as ``+0`` — driven by the per-group need bits the scanner queued in the
        merge FIFO."""
        L = self.lanes
        mfifo = fifo.SyncFIFO(width=L, depth=self.merge_depth)
        m.submodules.mfifo = mfifo
        gbits = _bits_for(self.weight_depth)
        mg_g = Signal(gbits)
        mg_row = Signal(_bits_for(self.max_steps))
        mg_done = Signal()
        need = mfifo.r_data
        computed = need.any()
        res = data.View(self.out_layout, ofifo.r_data)
        word = Signal(self.out_layout)
        for lane in range(L):
            m.d.comb += word.value[lane].eq(Mux(need[lane], res.value[lane], 0))
        m.d.comb += [word.group.eq(mg_g), word.step.eq(mg_row)]
        valid = running & ~mg_done & mfifo.r_rdy & (~computed | ofifo.r_rdy)
        take = valid & self.currents.ready
        m.d.comb += [self.currents.valid.eq(valid), self.currents.payload.eq(word),
                     mfifo.r_en.eq(take), ofifo.r_en.eq(take & computed)]
        with m.If(take):
            with m.If(mg_g == cfg.n_groups - 1):
                m.d.sync += [mg_g.eq(0), mg_row.eq(mg_row + 1)]
                with m.If(mg_row == cfg.n_steps - 1):
                    m.d.sync += mg_done.eq(1)
            with m.Else():
                m.d.sync += mg_g.eq(mg_g + 1)
        with m.If(start):
            m.d.sync += [mg_g.eq(0), mg_row.eq(0), mg_done.eq(0)]
        return mg_done

    def _blocks(self, m, cfg, k, go, final, start, running):
        """The scanner: per row, the groups in ascending order (one per cycle), their
        need bits from the need words; the needed ones fill the slots of a block (a table
        of ``P`` groups and weight addresses, two tables: one filled while the other is
        issued); every group's need bits go to the merger."""
        L, P, D = self.lanes, self.P, self.block_span
        gbits = _bits_for(self.weight_depth)
        aw = _clog2(self.weight_depth)
        nfifo = fifo.SyncFIFO(width=P * L, depth=4)
        m.submodules.nfifo = nfifo
        mfifo = m.submodules["mfifo"]
        m.d.comb += [nfifo.w_data.eq(self.need.payload),
                     nfifo.w_en.eq(self.need.valid & running & cfg.need),
                     self.need.ready.eq(nfifo.w_rdy & running & cfg.need)]

        sc_row = Signal(_bits_for(self.max_steps))
        sc_g = Signal(gbits)
        sc_base = Signal(aw)                # weight address of group sc_g's column
        sc_k = Signal(range(P))             # group sc_g within its need word
        sc_done = Signal()
        fill = Signal()                     # table being filled
        fill_n = Signal(range(P + 1))
        since = Signal(range(D + 1))        # groups since the open block's first slot
        use = Signal()                      # table being issued
        tbl_full = Signal(2)
        tbl_g = [[Signal(gbits, name=f"tbl{t}_g{i}") for i in range(P)] for t in range(2)]
        tbl_base = [[Signal(aw, name=f"tbl{t}_base{i}") for i in range(P)] for t in range(2)]
        tbl_n = [Signal(range(P + 1), name=f"tbl{t}_n") for t in range(2)]
        tbl_last = [Signal(name=f"tbl{t}_last") for t in range(2)]

        bits = Mux(cfg.need, nfifo.r_data.word_select(sc_k, L), (1 << L) - 1)
        needed = bits.any()
        row_end = sc_g == cfg.n_groups - 1
        scan = (running & ~sc_done & (~cfg.need | nfifo.r_rdy) & mfifo.w_rdy
                & ~tbl_full.bit_select(fill, 1))
        n_after = Signal(range(P + 2))
        since_after = Signal(range(D + 2))
        m.d.comb += [n_after.eq(fill_n + needed),
                     since_after.eq(Mux(n_after == 0, 0, since + 1))]
        close = row_end | (n_after == P) | (since_after == D)
        m.d.comb += [mfifo.w_data.eq(bits), mfifo.w_en.eq(scan),
                     nfifo.r_en.eq(scan & cfg.need & ((sc_k == P - 1) | row_end))]
        set_full = Signal(2)
        clr_full = Signal(2)
        with m.If(scan):
            for t in range(2):
                with m.If((fill == t) & needed):
                    for i in range(P):
                        with m.If(fill_n == i):
                            m.d.sync += [tbl_g[t][i].eq(sc_g), tbl_base[t][i].eq(sc_base)]
                with m.If((fill == t) & close):
                    m.d.sync += [tbl_n[t].eq(n_after), tbl_last[t].eq(row_end)]
                    m.d.comb += set_full.eq(1 << t)
            with m.If(close):
                m.d.sync += [fill.eq(~fill), fill_n.eq(0), since.eq(0)]
            with m.Else():
                m.d.sync += [fill_n.eq(n_after), since.eq(since_after)]
            with m.If(row_end):
                m.d.sync += [sc_g.eq(0), sc_base.eq(cfg.w_base), sc_k.eq(0),
                             sc_row.eq(sc_row + 1)]
                with m.If(sc_row == cfg.n_steps - 1):
                    m.d.sync += sc_done.eq(1)
            with m.Else():
                m.d.sync += [sc_g.eq(sc_g + 1), sc_base.eq(sc_base + cfg.n_in),
                             sc_k.eq(Mux(sc_k == P - 1, 0, sc_k + 1))]

        # issuer side: the block's slots, copied when a round of it is issued
        r_g = [Signal(gbits, name=f"r_g{i}") for i in range(P)]
        r_base = [Signal(aw, name=f"r_base{i}") for i in range(P)]
        r_n = Signal(range(P + 1))
        with m.If(go):
            m.d.sync += r_n.eq(Mux(use, tbl_n[1], tbl_n[0]))
            m.d.sync += [r_g[i].eq(Mux(use, tbl_g[1][i], tbl_g[0][i])) for i in range(P)]
            m.d.sync += [r_base[i].eq(Mux(use, tbl_base[1][i], tbl_base[0][i]))
                         for i in range(P)]
            with m.If(final):
                m.d.comb += clr_full.eq(Mux(use, 0b10, 0b01))
                m.d.sync += use.eq(~use)
        m.d.sync += tbl_full.eq((tbl_full | set_full) & ~clr_full)

        # an unneeded group skips n_in·L lane operations
        skip_group = Signal(self.counter_width)
        m.d.sync += skip_group.eq(_times(cfg.n_in, L))
        with m.If(start):
            m.d.sync += [sc_row.eq(0), sc_g.eq(0), sc_base.eq(self.cmd.payload.w_base),
                         sc_k.eq(0), sc_done.eq(0), fill.eq(0), fill_n.eq(0), since.eq(0),
                         use.eq(0), tbl_full.eq(0)]
        return _Blocks(ready=tbl_full.bit_select(use, 1),
                       last=Mux(use, tbl_last[1], tbl_last[0]),
                       slots=Mux(use, tbl_n[1], tbl_n[0]),
                       slot_valid=k < r_n,
                       slot_group=Cat(*r_g).word_select(k, gbits),
                       slot_base=Cat(*r_base).word_select(k, aw),
                       skipped=Mux(scan & ~needed, skip_group, 0))


class ConvBPEngine(ConvEngine):
    """Event-driven BP engine for 2D convolution: the transposed convolution
    (docs/numerics.md §4.4), the :class:`~.conv.ConvEngine` scatter turned around.

    Input neuron ``(c, iy, ix)`` gets ``δS[r, c, iy, ix]``: a binary16 accumulator from
    ``+0`` taking ``fma(W[co, c, ky, kx], δI[r, co, y, x], acc)`` for every output
    ``(co, y, x)`` that read it (``iy = y·s − p + ky``, ``ix = x·s − p + kx``) with
    ``δI ≠ ±0``, in ascending flat output index ``(co, y, x)``; ``+0`` where
    ``need[r, c, iy, ix] = 0``.  Input channel ``c`` is lane ``c mod L`` of group
    ``c div L``.

    The compressor walks the ``δI`` map (plane ``co``, row ``y``, column ``x``), so the
    events come in the contract's order; each non-zero ``δI`` scatters to the inputs of
    its kernel footprint (``ky``, ``kx`` with ``0 ≤ y·s − p + ky < H`` and likewise for
    ``x``) and every group of ``L`` input channels, one read-modify-write of an
    accumulator word per cycle, hazard-checked as in the FP conv engine.

    Descriptor (``layout.conv_bp_config``): the :class:`~.conv.ConvEngine` fields with the
    roles of the maps exchanged — ``in_c, in_h, in_w`` = the ``δI`` map ``(Co, Ho, Wo)``,
    ``out_h, out_w, out_xbits`` = the ``δS`` map ``(H, W)``, ``n_groups = ceil(C/L)``,
    ``w_gstride = Co·K²``, ``acc_gstride = H·2^out_xbits``, ``n_inputs = Co·Ho·Wo`` — and
    ``need`` instead of ``mac``.

    Memories: weights, word ``w_base + g·Co·K² + co·K² + ky·K + kx`` = ``W[co, g·L + l,
    ky, kx]`` in lane ``l`` (``layout.conv_bp_weight_words``: the FP conv layout of
    ``W`` with its two channel axes swapped); accumulators, word
    ``g·H·2^xbits + iy·2^xbits + ix``.

    Need: with ``need`` set in the descriptor, ``need`` carries one ``L``-bit word per
    read-out word, in read-out order (row ``r``, group ``g``, ``iy``, ``ix``; bit ``l`` =
    ``need[r, g·L + l, iy, ix]``, ``layout.conv_need_words``); unneeded lanes are
    written as ``+0``.  The scatter itself is not pruned by the need mask (it would take a
    need lookup per update); the zero ``δI`` are skipped.

    Flat read-out (``flat_readout=True``): the ``δS`` maps leave in flat ``(c, iy, ix)``
    order, ``L`` values per word, as :class:`~.conv.ConvEngine`'s (``n_out`` = ``C``);
    there is no need mask then: no ``need`` member, and the descriptor's ``need`` bit
    must be 0 (it is ignored; every output is delivered, the consumer masks).

    Parameters and members: as :class:`~.conv.ConvEngine` (FPFMA lanes; ``max_steps``
    is ``max_rows``), plus ``need : In(stream.Signature(L))`` (grouped read-out only).
    ``inputs`` carries the ``δI`` rows (``layout.feature_map_words(δI, word_bits,
    mac=True)``), ``currents`` one word per (row, group, iy, ix) with ``value`` = ``δS``
    of the group's ``L`` channels (or the flat words).  Counters: ``cnt_events``
    non-zero ``δI``, ``cnt_ops`` ``L`` per accumulator update, ``cnt_skipped`` zero
    ``δI``.
    """

    transposed = True

    def __init__(self, lanes=4, *, stages=None, max_width=32, max_height=32, max_channels=16,
                 max_kernel=5, max_stride=2, weight_depth=1024, acc_depth=1024, word_bits=32,
                 max_rows=256, out_depth=8, counter_width=32, flat_readout=False):
        super().__init__(lanes, lane_unit="fma", stages=stages, max_width=max_width,
                         max_height=max_height, max_channels=max_channels,
                         max_kernel=max_kernel, max_stride=max_stride,
                         weight_depth=weight_depth, acc_depth=acc_depth, word_bits=word_bits,
                         max_steps=max_rows, out_depth=out_depth, counter_width=counter_width,
                         flat_readout=flat_readout)

    @property
    def max_rows(self):
        return self.max_steps
