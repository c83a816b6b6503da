"""A behavioural word memory behind a request/response port, for Amaranth async testbenches.

The port is a :class:`~trident.rtl.core.ports.MemoryPortSignature` seen from the memory's
side: ``req`` (``valid``/``ready``, payload ``addr``/``write``/``data``) and ``resp``
(``valid``/``ready``, payload the word).  Reads are answered in request order; a write
gets no response.

In a test::

    peer = MemoryPeer(dut.bus, {}, default=lambda addr: 0,
                      stall=lambda cycle: rng.random() < 0.3,
                      latency=lambda: int(rng.integers(1, 4)))
    sim.add_testbench(peer.serve, background=True)
"""

from dataclasses import dataclass

__all__ = ["MemoryPeer"]


def _never(cycle):
    return False


def _one():
    return 1


@dataclass
class MemoryPeer:
    """A memory serving one request/response port (see the module docstring).

    Attributes
    ----------
    port : wiring.PureInterface
        The port, with ``req`` and ``resp`` streams as above; the peer drives ``req.ready``,
        ``resp.valid`` and ``resp.payload``.
    memory : dict or mapping
        Word address → value (``[addr]`` to read and write).  A write lands when its
        request is taken; a read returns the word as it was then.
    default : callable or None
        ``default(addr)``: the value of a word absent from ``memory``; ``None``: ``memory``
        answers every address itself (an array, or a store that checks the address).
    stall : callable
        ``stall(cycle) -> bool``: ``req.ready`` is low in that cycle (the peer's cycles
        count from 0).  Called once a cycle, in order, so it may draw from a generator.
    latency : callable
        ``latency() -> int``: cycles (at least 1) from taking a read to the first cycle
        its response is offered; a response also waits for the ones before it.  Called
        once per read, when it is taken.
    issued : list of (addr, write), optional
        When given, every request taken is appended to it, in order.
    """
    port: object
    memory: dict
    default: object
    stall: object = _never
    latency: object = _one
    issued: list = None

    def read(self, addr):
        if self.default is None or addr in self.memory:
            return self.memory[addr]
        return self.default(addr)

    async def serve(self, ctx):
        req, resp = self.port.req, self.port.resp
        pending, cycle = [], 0                     # pending: (first cycle offered, word)
        while True:
            ready = not self.stall(cycle)
            ctx.set(req.ready, ready)
            if pending and pending[0][0] <= cycle:
                ctx.set(resp.valid, 1)
                ctx.set(resp.payload, pending[0][1])
            else:
                ctx.set(resp.valid, 0)
            _, _, valid, addr, write, data, resp_valid, resp_ready = await ctx.tick().sample(
                req.valid, req.payload.addr, req.payload.write, req.payload.data,
                resp.valid, resp.ready)
            if resp_valid and resp_ready:
                pending.pop(0)
            if valid and ready:
                if self.issued is not None:
                    self.issued.append((addr, write))
                if write:
                    self.memory[addr] = data
                else:
                    latency = self.latency()
                    if latency < 1:
                        raise ValueError(f"latency must be at least 1, not {latency}")
                    pending.append((cycle + latency, self.read(addr)))
            cycle += 1
