"""Dual-phase ANN→SNN conversion (ALGORITHMS.md §4) and the plain max-norm baseline.

The path a model takes::

    ConvertibleANN(..., activation="clip")        Phase 0: learnable clip θ per layer
      → train_ann(...); fold_batchnorm()          BatchNorm folded into the weights
      → finetune_noisy(ann, T, p=0.1)             Phase I: noisy quantization, STE rounding
      → convert(ann, T)                           IF: threshold |θ|, soft reset, U > θ, θ/2 offset
      → calibrate(snn, ann, x_cal, T)             Phase II: (a) potential, (b) KL weights, (a)

and the baseline ``max_norm_convert(relu_ann, x, T, percentile=99.9)``.
:func:`run_conversion` does all of it from a :class:`ConversionConfig` and returns the JSON
report; ``trident convert`` (:mod:`.cli`) is its command line.

Modules: :mod:`.quantize` (activations, the T-level quantizer), :mod:`.ann` (the ANN, BN
folding), :mod:`.snn` (converted IF neurons and SNN, conversions), :mod:`.calibrate`
(Phase II), :mod:`.pipeline` (training, evaluation, the end-to-end run), :mod:`.cli`.
"""
from .ann import PRESETS, ConvertibleANN, fold_batchnorm
from .calibrate import CalibrationConfig, calibrate, calibrate_potential, calibrate_weights, output_gap
from .pipeline import (ConversionConfig, accuracy, finetune_noisy, load_ann, run_conversion, save_ann,
                       train_ann)
from .quantize import ACTIVATION_MODES, FIRE_RULES, ClipActivation, quantize, round_ties
from .snn import (OFFSETS, ConvertedIF, ConvertedSNN, OutputIntegrator, SpikingStage, convert,
                  max_norm_convert, max_norm_thresholds, tanh_spike)

__all__ = [
    "PRESETS", "ConvertibleANN", "fold_batchnorm",
    "ClipActivation", "quantize", "round_ties", "FIRE_RULES", "ACTIVATION_MODES",
    "ConvertedIF", "OutputIntegrator", "SpikingStage", "ConvertedSNN", "convert", "max_norm_convert",
    "max_norm_thresholds", "tanh_spike", "OFFSETS",
    "CalibrationConfig", "calibrate", "calibrate_potential", "calibrate_weights", "output_gap",
    "ConversionConfig", "run_conversion", "train_ann", "finetune_noisy", "accuracy", "save_ann", "load_ann",
]
