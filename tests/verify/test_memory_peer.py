"""Tests of the memory peer (trident.verify.memory_peer) on a bare port: what the
simulator tests of the DMA and the interconnect rely on it for."""

import pytest
from amaranth.hdl import ClockDomain, Module
from amaranth.sim import Simulator

from trident.rtl.core.ports import MemoryPortSignature
from trident.verify.memory_peer import MemoryPeer


def serve(requests, cycles=40, **peer_args):
    """Offer ``requests`` ((addr, write, data), back to back) to a peer on a fresh port that
    always takes responses.  Returns the peer, the cycle each request was taken in and the
    (cycle, word) of each response."""
    port = MemoryPortSignature(8).create()
    peer = MemoryPeer(port, **peer_args)
    taken, responses = [], []

    async def initiator(ctx):
        ctx.set(port.resp.ready, 1)
        waiting = list(requests)
        for cycle in range(cycles):
            ctx.set(port.req.valid, bool(waiting))
            if waiting:
                addr, write, data = waiting[0]
                ctx.set(port.req.payload.addr, addr)
                ctx.set(port.req.payload.write, write)
                ctx.set(port.req.payload.data, data)
            _, _, ready, valid, word = await ctx.tick().sample(
                port.req.ready, port.resp.valid, port.resp.payload)
            if waiting and ready:
                taken.append(cycle)
                waiting.pop(0)
            if valid:
                responses.append((cycle, word))

    m = Module()
    m.domains.sync = ClockDomain()      # the port's signals are all driven by testbenches
    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(initiator)
    sim.add_testbench(peer.serve, background=True)
    sim.run()
    return peer, taken, responses


def test_a_read_sees_the_write_before_it_and_the_default_elsewhere():
    issued = []
    peer, taken, responses = serve(
        [(5, 0, 0), (5, 1, 0xDEAD_BEEF), (5, 0, 0), (6, 0, 0)],
        memory={}, default=lambda addr: 100 + addr, issued=issued)
    assert len(taken) == 4
    assert [word for _, word in responses] == [105, 0xDEAD_BEEF, 106]
    assert peer.memory == {5: 0xDEAD_BEEF}
    assert issued == [(5, 0), (5, 1), (5, 0), (6, 0)]


def test_responses_keep_request_order_and_their_latency():
    latencies = [3, 1, 2, 1, 1]
    draws = iter(latencies)
    _, taken, responses = serve(
        [(addr, 0, 0) for addr in range(5)], memory={addr: 10 * addr for addr in range(5)},
        default=lambda addr: 0, latency=lambda: next(draws))
    assert [word for _, word in responses] == [0, 10, 20, 30, 40]
    # A response is first offered ``latency`` cycles after its read was taken, or the
    # cycle after the one ahead of it, whichever is later: never earlier, never overtaking.
    offered = -1
    for at, latency, (cycle, _) in zip(taken, latencies, responses):
        offered = max(at + latency, offered + 1)
        assert cycle == offered


def test_no_request_is_taken_in_a_stalled_cycle():
    asked = []

    def stall(cycle):
        asked.append(cycle)
        return cycle % 3 != 0

    peer, taken, _ = serve([(addr, 1, addr) for addr in range(5)], memory={},
                           default=lambda addr: 0, stall=stall)
    assert taken == [0, 3, 6, 9, 12]
    assert peer.memory == {addr: addr for addr in range(5)}
    assert asked == list(range(len(asked)))     # once a cycle, in order


def test_a_latency_below_one_is_refused():
    with pytest.raises(ValueError, match="latency must be at least 1"):
        serve([(0, 0, 0)], memory={}, default=lambda addr: 0, latency=lambda: 0)
