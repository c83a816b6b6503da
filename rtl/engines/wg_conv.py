"""WG engine for 2D convolution: the weight gradient in exact fixed point
(docs/numerics.md §5), bit-exact with ``trident.golden.hw.gradient.conv2d_weight_grad``.

``g[co, c, ky, kx] = RNE(Σ_r Σ_(y,x) δI[r, co, y, x] · s[r, c, y·s−p+ky, x·s−p+kx])``
with every term exact in the 2^−24 fixed-point accumulator and one rounding at the end.

The engine computes one *tile*: the ``L`` output channels of a group ``g`` (one per lane)
× all ``C·K²`` kernel weights of those channels.  It streams the batch's rows
``r = (n, t)``; per row first the group's output-gradient map ``δI[r, g·L + l, y, x]``
(``Ho·Wo`` words of ``L`` binary16, into one of two δ memory banks, so that the next
row's map loads while this row is processed), then the row's input feature map (``C·H``
image rows of words: spikes, or binary16 values for an analog first layer).
Event-driven in both operands:

- a row whose δ map is all ``±0`` is discarded (its input words pass through the
  :class:`~.compress.EventCompressor` at one per cycle and touch nothing);
- otherwise the compressor emits the row's active inputs ``(c, iy, ix)``; each one is
  scattered over its footprint: for every kernel offset ``(ky, kx)`` with an output
  ``y = (iy + p − ky)/s``, ``x = (ix + p − kx)/s`` inside the map (enumerated one per
  cycle, invalid offsets cost nothing) the δ word ``(y, x)`` is read, and unless all its
  lanes are ``±0`` its ``L`` terms (``δ``, or ``RNE(δ·x)`` for an analog input) are
  added, exactly, into accumulator word ``c·K² + ky·K + kx`` (the shared
  :class:`~.wg.ExactAccumulators`).

The sum being exact, the order of the terms does not matter.  After the last row the
``C·K²`` accumulator words are rounded once and sent out (and cleared).
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..fp16 import FPMul, Float16
from ..fp16.bits import trailing_zeros
from .compress import EventCompressor
from .fixed import TERM_BITS, float16_to_fixed, special_flags
from .fp import _bits_for, _clog2
from .wg import ExactAccumulators, grad_layout

__all__ = ["ConvWGEngine", "conv_wg_config_layout"]


def conv_wg_config_layout(max_width, max_height, max_channels, max_kernel, max_stride,
                          max_rows, acc_depth, groups_bits, mac_support):
    """The conv WG tile descriptor (fields LSB first).

    Geometry: ``in_w``, ``in_h``, ``in_c`` (input W, H, C), ``kernel`` K, ``stride_log2``
    (stride = 2^stride_log2), ``pad`` p, ``out_h``, ``out_w`` (Ho, Wo), ``out_xbits``
    (δ memory row pitch 2^out_xbits ≥ Wo); ``n_rows`` (samples × steps); ``group`` (a
    label copied to the output words); precomputed by the host: ``w_kk`` = K² and
    ``n_weights`` = C·K² (accumulator words read out); with MAC support ``mac`` (1: analog
    inputs).
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
        "group": groups_bits,
        "w_kk": _bits_for(max_kernel * max_kernel),
        "n_weights": _bits_for(acc_depth),
    }
    if mac_support:
        fields["mac"] = 1
    return data.StructLayout(fields)


