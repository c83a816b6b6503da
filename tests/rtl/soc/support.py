"""Helpers of the SoC tests: a host on the SoC's host port in the Amaranth simulator."""
import gc
import warnings

from amaranth.sim import Simulator

from trident.rtl.soc.regmap import HOST_DRAM_BASE


def collect_refused():
    """Collect a component whose constructor refused its arguments: Amaranth would warn
    that it was never elaborated."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gc.collect()


class Host:
    """Host-port reads and writes by register path or DRAM word, in an async testbench."""

    def __init__(self, ctx, dut):
        self.ctx, self.dut, self.map = ctx, dut, dut.memory_map

    async def write(self, byte_addr, value):
        ctx, req = self.ctx, self.dut.host.req
        ctx.set(req.valid, 1)
        ctx.set(req.payload.addr, byte_addr >> 2)
        ctx.set(req.payload.write, 1)
        ctx.set(req.payload.data, value)
        await ctx.tick().until(req.ready)
        ctx.set(req.valid, 0)

    async def read(self, byte_addr):
        ctx, req, resp = self.ctx, self.dut.host.req, self.dut.host.resp
        ctx.set(req.valid, 1)
        ctx.set(req.payload.addr, byte_addr >> 2)
        ctx.set(req.payload.write, 0)
        await ctx.tick().until(req.ready)
        ctx.set(req.valid, 0)
        ctx.set(resp.ready, 1)
        value, = await ctx.tick().sample(resp.payload).until(resp.valid)
        ctx.set(resp.ready, 0)
        return value

    async def reg(self, path, **field_values):
        inst = self.map.locate(path)
        if field_values:
            await self.write(inst.address, inst.register.pack(**field_values))
            return None
        return inst.register.unpack(await self.read(inst.address))

    async def mem_write(self, word, values):
        for i, v in enumerate(values):
            await self.write(HOST_DRAM_BASE + 4 * (word + i), v)

    async def mem_read(self, word, count):
        return [await self.read(HOST_DRAM_BASE + 4 * (word + i)) for i in range(count)]


def simulate(dut, testbench):
    sim = Simulator(dut)
    sim.add_clock(1e-8)

    async def bench(ctx):
        await testbench(Host(ctx, dut))
    sim.add_testbench(bench)
    sim.run()
