"""Layers of the 4-bit integer network: quantized FC/conv, shift batch-norm, input quantizer.

Everything here computes on integer *values* held in float tensors.  In training mode the
layers run in float32 with straight-through estimators; in eval mode they run in float64,
where every intermediate value (integer MACs far below 2^53, power-of-two scaling, floor,
clamp) is exact — so the eval-mode ("fake-quantized") network equals the pure-integer
reference of :mod:`.integer` bit for bit.

Members
-------
InputQuantizer
    ``x ∈ [0, 1] → round(255·x)`` clamped to ``[0, 255]``: 8-bit unsigned inputs.
QuantLinear, QuantConv2d
    No bias; weights are n-bit signed integers ``clamp(round(w), ±(2^(n−1) − 1))`` of float
    shadow weights ``w`` (straight-through round).
ShiftBatchNorm
    Replaces BatchNorm + activation quantizer (ALGORITHMS.md §5).  Per channel c::

        bias  = round(mean)                    (round_ste in training)
        shift = round(log2 std) + K − n        (K = 3 signed, 2 unsigned)
        y     = clamp(floor((x − bias) / 2^shift), L, U)

    Training uses the batch statistics; eval the running ones (EMA with decay 0.9, the
    first batch copied).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .ste import INPUT_MAX, bounds, floor_ste, quantize_weight, round_ste, shift_k, signed_bounds

__all__ = ["InputQuantizer", "QuantLinear", "QuantConv2d", "ShiftBatchNorm", "SHIFT_MIN",
           "SHIFT_MAX", "EXACT_DTYPE"]

#: Range a shift is clamped to [ours]: it is stored as one signed byte, and any real channel
#: lands far inside (a constant, dead channel would otherwise ask for an unbounded left shift).
SHIFT_MIN, SHIFT_MAX = -16, 31
#: The dtype eval mode computes in (exact for every value these layers produce).
EXACT_DTYPE = torch.float64


def _compute_dtype(module: nn.Module, x: torch.Tensor) -> torch.dtype:
    return x.dtype if module.training else EXACT_DTYPE


class InputQuantizer(nn.Module):
    """Float input in [0, 1] to its 8-bit unsigned integer value ``round(255·x)``.

    Inputs that already hold integers (``uint8`` tensors) pass unchanged (as floats).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not x.dtype.is_floating_point:
            return x.to(torch.float32 if self.training else EXACT_DTYPE)
        x = x.to(_compute_dtype(self, x))
        return torch.clamp(torch.round(x * INPUT_MAX), 0, INPUT_MAX)


class _QuantWeight:
    """Mixin: the integer weight of the float shadow weight."""

    bits: int

    def _init_shadow(self, init_scale: float) -> None:
        # Uniform over [-s q, s q] in integer units (q = 2^(n-1) - 1): scale-free because the
        # shift-BN that follows normalises each channel.
        q = signed_bounds(self.bits)[1]
        with torch.no_grad():
            self.weight.uniform_(-init_scale * q, init_scale * q)

    def integer_weight(self) -> torch.Tensor:
        """The n-bit signed weight (float tensor with integer values; STE to the shadow)."""
        return quantize_weight(self.weight, self.bits)

    @torch.no_grad()
    def clip_shadow_(self) -> None:
        """Keep the shadow weights inside the representable range ``[−q, q]``."""
        low, high = signed_bounds(self.bits)
        self.weight.clamp_(low, high)


