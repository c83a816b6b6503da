"""The Trident core: a sequencer that fetches layer descriptors (docs/descriptors.md) over
the memory port and runs them on the engines, bit-exact with the golden device model
(``trident.golden.hw.program``).  See docs/core.md.
"""

import inspect

from amaranth.hdl import (Assert, Cat, Format, Module, Mux, Print, ResetInserter, Signal,
                          Value, unsigned)
from amaranth.lib import data, fifo, memory, wiring
from amaranth.lib.wiring import Out

from ...golden.hw import descriptors as D
from ..engines import FPEngine, WGEngine
from ..engines.bp import ConvBPEngine
from ..engines.conv import ConvEngine
from ..engines.wg_conv import ConvWGEngine
from ..engines.update import UpdateUnit
from ..neuron import NeuronKind, NeuronRegisters, NeuronUnit, SurrogateKind
from .dma import DMA
from .glue import (BPWeightLoader, FPWeightLoader, GradScatter, HalfScaler, LaneGather,
                   LaneSplit, RowReplay, StreamFork)
from .onehot import OneHotFSM
from .pipes import BackwardPipe, ForwardPipe, neuron_tag_width
from .pool import PoolRouter, SpikePool
from .reframe import MapReframer
from .ports import WORD_BITS, ControlSignature, MemoryPortSignature

__all__ = ["TridentCore", "core_params", "descriptor_layout", "counter_layout", "COUNTERS"]

Opcode, LayerType, ErrorCode = D.Opcode, D.LayerType, D.ErrorCode

#: The descriptor as the sequencer sees it, built from the format's field table.
descriptor_layout = data.FlexibleLayout(WORD_BITS * D.DESC_WORDS, {
    f.name: data.Field(unsigned(f.width), WORD_BITS * f.word + f.offset) for f in D.FIELDS})

#: The sequencer's states (docs/core.md §2).
SEQUENCER_STATES = ("IDLE", "PC", "FETCH", "MUL", "SETTLE", "CHECK", "PARAM", "DISPATCH",
                    "TABLE", "FP_LOAD", "FP_RUN", "BP_LOAD", "BP_RUN", "BPWG", "BPN", "WG",
                    "UPDATE", "NEXT", "STOP")

#: Names of the performance counters, in ``counter_layout`` order (docs/core.md §6).
COUNTERS = ("fp_busy", "bp_busy", "wg_busy", "neuron_busy", "update_busy", "dma_busy",
            "fp_ops", "fp_skipped", "bp_ops", "bp_skipped", "wg_ops", "wg_skipped",
            "words_read", "words_written", "descriptors")


def counter_layout(width):
    """The core's performance counters (``counters`` member), cleared by ``start``.

    ``fp_busy``, ``bp_busy`` (the shared FP/BP engine, by opcode), ``wg_busy``,
    ``neuron_busy`` (the neuron pipes hold items), ``update_busy``, ``dma_busy`` (a DMA
    channel has work): cycles.  ``fp_ops``/``fp_skipped``, ``bp_ops``/``bp_skipped``: lane
    operations executed / skipped for a zero input (the engine's own counts);
    ``wg_ops``/``wg_skipped``: exact-accumulator lane terms / rows skipped (all ``δI`` of the
    tile ±0).  ``words_read``, ``words_written``: DRAM words (docs/descriptors.md §7);
    ``descriptors``: fetched.
    """
    return data.StructLayout({n: width for n in COUNTERS})


def core_params(**params) -> D.CoreParams:
    """The :class:`~trident.golden.hw.descriptors.CoreParams` of ``TridentCore(**params)``
    (without building it): what the compiler and the golden device must assume."""
    p = {k: v.default for k, v in inspect.signature(TridentCore.__init__).parameters.items()
         if v.default is not inspect.Parameter.empty}
    p.update(params)
    dram = (1 << p["addr_width"]) - 1 if p["dram_words"] is None else p["dram_words"]
    kernel, stride, pool = (CONV_KERNEL, CONV_STRIDE, CONV_POOL) if p["conv"] else (1, 1, 1)
    return D.CoreParams(lanes=p["lanes"], weight_depth=p["weight_depth"],
                        state_depth=p["state_depth"], acc_depth=_acc_words(p["max_inputs"]),
                        wg_groups=p["wg_groups"],
                        max_inputs=p["max_inputs"], max_steps=p["max_steps"],
                        max_batch=p["max_batch"], max_kernel=kernel, max_stride=stride,
                        max_pool=pool, conv=p["conv"], mac=p["mac"], dram_words=dram)


#: The convolution limits of a core built with ``conv=True``: kernel, stride (a power of two:
#: the engines shift), max-pool window.
CONV_KERNEL, CONV_STRIDE, CONV_POOL = 5, 2, 4


