"""``OneHotFSM`` (``rtl/core/onehot.py``) against Amaranth's own ``m.FSM``: random machines
(nested conditions, several transitions in one state, the last one that applies winning,
self-loops, states without a way out) are built both ways from one description and run
side by side on random inputs; every cycle, each state's flag must equal ``ongoing`` of the
reference.  Misuse gets a clear error."""

import random

import pytest
from amaranth.hdl import Fragment, Module, Signal
from amaranth.sim import Simulator

from trident.rtl.core.onehot import OneHotFSM

STATES = ("IDLE", "A", "B", "C", "D")
N_INPUTS = 6


def _random_machine(rng):
    """Per state, a list of transitions ``(conditions, target)``: ``conditions`` are the
    input bits of the nested ``If``s around the transition (outermost first)."""
    machine = {}
    for state in STATES:
        moves = []
        for _ in range(rng.randrange(0, 4)):
            depth = rng.randrange(0, 3)
            moves.append(([rng.randrange(N_INPUTS) for _ in range(depth)], rng.choice(STATES)))
        machine[state] = moves
    return machine


def _emit(m, inputs, moves, go):
    for conditions, target in moves:
        def nest(rest):
            if rest:
                with m.If(inputs[rest[0]]):
                    nest(rest[1:])
            else:
                go(target)
        nest(conditions)


def _build(machine):
    m = Module()
    inputs = Signal(N_INPUTS)
    seq = OneHotFSM(m, STATES, init="IDLE", name="seq")
    for state, moves in machine.items():
        with seq.state(state):
            _emit(m, inputs, moves, seq.goto)
    with m.FSM(name="ref") as ref:
        for state, moves in machine.items():
            with m.State(state):
                def go(target):
                    m.next = target
                _emit(m, inputs, moves, go)
    return m, inputs, seq, ref


@pytest.mark.parametrize("seed", range(12))
def test_flags_follow_amaranth_fsm(seed):
    rng = random.Random(seed)
    machine = _random_machine(rng)
    m, inputs, seq, ref = _build(machine)
    visited = set()

    async def bench(ctx):
        for _ in range(300):
            ctx.set(inputs, rng.getrandbits(N_INPUTS))
            for state in STATES:
                flag, expected = ctx.get(seq.flags[state]), ctx.get(ref.ongoing(state))
                assert flag == expected, (
                    f"seed {seed}: flag {state} is {flag}, Amaranth's FSM says {expected}")
                if flag:
                    visited.add(state)
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert visited, "no state was ever active"


@pytest.mark.parametrize("go_b, expected", [(1, "B"), (0, "C")])
def test_several_transitions_in_one_cycle_last_wins(go_b, expected):
    m = Module()
    select_b = Signal()
    seq = OneHotFSM(m, ("A", "B", "C"), init="A", name="seq")
    with seq.state("A"):
        seq.goto("B")
        with m.If(select_b == 0):
            seq.goto("C")
        with m.If(select_b):
            seq.goto("B")

    async def bench(ctx):
        ctx.set(select_b, go_b)
        await ctx.tick()
        assert [s for s, f in seq.flags.items() if ctx.get(f)] == [expected]

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def test_misuse_is_refused():
    m = Module()
    with pytest.raises(ValueError, match="initial state 'X'"):
        OneHotFSM(m, ("A", "B"), init="X", name="seq")
    with pytest.raises(ValueError, match="repeat"):
        OneHotFSM(m, ("A", "A"), init="A", name="seq")
    seq = OneHotFSM(m, ("A", "B"), init="A", name="seq")
    with pytest.raises(SyntaxError, match="outside a state"):
        seq.goto("B")
    with pytest.raises(ValueError, match="no state 'Z'"):
        with seq.state("Z"):
            pass
    with seq.state("A"):
        with pytest.raises(ValueError, match="no state 'Z'"):
            seq.goto("Z")
        with pytest.raises(SyntaxError, match="inside state 'A'"):
            with seq.state("B"):
                pass
    Fragment.get(m, None)       # what was built before the refusals still elaborates
