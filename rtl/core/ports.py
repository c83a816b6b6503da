"""The two boundaries of a Trident core: its memory port toward DRAM and its control port
toward the SoC's CSR block.  Declared here once; the core drives them, the SoC wraps them
(interconnect + AXI4/DRAM model; amaranth-soc registers), the tests play their peers.

Memory port (the core is the initiator)
---------------------------------------
``req``  out stream, payload :data:`mem_request_layout`: ``addr`` (word address, 32-bit
         words), ``write`` (1: write ``data``), ``data``.  A read gets exactly one
         response; a write gets none.
``resp`` in stream, payload ``data`` (32 bits): the responses to the reads, **in request
         order**.  The core must always be able to take the responses of the reads it has
         issued (it may bound its outstanding reads itself).

Control port (the core is the target)
-------------------------------------
``start``        in, one-cycle pulse: run the descriptor program at ``program``
                 (ignored while ``busy``).
``program``      in, word address of the first descriptor (sampled on ``start``).
``busy``         out: from ``start`` until the program stops (END, or an error).
``done``         out: set when the program ended (END reached or error), cleared by ``start``.
``error``        out: ``trident.golden.hw.descriptors.ErrorCode``, 0 = none; valid with ``done``.
``error_pc``     out: word address of the descriptor that failed.
"""

from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["WORD_BITS", "mem_request_layout", "MemoryPortSignature", "ControlSignature"]

#: Width of a DRAM word (and of a descriptor word).
WORD_BITS = 32


def mem_request_layout(addr_width: int) -> data.StructLayout:
    """Payload of a memory request: ``addr`` (word address), ``write``, ``data``."""
    return data.StructLayout({"addr": addr_width, "write": 1, "data": WORD_BITS})


class MemoryPortSignature(wiring.Signature):
    """A core's memory port, seen from the core (initiator).

    Members
    -------
    req : Out(stream.Signature(mem_request_layout(addr_width)))
    resp : In(stream.Signature(WORD_BITS))
    """

    def __init__(self, addr_width: int = 24):
        self.addr_width = addr_width
        super().__init__({
            "req": Out(stream.Signature(mem_request_layout(addr_width))),
            "resp": In(stream.Signature(WORD_BITS)),
        })


class ControlSignature(wiring.Signature):
    """A core's control port, seen from the core (target).

    Members
    -------
    start : In(1)
        Run the program at ``program`` (ignored while ``busy``).
    program : In(addr_width)
    keep : In(1)
        With ``start``: keep counting from the counters (and the ``overflow`` flag, if the
        core has one) of the earlier runs instead of clearing them; the SoC's program queue
        sets it to add the programs of a queued run up.
    busy : Out(1)
    done : Out(1)
    error : Out(8)
    error_pc : Out(addr_width)
    """

    def __init__(self, addr_width: int = 24):
        self.addr_width = addr_width
        super().__init__({
            "start": In(1),
            "program": In(addr_width),
            "keep": In(1),
            "busy": Out(1),
            "done": Out(1),
            "error": Out(8),
            "error_pc": Out(addr_width),
        })
