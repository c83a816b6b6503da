"""The SGD update unit (docs/numerics.md §6), bit-exact with
``trident.golden.hw.update.sgd_update``.

Plain SGD: ``W ← RNE(W − lr·g·2^−s)``, one rounding (an :class:`~..fp16.FPFMA` with the
optional product scale).  With momentum: ``m ← fma(μ, m, g)`` (binary16 buffer in the
loss-scaled units), then ``W ← RNE(W − lr·m·2^−s)``.  ``lr`` and ``μ`` are binary16
registers, ``s`` a small unsigned register: the loss scale ``S = 2^s`` is removed inside
the fused operation (an exponent shift of the exact product), so it costs no rounding.
Every weight is updated; nothing is skipped, so signed zeros follow IEEE rules.
"""

from amaranth.hdl import Cat, Module, Mux, Signal
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
    """In-place SGD update of a stream of weight words (``L`` lanes).

    Per lane: plain SGD ``w' = RNE(w − lr·g·2^−s)``; with the ``momentum`` register set,
    ``m' = RNE(μ·m + g)`` and ``w' = RNE(w − lr·m'·2^−s)`` (PyTorch's SGD with dampening 0:
    a zero buffer makes the first step plain SGD).  Each word uses the register values of
    the cycle it is accepted on (they travel with it), so the registers may be rewritten
    at any time; a write takes effect for the words accepted after it (not for a word
    accepted in the same cycle).  The registers reset to zero: write them first.

    The lanes are FPFMA pipelines that never stall; their results go into an output FIFO,
    and a word is accepted only while the words in flight plus the FIFO's level leave room
    for it (credits), so none is dropped and ``i.ready`` depends on registers only: no
    combinational path from ``o.ready`` back into the pipelines or to ``i.ready``.  One word
    per cycle goes through at full rate.  Latency: ``stages`` cycles (plain build) or
    ``2·stages`` (momentum build), plus the FIFO's two.

    Parameters
    ----------
    lanes : int
        ``L``, binary16 weights per word.
    momentum : bool
        Build the momentum datapath (a second FMA per lane, the ``m`` fields and the
        ``mu`` / ``momentum`` registers).
    shift_width : int
        Width of the ``shift`` register (s = 0 … 2^shift_width − 1).
    stages : int, optional
        Pipeline depth of each FMA (default ``FPFMA.DEFAULT_STAGES``).

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
    """

    def __init__(self, lanes=4, *, momentum=False, shift_width=5, stages=None):
        if lanes < 1 or shift_width < 1:
            self._MustUse__silence = True
            raise ValueError("lanes and shift_width must be positive")
        self.lanes = int(lanes)
        self.momentum = bool(momentum)
        self.shift_width = int(shift_width)
        self.stages = FPFMA.DEFAULT_STAGES if stages is None else int(stages)
        self.latency = self.stages * (2 if self.momentum else 1) + 2     # + the output FIFO
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

        out = CreditBuffer(self.out_layout.size, depth=self.latency + 2)
        m.submodules.out = out
        result = Signal(self.out_layout)
        accepted = self.i.valid & self.i.ready
        m.d.comb += [self.i.ready.eq(out.room), out.admit.eq(accepted), out.result.eq(result),
                     self.o.valid.eq(out.o.valid), self.o.payload.eq(out.o.payload),
                     out.o.ready.eq(self.o.ready)]

        # W ← W − lr·step·2^−s, one rounding per lane
        upd = [FPFMA(self.stages, scale_width=sw, tag_width=16 if self.momentum else 0)
               for _ in range(L)]
        for l, u in enumerate(upd):
            m.submodules[f"upd{l}"] = u
            m.d.comb += [u.i.payload.neg_prod.eq(1), u.i.payload.neg_c.eq(0),
                         result.w[l].eq(u.o.payload.z)]
        m.d.comb += out.done.eq(upd[0].o.valid)

        if not self.momentum:
            for l, u in enumerate(upd):
                m.d.comb += [u.i.valid.eq(accepted), u.i.payload.a.eq(regs.lr),
                             u.i.payload.b.eq(self.i.payload.g[l]),
                             u.i.payload.c.eq(self.i.payload.w[l]),
                             u.i.payload.scale.eq(regs.shift)]
            return m

        # m' = μ·m + g; w and g (and, in lane 0, the update's registers) ride along in the
        # tag, so the two FMAs need no delay lines of their own
        reg_tag = Cat(regs.lr, regs.shift, regs.momentum)
        mom = [FPFMA(self.stages, tag_width=32 + (len(reg_tag) if l == 0 else 0)) for l in range(L)]
        lane0 = mom[0].o.payload.tag[32:]
        lr, shift, use_m = lane0[:16], lane0[16:16 + sw], lane0[16 + sw]
        for l, (u1, u2) in enumerate(zip(mom, upd)):
            m.submodules[f"mom{l}"] = u1
            p = self.i.payload
            tag = Cat(p.w[l], p.g[l], reg_tag) if l == 0 else Cat(p.w[l], p.g[l])
            m.d.comb += [u1.i.valid.eq(accepted), u1.i.payload.a.eq(regs.mu),
                         u1.i.payload.b.eq(p.m[l]), u1.i.payload.c.eq(p.g[l]),
                         u1.i.payload.neg_prod.eq(0), u1.i.payload.neg_c.eq(0),
                         u1.i.payload.tag.eq(tag)]
            w, g = u1.o.payload.tag[:16], u1.o.payload.tag[16:32]
            new_m = u1.o.payload.z
            m.d.comb += [u2.i.valid.eq(mom[0].o.valid), u2.i.payload.a.eq(lr),
                         u2.i.payload.b.eq(Mux(use_m, new_m, g)), u2.i.payload.c.eq(w),
                         u2.i.payload.scale.eq(shift), u2.i.payload.tag.eq(new_m),
                         result.m[l].eq(u2.o.payload.tag)]
        return m
