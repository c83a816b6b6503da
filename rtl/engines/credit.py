"""Credit-based output buffering for pipelines that never stall (docs/core.md §7).

A pipeline without back-pressure (an ``FPFMA``/``FPMul`` built with ``backpressure=False``)
needs no clock enables and no ``ready`` path through its stages; its results go into a FIFO,
and its producer may admit an item only while the items in flight plus the FIFO's level
leave room for it.  ``room`` then comes from registers alone, so no consumer's ``ready``
reaches back into the pipeline or to the producer in the same cycle.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["CreditBuffer"]


class CreditBuffer(wiring.Component):
    """The output FIFO of a never-stalling pipeline and the count of its items in flight.

    Parameters
    ----------
    width : int
        Bits of one result.
    depth : int
        Results the FIFO holds; at least the pipeline's latency + 2 for full rate.

    Members
    -------
    admit : In(1)
        An item enters the pipeline this cycle (only while ``room``).
    done : In(1)
        The pipeline delivers a result (``result``) this cycle.
    result : In(width)
    room : Out(1)
        Another item may be admitted: in flight + queued < ``depth``.
    o : Out(stream.Signature(width))
        The results, in order.
    """

    def __init__(self, width, depth):
        self.depth = depth
        super().__init__({
            "admit": In(1), "done": In(1), "result": In(width), "room": Out(1),
            "o": Out(stream.Signature(width)),
        })

    def elaborate(self, platform):
        m = Module()
        out = fifo.SyncFIFOBuffered(width=len(self.result), depth=self.depth)
        m.submodules.out = out
        in_flight = Signal(range(self.depth + 1))
        m.d.sync += in_flight.eq(in_flight + self.admit - self.done)
        m.d.comb += [self.room.eq(in_flight + out.level < self.depth),
                     out.w_en.eq(self.done), out.w_data.eq(self.result)]
        wiring.connect(m, out.r_stream, wiring.flipped(self.o))
        return m
