"""The Trident SoC: N cores, their CSRs, a round-robin interconnect and one DRAM port.

```
 host port ─┐                         ┌─ core[0] ctrl/counters   core[0] mem ─┐
 UART bridge┴─ Interconnect ─ HostBridge ─ CSRBank ─ …                 …       ├─ Interconnect ─ DRAM
                                 └──────── DRAM requests of the host ──────────┘   (BlockRAM | AXI4)
```
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from trident.rtl.core.ports import ControlSignature, MemoryPortSignature

from .axi import AXI4Master, AXI4Signature
from .csr import CSRBank
from .dram import BlockRAM
from .host import HOST_ADDR_WIDTH, HostBridge
from .interconnect import Interconnect
from .queue import ProgramQueue
from .regmap import CORE_COUNTERS, SoCParams, build_regmap
from .uart import UartBridge

__all__ = ["DRAM_KINDS", "SoC", "core_ports", "core_counters"]

#: ``SoC(dram=…)``: block RAM inside the SoC, or an AXI4 master port to an external memory.
DRAM_KINDS = ("bram", "axi")


def core_ports(core):
    """The names of a core's memory port and control port, found by their signatures.

    Returns
    -------
    (str, str)
        ``(memory port name, control port name)``.
    """
    found = {}
    for name, member in core.signature.members.items():
        if not member.is_signature:
            continue
        sig = member.signature.flip() if member.flow == In else member.signature
        if isinstance(sig, MemoryPortSignature) and member.flow == Out:
            found.setdefault("mem", []).append(name)
        if isinstance(sig, ControlSignature) and member.flow == Out:
            found.setdefault("ctrl", []).append(name)
    for what, sig in (("mem", "Out(MemoryPortSignature)"), ("ctrl", "Out(ControlSignature)")):
        if len(found.get(what, [])) != 1:
            raise TypeError(f"{type(core).__name__} must have exactly one {sig} member "
                            f"(trident.rtl.core.ports); it has {found.get(what, [])}")
    return found["mem"][0], found["ctrl"][0]


def core_counters(core):
    """``{name: value}`` of a core's ``counters`` output (a struct of counters), if any."""
    if "counters" not in core.signature.members:
        return {}
    layout = core.signature.members["counters"].shape
    return {name: core.counters[name] for name, _ in layout}


