"""EventCompressor in the Amaranth simulator: ascending active indices, end markers,
bits past n_in ignored, one event per cycle, back-pressure."""

import random

import numpy as np
import pytest
from amaranth.hdl import Value
from amaranth.sim import Simulator

from trident.rtl.engines import EventCompressor


def _simulate(dut, n_in, mac, words, steps, *, backpressure=0.0, idle=0.0, seed=0):
    """Feed ``words`` (``steps`` steps), return the ``(index, value, end, cycle)`` items."""
    rng = random.Random(seed)
    items = []
    o_payload = Value.cast(dut.o.payload)
    fields = {name: (f.offset, Value.cast(getattr(dut.o.payload, name)).shape().width)
              for name, f in dut.layout}

    def field(raw, name):
        if name not in fields:
            return None
        off, width = fields[name]
        return (raw >> off) & ((1 << width) - 1)

    async def bench(ctx):
        ctx.set(dut.n_in, n_in)
        ctx.set(dut.mac, mac)
        ctx.set(dut.restart, 1)
        await ctx.tick()
        ctx.set(dut.restart, 0)
        ctx.set(dut.n_in, 0)            # sampled on restart only
        sent, cycle, ends = 0, 0, 0
        while ends < steps:
            present = sent < len(words) and not (idle and rng.random() < idle)
            ctx.set(dut.i.valid, int(present))
            if present:
                ctx.set(dut.i.payload, words[sent])
            ready = 0 if backpressure and rng.random() < backpressure else 1
            ctx.set(dut.o.ready, ready)
            _, _, i_ready, o_valid, raw = await ctx.tick().sample(
                dut.i.ready, dut.o.valid, o_payload)
            if present and i_ready:
                sent += 1
            if o_valid and ready:
                raw = int(raw)
                items.append((field(raw, "index"), field(raw, "value"), field(raw, "end"),
                              cycle))
                ends += field(raw, "end")
            cycle += 1
            if cycle > 20 * len(words) + 200:
                raise TimeoutError(f"{ends} of {steps} steps after {cycle} cycles")
        assert sent == len(words)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return items


def _split(items):
    steps, cur = [], []
    for index, value, end, cycle in items:
        if end:
            steps.append(cur)
            cur = []
        else:
            cur.append((index, value, cycle))
    return steps


