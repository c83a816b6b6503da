"""FP engine for 2D convolution: event-driven scatter of each active input's kernel
footprint into output accumulators (docs/numerics.md §2.3), bit-exact with
``trident.golden.hw.forward.conv2d_forward``.

See docs/engines.md §11.  Per step: the :class:`~.compress.EventCompressor` walks the
input feature map (plane = channel, row = image row) and emits its active inputs in
ascending flat index ``(c, iy, ix)``; each one scatters to the outputs ``(co, y, x)``
whose receptive field holds it — ``y = (iy + p − ky)/s``, ``x = (ix + p − kx)/s`` for
the ``(ky, kx)`` where that is an integer inside the output — in groups of ``L`` output
channels (lanes).  Every update is a read-modify-write of one accumulator word through
the ``L`` pipelined FP16 lanes; a hazard check holds back an update whose accumulator
is still in flight, so every output takes its terms one after the other in ascending
input index, as the contract requires.  After the step's last event the accumulators
are read out (and cleared to ``+0`` on the way) as the step's currents.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..fp16 import FPAdd, FPFMA, Float16
from ..fp16.bits import trailing_zeros
from .compress import ONE, EventCompressor
from .fp import _bits_for, _clog2

__all__ = ["ConvEngine", "conv_config_layout", "conv_current_layout"]

POS_ZERO = 0x0000


def conv_config_layout(max_width, max_height, max_channels, max_kernel, max_stride,
                       weight_depth, acc_depth, max_steps, mac_support, need_support=False,
                       max_out=None):
    """The conv layer descriptor accepted on ``cmd`` (fields LSB first).

    Geometry: ``in_w``, ``in_h``, ``in_c`` (input W, H, C), ``kernel`` K, ``stride_log2``
    (stride = 2^stride_log2), ``pad`` p, ``out_h``, ``out_w`` (Ho, Wo), ``out_xbits``
    (accumulator row pitch 2^out_xbits ≥ Wo); ``n_groups`` output-channel groups of L;
    ``n_steps``; addressing, precomputed by the host (no multipliers in hardware):
    ``w_base``, ``w_kk`` = K², ``w_gstride`` = C·K² (words per group), ``acc_gstride`` =
    Ho·2^out_xbits, ``n_inputs`` = C·H·W (for the skip counter); and with MAC support
    ``mac``; with need support (the BP engine, :class:`~.bp.ConvBPEngine`) ``need``
    instead (the geometry fields then describe the transposed convolution, see there);
    with ``max_out`` (the flat read-out) last ``n_out``, the channels of the output maps,
    ``(n_groups − 1)·L < n_out ≤ n_groups·L`` (at most ``max_out``).
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
        "n_groups": _bits_for(acc_depth),
        "n_steps": _bits_for(max_steps),
        "w_base": _clog2(weight_depth),
        "w_kk": _bits_for(max_kernel * max_kernel),
        "w_gstride": _bits_for(weight_depth),
        "acc_gstride": _bits_for(acc_depth),
        "n_inputs": _bits_for(max_width * max_height * max_channels),
    }
    if need_support:
        fields["need"] = 1
    elif mac_support:
        fields["mac"] = 1
    if max_out is not None:             # last: the other fields keep their offsets
        fields["n_out"] = _bits_for(max_out)
    return data.StructLayout(fields)


def conv_current_layout(lanes, max_width, max_height, acc_depth, max_steps):
    """One output word: ``value`` (L × binary16: output channels ``g·L + l``), then
    ``x``, ``y``, ``group`` g and ``step`` t."""
    return data.StructLayout({
        "value": data.ArrayLayout(Float16, lanes),
        "x": _clog2(max_width),
        "y": _clog2(max_height),
        "group": _bits_for(acc_depth),
        "step": _bits_for(max_steps),
    })


