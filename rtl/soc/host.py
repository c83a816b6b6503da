"""The host bridge: one memory port over the host address space, split into CSR and DRAM.

Host address space (32-bit word addresses of :data:`HOST_ADDR_WIDTH` bits): the top bit
selects DRAM (byte address :data:`~trident.rtl.soc.regmap.HOST_DRAM_BASE` and up), the
rest are CSRs.  Initiators: the simulator transport (the SoC's ``host`` port) and the
UART bridge.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from trident.rtl.core.ports import MemoryPortSignature

from .csr import CSRBusSignature
from .regmap import HOST_DRAM_BASE

__all__ = ["HOST_ADDR_WIDTH", "HostBridge"]

#: Word-address width of the host address space (4 GiB of bytes).
HOST_ADDR_WIDTH = HOST_DRAM_BASE.bit_length() - 2


class HostBridge(wiring.Component):
    """Decodes host requests onto the CSR bus or toward DRAM.

    Responses come back in request order because a read blocks further requests until its
    answer has been taken; writes go through at one per cycle.

    Parameters
    ----------
    csr_addr_width : int
        Word-address width of the CSR bus.
    dram_addr_width : int
        Word-address width toward DRAM (higher host address bits are dropped).

    Members
    -------
    host : In(MemoryPortSignature(HOST_ADDR_WIDTH))
    csr : Out(CSRBusSignature(csr_addr_width))
    dram : Out(MemoryPortSignature(dram_addr_width))
    """

    def __init__(self, csr_addr_width, dram_addr_width):
        super().__init__({
            "host": In(MemoryPortSignature(HOST_ADDR_WIDTH)),
            "csr": Out(CSRBusSignature(csr_addr_width)),
            "dram": Out(MemoryPortSignature(dram_addr_width)),
        })

    def elaborate(self, platform):
        m = Module()
        req, resp = self.host.req, self.host.resp
        pending = Signal()        # a read is waiting for its response
        from_csr = Signal()       # ... and it went to the CSR bus
        csr_ready = Signal()      # the CSR read data is on csr.r_data
        to_dram = req.payload.addr[-1]
        with m.If(~pending):
            with m.If(to_dram):
                m.d.comb += [self.dram.req.valid.eq(req.valid),
                             self.dram.req.payload.addr.eq(req.payload.addr),
                             self.dram.req.payload.write.eq(req.payload.write),
                             self.dram.req.payload.data.eq(req.payload.data),
                             req.ready.eq(self.dram.req.ready)]
            with m.Else():
                m.d.comb += [self.csr.addr.eq(req.payload.addr),
                             self.csr.w_data.eq(req.payload.data),
                             self.csr.w_stb.eq(req.valid & req.payload.write),
                             self.csr.r_stb.eq(req.valid & ~req.payload.write),
                             req.ready.eq(1)]
            with m.If(req.valid & req.ready & ~req.payload.write):
                m.d.sync += [pending.eq(1), from_csr.eq(~to_dram), csr_ready.eq(0)]
        # The CSR bank holds r_data until the next read strobe, which cannot come while
        # this read is pending.
        with m.If(pending & from_csr):
            m.d.sync += csr_ready.eq(1)
            m.d.comb += [resp.valid.eq(csr_ready), resp.payload.eq(self.csr.r_data)]
        with m.If(pending & ~from_csr):
            m.d.comb += [resp.valid.eq(self.dram.resp.valid),
                         resp.payload.eq(self.dram.resp.payload),
                         self.dram.resp.ready.eq(resp.ready)]
        with m.If(resp.valid & resp.ready):
            m.d.sync += pending.eq(0)
        return m
