"""Simulation peers of a core: DRAM behind the memory port (a
:class:`~trident.verify.memory_peer.MemoryPeer` over the job's image) and a control driver
(Amaranth async testbenches).  The cocotb twin is :mod:`.cocotb_core`.

The DRAM takes a request whenever ``req.ready`` is up (low with probability
``backpressure``), answers each read after ``latency`` cycles plus a random ``0 … jitter``
(never overtaking: responses stay in request order) and holds ``resp.valid`` until the
core takes it.  A read returns the word as it was when the read was accepted.  It asserts
that no request reaches past ``dram_words`` (validation must have stopped the program).
"""

import random
from dataclasses import dataclass, field

from amaranth.sim import Simulator

from ...verify.memory_peer import MemoryPeer

__all__ = ["RunResult", "run_program"]


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


class _Dram:
    """The current job's DRAM image (``numpy.uint32``, written in place) as the memory
    peer's word store; an access at or past ``dram_words`` fails the run."""

    def __init__(self, dram_words):
        self.dram_words = dram_words
        self.image = None

    def _check(self, addr):
        # invariant: validation keeps every access of a program inside DRAM
        assert addr < self.dram_words, f"access to {addr} past DRAM ({self.dram_words})"

    def __getitem__(self, addr):
        self._check(addr)
        return int(self.image[addr])

    def __setitem__(self, addr, word):
        self._check(addr)
        self.image[addr] = word


async def _start_and_wait(ctx, core, pc, max_cycles):
    """Start the program at ``pc`` and wait for ``done``: a :class:`RunResult`.
    ``TimeoutError`` after ``max_cycles``."""
    ctrl = core.ctrl
    ctx.set(ctrl.program, pc)
    ctx.set(ctrl.start, 1)
    await ctx.tick()
    ctx.set(ctrl.start, 0)
    cycle = 0
    while True:
        if cycle >= max_cycles:
            raise TimeoutError(f"no done after {cycle} cycles")
        _, _, done = await ctx.tick().sample(ctrl.done)
        cycle += 1
        if done:
            break
    counters = {name: ctx.get(getattr(core.counters, name)) for name, _ in core.counters.shape()}
    return RunResult(done=1, error=ctx.get(ctrl.error), error_pc=ctx.get(ctrl.error_pc),
                     overflow=ctx.get(core.overflow), counters=counters, cycles=cycle)


def run_program(core, jobs, *, latency=1, jitter=0, backpressure=0.0, seed=0,
                max_cycles=2_000_000):
    """Run programs on one fresh Amaranth simulation of ``core``, one after the other (each
    from ``start`` to ``done``).  ``jobs``: ``(memory, pc)`` or ``(memory, pc, host)``;
    ``memory`` (``numpy.uint32``) is modified in place and ``host(memory)``, when given,
    runs before that program starts (the host's part of a training step).  The DRAM's
    timing as the module says; ``TimeoutError`` when a program runs ``max_cycles`` without
    ``done``.  Returns one :class:`RunResult` per job."""
    rng = random.Random(seed)
    dram = _Dram(core.dram_words)
    peer = MemoryPeer(core.mem, dram, default=None,
                      stall=lambda cycle: bool(backpressure) and rng.random() < backpressure,
                      latency=lambda: latency + (rng.randint(0, jitter) if jitter else 0))
    results = []

    async def control(ctx):
        for memory, pc, *host in jobs:
            if host and host[0] is not None:
                host[0](memory)
            dram.image = memory
            results.append(await _start_and_wait(ctx, core, pc, max_cycles))

    sim = Simulator(core)
    sim.add_clock(1e-8)
    sim.add_testbench(control)
    sim.add_testbench(peer.serve, background=True)
    sim.run()
    return results
