"""Unit tests of the core's small blocks in the Amaranth simulator: the DMA's address
generator (negative strides, zero counts, back-pressure, its registered range flag), the
row-replay buffer, the BPWG
stream fork and the δO scaler (both under random idle inputs and back-pressure)."""

import random

import numpy as np
import torch
from amaranth.hdl import Value
from amaranth.sim import Simulator

from trident.rtl.core.dma import AddressGen
from trident.golden.hw import fp16 as F
from trident.rtl.core.glue import HalfScaler, RowReplay, StreamFork

AW = 16


def _program(rng):
    counts = [rng.choice([0, 1, 2, 3, 5]) if rng.random() < 0.1 else rng.randint(1, 5)
              for _ in range(3)]
    strides = [rng.randint(-40, 40) for _ in range(3)]
    return rng.randint(0, 1 << AW - 1), counts, strides


def _expected(base, counts, strides):
    if 0 in counts:
        return []
    return [(base + a * strides[0] + b * strides[1] + c * strides[2]) % (1 << AW)
            for a in range(counts[0]) for b in range(counts[1]) for c in range(counts[2])]


def test_address_gen():
    """Programs against the nested loops, with the consumer stalling 30 % of the cycles;
    each address's ``out_of_range`` flag against a limit near the program's addresses."""
    rng = random.Random(1)
    dut = AddressGen(AW, 8)
    programs = [_program(rng) for _ in range(40)]
    limits = [max(0, base + rng.randint(-60, 60)) for base, _, _ in programs]
    seen = []
    flags_wrong = []

    async def bench(ctx):
        for (base, counts, strides), limit in zip(programs, limits):
            ctx.set(dut.limit, limit)
            p = dut.cmd.payload
            ctx.set(p.base, base)
            for name, v in zip(("count_a", "count_b", "count_c"), counts):
                ctx.set(getattr(p, name), v)
            for name, v in zip(("stride_a", "stride_b", "stride_c"), strides):
                ctx.set(getattr(p, name), v % (1 << AW))
            ctx.set(dut.addr.ready, 0)
            ctx.set(dut.cmd.valid, 1)
            await ctx.tick().until(dut.cmd.ready)
            ctx.set(dut.cmd.valid, 0)
            out = []
            await ctx.tick()
            while ctx.get(dut.busy):
                ctx.set(dut.addr.ready, rng.random() > 0.3)
                _, _, valid, ready, addr, over = await ctx.tick().sample(
                    dut.addr.valid, dut.addr.ready, dut.addr.payload, dut.out_of_range)
                if valid and ready:
                    out.append(addr)
                if valid and over != (addr >= limit):
                    flags_wrong.append((addr, limit, over))
            seen.append(out)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    for (base, counts, strides), out in zip(programs, seen):
        assert out == _expected(base, counts, strides), (base, counts, strides)
    assert not flags_wrong, flags_wrong[:5]
    assert any(a >= lim for out, lim in zip(seen, limits) for a in out), "no address out of range"
    assert any(a < lim for out, lim in zip(seen, limits) for a in out), "no address in range"


