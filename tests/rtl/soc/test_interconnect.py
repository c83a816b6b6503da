"""The round-robin interconnect in the Amaranth simulator: random traffic from several
initiators, a target with random stalls and latency, responses back in order per
initiator; grants rotate fairly."""

import pytest
from amaranth.sim import Simulator

from trident.rtl.soc.interconnect import Interconnect
from trident.verify.memory_peer import MemoryPeer


def unwritten(addr):
    """The target's word where nothing was written; the plans expect it of such reads."""
    return addr * 7


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="at least one initiator"):
        Interconnect(0, 8)
    with pytest.raises(ValueError, match="max_burst must be at least 1"):
        Interconnect(2, 8, max_burst=0)


@pytest.mark.parametrize("n,max_burst", [(1, 1), (3, 1), (3, 4)])
def test_random_traffic_routes_responses_in_order(n, max_burst, rng):
    dut = Interconnect(n, 8, max_outstanding=4, max_burst=max_burst)
    per = 40
    # Disjoint address ranges, so every read's value is fixed by its own initiator's order.
    plans = []
    for i in range(n):
        plan, shadow = [], {}
        for k in range(per):
            # runs of consecutive addresses, which a max_burst arbiter keeps together
            step = 1 if k and rng.random() < 0.6 else int(rng.integers(0, 32))
            addr = 32 * i + (plan[-1][0] + step if k else step) % 32
            if rng.random() < 0.5:
                value = int(rng.integers(0, 1 << 32))
                shadow[addr] = value
                plan.append((addr, 1, value))
            else:
                plan.append((addr, 0, shadow.get(addr, unwritten(addr))))
        plans.append(plan)
    seen = [[] for _ in range(n)]
    stalls = rng.random(100_000) < 0.3

    def initiator(i):
        async def bench(ctx):
            port = dut.initiators[i]
            for addr, write, value in plans[i]:
                if rng.random() < 0.2:
                    await ctx.tick()
                ctx.set(port.req.valid, 1)
                ctx.set(port.req.payload.addr, addr)
                ctx.set(port.req.payload.write, write)
                ctx.set(port.req.payload.data, value if write else 0)
                await ctx.tick().until(port.req.ready)
                ctx.set(port.req.valid, 0)
        return bench

    def receiver(i):
        async def bench(ctx):
            port = dut.initiators[i]
            reads = [v for _, w, v in plans[i] if not w]
            cycle = 0
            while len(seen[i]) < len(reads):
                ready = not stalls[(cycle * 7 + i) % len(stalls)]
                ctx.set(port.resp.ready, ready)
                _, _, valid, payload = await ctx.tick().sample(port.resp.valid, port.resp.payload)
                if valid and ready:
                    seen[i].append(payload)
                cycle += 1
                assert cycle < 20_000, f"initiator {i}: {len(seen[i])} of {len(reads)} responses"
            assert seen[i] == reads
        return bench

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    for i in range(n):
        sim.add_testbench(initiator(i))
        sim.add_testbench(receiver(i))
    target = MemoryPeer(dut.target, {}, unwritten, stall=lambda cycle: stalls[cycle % len(stalls)],
                        latency=lambda: int(rng.integers(1, 4)))
    sim.add_testbench(target.serve, background=True)
    sim.run()
    assert [len(s) for s in seen] == [sum(1 for _, w, _ in p if not w) for p in plans]


def test_grants_rotate():
    n = 4
    dut = Interconnect(n, 8)
    grants = []

    async def bench(ctx):
        for i in range(n):
            ctx.set(dut.initiators[i].req.valid, 1)
            ctx.set(dut.initiators[i].req.payload.write, 1)
        ctx.set(dut.target.req.ready, 1)
        for _ in range(3 * n):
            _, _, grant = await ctx.tick().sample(dut.grant)
            grants.append(grant)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert grants == [0, 1, 2, 3] * 3


def test_runs_keep_the_grant_up_to_max_burst():
    n, max_burst = 3, 4
    dut = Interconnect(n, 8, max_burst=max_burst)
    grants = []

    async def bench(ctx):
        # initiators 0 and 1 stream consecutive writes; 2 repeats one address (no run)
        addrs = [0, 100, 200]
        for i in range(n):
            ctx.set(dut.initiators[i].req.valid, 1)
            ctx.set(dut.initiators[i].req.payload.write, 1)
            ctx.set(dut.initiators[i].req.payload.addr, addrs[i])
        ctx.set(dut.target.req.ready, 1)
        for _ in range(18):
            _, _, grant = await ctx.tick().sample(dut.grant)
            grants.append(grant)
            if grant < 2:
                addrs[grant] += 1
                ctx.set(dut.initiators[grant].req.payload.addr, addrs[grant])

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert grants == ([0] * 4 + [1] * 4 + [2]) * 2