def _conv_map_words(state_depth, lanes):
    """Words of ``L`` lanes that hold any tile of maps the checks let through (``maps·h·w ≤
    state_depth``) with rows padded to a power of two: the conv engines' accumulators and the
    conv WG engine's δ banks."""
    most = 1
    for maps in range(1, state_depth + 1):
        for w in range(1, state_depth // maps + 1):
            h = state_depth // (maps * w)
            most = max(most, -(-maps // lanes) * h * (1 << (w - 1).bit_length()))
    return 1 << (most - 1).bit_length()


def _acc_words(max_inputs):
    """WG accumulator words (``L`` lanes each) of a core: the WG engine's memory."""
    return 1 << (max_inputs - 1).bit_length()


def _ceil_div(value, log2):
    return (value + (1 << log2) - 1) >> log2


class TridentCore(wiring.Component):
    """One Trident core: FC layers, the readout and, built with ``conv``, conv layers with max
    pooling (FP, BP, BPN, WG, BPWG, UPDATE descriptors).

    Parameters
    ----------
    lanes : int
        ``L`` (a power of two ≥ 2): lanes of the FP/BP engine, WG tile width.
    weight_depth : int
        FP/BP engine weight scratchpad words (``L`` binary16 each).
    state_depth : int
        Neuron state memory (``V`` / ``δU``): the largest output tile.
    max_inputs : int
        Longest input row of the FP/BP engine and the WG tile.
    max_steps, max_batch : int
        Largest ``T`` and ``N``.
    mac : bool
        Analog (MAC) first-layer input: FP in MAC mode, WG with analog inputs.
    conv : bool
        Convolution layers (kernel ≤ 5, stride 1 or 2, max-pool window ≤ 4): the conv FP, BP
        and WG engines, the map reframers and the pooling units (docs/core.md §2).
    addr_width : int
        Memory-port word-address width.
    dram_words : int, optional
        Size of DRAM in words (default ``2^addr_width − 1``); nothing at or past it is
        touched.
    wg_groups : int
        Most groups of ``L`` outputs in one WG tile (the WG engine's delta buffer; a power
        of two).  The accumulators hold ``acc_depth = 2^⌈log2 max_inputs⌉`` words; the
        compiler tiles a WG so that ``⌈out_cnt/L⌉ ≤ wg_groups`` and
        ``⌈out_cnt/L⌉·in_cnt ≤ acc_depth``, and the engine computes the whole tile in one
        pass over its inputs.
    fork_depth : int
        Words of slack between the BP and the WG engine in a ``BPWG`` (the ``StreamFork``'s
        FIFO on each branch).
    counter_width : int
        Width of the performance counters.
    dma_run : int
        Read words one DMA read channel issues in a row before the next channel's turn
        (1: word-by-word round robin; more keeps each tensor's consecutive words together
        for a DRAM port that forms bursts, :mod:`trident.rtl.soc.axi`).  Timing only.

    Members
    -------
    mem : Out(MemoryPortSignature(addr_width))
    ctrl : Out(ControlSignature(addr_width))
    counters : Out(counter_layout(counter_width))
    overflow : Out(1)
        A WG of this program wrote a non-finite gradient (cleared by ``start`` unless
        ``ctrl.keep``).
    """

    def __init__(self, *, lanes=4, weight_depth=1024, state_depth=256, max_inputs=1024,
                 max_steps=255, max_batch=256, mac=True, conv=False, addr_width=24,
                 dram_words=None, wg_groups=32, fork_depth=32, counter_width=32, dma_run=1):
        if lanes < 2 or lanes & (lanes - 1):
            raise ValueError("lanes must be a power of two ≥ 2")
        self.lanes = lanes
        self.weight_depth = weight_depth
        self.state_depth = state_depth
        self.max_inputs = max_inputs
        self.max_steps = max_steps
        self.max_batch = max_batch
        self.mac = mac
        self.conv = conv
        self.addr_width = addr_width
        self.dram_words = (1 << addr_width) - 1 if dram_words is None else dram_words
        if self.dram_words >= 1 << addr_width:
            raise ValueError("dram_words must be below 2^addr_width")
        if wg_groups < 1 or wg_groups & (wg_groups - 1):
            raise ValueError("wg_groups must be a power of two")
        self.wg_groups = wg_groups
        self.acc_depth = _acc_words(max_inputs)
        self.fork_depth = fork_depth
        self.counter_width = counter_width
        self.dma_run = dma_run
        self.count_bits = 24
        super().__init__({
            "mem": Out(MemoryPortSignature(addr_width)),
            "ctrl": Out(ControlSignature(addr_width)),
            "counters": Out(counter_layout(counter_width)),
            "overflow": Out(1),
        })

    def core_params(self) -> D.CoreParams:
        """What the compiler and the golden device must assume about this core."""
        return core_params(lanes=self.lanes, weight_depth=self.weight_depth,
                           state_depth=self.state_depth, max_inputs=self.max_inputs,
                           max_steps=self.max_steps, max_batch=self.max_batch, mac=self.mac,
                           conv=self.conv,
                           addr_width=self.addr_width, dram_words=self.dram_words,
                           wg_groups=self.wg_groups, counter_width=self.counter_width)

    # ------------------------------------------------------------------------------------
    def _slot_checks(self, m, d, prod, el, slot_k):
        """The per-slot part of :func:`~trident.golden.hw.descriptors.validate`, one slot
        per cycle: the sequencer walks ``slot_k`` over ``a`` … ``e`` and one step past; the
        flags ``(inconsistent, out_of_dram, misaligned)`` are final the cycle after it
        leaves ``len(SLOTS)``.  One set of adders and comparators serves every (opcode,
        slot) pair (18 of them checked side by side cost more logic than the rest of the
        sequencer); a value past what a check can tell apart saturates, and a saturated
        value fails a check of higher priority (a 16-bit ``words`` or ``pitch`` field never
        matches a count beyond 2²¹, nor a span beyond DRAM its address range)."""
        op = d.op
        readout = d.layer == LayerType.READOUT
        # slot → (kind, output, lo, count, full) in elements; kind: 0 weights, 1 spikes,
        # 2 half (docs/descriptors.md §3, golden ``_used_slots``); FP's d is unused in the
        # readout
        W, S, H = 0, 1, 2
        x_kind = Mux(~d.analog, S, H)
        weights_in = (el["in_lo_kk"], el["in_cnt_kk"], el["row_w"])   # a tile of input columns
        x_tile = (el["x_lo"], el["x_cnt"], el["x_full"])
        outs = (el["o_lo"], el["o_cnt"], el["o_full"])
        pooled = (el["p_lo"], el["p_cnt"], el["p_full"])
        table = {
            Opcode.FP: {"a": (W, 0, 0, el["row_w"], el["row_w"]),
                        "b": (x_kind, 0, 0, el["x_full"], el["x_full"]),
                        "c": (H, 1, *outs),
                        "d": (S, 1, *pooled)},
            Opcode.BP: {"a": (W, 0, *weights_in),
                        "b": (H, 0, 0, el["o_full"], el["o_full"]),
                        "c": (H, 1, *x_tile)},
            Opcode.BPN: {"b": (H, 0, *pooled),
                         "c": (H, 0, *outs),
                         "d": (H, 1, *outs)},
            Opcode.WG: {"a": (W, 1, *weights_in),
                        "b": (x_kind, 0, *x_tile),
                        "c": (H, 0, *outs)},
            # BP's slots, then WG's gradient tile (d) and input (e); its δI is slot b
            Opcode.BPWG: {"a": (W, 0, *weights_in),
                          "b": (H, 0, 0, el["o_full"], el["o_full"]),
                          "c": (H, 1, *x_tile),
                          "d": (W, 1, *weights_in),
                          "e": (x_kind, 0, *x_tile)},
        }
        span_bits = self.addr_width + 1      # saturated: beyond DRAM whatever is added
        count_bits = 22                      # saturated: ceil(count / 32) > 2¹⁶ − 1
        np_bits = len(d.a_tstride) + 1       # saturated: above every tstride

        def sat(value, width):
            value = Value.cast(value)
            if len(value) <= width:
                return value
            return Mux(value[width:].any(), (1 << width) - 1, value[:width])

        # ---- select: the slot's fields and its role in this opcode, registered
        used = Signal()
        first = Signal()                     # the walk's first slot: the flags start afresh
        kind = Signal(2)
        per_sample = Signal()                # one row per sample (weights: one in all)
        many_rows = Signal()                 # a weight slot of more than one row
        lo, count, full = (Signal(count_bits, name=f"slot_{n}") for n in ("lo", "count", "full"))
        addr, span, tspan, words = (Signal(span_bits, name=f"slot_{n}")
                                    for n in ("addr", "span", "tspan", "words"))
        raw_words, pitch = Signal(16), Signal(16)
        tstride, np = Signal(len(d.a_tstride)), Signal(np_bits)
        m.d.sync += [used.eq(0), first.eq(slot_k == 0)]
        with m.Switch(slot_k):
            for k, s in enumerate(D.SLOTS):
                f = {n: getattr(d, f"{s}_{n}") for n in ("addr", "pitch", "words", "tstride")}
                with m.Case(k):
                    m.d.sync += [addr.eq(sat(f["addr"], span_bits)),
                                 words.eq(sat(f["words"], span_bits)), raw_words.eq(f["words"]),
                                 pitch.eq(f["pitch"]), tstride.eq(f["tstride"]),
                                 np.eq(sat(prod[f"{s}_np"], np_bits)),
                                 tspan.eq(sat(prod[f"{s}_tspan"], span_bits))]
                    with m.Switch(op):
                        for o, slots in table.items():
                            if s not in slots:
                                continue
                            o_kind, output, o_lo, o_count, o_full = slots[s]
                            # slot a is the weight slot of every opcode that uses it, and d
                            # of BPWG
                            wspan = {"a": "a_wspan",
                                     "d": "d_wspan" if o == Opcode.BPWG else "d_span"}
                            rows = d.out_total if o in (Opcode.BP, Opcode.BPWG) else d.out_cnt
                            is_w = isinstance(o_kind, int) and o_kind == W
                            with m.Case(o):
                                m.d.sync += [
                                    used.eq(~readout if (o, s) == (Opcode.FP, "d") else 1),
                                    kind.eq(o_kind),
                                    per_sample.eq(1 if is_w else (readout if output
                                                                  else f["tstride"] == 0)),
                                    many_rows.eq(rows > 1),
                                    lo.eq(sat(o_lo, count_bits)),
                                    count.eq(sat(o_count, count_bits)),
                                    full.eq(sat(o_full, count_bits)),
                                    span.eq(sat(prod[wspan.get(s, f"{s}_span")], span_bits))]

        # ---- check the registered slot, and fold its verdict into the flags
        def row_words(count, kind):
            return Mux(kind == S, _ceil_div(count, 5), _ceil_div(count, 1))

        weights = kind == W
        bad = raw_words != row_words(count, kind)
        bad |= weights & many_rows & (pitch < row_words(full, H))
        bad |= ~weights & (pitch < row_words(full, kind))
        bad |= ~weights & per_sample & (tstride != 0)
        bad |= ~weights & ~per_sample & (d.steps > 1) & (tstride < np)
        end_addr = addr + span + words + Mux(per_sample, 0, tspan)
        unit = Mux(kind == S, 31, 1)
        end = lo + count
        mis = ((lo & unit) != 0) | (((end & unit) != 0) & (end != full))
        flags = Cat(bad, end_addr > self.dram_words, mis) & used.replicate(3)
        verdict = Signal(3)
        m.d.sync += verdict.eq(Mux(first, flags, verdict | flags))
        return verdict[0], verdict[1], verdict[2]

    def _validate(self, m, d, prod, el, slot_k):
        """The error code of descriptor ``d``: :func:`~trident.golden.hw.descriptors.validate`
        in its order.  ``el`` holds the element counts of the slots' rows (products of the
        fields and the planes, or the fields themselves without conv); the per-slot checks
        take the cycles of the walk over ``slot_k`` (:meth:`_slot_checks`)."""
        op = d.op
        is_op = {o: op == o for o in Opcode}
        readout = d.layer == LayerType.READOUT
        dram = self.dram_words
        groups_out = _ceil_div(d.out_cnt, self.lanes.bit_length() - 1)
        slot_bad, slot_out_of_dram, misaligned = self._slot_checks(m, d, prod, el, slot_k)
        flat = (d.in_h, d.in_w, d.out_h, d.out_w, d.pool_h, d.pool_w, d.kernel, d.stride, d.pool,
                d.kk, d.in_plane, d.out_plane, d.pool_plane)
        geometry_bad = Cat(*[f != 1 for f in flat]).any() | (d.padding != 0)
        if self.conv:
            # out = (in + 2p − K) div stride + 1 (stride 1 or 2: SIZE_LIMIT came first),
            # pooled = out div pool (as pool·pooled ≤ out < pool·pooled + pool), planes, K²
            def conv_bad(axis, size_in, size_out, size_pool, pool_prod):
                span = Signal(10, name=f"span_{axis}")
                m.d.comb += span.eq(size_in + (d.padding << 1) - d.kernel)
                spanned = size_in + (d.padding << 1) < d.kernel
                return (spanned | (size_out != (span >> (d.stride == 2)) + 1)
                        | (size_pool == 0) | (pool_prod > size_out)
                        | (size_out - pool_prod >= d.pool))
            conv_geometry_bad = (
                conv_bad("h", d.in_h, d.out_h, d.pool_h, prod["ph_pool"])
                | conv_bad("w", d.in_w, d.out_w, d.pool_w, prod["pw_pool"])
                | (d.kk != prod["kk2"]) | (d.in_plane != prod["in_plane"])
                | (d.out_plane != prod["out_plane"]) | (d.pool_plane != prod["pool_plane"]))
            geometry_bad = Mux(d.layer == LayerType.CONV, conv_geometry_bad, geometry_bad)
        tiles_bad = ((is_op[Opcode.FP] | is_op[Opcode.BPN]) & ((d.in_lo != 0) | (d.in_cnt != d.in_total)))
        bp_op = is_op[Opcode.BP] | is_op[Opcode.BPWG]
        wg_op = is_op[Opcode.WG] | is_op[Opcode.BPWG]
        tiles_bad |= bp_op & ((d.out_lo != 0) | (d.out_cnt != d.out_total))
        tiles_bad |= (d.out_lo + d.out_cnt > d.out_total) | (d.in_lo + d.in_cnt > d.in_total)
        tiles_bad |= bp_op & readout & (d.b_tstride != 0)
        tiles_bad |= bp_op & ~readout & (d.steps > 1) & (d.b_tstride == 0)
        param_bad = d.param_addr + D.PARAM_WORDS > dram

        neuron_op = (is_op[Opcode.FP] | is_op[Opcode.BPN]) & ~readout
        sizes = (d.steps, d.batch, d.out_cnt, d.in_cnt, d.out_total, d.in_total, d.kernel,
                 d.stride, d.pool, d.in_h, d.in_w, d.out_h, d.out_w, d.kk, d.in_plane,
                 d.out_plane)
        kernel, stride, pool = (CONV_KERNEL, CONV_STRIDE, CONV_POOL) if self.conv else (1, 1, 1)
        limits = ((d.steps > self.max_steps) | (d.batch > self.max_batch) | (d.kernel > kernel)
                  | (d.stride > stride) | (d.pool > pool) | (d.padding >= d.kernel))
        # on chip: FP's and BPN's neurons, WG's δI row, BP's δS tile (BPWG: both)
        state_bad = ((Mux(bp_op, el["x_cnt"], el["o_cnt"]) > self.state_depth)
                     | (is_op[Opcode.BPWG] & (el["o_full"] > self.state_depth)))
        # the event lists: FP's input row, BP's δ row, WG's input tile row (BPWG: both)
        inputs_bad = ((is_op[Opcode.FP] & (el["x_full"] > self.max_inputs))
                      | (bp_op & (el["o_full"] > self.max_inputs))
                      | (wg_op & (el["x_cnt"] > self.max_inputs)))
        update_bad = ((d.a_addr + d.length > dram) | (d.b_addr + d.length > dram)
                      | (d.momentum & (d.c_addr + d.length > dram)))

        # the checks' sums and comparisons end in registers, so only the priority below lies
        # between them and the sequencer (which gives them a cycle: SETTLE)
        def settled(name, value):
            flag = Signal(name=name)
            m.d.sync += flag.eq(value)
            return flag
        update_range = settled("update_range", param_bad | update_bad)
        zero_size = settled("zero_size", Cat(*[f == 0 for f in sizes]).any())
        limits = settled("limits", limits)
        inconsistent = settled("inconsistent", geometry_bad | tiles_bad) | slot_bad
        weight_cap = settled("weight_cap", (is_op[Opcode.FP] | bp_op)
                             & (prod["wcap"] > self.weight_depth))
        state_bad = settled("state_bad", state_bad)
        inputs_bad = settled("inputs_bad", inputs_bad)
        acc_cap = settled("acc_cap", wg_op & ((prod["acap"] > self.acc_depth)
                                             | (groups_out > self.wg_groups)))
        out_of_dram = settled("param_range", param_bad) | slot_out_of_dram

        err = Signal(4)
        with m.If(op >= len(Opcode)):
            m.d.comb += err.eq(ErrorCode.BAD_OPCODE)
        with m.Elif(is_op[Opcode.END]):
            m.d.comb += err.eq(ErrorCode.NONE)
        with m.Elif(is_op[Opcode.UPDATE]):
            with m.If(d.length == 0):
                m.d.comb += err.eq(ErrorCode.ZERO_SIZE)
            with m.Elif(update_range):
                m.d.comb += err.eq(ErrorCode.ADDRESS_RANGE)
        with m.Elif((d.layer == 3) | (is_op[Opcode.BPN] & readout)):
            m.d.comb += err.eq(ErrorCode.BAD_LAYER)
        with m.Elif(neuron_op & (d.neuron == 3)):
            m.d.comb += err.eq(ErrorCode.BAD_NEURON)
        with m.Elif(neuron_op & (d.surrogate == 3)):
            m.d.comb += err.eq(ErrorCode.BAD_SURROGATE)
        with m.Elif(((d.layer == LayerType.CONV) & (not self.conv))
                    | (d.analog & (is_op[Opcode.FP] | wg_op) & (not self.mac))):
            m.d.comb += err.eq(ErrorCode.UNSUPPORTED)
        with m.Elif(zero_size):
            m.d.comb += err.eq(ErrorCode.ZERO_SIZE)
        with m.Elif(limits):
            m.d.comb += err.eq(ErrorCode.SIZE_LIMIT)
        with m.Elif(inconsistent):
            m.d.comb += err.eq(ErrorCode.INCONSISTENT)
        with m.Elif(weight_cap):
            m.d.comb += err.eq(ErrorCode.WEIGHT_CAPACITY)
        with m.Elif(state_bad):
            m.d.comb += err.eq(ErrorCode.STATE_CAPACITY)
        with m.Elif(inputs_bad):
            m.d.comb += err.eq(ErrorCode.INPUT_CAPACITY)
        with m.Elif(acc_cap):
            m.d.comb += err.eq(ErrorCode.ACC_CAPACITY)
        with m.Elif(out_of_dram):
            m.d.comb += err.eq(ErrorCode.ADDRESS_RANGE)
        with m.Elif(misaligned):
            m.d.comb += err.eq(ErrorCode.MISALIGNED)
        return err

    def _products(self, d):
        """The sequencer's products of descriptor ``d``, in the order its shift-and-add loop
        computes them (a product may use an earlier one): ``(products, prod, el)`` with
        ``products`` a list of ``(name, a, b)`` (``a`` ≤ 16 bits), ``prod`` their result
        registers by name, ``el`` the slots' row lengths in elements."""
        log_l = self.lanes.bit_length() - 1
        bp_op = (d.op == Opcode.BP) | (d.op == Opcode.BPWG)
        groups_out = _ceil_div(d.out_cnt, log_l)
        groups_in = _ceil_div(d.in_cnt, log_l)
        steps, batch = d.steps, d.batch
        # the slots' row lengths in elements (docs/descriptors.md §3): fields times planes
        # and K²; without conv every plane and K² is 1 (else the descriptor fails its checks)
        element_counts = {
            "row_w": (d.in_total, d.kk), "in_lo_kk": (d.in_lo, d.kk), "in_cnt_kk": (d.in_cnt, d.kk),
            "o_kk": (d.out_total, d.kk),
            "x_lo": (d.in_lo, d.in_plane), "x_cnt": (d.in_cnt, d.in_plane),
            "x_full": (d.in_total, d.in_plane),
            "o_lo": (d.out_lo, d.out_plane), "o_cnt": (d.out_cnt, d.out_plane),
            "o_full": (d.out_total, d.out_plane),
            "p_lo": (d.out_lo, d.pool_plane), "p_cnt": (d.out_cnt, d.pool_plane),
            "p_full": (d.out_total, d.pool_plane),
        }
        products = []
        if self.conv:
            products += [(name, b, a) for name, (a, b) in element_counts.items()]
            products += [("kk2", d.kernel, d.kernel), ("in_plane", d.in_h, d.in_w),
                         ("out_plane", d.out_h, d.out_w), ("pool_plane", d.pool_h, d.pool_w),
                         ("ph_pool", d.pool, d.pool_h), ("pw_pool", d.pool, d.pool_w),
                         # image rows per DRAM row: FP's (or WG's) input, BP's δI
                         ("x_lines", d.in_h, Mux(d.op == Opcode.FP, d.in_total, d.in_cnt)),
                         ("d_lines", d.out_h, d.out_total),
                         # BP: the weight columns of all input groups but the last
                         ("bp_span", d.kk, groups_in - 1)]
        prod = {name: Signal(48, name=f"prod_{name}") for name, _, _ in products}
        el = {name: prod[name] if self.conv else a for name, (a, _) in element_counts.items()}
        el["bp_span"] = prod["bp_span"] if self.conv else groups_in - 1
        products += [
            ("wcap", Mux(bp_op, groups_in, groups_out), Mux(bp_op, el["o_kk"], el["row_w"])),
            ("acap", groups_out, el["in_cnt_kk"]),
            ("rows", steps, batch),
            ("a_last", (groups_out - 1) << log_l, d.a_pitch),       # FP: last weight group
        ]
        for s in D.SLOTS:
            pitch = getattr(d, f"{s}_pitch")
            products += [(f"{s}_span", batch - 1, pitch),
                         (f"{s}_tspan", steps - 1, getattr(d, f"{s}_tstride")),
                         (f"{s}_np", batch, pitch)]
        products.append(("a_wspan", Mux(bp_op, d.out_total, d.out_cnt) - 1, d.a_pitch))
        products.append(("d_wspan", d.out_cnt - 1, d.d_pitch))      # BPWG's gradient tile
        prod.update({name: Signal(48, name=f"prod_{name}") for name, _, _ in products
                     if name not in prod})
        return products, prod, el

    # ------------------------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        L = self.lanes
        log_l = L.bit_length() - 1
        half = L // 2
        cb = self.count_bits
        aw = self.addr_width
        ctrl = self.ctrl
        # a refused address at run time resets the datapath, from a register (the cycle
        # after the refusal, while the sequencer stops): no state decode drives the resets
        abort = Signal()
        max_rows = self.max_steps * self.max_batch

        def sub(name, unit):
            m.submodules[name] = ResetInserter(abort)(unit)
            return unit

        dma = sub("dma", DMA(aw, count_bits=cb, read_channels=3, write_channels=2,
                             run=self.dma_run))
        fp = sub("fp", FPEngine(L, lane_unit="fma", max_inputs=self.max_inputs,
                                weight_depth=self.weight_depth, max_steps=max_rows))
        wg = sub("wg", WGEngine(L, mac_support=self.mac, max_inputs=self.acc_depth,
                                max_groups=self.wg_groups, max_rows=max_rows))
        upd = sub("update", UpdateUnit(2, momentum=True))
        nu = sub("neuron", NeuronUnit(tag_width=neuron_tag_width(self.state_depth)))
        fpipe = sub("fwd_pipe", ForwardPipe(fp.out_layout, nu, lanes=L,
                                            max_neurons=self.state_depth, step_bits=8))
        bpipe = sub("bwd_pipe", BackwardPipe(nu, max_neurons=self.state_depth, step_bits=8))
        fp_load = sub("fp_load", FPWeightLoader(fp.write_layout, lanes=L, count_bits=cb))
        max_kk = CONV_KERNEL ** 2 if self.conv else 1      # K² of the largest conv kernel
        bp_load = sub("bp_load", BPWeightLoader(fp.write_layout, lanes=L, count_bits=cb,
                                                max_kk=max_kk))
        split = sub("split", LaneSplit(fp.out_layout, lanes=L, count_bits=cb))
        gather = sub("gather", LaneGather(L, count_bits=cb))
        scatter = sub("scatter", GradScatter(wg.out_layout, lanes=L, count_bits=cb))
        scaler = sub("scaler", HalfScaler())
        replay = sub("replay", RowReplay(max(self.max_inputs, self.state_depth) // 2, cb))
        fork = sub("fork", StreamFork(depth=self.fork_depth))
        m_fifo = sub("m_fifo", fifo.SyncFIFO(width=WORD_BITS, depth=4))
        if self.conv:
            # the conv engines: FP (spike and MAC), BP (the transposed scatter), WG; maps
            # leave them in DRAM order (flat read-out, flat δ input)
            maps = _conv_map_words(self.state_depth, L)
            geometry = dict(max_width=255, max_height=255, max_channels=self.max_inputs,
                            max_kernel=CONV_KERNEL, max_stride=CONV_STRIDE)
            cfp = sub("conv_fp", ConvEngine(L, lane_unit="fma", weight_depth=self.weight_depth,
                                            acc_depth=maps, max_steps=max_rows,
                                            flat_readout=True, **geometry))
            cbp = sub("conv_bp", ConvBPEngine(L, weight_depth=self.weight_depth, acc_depth=maps,
                                              max_rows=max_rows, flat_readout=True, **geometry))
            cwg = sub("conv_wg", ConvWGEngine(L, mac_support=self.mac, acc_depth=self.acc_depth,
                                              max_groups=self.wg_groups, delta_depth=maps,
                                              max_rows=max_rows, **geometry))
            # DRAM rows → the engines' per-image-row words: the input maps (FP, WG), BP's δI
            reframe_x = sub("reframe_x", MapReframer(count_bits=cb))
            reframe_d = sub("reframe_d", MapReframer(count_bits=cb))
            spike_pool = sub("spike_pool", SpikePool(max_neurons=self.state_depth,
                                                      max_pool=CONV_POOL))
            router = sub("pool_router", PoolRouter(max_neurons=self.state_depth,
                                                   max_pool=CONV_POOL))
        wiring.connect(m, dma.bus, wiring.flipped(self.mem))
        m.d.comb += dma.limit.eq(self.dram_words)

        # the state memory: V in FP, the δU carry in BPN
        state = memory.Memory(shape=16, depth=self.state_depth, init=[])
        m.submodules.state = state
        st_rd = state.read_port()
        st_wr = state.write_port()
        fp_phase = Signal()               # an FP descriptor: to the forward pipe, else BPN's
        for port, a, b in ((st_rd.addr, fpipe.state.raddr, bpipe.state.raddr),
                           (st_rd.en, fpipe.state.ren, bpipe.state.ren),
                           (st_wr.addr, fpipe.state.waddr, bpipe.state.waddr),
                           (st_wr.data, fpipe.state.wdata, bpipe.state.wdata),
                           (st_wr.en, fpipe.state.wen, bpipe.state.wen)):
            m.d.comb += port.eq(Mux(fp_phase, a, b))
        m.d.comb += [fpipe.state.rdata.eq(st_rd.data), bpipe.state.rdata.eq(st_rd.data)]
        # one neuron unit: FP's neurons, or BPN's spike recomputation (its registers one
        # cycle behind the pipe's: see the layer's registers below)
        unit_regs = Signal(NeuronRegisters)
        for phase, pipe in ((fp_phase, fpipe), (~fp_phase, bpipe)):
            with m.If(phase):
                wiring.connect(m, pipe.neuron.i, nu.i)
                wiring.connect(m, nu.o, pipe.neuron.o)
                m.d.comb += unit_regs.eq(pipe.neuron.regs)
        m.d.sync += nu.regs.eq(unit_regs)

        # ---- descriptor and parameter block ---------------------------------------------
        d = Signal(descriptor_layout)
        params = Signal(D.PARAM_HEADER_WORDS * WORD_BITS)
        pc = Signal(aw)
        par = [params.word_select(k, WORD_BITS) for k in range(D.PARAM_HEADER_WORDS)]
        # the layer's neuron registers, registered: they settle in the cycle after the
        # parameter header's last word and the neuron unit sees them a cycle later still
        # (a run's first item reaches it through the DMA's FIFOs well after that), so the
        # descriptor's fields reach no arithmetic in the cycle they change
        layer_regs = Signal(NeuronRegisters)
        regs = Signal(NeuronRegisters)
        m.d.sync += regs.eq(layer_regs)
        m.d.sync += Assert(~nu.i.valid | ((regs.as_value() == layer_regs.as_value())
                                          & (nu.regs.as_value() == unit_regs.as_value())),
                           "core: an item reached the neuron unit before the layer's registers")
        m.d.comb += [
            layer_regs.kind.eq(d.neuron), layer_regs.soft_reset.eq(d.soft_reset),
            layer_regs.decay_input.eq(d.decay_input), layer_regs.surrogate.eq(d.surrogate),
            layer_regs.v_th.eq(par[0][:16]), layer_regs.v_reset.eq(par[0][16:]),
            layer_regs.v_rest.eq(par[1][:16]), layer_regs.inv_tau.eq(par[1][16:]),
            layer_regs.leak.eq(par[2][:16]), layer_regs.k.eq(par[2][16:]),
            layer_regs.alpha.eq(par[3][:16]), layer_regs.half_width.eq(par[3][16:]),
            layer_regs.neg_alpha_sq.eq(par[4][:16]),
        ]
        inv_t, lr, mu, shift = par[4][16:], par[5][:16], par[5][16:], par[6][:5]
        op = d.op
        # the opcode's and the layer's decodes, registered: the descriptor is written in
        # FETCH, many cycles before these steer a run state's stream routing
        is_op = {o: Signal(name=f"is_{o.name.lower()}") for o in Opcode}
        m.d.sync += [is_op[o].eq(op == o) for o in Opcode]
        fused = is_op[Opcode.BPWG]
        bp_op, wg_op, readout = Signal(), Signal(), Signal()
        m.d.sync += [bp_op.eq((op == Opcode.BP) | (op == Opcode.BPWG)),   # FP/BP engine in BP
                     wg_op.eq((op == Opcode.WG) | (op == Opcode.BPWG)),
                     readout.eq(d.layer == LayerType.READOUT)]
        is_conv, pooled = Signal(), Signal()
        if self.conv:
            m.d.sync += [is_conv.eq(d.layer == LayerType.CONV), pooled.eq(d.pool > 1)]
        steps, batch = d.steps, d.batch

        # ---- products for the checks and the address programs: one shift-and-add loop ----
        products, prod, el = self._products(d)
        groups_out = _ceil_div(d.out_cnt, log_l)
        groups_in = _ceil_div(d.in_cnt, log_l)
        m.d.comb += [fpipe.regs.eq(regs), bpipe.regs.eq(regs), fpipe.readout.eq(readout),
                     fpipe.inv_t.eq(inv_t), fpipe.n_out.eq(el["o_cnt"]), fpipe.n_steps.eq(steps),
                     bpipe.n_out.eq(el["o_cnt"]), bpipe.n_steps.eq(steps), scaler.k.eq(inv_t)]
        # a product's operands are chosen in a load cycle and then shifted in place (the
        # multiplier a right, the multiplicand b left): the descriptor's fields reach only
        # the operand registers, and the loop stops at a's last one bit
        mul_k = Signal(range(len(products) + 1))
        mul_load = Signal()
        mul_acc = Signal(48)
        mul_a = Signal(16)
        mul_b = Signal(32)
        op_a = Signal(16)
        op_b = Signal(48)
        with m.Switch(mul_k):
            for k, (name, a, b) in enumerate(products):
                with m.Case(k):
                    m.d.comb += [mul_a.eq(a), mul_b.eq(b)]
        mul_next = mul_acc + Mux(op_a[0], op_b, 0)
        slot_k = Signal(range(len(D.SLOTS) + 1), init=len(D.SLOTS))   # the checks' walk
        err = self._validate(m, d, prod, el, slot_k)

        # ---- sequencer --------------------------------------------------------------------
        word_cnt = Signal(8)
        n_groups = Signal(cb)             # groups of L of the FP/BP engine's tile, or WG's
        wg_groups = Signal(cb)            # groups of L outputs of the WG tile
        last_lanes = Signal(range(L + 1))
        last_words = Signal(range(half * max_kk + 1))
        group_words = Signal(range(half * max_kk + 1))   # BP: words of a weight group's columns
        bp_out_groups = Signal(cb)        # BP: lane words of a δS row
        running = Signal()
        stop_code = Signal(4)
        sent = Signal(6)                  # address programs / commands issued in this state
        overflow = Signal()
        # the sequencer's states, one flag register each (a binary state's decode drove the
        # stream routing and the engines' run reset across the chip: docs/core.md §7)
        seq = OneHotFSM(m, SEQUENCER_STATES, init="IDLE", name="seq")
        # a new descriptor's datapath run begins: the DISPATCH cycle
        restart = seq.ongoing("DISPATCH")
        # a descriptor's run ends: its engine counts are folded into the counters one cycle
        # later (they and the opcode flags hold until the next descriptor's DISPATCH)
        accumulate = Signal()
        fetched = Signal()                # a descriptor was fetched and is being checked
        m.d.comb += [fpipe.start.eq(restart), bpipe.start.eq(restart), fp_load.start.eq(restart),
                     bp_load.start.eq(restart), split.start.eq(restart),
                     scatter.start.eq(restart), gather.start.eq(restart), replay.start.eq(restart),
                     fp.cnt_clear.eq(restart),
                     wg.cnt_clear.eq(restart)]

        def offer(k, channel, fields):
            """Offer command ``k`` of this state on ``channel`` until it is taken."""
            with m.If(~sent[k]):
                m.d.comb += channel.valid.eq(1)
                m.d.comb += [getattr(channel.payload, f).eq(v) for f, v in fields.items()]
                with m.If(channel.ready):
                    m.d.sync += sent[k].eq(1)

        def program(k, channel, base, a=1, sa=0, b=1, sb=0, c=1, sc=0):
            offer(k, channel, {"base": base, "count_a": a, "stride_a": sa, "count_b": b,
                               "stride_b": sb, "count_c": c, "stride_c": sc})

        def route(src, dst):
            m.d.comb += [dst.valid.eq(src.valid), src.ready.eq(dst.ready),
                         dst.payload.eq(src.payload)]

        def finish(cond):
            """End the run state when ``cond``; a refused address stops the core."""
            with m.If(dma.error):
                m.d.sync += [stop_code.eq(ErrorCode.ADDRESS_RANGE), abort.eq(1)]
                seq.goto("STOP")
            with m.Elif(cond):
                m.d.sync += accumulate.eq(1)
                seq.goto("NEXT")

        dma_idle = (dma.rd_busy == 0) & (dma.wr_busy == 0)
        slot = {s: {k: getattr(d, f"{s}_{k}") for k in ("addr", "pitch", "words", "tstride")}
                for s in D.SLOTS}
        a, b, c, dd, e = slot["a"], slot["b"], slot["c"], slot["d"], slot["e"]
        # WG's operands: gradient tile, input rows and δI rows (BPWG: d, e, and BP's δI in b)
        wg_grad, wg_x, wg_delta = ({k: Mux(fused, u[k], v[k]) for k in u}
                                   for u, v in ((dd, a), (e, b), (b, c)))

        def rows_read(slot):
            """Rows per sample a slot is read: once for a per-sample row (tstride 0)."""
            return Mux(slot["tstride"] == 0, 1, steps)
        b_steps = rows_read(b)

        def by_layer(conv_body, fc_body):
            """``conv_body()`` for a conv layer (a core with conv), else ``fc_body()``."""
            if self.conv:
                with m.If(is_conv):
                    conv_body()
                with m.Else():
                    fc_body()
            else:
                fc_body()

        def route_values(src, dst):
            """An engine's current words (``value``: ``L`` lanes) into a unit of another layout."""
            m.d.comb += [dst.valid.eq(src.valid), src.ready.eq(dst.ready),
                         dst.payload.value.eq(src.payload.value)]

        # the engines' weight ports: from the FP loader or, in BP, the transposing one
        with m.If(bp_op):
            by_layer(lambda: wiring.connect(m, bp_load.o, cbp.weights),
                     lambda: wiring.connect(m, bp_load.o, fp.weights))
        with m.Else():
            by_layer(lambda: wiring.connect(m, fp_load.o, cfp.weights),
                     lambda: wiring.connect(m, fp_load.o, fp.weights))
        fp_busy = (fp.busy | cfp.busy) if self.conv else fp.busy
        bp_busy = (fp.busy | cbp.busy) if self.conv else fp.busy
        wg_busy = (wg.busy | cwg.busy) if self.conv else wg.busy
        # the run's configuration, registered: the descriptor settles long before DISPATCH
        # (the product loop, the checks and the parameter header come between)
        m.d.sync += fp_phase.eq(is_op[Opcode.FP])       # the neuron unit and state memory
        groups = Mux(bp_op, groups_in, groups_out)
        m.d.sync += [n_groups.eq(groups), wg_groups.eq(groups_out),
                     last_lanes.eq(d.out_cnt - ((groups_out - 1) << log_l)),
                     # BP: a weight group's columns (K² per input channel) in a row, and the
                     # words of the last, partial group
                     group_words.eq(Mux(is_conv, d.kk, 1) << (log_l - 1)),
                     last_words.eq(a["words"] - (el["bp_span"] << (log_l - 1))),
                     # (FC: el["x_cnt"] is in_cnt, these are the tile's input groups)
                     bp_out_groups.eq(_ceil_div(el["x_cnt"], log_l))]
        # the weight tile's load (FP_LOAD, BP_LOAD): its full groups and the address of its
        # last, partial group, registered so that no comparison or sum of the run's
        # configuration reaches rd0's program mux (a third register after the descriptor)
        whole_last = Signal()             # the tile's last group is a full one
        full_groups = Signal(cb)
        none_full = Signal()
        last_group_addr = Signal(aw)
        full = Mux(whole_last, n_groups, n_groups - 1)
        m.d.sync += [whole_last.eq(Mux(bp_op, last_words == group_words, last_lanes == L)),
                     full_groups.eq(full), none_full.eq(full == 0),
                     last_group_addr.eq(a["addr"] + Mux(bp_op, el["bp_span"] << (log_l - 1),
                                                        prod["a_last"]))]
        m.d.sync += [fp_load.n_in.eq(el["row_w"]), fp_load.row_words.eq(a["words"]),
                     fp_load.n_groups.eq(n_groups), fp_load.last_lanes.eq(last_lanes),
                     bp_load.n_rows.eq(d.out_total), bp_load.n_groups.eq(n_groups),
                     bp_load.last_words.eq(last_words),
                     split.row_words.eq(c["words"]), split.n_groups.eq(bp_out_groups),
                     scatter.n_in.eq(el["in_cnt_kk"]), scatter.n_groups.eq(wg_groups),
                     scatter.last_lanes.eq(last_lanes), gather.row_words.eq(wg_delta["words"]),
                     # the input slot of FP, BPN and WG: a per-sample row (tstride 0) is read once
                     replay.words.eq(wg_x["words"]), replay.steps.eq(steps),
                     replay.replay.eq(wg_x["tstride"] == 0)]
        if self.conv:
            m.d.sync += [bp_load.kk.eq(Mux(is_conv, d.kk, 1)),
                         reframe_x.width.eq(d.in_w), reframe_x.lines.eq(prod["x_lines"]),
                         reframe_x.half.eq(d.analog),
                         reframe_d.width.eq(d.out_w), reframe_d.lines.eq(prod["d_lines"]),
                         reframe_d.half.eq(1),
                         # BPN's spike recomputation for the winners: the neuron unit's
                         router.v_th.eq(regs.v_th), router.k.eq(regs.k),
                         router.klif.eq(regs.kind == NeuronKind.KLIF)]
            for unit in (spike_pool, router):
                m.d.sync += [unit.maps.eq(d.out_cnt), unit.out_h.eq(d.out_h),
                             unit.out_w.eq(d.out_w), unit.pool.eq(d.pool),
                             unit.pool_h.eq(d.pool_h), unit.pool_w.eq(d.pool_w)]
            m.d.comb += [u.start.eq(restart) for u in (reframe_x, reframe_d, spike_pool, router)]
            m.d.comb += [cfp.cnt_clear.eq(restart), cbp.cnt_clear.eq(restart),
                         cwg.cnt_clear.eq(restart)]

            out_xbits, in_xbits = Signal(4), Signal(4)
            for bits, width in ((out_xbits, d.out_w), (in_xbits, d.in_w)):
                # the smallest b with 2^b ≥ width (width ≤ 255)
                cases = [width > (1 << k) for k in range(8)]
                m.d.sync += bits.eq(sum(c.as_unsigned() for c in cases))
            stride_log2 = d.stride == 2
            conv_fp_cmd = {
                "in_w": d.in_w, "in_h": d.in_h, "in_c": d.in_total, "kernel": d.kernel,
                "stride_log2": stride_log2, "pad": d.padding, "out_h": d.out_h, "out_w": d.out_w,
                "out_xbits": out_xbits, "n_groups": n_groups, "n_steps": prod["rows"],
                "w_base": 0, "w_kk": d.kk, "w_gstride": el["row_w"],
                "acc_gstride": d.out_h << out_xbits, "n_inputs": el["x_full"],
                "mac": d.analog, "n_out": d.out_cnt}
            # the transposed layer: the δI maps in, the tile's δS maps out
            conv_bp_cmd = {
                "in_w": d.out_w, "in_h": d.out_h, "in_c": d.out_total, "kernel": d.kernel,
                "stride_log2": stride_log2, "pad": d.padding, "out_h": d.in_h, "out_w": d.in_w,
                "out_xbits": in_xbits, "n_groups": n_groups, "n_steps": prod["rows"],
                "w_base": 0, "w_kk": d.kk, "w_gstride": el["o_kk"],
                "acc_gstride": d.in_h << in_xbits, "n_inputs": el["o_full"], "need": 0,
                "n_out": d.in_cnt}
            conv_wg_cmd = {
                "in_w": d.in_w, "in_h": d.in_h, "in_c": d.in_cnt, "kernel": d.kernel,
                "stride_log2": stride_log2, "pad": d.padding, "out_h": d.out_h, "out_w": d.out_w,
                "out_xbits": out_xbits, "n_rows": prod["rows"], "w_kk": d.kk,
                "n_weights": el["in_cnt_kk"], "n_groups": wg_groups, "n_out": d.out_cnt}
            if self.mac:
                conv_wg_cmd["mac"] = d.analog

        # the δI rows of slot ``s`` (``rows`` per sample) on rd0, handed to ``into``; the
        # readout's G times inv_T (δO)
        def deltas(s, rows, into):
            program(0, dma.rd_cmd[0], s["addr"], a=batch, sa=s["pitch"], b=rows,
                    sb=s["tstride"], c=s["words"], sc=1)
            with m.If(readout):
                route(dma.rd[0], scaler.i)
                into(scaler.o)
            with m.Else():
                into(dma.rd[0])

        # BP (BP_RUN, BPWG): the engine's command, δS rows out (the δI rows come in on rd0)
        bp_steps = Mux(readout, 1, steps)   # the readout's G: once per sample

        def bp_work(k_cmd, k_write):
            def conv():
                offer(k_cmd, cbp.cmd, conv_bp_cmd)
                route_values(cbp.currents, split.i)

            def fc():
                offer(k_cmd, fp.cmd, {"n_in": d.out_total, "n_groups": n_groups,
                                      "n_steps": Mux(readout, batch, prod["rows"]), "w_base": 0,
                                      "mac": 1})
                route(fp.currents, split.i)
            by_layer(conv, fc)
            program(k_write, dma.wr_cmd[0], c["addr"], a=batch, sa=c["pitch"], b=bp_steps,
                    sb=c["tstride"], c=bp_out_groups << (log_l - 1), sc=1)
            route(split.o, dma.wr[0])

        def bp_deltas(src):
            """BP's δI words from ``src`` into the FC engine or, through the reframer, into
            the conv engine."""
            by_layer(lambda: (route(src, reframe_d.i), route(reframe_d.o, cbp.inputs)),
                     lambda: route(src, fp.inputs))

        def wg_deltas(src):
            """WG's δI words from ``src``: lane words (FC) or the maps as they are (conv)."""
            by_layer(lambda: route(src, cwg.deltas), lambda: route(src, gather.i))

        # WG (WG, BPWG): all groups of the tile in one pass over the inputs; the δI rows
        # come into the gather unit
        def wg_work(k_cmd, k_read, k_write, write_channel):
            # per-sample δI (the readout's G): one row for the sample's T rows
            wg_cmd = {"n_in": d.in_cnt, "n_rows": prod["rows"], "n_groups": wg_groups,
                      "delta_rows": Mux(wg_delta["tstride"] == 0, steps, 1)}
            if self.mac:
                wg_cmd["mac"] = d.analog

            def conv():
                offer(k_cmd, cwg.cmd, conv_wg_cmd)
                route(replay.o, reframe_x.i)
                route(reframe_x.o, cwg.inputs)
                g = cwg.grads
                m.d.comb += [scatter.i.valid.eq(g.valid), g.ready.eq(scatter.i.ready),
                             scatter.i.payload.value.eq(g.payload.value),
                             scatter.i.payload.index.eq(g.payload.index),
                             scatter.i.payload.group.eq(g.payload.group)]

            def fc():
                offer(k_cmd, wg.cmd, wg_cmd)
                route(gather.o, wg.deltas)
                route(replay.o, wg.inputs)
                route(wg.grads, scatter.i)
            by_layer(conv, fc)
            # a per-sample input (direct encoding) is read once and replayed T times
            program(k_read, dma.rd_cmd[1], wg_x["addr"], a=batch, sa=wg_x["pitch"],
                    b=rows_read(wg_x), sb=wg_x["tstride"], c=wg_x["words"], sc=1)
            program(k_write, dma.wr_cmd[write_channel], wg_grad["addr"], a=wg_groups,
                    sa=wg_grad["pitch"] << log_l, b=wg_grad["words"], sb=1, c=L,
                    sc=wg_grad["pitch"])
            route(dma.rd[1], replay.i)
            route(scatter.o, dma.wr[write_channel])
            with m.If(scatter.overflow):
                m.d.sync += overflow.eq(1)

        m.d.sync += [abort.eq(0), accumulate.eq(0)]
        with seq.state("IDLE"):
            with m.If(ctrl.start):
                m.d.sync += [pc.eq(ctrl.program), stop_code.eq(0),
                             overflow.eq(overflow & ctrl.keep)]
                seq.goto("PC")
        with seq.state("PC"):
            with m.If(pc + D.DESC_WORDS > self.dram_words):
                m.d.sync += stop_code.eq(ErrorCode.PC_RANGE)
                seq.goto("STOP")
            with m.Else():
                m.d.sync += [word_cnt.eq(0), sent.eq(0)]
                seq.goto("FETCH")
        with seq.state("FETCH"):
            program(0, dma.rd_cmd[0], pc, c=D.DESC_WORDS, sc=1)
            m.d.comb += dma.rd[0].ready.eq(1)
            with m.If(dma.rd[0].valid):
                m.d.sync += [d.as_value().word_select(word_cnt[:5], WORD_BITS).eq(dma.rd[0].payload),
                             word_cnt.eq(word_cnt + 1)]
                with m.If(word_cnt == D.DESC_WORDS - 1):
                    m.d.sync += [mul_k.eq(0), mul_load.eq(1), slot_k.eq(0)]
                    seq.goto("MUL")
                    # END, UPDATE and bad opcodes need none of the products
                    with m.If(is_op[Opcode.END] | is_op[Opcode.UPDATE] | (op >= len(Opcode))):
                        seq.goto("SETTLE")
        with seq.state("MUL"):
            with m.If(mul_load):
                m.d.sync += [op_a.eq(mul_a), op_b.eq(mul_b), mul_acc.eq(0), mul_load.eq(0)]
            with m.Else():
                m.d.sync += [op_a.eq(op_a >> 1), op_b.eq(op_b << 1), mul_acc.eq(mul_next)]
                with m.If(op_a[1:] == 0):             # a's last one bit (or a = 0)
                    m.d.sync += [mul_k.eq(mul_k + 1), mul_load.eq(1)]
                    with m.Switch(mul_k):
                        for k, (name, _, _) in enumerate(products):
                            with m.Case(k):
                                m.d.sync += prod[name].eq(mul_next)
                    with m.If(mul_k == len(products) - 1):
                        seq.goto("SETTLE")
        with seq.state("SETTLE"):     # the checks take the last product, slot by slot
            with m.If(slot_k == len(D.SLOTS)):
                seq.goto("CHECK")
            with m.Else():
                m.d.sync += slot_k.eq(slot_k + 1)
        with seq.state("CHECK"):
            m.d.comb += fetched.eq(1)
            m.d.sync += [word_cnt.eq(0), sent.eq(0)]
            with m.If(err != 0):
                m.d.sync += stop_code.eq(err)
                seq.goto("STOP")
            with m.Elif(is_op[Opcode.END]):
                seq.goto("STOP")
            with m.Else():
                seq.goto("PARAM")
        with seq.state("PARAM"):
            program(0, dma.rd_cmd[0], d.param_addr, c=D.PARAM_HEADER_WORDS, sc=1)
            m.d.comb += dma.rd[0].ready.eq(1)
            with m.If(dma.rd[0].valid):
                m.d.sync += [params.word_select(word_cnt[:3], WORD_BITS).eq(dma.rd[0].payload),
                             word_cnt.eq(word_cnt + 1)]
                with m.If(word_cnt == D.PARAM_HEADER_WORDS - 1):
                    m.d.sync += [word_cnt.eq(0), sent.eq(0)]
                    seq.goto("DISPATCH")
        with seq.state("DISPATCH"):
            with m.Switch(op):
                with m.Case(Opcode.FP):
                    seq.goto("FP_LOAD")
                with m.Case(Opcode.BP, Opcode.BPWG):
                    seq.goto("BP_LOAD")
                with m.Case(Opcode.BPN):
                    seq.goto("TABLE")
                with m.Case(Opcode.WG):
                    seq.goto("WG")
                with m.Case(Opcode.UPDATE):
                    seq.goto("UPDATE")
        with seq.state("TABLE"):
            with m.If(d.surrogate != SurrogateKind.SIGMOID):
                seq.goto("BPN")
            with m.Else():
                program(0, dma.rd_cmd[0], d.param_addr + D.PARAM_TABLE_OFFSET, c=64, sc=1)
                m.d.comb += [dma.rd[0].ready.eq(1), bpipe.table.en.eq(dma.rd[0].valid),
                             bpipe.table.addr.eq(word_cnt[:6]),
                             bpipe.table.slope.eq(dma.rd[0].payload[:16]),
                             bpipe.table.intercept.eq(dma.rd[0].payload[16:])]
                with m.If(dma.rd[0].valid):
                    m.d.sync += word_cnt.eq(word_cnt + 1)
                    with m.If(word_cnt == 63):
                        m.d.sync += sent.eq(0)
                        seq.goto("BPN")

        # ---- FP: the weight tile (full groups of L rows, then the last group) -------
        with seq.state("FP_LOAD"):
            with m.If(~none_full):
                program(0, dma.rd_cmd[0], a["addr"], a=full_groups, sa=a["pitch"] << log_l,
                        b=a["words"], sb=1, c=L, sc=a["pitch"])
            with m.If((sent[0] | none_full) & ~whole_last):
                program(1, dma.rd_cmd[0], last_group_addr, b=a["words"], sb=1,
                        c=last_lanes, sc=a["pitch"])
            route(dma.rd[0], fp_load.i)
            done = ((sent[0] | none_full) & (sent[1] | whole_last) & dma_idle)
            with m.If(done):
                m.d.sync += sent.eq(0)
                seq.goto("FP_RUN")
        with seq.state("FP_RUN"):
            def conv():
                offer(4, cfp.cmd, conv_fp_cmd)
                route(replay.o, reframe_x.i)
                route(reframe_x.o, cfp.inputs)
                route_values(cfp.currents, fpipe.currents)

            def fc():
                offer(4, fp.cmd, {"n_in": d.in_total, "n_groups": n_groups,
                                  "n_steps": prod["rows"], "w_base": 0, "mac": d.analog})
                route(replay.o, fp.inputs)
                wiring.connect(m, fp.currents, fpipe.currents)
            by_layer(conv, fc)
            program(0, dma.rd_cmd[0], b["addr"], a=batch, sa=b["pitch"], b=b_steps,
                    sb=b["tstride"], c=b["words"], sc=1)
            with m.If(readout):
                program(1, dma.wr_cmd[0], c["addr"], a=batch, sa=c["pitch"], c=c["words"], sc=1)
            with m.Else():
                program(1, dma.wr_cmd[0], c["addr"], a=batch, sa=c["pitch"], b=steps,
                        sb=c["tstride"], c=c["words"], sc=1)
                program(2, dma.wr_cmd[1], dd["addr"], a=batch, sa=dd["pitch"], b=steps,
                        sb=dd["tstride"], c=dd["words"], sc=1)
            route(dma.rd[0], replay.i)
            wiring.connect(m, fpipe.values, dma.wr[0])
            if self.conv:       # max pooling: the pooled spikes are the layer's output
                with m.If(pooled):
                    m.d.comb += [spike_pool.i.valid.eq(fpipe.spikes.valid),
                                 spike_pool.i.payload.eq(fpipe.spikes.payload.data),
                                 fpipe.spikes.ready.eq(spike_pool.i.ready),
                                 dma.wr[1].valid.eq(spike_pool.o.valid),
                                 dma.wr[1].payload.data.eq(spike_pool.o.payload),
                                 spike_pool.o.ready.eq(dma.wr[1].ready)]
                with m.Else():
                    wiring.connect(m, fpipe.spikes, dma.wr[1])
            else:
                wiring.connect(m, fpipe.spikes, dma.wr[1])
            finish(sent[4] & sent[0] & sent[1] & (sent[2] | readout) & ~fp_busy
                   & ~fpipe.busy & dma_idle)

        # ---- BP: the transposed weight tile, then δI rows (or δO = G·inv_T) ---------
        with seq.state("BP_LOAD"):
            with m.If(~none_full):
                program(0, dma.rd_cmd[0], a["addr"], a=full_groups, sa=group_words,
                        b=d.out_total, sb=a["pitch"], c=group_words, sc=1)
            with m.If((sent[0] | none_full) & ~whole_last):
                program(1, dma.rd_cmd[0], last_group_addr, b=d.out_total, sb=a["pitch"],
                        c=last_words, sc=1)
            route(dma.rd[0], bp_load.i)
            done = (sent[0] | none_full) & (sent[1] | whole_last) & dma_idle
            with m.If(done):
                m.d.sync += sent.eq(0)
                with m.If(fused):
                    seq.goto("BPWG")
                with m.Else():
                    seq.goto("BP_RUN")
        with seq.state("BP_RUN"):
            bp_work(4, 1)
            deltas(b, bp_steps, bp_deltas)
            finish(sent[4] & sent[0] & sent[1] & ~bp_busy & dma_idle)

        # ---- BPWG: BP and WG concurrently on one read of the δI rows ------------------
        with seq.state("BPWG"):
            bp_work(4, 1)
            wg_work(5, 2, 3, 1)
            deltas(b, bp_steps, lambda src: route(src, fork.i))
            bp_deltas(fork.a)
            wg_deltas(fork.b)
            finish(sent[:6].all() & ~bp_busy & ~wg_busy & dma_idle)

        # ---- BPN: H and δS rows, t = T−1 … 0, → δI rows --------------------------------
        # BPN walks its slots backwards in time: from a sample's last row, with the time
        # stride negated (modulo 2^addr_width), both registered like the loads' programs
        last_row, back = {}, {}
        for name in ("c", "b", "d"):
            last_row[name] = Signal(aw, name=f"bpn_{name}_last_row")
            back[name] = Signal(aw, name=f"bpn_{name}_back")
            m.d.sync += [last_row[name].eq(slot[name]["addr"] + prod[f"{name}_tspan"]),
                         back[name].eq(-slot[name]["tstride"])]
        with seq.state("BPN"):
            program(0, dma.rd_cmd[0], last_row["c"], a=batch, sa=c["pitch"],
                    b=steps, sb=back["c"], c=c["words"], sc=1)
            program(1, dma.rd_cmd[1], last_row["b"], a=batch, sa=b["pitch"],
                    b=b_steps, sb=back["b"], c=b["words"], sc=1)
            program(2, dma.wr_cmd[0], last_row["d"], a=batch, sa=dd["pitch"],
                    b=steps, sb=back["d"], c=dd["words"], sc=1)
            route(dma.rd[1], replay.i)
            if self.conv:       # max pooling: δS goes to each window's winner
                with m.If(pooled):
                    route(dma.rd[0], router.h)
                    route(replay.o, router.ds)
                    route(router.h_o, bpipe.h_in)
                    route(router.ds_o, bpipe.ds_in)
                with m.Else():
                    route(dma.rd[0], bpipe.h_in)
                    route(replay.o, bpipe.ds_in)
            else:
                route(dma.rd[0], bpipe.h_in)
                route(replay.o, bpipe.ds_in)
            route(bpipe.di, dma.wr[0])
            finish(sent[0] & sent[1] & sent[2] & ~bpipe.busy & dma_idle)

        # ---- WG: all groups of the tile in one pass over the inputs ----------------------
        with seq.state("WG"):
            wg_work(4, 1, 2, 0)
            deltas(c, rows_read(c), wg_deltas)
            finish(sent[4] & sent[0] & sent[1] & sent[2] & ~wg_busy & dma_idle)

        # ---- UPDATE: W, g (and m) word by word ------------------------------------------
        with seq.state("UPDATE"):
            with m.If(d.guard & overflow):
                seq.goto("NEXT")
            with m.Else():
                use_m = d.momentum
                offer(4, upd.regs, {"lr": lr, "shift": shift, "mu": mu, "momentum": use_m})
                program(0, dma.rd_cmd[0], a["addr"], c=d.length, sc=1)
                program(1, dma.rd_cmd[1], b["addr"], c=d.length, sc=1)
                program(2, dma.wr_cmd[0], a["addr"], c=d.length, sc=1)
                with m.If(use_m):
                    program(3, dma.rd_cmd[2], c["addr"], c=d.length, sc=1)
                    program(5, dma.wr_cmd[1], c["addr"], c=d.length, sc=1)
                join = dma.rd[0].valid & dma.rd[1].valid & (dma.rd[2].valid | ~use_m)
                go = sent[4] & join
                m.d.comb += [upd.i.valid.eq(go), upd.i.payload.w.eq(dma.rd[0].payload),
                             upd.i.payload.g.eq(dma.rd[1].payload),
                             upd.i.payload.m.eq(Mux(use_m, dma.rd[2].payload, 0)),
                             dma.rd[0].ready.eq(go & upd.i.ready),
                             dma.rd[1].ready.eq(go & upd.i.ready),
                             dma.rd[2].ready.eq(go & upd.i.ready & use_m)]
                room = m_fifo.w_rdy | ~use_m
                m.d.comb += [dma.wr[0].valid.eq(upd.o.valid & room),
                             dma.wr[0].payload.data.eq(upd.o.payload.w),
                             upd.o.ready.eq(dma.wr[0].ready & room),
                             m_fifo.w_en.eq(upd.o.valid & dma.wr[0].ready & use_m),
                             m_fifo.w_data.eq(upd.o.payload.m),
                             dma.wr[1].valid.eq(m_fifo.r_rdy),
                             dma.wr[1].payload.data.eq(m_fifo.r_data),
                             m_fifo.r_en.eq(dma.wr[1].ready)]
                finish(sent[4] & sent[0] & sent[1] & sent[2] & ((sent[3] & sent[5]) | ~use_m)
                       & dma_idle)

        with seq.state("NEXT"):
            m.d.sync += pc.eq(pc + D.DESC_WORDS)
            seq.goto("PC")
        with seq.state("STOP"):
            m.d.sync += [ctrl.done.eq(1), ctrl.error.eq(stop_code),
                         ctrl.error_pc.eq(Mux(stop_code != 0, pc, 0))]
            seq.goto("IDLE")
            # in simulation, say why (the names of the format's error codes)
            with m.Switch(stop_code):
                for code in D.ErrorCode:
                    if code != D.ErrorCode.NONE:
                        with m.Case(code):
                            m.d.sync += Print(Format(
                                "trident core: the descriptor at word 0x{:x} stopped the "
                                f"program: {code.name} (error {code.value})", pc))
        m.d.comb += running.eq(~seq.ongoing("IDLE"))

        m.d.comb += [ctrl.busy.eq(running), self.overflow.eq(overflow), dma.clear.eq(ctrl.start)]
        # validation stops every descriptor whose addresses leave DRAM, so the DMA's own
        # range check (which stops the core with ADDRESS_RANGE) must never fire
        m.d.sync += Assert(~dma.error, "trident core: the DMA refused an address that "
                                       "descriptor validation let through")
        with m.If(ctrl.start & ~running):
            m.d.sync += [ctrl.done.eq(0), ctrl.error.eq(0), ctrl.error_pc.eq(0)]

        # ---- counters ---------------------------------------------------------------------
        cnt = self.counters
        req = self.mem.req
        fired = req.valid & req.ready
        with m.If(ctrl.start & ~running & ~ctrl.keep):
            m.d.sync += cnt.eq(0)
        with m.Else():
            m.d.sync += [
                cnt.descriptors.eq(cnt.descriptors + fetched),
                cnt.fp_busy.eq(cnt.fp_busy + (fp_busy & is_op[Opcode.FP])),
                cnt.bp_busy.eq(cnt.bp_busy + (bp_busy & bp_op)),
                cnt.wg_busy.eq(cnt.wg_busy + wg_busy),
                cnt.neuron_busy.eq(cnt.neuron_busy + (fpipe.busy | bpipe.busy)),
                cnt.update_busy.eq(cnt.update_busy + seq.ongoing("UPDATE")),
                cnt.dma_busy.eq(cnt.dma_busy + ~dma_idle),
                cnt.words_read.eq(cnt.words_read + (fired & ~req.payload.write)),
                cnt.words_written.eq(cnt.words_written + (fired & req.payload.write)),
            ]
            # a descriptor's engine counts (cleared at its start; the idle engines' stay 0)
            engines = {"fp": [fp] + ([cfp] if self.conv else []),
                       "bp": [fp] + ([cbp] if self.conv else []),
                       "wg": [wg] + ([cwg] if self.conv else [])}
            for name, ran in (("fp", is_op[Opcode.FP]), ("bp", bp_op), ("wg", wg_op)):
                ops, skipped = getattr(cnt, f"{name}_ops"), getattr(cnt, f"{name}_skipped")
                with m.If(accumulate & ran):
                    m.d.sync += [ops.eq(ops + sum(e.cnt_ops for e in engines[name])),
                                 skipped.eq(skipped + sum(e.cnt_skipped for e in engines[name]))]
        return m
