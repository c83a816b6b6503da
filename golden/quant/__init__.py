"""4-bit integer-only inference with shift batch-normalisation (ALGORITHMS.md §5).

Training uses straight-through estimators: n-bit signed weights through float shadow
weights, no conv/FC bias, and a shift batch-norm per channel
(``bias = round(mean)``, ``shift = round(log2 std) + K − n``,
``y = clamp(floor((x − bias)/2^shift), L, U)``) that replaces BatchNorm and the activation
quantizer.  Inference is integer only: MAC → subtract bias → arithmetic shift → clamp.

Modules
-------
ste
    Straight-through round/floor, weight quantizer, bounds.
layers
    InputQuantizer, QuantLinear, QuantConv2d, ShiftBatchNorm.
network
    QuantNetwork (and FloatNetwork, the float baseline) from a description or preset.
integer
    The pure-integer numpy reference (IntegerModel, from_network, quantize_input).
export
    export_model / load_export: the ``trident-quant`` v1 table format (docs/quant4.md).
train
    QuantTrainConfig, train_quant: float vs 4-bit runs with the bit-exactness check.
cli
    ``add_quant4_parser(subparsers)`` for the ``trident`` command.
"""
from .export import ExportError, export_model, load_export
from .integer import IntegerModel, from_network, quantize_input
from .layers import InputQuantizer, QuantConv2d, QuantLinear, ShiftBatchNorm
from .network import QUANT_PRESETS, FloatNetwork, QuantNetwork
from .ste import bounds, floor_ste, quantize_weight, round_ste, signed_bounds, unsigned_bounds
from .train import QuantTrainConfig, compare_integer, train_quant

__all__ = ["ExportError", "export_model", "load_export", "IntegerModel", "from_network", "quantize_input",
           "InputQuantizer", "QuantConv2d", "QuantLinear", "ShiftBatchNorm", "QUANT_PRESETS", "FloatNetwork",
           "QuantNetwork", "bounds", "floor_ste", "quantize_weight", "round_ste", "signed_bounds",
           "unsigned_bounds", "QuantTrainConfig", "compare_integer", "train_quant"]
