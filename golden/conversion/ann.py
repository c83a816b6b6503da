"""The convertible ANN: weight layers, optional BatchNorm, learnable-clip activations.

Built from the same short descriptions as :class:`trident.golden.network.SpikingNetwork`
(``fc256``, ``conv16k3p1``, ``avgpool2``, ``bn``) plus the presets of :data:`PRESETS`.
Every ``fc``/``conv`` token is a weight layer followed by a :class:`ClipActivation`; ``bn``
goes between the weight layer and its activation; a linear classifier (the *head*) is
appended.  The ANN is an ordinary single-step ``nn.Module`` taking ``[N, *input_shape]``.

Max pooling is refused: the maximum of firing rates is not the firing rate of the maximum
of spike trains, so it has no exact spiking equivalent.  Average pooling is linear and
converts exactly.

Weight layers keep a bias (ALGORITHMS.md §4's reference code has one, and BatchNorm folding
creates one); in the converted SNN a bias is a constant input current every time step.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..network import PRESETS as TRAIN_PRESETS, parse_architecture
from .quantize import ClipActivation

__all__ = ["PRESETS", "ConvertibleANN", "fold_batchnorm"]

#: Conversion presets (different names from the BPTT presets of ``trident.golden.network``:
#: these use BatchNorm and average pooling).
PRESETS = {
    "digits-mlp": "fc256,bn,fc128,bn",
    "digits-cnn": "conv16k3p1,bn,avgpool2,conv32k3p1,bn,avgpool2",
}


def _expand(architecture: str) -> str:
    return PRESETS.get(architecture, TRAIN_PRESETS.get(architecture, architecture))


class ConvertibleANN(nn.Module):
    """A feed-forward ANN that dual-phase conversion (or max-norm) can turn into an SNN.

    Parameters
    ----------
    architecture : str
        A preset (:data:`PRESETS`) or a description such as ``"fc256,bn,fc128"``.
    input_shape : tuple of int
        One sample: ``(F,)`` or ``(C, H, W)``.  Inputs of any shape with the same number of
        elements per sample are reshaped to it.
    classes : int
    activation : {"clip", "relu"}
        Initial mode of every hidden activation (``quant`` is set by Phase I).
    theta_init : float
        Initial clipping level of every activation (§4: 5.0).
    bias : bool
        Whether weight layers have a bias.

    Members
    -------
    body : nn.Sequential
        Flatten / Linear / Conv2d / BatchNorm / ClipActivation / AvgPool2d in order.
    head : nn.Linear
        The classifier.
    """

    def __init__(self, architecture: str, input_shape, classes: int, activation: str = "clip",
                 theta_init: float = 5.0, bias: bool = True):
        super().__init__()
        self.architecture = _expand(architecture)
        self.input_shape = tuple(int(d) for d in input_shape)
        self.classes = int(classes)
        if self.classes < 2:
            raise ValueError(f"a classifier needs at least 2 classes, got {classes}")
        if activation not in ("clip", "relu"):
            raise ValueError(f"ANN activation must be 'clip' or 'relu', got {activation!r}")
        if not theta_init > 0:
            raise ValueError(f"theta_init must be > 0, got {theta_init}")
        shape = self.input_shape
        blocks: list[nn.Module] = []
        for spec in parse_architecture(self.architecture):
            if spec.kind == "fc":
                if len(shape) > 1:
                    blocks.append(nn.Flatten())
                    shape = (math.prod(shape),)
                blocks += [nn.Linear(shape[0], spec.features, bias=bias),
                           ClipActivation(theta_init, mode=activation)]
                shape = (spec.features,)
            elif spec.kind == "conv":
                if len(shape) != 3:
                    raise ValueError(f"conv layer needs input [C, H, W], but it gets {shape}")
                c, h, w = shape
                out_h = (h + 2 * spec.padding - spec.kernel) // spec.stride + 1
                out_w = (w + 2 * spec.padding - spec.kernel) // spec.stride + 1
                if out_h < 1 or out_w < 1:
                    raise ValueError(f"conv k{spec.kernel} s{spec.stride} p{spec.padding} does not fit input {shape}")
                blocks += [nn.Conv2d(c, spec.features, spec.kernel, spec.stride, spec.padding, bias=bias),
                           ClipActivation(theta_init, mode=activation)]
                shape = (spec.features, out_h, out_w)
            elif spec.kind == "pool":
                if spec.pool == "max":
                    raise ValueError("max pooling has no exact spiking equivalent (the max of rates is not the "
                                     f"rate of the max); use avgpool{spec.kernel} in {self.architecture!r}")
                if len(shape) != 3 or shape[1] < spec.kernel or shape[2] < spec.kernel:
                    raise ValueError(f"avgpool{spec.kernel} does not fit input {shape}")
                blocks.append(nn.AvgPool2d(spec.kernel))
                shape = (shape[0], shape[1] // spec.kernel, shape[2] // spec.kernel)
            else:
                if not blocks or not isinstance(blocks[-1], ClipActivation):
                    raise ValueError("bn must follow an fc or conv layer")
                blocks.insert(len(blocks) - 1, nn.BatchNorm2d(shape[0]) if len(shape) == 3
                              else nn.BatchNorm1d(shape[0]))
        if len(shape) > 1:
            blocks.append(nn.Flatten())
        self.body = nn.Sequential(*blocks)
        self.head = nn.Linear(math.prod(shape), self.classes, bias=bias)

    # -- structure -------------------------------------------------------------------------
    def activations(self) -> list[ClipActivation]:
        return [m for m in self.body if isinstance(m, ClipActivation)]

    def thetas(self) -> list[float]:
        """``|θ|`` of every hidden layer."""
        return [a.threshold for a in self.activations()]

    def has_batchnorm(self) -> bool:
        return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in self.body)

    def set_activation(self, mode: str | None = None, T: int | None = None, p: float | None = None,
                       fire: str | None = None) -> "ConvertibleANN":
        """Configure every hidden activation (see :meth:`ClipActivation.configure`)."""
        for a in self.activations():
            a.configure(mode=mode, T=T, p=p, fire=fire)
        return self

    @property
    def activation_mode(self) -> str:
        return self.activations()[0].mode

    # -- forward ---------------------------------------------------------------------------
    def _shape_input(self, x: torch.Tensor) -> torch.Tensor:
        per_sample = math.prod(self.input_shape)
        if x.dim() < 1 or x[0].numel() != per_sample:
            raise ValueError(f"expected input [N, {', '.join(map(str, self.input_shape))}], got {tuple(x.shape)}")
        return x.reshape(x.shape[0], *self.input_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self._shape_input(x)))

    def layer_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The output of every hidden activation, then the logits (calibration targets)."""
        outputs = []
        x = self._shape_input(x)
        for block in self.body:
            x = block(x)
            if isinstance(block, ClipActivation):
                outputs.append(x)
        outputs.append(self.head(x))
        return outputs

    def fold_batchnorm(self) -> "ConvertibleANN":
        """Fold every BatchNorm into the weight layer before it, in place; see :func:`fold_batchnorm`."""
        fold_batchnorm(self)
        return self


