"""cocotb: the SoC with ``dram="axi"`` against cocotbext-axi's AxiRam (with stalls on every
channel when TRIDENT_AXI_PAUSE=1): cores copy through AXI, the host reads and writes DRAM
through AXI, counters and results are checked.  Environment: TRIDENT_CORES."""

import itertools
import os
import random

import cocotb
from cocotb.triggers import FallingEdge
from cocotbext.axi import AxiBus, AxiRam

from trident.rtl.soc.regmap import HOST_DRAM_BASE, SoCParams, build_regmap
from trident.sw.driver.sim_server import Server
from trident.verify.tb.env import reset, start_clock


@cocotb.test()
async def axi_dram(dut):
    cores = int(os.environ["TRIDENT_CORES"])
    words = int(os.environ["TRIDENT_DRAM_WORDS"])
    rng = random.Random(int(os.environ.get("TRIDENT_SEED_AXI", "1")))
    mm = build_regmap(SoCParams(cores=cores, addr_width=16, dram_words=words, axi_dram=True))
    start_clock(dut)
    dut.host__req__valid.value = 0
    dut.host__req__payload.value = 0
    dut.host__resp__ready.value = 0
    ram = AxiRam(AxiBus.from_prefix(dut, "axi_"), dut.clk, dut.rst, size=4 * words)
    if os.environ.get("TRIDENT_AXI_PAUSE") == "1":
        for channel in (ram.write_if.aw_channel, ram.write_if.w_channel, ram.write_if.b_channel,
                        ram.read_if.ar_channel, ram.read_if.r_channel):
            channel.set_pause_generator(itertools.cycle(
                [rng.random() < 0.3 for _ in range(97)]))
    await reset(dut)
    await FallingEdge(dut.clk)
    host = Server(dut)

    async def reg(path, **fields):
        inst = mm.locate(path)
        if fields:
            await host.host(inst.address, 1, inst.register.pack(**fields))
            return None
        return inst.register.unpack(await host.host(inst.address, 0))

    assert (await reg("global.build"))["axi_dram"] == 1
    n = 12
    data = [rng.getrandbits(32) for _ in range(n * cores)]
    for i, w in enumerate(data):
        ram.write(4 * (0x100 + i), w.to_bytes(4, "little"))
    for k in range(cores):
        desc = [0x100 + n * k, 0x200 + n * k, n, k + 3]
        # Half of the programs go in through the host port (AXI writes), half by backdoor.
        for i, w in enumerate(desc):
            if k % 2:
                await host.host(HOST_DRAM_BASE + 4 * (0x10 * k + i), 1, w)
            else:
                ram.write(4 * (0x10 * k + i), w.to_bytes(4, "little"))
        await reg(f"core[{k}].program", address=0x10 * k)
    for k in range(cores):
        await reg(f"core[{k}].control", start=1)
    for _ in range(2000):
        done = [(await reg(f"core[{k}].status"))["done"] for k in range(cores)]
        if all(done):
            break
    assert all(done), f"cores not done: {done}"
    for k in range(cores):
        for i in range(n):
            got = int.from_bytes(ram.read(4 * (0x200 + n * k + i), 4), "little")
            assert got == (data[n * k + i] + k + 3) & 0xFFFFFFFF, (k, i)
            # The host reads DRAM through AXI too.
            assert await host.host(HOST_DRAM_BASE + 4 * (0x200 + n * k + i), 0) == got
        assert (await reg(f"core[{k}].dram_bytes_read"))["count"] == 4 * (4 + n)
        assert (await reg(f"core[{k}].dram_bytes_written"))["count"] == 4 * n
    host_writes = 4 * sum(k % 2 for k in range(cores))
    assert (await reg("dram.bytes_written"))["count"] == 4 * (n * cores + host_writes)
    assert (await reg("dram.bytes_read"))["count"] == 4 * (cores * (4 + n) + n * cores)
    assert (await reg("dram.status"))["error"] == 0