def test_row_replay():
    """Per-sample rows come out ``steps`` times from one read (replay) or pass through
    (no replay); random idle inputs and back-pressure."""
    rng = random.Random(2)
    dut = RowReplay(16, 8)
    cases = [(rng.randint(1, 16), rng.randint(1, 4), rng.random() < 0.7, rng.randint(1, 3))
             for _ in range(12)]
    results = []

    async def bench(ctx):
        for words, steps, replay, samples in cases:
            rows = [[rng.getrandbits(32) for _ in range(words)] for _ in range(samples)]
            stream_in = [w for row in rows for w in (row if replay else row * steps)]
            expect = [w for row in rows for w in row * steps]
            ctx.set(dut.words, words)
            ctx.set(dut.steps, steps)
            ctx.set(dut.replay, replay)
            await ctx.tick()                # the configuration settles a cycle before start
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            got, sent = [], 0
            for _ in range(20 * len(expect) + 20):
                if len(got) == len(expect):
                    break
                offer = sent < len(stream_in) and rng.random() > 0.2
                ctx.set(dut.i.valid, offer)
                if offer:
                    ctx.set(dut.i.payload, stream_in[sent])
                ctx.set(dut.o.ready, rng.random() > 0.3)
                _, _, i_ok, o_ok, data = await ctx.tick().sample(
                    Value.cast(dut.i.valid) & dut.i.ready, Value.cast(dut.o.valid) & dut.o.ready,
                    dut.o.payload)
                sent += bool(i_ok)
                if o_ok:
                    got.append(data)
            ctx.set(dut.i.valid, 0)
            results.append((got, expect, sent, len(stream_in)))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    for got, expect, sent, n_in in results:
        assert got == expect
        assert sent == n_in


def _pump(dut, words, sinks, rng, cycles, on_cycle=None, settings=()):
    """Offer ``words`` on ``dut.i`` (idle 20 % of the cycles) while each sink stalls at its
    own random rate (``settings``: constant inputs to set first); returns what each sink
    received and how many words went in."""
    got = {name: [] for name in sinks}
    sent = [0]

    async def bench(ctx):
        for signal, value in settings:
            ctx.set(signal, value)
        for _ in range(cycles):
            offer = sent[0] < len(words) and rng.random() > 0.2
            ctx.set(dut.i.valid, offer)
            if offer:
                ctx.set(dut.i.payload, words[sent[0]])
            for name, rate in sinks.items():
                ctx.set(getattr(dut, name).ready, rng.random() < rate)
            probes = [Value.cast(dut.i.valid) & dut.i.ready]
            for name in sinks:
                port = getattr(dut, name)
                probes += [Value.cast(port.valid) & port.ready, port.payload]
            _, _, took, *outs = await ctx.tick().sample(*probes)
            sent[0] += bool(took)
            for k, name in enumerate(sinks):
                if outs[2 * k]:
                    got[name].append(outs[2 * k + 1])
            if on_cycle:
                on_cycle(got)
            if all(len(v) == len(words) for v in got.values()):
                break

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return got, sent[0]


def test_stream_fork():
    """Each branch gets every word in order at its own pace; the faster one runs at most
    ``depth`` words (+ the FIFO's output register) ahead of the slower."""
    rng = random.Random(3)
    depth = 8
    words = [rng.getrandbits(32) for _ in range(300)]
    lead = []
    got, sent = _pump(StreamFork(depth), words, {"a": 0.9, "b": 0.25}, rng, 5000,
                      lambda got: lead.append(len(got["a"]) - len(got["b"])))
    assert got["a"] == words and got["b"] == words and sent == len(words)
    assert depth - 1 <= max(lead) <= depth + 1          # the slack is used, and bounded


def test_half_scaler():
    """Both halves times ``k`` (RNE binary16, the golden multiply), no word lost or repeated
    under back-pressure: the multiplier never stalls, the credits hold words back."""
    rng = random.Random(4)
    halves = np.random.default_rng(4).standard_normal(400).astype(np.float16)
    halves[::7] = 0.0
    bits = halves.view(np.uint16).astype(np.int64)
    words = [int(bits[2 * n]) | int(bits[2 * n + 1]) << 16 for n in range(200)]
    k = F.const(0.3)
    dut = HalfScaler()
    got, sent = _pump(dut, words, {"o": 0.4}, rng, 5000, settings=[(dut.k.as_value(), int(F.bits(k)))])
    scaled = F.bits(F.mul(torch.from_numpy(halves), k.expand(400))).numpy().astype(np.int64) & 0xFFFF
    assert sent == len(words)
    assert got["o"] == [int(scaled[2 * n]) | int(scaled[2 * n + 1]) << 16 for n in range(200)]