class SoC(wiring.Component):
    """N cores behind the register map of :func:`~trident.rtl.soc.regmap.build_regmap`.

    Parameters
    ----------
    core : type
        The core class; ``core(**core_params)`` must have one ``Out(MemoryPortSignature)``
        and one ``Out(ControlSignature)`` member (both signatures are seen from the core) (of equal address width).  Optional:
        ``counters`` (a struct with fields named like
        :data:`~trident.rtl.soc.regmap.CORE_COUNTERS`) and ``overflow`` (1 bit).
    core_params : dict
    cores : int
    dram : str
        ``"bram"``: ``dram_words`` of block RAM inside; ``"axi"``: an ``axi`` master port.
    dram_words : int
        Words of DRAM (a power of two for ``"bram"``).
    uart_divisor : int or None
        Clock cycles per UART bit; adds a UART bridge on ``uart_rx``/``uart_tx``.
    uart_max_words : int
        Longest UART write burst (words buffered before the checksum is checked).
    max_outstanding : int
        DRAM reads in flight.
    max_burst : int
        With ``dram="axi"``: the longest AXI burst in beats; the interconnect keeps a core's
        run of consecutive words together up to this length (:mod:`trident.rtl.soc.axi`).
    queue_depth : int
        Entries of the program queue (:mod:`trident.rtl.soc.queue`).

    Members
    -------
    host : In(MemoryPortSignature(HOST_ADDR_WIDTH))
        The host bridge (see :mod:`trident.rtl.soc.host`).
    irq : Out(1)
    axi : Out(AXI4Signature(addr_width + 2))
        With ``dram="axi"``.
    uart_rx : In(1), uart_tx : Out(1)
        With ``uart_divisor``.
    """

    #: Hierarchical name of the block-RAM DRAM array in the generated netlist (submodule
    #: ``dram`` holding the memory ``dram``): the simulator transport's backdoor.
    BACKDOOR_MEMORY = "dram.dram"

    def __init__(self, core, core_params=None, cores=1, dram="bram", dram_words=1 << 14,
                 uart_divisor=None, uart_max_words=64, max_outstanding=32, max_burst=16,
                 queue_depth=32):
        if dram not in DRAM_KINDS:
            raise ValueError(f"dram={dram!r}: choose one of {DRAM_KINDS}")
        self.core_params = dict(core_params or {})
        self._cores = [core(**self.core_params) for _ in range(cores)]
        self.mem_name, self.ctrl_name = core_ports(self._cores[0])
        self.addr_width = getattr(self._cores[0], self.mem_name).signature.addr_width
        ctrl_width = getattr(self._cores[0], self.ctrl_name).signature.addr_width
        if ctrl_width != self.addr_width:
            raise ValueError(f"{core.__name__}: memory port addresses are {self.addr_width} "
                             f"bits but control-port addresses {ctrl_width}; make them equal")
        self.params = SoCParams(cores=cores, addr_width=self.addr_width, dram_words=dram_words,
                                queue_depth=queue_depth, axi_dram=dram == "axi")
        self.memory_map = build_regmap(self.params)
        self.dram_kind = dram
        self.uart_divisor = uart_divisor
        self.uart_max_words = uart_max_words
        self.max_outstanding = max_outstanding
        self.max_burst = max_burst
        members = {"host": In(MemoryPortSignature(HOST_ADDR_WIDTH)), "irq": Out(1)}
        if dram == "axi":
            members["axi"] = Out(AXI4Signature(self.addr_width + 2))
        if uart_divisor is not None:
            members.update({"uart_rx": In(1, init=1), "uart_tx": Out(1, init=1)})
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        n = self.params.cores
        m.submodules.csr = bank = CSRBank(self.memory_map)
        field = bank.field

        def command(path):                  # a W field written with 1
            port = field(path)
            return port.w_stb & port.w_data[0]

        # Host side: the host port and the UART bridge share the host bridge.
        m.submodules.bridge = bridge = HostBridge(bank.addr_width, self.addr_width)
        wiring.connect(m, bridge.csr, bank.bus)
        if self.uart_divisor is None:
            wiring.connect(m, wiring.flipped(self.host), bridge.host)
        else:
            m.submodules.uart = uart = UartBridge(self.uart_divisor, self.uart_max_words)
            m.submodules.host_xbar = host_xbar = Interconnect(2, HOST_ADDR_WIDTH, 1)
            wiring.connect(m, wiring.flipped(self.host), host_xbar.initiators[0])
            wiring.connect(m, uart.host, host_xbar.initiators[1])
            wiring.connect(m, host_xbar.target, bridge.host)
            m.d.comb += [uart.rx.eq(self.uart_rx), self.uart_tx.eq(uart.tx)]

        # DRAM side: cores 0…n-1, then the host.
        # Block RAM serves any word in one cycle, so only AXI gains from keeping runs whole.
        axi = self.dram_kind == "axi"
        m.submodules.xbar = xbar = Interconnect(n + 1, self.addr_width, self.max_outstanding,
                                                max_burst=self.max_burst if axi else 1)
        wiring.connect(m, bridge.dram, xbar.initiators[n])
        clearing = command("global.control.clear_counters")
        if axi:
            m.submodules.dram = dram = AXI4Master(self.addr_width, self.max_burst,
                                                  self.max_outstanding)
            wiring.connect(m, xbar.target, dram.bus)
            wiring.connect(m, dram.axi, wiring.flipped(self.axi))
            m.d.comb += [field("dram.status.error").r_data.eq(dram.error),
                         field("dram.status.busy").r_data.eq(dram.busy)]
        else:
            m.submodules.dram = dram = BlockRAM(self.params.dram_words, self.addr_width)
            wiring.connect(m, xbar.target, dram.bus)

        def run_counter(port, increment, clear):
            value = port.r_data
            with m.If(clear):
                m.d.sync += value.eq(0)
            with m.Else():
                m.d.sync += value.eq(value + increment)

        def counter(port, increment):
            run_counter(port, increment, clearing)

        counter(field("global.cycles.count"), 1)
        dram_req = xbar.target.req
        dram_accept = dram_req.valid & dram_req.ready
        counter(field("dram.bytes_read.count"), (dram_accept & ~dram_req.payload.write) << 2)
        counter(field("dram.bytes_written.count"), (dram_accept & dram_req.payload.write) << 2)
        if axi:
            counter(field("dram.read_bursts.count"), dram.read_burst)
            counter(field("dram.write_bursts.count"), dram.write_burst)

        # The program queue: entries from core[i].enqueue and queue.control.barrier (the CSR
        # bus writes one register per cycle, so at most one of them pushes).
        m.submodules.queue = queue = ProgramQueue(n, self.addr_width, self.params.queue_depth)
        barrier = command("queue.control.barrier")
        enqueues = [field(f"core[{i}].enqueue.address") for i in range(n)]
        m.d.comb += [queue.push.valid.eq(barrier | Cat(e.w_stb for e in enqueues).any()),
                     queue.push.payload.barrier.eq(barrier),
                     queue.flush.eq(command("queue.control.flush"))]
        for i, e in enumerate(enqueues):
            with m.If(e.w_stb):
                m.d.comb += [queue.push.payload.core.eq(i), queue.push.payload.address.eq(e.w_data)]
        m.d.comb += [field("queue.status.idle").r_data.eq(queue.idle),
                     field("queue.status.halted").r_data.eq(queue.halted),
                     field("queue.status.overflow").r_data.eq(queue.overflow),
                     field("queue.status.dropped").r_data.eq(queue.dropped),
                     field("queue.status.level").r_data.eq(queue.level)]
        stopped = Signal()
        stopped_before = Signal(init=1)
        m.d.comb += stopped.eq(queue.idle | queue.halted)
        m.d.sync += stopped_before.eq(stopped)
        pending, enable = field("queue.irq.pending"), field("queue.irq.enable")
        m.d.comb += pending.set.eq(stopped & ~stopped_before)
        irqs = [pending.data & enable.data]

        for i, core in enumerate(self._cores):
            m.submodules[f"core{i}"] = core
            mem, ctrl = getattr(core, self.mem_name), getattr(core, self.ctrl_name)
            wiring.connect(m, mem, xbar.initiators[i])
            p = f"core[{i}]"
            queued = queue.start[i]             # the queue wins over a start by hand
            m.d.comb += [
                ctrl.start.eq(command(f"{p}.control.start") | queued),
                ctrl.program.eq(Mux(queued, queue.program, field(f"{p}.program.address").data)),
                ctrl.keep.eq(queue.keep[i]),
                queue.busy[i].eq(ctrl.busy), queue.done[i].eq(ctrl.done),
                queue.failed[i].eq(ctrl.error != 0),
                field(f"{p}.status.busy").r_data.eq(ctrl.busy),
                field(f"{p}.status.done").r_data.eq(ctrl.done),
                field(f"{p}.error.code").r_data.eq(ctrl.error),
                field(f"{p}.error_pc.address").r_data.eq(ctrl.error_pc),
            ]
            done_before = Signal(name=f"core{i}_done_before")
            m.d.sync += done_before.eq(ctrl.done)
            pending, enable = field(f"{p}.irq.pending"), field(f"{p}.irq.enable")
            m.d.comb += pending.set.eq(ctrl.done & ~done_before)
            irqs.append(pending.data & enable.data)

            accept = mem.req.valid & mem.req.ready
            # the core ignores a start while busy; a queued run's later programs keep counting
            starting = ctrl.start & ~ctrl.busy & ~ctrl.keep
            run_counter(field(f"{p}.busy_cycles.count"), ctrl.busy, starting)
            run_counter(field(f"{p}.dram_bytes_read.count"), (accept & ~mem.req.payload.write) << 2,
                        starting)
            run_counter(field(f"{p}.dram_bytes_written.count"), (accept & mem.req.payload.write) << 2,
                        starting)
            reported = core_counters(core)
            for name in CORE_COUNTERS:
                if name in reported:        # a core without this counter reads 0
                    m.d.comb += field(f"{p}.{name}.count").r_data.eq(reported[name])
            if "overflow" in core.signature.members:
                m.d.comb += [field(f"{p}.status.overflow").r_data.eq(core.overflow),
                             queue.overflow_in[i].eq(core.overflow)]
        any_irq = Cat(*irqs).any()
        m.d.comb += [field("global.irq.pending").r_data.eq(any_irq), self.irq.eq(any_irq)]
        return m
