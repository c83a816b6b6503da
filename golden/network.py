"""Spiking networks built from a short text description.

A network is a stack of blocks followed by a non-spiking :class:`~.layers.Readout`.
The description is a comma-separated list of tokens:

``fc256``
    a fully connected layer of 256 spiking neurons (input flattened first if needed);
``conv16k3``, ``conv16k3s2p1``
    a 3×3 convolution to 16 channels of spiking neurons, stride ``s`` (1), padding ``p`` (0);
``maxpool2``, ``avgpool2``
    2×2 pooling of the spikes;
``bn``
    batch normalisation between the preceding weight layer and its neurons (float path only).

The readout to the number of classes is appended automatically.  Presets name common
descriptions (:data:`PRESETS`).  Weight layers have no bias: the hardware has none, and a
threshold plays its part.

Convolutions without a following ``bn`` start from PyTorch's default initialisation times
:data:`CONV_INIT_GAIN`: sparse binary inputs (10–20 % density on event data) through the
LIF's ``1/τ`` input decay leave default-initialised convolutions silent, and a silent
layer passes no surrogate gradient, so it never starts learning.

The network owns its neurons' state: every forward call starts from the resting potential,
so no reset between batches can be forgotten.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch
from torch import nn

from . import layers
from .neurons import MultiStepNeuron, NeuronConfig, make_neuron

__all__ = ["PRESETS", "CONV_INIT_GAIN", "LayerSpec", "parse_architecture", "SpikingNetwork"]

CONV_INIT_GAIN = 4.0

PRESETS = {
    "mlp": "fc256",
    "mlp-small": "fc128",
    "mlp2": "fc256,fc128",
    "cnn": "conv16k5s2p2,bn,maxpool2,conv32k3p1,bn,maxpool2",
    "cnn-nobn": "conv16k5s2p2,maxpool2,conv32k3p1,maxpool2",
}

_TOKEN = re.compile(r"^(?:fc(?P<fc>\d+)|conv(?P<ch>\d+)k(?P<k>\d+)(?:s(?P<s>\d+))?(?:p(?P<p>\d+))?"
                    r"|(?P<pool>max|avg)pool(?P<pk>\d+)|(?P<bn>bn))$")


@dataclass(frozen=True)
class LayerSpec:
    """One parsed token: ``kind`` is ``fc``, ``conv``, ``pool`` or ``bn``."""

    kind: str
    features: int = 0
    kernel: int = 0
    stride: int = 1
    padding: int = 0
    pool: str = ""


def parse_architecture(text: str) -> list[LayerSpec]:
    """Parse a preset name or a description; raise ``ValueError`` on anything unknown."""
    text = PRESETS.get(text, text)
    specs = []
    for token in filter(None, (t.strip() for t in text.split(","))):
        m = _TOKEN.match(token)
        if not m:
            raise ValueError(f"cannot parse layer {token!r} in model {text!r}; expected fcN, convCkK[sS][pP], "
                             f"maxpoolK, avgpoolK or bn, or a preset: {', '.join(PRESETS)}")
        if m["fc"]:
            specs.append(LayerSpec("fc", features=int(m["fc"])))
        elif m["ch"]:
            specs.append(LayerSpec("conv", features=int(m["ch"]), kernel=int(m["k"]),
                                   stride=int(m["s"] or 1), padding=int(m["p"] or 0)))
        elif m["pool"]:
            specs.append(LayerSpec("pool", kernel=int(m["pk"]), pool=m["pool"]))
        else:
            specs.append(LayerSpec("bn"))
    if not any(s.kind in ("fc", "conv") for s in specs):
        raise ValueError(f"model {text!r} has no fc or conv layer")
    return specs


class SpikingNetwork(nn.Module):
    """Spiking blocks and a readout, taking ``[T, N, *input_shape]`` to logits ``[N, classes]``.

    Members
    -------
    architecture : str
        The description it was built from (a preset is expanded).
    input_shape : tuple of int
        Shape of one sample at one step: ``(F,)`` or ``(C, H, W)``.
    classes : int
        Number of outputs.
    neuron : NeuronConfig
        The dynamics of every spiking layer.
    body : nn.Sequential
        The spiking blocks in order (weight layer, optional ``bn``, neurons, pooling).
    readout : Readout
        The output layer.
    """

    def __init__(self, architecture: str, input_shape, classes: int, neuron: NeuronConfig,
                 fused: bool = True):
        super().__init__()
        self.architecture = PRESETS.get(architecture, architecture)
        self.input_shape = tuple(int(d) for d in input_shape)
        self.classes = int(classes)
        self.neuron = neuron
        if self.classes < 2:
            raise ValueError(f"a classifier needs at least 2 classes, got {classes}")
        shape = self.input_shape
        blocks: list[nn.Module] = []
        for spec in parse_architecture(self.architecture):
            if spec.kind == "fc":
                if len(shape) > 1:
                    blocks.append(layers.Flatten())
                    shape = (math.prod(shape),)
                blocks += [layers.Linear(shape[0], spec.features, bias=False), make_neuron(neuron, fused)]
                shape = (spec.features,)
            elif spec.kind == "conv":
                if len(shape) != 3:
                    raise ValueError(f"conv layer needs input [C, H, W], but it gets {shape}")
                c, h, w = shape
                out_h = (h + 2 * spec.padding - spec.kernel) // spec.stride + 1
                out_w = (w + 2 * spec.padding - spec.kernel) // spec.stride + 1
                if out_h < 1 or out_w < 1:
                    raise ValueError(f"conv k{spec.kernel} s{spec.stride} p{spec.padding} does not fit "
                                     f"input {shape}")
                blocks += [layers.Conv2d(c, spec.features, spec.kernel, spec.stride, spec.padding, bias=False),
                           make_neuron(neuron, fused)]
                shape = (spec.features, out_h, out_w)
            elif spec.kind == "pool":
                if len(shape) != 3 or shape[1] < spec.kernel or shape[2] < spec.kernel:
                    raise ValueError(f"pool{spec.kernel} does not fit input {shape}")
                pool = layers.MaxPool2d if spec.pool == "max" else layers.AvgPool2d
                blocks.append(pool(spec.kernel))
                shape = (shape[0], shape[1] // spec.kernel, shape[2] // spec.kernel)
            else:
                if not blocks or not isinstance(blocks[-1], MultiStepNeuron):
                    raise ValueError("bn must follow an fc or conv layer")
                norm = layers.BatchNorm2d(shape[0]) if len(shape) == 3 else layers.BatchNorm1d(shape[0])
                blocks.insert(len(blocks) - 1, norm)
        for i, block in enumerate(blocks):
            followed_by_norm = i + 1 < len(blocks) and isinstance(blocks[i + 1], layers.BatchNorm2d)
            if isinstance(block, layers.Conv2d) and not followed_by_norm:
                with torch.no_grad():
                    block.weight.mul_(CONV_INIT_GAIN)
        spiking = False  # whether the values reaching a layer are spikes
        for block in blocks:
            if hasattr(block, "spike_input"):
                block.spike_input = spiking
            spiking = isinstance(block, MultiStepNeuron) or (spiking and isinstance(block, (layers.MaxPool2d,
                                                                                              layers.Flatten)))
        self.body = nn.Sequential(*blocks)
        self.feature_shape = shape
        self.readout = layers.Readout(math.prod(shape), self.classes)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        expected = self.input_shape
        if x_seq.dim() != len(expected) + 2 or tuple(x_seq.shape[2:]) != expected:
            raise ValueError(f"expected input [T, N, {', '.join(map(str, expected))}], "
                             f"got {tuple(x_seq.shape)}")
        return self.readout(self.body(x_seq).flatten(2))

    def neurons(self) -> list[MultiStepNeuron]:
        return [m for m in self.body if isinstance(m, MultiStepNeuron)]

    def klif_scales(self) -> list[float]:
        """The learned KLIF ``k`` of each spiking layer (empty for IF/LIF)."""
        return [n.k.item() for n in self.neurons() if self.neuron.kind == "klif"]

    def set_fused(self, fused: bool) -> None:
        for n in self.neurons():
            n.fused = fused
