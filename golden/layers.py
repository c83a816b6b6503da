"""Multi-step layers: PyTorch layers applied to every step of a ``[T, N, ...]`` sequence.

Stateless layers (linear, convolution, pooling, batch normalisation) act on each step
independently, so a whole sequence goes through them as one ``[T·N, ...]`` batch — one
large kernel call instead of T small ones (SpikingJelly's ``SeqToANNContainer`` idea).
Batch normalisation therefore normalises over time and batch together; it is a float-path
layer only (the hardware folds nothing and has no normaliser).

A layer whose ``spike_input`` is set (the network sets it for layers fed by spiking
neurons) keeps its input for the backward pass as one byte per spike instead of a 4-byte
float — the same values, a quarter of the memory — and spike max-pooling keeps no int64
argmax indices but recomputes them.  These are the activations that dominate BPTT memory.

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
from torch.nn import functional as F

__all__ = ["Linear", "Conv2d", "MaxPool2d", "AvgPool2d", "BatchNorm1d", "BatchNorm2d", "Flatten",
           "Readout"]


class _OverSteps:
    """Mixin: fold time into the batch, run the wrapped layer once, unfold."""

    spike_input = False

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        steps, batch = x_seq.shape[:2]
        x = x_seq.reshape(steps * batch, *x_seq.shape[2:])
        y = self._forward_spikes(x) if self.spike_input and torch.is_grad_enabled() else super().forward(x)
        return y.reshape(steps, batch, *y.shape[1:])


class _SpikeLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, spikes, weight):
        ctx.save_for_backward(spikes.to(torch.bool), weight)
        return spikes @ weight.T

    @staticmethod
    def backward(ctx, grad):
        spikes, weight = ctx.saved_tensors
        grad_in = grad @ weight if ctx.needs_input_grad[0] else None
        return grad_in, grad.T @ spikes.to(grad.dtype)


class _SpikeConv2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, spikes, weight, stride, padding):
        ctx.save_for_backward(spikes.to(torch.bool), weight)
        ctx.geometry = stride, padding
        return F.conv2d(spikes, weight, None, stride, padding)

    @staticmethod
    def backward(ctx, grad):
        spikes, weight = ctx.saved_tensors
        stride, padding = ctx.geometry
        grad_in = None
        if ctx.needs_input_grad[0]:
            grad_in = torch.nn.grad.conv2d_input(spikes.shape, weight, grad, stride, padding)
        grad_w = torch.nn.grad.conv2d_weight(spikes.to(grad.dtype), weight.shape, grad, stride, padding)
        return grad_in, grad_w, None, None


class _SpikeMaxPool2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, spikes, kernel, stride):
        ctx.save_for_backward(spikes.to(torch.bool))
        ctx.geometry = kernel, stride
        return F.max_pool2d(spikes, kernel, stride)

    @staticmethod
    def backward(ctx, grad):
        (spikes,) = ctx.saved_tensors
        kernel, stride = ctx.geometry
        x = spikes.to(grad.dtype)
        _, indices = F.max_pool2d(x, kernel, stride, return_indices=True)
        return F.max_unpool2d(grad, indices, kernel, stride, output_size=x.shape[-2:]), None, None


class Linear(_OverSteps, nn.Linear):
    def _forward_spikes(self, x):
        if self.bias is not None:
            return super().forward(x)
        return _SpikeLinear.apply(x, self.weight)


class Conv2d(_OverSteps, nn.Conv2d):
    def _forward_spikes(self, x):
        if self.bias is not None or self.dilation != (1, 1) or self.groups != 1 or self.padding_mode != "zeros":
            return super().forward(x)
        return _SpikeConv2d.apply(x, self.weight, self.stride, self.padding)


class MaxPool2d(_OverSteps, nn.MaxPool2d):
    def _forward_spikes(self, x):
        if self.padding or self.dilation != 1 or self.ceil_mode:
            return super().forward(x)
        return _SpikeMaxPool2d.apply(x, self.kernel_size, self.stride)


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
