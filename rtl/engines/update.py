"""The SGD update unit (docs/numerics.md §6), bit-exact with
``trident.golden.hw.update.sgd_update``.

Plain SGD: ``W ← RNE(W − lr·g·2^−s)``, one rounding (an :class:`~..fp16.FPFMA` with the
optional product scale).  With momentum: ``m ← fma(μ, m, g)`` (binary16 buffer in the
loss-scaled units), then ``W ← RNE(W − lr·m·2^−s)``.  ``lr`` and ``μ`` are binary16
registers, ``s`` a small unsigned register: the loss scale ``S = 2^s`` is removed inside
the fused operation (an exponent shift of the exact product), so it costs no rounding.
Every weight is updated; nothing is skipped, so signed zeros follow IEEE rules.
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..fp16 import FPFMA, Float16
from .credit import CreditBuffer

__all__ = ["UpdateUnit", "update_regs_layout", "update_in_layout", "update_out_layout"]


def update_regs_layout(shift_width, momentum):
    """The registers: ``lr`` (binary16), ``shift`` s (``shift_width`` bits) and, in a
    momentum build, ``mu`` (binary16) and ``momentum`` (1: use the buffer)."""
    fields = {"lr": Float16, "shift": shift_width}
    if momentum:
        fields.update({"mu": Float16, "momentum": 1})
    return data.StructLayout(fields)


def update_in_layout(lanes, momentum):
    """One input word: ``w`` (L weights), ``g`` (their gradients) and, in a momentum build,
    ``m`` (their momentum buffer words)."""
    fields = {"w": data.ArrayLayout(Float16, lanes), "g": data.ArrayLayout(Float16, lanes)}
    if momentum:
        fields["m"] = data.ArrayLayout(Float16, lanes)
    return data.StructLayout(fields)


def update_out_layout(lanes, momentum):
    """One output word: ``w`` (the updated weights) and, in a momentum build, ``m`` (the
    new buffer words, ``fma(μ, m, g)``)."""
    fields = {"w": data.ArrayLayout(Float16, lanes)}
    if momentum:
        fields["m"] = data.ArrayLayout(Float16, lanes)
    return data.StructLayout(fields)


class UpdateUnit(wiring.Component):
    """In-place SGD update of a stream of weight words (``L`` lanes), on one time-shared
    FMA.

    Per lane: plain SGD ``w' = RNE(w − lr·g·2^−s)``; with the ``momentum`` register set,
    ``m' = RNE(μ·m + g)`` and ``w' = RNE(w − lr·m'·2^−s)`` (PyTorch's SGD with dampening 0:
    a zero buffer makes the first step plain SGD).  Each word uses the register values of
    the cycle it is accepted on (they travel with it), so the registers may be rewritten
    at any time; a write takes effect for the words accepted after it (not for a word
    accepted in the same cycle).  The registers reset to zero: write them first.

    One scaled :class:`~..fp16.FPFMA` does every operation, one per cycle: a word takes
    ``L`` cycles (``2·L`` with momentum, its ``m'`` operations first).  The update reads
    ``w``, ``g`` [and ``m``] and writes ``w'`` [and ``m'``] through one memory port, 3 [5]
    memory words per word updated, so the FMA is never what limits an update on the core
    (docs/engines.md §15); one FMA instead of ``L`` [``2·L``] is its whole purpose.  An
    ``m'`` coming out of the FMA goes straight back in as its lane's ``w'`` operation, which
    takes precedence over starting the next operation of the current word.  A word with
    ``momentum`` 0 starts only when no ``m'`` operation is in flight, so words leave in
    input order.  Its ``m`` output is zero (not to be written back).

    The FMA never stalls: finished words go into an output FIFO, and a word is accepted
    only while the words in flight plus the FIFO's level leave room for it (credits), so
    ``i.ready`` depends on registers only: no combinational path from ``o.ready`` back
    into the FMA or to ``i.ready``.  Latency (nothing stalled): ``1 + stages + L − 1 + 2``
    cycles (plain), ``1 + 2·stages + L − 1 + 2`` (momentum), ``stages`` counting the FMA's
    operand register: the word register, the FMA, the lanes after the first, the FIFO.
    The operands are registered in front of the FMA, so the lane and ``m'`` selection ends
    in registers and does not reach the FMA's exponent arithmetic in the same cycle.

    Parameters
    ----------
    lanes : int
        ``L``, binary16 weights per word.
    momentum : bool
        Build the momentum path (the ``m`` fields and the ``mu`` / ``momentum`` registers).
    shift_width : int
        Width of the ``shift`` register (s = 0 … 2^shift_width − 1).
    stages : int, optional
        Register ranks from the operands to the result: the operand register and the
        FMA's ``stages − 1`` (default ``FPFMA.DEFAULT_STAGES + 1``; at least 1).

    Members
    -------
    regs : In(stream.Signature(update_regs_layout))
        Register write: always ready; the payload is latched when ``valid``.
    i : In(stream.Signature(update_in_layout))
        Weight words (``w``, ``g``, [``m``]).
    o : Out(stream.Signature(update_out_layout))
        Updated words (``w``, [``m``]), in input order.

    Attributes
    ----------
    latency : int
        Cycles from an accepted input word to its output when nothing stalls.
    cycles_per_word : int
        FMA operations per word: ``L`` (plain build), ``2·L`` (momentum build).
    """

    def __init__(self, lanes=4, *, momentum=False, shift_width=5, stages=None):
        if lanes < 1 or shift_width < 1 or (stages is not None and stages < 1):
            self._MustUse__silence = True
            raise ValueError("lanes, shift_width and stages must be positive")
        self.lanes = int(lanes)
        self.momentum = bool(momentum)
        self.shift_width = int(shift_width)
        self.stages = FPFMA.DEFAULT_STAGES + 1 if stages is None else int(stages)
        passes = 2 if self.momentum else 1
        self.cycles_per_word = passes * self.lanes
        self.latency = 1 + passes * self.stages + self.lanes - 1 + 2
        self.regs_layout = update_regs_layout(self.shift_width, self.momentum)
        self.in_layout = update_in_layout(self.lanes, self.momentum)
        self.out_layout = update_out_layout(self.lanes, self.momentum)
        super().__init__({
            "regs": In(stream.Signature(self.regs_layout)),
            "i": In(stream.Signature(self.in_layout)),
            "o": Out(stream.Signature(self.out_layout)),
        })

    def elaborate(self, platform):
        m = Module()
        L, sw = self.lanes, self.shift_width
        regs = Signal(self.regs_layout)
        m.d.comb += self.regs.ready.eq(1)
        with m.If(self.regs.valid):
            m.d.sync += regs.eq(self.regs.payload)

        # the word being issued, with the registers of its cycle of acceptance
        word = Signal(self.in_layout)
        word_regs = Signal(self.regs_layout)
        held = Signal()                      # `word` has operations left to start
        lane = Signal(range(L))
        last_lane = lane == L - 1

        # words in flight ≤ those of one FMA latency + the held one
        depth = -(-self.latency // self.cycles_per_word) + 3
        out = CreditBuffer(self.out_layout.size, depth=depth)
        m.submodules.out = out

        # tag: kind (1: an m' operation) and what its w' operation needs, or the w'
        # operation's m'
        tag = data.StructLayout({"m_op": 1, "x": 16, "lr": 16, "shift": sw})
        fma = FPFMA(self.stages - 1, scale_width=sw,
                    tag_width=tag.size if self.momentum else 0)
        m.submodules.fma = fma
        # the operation chosen this cycle (fi, issue), registered into the FMA
        fi, fo = Signal(fma.i.payload.shape()), fma.o.payload
        issue = Signal()
        m.d.sync += [fma.i.payload.eq(fi), fma.i.valid.eq(issue)]

        w_l, g_l = word.w[lane], word.g[lane]
        start = Signal()                     # an operation of `word` starts this cycle
        if self.momentum:
            fi_tag, fo_tag = data.View(tag, fi.tag), data.View(tag, fo.tag)
            m_l = word.m[lane]
            m_in_flight = Signal(range(self.stages + 2))
            returning = fma.o.valid & fo_tag.m_op
            use_m = word_regs.momentum
            m.d.comb += start.eq(held & ~returning & (use_m | (m_in_flight == 0)))
            with m.If(returning):            # m' → its lane's w' = w − lr·m'·2^−s
                m.d.comb += [fi.a.eq(fo_tag.lr), fi.b.eq(fo.z), fi.c.eq(fo_tag.x),
                             fi.scale.eq(fo_tag.shift), fi.neg_prod.eq(1),
                             fi_tag.x.eq(fo.z)]
            with m.Elif(use_m):              # m' = μ·m + g (s = 0: the unscaled product)
                m.d.comb += [fi.a.eq(word_regs.mu), fi.b.eq(m_l), fi.c.eq(g_l),
                             fi_tag.m_op.eq(1), fi_tag.x.eq(w_l), fi_tag.lr.eq(word_regs.lr),
                             fi_tag.shift.eq(word_regs.shift)]
            with m.Else():                   # plain SGD on a momentum build
                m.d.comb += [fi.a.eq(word_regs.lr), fi.b.eq(g_l), fi.c.eq(w_l),
                             fi.scale.eq(word_regs.shift), fi.neg_prod.eq(1)]
            m.d.comb += issue.eq(returning | start)
            m.d.sync += m_in_flight.eq(m_in_flight + (start & use_m) - returning)
        else:
            m.d.comb += [start.eq(held), issue.eq(start),
                         fi.a.eq(word_regs.lr), fi.b.eq(g_l), fi.c.eq(w_l),
                         fi.scale.eq(word_regs.shift), fi.neg_prod.eq(1)]

        freed = ~held | (start & last_lane)
        accepted = self.i.valid & self.i.ready
        m.d.comb += self.i.ready.eq(freed & out.room)
        with m.If(start):
            m.d.sync += lane.eq(Mux(last_lane, 0, lane + 1))
        with m.If(accepted):
            m.d.sync += [word.eq(self.i.payload), word_regs.eq(regs), held.eq(1)]
        with m.Elif(freed):
            m.d.sync += held.eq(0)

        # w' results come in lane order, word by word: gather them into a word
        result = Signal(self.out_layout)
        done_w = fma.o.valid & ~fo_tag.m_op if self.momentum else fma.o.valid
        out_lane = Signal(range(L))
        gathered = Signal(self.out_layout)
        with m.If(done_w):
            m.d.sync += [out_lane.eq(Mux(out_lane == L - 1, 0, out_lane + 1)),
                         gathered.w[out_lane].eq(fo.z)]
            if self.momentum:
                m.d.sync += gathered.m[out_lane].eq(fo_tag.x)
        m.d.comb += result.eq(gathered)
        m.d.comb += result.w[L - 1].eq(fo.z)
        if self.momentum:
            m.d.comb += result.m[L - 1].eq(fo_tag.x)
        m.d.comb += [out.admit.eq(accepted), out.done.eq(done_w & (out_lane == L - 1)),
                     out.result.eq(result)]
        wiring.connect(m, out.o, wiring.flipped(self.o))
        return m
