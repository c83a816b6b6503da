"""cocotb side of the core tests (Icarus, Verilator): the DRAM model and control driver of
:mod:`.testbench`, as a coroutine.

Loads the jobs written by :func:`trident.rtl.core.harness.run_cocotb_jobs`: DRAM images and
a list of programs, each either on a fresh image or on the memory the previous job left
(a training step: forward, then backward), with word patches written before it starts (the
host's loss gradient).  Writes back, per job, the control port and the counters, and per
image the final DRAM; no comparison happens here.

Signals are driven and sampled on the falling clock edge: the core's ``req.valid`` /
``req.payload`` and ``resp.ready`` never depend on ``req.ready`` / ``resp.valid`` in the
same cycle, so what is sampled there is what the next rising edge transfers.

Environment: ``TRIDENT_CORE_JOBS`` (.npz in), ``TRIDENT_CORE_RESULTS`` (.npz out),
``TRIDENT_LATENCY``, ``TRIDENT_JITTER``, ``TRIDENT_BACKPRESSURE``, ``TRIDENT_COUNTERS``
(counter names, comma-separated, in layout order), ``TRIDENT_ADDR_WIDTH``,
``TRIDENT_COUNTER_WIDTH``.
"""

import os
import random
import time
from collections import deque

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge

from trident.verify.tb.env import env_float, env_int, reset, start_clock


async def _run_job(dut, edge, memory, pc, rng, latency, jitter, backpressure, aw, max_cycles):
    pending = deque()
    dut.ctrl__program.value = pc
    dut.ctrl__start.value = 1
    await edge
    dut.ctrl__start.value = 0
    cycle, last_due = 0, 0
    while True:
        if cycle >= max_cycles:
            raise TimeoutError(f"no done after {cycle} cycles")
        ready = 0 if backpressure and rng.random() < backpressure else 1
        dut.mem__req__ready.value = ready
        head = bool(pending) and pending[0][0] <= cycle
        dut.mem__resp__valid.value = 1 if head else 0
        if head:
            dut.mem__resp__payload.value = pending[0][1]
        # the next rising edge transfers what is valid now (the outputs do not depend on
        # the inputs just driven)
        if ready and int(dut.mem__req__valid.value):
            bits = int(dut.mem__req__payload.value)
            addr, write = bits & ((1 << aw) - 1), (bits >> aw) & 1
            if write:
                memory[addr] = (bits >> (aw + 1)) & 0xFFFFFFFF
            else:
                due = max(last_due, cycle + latency + (rng.randint(0, jitter) if jitter else 0))
                last_due = due
                pending.append((due, int(memory[addr])))
        if head and int(dut.mem__resp__ready.value):
            pending.popleft()
        await edge
        cycle += 1
        if int(dut.ctrl__done.value):
            return cycle


@cocotb.test()
async def core_jobs(dut):
    with np.load(os.environ["TRIDENT_CORE_JOBS"]) as f:
        arrays = {k: f[k] for k in f.files}
    latency = env_int("TRIDENT_LATENCY", 1)
    jitter = env_int("TRIDENT_JITTER", 0)
    backpressure = env_float("TRIDENT_BACKPRESSURE")
    aw = env_int("TRIDENT_ADDR_WIDTH", 24)
    cw = env_int("TRIDENT_COUNTER_WIDTH", 32)
    names = os.environ["TRIDENT_COUNTERS"].split(",")
    rng = random.Random(random.getrandbits(64))
    images = [arrays[f"image{k}"].astype(np.uint32) for k in range(int(arrays["n_images"]))]
    clk = start_clock(dut)
    dut.ctrl__start.value = 0
    dut.ctrl__keep.value = 0
    dut.mem__req__ready.value = 0
    dut.mem__resp__valid.value = 0
    await reset(dut)
    edge = FallingEdge(clk)
    await edge
    status = []
    t0 = time.perf_counter()
    for k in range(len(arrays["job_pc"])):
        memory = images[int(arrays["job_image"][k])]
        lo, hi = int(arrays["patch_off"][k]), int(arrays["patch_off"][k + 1])
        for addr, word in zip(arrays["patch_addr"][lo:hi], arrays["patch_word"][lo:hi]):
            memory[int(addr)] = int(word)
        cycles = await _run_job(dut, edge, memory, int(arrays["job_pc"][k]), rng, latency,
                                jitter, backpressure, aw, int(arrays["max_cycles"]))
        bits = int(dut.counters.value)
        counters = [(bits >> (cw * i)) & ((1 << cw) - 1) for i in range(len(names))]
        status.append([int(dut.ctrl__error.value), int(dut.ctrl__error_pc.value),
                       int(dut.overflow.value), cycles] + counters)
    out = {f"image{k}": img for k, img in enumerate(images)}
    out["status"] = np.array(status, dtype=np.int64)
    out["wall_s"] = np.array(time.perf_counter() - t0)
    tmp = os.environ["TRIDENT_CORE_RESULTS"] + ".tmp.npz"
    np.savez(tmp, **out)
    os.replace(tmp, os.environ["TRIDENT_CORE_RESULTS"])
