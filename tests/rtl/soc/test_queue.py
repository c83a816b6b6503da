"""The program queue in the Amaranth simulator, through the SoC's host port with the traffic
test double as cores: order, barriers, counters of a queued run, halting, flush, a full
queue, the interrupt."""

import pytest
from support import simulate
from traffic_core import BAD, ERROR_BAD_COUNT, HANG, TrafficSoC


async def enqueue(host, core, program):
    await host.reg(f"core[{core}].enqueue", address=program)


async def drain(host, cycles=2000):
    """Poll until the queue is idle or halted; its status."""
    for _ in range(cycles):
        status = await host.reg("queue.status")
        if status["idle"] or status["halted"]:
            return status
    raise AssertionError("the queue did not drain")


@pytest.mark.parametrize("barrier", [True, False])
def test_barrier_orders_phases_across_cores(barrier):
    """Phase 1: core 0 copies 2 words, core 1 copies 24 (slow).  Phase 2: core 0 copies the
    last 4 words of core 1's phase-1 output.  With the barrier core 0 reads the finished
    copy; without it, it starts at once and reads them before core 1 wrote them (so the
    test can tell)."""
    dut = TrafficSoC(cores=2, dram_words=1024)
    n = 24

    async def bench(host):
        data = list(range(1, n + 1))
        await host.mem_write(0x100, data)
        await host.mem_write(0x10, [0x100, 0x180, 2, 0])          # core 0, phase 1
        await host.mem_write(0x20, [0x100, 0x200, n, 0x1000])     # core 1, phase 1
        await host.mem_write(0x30, [0x200 + n - 4, 0x280, 4, 0])  # core 0, phase 2
        await host.reg("queue.irq", enable=1)
        await host.reg("queue.control", flush=1)
        await enqueue(host, 0, 0x10)
        await enqueue(host, 1, 0x20)
        if barrier:
            await host.reg("queue.control", barrier=1)
        await enqueue(host, 0, 0x30)
        status = await drain(host)
        assert status == {"idle": 1, "halted": 0, "overflow": 0, "dropped": 0, "level": 0}
        copied = await host.mem_read(0x280, 4)
        if barrier:
            assert copied == [v + 0x1000 for v in data[-4:]]
        else:
            assert copied == [0] * 4
        assert (await host.reg("queue.irq"))["pending"] == 1
        assert host.ctx.get(host.dut.irq) == 1
        await host.reg("queue.irq", pending=1, enable=1)
        assert host.ctx.get(host.dut.irq) == 0
    simulate(dut, bench)


def test_counters_add_up_over_a_queued_run():
    """Core 0 runs three programs in one queued run: its counters are their sum; a flush
    begins a new run (counters from 0); a start by hand still clears them."""
    dut = TrafficSoC(cores=2, dram_words=1024)

    async def bench(host):
        await host.mem_write(0x100, list(range(16)))
        lengths = [3, 5, 7]
        for i, length in enumerate(lengths):
            await host.mem_write(0x10 + 4 * i, [0x100, 0x200 + 0x10 * i, length, i])
        await host.reg("queue.control", flush=1)
        for i in range(3):
            await enqueue(host, 0, 0x10 + 4 * i)
            await host.reg("queue.control", barrier=1)
        assert (await drain(host))["idle"] == 1
        assert (await host.reg("core[0].fp_ops"))["count"] == sum(lengths)
        assert (await host.reg("core[0].dram_bytes_read"))["count"] == 4 * (3 * 4 + sum(lengths))
        assert (await host.reg("core[0].dram_bytes_written"))["count"] == 4 * sum(lengths)
        busy = (await host.reg("core[0].busy_cycles"))["count"]
        assert (await host.reg("core[0].fp_busy"))["count"] == busy > 2 * sum(lengths)
        assert (await host.reg("core[1].fp_ops"))["count"] == 0
        for i, length in enumerate(lengths):
            assert await host.mem_read(0x200 + 0x10 * i, length) == [v + i for v in range(length)]

        await host.reg("queue.control", flush=1)
        await enqueue(host, 0, 0x14)
        await drain(host)
        assert (await host.reg("core[0].fp_ops"))["count"] == 5
        await enqueue(host, 0, 0x10)                # same run: keeps adding
        await drain(host)
        assert (await host.reg("core[0].fp_ops"))["count"] == 8
        await host.reg("core[0].program", address=0x18)
        await host.reg("core[0].control", start=1)
        while not (await host.reg("core[0].status"))["done"]:
            pass
        assert (await host.reg("core[0].fp_ops"))["count"] == 7
        assert (await host.reg("core[0].dram_bytes_read"))["count"] == 4 * (4 + 7)
    simulate(dut, bench)


def test_a_failing_program_halts_the_queue_until_flush():
    dut = TrafficSoC(cores=2, dram_words=256)

    async def bench(host):
        await host.mem_write(0x40, [0, 0, BAD | 3, 0])
        await host.mem_write(0x50, [0x80, 0x90, 4, 1])
        await host.reg("queue.irq", enable=1)
        await host.reg("queue.control", flush=1)
        await enqueue(host, 0, 0x40)
        await host.reg("queue.control", barrier=1)
        await enqueue(host, 1, 0x50)
        status = await drain(host)
        assert status == {"idle": 0, "halted": 1, "overflow": 0, "dropped": 0, "level": 2}
        assert (await host.reg("core[0].error")) == {"code": ERROR_BAD_COUNT}
        assert (await host.reg("core[0].error_pc"))["address"] == 0x40
        assert (await host.reg("core[1].status"))["done"] == 0     # never started
        assert (await host.reg("queue.irq"))["pending"] == 1
        for _ in range(20):                                       # stays halted
            assert (await host.reg("queue.status"))["level"] == 2
        await host.reg("queue.control", flush=1)
        assert (await host.reg("queue.status")) == {"idle": 1, "halted": 0, "overflow": 0,
                                                     "dropped": 0, "level": 0}
        await enqueue(host, 1, 0x50)
        assert (await drain(host))["idle"] == 1
        assert await host.mem_read(0x90, 4) == [1, 1, 1, 1]
    simulate(dut, bench)


def test_a_full_queue_drops_and_says_so():
    dut = TrafficSoC(cores=1, dram_words=256, queue_depth=4)

    async def bench(host):
        assert (await host.reg("queue.config"))["depth"] == 4
        await host.mem_write(0x40, [0, 0, HANG, 0])
        await host.mem_write(0x50, [0, 0, 0, 0])
        await host.reg("queue.control", flush=1)
        await enqueue(host, 0, 0x40)                # starts, then hangs: the rest waits
        for _ in range(4):
            await enqueue(host, 0, 0x50)
        status = await host.reg("queue.status")
        assert (status["level"], status["dropped"], status["idle"]) == (4, 0, 0)
        await host.reg("queue.control", barrier=1)
        status = await host.reg("queue.status")
        assert (status["level"], status["dropped"]) == (4, 1)
        assert (await host.reg("core[0].status"))["busy"] == 1
    simulate(dut, bench)
