"""The stream glue between the DMA and the engines (``rtl/core/glue.py``) in the Amaranth
simulator; the weight loaders have ``test_weight_loaders.py``.

``GradScatter``: WG's lane words of random gradients for ``n_groups`` groups of ``n_in``
inputs (odd and even ``n_in``, a short last group) against the row-major words a reference
builds (pairs of inputs per word, ``skip`` on the last group's missing rows, ``+0`` padding an
odd row), with idle input and stalled output, and its ``overflow`` pulse counted against the
non-finite gradients of the rows that exist.

``LaneGather``: rows of random words (any ``row_words``, so a row's last value is short and
its missing lanes must be ``+0``) against the values a reference packing gives, with the
input idle and the output stalled at random, and at full rate, where a value must leave
every ``L/2`` words.
"""

import random

import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from trident.rtl.core.glue import GradScatter, LaneGather
from trident.rtl.engines.wg import grad_layout
from trident.verify.amaranth_sim import simulate_stream

WORD_BITS = 32


class _FixedRows(wiring.Component):
    """``LaneGather`` with ``row_words`` tied to a constant, so it is a plain stream unit;
    the input waits one cycle, as in the core, where a run's configuration is set cycles
    before its first word (the unit's ``last_of`` register follows it one cycle later)."""

    def __init__(self, lanes, row_words):
        self.gather = LaneGather(lanes, count_bits=8)
        self.row_words = row_words
        super().__init__({"i": In(self.gather.i.signature.flip()),
                          "o": Out(self.gather.o.signature)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.gather = self.gather
        settled = Signal()
        m.d.sync += settled.eq(1)
        m.d.comb += [self.gather.i.valid.eq(self.i.valid & settled),
                     self.i.ready.eq(self.gather.i.ready & settled),
                     self.gather.i.payload.eq(self.i.payload)]
        wiring.connect(m, self.gather.o, wiring.flipped(self.o))
        m.d.comb += self.gather.row_words.eq(self.row_words)
        return m


def _expected(words, lanes, row_words):
    """Each row cut into values of ``L/2`` words, word ``q`` at bits ``32q``; zeros pad."""
    half = lanes // 2
    values = []
    for r in range(0, len(words), row_words):
        row = words[r:r + row_words]
        for v in range(0, len(row), half):
            values.append(sum(w << (WORD_BITS * q) for q, w in enumerate(row[v:v + half])))
    return values


@pytest.mark.parametrize("lanes", [2, 4, 8])
@pytest.mark.parametrize("row_words", [1, 3, 4, 7])
@pytest.mark.parametrize("idle,backpressure", [(0.0, 0.0), (0.3, 0.4)])
def test_lane_gather(lanes, row_words, idle, backpressure):
    rng = random.Random(lanes * 100 + row_words)
    rows = 5
    words = [rng.getrandbits(WORD_BITS) | 1 for _ in range(rows * row_words)]
    expect = _expected(words, lanes, row_words)
    res = simulate_stream(_FixedRows(lanes, row_words), words, idle=idle,
                          backpressure=backpressure, seed=row_words, n_outputs=len(expect))
    assert [hex(v) for v in res.outputs] == [hex(v) for v in expect]
    if idle == backpressure == 0:
        # one word per cycle: the settling cycle and the output register's one cycle of
        # latency, not a bubble per value
        assert res.cycles == len(words) + 2


@pytest.mark.parametrize("lanes", [2, 4])
def test_lane_gather_ready_from_registers(lanes):
    """Within every cycle of a random run, ``i.ready`` is the same with ``o.ready`` low and
    high: the consumer's ``ready`` never reaches the gather's producer combinationally.
    No value is lost or repeated meanwhile."""
    rng = random.Random(lanes)
    row_words = 3
    dut = _FixedRows(lanes, row_words)
    words = [rng.getrandbits(WORD_BITS) | 1 for _ in range(8 * row_words)]
    got = []

    async def bench(ctx):
        sent = 0
        for _ in range(400):
            ctx.set(dut.i.valid, sent < len(words) and rng.random() < 0.7)
            if sent < len(words):
                ctx.set(dut.i.payload, words[sent])
            ready_with = {}
            for o_ready in (0, 1):
                ctx.set(dut.o.ready, o_ready)
                ready_with[o_ready] = ctx.get(dut.i.ready)
            assert ready_with[0] == ready_with[1], "o.ready reached i.ready in the same cycle"
            o_ready = rng.random() < 0.5
            ctx.set(dut.o.ready, o_ready)
            if o_ready and ctx.get(dut.o.valid):
                got.append(ctx.get(dut.o.payload.as_value()))
            if ctx.get(dut.i.valid) and ctx.get(dut.i.ready):
                sent += 1
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert [hex(v) for v in got] == [hex(v) for v in _expected(words, lanes, row_words)]


class _FixedGroups(wiring.Component):
    """``GradScatter`` with its run configuration tied to constants and its ``overflow``
    pulses counted; as in the core, ``start`` comes after the configuration has settled
    (cycle 1) and the first gradient after ``start``."""

    def __init__(self, lanes, n_in, n_groups, last_lanes):
        self.scatter = GradScatter(grad_layout(lanes, 64, 4), lanes=lanes, count_bits=8)
        self.config = (n_in, n_groups, last_lanes)
        super().__init__({"i": In(self.scatter.i.signature.flip()),
                          "o": Out(self.scatter.o.signature),
                          "overflows": Out(8)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.scatter = dut = self.scatter
        phase = Signal(2)
        settled = phase == 2
        with m.If(~settled):
            m.d.sync += phase.eq(phase + 1)
        m.d.comb += [dut.start.eq(phase == 1),
                     dut.i.valid.eq(self.i.valid & settled),
                     self.i.ready.eq(dut.i.ready & settled),
                     dut.i.payload.eq(self.i.payload),
                     dut.n_in.eq(self.config[0]), dut.n_groups.eq(self.config[1]),
                     dut.last_lanes.eq(self.config[2])]
        wiring.connect(m, dut.o, wiring.flipped(self.o))
        with m.If(dut.overflow):
            m.d.sync += self.overflows.eq(self.overflows + 1)
        return m


def _scatter_case(rng, lanes, n_in, n_groups, last_lanes):
    """(input payloads, expected output payloads, non-finite gradients of existing rows)."""
    layout = grad_layout(lanes, 64, 4)
    specials = [0x7C00, 0xFC00, 0x7E00]
    inputs, grads, nonfinite = [], {}, 0
    for g in range(n_groups):
        rows = last_lanes if g == n_groups - 1 else lanes
        for i in range(n_in):
            value = []
            for l in range(lanes):
                h = rng.choice(specials) if rng.random() < 0.05 else rng.getrandbits(15) & 0x7BFF
                grads[g, i, l] = h
                value.append(h)
                nonfinite += l < rows and (h & 0x7C00) == 0x7C00
            inputs.append(sum(h << 16 * l for l, h in enumerate(value))
                          | i << layout["index"].offset | g << layout["group"].offset)
    outputs = []
    for g in range(n_groups):
        rows = last_lanes if g == n_groups - 1 else lanes
        for p in range(0, n_in, 2):
            for l in range(lanes):
                lo = grads[g, p, l]
                hi = grads[g, p + 1, l] if p + 1 < n_in else 0
                outputs.append((lo | hi << 16) | (int(l >= rows) << 32))
    return inputs, outputs, nonfinite


@pytest.mark.parametrize("lanes", [2, 4])
@pytest.mark.parametrize("n_in,n_groups,last_lanes",
                         [(1, 1, 1), (1, 3, 2), (2, 2, 2), (6, 2, 1), (7, 3, 2), (5, 1, 4)])
@pytest.mark.parametrize("idle,backpressure", [(0.0, 0.0), (0.3, 0.4)])
def test_grad_scatter(lanes, n_in, n_groups, last_lanes, idle, backpressure):
    last_lanes = min(last_lanes, lanes)
    rng = random.Random(lanes * 1000 + n_in * 10 + n_groups)
    inputs, expect, nonfinite = _scatter_case(rng, lanes, n_in, n_groups, last_lanes)
    dut = _FixedGroups(lanes, n_in, n_groups, last_lanes)
    res = simulate_stream(dut, inputs, idle=idle, backpressure=backpressure, seed=n_in,
                          n_outputs=len(expect), probes=[dut.overflows])
    assert [hex(v) for v in res.outputs] == [hex(v) for v in expect]
    assert res.probes == [nonfinite]
