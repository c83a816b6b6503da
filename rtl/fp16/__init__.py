"""IEEE 754 binary16 arithmetic units (Amaranth), pipelined, for Trident's datapaths.

Numerics (every unit): round to nearest, ties to even; subnormals kept on input and
output (no flush to zero); signed zeros and infinities per IEEE 754; every NaN result is
the canonical quiet NaN 0x7E00.  No exception flags except ``FPToInt.invalid``.

Interface (every unit): ``i`` and ``o`` are ``amaranth.lib.stream`` interfaces with
``data.StructLayout`` payloads; ``stages`` register ranks = latency in cycles.  See
:class:`~.pipeline.PipelinedUnit` and ``docs/fp16.md``.

Stable names
------------
Float16      the value type (``data.Struct``: mantissa 10, exponent 5, sign 1)
FPAdd        z = a ± b
FPMul        z = a * b
FPFMA        z = (±a) * b ± c, one rounding
FPCompare    eq / lt / le / unordered, IEEE minimumNumber / maximumNumber
FPFromInt    integer (2..64 bits, signed or unsigned) -> FP16
FPToInt      FP16 -> integer, round to nearest even or toward zero, saturating
"""

from .add import FPAdd
from .compare import FPCompare
from .convert import FPFromInt, FPToInt
from .float16 import BIAS, CANONICAL_NAN, MAX_FINITE, NEG_INF, POS_INF, Float16
from .fma import FPFMA
from .mul import FPMul
from .pipeline import PipelinedUnit, place_registers

__all__ = [
    "Float16", "FPAdd", "FPMul", "FPFMA", "FPCompare", "FPFromInt", "FPToInt",
    "PipelinedUnit", "place_registers",
    "CANONICAL_NAN", "POS_INF", "NEG_INF", "MAX_FINITE", "BIAS",
]
