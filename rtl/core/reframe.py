"""Flat DRAM rows of feature maps → the conv engines' per-image-row words.

DRAM holds a (t, n) row of maps as one flat packed row: elements in ``(c, y, x)`` order,
LSB-first, 1-bit spikes 32 per word or binary16 two per word, the row padded to whole words
(docs/descriptors.md §5).  The conv engines (docs/engines.md §11, §14) want each image row
``(c, y)`` in its own ``ceil(W·e / 32)`` words, zero-padded.  An image row starts anywhere in
a flat word, so :class:`MapReframer` re-aligns the bit stream row by row.
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .glue import last_of
from .ports import WORD_BITS

__all__ = ["MapReframer"]

_SLOTS = 4          # staging ring: two words for the output window, two of slack so that
                    # ``i.ready`` can follow the fill count alone
_SPLIT = 3          # the funnel shifts by off[3:] before its register, by off[:3] after it


def _shift_down(m, value, levels, keep, name):
    """The low ``keep`` bits of ``value`` shifted down by the sum of the steps whose select
    bit is set, as explicit mux levels.  ``levels`` lists (select bit, step) pairs, largest
    step first, so that each level carries only the bits the later levels can still reach
    (the fewest muxes).  Call it outside ``m.If`` blocks: the levels are comb assignments."""
    reach = sum(step for _, step in levels)
    x = value
    for select, step in levels:
        reach -= step
        level = Signal(keep + reach, name=f"{name}_{step}")
        m.d.comb += level.eq(Mux(select, x[step:step + len(level)], x[:len(level)]))
        x = level
    return x[:keep]


class MapReframer(wiring.Component):
    """Flat packed rows of ``lines`` image rows of ``width`` elements → one zero-padded run
    of words per image row.

    Per flat row it reads ``ceil(lines·W·e / 32)`` words (``e`` = 1 or 16 bits per element)
    and writes ``lines·ceil(W·e / 32)`` words; the padding after a flat row's last image row
    is dropped and the next flat row starts at the next input word.  The input is an endless
    sequence of flat rows.

    Up to four input words wait in a staging ring; an output word is the 32 bits at bit
    ``off`` of the oldest two, masked to the image row's remaining bits.  A staged word
    never moves (each ring word loads only from ``i``, under a clock enable), and the 64 → 32
    funnel shifter is split by a register (by ``off[3:]``, then by ``off[:3]`` into the
    output register): moving words or an unsplit funnel let the ECP5 mapping flatten the
    selects into wide per-bit muxes, 20–100 % more LUTs.  So the path is two registers:
    with input every cycle and ``o`` always ready it writes one word per cycle, ``o.valid``
    rising three cycles after the cycle its first input word was taken.  ``o.valid``,
    ``o.payload`` and ``i.ready`` come from registers (``i.ready`` also drops during
    ``start``).

    Members
    -------
    i : In(stream.Signature(32))
        Flat row words.
    o : Out(stream.Signature(32))
        Image-row words.
    width : In(8)
        ``W``, 1 … 255.
    lines : In(count_bits)
        Image rows per flat row (``C·H``), ≥ 1.
    half : In(1)
        0: 1-bit spikes, 1: binary16 elements.
    start : In(1)
        One-cycle pulse: clear the state (dropping words in flight and one waiting on
        ``o``); the next input word is a flat row's first.  ``width``, ``lines`` and
        ``half`` must hold from the cycle before ``start`` to the end of the run.
    """

    def __init__(self, *, count_bits=16):
        super().__init__({
            "i": In(stream.Signature(WORD_BITS)),
            "o": Out(stream.Signature(WORD_BITS)),
            "width": In(8),
            "lines": In(count_bits),
            "half": In(1),
            "start": In(1),
        })

    def elaborate(self, platform):
        m = Module()

        # Row geometry from the (steady) configuration, registered so that no subtractor
        # sits in the output path.
        wm1 = Signal(8)
        m.d.comb += wm1.eq(self.width - 1)
        row_last = Signal(7)                    # words per image row − 1
        last_take = Signal(range(WORD_BITS + 1))  # bits of the image row in its last word
        last_mask = Signal(WORD_BITS)
        m.d.sync += [
            row_last.eq(Mux(self.half, wm1 >> 1, wm1 >> 5)),
            last_take.eq(Mux(self.half, Mux(wm1[0], 32, 16), wm1[:5] + 1)),
            last_mask.eq(Mux(self.half, Mux(wm1[0], 0xFFFF_FFFF, 0xFFFF),
                             (Const(2, 2) << wm1[:5]) - 1)),
        ]
        lines_last = last_of(m, self.lines)

        ring = Array(Signal(WORD_BITS, name=f"ring{j}") for j in range(_SLOTS))
        rd = Signal(range(_SLOTS))              # oldest staged word
        wr = Signal(range(_SLOTS))              # next free word
        n = Signal(range(_SLOTS + 1))           # staged words
        off = Signal(5)                         # next bit to emit within the oldest word
        # down-counters: their "last" test is a zero test, the decrement is off the path
        words_left = Signal.like(row_last)      # words of the image row after this one
        lines_left = Signal.like(self.lines)    # image rows of the flat row after this one

        # the funnel's middle register: the window shifted by off[3:], the rest of the
        # shift, and whether the image row's last-word mask applies
        mid_valid = Signal()
        mid = Signal(WORD_BITS + (1 << _SPLIT) - 1)
        mid_off = Signal(_SPLIT)
        mid_last = Signal()

        row_end = words_left == 0
        map_end = row_end & (lines_left == 0)
        take = Mux(row_end, last_take, WORD_BITS)
        total = Signal(6)                       # off + take ≤ 63: bits of the window used
        m.d.comb += total.eq(off + take)
        need2 = total > WORD_BITS
        enough = Mux(need2, n >= 2, n != 0)
        o_free = ~self.o.valid | self.o.ready
        emit = Signal()
        m.d.comb += emit.eq(enough & (~mid_valid | o_free))
        # words finished by this output; a flat row's end also drops its padding bits
        done = Signal(range(3))
        m.d.comb += done.eq(Mux(emit, total[5] + (map_end & (total[:5] != 0)), 0))

        m.d.comb += self.i.ready.eq((n != _SLOTS) & ~self.start)
        accept = self.i.valid & self.i.ready
        with m.If(accept):
            m.d.sync += [ring[wr].eq(self.i.payload), wr.eq(wr + 1)]
        m.d.sync += [rd.eq(rd + done), n.eq(n - done + accept)]
        window = Cat(ring[rd], ring[(rd + 1)[:len(rd)]])
        funnel_hi = _shift_down(m, window, [(off[b], 1 << b) for b in range(4, _SPLIT - 1, -1)],
                                len(mid), "funnel_hi")
        funnel_lo = _shift_down(m, mid, [(mid_off[b], 1 << b) for b in range(_SPLIT - 1, -1, -1)],
                                WORD_BITS, "funnel_lo")

        with m.If(emit):
            m.d.sync += [
                mid_valid.eq(1), mid.eq(funnel_hi), mid_off.eq(off[:_SPLIT]), mid_last.eq(row_end),
                off.eq(Mux(map_end, 0, total[:5])),
            ]
            with m.If(row_end):
                m.d.sync += words_left.eq(row_last)
                with m.If(lines_left == 0):
                    m.d.sync += lines_left.eq(lines_last)
                with m.Else():
                    m.d.sync += lines_left.eq(lines_left - 1)
            with m.Else():
                m.d.sync += words_left.eq(words_left - 1)
        with m.Elif(o_free):
            m.d.sync += mid_valid.eq(0)

        with m.If(o_free):
            m.d.sync += [self.o.valid.eq(mid_valid),
                         self.o.payload.eq(funnel_lo & Mux(mid_last, last_mask, 0xFFFF_FFFF))]

        with m.If(self.start):
            m.d.sync += [n.eq(0), rd.eq(0), wr.eq(0), off.eq(0), mid_valid.eq(0),
                         self.o.valid.eq(0), words_left.eq(row_last), lines_left.eq(lines_last)]
        return m