class QuantLinear(_QuantWeight, nn.Linear):
    """Fully connected layer with n-bit signed integer weights and no bias."""

    def __init__(self, in_features: int, out_features: int, bits: int = 4, init_scale: float = 1.0):
        super().__init__(in_features, out_features, bias=False)
        self.bits = int(bits)
        signed_bounds(self.bits)
        self._init_shadow(init_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = _compute_dtype(self, x)
        return F.linear(x.to(dtype), self.integer_weight().to(dtype))

    def extra_repr(self):
        return f"{super().extra_repr()}, bits={self.bits}"


class QuantConv2d(_QuantWeight, nn.Conv2d):
    """2-D convolution with n-bit signed integer weights and no bias (zero padding)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, bits: int = 4, init_scale: float = 1.0):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, bias=False)
        self.bits = int(bits)
        signed_bounds(self.bits)
        self._init_shadow(init_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = _compute_dtype(self, x)
        return F.conv2d(x.to(dtype), self.integer_weight().to(dtype), None, self.stride, self.padding)

    def extra_repr(self):
        return f"{super().extra_repr()}, bits={self.bits}"


class ShiftBatchNorm(nn.Module):
    """Shift batch-normalisation with an n-bit output (ALGORITHMS.md §5).

    Parameters
    ----------
    channels : int
        Channel dimension is 1 (``[N, C]`` or ``[N, C, H, W]``).
    bits : int
        Output bit width n.
    signed : bool
        Signed output ``[−(2^(n−1) − 1), 2^(n−1) − 1]`` (K = 3) or unsigned ``[0, 2^n − 1]``
        (K = 2; doubles as the ReLU).
    decay : float
        EMA decay of the running statistics (0.9): ``running = decay·running + (1 − decay)·batch``,
        except the first training batch, which is copied.
    eps : float
        Added to the variance before the square root [ours; integer units, so negligible for
        any live channel].

    Members
    -------
    running_mean, running_var : buffers (float64)
        Per-channel EMA of the batch mean and (biased) variance of the integer input.
    num_batches_tracked : buffer
        0 until the first training batch (then the statistics are copied, not averaged).
    """

    def __init__(self, channels: int, bits: int = 4, signed: bool = False, decay: float = 0.9,
                 eps: float = 1e-5):
        super().__init__()
        if not 0 <= decay < 1:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        self.channels = int(channels)
        self.bits = int(bits)
        self.signed = bool(signed)
        self.decay = float(decay)
        self.eps = float(eps)
        self.lower, self.upper = bounds(self.bits, self.signed)
        self.k = shift_k(self.signed)
        self.register_buffer("running_mean", torch.zeros(channels, dtype=torch.float64))
        self.register_buffer("running_var", torch.ones(channels, dtype=torch.float64))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def _view(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return t.view(1, -1, *([1] * (x.dim() - 2)))

    def _bias_shift(self, mean: torch.Tensor, var: torch.Tensor):
        bias = round_ste(mean)
        log2_std = 0.5 * torch.log2(var + self.eps)
        shift = torch.clamp(round_ste(log2_std) + (self.k - self.bits), SHIFT_MIN, SHIFT_MAX)
        return bias, shift

    def inference_tables(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Integer ``(bias, shift)`` per channel from the running statistics (float64 values)."""
        with torch.no_grad():
            return self._bias_shift(self.running_mean.to(EXACT_DTYPE), self.running_var.to(EXACT_DTYPE))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() not in (2, 4) or x.shape[1] != self.channels:
            raise ValueError(f"ShiftBatchNorm({self.channels}) expects [N, {self.channels}] or "
                             f"[N, {self.channels}, H, W], got {tuple(x.shape)}")
        if self.training:
            dims = [d for d in range(x.dim()) if d != 1]
            mean = x.mean(dims)
            var = x.var(dims, unbiased=False)
            with torch.no_grad():
                m, v = mean.detach().to(torch.float64), var.detach().to(torch.float64)
                if int(self.num_batches_tracked) == 0:
                    self.running_mean.copy_(m)
                    self.running_var.copy_(v)
                else:
                    self.running_mean.mul_(self.decay).add_(m, alpha=1 - self.decay)
                    self.running_var.mul_(self.decay).add_(v, alpha=1 - self.decay)
                self.num_batches_tracked += 1
            bias, shift = self._bias_shift(mean, var)
        else:
            x = x.to(EXACT_DTYPE)
            bias, shift = self.inference_tables()
        scale = torch.pow(torch.full_like(shift, 2.0), -shift)
        y = floor_ste((x - self._view(bias, x)) * self._view(scale, x))
        return torch.clamp(y, self.lower, self.upper)

    def extra_repr(self):
        return (f"{self.channels}, bits={self.bits}, signed={self.signed}, bounds=[{self.lower}, "
                f"{self.upper}], decay={self.decay}")

