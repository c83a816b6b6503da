"""The 4-bit shift-BN network and its float twin, built from a short description.

Descriptions use the tokens of :mod:`trident.golden.network` (``fc256``,
``conv16k3s1p1``, ``maxpool2``); every fc/conv layer is followed by a
:class:`~.layers.ShiftBatchNorm` (``bn`` tokens are therefore redundant and ignored;
``avgpool`` is refused: an average is not an integer operation).  The classifier (to the
number of classes) is appended: a :class:`~.layers.QuantLinear` whose integer accumulators
are the logits — argmax of integers, no normaliser and no float at inference.  For the
cross-entropy loss in training the logits are multiplied by a learned positive scale
``exp(log_logit_scale)`` [ours], which cannot change any prediction.

Members
-------
QUANT_PRESETS
    ``mlp`` = ``fc256``, ``cnn`` = ``conv16k3p1,maxpool2,conv32k3p1,maxpool2`` (for 8×8 digits).
QuantNetwork
    Input quantizer → [QuantConv2d/QuantLinear → ShiftBatchNorm → (MaxPool2d)]* → QuantLinear.
FloatNetwork
    The same topology in float: bias-free conv/FC → BatchNorm → ReLU, float input; the
    baseline the 4-bit network is compared with.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..network import PRESETS, parse_architecture
from .layers import InputQuantizer, QuantConv2d, QuantLinear, ShiftBatchNorm
from .ste import signed_bounds

__all__ = ["QUANT_PRESETS", "QuantNetwork", "FloatNetwork", "expand_architecture"]

QUANT_PRESETS = {
    "mlp": "fc256",
    "cnn": "conv16k3p1,maxpool2,conv32k3p1,maxpool2",
}


def expand_architecture(text: str) -> str:
    return QUANT_PRESETS.get(text, PRESETS.get(text, text))


def _plan(architecture: str, input_shape):
    """Yield ``(kind, spec, in_shape, out_shape)`` with flatten steps made explicit."""
    shape = tuple(int(d) for d in input_shape)
    for spec in parse_architecture(expand_architecture(architecture)):
        if spec.kind == "bn":
            continue
        if spec.kind == "fc":
            if len(shape) > 1:
                yield "flatten", None, shape, (math.prod(shape),)
                shape = (math.prod(shape),)
            yield "fc", spec, shape, (spec.features,)
            shape = (spec.features,)
        elif spec.kind == "conv":
            if len(shape) != 3:
                raise ValueError(f"conv layer needs input [C, H, W], but it gets {shape}")
            c, h, w = shape
            oh = (h + 2 * spec.padding - spec.kernel) // spec.stride + 1
            ow = (w + 2 * spec.padding - spec.kernel) // spec.stride + 1
            if oh < 1 or ow < 1:
                raise ValueError(f"conv k{spec.kernel} s{spec.stride} p{spec.padding} does not fit {shape}")
            out = (spec.features, oh, ow)
            yield "conv", spec, shape, out
            shape = out
        else:
            if spec.pool != "max":
                raise ValueError("only maxpool is an integer operation; avgpool is not supported "
                                 "by the integer network")
            if len(shape) != 3 or shape[1] < spec.kernel or shape[2] < spec.kernel:
                raise ValueError(f"pool{spec.kernel} does not fit input {shape}")
            out = (shape[0], shape[1] // spec.kernel, shape[2] // spec.kernel)
            yield "pool", spec, shape, out
            shape = out
    if len(shape) > 1:
        yield "flatten", None, shape, (math.prod(shape),)


class QuantNetwork(nn.Module):
    """Integer-only network with n-bit weights and activations (ALGORITHMS.md §5).

    Parameters
    ----------
    architecture : str
        A preset of :data:`QUANT_PRESETS` or a description (``"fc256"``, ``"conv16k3p1,maxpool2"``).
    input_shape : tuple of int
        ``(C, H, W)`` or ``(F,)`` of one sample.
    classes : int
    bits : int
        Bit width n of weights and activations (4).
    signed_activations : bool
        Hidden activations signed ``[−7, 7]`` (K = 3) or unsigned ``[0, 15]`` (K = 2, the ReLU).
    decay, eps : float
        :class:`ShiftBatchNorm` settings.
    init_scale : float
        Shadow weights start uniform in ``±init_scale·(2^(n−1) − 1)``.

    ``forward(x)`` takes floats in [0, 1] (quantized to 8 bits) or uint8 integers and returns
    the integer logits (as floats).  In eval mode everything runs exactly in float64.
    """

    def __init__(self, architecture: str, input_shape, classes: int, bits: int = 4,
                 signed_activations: bool = False, decay: float = 0.9, eps: float = 1e-5,
                 init_scale: float = 1.0):
        super().__init__()
        signed_bounds(bits)
        self.architecture = expand_architecture(architecture)
        self.input_shape = tuple(int(d) for d in input_shape)
        self.classes = int(classes)
        self.bits = int(bits)
        self.signed_activations = bool(signed_activations)
        layers: list[nn.Module] = [InputQuantizer()]
        shape = self.input_shape
        for kind, spec, shape_in, shape in _plan(self.architecture, self.input_shape):
            if kind == "flatten":
                layers.append(nn.Flatten())
            elif kind == "fc":
                layers += [QuantLinear(shape_in[0], spec.features, bits, init_scale),
                           ShiftBatchNorm(spec.features, bits, signed_activations, decay, eps)]
            elif kind == "conv":
                layers += [QuantConv2d(shape_in[0], spec.features, spec.kernel, spec.stride, spec.padding,
                                       bits, init_scale),
                           ShiftBatchNorm(spec.features, bits, signed_activations, decay, eps)]
            else:
                layers.append(nn.MaxPool2d(spec.kernel))
        self.body = nn.Sequential(*layers)
        self.classifier = QuantLinear(math.prod(shape), self.classes, bits, init_scale)
        # exp(log_logit_scale) turns integer logits into the loss's logits (training only).
        q = signed_bounds(bits)[1]
        self.log_logit_scale = nn.Parameter(torch.tensor(-math.log(q * math.sqrt(math.prod(shape)) * 2.0)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"expected input [N, {', '.join(map(str, self.input_shape))}], got "
                             f"{tuple(x.shape)}")
        return self.classifier(self.body(x))

    def loss_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """Integer logits scaled for the cross-entropy loss (argmax unchanged)."""
        return logits * torch.exp(self.log_logit_scale)

    def weight_layers(self) -> list[nn.Module]:
        return [m for m in self.modules() if isinstance(m, (QuantLinear, QuantConv2d))]

    def shift_norms(self) -> list[ShiftBatchNorm]:
        return [m for m in self.modules() if isinstance(m, ShiftBatchNorm)]

    def clip_shadow_weights_(self) -> None:
        """Clip every shadow weight into ``[−q, q]`` (call after each optimiser step)."""
        for layer in self.weight_layers():
            layer.clip_shadow_()

    @torch.no_grad()
    def activations(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Eval-mode outputs of every body layer and the classifier (for bit-exact checks)."""
        was = self.training
        self.eval()
        try:
            outs = []
            h = x
            for layer in self.body:
                h = layer(h)
                outs.append(h)
            outs.append(self.classifier(h))
            return outs
        finally:
            self.train(was)


class FloatNetwork(nn.Module):
    """The float twin of :class:`QuantNetwork`: bias-free layers, BatchNorm + ReLU, float input."""

    def __init__(self, architecture: str, input_shape, classes: int):
        super().__init__()
        self.architecture = expand_architecture(architecture)
        self.input_shape = tuple(int(d) for d in input_shape)
        layers: list[nn.Module] = []
        shape = self.input_shape
        for kind, spec, shape_in, shape in _plan(self.architecture, self.input_shape):
            if kind == "flatten":
                layers.append(nn.Flatten())
            elif kind == "fc":
                layers += [nn.Linear(shape_in[0], spec.features, bias=False), nn.BatchNorm1d(spec.features),
                           nn.ReLU()]
            elif kind == "conv":
                layers += [nn.Conv2d(shape_in[0], spec.features, spec.kernel, spec.stride, spec.padding,
                                     bias=False), nn.BatchNorm2d(spec.features), nn.ReLU()]
            else:
                layers.append(nn.MaxPool2d(spec.kernel))
        self.body = nn.Sequential(*layers)
        self.classifier = nn.Linear(math.prod(shape), int(classes), bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.body(x))

    def loss_logits(self, logits: torch.Tensor) -> torch.Tensor:
        return logits
