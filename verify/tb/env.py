"""cocotb-side helpers: clock and reset, settings from the environment, vector files."""

import json
import os

import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

__all__ = ["start_clock", "reset", "env_float", "env_int", "load_vectors", "words_to_ints",
           "write_summary"]

CLOCK_PERIOD_NS = 10


def start_clock(dut, period_ns=CLOCK_PERIOD_NS, clock="clk"):
    """Start a free-running clock on ``dut.<clock>`` and return its handle."""
    handle = getattr(dut, clock)
    Clock(handle, period_ns, unit="ns").start()
    return handle


async def reset(dut, cycles=2, clock="clk", rst="rst"):
    """Hold ``dut.<rst>`` high for ``cycles`` rising edges (Amaranth's synchronous reset)."""
    clk, rst_h = getattr(dut, clock), getattr(dut, rst, None)
    if rst_h is None:
        await RisingEdge(clk)
        return
    rst_h.value = 1
    await ClockCycles(clk, cycles)
    rst_h.value = 0
    await RisingEdge(clk)


def env_float(name, default=0.0):
    value = os.environ.get(name, "")
    return float(value) if value else default


def env_int(name, default=0):
    value = os.environ.get(name, "")
    return int(value) if value else default


def words_to_ints(array):
    """uint64 array (N,) or (N, words) little-endian words -> list of Python ints."""
    array = np.asarray(array)
    if array.ndim == 1:
        return [int(x) for x in array.tolist()]
    out = []
    for row in array.tolist():
        value = 0
        for k, word in enumerate(row):
            value |= int(word) << (64 * k)
        out.append(value)
    return out


def load_vectors(path):
    """Read a vector file written by :func:`trident.verify.runner.write_vectors`.

    Returns
    -------
    dict
        ``inputs`` and ``expected`` (lists of raw payload ints) and ``mask`` (list of
        ints, or None for exact comparison).
    """
    with np.load(path) as data:
        out = {"inputs": words_to_ints(data["inputs"]),
               "expected": words_to_ints(data["expected"]),
               "mask": words_to_ints(data["mask"]) if "mask" in data.files else None}
    return out


def write_summary(path, summary):
    """Write the run summary (JSON) the pytest side reads back."""
    if not path:
        return
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(summary, f, indent=1, default=str)
    os.replace(tmp, path)
