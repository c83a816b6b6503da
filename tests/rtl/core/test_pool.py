"""Max pooling inside the core, in the Amaranth simulator: :class:`SpikePool` (FP) and
:class:`PoolRouter` (BPN) against the golden ``maxpool_forward`` / ``maxpool_backward`` and
the golden spike ``ge(scale(H), V_th)``.

Random tiles (1–5 maps of 2…12 × 2…12 neurons, P = 2…4, ragged edges included), spike
densities 0/10/50/100 %, several rows back to back, random idle inputs and output
back-pressure, a run cut short by ``start`` before each shape; the router's ``H`` holds
±0, subnormals, exactly ``V_th``, its neighbours, ±inf and NaNs, with IF/LIF and KLIF
thresholds.  The rate tests measure the cycles per row with no gaps and no back-pressure.
"""

import random

import numpy as np
import torch
from amaranth.hdl import Value
from amaranth.sim import Simulator

from trident.golden.hw import fp16 as F
from trident.golden.hw import neuron as N
from trident.golden.hw.backward import maxpool_backward
from trident.golden.hw.forward import maxpool_forward
from trident.rtl.core.pool import PoolRouter, SpikePool

DENSITIES = (0.0, 0.1, 0.5, 1.0)
MAX_NEURONS = 256


def _shapes(rng, count, pools=(2, 3, 4)):
    """``(maps, out_h, out_w, P)`` with ``maps·out_h·out_w ≤ MAX_NEURONS``; a third of them
    ragged in both directions."""
    shapes = []
    while len(shapes) < count:
        p = rng.choice(pools)
        oh, ow, maps = rng.randint(p, 12), rng.randint(p, 12), rng.randint(1, 5)
        if len(shapes) % 3 == 0 and (oh % p == 0 or ow % p == 0):
            continue
        if maps * oh * ow <= MAX_NEURONS:
            shapes.append((maps, oh, ow, p))
    return shapes


