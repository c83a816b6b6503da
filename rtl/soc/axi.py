"""AXI4 master adapter: the SoC's DRAM port on a large FPGA's memory controller.

The memory port carries single words; a memory controller wants bursts.  The adapter
gathers runs of requests at consecutive addresses into INCR bursts (4-byte beats, one ID,
so the slave answers reads in order), one burst per direction at a time, so a core's
output rows still form write bursts while its reads go on in between:

* a burst grows while requests continue it, up to ``max_burst`` beats and never across a
  4 KB boundary (AXI forbids it).  It closes on a request of its direction that cannot
  join, on a request of the other direction that touches one of its words, and when no
  more words come: a read burst on the first idle cycle (a lone read is not held back
  waiting for company), a write burst after ``max_burst`` cycles without a new word;
* a closed burst is issued on AR or AW; write data waits in a FIFO and goes out on W once
  its burst's AW is accepted (``wlast`` needs the length);
* program order: the two bursts being gathered never share a word (a request touching
  the other direction's waits until that one has gone), and AXI orders reads and writes
  only within a channel, so a read burst waits until every issued write burst has its B
  response and a write burst until every issued read beat has returned.

``max_burst = 1`` gives single-beat transactions.
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import fifo, wiring
from amaranth.lib.wiring import In, Out

from trident.rtl.core.ports import WORD_BITS, MemoryPortSignature

__all__ = ["AXI4Signature", "AXI4Master", "BOUNDARY_WORDS"]

#: AXI bursts may not cross a 4 KB boundary: 1024 words of 4 bytes.
BOUNDARY_WORDS = 1024


class _Gather:
    """The burst one direction is gathering: ``count`` words from ``start``.

    ``active``: it has words (``closed`` too, until its AR/AW is accepted); ``closed``: it
    takes no more and is offered to the AXI port; ``extends``/``opens`` (combinational):
    this cycle's request joins it / starts it afresh.
    """

    def __init__(self, name, addr_width, max_burst):
        self.max_burst = max_burst
        self.active = Signal(name=f"{name}_active")
        self.closed = Signal(name=f"{name}_closed")
        self.start = Signal(addr_width, name=f"{name}_start")
        self.count = Signal(range(max_burst + 1), name=f"{name}_count")
        self.extends = Signal(name=f"{name}_extends")
        self.opens = Signal(name=f"{name}_opens")

    def holds(self, addr):
        """``addr`` is one of its words (modulo the address space, like the burst)."""
        offset = (addr - self.start)[:len(self.start)]
        return self.active & (offset < self.count)

    def full(self, boundary_bits):
        """It has ``max_burst`` words, or its next word would start a new 4 KB page."""
        following = (self.start + self.count)[:len(self.start)]
        return (self.count == self.max_burst) | (following[:boundary_bits] == 0)

    def continues(self, addr, boundary_bits):
        """``addr`` is its next word and it is not full."""
        following = (self.start + self.count)[:len(self.start)]
        return (self.active & ~self.closed & (addr == following)
                & ~self.full(boundary_bits))


class AXI4Signature(wiring.Signature):
    """An AXI4 manager interface with 32-bit data, seen from the manager.

    Members
    -------
    awid, awaddr, awlen, awsize, awburst, awlock, awcache, awprot, awvalid : Out
    awready : In(1)
    wdata, wstrb, wlast, wvalid : Out
    wready : In(1)
    bid, bresp, bvalid : In
    bready : Out(1)
    arid, araddr, arlen, arsize, arburst, arlock, arcache, arprot, arvalid : Out
    arready : In(1)
    rid, rdata, rresp, rlast, rvalid : In
    rready : Out(1)
    """

    def __init__(self, addr_width, id_width=1):
        self.addr_width = addr_width
        members = {}
        for ch in ("aw", "ar"):
            members.update({f"{ch}id": Out(id_width), f"{ch}addr": Out(addr_width),
                            f"{ch}len": Out(8), f"{ch}size": Out(3), f"{ch}burst": Out(2),
                            f"{ch}lock": Out(1), f"{ch}cache": Out(4), f"{ch}prot": Out(3),
                            f"{ch}valid": Out(1), f"{ch}ready": In(1)})
        members.update({
            "wdata": Out(WORD_BITS), "wstrb": Out(WORD_BITS // 8), "wlast": Out(1),
            "wvalid": Out(1), "wready": In(1),
            "bid": In(id_width), "bresp": In(2), "bvalid": In(1), "bready": Out(1),
            "rid": In(id_width), "rdata": In(WORD_BITS), "rresp": In(2), "rlast": In(1),
            "rvalid": In(1), "rready": Out(1),
        })
        super().__init__(members)


class AXI4Master(wiring.Component):
    """Memory port (word requests, in-order read responses) to AXI4 bursts.

    Parameters
    ----------
    addr_width : int
        Word-address width of the memory port; AXI addresses are bytes (2 bits wider).
    max_burst : int
        Longest burst in beats, 1 … 256.
    max_outstanding : int
        Read beats in flight (issued or being gathered, not yet returned); at least
        ``max_burst``.

    Members
    -------
    bus : In(MemoryPortSignature(addr_width))
    axi : Out(AXI4Signature(addr_width + 2))
    error : Out(1)
        Sticky: some response was SLVERR or DECERR.
    busy : Out(1)
        Writes accepted on ``bus`` are not all acknowledged on B yet (memory reached
        behind the adapter's back may still be stale), or reads are in flight.
    read_burst, write_burst : Out(1)
        One-cycle strobes: an AR, an AW transaction was accepted.
    """

    def __init__(self, addr_width, max_burst=16, max_outstanding=32):
        if not 1 <= max_burst <= 256:
            raise ValueError(f"max_burst = {max_burst}: AXI4 INCR bursts have 1 to 256 beats")
        if max_outstanding < max_burst:
            raise ValueError(f"max_outstanding = {max_outstanding} is below max_burst = "
                             f"{max_burst}: a whole burst must fit in flight")
        self.max_burst = max_burst
        self.max_outstanding = max_outstanding
        super().__init__({
            "bus": In(MemoryPortSignature(addr_width)),
            "axi": Out(AXI4Signature(addr_width + 2)),
            "error": Out(1),
            "busy": Out(1),
            "read_burst": Out(1),
            "write_burst": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        req, resp, axi = self.bus.req, self.bus.resp, self.axi
        addr_width = len(req.payload.addr)
        boundary_bits = min((BOUNDARY_WORDS - 1).bit_length(), addr_width)
        addr, write = req.payload.addr, req.payload.write

        reads = Signal(range(self.max_outstanding + 1))   # beats issued, not returned
        writes = Signal(range(self.max_outstanding + 1))  # AWs without a B yet
        # Write data waits here until its burst's AW goes; two bursts' worth lets the next
        # one gather while the last drains.
        m.submodules.wdata = wdata = fifo.SyncFIFO(width=WORD_BITS, depth=2 * self.max_burst)
        m.submodules.wlens = wlens = fifo.SyncFIFO(width=8, depth=2)
        beat = Signal(8)

        rd, wr = _Gather("rd", addr_width, self.max_burst), _Gather("wr", addr_width, self.max_burst)
        m.d.comb += [axi.araddr.eq(rd.start << 2), axi.arlen.eq(rd.count - 1),
                     axi.awaddr.eq(wr.start << 2), axi.awlen.eq(wr.count - 1)]
        for ch in ("aw", "ar"):
            m.d.comb += [getattr(axi, f"{ch}size").eq(2),       # 4 bytes
                         getattr(axi, f"{ch}burst").eq(1),      # INCR
                         getattr(axi, f"{ch}cache").eq(0b0011)]  # normal, bufferable
        # One of AR and AW is offered at a time (reads first), and an offer stands until
        # accepted: `writes` and `reads` rise only when the other one goes, so the
        # conditions of an offer hold until it is taken, as AXI requires.
        ar_ready_to_go = rd.closed & (writes == 0)
        aw_ready_to_go = (wr.closed & (reads == 0) & wlens.w_rdy
                          & (writes < self.max_outstanding))
        ar_waiting = Signal()                  # offered last cycle, not taken
        aw_waiting = Signal()
        m.d.comb += [axi.arvalid.eq(ar_ready_to_go & ~aw_waiting),
                     axi.awvalid.eq(aw_ready_to_go & ~ar_waiting & ~axi.arvalid)]
        ar_go = axi.arvalid & axi.arready
        aw_go = axi.awvalid & axi.awready
        m.d.sync += [ar_waiting.eq(axi.arvalid & ~axi.arready),
                     aw_waiting.eq(axi.awvalid & ~axi.awready)]
        issued = Mux(ar_go, rd.count, 0)           # read beats entering flight this cycle
        m.d.comb += [wlens.w_en.eq(aw_go), wlens.w_data.eq(wr.count - 1),
                     self.read_burst.eq(ar_go), self.write_burst.eq(aw_go)]

        # The request joins (or opens) its direction's burst unless it touches a word of
        # the other direction's: then that one must reach the memory first.
        own_room = Mux(write, wdata.w_rdy, reads + rd.count < self.max_outstanding)
        free_room = Mux(write, wdata.w_rdy, reads + issued < self.max_outstanding)
        conflict = Mux(write, rd.holds(addr), wr.holds(addr))
        for g, mine, go in ((rd, ~write, ar_go), (wr, write, aw_go)):
            m.d.comb += [g.extends.eq(req.valid & mine & g.continues(addr, boundary_bits)
                                      & ~conflict & own_room),
                         g.opens.eq(req.valid & mine & (~g.active | go) & ~conflict & free_room)]
            # It closes on a request of its own direction that cannot join, on one of the
            # other direction that touches its words, and when no more are coming: a read
            # burst on the first idle cycle (its initiator may be waiting for the data), a
            # write burst after `max_burst` cycles without a new word (nobody waits for a
            # write, and producers often write a row slower than one word per cycle).
            if g is rd:
                done = ~req.valid
            else:
                quiet = Signal(range(self.max_burst + 1), name="wr_quiet")
                with m.If(g.extends | g.opens):
                    m.d.sync += quiet.eq(0)
                with m.Elif(g.active & ~g.closed):
                    m.d.sync += quiet.eq(quiet + 1)
                done = quiet == self.max_burst - 1
            stop = (done | g.full(boundary_bits) | (req.valid & mine & ~g.extends)
                    | (req.valid & ~mine & g.holds(addr)))
            with m.If(g.opens):
                m.d.sync += [g.active.eq(1), g.closed.eq(0), g.start.eq(addr), g.count.eq(1)]
            with m.Elif(go):
                m.d.sync += [g.active.eq(0), g.closed.eq(0)]
            with m.Elif(g.extends):
                m.d.sync += g.count.eq(g.count + 1)
            with m.Elif(g.active & stop):
                m.d.sync += g.closed.eq(1)
        m.d.comb += req.ready.eq(rd.extends | wr.extends | rd.opens | wr.opens)
        m.d.comb += [wdata.w_en.eq(req.valid & req.ready & write), wdata.w_data.eq(req.payload.data)]

        # ---- W: the FIFO's words, `wlast` on each burst's last beat
        m.d.comb += [axi.wvalid.eq(wlens.r_rdy & wdata.r_rdy), axi.wdata.eq(wdata.r_data),
                     axi.wstrb.eq(0b1111), axi.wlast.eq(beat == wlens.r_data), axi.bready.eq(1)]
        w_go = axi.wvalid & axi.wready
        m.d.comb += [wdata.r_en.eq(w_go), wlens.r_en.eq(w_go & axi.wlast)]
        with m.If(w_go):
            m.d.sync += beat.eq(Mux(axi.wlast, 0, beat + 1))

        # ---- R: every beat is one word response, in order
        m.d.comb += [resp.valid.eq(axi.rvalid), resp.payload.eq(axi.rdata),
                     axi.rready.eq(resp.ready)]
        r_back = axi.rvalid & axi.rready
        m.d.sync += [reads.eq(reads + issued - r_back),
                     writes.eq(writes + aw_go - axi.bvalid)]
        m.d.comb += self.busy.eq(rd.active | wr.active | (writes != 0) | (reads != 0) | wdata.r_rdy)
        with m.If((r_back & axi.rresp[1]) | (axi.bvalid & axi.bresp[1])):
            m.d.sync += self.error.eq(1)
        return m
