"""The stream glue between the DMA and the engines (``rtl/core/glue.py``) in the Amaranth
simulator; the weight loaders have ``test_weight_loaders.py``.

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

from trident.rtl.core.glue import LaneGather
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