def _config(dut, shape):
    maps, oh, ow, p = shape
    return [(dut.maps, maps), (dut.out_h, oh), (dut.out_w, ow), (dut.pool, p),
            (dut.pool_h, oh // p), (dut.pool_w, ow // p)]


def _pack_bits(bits):
    """Spike row → 32-bit words, element ``32w + b`` in bit ``b`` of word ``w``."""
    words = [0] * -(-len(bits) // 32)
    for n, b in enumerate(bits):
        words[n // 32] |= int(b) << (n % 32)
    return words


def _pack_halves(halves):
    """binary16 patterns → words, element ``2w`` low, a missing last half ``+0``."""
    h = list(halves) + [0] * (len(halves) % 2)
    return [int(h[2 * w]) | int(h[2 * w + 1]) << 16 for w in range(len(h) // 2)]


class _Consumer:
    """A sink's ``ready``: low with probability ``p_stall`` each cycle, or, for
    ``p_stall ≥ 1``, in bursts of up to ``p_stall`` cycles between bursts of 1–8 ready ones
    (sustained back-pressure)."""

    def __init__(self, rng, p_stall):
        self.rng, self.p_stall = rng, p_stall
        self.left, self.ready = 0, True

    def __call__(self):
        if self.p_stall < 1:
            return self.rng.random() >= self.p_stall
        if self.left == 0:
            self.ready = not self.ready
            span = 8 if self.ready else int(self.p_stall)
            self.left = self.rng.randint(1, span)
        self.left -= 1
        return self.ready


def _simulate(dut, runs, rng):
    """Run ``runs`` on ``dut``: each is ``(settings, inputs, outputs, p_gap, p_stall, paired,
    limit)`` — constant inputs set a cycle before a ``start`` pulse; ``inputs`` maps a stream
    member to its words (offered with probability ``1 − p_gap``); ``outputs`` maps a stream
    member to the number of words to collect (``None``: collect nothing and stop after
    ``limit`` cycles, a run cut short), its ``ready`` from a :class:`_Consumer`; ``paired``
    drives the outputs' ``ready`` together (as the backward pipe does).  Returns, per run,
    the words received, the words taken of each input, the cycles from ``start`` to the last
    output word and whether the outputs' ``valid`` ever differed (paired runs)."""
    results = []

    async def bench(ctx):
        for settings, inputs, outputs, p_gap, p_stall, paired, limit in runs:
            for signal, value in settings:
                ctx.set(signal, value)
            await ctx.tick()                      # configuration settles a cycle before start
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            sent = {n: 0 for n in inputs}
            got = {n: [] for n in outputs}
            apart, last = False, 0
            sinks = {n: _Consumer(rng, p_stall) for n in outputs}
            for cycle in range(limit):
                for n, words in inputs.items():
                    port = getattr(dut, n)
                    offer = sent[n] < len(words) and rng.random() >= p_gap
                    ctx.set(port.valid, offer)
                    if offer:
                        ctx.set(port.payload, words[sent[n]])
                together = sinks[next(iter(outputs))]()
                for n in outputs:
                    ctx.set(getattr(dut, n).ready, together if paired else sinks[n]())
                probes = []
                for n in inputs:
                    probes.append(Value.cast(getattr(dut, n).valid) & getattr(dut, n).ready)
                for n in outputs:
                    port = getattr(dut, n)
                    probes += [port.valid, port.ready, port.payload]
                _, _, *vals = await ctx.tick().sample(*probes)
                for n in inputs:
                    sent[n] += bool(vals.pop(0))
                valids = []
                for n in outputs:
                    valid, ready, payload = vals[:3]
                    del vals[:3]
                    valids.append(valid)
                    if valid and ready:
                        got[n].append(payload)
                        last = cycle + 1
                apart |= paired and len(set(valids)) > 1
                if all(c is not None and len(got[n]) >= c for n, c in outputs.items()):
                    break
            for n in inputs:
                ctx.set(getattr(dut, n).valid, 0)
            for n in outputs:
                ctx.set(getattr(dut, n).ready, 0)
            results.append((got, sent, last, apart))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return results


# ---------------------------------------------------------------------------------------------
# SpikePool


def _spike_rows(rng, shape, rows):
    maps, oh, ow, _ = shape
    dens = [DENSITIES[r % 4] for r in range(rows)]
    rng.shuffle(dens)
    g = torch.Generator().manual_seed(rng.getrandbits(32))
    return torch.stack([torch.rand(maps, oh, ow, generator=g) < d for d in dens])


def _pool_run(dut, shape, spikes, p_gap, p_stall, limit_factor=40):
    pooled, _ = maxpool_forward(spikes, shape[3])
    words_in = [w for row in spikes for w in _pack_bits(row.flatten().tolist())]
    expect = [w for row in pooled for w in _pack_bits(row.flatten().tolist())]
    run = (_config(dut, shape), {"i": words_in}, {"o": len(expect)}, p_gap, p_stall, False,
           limit_factor * spikes.numel() + 400 * len(expect) + 200)
    return run, words_in, expect


def test_spike_pool():
    """Pooled words equal the golden OR per window (ragged lines and columns dropped, rows
    padded), under idle inputs and back-pressure; a run cut short by ``start`` leaves no
    trace in the next."""
    rng = random.Random(11)
    dut = SpikePool(max_neurons=MAX_NEURONS)
    runs, checks = [], []
    for n, shape in enumerate(_shapes(rng, 14) + [(2, 5, 7, 1)]):      # P = 1: the identity
        if n % 4 == 1:           # cut short: half a row of ones, then start again
            cut, *_ = _pool_run(dut, shape, torch.ones(1, *shape[:3], dtype=torch.bool), 0.2, 0.9)
            runs.append((*cut[:2], {"o": None}, *cut[3:6], rng.randint(5, shape[0] * 40)))
            checks.append(None)
        spikes = _spike_rows(rng, shape, rng.randint(2, 4))
        run, words_in, expect = _pool_run(dut, shape, spikes, rng.choice([0.0, 0.3, 0.9]),
                                          rng.choice([0.0, 0.3, 0.9, 300]))
        runs.append(run)
        checks.append((shape, words_in, expect))
    results = _simulate(dut, runs, rng)
    for check, (got, sent, _, _) in zip(checks, results):
        if check is None:
            continue
        shape, words_in, expect = check
        assert got["o"] == expect, shape
        assert sent["i"] == len(words_in), shape


def test_spike_pool_rate():
    """One neuron per cycle: back to back rows take ``N`` cycles each (+ 3 at the end: the
    input register, the shift register, the output register)."""
    rng = random.Random(12)
    dut = SpikePool(max_neurons=MAX_NEURONS)
    shapes = [(5, 12, 12, 3), (2, 7, 11, 2), (3, 9, 8, 4)]
    runs, sizes = [], []
    for shape in shapes:
        spikes = _spike_rows(rng, shape, 4)
        run, _, expect = _pool_run(dut, shape, spikes, 0.0, 0.0)
        runs.append(run)
        sizes.append((spikes.numel(), expect))
    for (got, _, cycles, _), (neurons, expect) in zip(_simulate(dut, runs, rng), sizes):
        assert got["o"] == expect
        assert cycles <= neurons + 3, (cycles, neurons)


# ---------------------------------------------------------------------------------------------
# PoolRouter

#: ``(v_th, klif, k)`` as binary16 patterns: IF/LIF thresholds including ±0, the smallest
#: subnormal, a negative one and +inf; KLIF (``Z = max0(k·H)``) with k < 1, k > 1, and
#: ``V_th = +0`` (every ``max0`` result fires).
NEURONS = [(0x3C00, 0, 0x3C00), (0x3800, 0, 0x3C00), (0x0000, 0, 0x3C00), (0x8000, 0, 0x3C00),
           (0x0001, 0, 0x3C00), (0xBA00, 0, 0x3C00), (0x7C00, 0, 0x3C00),
           (0x3C00, 1, 0x3A00), (0x3C00, 1, 0x4000), (0x0000, 1, 0x3A00)]

#: ±0, subnormals (smallest, largest, negative), smallest normal, ±max, ±inf, NaNs
#: (canonical, signalling, negative, all ones).
SPECIALS = [0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x83FF, 0x0400, 0x7BFF, 0xFBFF, 0x7C00,
            0xFC00, 0x7E00, 0x7C01, 0xFE00, 0xFFFF]


def _params(v_th, klif, k):
    one = F.const(1.0)
    return N.NeuronParams(kind="klif" if klif else "lif", decay_input=True, soft_reset=False,
                          v_th=F.from_bits(v_th).reshape(()), v_reset=F.const(0.0),
                          v_rest=F.const(0.0), inv_tau=one, neg_inv_tau=F.neg(one), leak=one,
                          k=F.from_bits(k).reshape(()), surrogate=None)


def _golden_spikes(params, h):
    """The spike BPN recomputes from ``H`` (golden/hw/program.py ``bpn``)."""
    return F.ge(N.scale(params, h), params.v_th.expand_as(h))


def _h_pools(rng, params):
    """Candidate ``H`` patterns split into those that fire and those that do not: the
    specials, ``±V_th`` and its neighbours, values around it and random patterns."""
    v = F.bits(params.v_th).item()
    cand = set(SPECIALS) | {v, v ^ 0x8000, (v + 1) & 0xFFFF, (v - 1) & 0xFFFF}
    around = F.round16(np.float64(F.from_bits(v).item() or 1.0)
                       * np.random.default_rng(rng.getrandbits(32)).uniform(-3, 3, 200))
    cand |= set(F.bits(around).tolist()) | {rng.getrandbits(16) for _ in range(200)}
    cand = torch.tensor(sorted(cand))
    fires = _golden_spikes(params, F.from_bits(cand))
    return cand[fires].tolist(), cand[~fires].tolist()


def _router_case(rng, shape, rows, params):
    """H rows at the row densities (shuffled), random pooled δS with specials; returns the
    input words, the expected output words and the bits."""
    maps, oh, ow, p = shape
    ph, pw = oh // p, ow // p
    fire, quiet = _h_pools(rng, params)
    dens = [DENSITIES[r % 4] for r in range(rows)]
    rng.shuffle(dens)
    h = []
    for d in dens:
        for _ in range(maps * oh * ow):
            pool = fire if (rng.random() < d and fire) or not quiet else quiet
            h.append(rng.choice(pool))
    h = torch.tensor(h).reshape(rows, maps, oh, ow)
    ds = torch.tensor([rng.choice(SPECIALS) if rng.random() < 0.3 else rng.getrandbits(16)
                       for _ in range(rows * maps * ph * pw)]).reshape(rows, maps, ph, pw)
    s = _golden_spikes(params, F.from_bits(h))
    _, first = maxpool_forward(s, p)
    routed = F.bits(maxpool_backward(F.from_bits(ds), first, p, (maps, oh, ow)))
    flat = lambda t: [_pack_halves(row.flatten().tolist()) for row in t]      # noqa: E731
    return flat(h), flat(ds), flat(routed), s


def _router_run(dut, shape, neuron, h_rows, ds_rows, out_rows, p_gap, p_stall, paired):
    v_th, klif, k = neuron
    settings = _config(dut, shape) + [(dut.v_th.as_value(), v_th), (dut.k.as_value(), k),
                                      (dut.klif, klif)]
    h_words = [w for r in h_rows for w in r]
    out = [w for r in out_rows for w in r]
    return (settings, {"h": h_words, "ds": [w for r in ds_rows for w in r]},
            {"h_o": len(h_words), "ds_o": len(out)}, p_gap, p_stall, paired,
            40 * len(h_words) + 400), h_words, out


def test_pool_router():
    """Routed δS equals the golden ``maxpool_backward`` with the golden winners, ``H`` comes
    out unchanged, under idle inputs (each stream its own) and back-pressure; paired
    consumers see ``h_o`` and ``ds_o`` valid together; a run cut short by ``start`` (words
    in the spike pipeline, a row half loaded) leaves no trace in the next."""
    rng = random.Random(21)
    dut = PoolRouter(max_neurons=MAX_NEURONS)
    runs, checks = [], []
    densities_seen = set()
    for n, shape in enumerate(_shapes(rng, 16)):
        neuron = NEURONS[n % len(NEURONS)]
        params = _params(*neuron)
        if n % 4 == 2:
            # cut short at a random cycle, or (no gaps) while the row's last spike is in the
            # pipeline: start comes in cycle N … N + latency − 1, its result after it
            h_rows, ds_rows, out_rows, _ = _router_case(rng, shape, 1, params)
            neurons = shape[0] * shape[1] * shape[2]
            precise = n % 8 == 2
            cut, *_ = _router_run(dut, shape, neuron, h_rows, ds_rows, out_rows,
                                  0.0 if precise else 0.1, 0.5, True)
            limit = (neurons - 1 + rng.randrange(dut.latency) if precise
                     else rng.randint(3, 2 * neurons + 12))
            runs.append((*cut[:2], {"h_o": None, "ds_o": None}, *cut[3:6], limit))
            checks.append(None)
        rows = rng.randint(2, 4)
        h_rows, ds_rows, out_rows, s = _router_case(rng, shape, rows, params)
        densities_seen |= {round(float(r.float().mean()), 1) for r in s}
        paired = n % 2 == 0
        run, h_words, out = _router_run(dut, shape, neuron, h_rows, ds_rows, out_rows,
                                        rng.choice([0.0, 0.3, 0.8]),
                                        rng.choice([0.0, 0.3, 0.8, 20]), paired)
        runs.append(run)
        checks.append((shape, neuron, h_words, out, len([w for r in ds_rows for w in r]), paired))
    assert {0.0, 1.0} <= densities_seen
    results = _simulate(dut, runs, rng)
    for check, (got, sent, _, apart) in zip(checks, results):
        if check is None:
            continue
        shape, neuron, h_words, out, n_ds, paired = check
        assert got["ds_o"] == out, (shape, neuron)
        assert got["h_o"] == h_words, (shape, neuron)
        assert sent == {"h": len(h_words), "ds": n_ds}, (shape, neuron)
        assert not apart, (shape, neuron)


def test_pool_router_special_windows():
    """Hand-made windows: an all-NaN window (routes to its first position), a lone spike at
    a window's last position, exactly ``V_th`` after −0 and +inf, ragged neurons that fire
    (never winners), and the δS sign and NaN payloads kept."""
    rng = random.Random(22)
    dut = PoolRouter(max_neurons=MAX_NEURONS)
    shape = (2, 5, 7, 2)                  # 2 × 3 windows per map, a ragged line and column
    neuron = (0x3C00, 0, 0x3C00)
    h = torch.full((2, 5, 7), 0x3800)     # 0.5: quiet
    h[0, 0:2, 0:2] = torch.tensor([[0x7E00, 0xFE00], [0x7C01, 0xFFFF]])   # NaNs: no spike
    h[0, 0:2, 2:4] = torch.tensor([[0x8000, 0x3BFF], [0x0001, 0x3C00]])   # only (1, 1) fires
    h[0, 0:2, 4:6] = torch.tensor([[0xFC00, 0x7C00], [0x3C00, 0x3C00]])   # (0, 1) first
    h[1, 4, :] = 0x7C00                   # ragged line fires
    h[1, :, 6] = 0x3C01                   # ragged column fires
    h[1, 2:4, 2:4] = torch.tensor([[0x3C00, 0x3C00], [0x3C00, 0x3C00]])   # (0, 0)
    ds = torch.tensor([0xFFFF, 0x8000, 0xBC00, 0x7C01, 0x0001, 0x3555,
                       0x1234, 0x8001, 0xFC00, 0x7E00, 0x5678, 0x9ABC]).reshape(1, 2, 2, 3)
    params = _params(*neuron)
    s = _golden_spikes(params, F.from_bits(h))[None]
    _, first = maxpool_forward(s, 2)
    assert first[0, 0, 0].tolist() == [0, 3, 1] and first[0, 1, 1, 1] == 0
    routed = F.bits(maxpool_backward(F.from_bits(ds), first, 2, (2, 5, 7)))
    out_rows = [_pack_halves(routed[0].flatten().tolist())]
    run, h_words, out = _router_run(dut, shape, neuron, [_pack_halves(h.flatten().tolist())],
                                    [_pack_halves(ds.flatten().tolist())], out_rows, 0.2, 0.2,
                                    True)
    (got, _, _, _), = _simulate(dut, [run], rng)
    assert got["ds_o"] == out
    assert got["h_o"] == h_words


def test_pool_router_rate():
    """Double-buffered: a row loads while the row before is emitted, so back to back rows
    take ``N + latency + 3`` cycles each (the load, the spike pipeline's drain, the bank
    switch), and the last row's emit pass ``N + 2`` more (+ 1 when ``N`` is odd: the
    one-neuron last word waits for the word before it to be taken)."""
    rng = random.Random(23)
    dut = PoolRouter(max_neurons=MAX_NEURONS)
    cases = [((4, 8, 8, 2), NEURONS[0]), ((1, 11, 12, 3), NEURONS[7]),
             ((3, 5, 9, 4), NEURONS[2])]
    runs, checks = [], []
    for shape, neuron in cases:
        h_rows, ds_rows, out_rows, _ = _router_case(rng, shape, 3, _params(*neuron))
        run, h_words, out = _router_run(dut, shape, neuron, h_rows, ds_rows, out_rows, 0.0, 0.0,
                                        True)
        runs.append(run)
        checks.append((3, shape[0] * shape[1] * shape[2], out))
    for (got, _, cycles, _), (rows, neurons, out) in zip(_simulate(dut, runs, rng), checks):
        assert got["ds_o"] == out
        assert cycles <= rows * (neurons + dut.latency + 3) + neurons + 2 + neurons % 2, \
            (cycles, neurons)
