"""A state machine with one flag register per state (one-hot), for control logic whose state
decode sits on critical paths.

Amaranth's ``m.FSM`` keeps its state in a binary-encoded register, and Yosys re-encodes no
state register that has an initial value (``fsm_detect``: "Register has an initialization
value"), which every Amaranth register has.  A state's condition is then a comparison of
several state bits, and in the core that comparison drove the stream routing all over the
chip.  Here a state's condition is its own flip-flop.
"""

from contextlib import contextmanager

from amaranth.hdl import Assert, Cat, Signal

__all__ = ["OneHotFSM"]


class OneHotFSM:
    """States as flags, used like ``m.FSM``: ``with fsm.state(name):`` for ``with
    m.State(name):`` and ``fsm.goto(name)`` for ``m.next = name``.

    Exactly one flag is set (an ``Assert`` checks it every cycle).  A transition clears the
    flag of the state it is made in, sets its target's, and clears the targets of the
    transitions written before it in the same state, so that, as with ``m.next``, the
    last transition that applies wins.

    Parameters
    ----------
    m : Module
        The module the flags and their logic are added to (its ``sync`` domain).
    states : sequence of str
        The state names.
    init : str
        The state after reset.
    name : str
        Prefix of the flags' names (``{name}_{state}``, lower case).

    Members
    -------
    flags : dict of str to Signal
        One flag per state, high while the machine is in it.
    """

    def __init__(self, m, states, *, init, name):
        if init not in states:
            raise ValueError(f"initial state {init!r} is not one of {list(states)}")
        if len(set(states)) != len(states):
            raise ValueError(f"state names repeat: {list(states)}")
        self._m = m
        self.flags = {s: Signal(name=f"{name}_{s.lower()}", init=(s == init)) for s in states}
        self._current = None
        self._targets = {s: [] for s in states}
        every = Cat(*self.flags.values())
        m.d.sync += Assert((every != 0) & ((every & (every - 1)) == 0),
                           f"{name}: exactly one state flag is set")

    def _flag(self, state):
        try:
            return self.flags[state]
        except KeyError:
            raise ValueError(f"no state {state!r}; the states are {list(self.flags)}") from None

    def ongoing(self, state):
        """The flag of ``state``: high while the machine is in it."""
        return self._flag(state)

    @contextmanager
    def state(self, state):
        """The logic of ``state``: active while its flag is set."""
        if self._current is not None:
            raise SyntaxError(f"state {state!r} is written inside state {self._current!r}")
        with self._m.If(self._flag(state)):
            self._current = state
            try:
                yield
            finally:
                self._current = None

    def goto(self, target):
        """Go to ``target`` at the next clock edge (inside a ``state`` block)."""
        if self._current is None:
            raise SyntaxError(f"goto({target!r}) outside a state")
        earlier = self._targets[self._current]
        self._m.d.sync += [self._flag(t).eq(0) for t in earlier]
        self._m.d.sync += [self._flag(self._current).eq(0), self._flag(target).eq(1)]
        if target not in earlier:
            earlier.append(target)
