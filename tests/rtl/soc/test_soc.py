"""The SoC in the Amaranth simulator: CSRs through the host port, N cores (the traffic
test double) sharing DRAM through the round-robin interconnect, counters, IRQ, errors."""

import pytest
from support import collect_refused, simulate
from traffic_core import BAD, ERROR_BAD_COUNT, TrafficCore, TrafficSoC

from trident.rtl.soc.regmap import MAGIC, VERSION
from trident.rtl.soc.soc import core_ports


def test_core_ports_are_found_by_signature():
    core = TrafficCore()
    core._MustUse__silence = True
    assert core_ports(core) == ("mem", "ctrl")
    not_a_core = _not_a_core()
    with pytest.raises(TypeError, match="exactly one Out\\(MemoryPortSignature\\)"):
        core_ports(not_a_core)


def _not_a_core():
    from amaranth.lib import wiring
    from amaranth.lib.wiring import Out

    class NotACore(wiring.Component):
        x: Out(1)

        def elaborate(self, platform):
            raise NotImplementedError
    obj = NotACore()
    obj._MustUse__silence = True
    return obj


def test_dram_kind_is_checked():
    with pytest.raises(ValueError, match="choose one of"):
        TrafficSoC(dram="sdram")
    collect_refused()


def test_global_block_scratch_and_unmapped():
    dut = TrafficSoC(cores=3, dram_words=256)

    async def bench(host):
        assert (await host.reg("global.id"))["magic"] == MAGIC
        assert (await host.reg("global.version")) == {"minor": VERSION[1], "major": VERSION[0]}
        assert (await host.reg("global.build")) == {"cores": 3, "addr_width": 16, "axi_dram": 0}
        assert (await host.reg("global.dram_words"))["words"] == 256
        await host.reg("global.scratch", value=0xDEADBEEF)
        assert (await host.reg("global.scratch"))["value"] == 0xDEADBEEF
        assert await host.read(0x0FFC) == 0           # unmapped
        c1 = (await host.reg("global.cycles"))["count"]
        c2 = (await host.reg("global.cycles"))["count"]
        assert 0 < c1 < c2
        await host.reg("core[2].program", address=0x1234)
        assert (await host.reg("core[2].program"))["address"] == 0x1234
        assert (await host.reg("core[1].program"))["address"] == 0
    simulate(dut, bench)


def _program(base, src, dst, n, add):
    return base, [src, dst, n, add]


@pytest.mark.parametrize("cores", [1, 2, 4])
def test_cores_share_dram(cores):
    """Every core copies its own slice at the same time; results, per-core and DRAM
    counters, IRQ."""
    n = 6
    dut = TrafficSoC(cores=cores, dram_words=1024)

    async def bench(host):
        data = [0x100 * k + j for k in range(cores) for j in range(n)]
        await host.mem_write(0x100, data)
        for k in range(cores):
            await host.mem_write(0x10 * k, [0x100 + n * k, 0x200 + n * k, n, k + 1])
            await host.reg(f"core[{k}].program", address=0x10 * k)
            await host.reg(f"core[{k}].irq", enable=1)
        await host.reg("global.control", clear_counters=1)
        for k in range(cores):
            await host.reg(f"core[{k}].control", start=1)
        for _ in range(200):
            done = [(await host.reg(f"core[{k}].status"))["done"] for k in range(cores)]
            if all(done):
                break
        else:
            raise AssertionError("cores did not finish")
        assert host.ctx.get(host.dut.irq) == 1
        assert (await host.reg("global.irq"))["pending"] == 1
        out = await host.mem_read(0x200, n * cores)
        assert out == [(v + k + 1) & 0xFFFFFFFF for k in range(cores)
                       for v in data[n * k:n * (k + 1)]]
        for k in range(cores):
            c = f"core[{k}]"
            assert (await host.reg(f"{c}.status")) == {"busy": 0, "done": 1, "overflow": 0}
            assert (await host.reg(f"{c}.error"))["code"] == 0
            assert (await host.reg(f"{c}.dram_bytes_read"))["count"] == 4 * (4 + n)
            assert (await host.reg(f"{c}.dram_bytes_written"))["count"] == 4 * n
            assert (await host.reg(f"{c}.fp_ops"))["count"] == n
            busy = (await host.reg(f"{c}.busy_cycles"))["count"]
            assert busy >= 2 * n + 8
            assert (await host.reg(f"{c}.fp_busy"))["count"] == busy
            assert (await host.reg(f"{c}.fp_skipped"))["count"] == 0    # not reported
            assert (await host.reg(f"{c}.irq"))["pending"] == 1
            await host.reg(f"{c}.irq", pending=1, enable=1)             # W1C
            assert (await host.reg(f"{c}.irq")) == {"pending": 0, "enable": 1}
        assert host.ctx.get(host.dut.irq) == 0
        # The host's own DRAM reads above are counted at the DRAM port too.
        total_r = (await host.reg("dram.bytes_read"))["count"]
        assert total_r == 4 * cores * (4 + n) + 4 * n * cores
        assert (await host.reg("dram.bytes_written"))["count"] == 4 * n * cores
        await host.reg("global.control", clear_counters=1)
        assert (await host.reg("dram.bytes_read"))["count"] == 0
        assert (await host.reg("core[0].dram_bytes_read"))["count"] == 4 * (4 + n)   # last run
        # A new run starts the core's counters from 0.
        await host.mem_write(0x3F0, [0x100, 0x300, 1, 0])
        await host.reg("core[0].program", address=0x3F0)
        await host.reg("core[0].control", start=1)
        while not (await host.reg("core[0].status"))["done"]:
            pass
        assert (await host.reg("core[0].dram_bytes_read"))["count"] == 4 * (4 + 1)
        assert (await host.reg("core[0].fp_ops"))["count"] == 1
    simulate(dut, bench)


def test_error_code_and_pc():
    dut = TrafficSoC(cores=2, dram_words=256)

    async def bench(host):
        await host.mem_write(0x40, [0, 0, BAD | 3, 0])
        await host.reg("core[1].program", address=0x40)
        await host.reg("core[1].control", start=1)
        for _ in range(50):
            if (await host.reg("core[1].status"))["done"]:
                break
        assert (await host.reg("core[1].error"))["code"] == ERROR_BAD_COUNT
        assert (await host.reg("core[1].error_pc"))["address"] == 0x40
        assert (await host.reg("core[0].status")) == {"busy": 0, "done": 0, "overflow": 0}
    simulate(dut, bench)