class ConvEngine(wiring.Component):
    """Event-driven FP engine for 2D convolution (square kernel, power-of-two stride,
    zero padding), spike mode and MAC mode.

    Output neuron ``(co, y, x)`` gets ``I[t][co, y, x]``: a binary16 accumulator from
    ``+0`` that takes ``add(acc, W[co, c, ky, kx])`` (spike mode) or
    ``fma(W[co, c, ky, kx], x[c, iy, ix], acc)`` (MAC mode) for every active input of its
    receptive field, in ascending flat input index ``(c, iy, ix)``; padding positions are
    absent (numerics.md §2.3).  Output channel ``co`` is lane ``co mod L`` of group
    ``co div L``.

    Memories (``lib.memory.Memory``):

    - weights, ``weight_depth`` words of ``L`` binary16: word
      ``w_base + g·C·K² + c·K² + ky·K + kx`` holds ``W[g·L + l, c, ky, kx]`` in lane ``l``;
    - accumulators, ``acc_depth`` words of ``L`` binary16: word
      ``g·Ho·2^xbits + y·2^xbits + x`` for output ``(g, y, x)`` (rows padded to a power
      of two); all ``+0`` between steps (the read-out clears them; they start at +0).

    Input words (``inputs``): per step, for each channel ``c`` and row ``iy``,
    ``ceil(W / per_word)`` words (spike bits or ``word_bits/16`` binary16 values), as
    :class:`~.compress.EventCompressor` with rows and planes.  Output words
    (``currents``): per step, groups ascending, then ``y``, then ``x``.

    Flat read-out (``flat_readout=True``, docs/engines.md §11): the step's output maps
    leave in flat ``(co, y, x)`` order instead, ``L`` consecutive values per word —
    ``value[k]`` = flat element ``w·L + k`` of the step (flat index
    ``co·Ho·Wo + y·Wo + x``), ``ceil(n_out·Ho·Wo / L)`` words per step, the last one's
    missing lanes ``+0``; ``x``, ``y`` and ``group`` are 0 (don't-care), ``step`` as
    usual.  One accumulator lane is read per cycle (``n_out·Ho·Wo`` cycles per step);
    word ``(g, y, x)`` is cleared when its last lane (``L − 1``, or channel
    ``n_out − 1``) is read.  The descriptor gets ``n_out``.

    Parameters
    ----------
    lanes : int
        ``L`` (output channels per accumulator word).
    lane_unit : {"add", "fma"}
        FPAdd lanes (spike mode) or FPFMA lanes (spike and MAC mode).
    stages : int, optional
        Lane pipeline depth (default: the unit's default).
    max_width, max_height, max_channels : int
        Largest input W, H, C (outputs are never larger than the input plus padding).
    max_kernel : int
        Largest K.
    max_stride : int
        Largest stride, a power of two.
    weight_depth, acc_depth : int
        Words of the weight and accumulator memories.
    word_bits : int
        Input word width.
    max_steps : int
        Largest ``n_steps``.
    out_depth : int, optional
        Output FIFO depth (default 8).
    counter_width : int
        Counter width.
    flat_readout : bool
        Read the maps out in flat ``(co, y, x)`` order, ``L`` values per word (above);
        default: one word per ``(group, y, x)``.

    Members
    -------
    cmd : In(stream.Signature(conv_config_layout))
        The layer descriptor (``layout.conv_config`` computes it); accepted while idle.
    weights : In(stream.Signature(weight_write_layout))
        Weight-memory writes, always ready.
    inputs : In(stream.Signature(word_bits))
        Input words.
    currents : Out(stream.Signature(conv_current_layout))
        One word per (step, group, y, x); flat read-out: ``ceil(n_out·Ho·Wo / L)``
        words per step.
    busy : Out(1)
        From the accepted ``cmd`` to the last current word taken.
    cnt_clear : In(1)
        Clears the counters.
    cnt_busy, cnt_events, cnt_ops, cnt_skipped : Out(counter_width)
        Busy cycles; active inputs; lane operations executed (``L`` per accumulator
        update); zero inputs skipped (each would have cost its footprint's updates).
    """

    def __init__(self, lanes=4, *, lane_unit="add", stages=None, max_width=32, max_height=32,
                 max_channels=16, max_kernel=5, max_stride=2, weight_depth=1024,
                 acc_depth=1024, word_bits=32, max_steps=256, out_depth=8,
                 counter_width=32, flat_readout=False):
        if lane_unit not in ("add", "fma"):
            raise ValueError(f"lane_unit must be 'add' or 'fma', not {lane_unit!r}")
        if max_stride < 1 or max_stride & (max_stride - 1):
            raise ValueError(f"max_stride must be a power of two, not {max_stride}")
        if word_bits < 1 or word_bits & (word_bits - 1) or \
                (lane_unit == "fma" and word_bits < 16):
            raise ValueError(f"word_bits must be a power of two (>= 16 for MAC mode), "
                             f"not {word_bits}")
        self.lanes = int(lanes)
        self.lane_unit = lane_unit
        self.mac_support = lane_unit == "fma"
        unit_cls = FPFMA if self.mac_support else FPAdd
        self.stages = unit_cls.DEFAULT_STAGES if stages is None else int(stages)
        if self.stages < 1:
            raise ValueError("the lane unit needs at least one pipeline stage")
        self.P = self.stages
        self.max_width, self.max_height = int(max_width), int(max_height)
        self.max_channels, self.max_kernel = int(max_channels), int(max_kernel)
        self.max_stride = int(max_stride)
        self.weight_depth, self.acc_depth = int(weight_depth), int(acc_depth)
        self.word_bits, self.max_steps = int(word_bits), int(max_steps)
        self.out_depth = int(out_depth)
        if self.out_depth < 4:
            raise ValueError("out_depth must be at least 4")
        self.counter_width = int(counter_width)
        self.flat_readout = bool(flat_readout)
        # n_out ≤ n_groups·L, and every group holds at least one accumulator word
        self.config_layout = conv_config_layout(
            self.max_width, self.max_height, self.max_channels, self.max_kernel,
            self.max_stride, self.weight_depth, self.acc_depth, self.max_steps,
            self.mac_support, self.transposed,
            self.lanes * self.acc_depth if self.flat_readout else None)
        from .fp import weight_write_layout
        self.write_layout = weight_write_layout(self.lanes, self.weight_depth)
        self.out_layout = conv_current_layout(self.lanes, self.max_width, self.max_height,
                                              self.acc_depth, self.max_steps)
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
        if self.need_mask:
            members["need"] = In(stream.Signature(self.lanes))
        super().__init__(members)

    transposed = False
    """The transposed convolution of the BP engine (:class:`~.bp.ConvBPEngine`): analog
    inputs only (``δI``), the footprint turned around, and a ``need`` mask on the
    read-out."""

    @property
    def need_mask(self):
        """Whether the read-out applies a ``need`` stream: the BP engine's grouped
        read-out only (its need words follow the grouped word order; a flat read-out's
        consumer applies the mask itself)."""
        return self.transposed and not self.flat_readout

    def elaborate(self, platform):
        m = Module()
        L, P = self.lanes, self.P
        KM = self.max_kernel
        mac_support = self.mac_support
        aw = _clog2(self.weight_depth)
        cw_ = _clog2(self.acc_depth)
        xb = _clog2(self.max_width)
        yb = _clog2(self.max_height)
        sbits = _bits_for(self.max_steps)
        gbits = _bits_for(self.acc_depth)

        # ---- configuration --------------------------------------------------------------
        cfg = Signal(self.config_layout)
        running = Signal()
        m.d.comb += [self.cmd.ready.eq(~running), self.busy.eq(running)]
        start = self.cmd.valid & self.cmd.ready
        with m.If(start):
            m.d.sync += cfg.eq(self.cmd.payload)
        if self.transposed:
            mac, cmd_mac = Const(1, 1), Const(1, 1)
        elif mac_support:
            mac, cmd_mac = cfg.mac, self.cmd.payload.mac
        else:
            mac, cmd_mac = Const(0, 1), Const(0, 1)
        sl = cfg.stride_log2

        # ---- memories -----------------------------------------------------------------
        wmem = memory.Memory(shape=data.ArrayLayout(Float16, L), depth=self.weight_depth,
                             init=[])
        amem = memory.Memory(shape=data.ArrayLayout(Float16, L), depth=self.acc_depth,
                             init=[])
        m.submodules.wmem, m.submodules.amem = wmem, amem
        wwr, wrd = wmem.write_port(), wmem.read_port(domain="sync")
        awr, ard = amem.write_port(), amem.read_port(domain="sync")
        m.d.comb += [
            self.weights.ready.eq(1),
            wwr.addr.eq(self.weights.payload.addr),
            wwr.data.eq(self.weights.payload.data),
            wwr.en.eq(self.weights.valid),
        ]

        # ---- compressor over the feature map -------------------------------------------
        comp = EventCompressor(self.max_width, self.word_bits, mac_support,
                               max_rows=max(2, self.max_height),
                               max_planes=max(2, self.max_channels))
        m.submodules.compress = comp
        c_steps = Signal(sbits)             # steps whose end marker the compressor sent
        m.d.comb += [
            comp.n_in.eq(self.cmd.payload.in_w),           # sampled on restart
            comp.rows.eq(self.cmd.payload.in_h),
            comp.planes.eq(self.cmd.payload.in_c),
            comp.mac.eq(cmd_mac),
            comp.restart.eq(start),
            comp.i.payload.eq(self.inputs.payload),
            comp.i.valid.eq(self.inputs.valid & running & (c_steps != cfg.n_steps)),
            self.inputs.ready.eq(comp.i.ready & running & (c_steps != cfg.n_steps)),
        ]

        # E0: the event, registered
        e0 = Signal(comp.layout)
        e0_valid = Signal()
        e0_take = Signal()
        m.d.comb += comp.o.ready.eq(running & (~e0_valid | e0_take))
        with m.If(comp.o.valid & comp.o.ready):
            m.d.sync += [e0.eq(comp.o.payload), e0_valid.eq(1)]
            with m.If(comp.o.payload.end):
                m.d.sync += c_steps.eq(c_steps + 1)
        with m.Elif(e0_take):
            m.d.sync += e0_valid.eq(0)

        # plane walk: wb_c = w_base + c·K² for the event's channel c (one cycle per channel)
        c_cur = Signal(comp.plane_bits)
        wb_c = Signal(aw)
        walk = e0_valid & ~e0.end & (e0.plane != c_cur)

        # E1: footprint of the event — for every ky (kx): is y (x) an output, and which —
        # in a 2-entry FIFO, so that E0 advances on the FIFO's registered fill level and
        # not on the enumerator's (late) decisions
        fp_layout = data.StructLayout({
            "end": 1, "vy": KM, "vx": KM, "wb": aw, "value": 16,
            "y": data.ArrayLayout(cw_, KM),          # y · 2^xbits
            "x": data.ArrayLayout(xb, KM),
        })
        e1_fifo = fifo.SyncFIFO(width=fp_layout.size, depth=2)
        m.submodules.e1_fifo = e1_fifo
        e1 = data.View(fp_layout, e1_fifo.r_data)
        e1_valid = e1_fifo.r_rdy
        e1_take = Signal()
        m.d.comb += e1_fifo.r_en.eq(e1_take)
        e1_end, e1_vy, e1_vx, e1_wb, e1_value = e1.end, e1.vy, e1.vx, e1.wb, e1.value
        e1_y = [e1.y[k] for k in range(KM)]
        e1_x = [e1.x[k] for k in range(KM)]
        m.d.comb += e0_take.eq(e0_valid & ~walk & e1_fifo.w_rdy)
        with m.If(e0_valid & walk):
            m.d.sync += [c_cur.eq(c_cur + 1), wb_c.eq(wb_c + cfg.w_kk)]

        # per layer: the limits scaled by the stride, the stride's low-bit mask, and the
        # kernel offsets in use (keeps variable shifts off the footprint's compare path)
        lim_y = Signal(yb + 4)
        lim_x = Signal(xb + 4)
        low_mask = Signal(3)
        k_used = Signal(KM)
        # (transposed: the output position itself is compared, unscaled)
        scale = 0 if self.transposed else sl
        m.d.sync += [lim_y.eq(cfg.out_h << scale), lim_x.eq(cfg.out_w << scale),
                     low_mask.eq(Mux(sl == 0, 0, Mux(sl == 1, 1, Mux(sl == 2, 3, 7)))),
                     k_used.eq(Cat(*(k < cfg.kernel for k in range(KM))))]

        def footprint(pos, k, limit, name):
            """(valid, out) for input position ``pos`` and kernel offset ``k``:
            ``t = pos + p − k`` must be ≥ 0, a multiple of the stride and ``< limit·s``
            (output ``t/s``); transposed, ``t = pos·s − p + k`` must be ≥ 0 and
            ``< limit`` (output ``t``)."""
            t = Signal(signed(max(yb, xb) + 5), name=f"{name}{k}")
            if self.transposed:
                m.d.comb += t.eq((pos << sl) - cfg.pad + k)
                return (t >= 0) & (t < limit) & k_used[k], t.as_unsigned()
            m.d.comb += t.eq(pos + cfg.pad - k)
            low = t.as_unsigned()[:3] & low_mask
            out = (t.as_unsigned() >> sl)
            valid = (t >= 0) & (low == 0) & (t < limit) & k_used[k]
            return valid, out

        fp_in = Signal(fp_layout)
        m.d.comb += [fp_in.end.eq(e0.end), fp_in.wb.eq(wb_c),
                     e1_fifo.w_data.eq(fp_in), e1_fifo.w_en.eq(e0_take)]
        if mac_support:
            m.d.comb += fp_in.value.eq(Mux(mac, e0.value, ONE))
        for k in range(KM):
            vy, y = footprint(e0.row, k, lim_y, "ty")
            vx, x = footprint(e0.index, k, lim_x, "tx")
            m.d.comb += [fp_in.vy[k].eq(vy), fp_in.vx[k].eq(vx),
                         fp_in.y[k].eq(y << cfg.out_xbits), fp_in.x[k].eq(x)]
        with m.If(e0_take & e0.end):
            m.d.sync += [c_cur.eq(0), wb_c.eq(cfg.w_base)]

        # ---- E2: enumeration (ky ascending, kx ascending, group) ------------------------
        # state of the event being scattered
        busy_ev = Signal()                  # an event is being enumerated
        vy_rest = Signal(KM)                # rows still to do (current one included)
        vx_all = Signal(KM)
        vx_rest = Signal(KM)
        ys = [Signal(cw_, name=f"yrow{k}") for k in range(KM)]
        xs = [Signal(xb, name=f"x{k}") for k in range(KM)]
        ev_wb = Signal(aw)
        ev_value = Signal(16)
        g = Signal(gbits)
        acc_goff = Signal(cw_)
        w_goff = Signal(aw)

        ky = Signal(range(KM + 1))
        kx = Signal(range(KM + 1))
        m.d.comb += [ky.eq(trailing_zeros(vy_rest)), kx.eq(trailing_zeros(vx_rest))]
        yrow = Signal(cw_)
        xcol = Signal(xb)
        # (word_select, not Switch: see compress.py)
        m.d.comb += [yrow.eq(Cat(*ys).word_select(ky, cw_)),
                     xcol.eq(Cat(*xs).word_select(kx, xb))]
        # ky·K by shifts and adds (K is a runtime value)
        kyk = Signal(aw)
        m.d.comb += kyk.eq(sum(Mux(ky[b], cfg.kernel << b, 0)
                               for b in range(len(ky))))

        # candidate update (registered, then hazard-checked)
        cand_valid = Signal()
        cand_acc = Signal(cw_)
        cand_w = Signal(aw)
        cand_value = Signal(16)
        issue = Signal()
        cand_free = ~cand_valid | issue
        more_g = g != cfg.n_groups - 1
        last_kx = (vx_rest & (vx_rest - 1)) == 0
        last_ky = (vy_rest & (vy_rest - 1)) == 0
        gen = busy_ev & cand_free
        with m.If(gen):
            m.d.sync += [
                cand_valid.eq(1),
                cand_acc.eq(acc_goff + yrow + xcol),
                cand_w.eq(w_goff + ev_wb + kyk + kx),
                cand_value.eq(ev_value),
            ]
            with m.If(more_g):
                m.d.sync += [g.eq(g + 1), acc_goff.eq(acc_goff + cfg.acc_gstride),
                             w_goff.eq(w_goff + cfg.w_gstride)]
            with m.Else():
                m.d.sync += [g.eq(0), acc_goff.eq(0), w_goff.eq(0)]
                with m.If(~last_kx):
                    m.d.sync += vx_rest.eq(vx_rest & (vx_rest - 1))
                with m.Elif(~last_ky):
                    m.d.sync += [vy_rest.eq(vy_rest & (vy_rest - 1)), vx_rest.eq(vx_all)]
                with m.Else():
                    m.d.sync += busy_ev.eq(0)
        with m.Elif(issue):
            m.d.sync += cand_valid.eq(0)

        # load the next event into the enumerator
        drained = Signal()
        readout = Signal()
        ro_done = Signal()
        can_load = ~busy_ev | (gen & ~more_g & last_kx & last_ky)
        load = e1_valid & ~e1_end & can_load
        empty_fp = (e1_vy == 0) | (e1_vx == 0)
        m.d.comb += e1_take.eq(load | (e1_valid & e1_end & ro_done))
        with m.If(load):
            m.d.sync += [busy_ev.eq(~empty_fp), vy_rest.eq(e1_vy), vx_all.eq(e1_vx),
                         vx_rest.eq(e1_vx), ev_wb.eq(e1_wb), ev_value.eq(e1_value),
                         g.eq(0), acc_goff.eq(0), w_goff.eq(0)]
            m.d.sync += [ys[k].eq(e1_y[k]) for k in range(KM)]
            m.d.sync += [xs[k].eq(e1_x[k]) for k in range(KM)]

        # ---- hazard check and issue ---------------------------------------------------
        W = P + 2                           # cycles an issued accumulator stays in flight
        fl_valid = Signal(W)
        fl_addr = [Signal(cw_, name=f"fl_addr{k}") for k in range(W)]
        hazard = Cat(*(fl_valid[k] & (fl_addr[k] == cand_acc) for k in range(W))).any()
        m.d.comb += issue.eq(cand_valid & ~hazard)      # (never during a read-out: drained)
        m.d.sync += fl_valid.eq(Cat(issue, fl_valid[:-1]))
        m.d.sync += fl_addr[0].eq(cand_acc)
        m.d.sync += [fl_addr[k].eq(fl_addr[k - 1]) for k in range(1, W)]
        in_flight = Signal(range(W + P + 8))

        # ---- read-out (after a step's end marker, once nothing is in flight) -----------
        ro_g = Signal(gbits)
        ro_y = Signal(yb + 1)
        ro_x = Signal(xb + 1)
        ro_gbase = Signal(cw_)
        ro_addr = Signal(cw_)
        ro_issue = Signal()
        t_cur = Signal(sbits)
        ofifo = fifo.SyncFIFO(width=self.out_layout.size, depth=self.out_depth)
        m.submodules.ofifo = ofifo
        # read-out reads not yet past U3, each counted as a FIFO word to come (flat: a
        # word per L reads, so the count is conservative)
        ro_pending = Signal(range(4))
        flat = self.flat_readout
        if flat:                            # flat: a map per channel, its lane of the group
            ro_l = Signal(range(L))
            ro_co = Signal(len(cfg.n_out))
            last_ch = ro_co == cfg.n_out - 1
            ro_clear = (ro_l == L - 1) | last_ch    # the word's last lane is being read
        else:
            last_ch = ro_g == cfg.n_groups - 1
            ro_clear = Const(1, 1)

        def ro_rewind():
            return [ro_x.eq(0), ro_y.eq(0), ro_g.eq(0), ro_gbase.eq(0), ro_addr.eq(0)] + \
                ([ro_l.eq(0), ro_co.eq(0)] if flat else [])

        # need mask (BP): one L-bit word per read-out word, in read-out order
        if self.need_mask:
            nfifo = fifo.SyncFIFO(width=L, depth=4)
            m.submodules.nfifo = nfifo
            m.d.comb += [nfifo.w_data.eq(self.need.payload),
                         nfifo.w_en.eq(self.need.valid & running & cfg.need),
                         self.need.ready.eq(nfifo.w_rdy & running & cfg.need),
                         nfifo.r_en.eq(ro_issue & cfg.need)]
            need_ok = ~cfg.need | nfifo.r_rdy
            ro_need = Mux(cfg.need, nfifo.r_data, (1 << L) - 1)
        else:
            need_ok, ro_need = Const(1, 1), Const((1 << L) - 1, L)
        m.d.comb += [
            drained.eq((in_flight == 0) & ~cand_valid & ~busy_ev),
            readout.eq(e1_valid & e1_end & drained),
            ro_issue.eq(readout & ~ro_done & need_ok
                        & (ofifo.level + ro_pending < self.out_depth)),
        ]
        ro_last = (ro_x == cfg.out_w - 1) & (ro_y == cfg.out_h - 1) & last_ch

        def next_group():
            nxt_g = ro_gbase + cfg.acc_gstride
            m.d.sync += [ro_g.eq(ro_g + 1), ro_gbase.eq(nxt_g), ro_addr.eq(nxt_g)]

        with m.If(ro_issue):
            with m.If(ro_x != cfg.out_w - 1):
                m.d.sync += [ro_x.eq(ro_x + 1), ro_addr.eq(ro_addr + 1)]
            with m.Elif(ro_y != cfg.out_h - 1):
                nxt_row = ro_addr - ro_x + (Const(1, 1) << cfg.out_xbits)
                m.d.sync += [ro_x.eq(0), ro_y.eq(ro_y + 1), ro_addr.eq(nxt_row)]
            with m.Else():                  # end of a map
                m.d.sync += [ro_x.eq(0), ro_y.eq(0)]
                if flat:                    # next channel: next lane, or the next group
                    m.d.sync += ro_co.eq(ro_co + 1)
                    with m.If(ro_l == L - 1):
                        m.d.sync += ro_l.eq(0)
                        next_group()
                    with m.Else():
                        m.d.sync += [ro_l.eq(ro_l + 1), ro_addr.eq(ro_gbase)]
                else:
                    next_group()
            with m.If(ro_last):
                m.d.sync += ro_done.eq(1)
        with m.If(e1_valid & e1_end & ro_done):   # step finished (its end marker is taken)
            m.d.sync += [ro_done.eq(0), t_cur.eq(t_cur + 1)] + ro_rewind()

        # ---- U1: memory reads ------------------------------------------------------------
        m.d.comb += [
            ard.addr.eq(Mux(readout, ro_addr, cand_acc)), ard.en.eq(1),
            wrd.addr.eq(cand_w), wrd.en.eq(1),
        ]
        meta_fields = {"op": 1, "ro": 1, "addr": cw_, "value": 16, "x": xb, "y": yb,
                       "g": gbits, "step": sbits, "need": L}
        if flat:                            # the lane to take, and the step's last value
            meta_fields.update(lane=len(ro_l), last=1)
        meta_layout = data.StructLayout(meta_fields)
        u1 = Signal(meta_layout)
        m.d.comb += [u1.op.eq(issue), u1.ro.eq(ro_issue), u1.addr.eq(cand_acc),
                     u1.value.eq(cand_value), u1.x.eq(ro_x), u1.y.eq(ro_y), u1.g.eq(ro_g),
                     u1.step.eq(t_cur), u1.need.eq(ro_need)]
        if flat:
            m.d.comb += [u1.lane.eq(ro_l), u1.last.eq(ro_last)]
        u2 = Signal(meta_layout)
        u3 = Signal(meta_layout)
        u3_acc = Signal(data.ArrayLayout(Float16, L))
        u3_w = Signal(data.ArrayLayout(Float16, L))
        m.d.sync += [u2.eq(u1), u3.eq(u2), u3_acc.eq(ard.data), u3_w.eq(wrd.data)]

        # ---- U3: lanes; write-back ----------------------------------------------------------
        unit_cls = FPFMA if mac_support else FPAdd
        units = []
        for lane in range(L):
            u = unit_cls(self.stages, tag_width=(cw_ + 1) if lane == 0 else 0)
            m.submodules[f"lane{lane}"] = u
            units.append(u)
            p = u.i.payload
            m.d.comb += u.i.valid.eq(u3.op)
            if mac_support:
                m.d.comb += [p.a.eq(u3_w[lane]), p.b.eq(u3.value), p.c.eq(u3_acc[lane]),
                             p.neg_prod.eq(0), p.neg_c.eq(0)]
            else:
                m.d.comb += [p.a.eq(u3_acc[lane]), p.b.eq(u3_w[lane]), p.sub.eq(0)]
        m.d.comb += units[0].i.payload.tag.eq(Cat(u3.addr, u3.op))
        wb_tag = units[0].o.payload.tag
        wb = units[0].o.valid & wb_tag[-1]
        result = Signal(data.ArrayLayout(Float16, L))
        for lane in range(L):
            m.d.comb += result[lane].eq(units[lane].o.payload.z)
        with m.If(ro_issue & ro_clear):     # read-out: clear the word as it is read
            m.d.comb += [awr.addr.eq(ro_addr), awr.data.eq(0), awr.en.eq(1)]
        with m.Else():
            m.d.comb += [awr.addr.eq(wb_tag[:cw_]), awr.data.eq(result), awr.en.eq(wb)]
        m.d.sync += in_flight.eq(in_flight + issue - wb)

        # read-out words into the FIFO
        word = Signal(self.out_layout)
        if flat:
            # pack the selected lanes, L to a word: pk holds the word's values so far and
            # is +0 from a word's push on, so a step's short last word has +0 lanes
            pk = Signal(data.ArrayLayout(Float16, L))
            pk_n = Signal(range(L))         # next position in the word
            val = u3_acc[u3.lane]
            push = u3.ro & ((pk_n == L - 1) | u3.last)
            for lane in range(L):
                m.d.comb += word.value[lane].eq(Mux(pk_n == lane, val, pk[lane]))
            with m.If(push):
                m.d.sync += [pk.eq(0), pk_n.eq(0)]
            with m.Elif(u3.ro):
                m.d.sync += [pk.eq(word.value), pk_n.eq(pk_n + 1)]
            m.d.comb += [word.step.eq(u3.step), ofifo.w_data.eq(word), ofifo.w_en.eq(push)]
        else:
            for lane in range(L):           # outputs not needed are +0 (BP contract)
                m.d.comb += word.value[lane].eq(Mux(u3.need[lane], u3_acc[lane], POS_ZERO))
            m.d.comb += [word.x.eq(u3.x), word.y.eq(u3.y),
                         word.group.eq(u3.g), word.step.eq(u3.step),
                         ofifo.w_data.eq(word), ofifo.w_en.eq(u3.ro)]
        m.d.sync += ro_pending.eq(ro_pending + ro_issue - u3.ro)
        m.d.comb += [self.currents.payload.eq(ofifo.r_data),
                     self.currents.valid.eq(ofifo.r_rdy),
                     ofifo.r_en.eq(self.currents.ready)]

        # ---- start and completion ------------------------------------------------------
        done = running & (t_cur == cfg.n_steps) & (ro_pending == 0) & (ofifo.level == 0)
        with m.If(start):
            m.d.sync += [running.eq(1), c_steps.eq(0), t_cur.eq(0), e0_valid.eq(0),
                         busy_ev.eq(0), cand_valid.eq(0), ro_done.eq(0),
                         c_cur.eq(0), wb_c.eq(self.cmd.payload.w_base)] + ro_rewind()
        with m.Elif(done):
            m.d.sync += running.eq(0)

        # ---- counters ------------------------------------------------------------------
        cwid = self.counter_width
        busy_c, events_c, ops_c, skipped_c = (Signal(cwid, name=n) for n in
                                              ("busy_c", "events_c", "ops_c", "skipped_c"))
        # zero inputs: per step, C·H·W − events (at the end marker)
        step_events = Signal(_bits_for(self.max_width * self.max_height * self.max_channels))
        step_inputs = cfg.n_inputs
        ev_in = comp.o.valid & comp.o.ready
        with m.If(ev_in):
            with m.If(comp.o.payload.end):
                m.d.sync += [step_events.eq(0),
                             skipped_c.eq(skipped_c + step_inputs - step_events)]
            with m.Else():
                m.d.sync += step_events.eq(step_events + 1)
        m.d.sync += [busy_c.eq(busy_c + running),
                     events_c.eq(events_c + (ev_in & ~comp.o.payload.end)),
                     ops_c.eq(ops_c + Mux(u3.op, L, 0))]
        with m.If(self.cnt_clear):
            m.d.sync += [busy_c.eq(0), events_c.eq(0), ops_c.eq(0), skipped_c.eq(0)]
        with m.If(start):
            m.d.sync += step_events.eq(0)
        m.d.comb += [self.cnt_busy.eq(busy_c), self.cnt_events.eq(events_c),
                     self.cnt_ops.eq(ops_c), self.cnt_skipped.eq(skipped_c)]
        return m
