"""TEST DOUBLE — not a Trident core.  A traffic generator with the core's ports
(trident.rtl.core.ports) so the SoC, the interconnect and the driver can be tested before
(and independently of) the real core.

Its "program" is four words at ``program``: ``src, dst, n, add``.  It copies ``n`` words
from ``src`` to ``dst`` adding ``add`` to each (one read, then one write, per word), then
reports done.  ``n`` with bit 31 set: error :data:`ERROR_BAD_COUNT` at the program
address; bit 30 set: stays busy forever (for time-out tests).  It reports two of the
core's counters (cleared by start), ``fp_ops`` (words copied) and ``fp_busy`` (its busy
cycles), and leaves the others out, so they read 0.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import Out

from trident.rtl.core.ports import ControlSignature, MemoryPortSignature
from trident.rtl.soc.soc import SoC

ERROR_BAD_COUNT = 0x11
HANG = 1 << 30
BAD = 1 << 31


class TrafficCore(wiring.Component):
    """Copies ``n`` words ``src`` → ``dst`` adding ``add`` (see the module docstring).

    Members
    -------
    mem : Out(MemoryPortSignature(addr_width))
    ctrl : Out(ControlSignature(addr_width))
    counters : Out(StructLayout({"fp_busy": 32, "fp_ops": 32}))
    """

    def __init__(self, addr_width=16):
        super().__init__({"mem": Out(MemoryPortSignature(addr_width)),
                          "ctrl": Out(ControlSignature(addr_width)),
                          "counters": Out(data.StructLayout({"fp_busy": 32, "fp_ops": 32}))})

    def elaborate(self, platform):
        m = Module()
        ctrl, req, resp = self.ctrl, self.mem.req, self.mem.resp
        desc = [Signal(32, name=n) for n in ("src", "dst", "n", "add")]
        pc = Signal.like(ctrl.program)
        index = Signal(3)
        k = Signal(32)
        value = Signal(32)
        counters = self.counters
        with m.If(ctrl.busy):
            m.d.sync += counters.fp_busy.eq(counters.fp_busy + 1)
        m.d.comb += resp.ready.eq(1)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(ctrl.start):
                    m.d.sync += [ctrl.busy.eq(1), ctrl.done.eq(0), ctrl.error.eq(0),
                                 pc.eq(ctrl.program), index.eq(0), k.eq(0)]
                    with m.If(~ctrl.keep):
                        m.d.sync += [counters.fp_busy.eq(0), counters.fp_ops.eq(0)]
                    m.next = "FETCH"
            with m.State("FETCH"):
                m.d.comb += [req.valid.eq(1), req.payload.addr.eq(pc + index)]
                with m.If(req.ready):
                    m.next = "FETCH_WAIT"
            with m.State("FETCH_WAIT"):
                with m.If(resp.valid):
                    with m.Switch(index):
                        for i, d in enumerate(desc):
                            with m.Case(i):
                                m.d.sync += d.eq(resp.payload)
                    m.d.sync += index.eq(index + 1)
                    with m.If(index == 3):
                        m.next = "DECODE"
                    with m.Else():
                        m.next = "FETCH"
            with m.State("DECODE"):
                n = desc[2]
                with m.If(n & BAD):
                    m.d.sync += [ctrl.error.eq(ERROR_BAD_COUNT), ctrl.error_pc.eq(pc)]
                    m.next = "END"
                with m.Elif(n & HANG):
                    m.next = "HANG"
                with m.Elif(n == 0):
                    m.next = "END"
                with m.Else():
                    m.next = "READ"
            with m.State("HANG"):
                pass
            with m.State("READ"):
                m.d.comb += [req.valid.eq(1), req.payload.addr.eq(desc[0] + k)]
                with m.If(req.ready):
                    m.next = "READ_WAIT"
            with m.State("READ_WAIT"):
                with m.If(resp.valid):
                    m.d.sync += value.eq(resp.payload + desc[3])
                    m.next = "WRITE"
            with m.State("WRITE"):
                m.d.comb += [req.valid.eq(1), req.payload.write.eq(1),
                             req.payload.addr.eq(desc[1] + k), req.payload.data.eq(value)]
                with m.If(req.ready):
                    m.d.sync += [k.eq(k + 1), counters.fp_ops.eq(counters.fp_ops + 1)]
                    with m.If(k + 1 == desc[2]):
                        m.next = "END"
                    with m.Else():
                        m.next = "READ"
            with m.State("END"):
                m.d.sync += [ctrl.busy.eq(0), ctrl.done.eq(1)]
                m.next = "IDLE"
        return m


class TrafficSoC(SoC):
    """The SoC around :class:`TrafficCore` (a class of its own, so the Verilog cache key
    covers this file)."""

    def __init__(self, cores=1, addr_width=16, **kwargs):
        super().__init__(TrafficCore, {"addr_width": addr_width}, cores=cores, **kwargs)


def traffic_executor(memory, pc, core):
    """:class:`TrafficCore`'s behaviour for the golden transport (same program, same
    results, same reported counters except the cycle counts)."""
    src, dst, n, add = (int(w) for w in memory[pc:pc + 4])
    counters = {"dram_bytes_read": 16, "dram_bytes_written": 0, "fp_ops": 0}
    if n & BAD:
        return {"error": ERROR_BAD_COUNT, "error_pc": pc, "counters": counters}
    if n & HANG:
        raise NotImplementedError("the golden model cannot hang")
    memory[dst:dst + n] = (memory[src:src + n].astype("u8") + add).astype("u4")
    counters.update(dram_bytes_read=16 + 4 * n, dram_bytes_written=4 * n, fp_ops=n)
    return {"error": 0, "error_pc": 0, "counters": counters}
