"""Pipelining shared by the FP16 units: register placement and the stream interface.

Every unit describes its datapath as a fixed sequence of combinational *steps*
(unpack, align, add, count leading zeros, ...).  The ``stages`` constructor parameter
says how many register ranks are inserted between (and after) those steps; this module
chooses where, from a per-step delay estimate, so that the slowest stage is as short
as possible.  Latency in clock cycles equals the number of register ranks.
"""

from itertools import combinations
from types import SimpleNamespace

from amaranth.hdl import Module, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["place_registers", "Pipeline", "PipelinedUnit"]


def place_registers(weights, stages):
    """Choose the step boundaries that get a register rank.

    Parameters
    ----------
    weights : sequence of float
        Estimated delay of each combinational step, in datapath order.
    stages : int
        Number of register ranks, ``0 <= stages <= len(weights)``.

    Returns
    -------
    tuple of int
        Boundary indices in ``1 .. len(weights)``; boundary ``k`` lies after step ``k-1``
        and boundary ``len(weights)`` is the output.  With ``stages >= 1`` the output is
        always registered; the remaining ranks minimise the longest stage (ties broken
        towards the most even split).
    """
    n = len(weights)
    if not 0 <= stages <= n:
        raise ValueError(f"stages must be between 0 and {n}, not {stages}")
    if stages == 0:
        return ()
    best_key, best = None, None
    for inner in combinations(range(1, n), stages - 1):
        bounds = (0, *inner, n)
        segments = [sum(weights[lo:hi]) for lo, hi in zip(bounds, bounds[1:])]
        key = (round(max(segments), 6), round(sum(s * s for s in segments), 6))
        if best_key is None or key < best_key:
            best_key, best = key, (*inner, n)
    return best


class Pipeline:
    """Inserts register ranks at chosen step boundaries of a datapath.

    The datapath calls :meth:`stage` once at the end of each step with every value that
    is still needed later; the values come back either unchanged (no register at that
    boundary) or as the outputs of a register rank.  ``valid`` and any other values given
    to the constructor as ``carry`` travel along automatically.

    Parameters
    ----------
    m : Module
        Module the registers are added to.
    n_steps : int
        Number of steps of the datapath.
    cuts : tuple of int
        Boundaries (1 .. n_steps) that get a register rank.
    ce : Value or None
        Clock enable of every rank (None: always enabled).
    valid : Value
        Valid bit entering the first step.
    carry : dict of str to Value
        Side-band values carried unchanged (e.g. a tag).
    """

    def __init__(self, m, *, n_steps, cuts, ce, valid, carry=None):
        self._m = m
        self._n_steps = n_steps
        self._cuts = frozenset(cuts)
        self._ce = ce
        self._step = 0
        self.valid = valid
        self.carry = dict(carry or {})

    @property
    def done(self):
        return self._step == self._n_steps

    def _register(self, name, value, *, reset_less=True):
        if isinstance(value, data.View):
            shape = value.shape()
        else:
            value = Value.cast(value)
            shape = value.shape()
        reg = Signal(shape, name=f"s{self._step}_{name}", reset_less=reset_less)
        if self._ce is None:
            self._m.d.sync += reg.eq(value)
        else:
            with self._m.If(self._ce):
                self._m.d.sync += reg.eq(value)
        return reg

    def _name(self, name, value):
        # Give boundary values a readable name in waveforms (no hardware cost).
        if isinstance(value, data.View):
            shape = value.shape()
        else:
            value = Value.cast(value)
            shape = value.shape()
        sig = Signal(shape, name=f"b{self._step}_{name}")
        self._m.d.comb += sig.eq(value)
        return sig

    def stage(self, **values):
        """End the current step; returns a namespace of the (possibly registered) values."""
        if self._step >= self._n_steps:
            raise RuntimeError("Pipeline.stage() called more often than there are steps")
        self._step += 1
        if self._step in self._cuts:
            self.valid = self._register("valid", self.valid, reset_less=False)
            self.carry = {k: self._register(k, v) for k, v in self.carry.items()}
            out = {k: self._register(k, v) for k, v in values.items()}
        else:
            out = {k: self._name(k, v) for k, v in values.items()}
        return SimpleNamespace(**out)


