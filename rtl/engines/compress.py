"""Event compressor: a word-serial priority encoder that turns a dense input vector into
the list of its active (non-zero) indices, in ascending order, one per cycle.

This is the front end of every event-driven engine (docs/engines.md §2): the work that
follows grows with the number of active inputs, not with the layer's width.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..fp16 import Float16
from ..fp16.bits import trailing_zeros

__all__ = ["EventCompressor", "event_layout", "ONE"]

#: binary16 1.0: the value of a spike event.
ONE = 0x3C00


def _bits_for(n):
    """Bits of an unsigned counter holding 0 .. n."""
    return max(1, int(n).bit_length())


def event_layout(index_bits, with_value=True, row_bits=0, plane_bits=0):
    """Payload of one compressor output item.

    Fields (LSB first): ``index`` (the input index within its row), ``value`` (binary16,
    only when ``with_value``: the analog input in MAC mode, 1.0 for a spike), ``row`` and
    ``plane`` (only when their widths are non-zero) and ``end`` (1: no event; marks the
    end of a step's list).
    """
    fields = {"index": index_bits}
    if with_value:
        fields["value"] = Float16
    if row_bits:
        fields["row"] = row_bits
    if plane_bits:
        fields["plane"] = plane_bits
    fields["end"] = 1
    return data.StructLayout(fields)


class EventCompressor(wiring.Component):
    """Compresses each step's input vector into its active indices, ascending.

    The input arrives as a stream of ``word_bits``-bit words, ``ceil(n_in / per_word)``
    words per step, lowest indices first:

    - spike mode (``mac = 0``): bit ``b`` of word ``w`` is input ``w·word_bits + b``
      (``per_word = word_bits``); an input is active when its bit is 1;
    - MAC mode (``mac = 1``, only with ``mac_support``): the word holds ``word_bits/16``
      binary16 values, value ``v`` (bits ``16v .. 16v+15``) is input ``w·word_bits/16 + v``;
      an input is active when its value is not ``±0`` (NaN, infinities and subnormals are
      active).

    With ``max_rows``/``max_planes`` above 1 a step is ``planes × rows`` rows of ``n_in``
    inputs each (a feature map: plane = channel, row = image row), every row starting
    on a new word; items then also carry the ``row`` and ``plane`` of their input, and
    ``index`` is the position within the row.  Rows cost nothing extra.

    Bits or values past ``n_in`` in a row's last word are ignored.  Per step the output
    is one item per active input (``end = 0``), in ascending (plane, row, index), then
    one item with ``end = 1``.  A word is taken in the same cycle as the last active index of the
    previous word is emitted, so a step costs ``words + active + 1`` cycles at most
    (zero words cost one cycle each, the end marker one).

    Parameters
    ----------
    max_inputs : int
        Largest ``n_in``.
    word_bits : int
        Width of an input word, a power of two (≥ 16 with ``mac_support``).
    mac_support : bool
        Accept analog (binary16) words when ``mac = 1``; adds the ``value`` field to the
        output items.
    max_rows, max_planes : int
        Largest ``rows`` and ``planes`` (1: no such member or field).

    Members
    -------
    n_in : In(unsigned)
        Inputs per row (1 .. ``max_inputs``), sampled while ``restart`` is high.
    rows, planes : In(unsigned)
        Rows per plane and planes per step (only with ``max_rows``/``max_planes`` > 1),
        sampled while ``restart`` is high.
    mac : In(1)
        Mode, sampled while ``restart`` is high (ignored without ``mac_support``).
    restart : In(1)
        Synchronous restart: samples ``n_in`` and ``mac``, drops any partial step.  The
        first word is taken two cycles later.
    discard : In(1)
        Words taken while it is high yield no events (one cycle per word; the end marker
        still comes): how an engine skips a whole row it has no use for.
    i : In(stream.Signature(word_bits))
        Input words.
    o : Out(stream.Signature(event_layout))
        Active indices and end-of-step markers; ``value`` is 1.0 in spike mode.
    """

    def __init__(self, max_inputs=1024, word_bits=32, mac_support=False, max_rows=1,
                 max_planes=1):
        if word_bits < 1 or word_bits & (word_bits - 1):
            raise ValueError(f"word_bits must be a power of two, not {word_bits}")
        if mac_support and word_bits < 16:
            raise ValueError("MAC mode needs word_bits >= 16")
        if max_inputs < 1:
            raise ValueError(f"max_inputs must be positive, not {max_inputs}")
        self.max_inputs = int(max_inputs)
        self.word_bits = int(word_bits)
        self.mac_support = bool(mac_support)
        self.index_bits = max(1, (self.max_inputs - 1).bit_length())
        self.max_rows = int(max_rows)
        self.max_planes = int(max_planes)
        self.row_bits = (self.max_rows - 1).bit_length() if self.max_rows > 1 else 0
        self.plane_bits = (self.max_planes - 1).bit_length() if self.max_planes > 1 else 0
        self.layout = event_layout(self.index_bits, self.mac_support, self.row_bits,
                                   self.plane_bits)
        members = {
            "n_in": In(_bits_for(self.max_inputs)),
            "mac": In(1),
            "restart": In(1),
            "discard": In(1),
            "i": In(stream.Signature(self.word_bits)),
            "o": Out(stream.Signature(self.layout)),
        }
        if self.row_bits:
            members["rows"] = In(_bits_for(self.max_rows))
        if self.plane_bits:
            members["planes"] = In(_bits_for(self.max_planes))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        B = self.word_bits
        log_b = B.bit_length() - 1
        V = B // 16 if self.mac_support else 0
        log_v = V.bit_length() - 1 if V else 0
        nbits = _bits_for(self.max_inputs)

        # configuration, derived once at restart (keeps adders off the per-cycle paths):
        # words per step, and how many positions of the last word are inputs
        mac = Signal()
        words = Signal(nbits)
        last_count = Signal(log_b + 1)
        n_in = self.n_in
        mac_in = self.mac if self.mac_support else Const(0, 1)
        with m.If(self.restart):
            m.d.sync += mac.eq(mac_in)
            with m.If(mac_in):
                m.d.sync += [words.eq((n_in + (V - 1)) >> log_v),
                             last_count.eq(Mux(n_in[:log_v] != 0, n_in[:log_v], V)
                                           if log_v else V)]
            with m.Else():
                m.d.sync += [words.eq((n_in + (B - 1)) >> log_b),
                             last_count.eq(Mux(n_in[:log_b] != 0, n_in[:log_b], B))]

        left = Signal(nbits)              # words of this row not yet taken
        mask = Signal(B)                  # active positions of the current word not yet emitted
        base = Signal(self.index_bits + 1)  # index of the current word's position 0
        nxt = Signal(self.index_bits + 1)   # index of the next word's position 0
        word = Signal(B)                  # the current word (values in MAC mode)
        fresh = Signal()                  # just restarted: left must be loaded

        pos = Signal(range(B + 1))
        m.d.comb += pos.eq(trailing_zeros(mask))
        has_event = mask.any()
        at_end = ~fresh & (left == 0) & ~has_event

        p = self.o.payload
        m.d.comb += [
            self.o.valid.eq(has_event | at_end),
            p.index.eq(base + pos),
            p.end.eq(~has_event),
        ]
        if self.mac_support:
            # (a word_select rather than a Switch: Yosys would write the latter as a
            # Verilog function named ``$...``, which Icarus rejects)
            sel = word.word_select(pos[:log_v], 16) if log_v else word[:16]
            m.d.comb += p.value.eq(Mux(mac, sel, ONE))

        emit = self.o.ready & has_event

        # "at most one position left": a tree, no carry chain on the ready path
        def at_most_one(v):
            if len(v) == 1:
                return Const(1, 1), v[0]
            half = len(v) // 2
            lo_one, lo_any = at_most_one(v[:half])
            hi_one, hi_any = at_most_one(v[half:])
            return lo_one & hi_one & ~(lo_any & hi_any), lo_any | hi_any

        single, _ = at_most_one(mask)
        draining = ~has_event | (emit & single)

        take = Signal()
        m.d.comb += [
            self.i.ready.eq(~fresh & (left != 0) & draining & ~self.restart),
            take.eq(self.i.valid & self.i.ready),
        ]

        # active positions of an incoming word, limited to n_in in the step's last word
        limit = Signal(log_b + 1)
        m.d.comb += limit.eq(Mux(left == 1, last_count, Mux(mac, V, B) if V else B))
        active = Signal(B)
        bits = self.i.payload
        m.d.comb += active.eq(Cat(*(bits[b] & (b < limit) for b in range(B))))
        if self.mac_support:
            mac_active = Cat(*((bits[16 * v:16 * v + 15] != 0) & (v < limit)
                               for v in range(V)))
            with m.If(mac):
                m.d.comb += active.eq(mac_active)

        with m.If(emit):
            m.d.sync += mask.eq(mask & (mask - 1))
        # rows and planes: counters of the next word to take, and of the current word
        R, C = self.row_bits, self.plane_bits
        if R:
            rows = Signal(_bits_for(self.max_rows))
            rows_left = Signal(_bits_for(self.max_rows))
            nxt_row, cur_row = Signal(R), Signal(R)
            m.d.comb += p.row.eq(cur_row)
            with m.If(self.restart):
                m.d.sync += rows.eq(self.rows)
        if C:
            planes = Signal(_bits_for(self.max_planes))
            planes_left = Signal(_bits_for(self.max_planes))
            nxt_plane, cur_plane = Signal(C), Signal(C)
            m.d.comb += p.plane.eq(cur_plane)
            with m.If(self.restart):
                m.d.sync += planes.eq(self.planes)
        more_rows = (rows_left != 1) if R else Const(0, 1)
        more_planes = (planes_left != 1) if C else Const(0, 1)

        with m.If(take):
            step = Mux(mac, V, B) if V else B
            m.d.sync += [mask.eq(Mux(self.discard, 0, active)), word.eq(bits), base.eq(nxt),
                         nxt.eq(nxt + step), left.eq(left - 1)]
            if R:
                m.d.sync += cur_row.eq(nxt_row)
            if C:
                m.d.sync += cur_plane.eq(nxt_plane)
            with m.If((left == 1) & (more_rows | more_planes)):     # next row, no gap
                m.d.sync += [left.eq(words), nxt.eq(0)]
                with m.If(more_rows):
                    if R:
                        m.d.sync += [nxt_row.eq(nxt_row + 1), rows_left.eq(rows_left - 1)]
                with m.Else():
                    if R:
                        m.d.sync += [nxt_row.eq(0), rows_left.eq(rows)]
                    if C:
                        m.d.sync += [nxt_plane.eq(nxt_plane + 1),
                                     planes_left.eq(planes_left - 1)]
        with m.If(fresh | (self.o.ready & at_end)):        # (re)load for the next step
            m.d.sync += [left.eq(words), fresh.eq(0), nxt.eq(0)]
            if R:
                m.d.sync += [nxt_row.eq(0), rows_left.eq(rows)]
            if C:
                m.d.sync += [nxt_plane.eq(0), planes_left.eq(planes)]
        with m.If(self.restart):
            m.d.sync += [fresh.eq(1), mask.eq(0)]
        return m
