"""Multi-step layers: PyTorch layers applied to every step of a ``[T, N, ...]`` sequence.

Stateless layers (linear, convolution, pooling, batch normalisation) act on each step
independently, so a whole sequence goes through them as one ``[T·N, ...]`` batch — one
large kernel call instead of T small ones (SpikingJelly's ``SeqToANNContainer`` idea).
Batch normalisation therefore normalises over time and batch together; it is a float-path
layer only (the hardware folds nothing and has no normaliser).

Members
-------
Linear, Conv2d, MaxPool2d, AvgPool2d, BatchNorm1d, BatchNorm2d
    The PyTorch layers of the same names, taking and returning ``[T, N, ...]``.
Flatten
    ``[T, N, C, H, W] → [T, N, C·H·W]``.
Readout
    A non-spiking output layer: ``logits = (1/T) Σ_t W s[t]``, the time-averaged membrane of
    an integrator without leak or threshold.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["Linear", "Conv2d", "MaxPool2d", "AvgPool2d", "BatchNorm1d", "BatchNorm2d", "Flatten",
           "Readout"]


class _OverSteps:
    """Mixin: fold time into the batch, run the wrapped layer once, unfold."""

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        steps, batch = x_seq.shape[:2]
        y = super().forward(x_seq.reshape(steps * batch, *x_seq.shape[2:]))
        return y.reshape(steps, batch, *y.shape[1:])


class Linear(_OverSteps, nn.Linear):
    pass


class Conv2d(_OverSteps, nn.Conv2d):
    pass


class MaxPool2d(_OverSteps, nn.MaxPool2d):
    pass


class AvgPool2d(_OverSteps, nn.AvgPool2d):
    pass


class BatchNorm1d(_OverSteps, nn.BatchNorm1d):
    pass


class BatchNorm2d(_OverSteps, nn.BatchNorm2d):
    pass


class Flatten(nn.Module):
    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        return x_seq.flatten(2)


class Readout(nn.Linear):
    """Time-averaged, non-spiking output layer: ``[T, N, F] → [N, classes]``."""

    def __init__(self, in_features: int, classes: int):
        super().__init__(in_features, classes, bias=False)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        return super().forward(x_seq.mean(0))
