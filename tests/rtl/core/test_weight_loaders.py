"""The FP and BP weight loaders in the Amaranth simulator.

FP: row-major DRAM rows of ``n_in`` weights (odd and even; an odd row's padding half is
junk that must not reach the engine), groups of ``L`` rows with a last group of 1 … L
rows, several layers back to back after ``start`` — every (addr, data) word against
``layout.fc_weight_words``, at full rate and with idle input; the input is refused only
where a one-row last group needs it.

BP: DRAM weight rows (random integer weights as binary16, ``Co × C_row × kk``) streamed
span by span, as the DMA reads a tile of ``C`` input channels, against the engines' layouts
(``layout.conv_bp_weight_words``, and ``layout.bp_weight_words`` for FC) — every (addr,
data) word, none missing or extra — with the input idle at random or at full rate, where
the loader must not stall it."""

import random

import numpy as np
import pytest
from amaranth.hdl import Value
from amaranth.sim import Simulator

from trident.rtl.core.glue import BPWeightLoader, FPWeightLoader
from trident.rtl.engines import layout
from trident.rtl.engines.fp import weight_write_layout

COUNT_BITS = 10
DEPTH = 1024


def _weights(rng, out_c, chans, kk):
    """Non-zero integers, exact in binary16, so a lane wrongly left ``+0`` shows."""
    v = rng.integers(1, 2048, size=(out_c, chans, kk)) * rng.choice([-1, 1], size=(out_c, chans, kk))
    return v.astype(np.float16).view(np.uint16).astype(np.int64)


def _row_words(w):
    """DRAM words of each row: element ``2p`` in the low half, padded to whole words."""
    flat = w.reshape(w.shape[0], -1)
    if flat.shape[1] % 2:
        flat = np.concatenate([flat, np.zeros((flat.shape[0], 1), np.int64)], axis=1)
    return flat[:, 0::2] | flat[:, 1::2] << 16


