"""AXI4 master adapter: the SoC's DRAM port on a large FPGA's memory controller.

Every word becomes a single-beat AXI4 transaction (``len = 0``, 4-byte ``size``, INCR,
one ID), so the slave answers reads in order.  AXI orders reads and writes only within
a channel, so the adapter keeps the memory port's program order itself: a read waits
until every earlier write has its B response, and a write waits until every earlier read
has returned.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from trident.rtl.core.ports import WORD_BITS, MemoryPortSignature

__all__ = ["AXI4Signature", "AXI4Master"]


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
    """Memory port (word requests, in-order read responses) to AXI4.

    Parameters
    ----------
    addr_width : int
        Word-address width of the memory port; AXI addresses are bytes (2 bits wider).
    max_outstanding : int
        Transactions of one direction in flight.

    Members
    -------
    bus : In(MemoryPortSignature(addr_width))
    axi : Out(AXI4Signature(addr_width + 2))
    error : Out(1)
        Sticky: some response was SLVERR or DECERR.
    """

    def __init__(self, addr_width, max_outstanding=8):
        self.max_outstanding = max_outstanding
        super().__init__({
            "bus": In(MemoryPortSignature(addr_width)),
            "axi": Out(AXI4Signature(addr_width + 2)),
            "error": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        req, resp, axi = self.bus.req, self.bus.resp, self.axi
        reads = Signal(range(self.max_outstanding + 1))    # AR accepted, R not yet back
        writes = Signal(range(self.max_outstanding + 1))   # AW+W accepted, B not yet back
        aw_done = Signal()
        w_done = Signal()
        byte_addr = req.payload.addr << 2
        for ch in ("aw", "ar"):
            m.d.comb += [getattr(axi, f"{ch}addr").eq(byte_addr),
                         getattr(axi, f"{ch}size").eq(2),       # 4 bytes
                         getattr(axi, f"{ch}burst").eq(1),      # INCR
                         getattr(axi, f"{ch}cache").eq(0b0011)]  # normal, bufferable
        m.d.comb += [axi.wdata.eq(req.payload.data), axi.wstrb.eq(0b1111), axi.wlast.eq(1),
                     axi.bready.eq(1)]

        can_read = (writes == 0) & (reads < self.max_outstanding)
        can_write = (reads == 0) & (writes < self.max_outstanding)
        read_go = Signal()
        write_go = Signal()
        with m.If(req.payload.write):
            m.d.comb += [axi.awvalid.eq(req.valid & can_write & ~aw_done),
                         axi.wvalid.eq(req.valid & can_write & ~w_done)]
            aw_ok = aw_done | (axi.awvalid & axi.awready)
            w_ok = w_done | (axi.wvalid & axi.wready)
            m.d.comb += [req.ready.eq(aw_ok & w_ok), write_go.eq(req.valid & aw_ok & w_ok)]
            with m.If(write_go):
                m.d.sync += [aw_done.eq(0), w_done.eq(0)]
            with m.Else():
                m.d.sync += [aw_done.eq(aw_ok), w_done.eq(w_ok)]
        with m.Else():
            m.d.comb += [axi.arvalid.eq(req.valid & can_read),
                         req.ready.eq(axi.arready & can_read),
                         read_go.eq(axi.arvalid & axi.arready)]

        m.d.comb += [resp.valid.eq(axi.rvalid), resp.payload.eq(axi.rdata),
                     axi.rready.eq(resp.ready)]
        r_back = axi.rvalid & axi.rready
        m.d.sync += [reads.eq(reads + read_go - r_back), writes.eq(writes + write_go - axi.bvalid)]
        with m.If((r_back & axi.rresp[1]) | (axi.bvalid & axi.bresp[1])):
            m.d.sync += self.error.eq(1)
        return m
