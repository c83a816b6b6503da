"""A Trident core: FP, BP and WG engines, neuron units, scratchpads and the descriptor
sequencer (docs/core.md).

Stable names
------------
TridentCore            the core: ``mem`` (MemoryPortSignature), ``ctrl`` (ControlSignature),
                       ``counters``, ``overflow``
core_params            ``CoreParams`` of a core configuration (for the compiler)
counter_layout, COUNTERS   the performance counters
MemoryPortSignature, ControlSignature, WORD_BITS   the core's boundaries
"""

from .core import COUNTERS, TridentCore, core_params, counter_layout
from .ports import WORD_BITS, ControlSignature, MemoryPortSignature, mem_request_layout

__all__ = ["TridentCore", "core_params", "counter_layout", "COUNTERS", "WORD_BITS",
           "MemoryPortSignature", "ControlSignature", "mem_request_layout"]
