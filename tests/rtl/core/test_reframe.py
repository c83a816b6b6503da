"""``MapReframer`` in the Amaranth simulator: flat packed DRAM rows of feature maps (the
layout of docs/descriptors.md §5, packed by the golden model's helpers) against the conv
engines' per-image-row words, under random input gaps and back-pressure; one word per cycle
when nothing stalls; ``start`` in the middle of a run."""

import random

import numpy as np
from amaranth.hdl import Value
from amaranth.sim import Simulator

from trident.golden.hw.descriptors import pack_half, pack_spikes
from trident.rtl.core.reframe import MapReframer


def _words(count, half):
    """Words holding ``count`` elements."""
    return -(-count // (2 if half else 32))


def _case(rng, width, lines, half, rows):
    """Input words of ``rows`` random flat rows and the words the engines expect."""
    flat, expect = [], []
    for _ in range(rows):
        if half:
            elems = np.array([rng.getrandbits(16) for _ in range(lines * width)], dtype=np.uint16)
            pack = pack_half
        else:
            elems = np.array([rng.random() < 0.5 for _ in range(lines * width)], dtype=bool)
            pack = pack_spikes
        flat += pack(elems[None, :], _words(lines * width, half)).ravel().tolist()
        expect += pack(elems.reshape(lines, width), _words(width, half)).ravel().tolist()
    return [int(w) for w in flat], [int(w) for w in expect]


async def _configure(ctx, dut, width, lines, half):
    """Set the geometry, then pulse ``start``; returns whether ``i`` took a word in the
    ``start`` cycle (it must not: the word would be lost)."""
    ctx.set(dut.width, width)
    ctx.set(dut.lines, lines)
    ctx.set(dut.half, half)
    await ctx.tick()                    # the configuration settles a cycle before start
    ctx.set(dut.start, 1)
    _, _, took = await ctx.tick().sample(Value.cast(dut.i.valid) & dut.i.ready)
    ctx.set(dut.start, 0)
    return took


async def _stream(ctx, dut, rng, words, n_out, *, idle=0.0, stall=0.0, limit=None):
    """Offer ``words`` (idle a fraction ``idle`` of the cycles) while ``o`` stalls a
    fraction ``stall``, until ``n_out`` words came out; returns them, the words taken and
    the cycles used.  Also checks each cycle that ``o.valid`` ignores ``o.ready``."""
    got, sent, cycles = [], 0, 0
    limit = limit or 20 * (n_out + len(words)) + 50
    while len(got) < n_out and cycles < limit:
        valid_before = ctx.get(dut.o.valid)
        offer = sent < len(words) and rng.random() >= idle
        ctx.set(dut.i.valid, offer)
        if offer:
            ctx.set(dut.i.payload, words[sent])
        ctx.set(dut.o.ready, rng.random() >= stall)
        assert ctx.get(dut.o.valid) == valid_before
        _, _, took, gave, data = await ctx.tick().sample(
            Value.cast(dut.i.valid) & dut.i.ready, Value.cast(dut.o.valid) & dut.o.ready,
            dut.o.payload)
        sent += bool(took)
        if gave:
            got.append(data)
        cycles += 1
    ctx.set(dut.i.valid, 0)
    return got, sent, cycles


async def _no_more(ctx, dut, cycles=6):
    """Nothing else comes out once the input is exhausted (no duplicated word)."""
    ctx.set(dut.o.ready, 1)
    extra = 0
    for _ in range(cycles):
        _, _, gave = await ctx.tick().sample(Value.cast(dut.o.valid) & dut.o.ready)
        extra += bool(gave)
    return extra


def _simulate(dut, bench):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


# widths at word boundaries, rows that leave the window one bit into the next word (33,
# 65: off + take = 33), the widest rows, one-element rows
EDGES = [(1, 1, 0), (32, 1, 0), (33, 5, 0), (31, 5, 0), (64, 2, 0), (65, 3, 0), (255, 2, 0),
         (1, 1, 1), (2, 3, 1), (1, 12, 1), (255, 1, 1), (17, 4, 1)]
# starved (the staging buffer runs nearly empty), back-pressured (it runs full), mixed
REGIMES = [(0.7, 0.0), (0.1, 0.5), (0.3, 0.3)]


def _geometry(rng):
    """Random (width, lines, half, flat rows)."""
    half = rng.random() < 0.5
    return rng.randint(1, 40 if half else 70), rng.randint(1, 12), int(half), rng.randint(1, 4)


def test_reframe_random():
    """Spike widths 1…70 and binary16 widths 1…40, 1…12 image rows per flat row, several
    flat rows back to back, each under one of three regimes (``REGIMES``: fraction of idle
    input cycles, fraction of ``o`` stalls); the edge geometries under all three."""
    rng = random.Random(11)
    dut = MapReframer()
    cases = [(w, l, h, rng.randint(1, 4), regime) for w, l, h in EDGES for regime in REGIMES]
    cases += [(*_geometry(rng), REGIMES[n % 3]) for n in range(36)]
    results = []

    async def bench(ctx):
        for width, lines, half, rows, (idle, stall) in cases:
            flat, expect = _case(rng, width, lines, half, rows)
            await _configure(ctx, dut, width, lines, half)
            got, sent, _ = await _stream(ctx, dut, rng, flat, len(expect), idle=idle, stall=stall)
            extra = await _no_more(ctx, dut)
            results.append(((width, lines, half, rows, idle, stall), got, expect, sent, len(flat),
                            extra))

    _simulate(dut, bench)
    for case, got, expect, sent, n_in, extra in results:
        assert got == expect, case
        assert sent == n_in, case
        assert extra == 0, case


def test_reframe_throughput():
    """No input gaps, ``o`` always ready: one output word per cycle after a three-cycle
    latency, for rows wider and narrower than a word."""
    rng = random.Random(12)
    dut = MapReframer()
    cases = [(5, 12, 0, 3), (32, 6, 0, 3), (45, 7, 0, 2), (70, 3, 0, 4), (3, 9, 1, 3),
             (2, 12, 1, 2), (40, 4, 1, 2), (255, 1, 1, 1)]
    results = []

    async def bench(ctx):
        for width, lines, half, rows in cases:
            flat, expect = _case(rng, width, lines, half, rows)
            await _configure(ctx, dut, width, lines, half)
            got, sent, cycles = await _stream(ctx, dut, rng, flat, len(expect))
            results.append(((width, lines, half, rows), got, expect, sent, len(flat), cycles))

    _simulate(dut, bench)
    for case, got, expect, sent, n_in, cycles in results:
        assert got == expect, case
        assert sent == n_in, case
        assert cycles <= len(expect) + 3, (case, cycles, len(expect))


def test_reframe_restart():
    """``start`` after a partial run (words staged, a word waiting on ``o``, mid image row,
    a stray word still offered) clears everything and takes no input word in its cycle; the
    next run, with another geometry, comes out exactly."""
    rng = random.Random(13)
    dut = MapReframer()
    results = []

    async def bench(ctx):
        for _ in range(10):
            width, lines, half, rows = _geometry(rng)
            flat, expect = _case(rng, width, lines, half, rows)
            await _configure(ctx, dut, width, lines, half)
            # a partial run that stops mid-stream, then some back-pressure so that a word
            # waits on o; a stray word is offered from the cycle before start on
            await _stream(ctx, dut, rng, flat, rng.randrange(len(expect)), idle=0.2, stall=0.3)
            ctx.set(dut.o.ready, 0)
            for _ in range(rng.randint(0, 3)):
                await ctx.tick()
            ctx.set(dut.i.valid, 1)
            ctx.set(dut.i.payload, rng.getrandbits(32))
            width, lines, half, rows = _geometry(rng)
            flat, expect = _case(rng, width, lines, half, rows)
            took = await _configure(ctx, dut, width, lines, half)
            got, sent, _ = await _stream(ctx, dut, rng, flat, len(expect), idle=0.2, stall=0.3)
            extra = await _no_more(ctx, dut)
            results.append(((width, lines, half, rows), took, got, expect, sent, len(flat), extra))

    _simulate(dut, bench)
    for case, took, got, expect, sent, n_in, extra in results:
        assert not took, case
        assert got == expect, case
        assert sent == n_in, case
        assert extra == 0, case