class ConvWGEngine(wiring.Component):
    """Exact-accumulator weight-gradient engine for one conv tile (``L`` output channels ×
    ``C·K²`` kernel weights), spike or analog inputs, square kernel, power-of-two stride,
    zero padding.

    ``g[g·L + l, c, ky, kx] = RNE(Σ term · 2^−24)`` over the rows ``r`` and outputs
    ``(y, x)`` with input ``(c, y·s − p + ky, x·s − p + kx)`` active (padding is never
    active) and ``δI[r, g·L + l, y, x] ≠ ±0``; ``term = δI`` (spikes) or ``RNE(δI · x)``
    (analog, ``x ≠ ±0``) as an exact integer in units of 2^−24; NaN if any NaN term or
    both infinities, else the infinity.

    With ``mac_support`` every term goes through one ``FPMul`` per lane (``x = 1.0`` for a
    spike, which gives ``δ`` exactly); lanes with ``δ = ±0`` contribute nothing (no
    ``0·inf`` NaN), as in the golden.

    Memories (``lib.memory.Memory``): the δ maps, ``delta_banks`` banks of
    ``delta_depth`` words of ``L`` binary16, word ``y·2^out_xbits + x`` (row ``r`` uses bank
    ``r mod delta_banks``); the accumulators (:class:`~.wg.ExactAccumulators`),
    ``acc_depth`` words, word ``c·K² + ky·K + kx``.

    Tile and sequencing: one tile = one group of ``L`` output channels × all ``C·K²``
    weights of those channels × the whole batch.  The sequencer issues one tile per
    output-channel group (re-streaming the batch's input maps for each), and must split
    further when ``C·K² > acc_depth`` (a channel range per tile: the host then slices the
    input maps to those channels).  A δ map must fit one bank (``Ho·2^out_xbits ≤
    delta_depth``): splitting a map into bands of output rows would need asymmetric
    padding, not supported.  Partial tiles over parts of a batch merge exactly
    (numerics.md §5).

    Per row: ``Ho·Wo`` δ words, then ``C·H·ceil(W / per_word)`` input words.  Cycles
    per row: ``Ho·Wo`` to load the δ map (hidden behind the previous row's work with two
    banks), the compressor's words (one per cycle) overlapped with one cycle per
    footprint position of every active input of a live row (at least one per active
    input), + 1 for the end marker; then ``(L + 4)·C·K²`` for the read-out
    (``wg_conv_harness.conv_wg_cycle_model``).

    Parameters
    ----------
    lanes : int
        ``L``, output channels of the tile.
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
    acc_depth : int
        Accumulator words (≥ C·K² of every tile).
    delta_depth : int
        Words of one δ map bank (≥ Ho·2^out_xbits).
    delta_banks : {1, 2}
        δ map banks: with 2, row ``r + 1``'s map loads while row ``r`` is processed
        (twice the δ memory).
    word_bits : int
        Input word width (a power of two).
    max_rows : int
        Largest ``n_rows``.
    acc_bits : int
        Accumulator width (≥ 41; 64 holds the contract's 2^23 terms per weight).
    groups_bits : int
        Width of the ``group`` label.
    out_depth : int
        Output FIFO depth.
    counter_width : int
        Counter width.

    Members
    -------
    cmd : In(stream.Signature(conv_wg_config_layout))
        The tile descriptor; accepted while idle.
    deltas : In(stream.Signature(ArrayLayout(Float16, L)))
        Per row, ``δI[r, g·L + l, y, x]`` for ``y`` ascending, then ``x`` (``Ho·Wo`` words).
    inputs : In(stream.Signature(word_bits))
        Per row, for each channel and image row, ``ceil(W / per_word)`` words (spike bits,
        or binary16 values in MAC mode), as :class:`~.compress.EventCompressor` with rows
        and planes.  Taken only after the row's δ map.
    grads : Out(stream.Signature(grad_layout))
        ``C·K²`` words after the last row: ``value`` (L binary16), ``index`` =
        ``c·K² + ky·K + kx`` ascending, ``group``.
    busy : Out(1)
        From the accepted ``cmd`` to the last gradient word taken.
    cnt_clear : In(1)
        Clears the counters.
    cnt_busy, cnt_events, cnt_ops, cnt_skipped : Out(counter_width)
        Busy cycles; active inputs of live rows; lane terms accumulated (``L`` per
        accumulator update); footprint positions of live rows skipped because their δ
        word was all ``±0``.
    """

    def __init__(self, lanes=4, *, mac_support=False, mul_stages=None, max_width=32,
                 max_height=32, max_channels=16, max_kernel=5, max_stride=2, acc_depth=512,
                 delta_depth=1024, delta_banks=2, word_bits=32, max_rows=1 << 16, acc_bits=64,
                 groups_bits=10, out_depth=8, counter_width=32):
        if acc_bits < TERM_BITS:
            self._MustUse__silence = True
            raise ValueError(f"acc_bits must be at least {TERM_BITS}")
        if (word_bits < 1 or word_bits & (word_bits - 1) or max_stride & (max_stride - 1)
                or (mac_support and word_bits < 16)):
            self._MustUse__silence = True
            raise ValueError("word_bits (>= 16 with MAC support) and max_stride must be "
                             "powers of two")
        self.lanes = int(lanes)
        self.mac_support = bool(mac_support)
        self.mul_stages = FPMul.DEFAULT_STAGES if mul_stages is None else int(mul_stages)
        self.max_width = int(max_width)
        self.max_height = int(max_height)
        self.max_channels = int(max_channels)
        self.max_kernel = int(max_kernel)
        self.max_stride = int(max_stride)
        self.acc_depth = 1 << _clog2(acc_depth)
        self.delta_depth = 1 << _clog2(delta_depth)
        if delta_banks not in (1, 2):
            self._MustUse__silence = True
            raise ValueError(f"delta_banks must be 1 or 2, not {delta_banks!r}")
        self.delta_banks = int(delta_banks)
        self.word_bits = int(word_bits)
        self.max_rows = int(max_rows)
        self.acc_bits = int(acc_bits)
        self.groups_bits = int(groups_bits)
        self.out_depth = int(out_depth)
        self.counter_width = int(counter_width)
        self.config_layout = conv_wg_config_layout(
            self.max_width, self.max_height, self.max_channels, self.max_kernel,
            self.max_stride, self.max_rows, self.acc_depth, self.groups_bits, self.mac_support)
        self.delta_layout = data.ArrayLayout(Float16, self.lanes)
        self.out_layout = grad_layout(self.lanes, self.acc_depth, self.groups_bits)
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
        L, KM = self.lanes, self.max_kernel
        ab = _clog2(self.acc_depth)
        db = _clog2(self.delta_depth)
        xb = _clog2(self.max_width)
        yb = _clog2(self.max_height)
        rbits = _bits_for(self.max_rows)

        cfg = Signal(self.config_layout)
        running = Signal()
        m.d.comb += [self.cmd.ready.eq(~running), self.busy.eq(running)]
        start = self.cmd.valid & self.cmd.ready
        with m.If(start):
            m.d.sync += cfg.eq(self.cmd.payload)

        # ---- the rows' δ maps: `delta_banks` banks, loaded in row order, used in row order
        NB = self.delta_banks
        dmem = memory.Memory(shape=self.delta_layout, depth=NB * self.delta_depth, init=[])
        m.submodules.dmem = dmem
        dwr, drd = dmem.write_port(), dmem.read_port(domain="sync")
        full = Signal(NB)                   # bank holds a complete δ map not yet used up
        live = Signal(NB)                   # ... which is not all ±0
        ld_live = Signal()                  # the map being loaded has a non-zero so far
        ld_y = Signal(yb + 1)
        ld_x = Signal(xb + 1)
        rows_in = Signal(rbits)             # rows whose δ map was taken
        rows_done = Signal(rbits)           # rows whose end marker was taken
        ld_bank = rows_in[0] if NB == 2 else Const(0, 1)
        pr_bank = rows_done[0] if NB == 2 else Const(0, 1)
        ld_full = full.bit_select(ld_bank, 1)
        row_loaded = full.bit_select(pr_bank, 1)    # the row being processed has its map
        row_live = live.bit_select(pr_bank, 1)
        m.d.comb += self.deltas.ready.eq(running & ~ld_full & (rows_in != cfg.n_rows))
        take_delta = self.deltas.valid & self.deltas.ready
        d_nonzero = Cat(*(self.deltas.payload[l].as_value()[:15] != 0 for l in range(L))).any()
        last_x = ld_x == cfg.out_w - 1
        map_done = take_delta & last_x & (ld_y == cfg.out_h - 1)
        d_addr = ((ld_y << cfg.out_xbits) | ld_x)[:db]
        m.d.comb += [dwr.addr.eq(Cat(d_addr, ld_bank) if NB == 2 else d_addr),
                     dwr.data.eq(self.deltas.payload), dwr.en.eq(take_delta)]
        with m.If(take_delta):
            m.d.sync += ld_live.eq(~map_done & (ld_live | d_nonzero))
            with m.If(~last_x):
                m.d.sync += ld_x.eq(ld_x + 1)
            with m.Else():
                m.d.sync += ld_x.eq(0)
                with m.If(ld_y == cfg.out_h - 1):
                    m.d.sync += [ld_y.eq(0), rows_in.eq(rows_in + 1)]
                with m.Else():
                    m.d.sync += ld_y.eq(ld_y + 1)

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

        # ---- footprint enumeration: one (ky, kx) per cycle --------------------------------
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
        ys = [Signal(db, name=f"yrow{k}") for k in range(KM)]     # y · 2^out_xbits
        xs = [Signal(xb, name=f"x{k}") for k in range(KM)]
        cbase = Signal(ab)                                        # c · K²
        ev_value = Signal(16) if self.mac_support else None       # x (1.0 for a spike)
        ky = Signal(range(KM + 1))
        kx = Signal(range(KM + 1))
        m.d.comb += [ky.eq(trailing_zeros(vy_rest)), kx.eq(trailing_zeros(vx_rest))]
        last_kx = (vx_rest & (vx_rest - 1)) == 0
        last_ky = (vy_rest & (vy_rest - 1)) == 0
        finishing = busy_ev & last_kx & last_ky
        with m.If(busy_ev):
            with m.If(~last_kx):
                m.d.sync += vx_rest.eq(vx_rest & (vx_rest - 1))
            with m.Elif(~last_ky):
                m.d.sync += [vy_rest.eq(vy_rest & (vy_rest - 1)), vx_rest.eq(vx_all)]
            with m.Else():
                m.d.sync += busy_ev.eq(0)

        # an event is loaded when the enumerator is free or frees up this cycle; the end
        # marker once it is idle (every δ read of the row issued)
        can_load = ~busy_ev | finishing
        m.d.comb += e0_take.eq(e0_valid & Mux(ev.end, ~busy_ev, can_load))
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
        # a bank is filled by the last δ word of a map and freed by its row's end marker
        # (never the same bank in one cycle: a load needs the bank free, an end marker full)
        for k in range(NB):
            with m.If(map_done & (ld_bank == k)):
                m.d.sync += [full[k].eq(1), live[k].eq(ld_live | d_nonzero)]
            with m.Elif(end_taken & (pr_bank == k)):
                m.d.sync += full[k].eq(0)

        # ---- P: δ read (the accumulator address travels along); ky·K from a per-tile table
        yrow = Signal(db)
        xcol = Signal(xb)
        kyk = Signal(ab)
        kyk_table = [Signal(ab, name=f"kyk{k}") for k in range(KM)]
        # shifted adds: Yosys would map a constant times the kernel to a DSP block
        m.d.sync += [kyk_table[k].eq(sum(cfg.kernel << b for b in range(k.bit_length())
                                         if k >> b & 1)) for k in range(KM)]
        m.d.comb += [yrow.eq(Cat(*ys).word_select(ky, db)), xcol.eq(Cat(*xs).word_select(kx, xb)),
                     kyk.eq(Cat(*kyk_table).word_select(ky, ab))]
        p_valid = Signal()
        p_addr = Signal(ab)
        r_addr = (yrow | xcol)[:db]
        m.d.comb += [drd.addr.eq(Cat(r_addr, pr_bank) if NB == 2 else r_addr), drd.en.eq(1)]
        m.d.sync += [p_valid.eq(busy_ev), p_addr.eq(cbase + kyk + kx)]

        # ---- Q: the δ word, registered (the block RAM's clock-to-out is most of a cycle)
        q_valid = Signal()
        q_addr = Signal(ab)
        q_data = Signal(self.delta_layout)
        m.d.sync += [q_valid.eq(p_valid), q_addr.eq(p_addr), q_data.eq(drd.data)]

        # ---- A: the terms, aligned per lane; an all-zero δ word is skipped ----------------
        a_valid = Signal()
        a_addr = Signal(ab)
        a_term = [Signal(signed(TERM_BITS), name=f"a_term{l}") for l in range(L)]
        a_flags = [Signal(3, name=f"a_flags{l}") for l in range(L)]
        lane_zero = Cat(*(q_data[l].as_value()[:15] == 0 for l in range(L)))
        q_zero = lane_zero.all()
        if self.mac_support:
            # RNE(δ·x) per lane; the address and the zero-lane mask ride in lane 0's tag
            p_value, q_value = Signal(16), Signal(16)
            m.d.sync += [p_value.eq(ev_value), q_value.eq(p_value)]
            muls = []
            for l in range(L):
                u = FPMul(self.mul_stages, tag_width=(ab + L) if l == 0 else 0)
                m.submodules[f"mul{l}"] = u
                muls.append(u)
                m.d.comb += [u.i.valid.eq(q_valid & ~q_zero), u.i.payload.a.eq(q_data[l]),
                             u.i.payload.b.eq(q_value)]
            m.d.comb += muls[0].i.payload.tag.eq(Cat(q_addr, lane_zero))
            out_tag = muls[0].o.payload.tag
            m.d.sync += [a_valid.eq(muls[0].o.valid), a_addr.eq(out_tag[:ab])]
            for l in range(L):
                z, skip = muls[l].o.payload.z, out_tag[ab + l]
                nan, pinf, ninf = special_flags(z)
                m.d.sync += [a_term[l].eq(Mux(skip, 0, float16_to_fixed(z))),
                             a_flags[l].eq(Mux(skip, 0, Cat(nan, pinf, ninf)))]
            in_mul = Signal(range(self.mul_stages + 2))
            m.d.sync += in_mul.eq(in_mul + (q_valid & ~q_zero) - muls[0].o.valid)
        else:
            m.d.sync += [a_valid.eq(q_valid & ~q_zero), a_addr.eq(q_addr)]
            for l in range(L):
                nan, pinf, ninf = special_flags(q_data[l])
                m.d.sync += [a_term[l].eq(float16_to_fixed(q_data[l])),
                             a_flags[l].eq(Cat(nan, pinf, ninf))]
            in_mul = Const(0, 1)

        # ---- accumulators: read-modify-write, then the read-out ---------------------------
        bank = ExactAccumulators(L, depth=self.acc_depth, acc_bits=self.acc_bits,
                                 out_layout=self.out_layout, out_depth=self.out_depth)
        m.submodules.bank = bank
        drained = ((rows_done == cfg.n_rows) & (full == 0) & ~busy_ev & ~p_valid & ~q_valid
                   & (in_mul == 0) & ~a_valid & ~bank.pending)
        m.d.comb += [
            bank.upd.valid.eq(a_valid), bank.upd.payload.addr.eq(a_addr),
            bank.readout.eq(running & drained), bank.restart.eq(start),
            bank.n_words.eq(cfg.n_weights), bank.group.eq(cfg.group),
        ]
        m.d.comb += [bank.upd.payload.term[l].eq(a_term[l]) for l in range(L)]
        m.d.comb += [bank.upd.payload.flags[l].eq(a_flags[l]) for l in range(L)]
        wiring.connect(m, bank.grads, wiring.flipped(self.grads))

        with m.If(start):
            m.d.sync += [running.eq(1), full.eq(0), ld_live.eq(0), rows_in.eq(0),
                         rows_done.eq(0), ld_x.eq(0), ld_y.eq(0), busy_ev.eq(0), e0_valid.eq(0)]
        with m.Elif(running & bank.done):
            m.d.sync += running.eq(0)

        # ---- counters ------------------------------------------------------------------
        cw = self.counter_width
        busy_c, events_c, ops_c, skipped_c = (Signal(cw, name=n) for n in
                                              ("busy_c", "events_c", "ops_c", "skipped_c"))
        m.d.sync += [busy_c.eq(busy_c + running),
                     events_c.eq(events_c + load),
                     ops_c.eq(ops_c + Mux(a_valid, L, 0)),
                     skipped_c.eq(skipped_c + (q_valid & q_zero))]
        with m.If(self.cnt_clear):
            m.d.sync += [busy_c.eq(0), events_c.eq(0), ops_c.eq(0), skipped_c.eq(0)]
        m.d.comb += [self.cnt_busy.eq(busy_c), self.cnt_events.eq(events_c),
                     self.cnt_ops.eq(ops_c), self.cnt_skipped.eq(skipped_c)]
        return m