@torch.no_grad()
def fold_batchnorm(model: ConvertibleANN) -> ConvertibleANN:
    """Fold each BatchNorm (its running statistics, i.e. inference behaviour) into the
    preceding Linear/Conv2d and remove it, in place.

    ``BN(Wx + b) = γ (Wx + b − μ)/√(σ² + ε) + β`` becomes ``W'x + b'`` with
    ``W' = W · γ/√(σ² + ε)`` (per output channel) and ``b' = (b − μ) γ/√(σ² + ε) + β``.
    In ``eval()`` mode the folded model computes the same function (up to float rounding).
    """
    blocks = list(model.body)
    kept: list[nn.Module] = []
    for block in blocks:
        if isinstance(block, nn.modules.batchnorm._BatchNorm):
            layer = kept[-1]
            if not isinstance(layer, (nn.Linear, nn.Conv2d)):
                raise ValueError("BatchNorm must directly follow a Linear or Conv2d layer to be folded")
            if block.running_mean is None or not block.affine:
                raise ValueError("only affine BatchNorm with running statistics can be folded")
            scale = block.weight / torch.sqrt(block.running_var + block.eps)
            shape = (-1,) + (1,) * (layer.weight.dim() - 1)
            layer.weight.mul_(scale.reshape(shape))
            bias = layer.bias if layer.bias is not None else torch.zeros_like(block.running_mean)
            new_bias = (bias - block.running_mean) * scale + block.bias
            if layer.bias is None:
                layer.bias = nn.Parameter(new_bias)
            else:
                layer.bias.copy_(new_bias)
            continue
        kept.append(block)
    model.body = nn.Sequential(*kept)
    return model
