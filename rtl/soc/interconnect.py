"""Round-robin interconnect: N memory-port initiators onto one target.

Requests are single words (:class:`~trident.rtl.core.ports.MemoryPortSignature`); the target
answers reads in request order, so a FIFO of the granted initiators' numbers routes every
response back to the initiator that asked, and each initiator sees its own responses in
its own request order.

For a target that forms bursts (:class:`~trident.rtl.soc.axi.AXI4Master`) the arbiter can
keep the grant on an initiator whose request continues its last one (same direction, next
address), up to ``max_burst`` words in a row, so that one initiator's run reaches the
target unbroken by the others'.
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from trident.rtl.core.ports import MemoryPortSignature

__all__ = ["Interconnect"]


class Interconnect(wiring.Component):
    """Round-robin arbiter from ``n`` initiators to one target, responses routed back.

    One request is granted per cycle; after a grant the next initiator in turn has
    priority, so each of ``n`` busy initiators gets one word every ``n`` cycles.  A grant
    is held while the target stalls (a valid request never changes before ``ready``).

    Parameters
    ----------
    n : int
        Initiators.
    addr_width : int
        Word-address width of every port.
    max_outstanding : int
        Reads in flight at the target before the arbiter waits (the depth of the routing FIFO).
    max_burst : int
        Longest run of one initiator's consecutive-address requests granted in a row
        (1: plain round robin).

    Members
    -------
    initiators : In(MemoryPortSignature(addr_width)).array(n)
    target : Out(MemoryPortSignature(addr_width))
    grant : Out(range(n))
        Initiator of the request on ``target.req`` (valid with it).
    """

    def __init__(self, n, addr_width, max_outstanding=8, max_burst=1):
        if n < 1:
            raise ValueError(f"an interconnect needs at least one initiator, not {n}")
        if max_outstanding < 1:
            raise ValueError(f"max_outstanding must be at least 1, not {max_outstanding}")
        if max_burst < 1:
            raise ValueError(f"max_burst must be at least 1, not {max_burst}")
        self.n = n
        self.max_burst = max_burst
        self.max_outstanding = max_outstanding
        super().__init__({
            "initiators": In(MemoryPortSignature(addr_width)).array(n),
            "target": Out(MemoryPortSignature(addr_width)),
            "grant": Out(range(n)),
        })

    def elaborate(self, platform):
        m = Module()
        n = self.n
        m.submodules.route = route = SyncFIFO(width=max(1, (n - 1).bit_length()),
                                                      depth=self.max_outstanding)
        last = Signal(range(n), init=n - 1)       # the last initiator granted
        held = Signal()                           # a request is waiting for the target
        held_grant = Signal(range(n))
        chosen = Signal(range(n))
        # Highest priority goes to the initiator after `last`: scan the rotation in reverse
        # so the first in turn is assigned last and wins.
        with m.Switch(last):
            for start in range(n):
                with m.Case(start):
                    for k in reversed(range(1, n + 1)):
                        i = (start + k) % n
                        with m.If(self.initiators[i].req.valid):
                            m.d.comb += chosen.eq(i)
        m.d.comb += self.grant.eq(chosen)
        with m.If(held):
            m.d.comb += self.grant.eq(held_grant)
        if self.max_burst > 1:
            follows = Signal.like(self.target.req.payload.addr)  # where the run goes on
            run_write = Signal()
            run = Signal(range(self.max_burst))           # words granted in the run, minus 1
            continues = Signal()
            with m.Switch(last):
                for i in range(n):
                    with m.Case(i):
                        src = self.initiators[i].req
                        m.d.comb += continues.eq(src.valid & (src.payload.addr == follows)
                                                 & (src.payload.write == run_write))
            with m.If(continues & (run != self.max_burst - 1) & ~held):
                m.d.comb += self.grant.eq(last)

        req = self.target.req
        with m.Switch(self.grant):
            for i in range(n):
                with m.Case(i):
                    src = self.initiators[i].req
                    m.d.comb += [
                        req.valid.eq(src.valid & route.w_rdy),
                        req.payload.eq(src.payload),
                        src.ready.eq(req.ready & route.w_rdy),
                    ]
        m.d.comb += [route.w_data.eq(self.grant),
                     route.w_en.eq(req.valid & req.ready & ~req.payload.write)]
        with m.If(req.valid & req.ready):
            m.d.sync += [last.eq(self.grant), held.eq(0)]
            if self.max_burst > 1:
                m.d.sync += [follows.eq(req.payload.addr + 1), run_write.eq(req.payload.write),
                             run.eq(Mux((self.grant == last) & continues
                                        & (run != self.max_burst - 1), run + 1, 0))]
        with m.Elif(req.valid):
            m.d.sync += [held.eq(1), held_grant.eq(self.grant)]

        resp = self.target.resp
        with m.Switch(route.r_data):
            for i in range(n):
                with m.Case(i):
                    dst = self.initiators[i].resp
                    m.d.comb += [dst.valid.eq(resp.valid & route.r_rdy),
                                 resp.ready.eq(dst.ready & route.r_rdy)]
        for i in range(n):
            m.d.comb += self.initiators[i].resp.payload.eq(resp.payload)
        m.d.comb += route.r_en.eq(resp.valid & resp.ready)
        return m
