"""The core's DMA in the Amaranth simulator: random three-level address programs on every
read and write channel against a memory with random latency and stalls; each channel's
words in program order, every write in DRAM; a channel keeps its turn for ``run`` words."""

import pytest
from amaranth.sim import Simulator

from trident.rtl.core.dma import DMA
from trident.verify.memory_peer import MemoryPeer
from trident.verify.pytest_fixtures import rng, seed  # noqa: F401

REGION = 256            # each channel's addresses stay in its own region


def address_program(rng, region, fixed=False):
    counts = ([2, 4, 8] if fixed else
              [int(rng.integers(1, 4)), int(rng.integers(1, 5)), int(rng.integers(1, 9))])
    strides = [int(rng.integers(0, 40)), int(rng.integers(0, 12)), int(rng.choice([1, 1, 2, -1]))]
    base = region * REGION + 128
    addrs = [(base + a * strides[0] + b * strides[1] + c * strides[2]) % (1 << 12)
             for a in range(counts[0]) for b in range(counts[1]) for c in range(counts[2])]
    return dict(base=base, count_a=counts[0], count_b=counts[1], count_c=counts[2],
                stride_a=strides[0] % (1 << 12), stride_b=strides[1] % (1 << 12),
                stride_c=strides[2] % (1 << 12)), addrs


def initial(addr):
    return (addr * 2654435761) & 0xFFFF_FFFF


def simulate(rng, run, stall, programs=3, fixed=False, depth=4, limit=1 << 11):
    """Random programs on every channel; addresses at or above ``limit`` (or
    ``limit(reads, writes)``, given the channels' programs) must be refused (no request,
    ``error`` set) and all others served.  Returns the requests issued and the final
    ``error``."""
    dut = DMA(12, count_bits=8, read_channels=3, write_channels=2, depth=depth, run=run)
    memory, issued = {}, []
    reads = [[address_program(rng, k, fixed) for _ in range(programs)] for k in range(3)]
    writes = [[address_program(rng, 3 + k, fixed) for _ in range(programs)] for k in range(2)]
    if callable(limit):
        limit = limit(reads, writes)
    expected_mem = {}
    write_words = []
    for k, progs in enumerate(writes):
        words = []
        for _, addrs in progs:
            for addr in addrs:
                skip = rng.random() < 0.1
                value = int(rng.integers(0, 1 << 32))
                words.append((value, skip))
                if not skip and addr < limit:
                    expected_mem[addr] = value
        write_words.append(words)
    done = []

    def command(port, progs):
        async def bench(ctx):
            for fields, _ in progs:
                for name, value in fields.items():
                    ctx.set(getattr(port.payload, name), value)
                ctx.set(port.valid, 1)
                await ctx.tick().until(port.ready)
                ctx.set(port.valid, 0)
                await ctx.tick().until(~dut.rd_busy.any() & ~dut.wr_busy.any())
        return bench

    def reader(k):
        async def bench(ctx):
            want = [initial(a) for _, addrs in reads[k] for a in addrs if a < limit]
            got = []
            for _ in range(50 * len(want)):
                if len(got) == len(want):
                    break
                ready = rng.random() >= stall
                ctx.set(dut.rd[k].ready, ready)
                _, _, valid, payload = await ctx.tick().sample(dut.rd[k].valid, dut.rd[k].payload)
                if valid and ready:
                    got.append(payload)
            assert got == want, f"read channel {k}: {len(got)} of {len(want)} words"
            done.append(("r", k))
        return bench

    def writer(k):
        async def bench(ctx):
            for value, skip in write_words[k]:
                if rng.random() < stall:
                    await ctx.tick()
                ctx.set(dut.wr[k].payload.data, value)
                ctx.set(dut.wr[k].payload.skip, skip)
                ctx.set(dut.wr[k].valid, 1)
                await ctx.tick().until(dut.wr[k].ready)
                ctx.set(dut.wr[k].valid, 0)
            done.append(("w", k))
        return bench

    error = []

    async def range_limit(ctx):
        ctx.set(dut.limit, limit)
        while len(done) < 5:
            await ctx.tick()
        await ctx.tick().repeat(4)
        error.append(ctx.get(dut.error))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(range_limit)
    for k in range(3):
        sim.add_testbench(command(dut.rd_cmd[k], reads[k]))
        sim.add_testbench(reader(k))
    for k in range(2):
        sim.add_testbench(command(dut.wr_cmd[k], writes[k]))
        sim.add_testbench(writer(k))
    peer = MemoryPeer(dut.bus, memory, initial, stall=lambda cycle: rng.random() < stall,
                      latency=lambda: int(rng.integers(1, 4)), issued=issued)
    sim.add_testbench(peer.serve, background=True)
    sim.run()
    assert sorted(done) == [("r", 0), ("r", 1), ("r", 2), ("w", 0), ("w", 1)]
    for addr, value in expected_mem.items():
        assert memory.get(addr) == value, f"word {addr:#x}"
    assert all(addr < limit for addr, _ in issued), "a request at or above the limit"
    return issued, error[0]


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="run must be at least 1"):
        DMA(12, run=0)


@pytest.mark.parametrize("run", [1, 3, 8])
def test_random_programs_with_stalls(run, rng):
    _, error = simulate(rng, run, stall=0.3)
    assert not error


@pytest.mark.parametrize("channel", [2, 4], ids=["read-2-and-writes", "write-1"])
def test_addresses_at_or_above_the_limit_are_refused(channel, rng):
    """The limit cuts through the addresses of channel ``channel`` (reads 0–2, writes 3–4,
    each in a region above the one before): its addresses from the median up and those of
    the channels above are never requested, all others are served, and ``error`` is set."""
    def median_of_channel(reads, writes):
        addrs = sorted(set(a for _, chan in (reads + writes)[channel] for a in chan))
        return addrs[len(addrs) // 2]
    issued, error = simulate(rng, 3, stall=0.2, programs=1, fixed=True, limit=median_of_channel)
    assert error
    assert any(not write for _, write in issued)


@pytest.mark.parametrize("run", [1, 4])
def test_a_read_channel_keeps_its_turn_for_run_words(run, rng):
    """No stalls, three channels with 64 addresses each: while all have addresses, the reads
    come in runs of ``run`` words per channel (shorter only when a channel's credit runs out)."""
    issued, _ = simulate(rng, run, stall=0.0, programs=1, fixed=True, depth=8)
    channels = [addr // REGION for addr, write in issued if not write][:120]
    runs, length = [], 1
    for before, now in zip(channels, channels[1:]):
        if now == before:
            length += 1
        else:
            runs.append(length)
            length = 1
    assert max(runs) <= run
    if run > 1:
        assert runs.count(run) > len(runs) // 2, runs
    else:
        assert set(runs) == {1}
