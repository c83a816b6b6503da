"""Generic cocotb test: play a vector file through a stream-in/stream-out DUT.

The pytest side (:func:`trident.verify.runner.run_stream_vectors`) writes the inputs and
the expected outputs, already packed into raw payloads, to a NumPy ``.npz`` file and
points ``TRIDENT_VECTORS`` at it; this test only drives, monitors and compares, so the
simulator process does no arithmetic of its own.

Environment
-----------
TRIDENT_VECTORS       path of the .npz (``inputs``, ``expected``, optional ``mask``)
TRIDENT_IN, TRIDENT_OUT   port prefixes (default ``i`` / ``o``)
TRIDENT_IDLE          probability of an idle cycle before each input (default 0)
TRIDENT_BACKPRESSURE  probability of ``o.ready`` low on a cycle (default 0)
TRIDENT_LATENCY       expected cycles from input to output when nothing stalls (-1: skip)
TRIDENT_SUMMARY       where to write the JSON summary for the pytest side
The idle/back-pressure pattern comes from ``random``, which cocotb seeds with
``COCOTB_RANDOM_SEED`` (set by the runner from the test's seed).
"""

import os
import random
import time

import cocotb
from cocotb.triggers import Event, First, Timer

from .env import (CLOCK_PERIOD_NS, env_float, env_int, load_vectors, reset, start_clock,
                  write_summary)
from .scoreboard import Scoreboard
from .stream import StreamDriver, StreamMonitor


@cocotb.test()
async def stream_vectors(dut):
    """Drive every input vector, check every output against its expected payload."""
    vectors = load_vectors(os.environ["TRIDENT_VECTORS"])
    inputs, expected, mask = vectors["inputs"], vectors["expected"], vectors["mask"]
    in_prefix = os.environ.get("TRIDENT_IN", "i")
    out_prefix = os.environ.get("TRIDENT_OUT", "o")
    idle = env_float("TRIDENT_IDLE")
    backpressure = env_float("TRIDENT_BACKPRESSURE")
    latency = env_int("TRIDENT_LATENCY", -1)
    n = len(inputs)

    clk = start_clock(dut)
    driver = StreamDriver(dut, in_prefix, clk, idle=idle,
                          rng=random.Random(random.getrandbits(64)))
    monitor = StreamMonitor(dut, out_prefix, clk, backpressure=backpressure,
                            rng=random.Random(random.getrandbits(64)))
    await reset(dut)

    # expectation = (expected & mask, mask); the compare applies the mask to the output
    if mask is None:
        scoreboard = Scoreboard(name=dut._name)
        expectations = expected
    else:
        masks = mask * n if len(mask) == 1 else mask
        expectations = [(e & m, m) for e, m in zip(expected, masks)]
        scoreboard = Scoreboard(compare=lambda got, em: (got & em[1]) == em[0],
                                name=dut._name)
    accept_cycle = []
    latency_errors = []
    done = Event()

    def on_accept(index, payload, cycle):
        accept_cycle.append(cycle)
        scoreboard.expect(expectations[index], meta=(index, payload))

    def on_transfer(payload, cycle):
        k = scoreboard.checked
        scoreboard.observe(payload)
        if latency >= 0 and k < len(accept_cycle):
            lat = cycle - accept_cycle[k]
            bad = lat != latency if backpressure == 0 else lat < latency
            if bad and len(latency_errors) < 10:
                latency_errors.append((k, lat))
        if scoreboard.checked + scoreboard.unexpected >= n:
            done.set()

    driver.on_accept(on_accept)
    monitor.on_transfer(on_transfer)
    driver.send_many(inputs)

    t0 = time.perf_counter()
    driver.start()
    monitor.start()
    max_cycles = 200 + int(2 * n * (1 + 2 * idle) / max(1e-3, 1 - backpressure))
    if n:
        await First(done.wait(), Timer(max_cycles * CLOCK_PERIOD_NS, unit="ns"))
    wall = time.perf_counter() - t0

    def hexed(item):
        if isinstance(item, tuple):
            item = item[0]
        return None if item is None else f"0x{item:x}"

    mismatches = []
    for m in scoreboard.mismatches:
        index, payload = m.meta if isinstance(m.meta, tuple) and len(m.meta) == 2 \
            and isinstance(m.meta[0], int) else (m.index, None)
        mismatches.append({"index": index, "input": hexed(payload), "got": hexed(m.got),
                           "expected": hexed(m.expected)})
    summary = {
        "vectors": n, "checked": scoreboard.checked, "errors": scoreboard.errors,
        "unexpected": scoreboard.unexpected, "missing": n - scoreboard.checked,
        "latency_errors": latency_errors, "mismatches": mismatches,
        "wall_s": wall, "vectors_per_s": n / wall if wall else None,
        "seed": os.environ.get("COCOTB_RANDOM_SEED"),
    }
    write_summary(os.environ.get("TRIDENT_SUMMARY"), summary)
    dut._log.info("%d vectors in %.2f s (%.0f/s): %d mismatches, %d missing",
                  n, wall, n / wall if wall else 0, scoreboard.errors, n - scoreboard.checked)
    assert scoreboard.passed and not latency_errors, \
        scoreboard.report() + (f"\nlatency errors (index, cycles): {latency_errors}"
                               if latency_errors else "")
