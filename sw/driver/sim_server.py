"""cocotb side of the ``sim`` transport: serves :mod:`~trident.sw.driver.simlink` requests
against the SoC RTL (started by :class:`~trident.sw.driver.sim.SimTransport`).

The simulator only advances while a request needs it: a CSR access takes the few cycles
the host port needs, ``RUN`` lets the SoC run on its own (a single timer, so there is no
Python per cycle while the cores work, and the clock is cocotb's C clock), and DRAM bulk
transfers use the memory backdoor (no cycles at all).

Environment
-----------
TRIDENT_SIM_SOCKET   the Unix socket the host listens on
TRIDENT_SIM_MEMORY   hierarchical name of the DRAM array (``SoC.BACKDOOR_MEMORY``)
TRIDENT_SIM_DIVISOR  clock cycles per UART bit (0: the SoC has no UART)
TRIDENT_SIM_AXI      with ``dram="axi"``: ``words,status_address,busy_bit,stall,command_cycles``:
                     the DRAM is a cocotbext-axi ``AxiRam`` of ``words`` on the ``axi__*``
                     port (its channels stalled at random with probability ``stall``, AR and
                     AW open on one cycle in ``command_cycles``), reached by backdoor once
                     the SoC's ``dram.status.busy`` bit reads 0
"""

import os
import socket
import struct

import cocotb
from cocotb.handle import Immediate
from cocotb.triggers import FallingEdge, First, ReadOnly, RisingEdge, Timer
from cocotb.utils import get_sim_time

from trident.rtl.core.ports import mem_request_layout
from trident.rtl.soc.host import HOST_ADDR_WIDTH
from trident.verify.tb.env import CLOCK_PERIOD_NS, reset, start_clock

from .simlink import HEADER, Op, recv_exact, send_error, send_reply

_LAYOUT = mem_request_layout(HOST_ADDR_WIDTH)


def _request(addr_word, write, data=0):
    return ((addr_word << _LAYOUT["addr"].offset) | (write << _LAYOUT["write"].offset)
            | (data << _LAYOUT["data"].offset))


