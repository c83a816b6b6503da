"""DRAM for simulation and small FPGAs: block RAM behind a memory port.

The simulator transport loads and reads memory images through a backdoor: the RAM is the
one :class:`~amaranth.lib.memory.Memory` named ``dram`` in the design, and simulators
reach its words directly (:mod:`trident.sw.driver.sim_server`), without clock cycles.
"""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In

from trident.rtl.core.ports import WORD_BITS, MemoryPortSignature

__all__ = ["BlockRAM"]


class BlockRAM(wiring.Component):
    """Single-port block RAM serving one word per cycle, read latency 1.

    Parameters
    ----------
    depth : int
        Words; a power of two (the address wraps at ``depth``).
    addr_width : int
        Width of the port's word address (at least ``log2(depth)``).

    Members
    -------
    bus : In(MemoryPortSignature(addr_width))
    """

    def __init__(self, depth, addr_width):
        if depth < 2 or depth & (depth - 1):
            raise ValueError(f"DRAM depth {depth} is not a power of two >= 2; pick e.g. "
                             f"{1 << max(1, (depth - 1).bit_length())}")
        if (depth - 1).bit_length() > addr_width:
            raise ValueError(f"DRAM depth {depth} needs more than the {addr_width}-bit address")
        self.depth = depth
        super().__init__({"bus": In(MemoryPortSignature(addr_width))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.dram = mem = Memory(shape=WORD_BITS, depth=self.depth, init=[])
        wr = mem.write_port()
        rd = mem.read_port()
        req, resp = self.bus.req, self.bus.resp
        bits = (self.depth - 1).bit_length()
        # The read port only advances when a read is accepted, so its data stays put
        # while a response waits for `ready`.
        m.d.comb += req.ready.eq(~resp.valid | resp.ready)
        accept = req.valid & req.ready
        m.d.comb += [
            wr.addr.eq(req.payload.addr[:bits]), wr.data.eq(req.payload.data),
            wr.en.eq(accept & req.payload.write),
            rd.addr.eq(req.payload.addr[:bits]), rd.en.eq(accept & ~req.payload.write),
            resp.payload.eq(rd.data),
        ]
        with m.If(accept):
            m.d.sync += resp.valid.eq(~req.payload.write)
        with m.Elif(resp.ready):
            m.d.sync += resp.valid.eq(0)
        return m