class PipelinedUnit(wiring.Component):
    """Base of the FP16 units: a stream in, a stream out, a pipelined datapath between.

    Subclasses set :attr:`STEPS` (name and estimated delay of each combinational step)
    and implement :meth:`datapath`.

    Interface (``amaranth.lib.stream``, payloads are ``data.StructLayout``):

    - ``i`` (``In(stream.Signature(in_layout))``): a transfer happens on a rising clock
      edge where ``i.valid & i.ready``.
    - ``o`` (``Out(stream.Signature(out_layout))``): the result of the n-th accepted input
      is the n-th transfer on ``o``; results keep their order.

    With ``backpressure=True`` the whole pipeline advances only while
    ``~o.valid | o.ready`` (a global stall; ``i.ready`` is that same signal), so no
    result is ever dropped.  With ``backpressure=False`` the pipeline never stalls:
    ``i.ready`` is constant 1 and ``o.ready`` is ignored, so the consumer must accept
    ``o`` on every cycle it is valid (cheaper: no clock enables).  Without stalls the
    result of an input accepted at edge *t* is presented on ``o`` right after edge
    *t + latency*; with ``stages=0`` the unit is combinational (``o`` follows ``i`` in
    the same cycle).

    Parameters
    ----------
    in_fields, out_fields : dict of str to shape
        Payload fields (a ``tag`` field of ``tag_width`` bits is added to both when
        ``tag_width > 0``; it travels with its operands, unchanged).
    stages : int
        Register ranks = latency in cycles, ``0 <= stages <= len(STEPS)``.
    backpressure : bool
        Honour ``o.ready`` (see above).
    tag_width : int
        Width of the optional side-band tag.
    cuts : tuple of int or None
        Explicit register boundaries (1 .. len(STEPS)) overriding the automatic
        placement; ``stages`` must then equal ``len(cuts)`` or be None.

    Attributes
    ----------
    latency : int
        Cycles from an accepted input to its result when nothing stalls.
    cuts : tuple of int
        The boundaries that got a register rank.
    """

    #: (name, estimated delay in ns on ECP5 speed 6) of each combinational step.
    STEPS = ()
    #: Default number of stages.
    DEFAULT_STAGES = 1

    def _reject(self, message):
        # the object exists already (Elaboratable.__new__): no "never elaborated" warning
        self._MustUse__silence = True
        raise ValueError(message)

    def __init__(self, in_fields, out_fields, *, stages=None, backpressure=False,
                 tag_width=0, cuts=None):
        try:
            self._init(in_fields, out_fields, stages, backpressure, tag_width, cuts)
        except ValueError:
            self._MustUse__silence = True
            raise

    def _init(self, in_fields, out_fields, stages, backpressure, tag_width, cuts):
        if not isinstance(tag_width, int) or tag_width < 0:
            raise ValueError(f"tag_width must be a non-negative integer, not {tag_width!r}")
        n = len(self.STEPS)
        if cuts is not None:
            cuts = tuple(sorted(set(int(c) for c in cuts)))
            if any(not 1 <= c <= n for c in cuts):
                raise ValueError(f"cuts must lie in 1..{n}, not {cuts}")
            if stages is not None and stages != len(cuts):
                raise ValueError(f"stages={stages} disagrees with cuts={cuts}")
            stages = len(cuts)
        else:
            if stages is None:
                stages = self.DEFAULT_STAGES
            if not isinstance(stages, int) or not 0 <= stages <= n:
                raise ValueError(
                    f"{type(self).__name__}: stages must be an integer in 0..{n}, "
                    f"not {stages!r}")
            cuts = place_registers([w for _, w in self.STEPS], stages)
        self.stages = stages
        self.latency = stages
        self.cuts = cuts
        self.backpressure = bool(backpressure)
        self.tag_width = tag_width
        in_fields = dict(in_fields)
        out_fields = dict(out_fields)
        if tag_width:
            in_fields["tag"] = tag_width
            out_fields["tag"] = tag_width
        self.in_layout = data.StructLayout(in_fields)
        self.out_layout = data.StructLayout(out_fields)
        super().__init__({
            "i": In(stream.Signature(self.in_layout)),
            "o": Out(stream.Signature(self.out_layout)),
        })

    def datapath(self, m, pipe, p):
        """Build the datapath; call ``pipe.stage(...)`` once per step.

        Parameters
        ----------
        m : Module
        pipe : Pipeline
        p : data.View
            The input payload.

        Returns
        -------
        dict of str to Value
            The output payload fields (without ``tag``).
        """
        raise NotImplementedError

    def elaborate(self, platform):
        m = Module()
        if self.backpressure and self.stages:
            ce = Signal(name="ce")
            m.d.comb += ce.eq(~self.o.valid | self.o.ready)
            m.d.comb += self.i.ready.eq(ce)
        else:
            ce = None
            if self.backpressure:
                m.d.comb += self.i.ready.eq(self.o.ready)
            else:
                m.d.comb += self.i.ready.eq(1)
        carry = {"tag": self.i.payload.tag} if self.tag_width else {}
        pipe = Pipeline(m, n_steps=len(self.STEPS), cuts=self.cuts, ce=ce,
                        valid=self.i.valid, carry=carry)
        result = self.datapath(m, pipe, self.i.payload)
        if not pipe.done:
            raise RuntimeError(f"{type(self).__name__}.datapath() ended before its last step")
        for name, value in result.items():
            m.d.comb += getattr(self.o.payload, name).eq(value)
        if self.tag_width:
            m.d.comb += self.o.payload.tag.eq(pipe.carry["tag"])
        m.d.comb += self.o.valid.eq(pipe.valid)
        return m
