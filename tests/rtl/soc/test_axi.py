"""The AXI4 master adapter: alone in the Amaranth simulator against a behavioural AXI memory
with a protocol checker (tests/rtl/soc/axi_slave.py), and in the SoC in cocotb against
cocotbext-axi's AxiRam (Icarus by default; Verilator under -m slow)."""

import os
import shutil
from pathlib import Path

import pytest
from amaranth.sim import Simulator
from axi_slave import AxiMemory
from traffic_core import TrafficSoC

from trident.rtl.soc.axi import BOUNDARY_WORDS, AXI4Master

from trident.sw.driver.sim import icarus_compatible
from trident.verify.pytest_fixtures import SIMULATOR_PARAMS, require_simulator
from trident.verify.runner import run_cocotb
from trident.verify.verilog import generate_verilog

pytest.importorskip("cocotbext.axi")


def run_axi(simulator, cores, pause, seed):
    require_simulator(simulator)
    words = 1024
    vmod = generate_verilog(TrafficSoC, {"cores": cores, "dram": "axi", "dram_words": words})
    if simulator == "icarus":
        vmod = icarus_compatible(vmod)
    out = run_cocotb(vmod, simulator, test_module="cocotb_axi", label=f"axi-{cores}",
                     python_path=[Path(__file__).parent],
                     extra_env={"TRIDENT_CORES": str(cores), "TRIDENT_DRAM_WORDS": str(words),
                                "TRIDENT_AXI_PAUSE": str(int(pause)),
                                "TRIDENT_SEED_AXI": str(seed)})
    assert out["passed"], f"see {out['log']}"
    if not os.environ.get("TRIDENT_KEEP_RUNS"):
        shutil.rmtree(out["test_dir"], ignore_errors=True)


def test_axi_dram_two_cores_with_stalls(seed):
    run_axi("icarus", 2, True, seed)


@pytest.mark.slow
@pytest.mark.parametrize("simulator", SIMULATOR_PARAMS)
@pytest.mark.parametrize("cores", [1, 4])
def test_axi_dram_slow(simulator, cores, seed):
    run_axi(simulator, cores, True, seed)


# ---- AXI4Master alone, in the Amaranth simulator, against a behavioural AXI memory -----

def split_run(start, length, max_burst):
    """The bursts a gapless run of ``length`` words from ``start`` must become."""
    bursts = []
    while length:
        beats = min(length, max_burst, BOUNDARY_WORDS - start % BOUNDARY_WORDS)
        bursts.append((start, beats))
        start, length = start + beats, length - beats
    return bursts


def random_runs(rng, count, max_len, space=3 * BOUNDARY_WORDS, apart=False):
    """Runs ``(write, start, length)``.  No run continues the last one of its direction
    (they would merge); ``apart``: writes in a region of their own, so no run touches a
    word of the other direction's burst (which would close it early)."""
    runs, end = [], {}
    while len(runs) < count:
        write = bool(rng.random() < 0.5)
        start = int(rng.integers(0, space))
        if rng.random() < 0.25:        # end just after a 4 KB boundary
            start = int(rng.integers(1, 4) * BOUNDARY_WORDS - rng.integers(1, max_len))
        if apart and write:
            start += 4 * BOUNDARY_WORDS
        length = int(rng.integers(1, max_len + 1))
        if end.get(write) == start:
            continue
        runs.append((write, start, length))
        end[write] = start + length
    return runs


def run_master(runs, max_burst, rng, *, gaps, stall, resp_stall, max_outstanding=32, latency=24):
    dut = AXI4Master(16, max_burst=max_burst, max_outstanding=max_outstanding)
    axi_mem = AxiMemory(dut.axi, rng, max_burst, stall=stall, latency=latency)
    model, expected = {}, []
    words = []
    for write, start, length in runs:
        for addr in range(start, start + length):
            if write:
                model[addr] = int(rng.integers(0, 1 << 32))
                words.append((addr, 1, model[addr]))
            else:
                words.append((addr, 0, 0))
                expected.append(model.get(addr, AxiMemory.initial(addr)))
    got = []

    async def initiator(ctx):
        req = dut.bus.req
        for addr, write, value in words:
            if gaps and rng.random() < gaps:
                await ctx.tick()
            ctx.set(req.valid, 1)
            ctx.set(req.payload.addr, addr)
            ctx.set(req.payload.write, write)
            ctx.set(req.payload.data, value)
            for _ in range(2_000):
                _, _, ready = await ctx.tick().sample(req.ready)
                if ready:
                    break
            assert ready, f"request {addr:#x} {'write' if write else 'read'} never taken"
            ctx.set(req.valid, 0)
        for _ in range(20_000):
            if not ctx.get(dut.busy):
                break
            await ctx.tick()
        assert not ctx.get(dut.busy), "the adapter is still busy"

    async def receiver(ctx):
        resp = dut.bus.resp
        for _ in range(50 * len(words) + 1000):
            if len(got) == len(expected):
                return
            ready = rng.random() >= resp_stall
            ctx.set(resp.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(resp.valid, resp.payload)
            if valid and ready:
                got.append(payload)
        raise AssertionError(f"{len(got)} of {len(expected)} read responses")

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(initiator)
    sim.add_testbench(receiver)
    sim.add_testbench(axi_mem.serve, background=True)
    sim.run()
    assert got == expected
    for addr, value in model.items():
        assert axi_mem.read(addr) == value, f"word {addr:#x}"
    return axi_mem


def test_master_arguments_are_checked():
    with pytest.raises(ValueError, match="1 to 256 beats"):
        AXI4Master(16, max_burst=257)
    with pytest.raises(ValueError, match="below max_burst"):
        AXI4Master(16, max_burst=16, max_outstanding=8)


@pytest.mark.parametrize("max_burst", [1, 4, 16])
def test_gapless_runs_become_whole_bursts(max_burst, rng):
    runs = random_runs(rng, 24, 3 * max_burst + 2, apart=True)
    axi_mem = run_master(runs, max_burst, rng, gaps=0, stall=0, resp_stall=0, latency=0)
    want_reads = [b for w, s, n in runs if not w for b in split_run(s, n, max_burst)]
    want_writes = [b for w, s, n in runs if w for b in split_run(s, n, max_burst)]
    assert axi_mem.read_bursts == want_reads
    assert axi_mem.write_bursts == want_writes


@pytest.mark.parametrize("max_burst,max_outstanding", [(1, 1), (8, 8), (16, 32)])
def test_random_traffic_with_stalls_keeps_program_order(max_burst, max_outstanding, rng):
    # a small address space, and half the writes read back at once: reads often follow
    # writes to the same words and writes reads
    runs = []
    for write, start, length in random_runs(rng, 40, 40, space=64):
        runs.append((write, start, length))
        if write and rng.random() < 0.5:
            runs.append((False, start + int(rng.integers(0, length)), length))
    axi_mem = run_master(runs, max_burst, rng, gaps=0.15, stall=0.35, resp_stall=0.3,
                         max_outstanding=max_outstanding)
    beats = sum(n for *_, n in runs)
    assert sum(b for _, b in axi_mem.read_bursts + axi_mem.write_bursts) == beats
