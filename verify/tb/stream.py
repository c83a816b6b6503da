"""cocotb driver and monitor for ``amaranth.lib.stream`` ports (valid/ready/payload).

Amaranth flattens a stream member ``i`` of a component into the Verilog ports
``i__payload``, ``i__valid`` and ``i__ready``; these classes take that prefix.

Timing (as in cocotbext-axi): both classes wake on every rising clock edge, read the
handshake as it was *just before* the edge (that is what the DUT's flip-flops saw), and
then drive their outputs for the next cycle; cocotb applies those writes after the
edge.  Icarus and Verilator both behave this way through cocotb 2.x.
"""

import random
from collections import deque

from cocotb.triggers import RisingEdge

__all__ = ["StreamDriver", "StreamMonitor"]


def _handle(dut, name):
    try:
        return getattr(dut, name)
    except AttributeError:
        return None


class StreamDriver:
    """Drives payloads into a stream input of the DUT (the producer side).

    Parameters
    ----------
    dut : cocotb handle
        The top-level module.
    prefix : str
        Port prefix, e.g. ``"i"`` for ``i__payload/i__valid/i__ready``.
    clock : cocotb handle
        The clock.
    idle : float
        Probability of an idle cycle (``valid`` low) before each new payload.
    rng : random.Random, optional
        Source of the idle pattern (default: ``random`` seeded by cocotb's seed).

    Attributes
    ----------
    accepted : int
        Payloads accepted by the DUT so far.

    Callbacks registered with :meth:`on_accept` are called as
    ``callback(index, payload, cycle)`` when the DUT accepts a payload.
    """

    def __init__(self, dut, prefix, clock, *, idle=0.0, rng=None):
        self.payload = getattr(dut, f"{prefix}__payload")
        self.valid = getattr(dut, f"{prefix}__valid")
        self.ready = _handle(dut, f"{prefix}__ready")
        self.clock = clock
        self.idle = float(idle)
        self.rng = rng or random.Random(random.getrandbits(64))
        self.queue = deque()
        self.accepted = 0
        self._callbacks = []
        self._task = None
        self.valid.value = 0

    def on_accept(self, callback):
        self._callbacks.append(callback)

    def send(self, payload):
        """Queue one raw payload (int)."""
        self.queue.append(payload)

    def send_many(self, payloads):
        self.queue.extend(payloads)

    def start(self):
        import cocotb
        self._task = cocotb.start_soon(self._run())
        return self._task

    async def _run(self):
        edge = RisingEdge(self.clock)
        valid, payload, ready, queue = self.valid, self.payload, self.ready, self.queue
        idle, rng, callbacks = self.idle, self.rng, self._callbacks
        presenting = None
        cycle = 0
        while True:
            await edge
            if presenting is not None and (ready is None or ready.value):
                for cb in callbacks:
                    cb(self.accepted, presenting, cycle)
                self.accepted += 1
                presenting = None
            if presenting is None:
                if queue and not (idle and rng.random() < idle):
                    presenting = queue.popleft()
                    payload.value = presenting
                    valid.value = 1
                else:
                    valid.value = 0
            cycle += 1


class StreamMonitor:
    """Watches a stream output of the DUT and reports every transfer.

    Parameters
    ----------
    dut, prefix, clock
        As for :class:`StreamDriver` (``prefix`` e.g. ``"o"``).
    drive_ready : bool
        Also act as the consumer and drive ``{prefix}__ready`` (default: when the port
        exists).
    backpressure : float
        With ``drive_ready``, probability that ready is low on a cycle.
    rng : random.Random, optional
        Source of the back-pressure pattern.

    Callbacks registered with :meth:`on_transfer` are called as
    ``callback(payload, cycle)`` with the raw payload (int).
    """

    def __init__(self, dut, prefix, clock, *, drive_ready=None, backpressure=0.0, rng=None):
        self.payload = getattr(dut, f"{prefix}__payload")
        self.valid = getattr(dut, f"{prefix}__valid")
        self.ready = _handle(dut, f"{prefix}__ready")
        self.clock = clock
        self.drive_ready = (self.ready is not None) if drive_ready is None else drive_ready
        self.backpressure = float(backpressure)
        self.rng = rng or random.Random(random.getrandbits(64))
        self.transfers = 0
        self._callbacks = []
        self._task = None
        if self.drive_ready:
            self.ready.value = 1

    def on_transfer(self, callback):
        self._callbacks.append(callback)

    def start(self):
        import cocotb
        self._task = cocotb.start_soon(self._run())
        return self._task

    async def _run(self):
        edge = RisingEdge(self.clock)
        valid, payload, ready = self.valid, self.payload, self.ready
        drive, bp, rng, callbacks = self.drive_ready, self.backpressure, self.rng, self._callbacks
        ready_now = 1
        cycle = 0
        while True:
            await edge
            if valid.value and (ready_now if drive else (ready is None or ready.value)):
                value = payload.value.to_unsigned()
                self.transfers += 1
                for cb in callbacks:
                    cb(value, cycle)
            if drive and bp:
                ready_now = 0 if rng.random() < bp else 1
                ready.value = ready_now
            cycle += 1
