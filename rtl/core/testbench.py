"""Simulation peers of a core: a DRAM model serving the memory port and a control driver
(Amaranth async testbench).  The cocotb twin is :mod:`.cocotb_core`.

The DRAM model takes a request whenever ``req.ready`` is up (low with probability
``backpressure``), answers each read after ``latency`` cycles plus a random ``0 … jitter``
(never overtaking: responses stay in request order) and holds ``resp.valid`` until the
core takes it.  A read returns the word as it was when the read was accepted.  It asserts
that no request reaches past ``dram_words`` (validation must have stopped the program).
"""

import random
from collections import deque
from dataclasses import dataclass, field

from amaranth.hdl import Value
from amaranth.sim import Simulator

__all__ = ["RunResult", "run_program", "serve_and_run"]


@dataclass
class RunResult:
    """How a program ended on the RTL core.

    Attributes
    ----------
    done, error, error_pc, overflow : int
        The control port after the run.
    counters : dict of str to int
        The ``counters`` member.
    cycles : int
        Cycles from ``start`` to ``done``.
    """
    done: int = 0
    error: int = 0
    error_pc: int = 0
    overflow: int = 0
    counters: dict = field(default_factory=dict)
    cycles: int = 0


async def serve_and_run(ctx, core, memory, pc, *, latency=1, jitter=0, backpressure=0.0,
                        seed=0, max_cycles=2_000_000):
    """Start the program at ``pc``, serve the memory port from ``memory`` (``numpy.uint32``,
    modified in place) until ``done``; return a :class:`RunResult`.  ``TimeoutError`` after
    ``max_cycles``."""
    rng = random.Random(seed)
    req, resp, ctrl = core.mem.req, core.mem.resp, core.ctrl
    payload = Value.cast(req.payload)
    aw = core.addr_width
    pending = deque()
    ctx.set(ctrl.program, pc)
    ctx.set(ctrl.start, 1)
    await ctx.tick()
    ctx.set(ctrl.start, 0)
    cycle = 0
    last_due = 0
    while True:
        if cycle >= max_cycles:
            raise TimeoutError(f"no done after {cycle} cycles")
        ctx.set(req.ready, 0 if backpressure and rng.random() < backpressure else 1)
        if pending and pending[0][0] <= cycle:
            ctx.set(resp.valid, 1)
            ctx.set(resp.payload, pending[0][1])
        else:
            ctx.set(resp.valid, 0)
        _, _, r_valid, r_ready, r_bits, s_valid, s_ready, done = await ctx.tick().sample(
            req.valid, req.ready, payload, resp.valid, resp.ready, ctrl.done)
        if r_valid and r_ready:
            addr = r_bits & ((1 << aw) - 1)
            write = (r_bits >> aw) & 1
            # invariant: validation keeps every access of a program inside DRAM
            assert addr < core.dram_words, f"access to {addr} past DRAM ({core.dram_words})"
            data = (r_bits >> (aw + 1)) & 0xFFFFFFFF
            if write:
                memory[addr] = data
            else:
                due = max(last_due, cycle + latency + (rng.randint(0, jitter) if jitter else 0))
                last_due = due
                pending.append((due, int(memory[addr])))
        if s_valid and s_ready:
            pending.popleft()
        cycle += 1
        if done:
            break
    counters = {name: ctx.get(getattr(core.counters, name)) for name, _ in core.counters.shape()}
    return RunResult(done=1, error=ctx.get(ctrl.error), error_pc=ctx.get(ctrl.error_pc),
                     overflow=ctx.get(core.overflow), counters=counters, cycles=cycle)


def run_program(core, jobs, **kwargs):
    """Run programs on one fresh Amaranth simulation of ``core``, one after the other (each
    from ``start`` to ``done``).  ``jobs``: ``(memory, pc)`` or ``(memory, pc, host)``;
    ``memory`` (``numpy.uint32``) is modified in place and ``host(memory)``, when given,
    runs before that program starts (the host's part of a training step).  Keyword
    arguments go to :func:`serve_and_run`.  Returns one :class:`RunResult` per job."""
    results = []

    async def bench(ctx):
        for memory, pc, *host in jobs:
            if host and host[0] is not None:
                host[0](memory)
            results.append(await serve_and_run(ctx, core, memory, pc, **kwargs))

    sim = Simulator(core)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return results