class Case:
    """A tile of channels ``c_lo … c_lo + chans − 1`` of rows with ``extra`` channels after
    it (so an odd span's last word holds a real element of the next channel)."""

    def __init__(self, rng, lanes, kk, chans, out_c, c_lo, extra, gap):
        assert c_lo * kk % 2 == 0, "a span starts at an even element"
        self.lanes, self.kk, self.chans, self.out_c, self.gap = lanes, kk, chans, out_c, gap
        self.w = _weights(rng, out_c, c_lo + chans + extra, kk)
        self.groups = -(-chans // lanes)
        self.last_lanes = chans - (self.groups - 1) * lanes
        self.last_words = -(-self.last_lanes * kk // 2)
        words = _row_words(self.w)
        self.stream = []
        for g in range(self.groups):
            first = (c_lo + g * lanes) * kk // 2
            n = self.last_words if g == self.groups - 1 else lanes * kk // 2
            for co in range(out_c):
                self.stream += [int(x) for x in words[co, first:first + n]]
        tile = self.w[:, c_lo:c_lo + chans]
        if kk == 1:
            # FC: the lanes of every word read, the odd half of the last one included
            read = (self.groups - 1) * lanes + 2 * self.last_words
            expect = layout.bp_weight_words(self.w[:, c_lo:c_lo + read, 0], lanes)
        else:
            k = int(round(kk ** 0.5))
            expect = layout.conv_bp_weight_words(tile.reshape(out_c, chans, k, k), lanes)
        self.expect = list(zip(*expect))

    def __repr__(self):
        return (f"Case(L={self.lanes}, kk={self.kk}, C={self.chans}, Co={self.out_c}, "
                f"gap={self.gap})")


async def _feed(ctx, dut, stream, n_expect, rng, gap, quiet):
    """Offer ``stream`` (idle ``gap`` of the cycles) and collect the (addr, data) words out
    until ``quiet`` cycles after all words went in and ``n_expect`` came out (a word
    arriving then is caught: none may follow the last one, nor the loader run on for ever).
    Returns (words out, cycles the loader refused a word, words it took)."""
    lanes = dut.lanes
    got, sent, stalls, tail = [], 0, 0, 0
    for _ in range(4 * (len(stream) + n_expect) + 100):
        if tail == quiet:
            break
        offer = sent < len(stream) and rng.random() >= gap
        ctx.set(dut.i.valid, offer)
        if offer:
            ctx.set(dut.i.payload, stream[sent])
        _, _, took, refused, valid, word = await ctx.tick().sample(
            Value.cast(dut.i.valid) & dut.i.ready, Value.cast(dut.i.valid) & ~dut.i.ready,
            dut.o.valid, dut.o.payload.as_value())
        sent += bool(took)
        stalls += bool(refused)
        if valid:
            got.append((word >> 16 * lanes, word & ((1 << 16 * lanes) - 1)))
        tail = tail + 1 if sent == len(stream) and len(got) >= n_expect else 0
    ctx.set(dut.i.valid, 0)
    return got, stalls, sent


def _run(dut, cases, rng, set_kk=True):
    """Each case after a ``start``: its words offered (idle ``gap`` of the cycles); returns
    per case the (addr, data) words out, the cycles the loader refused a word and the
    words it took."""
    results = []

    async def bench(ctx):
        for case in cases:
            ctx.set(dut.n_rows, case.out_c)
            ctx.set(dut.n_groups, case.groups)
            ctx.set(dut.last_words, case.last_words)
            if set_kk:
                ctx.set(dut.kk, case.kk)
            await ctx.tick()                # the configuration settles a cycle before start
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            results.append(await _feed(ctx, dut, case.stream, len(case.expect), rng, case.gap,
                                       quiet=2 * case.kk + 4))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return results


def _cases(rng, lanes, kks, gaps):
    out = []
    for kk in kks:
        # last groups of 1, L−1 and L lanes (C a multiple of L once); tiles from channel
        # 0, 1 or 2 (a span starts at an even element: an odd kk needs an even c_lo)
        for last in sorted({1, lanes - 1, lanes}):
            for gap in gaps:
                c_lo = int(rng.integers(0, 3))
                c_lo += c_lo * kk % 2
                out.append(Case(rng, lanes, kk, 2 * lanes + last, out_c=int(rng.integers(2, 4)),
                                c_lo=c_lo, extra=int(rng.integers(1, 3)), gap=gap))
    return out


def _check(cases, results):
    for case, (got, stalls, sent) in zip(cases, results):
        assert sent == len(case.stream), case
        assert got == case.expect, case
        # one-lane spans send kk words per ceil(kk/2) in, the only case allowed to stall
        if case.kk == 1 or case.last_lanes >= 2:
            assert stalls == 0, case


@pytest.mark.parametrize("lanes", [2, 4])
def test_conv_spans_transposed(lanes):
    """kk = 4, 9, 25 (K = 2, 3, 5): word ``g·Co·kk + co·kk + k`` = ``{W[co, g·L + l, k]}_l``,
    lanes past the tile +0 (the extra element of an odd span dropped); full rate and 30 %
    idle input; no stall unless the last group has one lane."""
    rng = np.random.default_rng(lanes)
    cases = _cases(rng, lanes, (4, 9, 25), (0.0, 0.3))
    dut = BPWeightLoader(weight_write_layout(lanes, DEPTH), lanes=lanes, count_bits=COUNT_BITS,
                         max_kk=25)
    _check(cases, _run(dut, cases, random.Random(lanes)))


@pytest.mark.parametrize("lanes", [2, 4])
@pytest.mark.parametrize("max_kk", [1, 25])
def test_fc_words(lanes, max_kk):
    """kk = 1, as the FC core uses it (``max_kk = 1``, ``kk`` left at its initial value)
    and on a conv-capable loader: engine word ``(g, j)`` = ``{W[j, g·L + l]}_l`` of the
    words read, at full rate and 30 % idle input, never stalled."""
    rng = np.random.default_rng(10 + lanes)
    cases = _cases(rng, lanes, (1,), (0.0, 0.3))
    dut = BPWeightLoader(weight_write_layout(lanes, DEPTH), lanes=lanes, count_bits=COUNT_BITS,
                         max_kk=max_kk)
    _check(cases, _run(dut, cases, random.Random(lanes), set_kk=max_kk > 1))


def _fp_case(rng, lanes, out_n, n_in):
    """(geometry, DRAM word stream, expected (addr, data) words) of one FP weight tile."""
    w = _weights(rng, out_n, n_in, 1)[:, :, 0]
    row_words = -(-n_in // 2)
    rows = np.zeros((out_n, 2 * row_words), np.int64)
    rows[:, :n_in] = w
    if n_in % 2:
        rows[:, -1] = rng.integers(1, 1 << 16, size=out_n)     # junk beyond the row
    words = rows[:, 0::2] | rows[:, 1::2] << 16
    groups = -(-out_n // lanes)
    stream = [int(words[r, p]) for g in range(groups) for p in range(row_words)
              for r in range(g * lanes, min(out_n, (g + 1) * lanes))]
    geometry = {"n_in": n_in, "row_words": row_words, "n_groups": groups,
                "last_lanes": out_n - (groups - 1) * lanes}
    return geometry, stream, list(zip(*layout.fc_weight_words(w, lanes)))


@pytest.mark.parametrize("lanes", [2, 4])
@pytest.mark.parametrize("gap", [0.0, 0.3])
def test_fp_loader(lanes, gap):
    rng = np.random.default_rng(20 + lanes)
    pick = random.Random(lanes)
    cases = [_fp_case(rng, lanes, out_n, n_in)
             for out_n in (1, lanes, 2 * lanes + 1, 3 * lanes - 1) for n_in in (1, 2, 7)]
    dut = FPWeightLoader(weight_write_layout(lanes, DEPTH), lanes=lanes, count_bits=COUNT_BITS)
    results = []

    async def bench(ctx):
        for geometry, stream, expect in cases:
            for name, value in geometry.items():
                ctx.set(getattr(dut, name), value)
            await ctx.tick()                # the geometry settles a cycle before start
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            results.append(await _feed(ctx, dut, stream, len(expect), pick, gap, quiet=4))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    for (geometry, stream, expect), (got, stalls, sent) in zip(cases, results):
        assert sent == len(stream), geometry
        assert got == expect, geometry
        if geometry["last_lanes"] > 1 or geometry["n_in"] == 1:
            assert stalls == 0, geometry
