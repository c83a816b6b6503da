"""A core alone on a board: :class:`CoreSelfTest` — one :class:`~.core.TridentCore`, a
block-RAM DRAM holding a compiled training step, and LEDs that say whether the core
reproduced the golden device's result (the ``1core`` FPGA configuration, fpga/configs_core.py).

After reset the core runs the forward program, then the backward program (the host's loss
gradient ``G`` is already in the image: the golden device computed it at elaboration), then
a checksum of the whole memory is compared with the golden device's final image.
"""

import copy

import numpy as np
import torch
from amaranth.hdl import Cat, Elaboratable, Module, Signal
from amaranth.lib import memory

from ...golden.hw import HwExactNetwork
from ...golden.hw import compiler as C
from ...golden.hw import program as P
from ...golden.hw.network import host_loss_grad
from ...golden.network import SpikingNetwork
from ...golden.neurons import NeuronConfig
from .core import TridentCore, core_params
from .ports import WORD_BITS

__all__ = ["CoreSelfTest", "selftest_image", "BlockRAMMemory"]


def selftest_image(params, seed=0):
    """``(image, forward_pc, backward_pc, expected_checksum)``: a 16-12-4 MLP training step
    (T = 2, N = 2) compiled for ``TridentCore(**params)``, with ``G`` written, and the
    checksum (32-bit sum of words) of the golden device's final image."""
    torch.manual_seed(seed)
    model = SpikingNetwork("fc12", (16,), 4, NeuronConfig(kind="lif", tau=2.0, detach_reset=True,
                                                          surrogate="sigmoid"))
    with torch.no_grad():
        model.body[0].weight.mul_(3.0)
        model.readout.weight.mul_(4.0)
    net = HwExactNetwork.from_float(model, lr=0.5)
    cp = core_params(**params)
    prog = C.compile(copy.deepcopy(net), 2, cp, steps=2)
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.rand(2, 16, generator=g).unsqueeze(0).repeat(2, 1, 1)
    labels = torch.randint(0, 4, (2,), generator=g)
    image = np.zeros(cp.dram_words, dtype=np.uint32)
    image[:prog.memory.size] = prog.memory
    prog.write_input(image, x)
    gold = image.copy()
    P.run(gold, prog.forward_pc, cp)
    _, g16 = host_loss_grad(prog.read_logits(gold), labels, prog.loss_scale)
    prog.write_loss_grad(gold, g16)
    prog.write_loss_grad(image, g16)           # the forward program does not touch G
    P.run(gold, prog.backward_pc, cp)
    checksum = int(gold.astype(np.uint64).sum()) & 0xFFFFFFFF
    return image, prog.forward_pc, prog.backward_pc, checksum


class BlockRAMMemory(Elaboratable):
    """Serves a core's memory port from a block RAM (one request per cycle, read latency
    one cycle, back-pressure when a response waits); ``scan_addr``/``scan_data`` is a
    second read port for the checksum."""

    def __init__(self, port, init):
        self.port = port
        self.init = [int(w) for w in init]
        self.depth = len(self.init)
        self.scan_addr = Signal(range(self.depth))
        self.scan_data = Signal(WORD_BITS)

    def elaborate(self, platform):
        m = Module()
        mem = memory.Memory(shape=WORD_BITS, depth=self.depth, init=self.init)
        m.submodules.mem = mem
        rd, wr, scan = mem.read_port(), mem.write_port(), mem.read_port()
        req, resp = self.port.req, self.port.resp
        pending = Signal()
        take = req.valid & req.ready
        m.d.comb += [req.ready.eq(~pending | resp.ready),
                     rd.addr.eq(req.payload.addr), rd.en.eq(take & ~req.payload.write),
                     wr.addr.eq(req.payload.addr), wr.data.eq(req.payload.data),
                     wr.en.eq(take & req.payload.write),
                     resp.valid.eq(pending), resp.payload.eq(rd.data),
                     scan.addr.eq(self.scan_addr), self.scan_data.eq(scan.data)]
        with m.If(take & ~req.payload.write):
            m.d.sync += pending.eq(1)
        with m.Elif(resp.ready):
            m.d.sync += pending.eq(0)
        return m


class CoreSelfTest(Elaboratable):
    """The ``1core`` board design: core + block-RAM DRAM + self-test sequencer.

    LEDs: 0 pass (both programs ended without error and the checksum matches), 1 fail,
    2 busy, 3 overflow; the rest a heartbeat.  Press nothing: it runs once after reset.
    """

    def __init__(self, n_leds=8, addr_width=10, **params):
        self.leds = Signal(n_leds)
        self.params = dict(params, addr_width=addr_width)

    def elaborate(self, platform):
        m = Module()
        image, fwd_pc, bwd_pc, expected = selftest_image(self.params)
        core = TridentCore(**self.params)
        ram = BlockRAMMemory(core.mem, image)
        m.submodules.core, m.submodules.ram = core, ram
        ctrl = core.ctrl
        ok, bad = Signal(), Signal()
        total = Signal(WORD_BITS)
        beat = Signal(26)
        m.d.sync += beat.eq(beat + 1)
        with m.FSM():
            with m.State("FORWARD"):
                m.d.comb += [ctrl.start.eq(1), ctrl.program.eq(fwd_pc)]
                m.next = "WAIT_FORWARD"
            with m.State("WAIT_FORWARD"):
                with m.If(ctrl.done & ~ctrl.busy):
                    m.next = "BACKWARD"
                    with m.If(ctrl.error != 0):
                        m.next = "FAIL"
            with m.State("BACKWARD"):
                m.d.comb += [ctrl.start.eq(1), ctrl.program.eq(bwd_pc)]
                m.next = "WAIT_BACKWARD"
            with m.State("WAIT_BACKWARD"):
                with m.If(ctrl.done & ~ctrl.busy):
                    m.next = "SCAN"
                    with m.If(ctrl.error != 0):
                        m.next = "FAIL"
            with m.State("SCAN"):
                # the read port's data lags its address by one cycle
                m.d.sync += ram.scan_addr.eq(ram.scan_addr + 1)
                with m.If(ram.scan_addr != 0):
                    m.d.sync += total.eq(total + ram.scan_data)
                with m.If(ram.scan_addr == ram.depth - 1):
                    m.next = "LAST"
            with m.State("LAST"):
                m.d.sync += total.eq(total + ram.scan_data)
                m.next = "CHECK"
            with m.State("CHECK"):
                with m.If(total == expected):
                    m.d.sync += ok.eq(1)
                    m.next = "DONE"
                with m.Else():
                    m.next = "FAIL"
            with m.State("FAIL"):
                m.d.sync += bad.eq(1)
                m.next = "DONE"
            with m.State("DONE"):
                pass
        n = len(self.leds)
        m.d.comb += self.leds.eq(Cat(ok, bad, ctrl.busy, core.overflow, beat[-4:])[:n])
        return m