@pytest.mark.parametrize("word_bits,n_in", [(8, 37), (32, 64), (16, 5)])
def test_spike_lists(rng, word_bits, n_in):
    dut = EventCompressor(max_inputs=128, word_bits=word_bits)
    steps = 6
    densities = [0.0, 1.0, 0.05, 0.5, 0.2, 0.9]
    nw = -(-n_in // word_bits)
    words, expected = [], []
    for t in range(steps):
        bits = rng.random(nw * word_bits) < densities[t]
        expected.append(list(np.flatnonzero(bits[:n_in])))     # bits past n_in ignored
        words += [int(sum(1 << b for b in np.flatnonzero(bits[w * word_bits:(w + 1) * word_bits])))
                  for w in range(nw)]
    items = _simulate(dut, n_in, 0, words, steps)
    got = _split(items)
    assert [[i for i, _, _ in s] for s in got] == expected
    assert all(v is None for s in got for _, v, _ in s)


def test_spike_throughput(rng):
    """Without back-pressure a dense step costs one cycle per event (words are taken in
    the shadow of the previous word's last event) and a zero word one cycle."""
    dut = EventCompressor(max_inputs=256, word_bits=16)
    n_in = 160
    words = [0xFFFF] * 10 + [0] * 10
    items = _simulate(dut, n_in, 0, words, 2)
    cycles = [c for _, _, _, c in items]
    first_step = cycles[:161]                   # 160 events + end
    assert first_step[-1] - first_step[0] == 160
    assert cycles[-1] - cycles[160] <= 11       # a step of zero words: ~1 cycle per word


def test_backpressure_and_idle(rng):
    dut = EventCompressor(max_inputs=64, word_bits=8)
    n_in, steps = 29, 5
    nw = 4
    words = [int(x) for x in rng.integers(0, 256, nw * steps)]
    items = _simulate(dut, n_in, 0, words, steps, backpressure=0.5, idle=0.3, seed=3)
    got = _split(items)
    for t in range(steps):
        bits = [(words[t * nw + i // 8] >> (i % 8)) & 1 for i in range(n_in)]
        assert [i for i, _, _ in got[t]] == [i for i in range(n_in) if bits[i]]


def test_mac_values(rng):
    """MAC mode: a value is active unless it is ±0 (NaN, inf and subnormals are active);
    the item carries the value; spike mode on the same unit carries 1.0."""
    dut = EventCompressor(max_inputs=64, word_bits=32, mac_support=True)
    n_in, steps = 9, 4
    per = 2
    nw = -(-n_in // per)
    specials = [0x0000, 0x8000, 0x0001, 0x8001, 0x7C00, 0xFC00, 0x7E00, 0x7C01, 0x3C00, 0xBC00]
    vals = rng.choice(specials, size=(steps, nw * per))
    words = [int(vals[t, 2 * w]) | (int(vals[t, 2 * w + 1]) << 16)
             for t in range(steps) for w in range(nw)]
    items = _simulate(dut, n_in, 1, words, steps)
    got = _split(items)
    for t in range(steps):
        exp = [(i, int(vals[t, i])) for i in range(n_in) if vals[t, i] & 0x7FFF]
        assert [(i, v) for i, v, _ in got[t]] == exp
    spikes = _split(_simulate(EventCompressor(max_inputs=64, word_bits=32, mac_support=True),
                              40, 0, [0x80000001, 0x101], 1))
    assert [(i, v) for i, v, _ in spikes[0]] == [(0, 0x3C00), (31, 0x3C00), (32, 0x3C00)]


@pytest.mark.parametrize("mac", [0, 1])
def test_feature_map_rows_and_planes(rng, mac):
    """planes × rows × n_in inputs, every row on its own words: items carry (plane, row,
    index) in ascending order; rows cost no extra cycle."""
    planes, rows, width = 3, 5, 11
    dut = EventCompressor(max_inputs=16, word_bits=32 if mac else 8, mac_support=bool(mac),
                          max_rows=8, max_planes=4)
    per = 2 if mac else 8
    nw = -(-width // per)
    steps = 2
    words, expected = [], []
    for t in range(steps):
        exp = []
        for c in range(planes):
            for r in range(rows):
                if mac:
                    vals = np.where(rng.random(nw * per) < 0.4,
                                    rng.integers(1, 0x7C00, nw * per), 0)
                    words += [int(vals[2 * w]) | (int(vals[2 * w + 1]) << 16) for w in range(nw)]
                    exp += [(c, r, i, int(vals[i])) for i in range(width) if vals[i]]
                else:
                    bits = rng.random(nw * per) < 0.3
                    words += [int(sum(1 << b for b in np.flatnonzero(bits[w * 8:(w + 1) * 8])))
                              for w in range(nw)]
                    exp += [(c, r, i, 0x3C00) for i in range(width) if bits[i]]
        expected.append(exp)

    items = []
    o_payload = Value.cast(dut.o.payload)
    fields = {name: (f.offset, Value.cast(getattr(dut.o.payload, name)).shape().width)
              for name, f in dut.layout}

    def field(raw, name):
        off, width_ = fields[name]
        return (raw >> off) & ((1 << width_) - 1)

    async def bench(ctx):
        ctx.set(dut.n_in, width)
        ctx.set(dut.rows, rows)
        ctx.set(dut.planes, planes)
        ctx.set(dut.mac, mac)
        ctx.set(dut.restart, 1)
        await ctx.tick()
        ctx.set(dut.restart, 0)
        sent, ends, cycles = 0, 0, 0
        ctx.set(dut.o.ready, 1)
        while ends < steps:
            ctx.set(dut.i.valid, int(sent < len(words)))
            if sent < len(words):
                ctx.set(dut.i.payload, words[sent])
            _, _, i_ready, o_valid, raw = await ctx.tick().sample(
                dut.i.ready, dut.o.valid, o_payload)
            if sent < len(words) and i_ready:
                sent += 1
            if o_valid:
                raw = int(raw)
                items.append(raw)
                ends += field(raw, "end")
            cycles += 1
        # one cycle per word or event, one per end marker, one to load after restart
        assert cycles <= len(words) + sum(len(e) for e in expected) + steps + 2

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    got, cur = [], []
    for raw in items:
        if field(raw, "end"):
            got.append(cur)
            cur = []
        else:
            cur.append((field(raw, "plane"), field(raw, "row"), field(raw, "index"),
                        field(raw, "value") if mac else 0x3C00))
    assert got == expected
