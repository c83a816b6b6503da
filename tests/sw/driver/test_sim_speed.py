"""Figures of the sim transport (run with ``-m slow -s`` to see them): start-up, CSR
latency, backdoor bandwidth, simulated cycles per second while the cores run, and the
cycles N traffic cores need for the same total copy (the DRAM port is shared)."""

import time

import numpy as np
import pytest
from traffic_core import TrafficSoC

from trident.sw.driver import Device
from trident.verify.pytest_fixtures import require_simulator


@pytest.mark.slow
@pytest.mark.parametrize("simulator", ["verilator", "icarus"])
def test_sim_transport_figures(simulator):
    require_simulator(simulator)
    from trident.sw.driver.sim import SimTransport
    words = 1 << 14 if simulator == "verilator" else 1 << 12
    total = words // 4
    figures = {}
    for cores in (1, 2, 4):
        t0 = time.perf_counter()
        dev = Device(SimTransport(TrafficSoC, {"cores": cores, "dram_words": words},
                                  simulator=simulator))
        figures.setdefault("start_s", []).append(round(time.perf_counter() - t0, 2))
        try:
            data = np.arange(total, dtype=np.uint32) * 3
            t0 = time.perf_counter()
            dev.write_mem(words // 4, data)
            load = time.perf_counter() - t0
            t0 = time.perf_counter()
            assert np.array_equal(dev.read_mem(words // 4, total), data)
            dump = time.perf_counter() - t0
            t0 = time.perf_counter()
            for _ in range(50):
                dev.read_csr("global.scratch")
            csr = (time.perf_counter() - t0) / 50
            share = total // cores
            for k in range(cores):
                dev.write_mem(16 * k, [words // 4 + share * k, words // 2 + share * k, share, 1])
            dev.clear_counters()
            t0 = time.perf_counter()
            for k in range(cores):
                dev.start(k, 16 * k)
            for k in range(cores):
                dev.wait(k, timeout=300)
            run_s = time.perf_counter() - t0
            cycles = max(dev.counters(k)["busy_cycles"] for k in range(cores))
            assert np.array_equal(dev.read_mem(words // 2, share * cores), data[:share * cores] + 1)
            figures.setdefault("cycles_for_copy", []).append(cycles)
            figures.setdefault("sim_cycles_per_s", []).append(int(cycles / run_s))
            figures.setdefault("load_words_per_s", []).append(int(total / load))
            figures.setdefault("dump_words_per_s", []).append(int(total / dump))
            figures.setdefault("csr_access_ms", []).append(round(1000 * csr, 3))
            figures.setdefault("dram_bytes", []).append(dev.dram_traffic()["bytes_read"] +
                                                        dev.dram_traffic()["bytes_written"])
        finally:
            dev.close()
    print(f"\n[{simulator}] {total} words copied by N = 1, 2, 4 traffic cores:")
    for key, values in figures.items():
        print(f"  {key:20s} {values}")
    # Sharing one port: N cores finish the same total in fewer cycles (one read in flight
    # per traffic core, so the port is not saturated by one).
    assert figures["cycles_for_copy"][2] < figures["cycles_for_copy"][0]
