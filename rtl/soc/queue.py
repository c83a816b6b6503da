"""The program queue: starts queued programs on the cores in order, with barriers, so that a
host can hand a whole pass (every phase of every core) to the SoC and wait once.

An entry is either *run program ``address`` on core ``core``* or a *barrier*.  The queue
looks at its oldest entry every cycle:

* a program starts as soon as its core is idle (not busy and no queued program of its
  own still running), then the entry leaves the queue;
* a barrier leaves the queue once every core is idle, so the entries behind it see the
  results of everything in front of it (one phase of a compiled pass, then the next).

A queued program that ends with an error *halts* the queue: nothing more starts until
``flush``.  ``flush`` also begins a new *queued run*: each core's first queued program after
it clears the core's counters, the later ones keep counting (``ControlSignature.keep``),
so the counters show the whole run.
"""

from amaranth.hdl import Module, ResetInserter, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

__all__ = ["entry_layout", "ProgramQueue"]


def entry_layout(cores: int, addr_width: int) -> data.StructLayout:
    """One queue entry: ``barrier``, else run ``address`` on ``core``."""
    return data.StructLayout({"barrier": 1, "core": max(1, (cores - 1).bit_length()),
                              "address": addr_width})


class ProgramQueue(wiring.Component):
    """A FIFO of programs and barriers, and the sequencer that starts them.

    Parameters
    ----------
    cores : int
    addr_width : int
        Width of a program address.
    depth : int
        Entries the queue holds.

    Members
    -------
    push : In(stream.Signature(entry_layout(cores, addr_width)))
        Always ready: an entry pushed while the queue is full is lost and sets ``dropped``.
    flush : In(1)
        Drop the waiting entries, clear ``halted``, ``overflow`` and ``dropped``, begin a new
        queued run.
    start, keep : Out(cores)
        Per core: start the core on ``program`` (at most one core per cycle); keep its
        counters (not its first program of the queued run).
    program : Out(addr_width)
    busy, done, failed, overflow_in : In(cores)
        Per core: its control port's ``busy`` and ``done``, ``error != 0``, its ``overflow``.
    idle : Out(1)
        Nothing waiting and no queued program running.
    halted, overflow, dropped : Out(1)
        Sticky until ``flush``: a queued program ended with an error (nothing more starts);
        a queued program reported overflow; an entry was lost to a full queue.
    level : Out(range(depth + 1))
        Entries waiting.
    """

    def __init__(self, cores: int, addr_width: int, depth: int):
        self.cores, self.depth = cores, depth
        self.layout = entry_layout(cores, addr_width)
        super().__init__({
            "push": In(stream.Signature(self.layout)),
            "flush": In(1),
            "start": Out(cores), "keep": Out(cores), "program": Out(addr_width),
            "busy": In(cores), "done": In(cores), "failed": In(cores), "overflow_in": In(cores),
            "idle": Out(1), "halted": Out(1), "overflow": Out(1), "dropped": Out(1),
            "level": Out(range(depth + 1)),
        })

    def elaborate(self, platform):
        m = Module()
        n = self.cores
        m.submodules.fifo = fifo = ResetInserter(self.flush)(
            SyncFIFOBuffered(width=self.layout.size, depth=self.depth))
        m.d.comb += [fifo.w_en.eq(self.push.valid), fifo.w_data.eq(self.push.payload),
                     self.push.ready.eq(1), self.level.eq(fifo.level)]

        running = Signal(n)                 # a queued program of this core has not finished
        fresh = Signal(n, init=(1 << n) - 1)    # its next queued program clears the counters
        done_before = Signal(n)
        m.d.sync += done_before.eq(self.done)
        finished = running & self.done & ~done_before

        head = data.View(self.layout, fifo.r_data)
        chosen = Signal(n)                  # one-hot: the head's core
        m.d.comb += chosen.eq(1 << head.core)
        waiting = fifo.r_rdy & ~self.halted & ~self.flush
        with m.If(waiting & head.barrier):
            m.d.comb += fifo.r_en.eq(~(running | self.busy).any())
        with m.Elif(waiting):
            go = ~((running | self.busy) & chosen).any()
            m.d.comb += fifo.r_en.eq(go)
            with m.If(go):
                m.d.comb += [self.start.eq(chosen), self.keep.eq(chosen & ~fresh),
                             self.program.eq(head.address)]
        m.d.sync += running.eq((running & ~finished) | self.start)
        m.d.comb += self.idle.eq((fifo.level == 0) & ~running.any())

        with m.If(self.flush):
            m.d.sync += [fresh.eq((1 << n) - 1), self.halted.eq(0), self.overflow.eq(0),
                         self.dropped.eq(0)]
        with m.Else():
            m.d.sync += fresh.eq(fresh & ~self.start)
            with m.If((finished & self.failed).any()):
                m.d.sync += self.halted.eq(1)
            with m.If((finished & self.overflow_in).any()):
                m.d.sync += self.overflow.eq(1)
            with m.If(self.push.valid & ~fifo.w_rdy):
                m.d.sync += self.dropped.eq(1)
        return m
