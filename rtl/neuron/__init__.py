"""The neuromorphic units of a Trident core (Amaranth 0.5): the neuron unit (FP), the
surrogate unit and the BP neuron recursion, in binary16, bit for bit as the golden model's
hardware-exact kernels (``trident.golden.hw.neuron`` / ``.surrogate``; docs/numerics.md
§2.5, §3, §4.1).  See docs/neuron-unit.md.

Stable names
------------
NeuronUnit             forward: (X, V[t−1]) → (S, H, V[t]); IF/LIF/KLIF, hard/soft reset,
                       decay_input, all chosen at run time
SurrogateUnit          x → h(x): rectangular, triangle, 64-segment sigmoid table
NeuronBackwardUnit     (H, S, δS, δU[t+1]) → (h, δU[t], δI[t]), reset path detached
NeuronRegisters        the configuration registers (``data.Struct``) all three read
NeuronKind, SurrogateKind   their enumerations
SigmoidTableSignature  the sigmoid table's write port
DEFAULT_STAGES         FP16 unit depths used by default (~75 MHz on ECP5)
encode_registers, decode_registers, sigmoid_table_words
                       host side: ``NeuronParams.registers()`` → register bits / table

Every unit: ``amaranth.lib.stream`` ports ``i``/``o`` with ``data.StructLayout`` payloads,
throughput one item per cycle, a fixed ``latency`` (cycles), an optional ``tag``
side-band and optional back-pressure — the conventions of :mod:`trident.rtl.fp16`.
"""

from .backward import NeuronBackwardUnit
from .forward import DEFAULT_STAGES, NeuronUnit
from .registers import (SIGMOID_SEGMENTS, NeuronKind, NeuronRegisters, SigmoidTableSignature,
                        SurrogateKind, decode_registers, encode_registers, sigmoid_table_words)
from .surrogate import SurrogateUnit

__all__ = [
    "NeuronUnit", "SurrogateUnit", "NeuronBackwardUnit",
    "NeuronRegisters", "NeuronKind", "SurrogateKind", "SigmoidTableSignature",
    "SIGMOID_SEGMENTS", "DEFAULT_STAGES",
    "encode_registers", "decode_registers", "sigmoid_table_words",
]
