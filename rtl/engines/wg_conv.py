"""WG engine for 2D convolution: the weight gradient in exact fixed point
(docs/numerics.md §5), bit-exact with ``trident.golden.hw.gradient.conv2d_weight_grad``.

``g[co, c, ky, kx] = RNE(Σ_r Σ_(y,x) δI[r, co, y, x] · s[r, c, y·s−p+ky, x·s−p+kx])``
with every term exact in the 2^−24 fixed-point accumulator and one rounding at the end.

The engine computes one *tile*: ``G`` groups of ``L`` output channels (channel
``co = g·L + l`` in lane ``l``) × all ``C·K²`` kernel weights of those channels, so the
batch's input maps are streamed once for all ``G·L`` channels.  It streams the batch's
rows ``r = (n, t)``; per row first the tile's output-gradient maps ``δI[r, co, y, x]``,
flat as they lie in DRAM (two binary16 per 32-bit word, taken one value per cycle into
lane ``l`` of word ``(g, y, x)`` of one of two δ banks, so that the next row's maps load
while this row is processed), then the row's input feature map (``C·H`` image rows of
words: spikes, or binary16 values for an analog first layer).  Beside each δ bank a
bitmap holds, per position ``(y, x)``, which groups have a non-zero δ there.
Event-driven in both operands:

- a row whose δ maps are all ``±0`` is discarded (its input words pass through the
  :class:`~.compress.EventCompressor` at one per cycle and touch nothing);
- otherwise the compressor emits the row's active inputs ``(c, iy, ix)``; each one is
  scattered over its footprint: for every kernel offset ``(ky, kx)`` with an output
  ``y = (iy + p − ky)/s``, ``x = (ix + p − kx)/s`` inside the map (enumerated one per
  cycle, invalid offsets cost nothing) the position's group bitmap is read, and each
  group ``g`` whose δ word ``(g, y, x)`` is not all ``±0`` gets its ``L`` terms (``δ``, or
  ``RNE(δ·x)`` for an analog input) added, exactly, into accumulator word
  ``g·C·K² + c·K² + ky·K + kx`` (the shared :class:`~.wg.ExactAccumulators`), one group
  per cycle.

The sum being exact, the order of the terms does not matter.  After the last row the
``G·C·K²`` accumulator words are rounded once and sent out (and cleared).
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..fp16 import FPMul, Float16
from ..fp16.bits import below_mask, trailing_zeros
from .compress import EventCompressor
from .fixed import TERM_BITS, float16_to_fixed, special_flags
from .fp import _bits_for, _clog2
from .wg import ExactAccumulators, grad_layout, relabel_grads

__all__ = ["ConvWGEngine", "conv_wg_config_layout", "DELTA_WORD_BITS"]

#: Width of a ``deltas`` word: two binary16 values, as they lie in DRAM.
DELTA_WORD_BITS = 32


def conv_wg_config_layout(max_width, max_height, max_channels, max_kernel, max_stride,
                          max_rows, acc_depth, max_groups, lanes, mac_support):
    """The conv WG tile descriptor (fields LSB first).

    Geometry: ``in_w``, ``in_h``, ``in_c`` (input W, H, C), ``kernel`` K, ``stride_log2``
    (stride = 2^stride_log2), ``pad`` p, ``out_h``, ``out_w`` (Ho, Wo), ``out_xbits``
    (δ memory row pitch 2^out_xbits ≥ Wo); ``n_rows`` (samples × steps); ``n_out`` (output
    channels of the tile, ≥ 1) and ``n_groups`` = ⌈n_out / L⌉; precomputed by the host:
    ``w_kk`` = K² and ``n_weights`` = C·K² (accumulator words per group); with MAC support
    ``mac`` (1: analog inputs).
    """
    fields = {
        "in_w": _bits_for(max_width),
        "in_h": _bits_for(max_height),
        "in_c": _bits_for(max_channels),
        "kernel": _bits_for(max_kernel),
        "stride_log2": _bits_for(max(1, max_stride.bit_length() - 1)),
        "pad": _bits_for(max_kernel - 1),
        "out_h": _bits_for(max_height),
        "out_w": _bits_for(max_width),
        "out_xbits": _bits_for(_clog2(max_width)),
        "n_rows": _bits_for(max_rows),
        "n_groups": _bits_for(max_groups),
        "n_out": _bits_for(max_groups * lanes),
        "w_kk": _bits_for(max_kernel * max_kernel),
        "n_weights": _bits_for(acc_depth),
    }
    if mac_support:
        fields["mac"] = 1
    return data.StructLayout(fields)


class ConvWGEngine(wiring.Component):
    """Exact-accumulator weight-gradient engine for one conv tile (``G`` groups of ``L``
    output channels × ``C·K²`` kernel weights), spike or analog inputs, square kernel,
    power-of-two stride, zero padding.

    ``g[co, c, ky, kx] = RNE(Σ term · 2^−24)`` over the rows ``r`` and outputs ``(y, x)``
    with input ``(c, y·s − p + ky, x·s − p + kx)`` active (padding is never active) and
    ``δI[r, co, y, x] ≠ ±0``; ``term = δI`` (spikes) or ``RNE(δI · x)`` (analog,
    ``x ≠ ±0``) as an exact integer in units of 2^−24; NaN if any NaN term or both
    infinities, else the infinity.

    With ``mac_support`` every term goes through one ``FPMul`` per lane (``x = 1.0`` for a
    spike, which gives ``δ`` exactly); lanes with ``δ = ±0`` contribute nothing (no
    ``0·inf`` NaN), as in the golden.

    Memories (``lib.memory.Memory``; ``pitch`` = ``Ho·2^out_xbits``):

    - δ maps: ``delta_banks`` banks of ``delta_depth`` words of ``L`` binary16 (per-lane
      write enables); channel ``co = g·L + l`` at ``(y, x)`` is lane ``l`` of word
      ``g·pitch + y·2^out_xbits + x`` of bank ``r mod delta_banks``.  Lanes of channels
      ``≥ n_out`` (in the last group) are never written and are masked as ``+0``.
    - group bitmaps: per bank, word ``y·2^out_xbits + x`` holds ``max_groups`` bits, bit
      ``g`` set when δ word ``(g, y, x)`` has a non-zero lane (read-modified-written with
      the δ values: lane 0 of a group sets or clears its bit, the other lanes only set
      it).
    - base table: ``max_groups`` entries ``(g·pitch, g·n_weights, lanes of g < n_out)``,
      written in ``n_groups`` cycles when the tile starts (no multiplier).
    - accumulators (:class:`~.wg.ExactAccumulators`): ``acc_depth`` words, word
      ``g·n_weights + c·K² + ky·K + kx`` (``n_weights = C·K²``).

    Sizing (the host's to ensure, as for the FC engine): ``n_groups = ⌈n_out / L⌉ ≤
    max_groups``, ``n_groups·n_weights ≤ acc_depth``, ``n_groups·pitch ≤ delta_depth``.

    Tile and sequencing: one tile = ``G`` groups of ``L`` output channels × all ``C·K²``
    weights of those channels × the whole batch; the input maps are streamed once per
    tile.  The sequencer splits a layer into tiles of fewer groups when the accumulators
    or the δ banks are too small, and into channel ranges when even one group's
    ``C·K² > acc_depth`` (the host then slices the input maps to those channels).  A δ map
    must fit one bank: splitting a map into bands of output rows would need asymmetric
    padding, not supported.  Partial tiles over parts of a batch merge exactly
    (numerics.md §5).

    Per row: ``⌈n_out·Ho·Wo / 2⌉`` δ words (one binary16 value per cycle: two cycles per
    word, one for a row's last word holding a single value), then ``C·H·ceil(W /
    per_word)`` input words.  Cycles per row: ``n_out·Ho·Wo`` to load the δ maps (hidden
    behind the previous row's work with two banks); the compressor's words (one per
    cycle) overlapped with, per active input of a live row, one cycle per footprint
    position with at most one live group and one per live group where there are more
    (at least one per active input); + 1 for the end marker, which waits 3 cycles more
    after a live row's last footprint position (its bitmap and δ reads).
    Then ``(L + 4)·G·C·K²`` for the read-out (``wg_conv_harness.conv_wg_cycle_model``).

    Parameters
    ----------
    lanes : int
        ``L``, output channels of a group.
    mac_support : bool
        Analog inputs (``mac`` descriptor bit; one ``FPMul`` per lane).
    mul_stages : int, optional
        ``FPMul`` pipeline depth.
    max_width, max_height, max_channels : int
        Largest input W, H, C.
    max_kernel : int
        Largest K.
    max_stride : int
        Largest stride, a power of two.
    max_groups : int
        Largest ``n_groups`` (base table entries, group bitmap width).
    acc_depth : int
        Accumulator words (≥ ``n_groups·C·K²`` of every tile).
    delta_depth : int
        Words of one δ bank (≥ ``n_groups·Ho·2^out_xbits``).
    delta_banks : {1, 2}
        δ banks: with 2, row ``r + 1``'s maps load while row ``r`` is processed (twice the
        δ memory).
    word_bits : int
        Input word width (a power of two).
    max_rows : int
        Largest ``n_rows``.
    acc_bits : int
        Accumulator width (≥ 41; 64 holds the contract's 2^23 terms per weight).
    out_depth : int
        Output FIFO depth.
    counter_width : int
        Counter width.

    Members
    -------
    cmd : In(stream.Signature(conv_wg_config_layout))
        The tile descriptor; accepted while idle.
    deltas : In(stream.Signature(32))
        Per row, ``δI[r, co, y, x]`` flat in ``(co, y, x)`` order for ``co < n_out``, two
        binary16 per word (element ``2w`` in bits 0–15, ``2w + 1`` in bits 16–31), the
        row padded to a whole word (the padding is ignored).
    inputs : In(stream.Signature(word_bits))
        Per row, for each channel and image row, ``ceil(W / per_word)`` words (spike bits,
        or binary16 values in MAC mode), as :class:`~.compress.EventCompressor` with rows
        and planes.  Taken only after the row's δ maps.
    grads : Out(stream.Signature(grad_layout))
        ``G·C·K²`` words after the last row, ``g`` ascending, then ``index``: ``value``
        (L binary16, channels ``g·L + l``; ``+0`` in lanes ``≥ n_out``), ``index`` =
        ``c·K² + ky·K + kx``, ``group`` = ``g``.
    busy : Out(1)
        From the accepted ``cmd`` to the last gradient word taken.
    cnt_clear : In(1)
        Clears the counters.
    cnt_busy, cnt_events, cnt_ops, cnt_skipped : Out(counter_width)
        Busy cycles; active inputs of live rows; lane terms accumulated (``L`` per
        accumulator update); footprint positions of live rows skipped because every
        group's δ word there was all ``±0``.
    """

    def __init__(self, lanes=4, *, mac_support=False, mul_stages=None, max_width=32,
                 max_height=32, max_channels=16, max_kernel=5, max_stride=2, max_groups=8,
                 acc_depth=512, delta_depth=1024, delta_banks=2, word_bits=32,
                 max_rows=1 << 16, acc_bits=64, out_depth=8, counter_width=32):
        if acc_bits < TERM_BITS:
            self._MustUse__silence = True
            raise ValueError(f"acc_bits must be at least {TERM_BITS}")
        if (word_bits < 1 or word_bits & (word_bits - 1) or max_stride & (max_stride - 1)
                or (mac_support and word_bits < 16)):
            self._MustUse__silence = True
            raise ValueError("word_bits (>= 16 with MAC support) and max_stride must be "
                             "powers of two")
        if delta_banks not in (1, 2) or max_groups < 1:
            self._MustUse__silence = True
            raise ValueError(f"delta_banks must be 1 or 2 (not {delta_banks!r}), max_groups "
                             f"positive (not {max_groups!r})")
        self.lanes = int(lanes)
        self.mac_support = bool(mac_support)
        self.mul_stages = FPMul.DEFAULT_STAGES if mul_stages is None else int(mul_stages)
        self.max_width = int(max_width)
        self.max_height = int(max_height)
        self.max_channels = int(max_channels)
        self.max_kernel = int(max_kernel)
        self.max_stride = int(max_stride)
        self.max_groups = int(max_groups)
        self.acc_depth = 1 << _clog2(acc_depth)
        self.delta_depth = 1 << _clog2(delta_depth)
        self.delta_banks = int(delta_banks)
        self.word_bits = int(word_bits)
        self.max_rows = int(max_rows)
        self.acc_bits = int(acc_bits)
        self.out_depth = int(out_depth)
        self.counter_width = int(counter_width)
        # a map position y·2^out_xbits + x: below both Ho·2^out_xbits ≤ delta_depth and
        # max_height·2^⌈log2 max_width⌉
        self.pos_bits = min(_clog2(self.delta_depth),
                            _clog2(self.max_height) + _clog2(self.max_width))
        self.config_layout = conv_wg_config_layout(
            self.max_width, self.max_height, self.max_channels, self.max_kernel,
            self.max_stride, self.max_rows, self.acc_depth, self.max_groups, self.lanes,
            self.mac_support)
        self.delta_layout = data.ArrayLayout(Float16, self.lanes)
        self.out_layout = grad_layout(self.lanes, self.acc_depth, _clog2(self.max_groups))
        super().__init__({
            "cmd": In(stream.Signature(self.config_layout)),
            "deltas": In(stream.Signature(DELTA_WORD_BITS)),
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
        L, KM, G = self.lanes, self.max_kernel, self.max_groups
        ab = _clog2(self.acc_depth)
        db = _clog2(self.delta_depth)
        pb = self.pos_bits
        gb = _clog2(G)
        xb = _clog2(self.max_width)
        yb = _clog2(self.max_height)
        rbits = _bits_for(self.max_rows)

        cfg = Signal(self.config_layout)
        running = Signal()
        m.d.comb += [self.cmd.ready.eq(~running), self.busy.eq(running)]
        start = self.cmd.valid & self.cmd.ready
        pitch = Signal(db + 1)              # Ho·2^out_xbits: δ words per group
        xstep = Signal(pb + 1)              # 2^out_xbits: δ words per map row
        used = Signal(G)                    # groups g < n_groups
        with m.If(start):
            p = self.cmd.payload
            m.d.sync += [cfg.eq(p), pitch.eq(p.out_h << p.out_xbits),
                         xstep.eq(Const(1, pb + 1) << p.out_xbits),
                         used.eq(below_mask(p.n_groups, G))]

        # ---- base table: (g·pitch, g·n_weights, lanes below n_out), n_groups cycles at the
        # start: the group's addresses without a multiplier
        entry = data.StructLayout({"d": db, "w": ab, "lanes": L})
        tab = memory.Memory(shape=entry, depth=G, init=[])
        m.submodules.tab = tab
        tab_wr, tab_rd = tab.write_port(), tab.read_port(domain="sync")
        tab_g = Signal(range(G + 1))
        tab_d = Signal(db + 1)
        tab_w = Signal(ab + 1)              # ends as n_groups·n_weights: the words read out
        tab_co = Signal(_bits_for(G * L))   # g·L
        tab_ready = Signal()
        m.d.comb += [tab_wr.addr.eq(tab_g), tab_wr.data.d.eq(tab_d), tab_wr.data.w.eq(tab_w),
                     tab_wr.data.lanes.eq(below_mask(cfg.n_out - tab_co, L)),
                     tab_wr.en.eq(running & ~tab_ready & (tab_g != cfg.n_groups))]
        with m.If(running & ~tab_ready):
            with m.If(tab_g == cfg.n_groups):
                m.d.sync += tab_ready.eq(1)
            with m.Else():
                m.d.sync += [tab_g.eq(tab_g + 1), tab_d.eq(tab_d + pitch),
                             tab_w.eq(tab_w + cfg.n_weights), tab_co.eq(tab_co + L)]

        # ---- the rows' δ maps: `delta_banks` banks, loaded in row order, used in row order;
        # one binary16 value per cycle into its lane, and its bit into the group bitmap.
        # The bitmap is updated by read-modify-write through a second read port: per-bit
        # write enables would split it into one block RAM per group, a second read port
        # only duplicates it.
        NB = self.delta_banks
        dmem = memory.Memory(shape=self.delta_layout, depth=NB * self.delta_depth, init=[])
        nzmem = memory.Memory(shape=G, depth=NB << pb, init=[])
        m.submodules.dmem = dmem
        m.submodules.nzmem = nzmem
        dwr, drd = dmem.write_port(granularity=1), dmem.read_port(domain="sync")
        nzwr = nzmem.write_port()
        nzrd = nzmem.read_port(domain="sync")
        # transparent: a value's read sees the previous value's write in the same cycle
        nzld = nzmem.read_port(domain="sync", transparent_for=(nzwr,))
        full = Signal(NB)                   # bank holds complete δ maps not yet used up
        live = Signal(NB)                   # ... which are not all ±0
        ld_live = Signal()                  # the maps being loaded have a non-zero so far
        hi_pending = Signal()               # the upper value of the word taken is next
        hi_value = Signal(16)
        ld_x = Signal(xb + 1)
        ld_y = Signal(yb + 1)
        ld_prow = Signal(pb)                # ld_y · 2^out_xbits
        ld_co = Signal(_bits_for(G * L))    # channel
        ld_lane = Signal(L, init=1)         # its lane, one-hot
        ld_group = Signal(G, init=1)        # its group, one-hot
        ld_gbase = Signal(db + 1)           # its group's first δ word
        rows_in = Signal(rbits)             # rows whose δ maps were taken
        rows_done = Signal(rbits)           # rows whose end marker was taken
        ld_bank = rows_in[0] if NB == 2 else Const(0, 1)
        pr_bank = rows_done[0] if NB == 2 else Const(0, 1)
        ld_full = full.bit_select(ld_bank, 1)
        row_loaded = full.bit_select(pr_bank, 1)    # the row being processed has its maps
        row_live = live.bit_select(pr_bank, 1)
        m.d.comb += self.deltas.ready.eq(running & tab_ready & ~hi_pending & ~ld_full
                                         & (rows_in != cfg.n_rows))
        take_word = self.deltas.valid & self.deltas.ready
        v_valid = take_word | hi_pending
        v_value = Signal(16)
        m.d.comb += v_value.eq(Mux(hi_pending, hi_value, self.deltas.payload[:16]))
        v_nonzero = v_value[:15] != 0
        last_x = ld_x == cfg.out_w - 1
        last_y = ld_y == cfg.out_h - 1
        last_co = ld_co == cfg.n_out - 1
        map_done = v_valid & last_x & last_y & last_co
        with m.If(take_word):
            # a row's last value in a lower half leaves the upper half as padding
            m.d.sync += [hi_pending.eq(~(last_x & last_y & last_co)),
                         hi_value.eq(self.deltas.payload[16:])]
        with m.Elif(hi_pending):
            m.d.sync += hi_pending.eq(0)
        ld_pos = (ld_prow | ld_x)[:pb]
        ld_addr = (ld_gbase + ld_pos)[:db]
        m.d.comb += [
            dwr.addr.eq(Cat(ld_addr, ld_bank) if NB == 2 else ld_addr),
            dwr.data.eq(Cat(*([v_value] * L))), dwr.en.eq(Mux(v_valid, ld_lane, 0)),
            nzld.addr.eq(Cat(ld_pos, ld_bank) if NB == 2 else ld_pos), nzld.en.eq(1),
        ]
        # W: the value's bit merged into the word read: lane 0 of a group sets or clears
        # the group's bit (no clearing pass between rows), the other lanes only set it.
        # The last write of a row's maps lands a cycle after the bank is marked full,
        # before the compressor can yield the row's first event (at least two cycles).
        w_valid, w_addr = Signal(), Signal.like(nzld.addr)
        w_bit, w_set, w_clear = Signal(G), Signal(), Signal()
        m.d.sync += [w_valid.eq(v_valid), w_addr.eq(nzld.addr), w_bit.eq(ld_group),
                     w_set.eq(v_nonzero), w_clear.eq(ld_lane[0])]
        m.d.comb += [nzwr.addr.eq(w_addr), nzwr.en.eq(w_valid),
                     nzwr.data.eq((nzld.data & ~Mux(w_clear, w_bit, 0))
                                  | Mux(w_set, w_bit, 0))]
        with m.If(v_valid):
            m.d.sync += ld_live.eq(~map_done & (ld_live | v_nonzero))
            with m.If(~last_x):
                m.d.sync += ld_x.eq(ld_x + 1)
            with m.Elif(~last_y):
                m.d.sync += [ld_x.eq(0), ld_y.eq(ld_y + 1), ld_prow.eq(ld_prow + xstep)]
            with m.Else():
                m.d.sync += [ld_x.eq(0), ld_y.eq(0), ld_prow.eq(0)]
                with m.If(last_co):
                    m.d.sync += [ld_co.eq(0), ld_lane.eq(1), ld_group.eq(1), ld_gbase.eq(0),
                                 rows_in.eq(rows_in + 1)]
                with m.Elif(ld_lane[L - 1]):
                    m.d.sync += [ld_co.eq(ld_co + 1), ld_lane.eq(1),
                                 ld_group.eq(ld_group.rotate_left(1)),
                                 ld_gbase.eq(ld_gbase + pitch)]
                with m.Else():
                    m.d.sync += [ld_co.eq(ld_co + 1), ld_lane.eq(ld_lane.rotate_left(1))]

        # ---- the row's input map through the compressor -----------------------------------
        comp = EventCompressor(self.max_width, self.word_bits, self.mac_support,
                               max_rows=max(2, self.max_height),
                               max_planes=max(2, self.max_channels))
        m.submodules.compress = comp
        # E0: the compressor's item, registered (its trailing-zero count is a long path)
        ev = Signal(comp.layout)
        e0_valid = Signal()
        e0_take = Signal()
        m.d.comb += comp.o.ready.eq(running & (~e0_valid | e0_take))
        with m.If(comp.o.valid & comp.o.ready):
            m.d.sync += [ev.eq(comp.o.payload), e0_valid.eq(1)]
        with m.Elif(e0_take):
            m.d.sync += e0_valid.eq(0)
        end_taken = e0_take & ev.end
        # the next row's words wait until this row's end marker has been used: they need
        # that row's δ bank and its discard flag
        row_ending = (comp.o.valid & comp.o.ready & comp.o.payload.end) | (e0_valid & ev.end)
        m.d.comb += [
            comp.n_in.eq(self.cmd.payload.in_w),
            comp.rows.eq(self.cmd.payload.in_h),
            comp.planes.eq(self.cmd.payload.in_c),
            comp.mac.eq(self.cmd.payload.mac if self.mac_support else 0),
            comp.restart.eq(start),
            comp.discard.eq(~row_live),
            comp.i.payload.eq(self.inputs.payload),
            comp.i.valid.eq(self.inputs.valid & running & row_loaded & ~row_ending),
            self.inputs.ready.eq(comp.i.ready & running & row_loaded & ~row_ending),
        ]

        # ---- F: footprint enumeration, one (ky, kx) per cycle; the position's group bitmap
        # is read.  F, N and M stall together while M pairs a position with several groups.
        sl = cfg.stride_log2
        low_mask = Signal(3)
        lim_y = Signal(yb + 4)
        lim_x = Signal(xb + 4)
        k_used = Signal(KM)
        m.d.sync += [lim_y.eq(cfg.out_h << sl), lim_x.eq(cfg.out_w << sl),
                     low_mask.eq(Mux(sl == 0, 0, Mux(sl == 1, 1, Mux(sl == 2, 3, 7)))),
                     k_used.eq(Cat(*(k < cfg.kernel for k in range(KM))))]

        def footprint(pos, k, limit, name):
            """(valid, out) for input position ``pos`` and kernel offset ``k``:
            ``t = pos + p − k`` must be ≥ 0, a multiple of the stride and ``< limit·s``."""
            t = Signal(signed(max(yb, xb) + 5), name=f"{name}{k}")
            m.d.comb += t.eq(pos + cfg.pad - k)
            valid = (t >= 0) & ((t.as_unsigned()[:3] & low_mask) == 0) & (t < limit) & k_used[k]
            return valid, t.as_unsigned() >> sl

        busy_ev = Signal()
        vy_rest, vx_all, vx_rest = Signal(KM), Signal(KM), Signal(KM)
        ys = [Signal(pb, name=f"yrow{k}") for k in range(KM)]     # y · 2^out_xbits
        xs = [Signal(xb, name=f"x{k}") for k in range(KM)]
        cbase = Signal(ab)                                        # c · K²
        ev_value = Signal(16) if self.mac_support else None       # x (1.0 for a spike)
        ky = Signal(range(KM + 1))
        kx = Signal(range(KM + 1))
        m.d.comb += [ky.eq(trailing_zeros(vy_rest)), kx.eq(trailing_zeros(vx_rest))]
        last_kx = (vx_rest & (vx_rest - 1)) == 0
        last_ky = (vy_rest & (vy_rest - 1)) == 0
        n_valid = Signal()
        m_valid = Signal()
        m_rest = Signal(G)                  # groups still to pair with M's position
        # ... more than one (a register: the stall reaches back to the event load)
        m_more = Signal()
        m_free = ~m_valid | ~m_more         # M takes N's position at the clock edge
        f_step = ~n_valid | m_free          # ... and N takes F's
        finishing = busy_ev & f_step & last_kx & last_ky
        with m.If(busy_ev & f_step):
            with m.If(~last_kx):
                m.d.sync += vx_rest.eq(vx_rest & (vx_rest - 1))
            with m.Elif(~last_ky):
                m.d.sync += [vy_rest.eq(vy_rest & (vy_rest - 1)), vx_rest.eq(vx_all)]
            with m.Else():
                m.d.sync += busy_ev.eq(0)

        # an event is loaded when the enumerator is free or frees up this cycle; the end
        # marker once every read of the row's bank (bitmap at F, δ at P) has been issued
        p_valid = Signal()
        can_load = ~busy_ev | finishing
        m.d.comb += e0_take.eq(e0_valid & Mux(ev.end, ~busy_ev & ~n_valid & ~m_valid & ~p_valid,
                                              can_load))
        load = e0_take & ~ev.end
        vy = Signal(KM)
        vx = Signal(KM)
        with m.If(load):
            for k in range(KM):
                fy, y = footprint(ev.row, k, lim_y, "ty")
                fx, x = footprint(ev.index, k, lim_x, "tx")
                m.d.comb += [vy[k].eq(fy), vx[k].eq(fx)]
                m.d.sync += [ys[k].eq(y << cfg.out_xbits), xs[k].eq(x)]
            m.d.sync += [busy_ev.eq((vy != 0) & (vx != 0)), vy_rest.eq(vy), vx_all.eq(vx),
                         vx_rest.eq(vx), cbase.eq(ev.plane * cfg.w_kk)]
            if self.mac_support:
                m.d.sync += ev_value.eq(ev.value)
        with m.If(end_taken):
            m.d.sync += rows_done.eq(rows_done + 1)
        # a bank is filled by the last δ value of a row and freed by its row's end marker
        # (never the same bank in one cycle: a load needs the bank free, an end marker full)
        for k in range(NB):
            with m.If(map_done & (ld_bank == k)):
                m.d.sync += [full[k].eq(1), live[k].eq(ld_live | v_nonzero)]
            with m.Elif(end_taken & (pr_bank == k)):
                m.d.sync += full[k].eq(0)

        # the position (y·2^out_xbits + x) and the weight offset c·K² + ky·K + kx; ky·K from
        # a per-tile table of shifted adds (Yosys would map a constant times the kernel to
        # a DSP block)
        yrow = Signal(pb)
        xcol = Signal(xb)
        kyk = Signal(ab)
        kyk_table = [Signal(ab, name=f"kyk{k}") for k in range(KM)]
        m.d.sync += [kyk_table[k].eq(sum(cfg.kernel << b for b in range(k.bit_length())
                                         if k >> b & 1)) for k in range(KM)]
        m.d.comb += [yrow.eq(Cat(*ys).word_select(ky, pb)), xcol.eq(Cat(*xs).word_select(kx, xb)),
                     kyk.eq(Cat(*kyk_table).word_select(ky, ab))]
        f_pos = (yrow | xcol)[:pb]
        m.d.comb += [nzrd.addr.eq(Cat(f_pos, pr_bank) if NB == 2 else f_pos),
                     nzrd.en.eq(f_step)]  # held while N waits: the word stays N's

        # ---- N: the bitmap word out of its memory ------------------------------------------
        n_pos, n_woff = Signal(pb), Signal(ab)
        with m.If(f_step):
            m.d.sync += [n_valid.eq(busy_ev), n_pos.eq(f_pos), n_woff.eq(cbase + kyk + kx)]
        n_groups = Signal(G)
        m.d.comb += n_groups.eq(nzrd.data & used)

        # ---- M: the live groups of a position, lowest first, one per cycle; the base table
        # is read for the group
        m_pos, m_woff = Signal(pb), Signal(ab)
        m_next = Signal(G)
        m.d.comb += m_next.eq(Mux(m_free, n_groups, m_rest & (m_rest - 1)))
        m.d.sync += [m_rest.eq(m_next), m_more.eq((m_next & (m_next - 1)) != 0)]
        with m.If(m_free):
            m.d.sync += [m_valid.eq(n_valid), m_pos.eq(n_pos), m_woff.eq(n_woff)]
        m_emit = m_valid & (m_rest != 0)
        m.d.comb += [tab_rd.addr.eq(trailing_zeros(m_rest)[:gb]), tab_rd.en.eq(1)]

        # ---- P: δ address g·pitch + position, read; accumulator address g·n_weights + offset
        p_pos, p_woff = Signal(pb), Signal(ab)
        m.d.sync += [p_valid.eq(m_emit), p_pos.eq(m_pos), p_woff.eq(m_woff)]
        r_addr = (tab_rd.data.d + p_pos)[:db]
        m.d.comb += [drd.addr.eq(Cat(r_addr, pr_bank) if NB == 2 else r_addr), drd.en.eq(1)]

        # ---- D: the δ word leaves the RAM; Q: registered (the block RAM's clock-to-out is
        # most of a cycle)
        d_valid, d_addr, d_lanes = Signal(), Signal(ab), Signal(L)
        m.d.sync += [d_valid.eq(p_valid), d_addr.eq((tab_rd.data.w + p_woff)[:ab]),
                     d_lanes.eq(tab_rd.data.lanes)]
        q_valid, q_addr, q_lanes = Signal(), Signal(ab), Signal(L)
        q_data = Signal(self.delta_layout)
        m.d.sync += [q_valid.eq(d_valid), q_addr.eq(d_addr), q_lanes.eq(d_lanes),
                     q_data.eq(drd.data)]

        # ---- A: the terms, aligned per lane; ±0 lanes and lanes past n_out add nothing ----
        a_valid = Signal()
        a_addr = Signal(ab)
        a_term = [Signal(signed(TERM_BITS), name=f"a_term{l}") for l in range(L)]
        a_flags = [Signal(3, name=f"a_flags{l}") for l in range(L)]
        lane_off = Cat(*((q_data[l].as_value()[:15] == 0) | ~q_lanes[l] for l in range(L)))
        if self.mac_support:
            # RNE(δ·x) per lane; the address and the lane mask ride in lane 0's tag
            n_value, m_value = Signal(16), Signal(16)
            p_value, d_value, q_value = Signal(16), Signal(16), Signal(16)
            with m.If(f_step):
                m.d.sync += n_value.eq(ev_value)
            with m.If(m_free):
                m.d.sync += m_value.eq(n_value)
            m.d.sync += [p_value.eq(m_value), d_value.eq(p_value), q_value.eq(d_value)]
            muls = []
            for l in range(L):
                u = FPMul(self.mul_stages, tag_width=(ab + L) if l == 0 else 0)
                m.submodules[f"mul{l}"] = u
                muls.append(u)
                m.d.comb += [u.i.valid.eq(q_valid), u.i.payload.a.eq(q_data[l]),
                             u.i.payload.b.eq(q_value)]
            m.d.comb += muls[0].i.payload.tag.eq(Cat(q_addr, lane_off))
            out_tag = muls[0].o.payload.tag
            m.d.sync += [a_valid.eq(muls[0].o.valid), a_addr.eq(out_tag[:ab])]
            for l in range(L):
                z, skip = muls[l].o.payload.z, out_tag[ab + l]
                nan, pinf, ninf = special_flags(z)
                m.d.sync += [a_term[l].eq(Mux(skip, 0, float16_to_fixed(z))),
                             a_flags[l].eq(Mux(skip, 0, Cat(nan, pinf, ninf)))]
            in_mul = Signal(range(self.mul_stages + 2))
            m.d.sync += in_mul.eq(in_mul + q_valid - muls[0].o.valid)
        else:
            m.d.sync += [a_valid.eq(q_valid), a_addr.eq(q_addr)]
            for l in range(L):
                nan, pinf, ninf = special_flags(q_data[l])
                m.d.sync += [a_term[l].eq(Mux(lane_off[l], 0, float16_to_fixed(q_data[l]))),
                             a_flags[l].eq(Mux(lane_off[l], 0, Cat(nan, pinf, ninf)))]
            in_mul = Const(0, 1)

        # ---- accumulators: read-modify-write, then the read-out ---------------------------
        bank = ExactAccumulators(L, depth=self.acc_depth, acc_bits=self.acc_bits,
                                 out_layout=self.out_layout, out_depth=self.out_depth)
        m.submodules.bank = bank
        drained = ((rows_done == cfg.n_rows) & (full == 0) & tab_ready & ~busy_ev & ~n_valid
                   & ~m_valid & ~p_valid & ~d_valid & ~q_valid & (in_mul == 0) & ~a_valid
                   & ~bank.pending)
        m.d.comb += [
            bank.upd.valid.eq(a_valid), bank.upd.payload.addr.eq(a_addr),
            bank.readout.eq(running & drained), bank.restart.eq(start),
            bank.n_words.eq(tab_w), bank.group.eq(0),
        ]
        m.d.comb += [bank.upd.payload.term[l].eq(a_term[l]) for l in range(L)]
        m.d.comb += [bank.upd.payload.flags[l].eq(a_flags[l]) for l in range(L)]
        relabel_grads(m, bank.grads, self.grads, cfg.n_weights, start)

        with m.If(start):
            m.d.sync += [running.eq(1), full.eq(0), ld_live.eq(0), hi_pending.eq(0),
                         rows_in.eq(0), rows_done.eq(0), ld_x.eq(0), ld_y.eq(0), ld_prow.eq(0),
                         ld_co.eq(0), ld_lane.eq(1), ld_group.eq(1), ld_gbase.eq(0),
                         busy_ev.eq(0), e0_valid.eq(0), n_valid.eq(0), m_valid.eq(0),
                         tab_g.eq(0), tab_d.eq(0), tab_w.eq(0), tab_co.eq(0), tab_ready.eq(0)]
        with m.Elif(running & bank.done):
            m.d.sync += running.eq(0)

        # ---- counters ------------------------------------------------------------------
        cw = self.counter_width
        busy_c, events_c, ops_c, skipped_c = (Signal(cw, name=n) for n in
                                              ("busy_c", "events_c", "ops_c", "skipped_c"))
        m.d.sync += [busy_c.eq(busy_c + running),
                     events_c.eq(events_c + load),
                     ops_c.eq(ops_c + Mux(a_valid, L, 0)),
                     skipped_c.eq(skipped_c + (n_valid & m_free & (n_groups == 0)))]
        with m.If(self.cnt_clear):
            m.d.sync += [busy_c.eq(0), events_c.eq(0), ops_c.eq(0), skipped_c.eq(0)]
        m.d.comb += [self.cnt_busy.eq(busy_c), self.cnt_events.eq(events_c),
                     self.cnt_ops.eq(ops_c), self.cnt_skipped.eq(skipped_c)]
        return m
