"""Verification harness of the conv WG engine and the SGD update unit: random cases, their
golden results, and runs in the Amaranth simulator or under cocotb (Icarus / Verilator).

Expected values always come from the hardware-exact golden kernels
(``golden.hw.gradient.conv2d_weight_grad``, ``golden.hw.update.sgd_update``); this module
only generates cases, packs payloads and compares bit patterns.  The cocotb sides are
:mod:`trident.rtl.engines.cocotb_update` (update unit) and
:mod:`trident.rtl.engines.cocotb_fp` (the engines' common driver).
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass

import numpy as np
import torch

from .harness import _half, _load_json, _to_words

__all__ = ["UpdateSegment", "update_segment", "pack_update", "simulate_update",
           "run_cocotb_update", "update_mismatches", "ConvWGCase", "conv_wg_case",
           "DELTA_PAD", "conv_wg_stimulus", "conv_wg_cycle_model", "simulate_conv_wg",
           "run_cocotb_conv_wg"]

UPDATE_COCOTB_MODULE = "trident.rtl.engines.cocotb_update"


def _bits(x: torch.Tensor) -> np.ndarray:
    return x.contiguous().view(torch.int16).numpy().astype(np.int64) & 0xFFFF


# ---- update unit ---------------------------------------------------------------------------

def _random_fp16(rng, shape, kind):
    """binary16 patterns: ``normal`` N(0,1), ``wide`` any finite, ``subnormal`` mostly
    subnormal, ``specials`` N(0,1) with ±0, ±inf, NaN, subnormals and extremes mixed in."""
    if kind == "wide":
        bits = rng.integers(0, 0x7C00, shape) | (rng.integers(0, 2, shape) << 15)
    elif kind == "subnormal":
        bits = rng.integers(0, 0x480, shape) | (rng.integers(0, 2, shape) << 15)
    else:
        bits = rng.normal(0, 1, shape).astype(np.float16).view(np.uint16).astype(np.int64)
    if kind == "specials":
        u = rng.random(shape)
        sign = rng.integers(0, 2, shape) << 15
        special = rng.choice([0x0000, 0x7C00, 0x7E00, 0x7C01, 0x0001, 0x03FF, 0x0400,
                              0x7BFF], shape) | sign
        bits = np.where(u < 0.15, special, bits)
    return _half(bits)


@dataclass
class UpdateSegment:
    """Register values and the weight words updated with them (``[N, L]`` binary16)."""
    lr: float
    shift: int
    weight: torch.Tensor
    grad: torch.Tensor
    mu: float | None = None            # None: plain SGD (momentum register off)
    buf: torch.Tensor | None = None

    def golden(self):
        """``(new_weight, new_buf)`` from ``golden.hw.update.sgd_update``."""
        from trident.golden.hw import fp16 as F
        from trident.golden.hw.update import sgd_update
        mom = None if self.mu is None else F.const(self.mu)
        return sgd_update(self.weight, self.grad, F.const(self.lr), self.shift, mom,
                          self.buf)


def update_segment(rng, words, lanes, *, momentum=False, shift=None, lr=None,
                   kinds=("normal", "specials", "wide", "subnormal")):
    """A random :class:`UpdateSegment`: weights, gradients (and buffer) of random kinds per
    word, and cancellation cases where ``lr·g·2^−s`` is close to ``w`` (subnormal and zero
    results, both zero signs)."""
    shift = int(rng.choice([0, 1, 4, 10, 14, 20, 24, 31])) if shift is None else shift
    lr = float(rng.choice([1.0, 0.1, 0.01, 3.0e-5, 2.0 ** -20, 1000.0])) if lr is None else lr
    shape = (words, lanes)
    parts = [_random_fp16(rng, shape, kinds[k % len(kinds)]) for k in range(3)]
    pick = rng.integers(0, 3, shape)
    w = torch.where(torch.from_numpy(pick == 0), parts[0],
                    torch.where(torch.from_numpy(pick == 1), parts[1], parts[2]))
    g = _random_fp16(rng, shape, kinds[int(rng.integers(len(kinds)))])
    # cancellation: g chosen so that lr·g·2^−s ≈ w
    from trident.golden.hw import fp16 as F
    lr16 = float(F.const(lr))
    noise = rng.normal(0, 2.0 ** -10, shape) * (rng.random(shape) < 0.5)   # half exact
    near = F.round16((w.double() * 2.0 ** shift / lr16) * torch.from_numpy(1 + noise))
    use = torch.from_numpy(rng.random(shape) < 0.3) & torch.isfinite(near)
    g = torch.where(use, near, g)
    zero = torch.from_numpy(rng.random(shape) < 0.05)            # ±0 − (±0): zero signs
    w = torch.where(zero, _half(rng.integers(0, 2, shape) << 15), w)
    g = torch.where(zero & torch.from_numpy(rng.random(shape) < 0.7),
                    _half(rng.integers(0, 2, shape) << 15), g)
    buf = _random_fp16(rng, shape, kinds[int(rng.integers(len(kinds)))]) if momentum else None
    mu = float(rng.choice([0.9, 0.5, 0.0, 0.99])) if momentum else None
    return UpdateSegment(lr, shift, w, g, mu, buf)


def pack_update(unit, seg: UpdateSegment):
    """``(regs payload, input payloads, expected output payloads)`` for an
    :class:`~.update.UpdateUnit` instance (layouts only)."""
    from trident.golden.hw import fp16 as F
    from trident.verify.payload import pack
    L = unit.lanes
    if seg.weight.shape[1] != L:
        raise ValueError("segment lanes differ from the unit's")
    fields = {"lr": [int(F.bits(F.const(seg.lr)))], "shift": [seg.shift]}
    if unit.momentum:
        mu = 0.0 if seg.mu is None else seg.mu
        fields.update(mu=[int(F.bits(F.const(mu)))], momentum=[int(seg.mu is not None)])
    regs = pack(unit.regs_layout, **fields)[0]

    def words(t):
        # exact integer arrays for verify.payload.pack: uint64 up to 64 bits (its 64-bit
        # path casts through int64), Python ints beyond
        b = _bits(t)
        return np.array([sum(int(b[n, l]) << (16 * l) for l in range(L))
                         for n in range(b.shape[0])], dtype=np.uint64 if L <= 4 else object)
    ins = {"w": words(seg.weight), "g": words(seg.grad)}
    if unit.momentum:
        ins["m"] = words(seg.buf if seg.buf is not None else F.zeros(seg.weight.shape))
    inputs = pack(unit.in_layout, **ins)
    new_w, new_m = seg.golden()
    outs = {"w": words(new_w)}
    if unit.momentum:
        outs["m"] = words(new_m) if new_m is not None else [0] * len(outs["w"])
    expected = pack(unit.out_layout, **outs)
    if unit.momentum and new_m is None:     # plain SGD on a momentum build: m is not used
        mask = (1 << (16 * L)) - 1
    else:
        mask = (1 << unit.out_layout.size) - 1
    return int(regs), [int(x) for x in inputs], [int(x) for x in expected], mask


def update_mismatches(segments_out, packed):
    """List of mismatch descriptions (empty when every output bit matches)."""
    bad = []
    for s, (outs, (_, inputs, expected, mask)) in enumerate(zip(segments_out, packed)):
        if len(outs) != len(expected):
            bad.append(f"segment {s}: {len(outs)} outputs, expected {len(expected)}")
        for k, (got, exp) in enumerate(zip(outs, expected)):
            if (got & mask) != (exp & mask):
                bad.append(f"segment {s} word {k}: in 0x{inputs[k]:x} got 0x{got & mask:x} "
                           f"expected 0x{exp & mask:x}")
    return bad


def simulate_update(params, segments, *, idle=0.0, backpressure=0.0, seed=0):
    """Play segments through an :class:`~.update.UpdateUnit` in the Amaranth simulator:
    per segment a register write, then its words (idle cycles and back-pressure at the
    given rates), without waiting between segments.  Returns ``(outputs per segment,
    packed segments, latencies, the cycle of each output)``."""
    from amaranth.hdl import Value
    from amaranth.sim import Simulator

    from .update import UpdateUnit
    dut = UpdateUnit(**params)
    packed = [pack_update(dut, s) for s in segments]
    rng = random.Random(seed)
    flat = [(n, x) for n, p in enumerate(packed) for x in p[1]]
    total = len(flat)
    outs, lat, out_at = [], [], []
    i_p, o_p, r_p = (Value.cast(dut.i.payload), Value.cast(dut.o.payload),
                     Value.cast(dut.regs.payload))

    async def bench(ctx):
        sent, seg, cycle, accepted = 0, -1, 0, []
        while len(outs) < total:
            assert cycle < 50 * total + 200, "timeout"
            ctx.set(dut.regs.valid, 0)
            ctx.set(dut.i.valid, 0)
            if sent < total and flat[sent][0] != seg:
                seg = flat[sent][0]
                ctx.set(r_p, packed[seg][0])
                ctx.set(dut.regs.valid, 1)
                present = False
            else:
                present = sent < total and not (idle and rng.random() < idle)
                if present:
                    ctx.set(i_p, flat[sent][1])
                    ctx.set(dut.i.valid, 1)
            ctx.set(dut.o.ready, 0 if backpressure and rng.random() < backpressure else 1)
            _, _, i_ready, o_valid, o_ready, payload = await ctx.tick().sample(
                dut.i.ready, dut.o.valid, dut.o.ready, o_p)
            if present and i_ready:
                accepted.append(cycle)
                sent += 1
            if o_valid and o_ready:
                lat.append(cycle - accepted[len(outs)])
                out_at.append(cycle)
                outs.append(int(payload))
            cycle += 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    per_seg, k = [], 0
    for p in packed:
        per_seg.append(outs[k:k + len(p[1])])
        k += len(p[1])
    return per_seg, packed, lat, out_at


def run_cocotb_update(params, simulator, segments, *, idle=0.0, backpressure=0.0,
                      label="update", seed=None):
    """The same as :func:`simulate_update` under cocotb (Icarus or Verilator).  Returns
    ``(outputs per segment, packed segments, info)`` with build and run seconds."""
    from trident.verify.runner import derive_seed, run_cocotb_exchange
    from trident.verify.verilog import build_root, generate_verilog

    from .update import UpdateUnit
    vmod = generate_verilog(UpdateUnit, dict(params))
    unit = UpdateUnit(**params)
    unit._MustUse__silence = True
    packed = [pack_update(unit, s) for s in segments]
    stage = build_root() / "vectors"
    stage.mkdir(parents=True, exist_ok=True)
    tag = f"{label}-{simulator}-{os.getpid()}-{time.monotonic_ns()}"
    vec_path, out_path = stage / f"{tag}.npz", stage / f"{tag}.json"
    inputs = [x for p in packed for x in p[1]]
    np.savez(vec_path, regs=_to_words([p[0] for p in packed]), inputs=_to_words(inputs),
             offsets=np.cumsum([0] + [len(p[1]) for p in packed]).astype(np.int64))
    env = {"TRIDENT_UPDATE_VECTORS": str(vec_path), "TRIDENT_UPDATE_RESULTS": str(out_path),
           "TRIDENT_IDLE": str(idle), "TRIDENT_BACKPRESSURE": str(backpressure)}
    seed = derive_seed(label, simulator) if seed is None else seed
    out, data = run_cocotb_exchange(vmod, simulator, test_module=UPDATE_COCOTB_MODULE, vectors=vec_path,
                                    results=out_path, load=_load_json, extra_env=env, seed=seed,
                                    label=label)
    outs = [int(x, 16) for x in data["outputs"]]
    per_seg, k = [], 0
    for p in packed:
        per_seg.append(outs[k:k + len(p[1])])
        k += len(p[1])
    return per_seg, packed, {"build_s": out["build_s"], "test_s": out["test_s"],
                             "sim_s": data.get("wall_s"), "cycles": data.get("cycles")}


# ---- conv WG engine ------------------------------------------------------------------------

#: A binary16 NaN in the unused upper half of a row's last δ word: the engine must ignore
#: it (a row of zero δ values stays discarded, no term is added).
DELTA_PAD = 0x7E00


@dataclass
class ConvWGCase:
    """One conv WG tile: ``deltas [R, J, Ho, Wo]`` (binary16, the tile's ``J`` output
    channels, ``G = ⌈J/L⌉`` groups of the engine's ``L`` lanes), ``inputs [R, C, H, W]``
    (bool spikes or binary16 analog), square kernel, stride, padding."""
    name: str
    deltas: torch.Tensor
    inputs: torch.Tensor
    kernel: int
    stride: int
    padding: int

    @property
    def mac(self) -> bool:
        return self.inputs.dtype != torch.bool

    def active(self) -> torch.Tensor:
        """Active inputs (spikes, or analog values that are not ±0) as float64 0/1."""
        if self.mac:
            return (self.inputs.view(torch.int16).int() & 0x7FFF).ne(0).double()
        return self.inputs.double()

    def golden(self) -> torch.Tensor:
        """``g [J, C, K, K]`` from the golden exact accumulator (numerics.md §5)."""
        from trident.golden.hw.gradient import conv2d_weight_grad
        return conv2d_weight_grad(self.deltas, self.inputs, self.kernel, self.stride,
                                  self.padding).to_fp16()

    def live_rows(self) -> np.ndarray:
        return (self.deltas.view(torch.int16).int() & 0x7FFF).ne(0).flatten(1).any(1).numpy()

    def live_groups(self, lanes) -> torch.Tensor:
        """``[R, Ho·Wo]``: per row and output position, the groups of ``lanes`` channels
        whose δ word there has a non-zero lane."""
        rows, J, ho, wo = self.deltas.shape
        G = -(-J // lanes)
        nz = torch.zeros(rows, G * lanes, ho * wo, dtype=torch.bool)
        nz[:, :J] = (self.deltas.view(torch.int16).int() & 0x7FFF).ne(0).flatten(2)
        return nz.reshape(rows, G, lanes, ho * wo).any(2).sum(1).double()

    def _scatter(self, per_position) -> torch.Tensor:
        """``[R, C, H, W]``: per input, the sum of ``per_position [R, Ho·Wo]`` over the
        outputs its footprint covers."""
        K, s, p = self.kernel, self.stride, self.padding
        rows, C, H, W = self.inputs.shape
        blocks = per_position[:, None, :].expand(rows, C * K * K, per_position.shape[1])
        return torch.nn.functional.fold(blocks, (H, W), K, padding=p, stride=s)

    def work(self, lanes) -> dict:
        """Per row: ``events`` (active inputs), ``updates`` (pairs of a footprint position
        of an active input and a live group there), ``skipped`` (footprint positions of
        active inputs without a live group) and ``cost`` ``[R, C, H, W]`` (per input, the
        enumeration cycles of its footprint: ``max(1, live groups)`` per position)."""
        x = self.active()
        k = self.live_groups(lanes)
        return {"events": x.flatten(1).sum(1).numpy(),
                "updates": (x * self._scatter(k)).flatten(1).sum(1).numpy(),
                "skipped": (x * self._scatter((k == 0).double())).flatten(1).sum(1).numpy(),
                "cost": self._scatter(k.clamp(min=1)).numpy()}


def conv_wg_case(rng, rows, in_c, size, out_c, kernel, stride, padding, density,
                 row_density=0.5, *, mac=False, specials=False, kind="normal", group_lanes=4,
                 dead_group=0.3, lane_zero=0.2, name=None):
    """A random :class:`ConvWGCase`: ``size`` is ``(H, W)`` or an int; ``kind`` as
    :func:`~.harness.random_deltas`; a fraction ``row_density`` of rows carry δ values
    (the others are all ±0); within a live row 30 % of the output positions are ±0 in
    every channel and a fraction ``dead_group`` of the (group of ``group_lanes``
    channels, position) pairs are ±0, so that some groups are live where others are not,
    and a fraction ``lane_zero`` of the other values; ``mac``: analog inputs
    (``specials``: with ±inf and NaN)."""
    from .harness import random_analog, random_deltas, random_spikes
    h, w = (size, size) if isinstance(size, int) else size
    ho, wo = (h + 2 * padding - kernel) // stride + 1, (w + 2 * padding - kernel) // stride + 1
    flat = random_deltas(rng, rows * ho * wo, out_c, 1.0, kind, lane_zero=lane_zero)
    d = flat.reshape(rows, ho, wo, out_c).permute(0, 3, 1, 2).contiguous()
    groups = -(-out_c // group_lanes)
    dead_pos = torch.from_numpy(rng.random((rows, 1, ho, wo)) < 0.3)
    dead_grp = torch.from_numpy(rng.random((rows, groups, 1, ho, wo)) < dead_group)
    dead_grp = dead_grp.expand(rows, groups, group_lanes, ho, wo).reshape(rows, -1, ho, wo)
    dead_row = torch.from_numpy(rng.random((rows, 1, 1, 1)) >= row_density)
    zero = _half(rng.integers(0, 2, d.shape) << 15)
    d = torch.where(dead_pos | dead_grp[:, :out_c] | dead_row, zero, d)
    if mac:
        x = random_analog(rng, rows, in_c * h * w, density, specials=specials)
    else:
        x = random_spikes(rng, rows, in_c * h * w, density)
    x = x.reshape(rows, in_c, h, w)
    name = name or (f"cwg{'-mac' if mac else ''}-{rows}r-{in_c}x{h}x{w}-co{out_c}"
                    f"-k{kernel}s{stride}p{padding}-d{density:g}-rows{row_density:g}-{kind}")
    return ConvWGCase(name, d, x, kernel, stride, padding)


#: Cycles from a live row's last enumerated footprint position to its end marker (the
#: position's bitmap read, group select, δ read: the row's bank is then free).
DRAIN = 3


def _row_cycles(active, cost, per_word):
    """Cycles of one live row from its first input word to its end marker: the compressor
    takes a word per cycle (in the cycle of the previous word's last event) and emits one
    event per cycle; an event waits for the enumerator, which spends ``max(1, cost)``
    cycles on it; the end marker waits ``DRAIN`` cycles more after the last footprint."""
    C, H, W = active.shape
    t = free = 0
    for c in range(C):
        for iy in range(H):
            for w0 in range(0, W, per_word):
                hits = np.flatnonzero(active[c, iy, w0:w0 + per_word])
                if not len(hits):
                    t += 1
                for ix in hits:
                    e = max(t, free)
                    free = e + max(1, int(cost[c, iy, w0 + ix]))
                    t = e + 1
    return max(t, free) + 1 + (DRAIN if free else 0)


def conv_wg_cycle_model(params, case: ConvWGCase) -> dict:
    """Predicted busy cycles.  ``G + 1`` cycles for the base table; row ``r`` then takes
    ``J·Ho·Wo`` cycles to load its δ maps (one value per cycle, once a bank is free: with
    two banks, while row ``r − 1`` is processed), then ``proc(r)``: its input words at one
    per cycle and, in a live row, each active input's enumeration cycles (per footprint
    position ``max(1, live groups)``), overlapped as the compressor runs ahead by one
    event (:func:`_row_cycles`), + 1 for the end marker and ``DRAIN``; then
    ``(L + 4)·G·C·K²`` for the read-out."""
    from .harness import make_engine
    from .layout import words_per_step
    from .wg_conv import ConvWGEngine
    engine = make_engine(params, ConvWGEngine)
    L = engine.lanes
    rows, J, ho, wo = case.deltas.shape
    G = -(-J // L)
    _, C, H, W = case.inputs.shape
    per_word = engine.word_bits // 16 if case.mac else engine.word_bits
    words = C * H * words_per_step(W, engine.word_bits, case.mac)
    live = case.live_rows()
    act = case.active().numpy()
    cost = case.work(L)["cost"]
    load_end, proc_end = [], []
    for r in range(rows):
        free = proc_end[r - engine.delta_banks] if r >= engine.delta_banks else G + 1
        load_end.append(max(load_end[-1] if r else 0, free) + J * ho * wo)
        proc = _row_cycles(act[r], cost[r], per_word) if live[r] else words + 1
        proc_end.append(max(proc_end[-1] if r else 0, load_end[-1]) + proc)
    readout = (L + 4) * G * C * case.kernel ** 2
    return {"scan": proc_end[-1], "readout": readout, "model": proc_end[-1] + readout + 16}


def conv_wg_stimulus(params, case: ConvWGCase):
    """Pack a conv WG tile for a :class:`~.wg_conv.ConvWGEngine` configuration: a
    :class:`~.harness.Stimulus` (no weight words; per row the flat δ words, the unused
    half of a row's last word holding :data:`DELTA_PAD`).  Every lane of every gradient
    word is checked (lanes past ``J`` must be ``+0``)."""
    from .harness import Stimulus, make_engine
    from .layout import analog_words, feature_map_words, field_offsets, pack_config
    from .wg_conv import DELTA_WORD_BITS, ConvWGEngine
    engine = make_engine(params, ConvWGEngine)
    L = engine.lanes
    rows, J, ho, wo = case.deltas.shape
    G = -(-J // L)
    _, C, H, W = case.inputs.shape
    K = case.kernel
    xbits = max(0, (wo - 1).bit_length())
    if (G > engine.max_groups or W > engine.max_width or H > engine.max_height
            or C > engine.max_channels or K > engine.max_kernel or case.stride > engine.max_stride
            or G * C * K * K > engine.acc_depth or G * (ho << xbits) > engine.delta_depth
            or rows > engine.max_rows or case.stride & (case.stride - 1)
            or (case.mac and not engine.mac_support)):
        raise ValueError(f"{case.name} does not fit {params}")
    fields = dict(in_w=W, in_h=H, in_c=C, kernel=K, stride_log2=case.stride.bit_length() - 1,
                  pad=case.padding, out_h=ho, out_w=wo, out_xbits=xbits, n_rows=rows,
                  n_groups=G, n_out=J, w_kk=K * K, n_weights=C * K * K)
    if engine.mac_support:
        fields["mac"] = int(case.mac)
    config = pack_config(engine.config_layout, **fields)
    per_row = -(-J * ho * wo // 2)
    deltas = analog_words(_bits(case.deltas).reshape(rows, -1), DELTA_WORD_BITS)
    if J * ho * wo % 2:
        for r in range(rows):
            deltas[(r + 1) * per_row - 1] |= DELTA_PAD << 16
    inputs = feature_map_words(_bits(case.inputs) if case.mac else case.inputs.numpy(),
                               engine.word_bits, case.mac)
    g = np.zeros((G * L, C * K * K), dtype=np.int64)
    g[:J] = _bits(case.golden()).reshape(J, C * K * K)
    offs = field_offsets(engine.out_layout)
    v_off, (i_off, i_w), (g_off, g_w) = offs["value"][0], offs["index"], offs["group"]
    mask = ((((1 << (16 * L)) - 1) << v_off) | (((1 << i_w) - 1) << i_off)
            | (((1 << g_w) - 1) << g_off))
    expected = []
    for group in range(G):
        for i in range(C * K * K):
            value = (i << i_off) | (group << g_off)
            for l in range(L):
                value |= int(g[group * L + l, i]) << (v_off + 16 * l)
            expected.append(value)
    live = case.live_rows()
    work = case.work(L)
    events = int(work["events"][live].sum())
    ops = int(work["updates"][live].sum()) * L
    skipped = int(work["skipped"][live].sum())
    limit = 4 * conv_wg_cycle_model(params, case)["model"] + 2000
    return Stimulus(case, config, [], inputs, expected, [mask] * len(expected), events, ops,
                    skipped, limit, deltas=deltas)


def simulate_conv_wg(params, cases, *, idle=0.0, backpressure=0.0, seed=0):
    """Run conv WG tiles back to back on one :class:`~.wg_conv.ConvWGEngine` in the
    Amaranth simulator (δ and input words offered independently, random idle cycles and
    back-pressure).  Returns a :class:`~.harness.CaseResult` per case."""
    from amaranth.hdl import Value
    from amaranth.sim import Simulator

    from .harness import compare
    from .wg_conv import ConvWGEngine
    e = ConvWGEngine(**params)
    stims = [conv_wg_stimulus(params, c) for c in cases]
    rng = random.Random(seed)
    raw = []
    cmd_p, d_p, in_p, out_p = (Value.cast(p) for p in (e.cmd.payload, e.deltas.payload,
                                                        e.inputs.payload, e.grads.payload))

    async def bench(ctx):
        for stim in stims:
            ctx.set(e.cnt_clear, 1)
            await ctx.tick()
            ctx.set(e.cnt_clear, 0)
            ctx.set(cmd_p, stim.config)
            ctx.set(e.cmd.valid, 1)
            await ctx.tick()
            ctx.set(e.cmd.valid, 0)
            outs, sent, dsent, cycles = [], 0, 0, 0
            while cycles <= stim.cycle_limit:
                present = sent < len(stim.inputs) and not (idle and rng.random() < idle)
                dpresent = dsent < len(stim.deltas) and not (idle and rng.random() < idle)
                ctx.set(e.inputs.valid, int(present))
                ctx.set(e.deltas.valid, int(dpresent))
                if present:
                    ctx.set(in_p, stim.inputs[sent])
                if dpresent:
                    ctx.set(d_p, stim.deltas[dsent])
                ctx.set(e.grads.ready, 0 if backpressure and rng.random() < backpressure else 1)
                _, _, i_ready, d_ready, o_valid, o_ready, o_payload, busy = \
                    await ctx.tick().sample(e.inputs.ready, e.deltas.ready, e.grads.valid,
                                            e.grads.ready, out_p, e.busy)
                sent += int(present and i_ready)
                dsent += int(dpresent and d_ready)
                if o_valid and o_ready:
                    outs.append(int(o_payload))
                cycles += 1
                if not busy and len(outs) >= len(stim.expected):
                    break
            ctx.set(e.inputs.valid, 0)
            ctx.set(e.deltas.valid, 0)
            raw.append((outs, {"busy": ctx.get(e.cnt_busy), "events": ctx.get(e.cnt_events),
                               "ops": ctx.get(e.cnt_ops), "skipped": ctx.get(e.cnt_skipped)}))

    sim = Simulator(e)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return [compare(s, outs, cnt) for s, (outs, cnt) in zip(stims, raw)]


def run_cocotb_conv_wg(params, simulator, cases, *, idle=0.0, backpressure=0.0,
                       label="conv-wg", seed=None):
    """Run conv WG tiles back to back under cocotb with the engines' common driver
    (:mod:`trident.rtl.engines.cocotb_fp`).  Returns ``(results, info)`` as
    :func:`~.harness.run_cocotb_fc`."""
    from trident.verify.runner import derive_seed, run_cocotb_exchange
    from trident.verify.verilog import build_root, generate_verilog

    from .harness import COCOTB_MODULE, compare
    from .wg_conv import ConvWGEngine
    stims = [conv_wg_stimulus(params, c) for c in cases]
    vmod = generate_verilog(ConvWGEngine, dict(params))
    stage = build_root() / "vectors"
    stage.mkdir(parents=True, exist_ok=True)
    tag = f"{label}-{simulator}-{os.getpid()}-{time.monotonic_ns()}"
    vec_path, out_path = stage / f"{tag}.npz", stage / f"{tag}.json"
    ins = [x for s in stims for x in s.inputs]
    ds = [x for s in stims for x in s.deltas]
    offs = {k: np.cumsum([0] + [len(f(s)) for s in stims]).astype(np.int64)
            for k, f in (("w", lambda s: s.weights), ("i", lambda s: s.inputs),
                         ("d", lambda s: s.deltas), ("o", lambda s: s.expected))}
    np.savez(vec_path, weights=_to_words([0]), inputs=_to_words(ins or [0]),
             deltas=_to_words(ds or [0]), config=_to_words([s.config for s in stims]),
             limit=np.array([s.cycle_limit for s in stims], dtype=np.int64),
             **{f"off_{k}": v for k, v in offs.items()})
    env = {"TRIDENT_FP_VECTORS": str(vec_path), "TRIDENT_FP_RESULTS": str(out_path),
           "TRIDENT_IDLE": str(idle), "TRIDENT_BACKPRESSURE": str(backpressure)}
    seed = derive_seed(label, simulator) if seed is None else seed
    out, data = run_cocotb_exchange(vmod, simulator, test_module=COCOTB_MODULE, vectors=vec_path,
                                    results=out_path, load=_load_json, extra_env=env, seed=seed,
                                    label=label)
    results = [compare(s, [int(x, 16) for x in r["outputs"]], r["counters"])
               for s, r in zip(stims, data["cases"])]
    if len(results) < len(stims):
        raise AssertionError(f"{simulator}: only {len(results)} of {len(stims)} cases ran")
    return results, {"build_s": out["build_s"], "test_s": out["test_s"],
                     "sim_s": data.get("wall_s")}
