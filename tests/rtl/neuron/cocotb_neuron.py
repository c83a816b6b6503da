"""cocotb test of the neuron units: segments of (registers, sigmoid table, items).

Not collected by pytest; ``neuron_cases.run_cocotb_segments`` runs it through
``trident.verify.runner.run_cocotb``.  For every segment, with the pipeline drained: drive
``regs``, write the sigmoid table through ``table__*`` (when the segment has one), then
stream the items with the harness's driver/monitor/scoreboard (idle cycles and
back-pressure as asked) and wait for all their outputs.  Expected payloads come from the
golden kernels on the pytest side; here nothing is computed, only driven and compared.

Environment: TRIDENT_VECTORS (.npz of ``neuron_cases.write_segments``), TRIDENT_SUMMARY,
TRIDENT_IDLE, TRIDENT_BACKPRESSURE, TRIDENT_LATENCY (as ``trident.verify.tb.stream_test``).
"""

import os
import random
import time

import cocotb
import numpy as np
from cocotb.triggers import Event, First, RisingEdge, Timer

from trident.verify.tb import Scoreboard, StreamDriver, StreamMonitor
from trident.verify.tb.env import CLOCK_PERIOD_NS, env_float, env_int, reset, start_clock, \
    write_summary


@cocotb.test()
async def segments(dut):
    with np.load(os.environ["TRIDENT_VECTORS"]) as f:
        data = {k: f[k] for k in f.files}
    regs = [sum(int(w) << (64 * i) for i, w in enumerate(row)) for row in data["regs"]]
    tables = [[int(x) for x in row] for row in data["tables"]]
    has_table = [bool(x) for x in data["has_table"]]
    lengths = [int(x) for x in data["lengths"]]
    inputs = [int(x) for x in data["inputs"]]
    expected = [int(x) for x in data["expected"]]
    idle = env_float("TRIDENT_IDLE")
    backpressure = env_float("TRIDENT_BACKPRESSURE")
    latency = env_int("TRIDENT_LATENCY", -1)

    clk = start_clock(dut)
    driver = StreamDriver(dut, "i", clk, idle=idle, rng=random.Random(random.getrandbits(64)))
    monitor = StreamMonitor(dut, "o", clk, backpressure=backpressure,
                            rng=random.Random(random.getrandbits(64)))
    scoreboard = Scoreboard(name=dut._name)
    accept_cycle, latency_errors = [], []
    state = {"target": 0, "event": Event()}

    def on_accept(index, payload, cycle):
        accept_cycle.append(cycle)
        scoreboard.expect(expected[index], meta=(index, payload))

    def on_transfer(payload, cycle):
        k = scoreboard.checked
        scoreboard.observe(payload)
        if latency >= 0 and k < len(accept_cycle):
            lat = cycle - accept_cycle[k]
            if (lat != latency if backpressure == 0 else lat < latency) \
                    and len(latency_errors) < 10:
                latency_errors.append((k, lat))
        if scoreboard.checked + scoreboard.unexpected >= state["target"]:
            state["event"].set()

    driver.on_accept(on_accept)
    monitor.on_transfer(on_transfer)
    await reset(dut)
    driver.start()
    monitor.start()
    has_table_port = hasattr(dut, "table__en")
    if has_table_port:
        dut.table__en.value = 0

    t0 = time.perf_counter()
    start, timed_out = 0, False
    for seg, n in enumerate(lengths):
        dut.regs.value = regs[seg]
        if has_table[seg] and has_table_port:
            for addr, word in enumerate(tables[seg]):
                dut.table__en.value = 1
                dut.table__addr.value = addr
                dut.table__slope.value = word & 0xFFFF
                dut.table__intercept.value = word >> 16
                await RisingEdge(clk)
            dut.table__en.value = 0
        state["target"] = start + n
        state["event"] = Event()
        driver.send_many(inputs[start:start + n])
        max_cycles = 200 + int(2 * n * (1 + 2 * idle) / max(1e-3, 1 - backpressure))
        if n:
            await First(state["event"].wait(), Timer(max_cycles * CLOCK_PERIOD_NS, unit="ns"))
        if scoreboard.checked + scoreboard.unexpected < start + n:
            timed_out = True
            break
        start += n
        await RisingEdge(clk)
    wall = time.perf_counter() - t0

    def hexed(x):
        if isinstance(x, tuple):
            x = x[0]
        return None if x is None else f"0x{x:x}"

    mismatches = []
    for m in scoreboard.mismatches:
        index = m.meta[0] if isinstance(m.meta, tuple) and len(m.meta) == 2 \
            and isinstance(m.meta[0], int) else m.index
        mismatches.append({"index": index, "got": hexed(m.got), "expected": hexed(m.expected)})
    total = len(inputs)
    summary = {"vectors": total, "segments": len(lengths), "checked": scoreboard.checked,
               "errors": scoreboard.errors, "unexpected": scoreboard.unexpected,
               "missing": total - scoreboard.checked, "timed_out": timed_out,
               "latency_errors": latency_errors, "mismatches": mismatches,
               "wall_s": wall, "vectors_per_s": total / wall if wall else None}
    write_summary(os.environ.get("TRIDENT_SUMMARY"), summary)
    dut._log.info("%d vectors in %d segments, %.2f s: %d mismatches, %d missing", total,
                  len(lengths), wall, scoreboard.errors, total - scoreboard.checked)
    assert scoreboard.passed and not latency_errors and not timed_out, scoreboard.report()