class Server:
    """The simulator side of the link: host-port transfers, the DRAM backdoor, free runs
    and the UART pins of one SoC instance (``dut``)."""

    def __init__(self, dut):
        self.dut = dut
        self.clk = dut.clk
        self.divisor = int(os.environ.get("TRIDENT_SIM_DIVISOR", "0"))
        name = os.environ.get("TRIDENT_SIM_MEMORY", "")
        self.memory = self._find(name) if name else None
        self.uart_rx_bytes = bytearray()
        self.axi_ram = None
        if os.environ.get("TRIDENT_SIM_AXI"):
            words, address, bit, stall, command = os.environ["TRIDENT_SIM_AXI"].split(",")
            self.busy_address, self.busy_bit = int(address), int(bit)
            self.axi_ram = _axi_ram(dut, 4 * int(words), float(stall), int(command))

    async def axi_quiet(self, max_cycles=100_000):
        """Wait until the SoC's AXI port has no write unacknowledged and no read in flight,
        so the backdoor sees what the SoC has written."""
        for _ in range(max_cycles):
            if not (await self.host(self.busy_address, 0)) >> self.busy_bit & 1:
                return
        raise RuntimeError(f"the AXI DRAM port stayed busy for {max_cycles} register reads")

    def _find(self, name):
        # Icarus knows the escaped identifier by its plain name, Verilator keeps the escape.
        for candidate in (name, f"\\{name} "):
            try:
                return self.dut._id(candidate, extended=False)
            except AttributeError:
                continue
        raise AttributeError(f"the design has no memory {name!r} for the DRAM backdoor")

    async def host(self, addr, write, data=0):
        """One host-port transfer; starts and ends just after a falling edge."""
        dut = self.dut
        dut.host__req__payload.value = _request(addr >> 2, write, data)
        dut.host__req__valid.value = 1
        while True:
            await ReadOnly()
            accepted = int(dut.host__req__ready.value)
            await RisingEdge(self.clk)
            await FallingEdge(self.clk)
            if accepted:
                break
        dut.host__req__valid.value = 0
        if write:
            return None
        dut.host__resp__ready.value = 1
        while True:
            await ReadOnly()
            valid = int(dut.host__resp__valid.value)
            if valid:
                value = dut.host__resp__payload.value
                value = int(value)
            await RisingEdge(self.clk)
            await FallingEdge(self.clk)
            if valid:
                break
        dut.host__resp__ready.value = 0
        return value

    async def run(self, cycles, until_irq):
        t0 = get_sim_time("ns")
        if until_irq and not int(self.dut.irq.value):
            await First(Timer(cycles * CLOCK_PERIOD_NS, "ns"), RisingEdge(self.dut.irq))
        else:
            await Timer(cycles * CLOCK_PERIOD_NS, "ns")
        await FallingEdge(self.clk)
        return int((get_sim_time("ns") - t0) // CLOCK_PERIOD_NS)

    async def uart_listen(self):
        """Background: decode 8N1 bytes from uart_tx."""
        bit = self.divisor * CLOCK_PERIOD_NS
        line = self.dut.uart_tx
        while True:
            await FallingEdge(line)
            await Timer(bit * 3 // 2, "ns")
            value = 0
            for i in range(8):
                value |= int(line.value) << i
                await Timer(bit, "ns")
            if int(line.value):
                self.uart_rx_bytes.append(value)

    async def uart_send(self, data):
        bit = self.divisor * CLOCK_PERIOD_NS
        for byte in data:
            for level in (0, *((byte >> i) & 1 for i in range(8)), 1):
                self.dut.uart_rx.value = level
                await Timer(bit, "ns")
        await FallingEdge(self.clk)

    async def uart_recv(self, n, max_cycles):
        byte_ns = 10 * self.divisor * CLOCK_PERIOD_NS
        waited = 0
        while len(self.uart_rx_bytes) < n and waited < max_cycles * CLOCK_PERIOD_NS:
            await Timer(byte_ns, "ns")
            waited += byte_ns
        await FallingEdge(self.clk)
        out = bytes(self.uart_rx_bytes[:n])
        del self.uart_rx_bytes[:n]
        return out

    def require_memory(self):
        if self.memory is None:
            raise RuntimeError("this SoC has no block-RAM DRAM to reach through the backdoor")
        return self.memory

    async def handle(self, op, a, b, payload):
        if op == Op.HOST_READ:
            words = [await self.host(a + 4 * i, 0) for i in range(b)]
            return struct.pack(f"<{b}I", *words)
        if op == Op.HOST_WRITE:
            for i, w in enumerate(struct.unpack(f"<{b}I", payload)):
                await self.host(a + 4 * i, 1, w)
            return b""
        if op == Op.MEM_LOAD and self.axi_ram is not None:
            await self.axi_quiet()
            self.axi_ram.write(4 * a, payload)
            return b""
        if op == Op.MEM_DUMP and self.axi_ram is not None:
            await self.axi_quiet()
            return self.axi_ram.read(4 * a, 4 * b)
        if op == Op.MEM_LOAD:
            mem = self.require_memory()
            for i, w in enumerate(struct.unpack(f"<{b}I", payload)):
                mem[a + i].value = Immediate(w)
            return b""
        if op == Op.MEM_DUMP:
            mem = self.require_memory()
            return struct.pack(f"<{b}I", *(int(mem[a + i].value) for i in range(b)))
        if op == Op.RUN:
            return struct.pack("<Q", await self.run(a, bool(b & 1)))
        if op == Op.UART_SEND:
            await self.uart_send(payload)
            return b""
        if op == Op.UART_RECV:
            return await self.uart_recv(a, b)
        raise ValueError(f"unknown simulator-link operation {op}")


def _axi_ram(dut, size, stall, command_cycles):
    """cocotbext-axi's AxiRam on the SoC's ``axi__*`` port.  Its channels pause at random with
    probability ``stall`` (a fixed pattern per channel); AR and AW are open on one cycle in
    ``command_cycles`` only (a memory controller's cost per command)."""
    import itertools
    import random

    from cocotbext.axi import AxiBus, AxiRam

    ram = AxiRam(AxiBus.from_prefix(dut, "axi_"), dut.clk, dut.rst, size=size)
    rng = random.Random(size)
    address = {ram.write_if.aw_channel, ram.read_if.ar_channel}
    for channel in (ram.write_if.aw_channel, ram.write_if.w_channel, ram.write_if.b_channel,
                    ram.read_if.ar_channel, ram.read_if.r_channel):
        period = command_cycles if channel in address else 1
        pauses = [rng.random() < stall or i % period != 0 for i in range(97 * period)]
        if any(pauses):
            channel.set_pause_generator(itertools.cycle(pauses))
    return ram


@cocotb.test()
async def serve(dut):
    """Serve the host until it sends QUIT (or goes away)."""
    server = Server(dut)
    start_clock(dut)
    dut.host__req__valid.value = 0
    dut.host__req__payload.value = 0
    dut.host__resp__ready.value = 0
    if server.divisor:
        dut.uart_rx.value = 1
        cocotb.start_soon(server.uart_listen())
    await reset(dut)
    await FallingEdge(dut.clk)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(os.environ["TRIDENT_SIM_SOCKET"])
    with sock:
        while True:
            try:
                op, a, b, n = HEADER.unpack(recv_exact(sock, HEADER.size))
                payload = recv_exact(sock, n)
            except ConnectionError:
                return
            if op == Op.QUIT:
                send_reply(sock)
                return
            try:
                reply = await server.handle(op, a, b, payload)
            except Exception as e:     # reported to the host, which raises it
                send_error(sock, f"{type(e).__name__}: {e}")
                continue
            send_reply(sock, reply)
