"""Pure-integer reference inference of a 4-bit shift-BN network (numpy, no floating point).

This is what the hardware computes, written as plainly as possible: every array is a numpy
integer array (checked after each operation), there is no float anywhere — no scale, no
multiplier per channel — only

    integer MAC  →  subtract the integer bias  →  arithmetic shift  →  clamp

and integer max-pooling.  A positive shift is an arithmetic right shift (``>>``, i.e. floor
division by ``2^shift``, also for negative values); a negative shift is a left shift by
``−shift``.  Accumulators are int64 (the largest value a 4-bit network on 8-bit inputs can
reach is far below 2^31; :meth:`IntegerModel.check_ranges` verifies it for given inputs).

Members
-------
IntLinear, IntConv2d, IntShiftNorm, IntMaxPool2d, IntFlatten
    The operations, each holding its integer tables.
IntegerModel
    A list of operations; ``forward(x_uint8) → int64 logits``, ``trace`` returns every
    intermediate array, ``predict`` the argmax.
from_network(net)
    The integer tables of a trained :class:`~.network.QuantNetwork` (eval-mode statistics).
quantize_input(x)
    Float images in [0, 1] to the uint8 input ``round(255·x)`` (the sensor boundary, the one
    place a float is read; identical to the network's :class:`~.layers.InputQuantizer`).
shift_round(x, shift)
    The per-channel arithmetic shift, exposed for tests.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .layers import EXACT_DTYPE, InputQuantizer, QuantConv2d, QuantLinear, ShiftBatchNorm
from .ste import INPUT_MAX

__all__ = ["IntLinear", "IntConv2d", "IntShiftNorm", "IntMaxPool2d", "IntFlatten", "IntegerModel",
           "from_network", "quantize_input", "shift_round", "ACC_DTYPE"]

#: Accumulator dtype of the reference.
ACC_DTYPE = np.int64


def _require_int(a: np.ndarray, what: str) -> np.ndarray:
    if not isinstance(a, np.ndarray) or a.dtype.kind not in "iu":
        kind = a.dtype if isinstance(a, np.ndarray) else type(a).__name__
        raise TypeError(f"{what}: integer-only inference got a non-integer array ({kind})")
    return a


def shift_round(x: np.ndarray, shift: np.ndarray, channel_axis: int = 1) -> np.ndarray:
    """``floor(x / 2^shift)`` per channel with integer shifts only.

    ``shift >= 0``: arithmetic right shift ``x >> shift``; ``shift < 0``: left shift
    ``x << −shift``.
    """
    _require_int(x, "shift input")
    _require_int(shift, "shift table")
    shape = [1] * x.ndim
    shape[channel_axis] = -1
    s = shift.astype(ACC_DTYPE).reshape(shape)
    x = x.astype(ACC_DTYPE, copy=False)
    right = np.right_shift(x, np.maximum(s, 0))
    left = np.left_shift(x, np.maximum(-s, 0))
    return _require_int(np.where(s >= 0, right, left), "shift output")


@dataclass
class IntLinear:
    weight: np.ndarray  # int8 [out, in]

    def __post_init__(self):
        _require_int(self.weight, "IntLinear weight")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        _require_int(x, "IntLinear input")
        return x.astype(ACC_DTYPE) @ self.weight.astype(ACC_DTYPE).T


@dataclass
class IntConv2d:
    weight: np.ndarray  # int8 [out, in, kh, kw]
    stride: int = 1
    padding: int = 0

    def __post_init__(self):
        _require_int(self.weight, "IntConv2d weight")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        _require_int(x, "IntConv2d input")
        p, s = self.padding, self.stride
        x = np.pad(x.astype(ACC_DTYPE), ((0, 0), (0, 0), (p, p), (p, p)))
        kh, kw = self.weight.shape[2:]
        win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::s, ::s]
        # win: [N, C, OH, OW, kh, kw]; contract C, kh, kw with the weights.
        out = np.tensordot(win, self.weight.astype(ACC_DTYPE), axes=([1, 4, 5], [1, 2, 3]))
        return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


@dataclass
class IntShiftNorm:
    bias: np.ndarray   # int32 [C]
    shift: np.ndarray  # int8 [C]
    lower: int
    upper: int

    def __post_init__(self):
        _require_int(self.bias, "IntShiftNorm bias")
        _require_int(self.shift, "IntShiftNorm shift")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        _require_int(x, "IntShiftNorm input")
        shape = [1] * x.ndim
        shape[1] = -1
        centred = x.astype(ACC_DTYPE) - self.bias.astype(ACC_DTYPE).reshape(shape)
        return np.clip(shift_round(centred, self.shift), self.lower, self.upper)


@dataclass
class IntMaxPool2d:
    kernel: int

    def __call__(self, x: np.ndarray) -> np.ndarray:
        _require_int(x, "IntMaxPool2d input")
        k = self.kernel
        n, c, h, w = x.shape
        oh, ow = h // k, w // k
        x = x[:, :, :oh * k, :ow * k].reshape(n, c, oh, k, ow, k)
        return x.max(axis=(3, 5))


@dataclass
class IntFlatten:
    def __call__(self, x: np.ndarray) -> np.ndarray:
        _require_int(x, "IntFlatten input")
        return x.reshape(x.shape[0], -1)


@dataclass
class IntegerModel:
    """The integer network: ``forward(x)`` maps uint8 inputs ``[N, *input_shape]`` to int64 logits."""

    input_shape: tuple
    ops: list = field(default_factory=list)
    bits: int = 4

    def trace(self, x: np.ndarray) -> list[np.ndarray]:
        if not isinstance(x, np.ndarray) or x.dtype != np.uint8:
            raise TypeError(f"integer inference takes uint8 inputs (8-bit unsigned), got "
                            f"{getattr(x, 'dtype', type(x).__name__)}; use quantize_input()")
        if tuple(x.shape[1:]) != tuple(self.input_shape):
            raise ValueError(f"expected input [N, {', '.join(map(str, self.input_shape))}], got {x.shape}")
        outs = []
        h = x
        for op in self.ops:
            h = _require_int(op(h), type(op).__name__)
            outs.append(h)
        return outs

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.trace(x)[-1]

    __call__ = forward

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.argmax(self.forward(x), axis=1)

    def check_ranges(self, x: np.ndarray, limit_bits: int = 31) -> int:
        """Largest magnitude any intermediate reaches for ``x``; raises if it needs > ``limit_bits``."""
        worst = max(int(np.abs(h).max()) for h in self.trace(x))
        if worst >= 1 << limit_bits:
            raise OverflowError(f"an intermediate reaches {worst}, beyond {limit_bits}-bit accumulators")
        return worst


def _int_tensor(t: torch.Tensor, dtype, what: str) -> np.ndarray:
    a = t.detach().to(EXACT_DTYPE).cpu().numpy()
    if not np.array_equal(a, np.round(a)):
        raise ValueError(f"{what} holds non-integer values")
    info = np.iinfo(dtype)
    if a.size and (a.min() < info.min or a.max() > info.max):
        raise OverflowError(f"{what} does not fit {np.dtype(dtype).name}: [{a.min()}, {a.max()}]")
    return a.astype(dtype)


def from_network(net) -> IntegerModel:
    """Extract the integer tables of a :class:`~.network.QuantNetwork` (no float survives)."""
    ops = []
    for layer in list(net.body) + [net.classifier]:
        if isinstance(layer, QuantConv2d):
            w = _int_tensor(layer.integer_weight(), np.int8, "conv weight")
            ops.append(IntConv2d(w, int(layer.stride[0]), int(layer.padding[0])))
        elif isinstance(layer, QuantLinear):
            ops.append(IntLinear(_int_tensor(layer.integer_weight(), np.int8, "fc weight")))
        elif isinstance(layer, ShiftBatchNorm):
            bias, shift = layer.inference_tables()
            ops.append(IntShiftNorm(_int_tensor(bias, np.int32, "shift-BN bias"),
                                    _int_tensor(shift, np.int8, "shift-BN shift"), layer.lower, layer.upper))
        elif isinstance(layer, nn.MaxPool2d):
            k = layer.kernel_size if isinstance(layer.kernel_size, int) else layer.kernel_size[0]
            ops.append(IntMaxPool2d(int(k)))
        elif isinstance(layer, nn.Flatten):
            ops.append(IntFlatten())
        elif isinstance(layer, InputQuantizer):
            continue
        else:
            raise TypeError(f"no integer counterpart for {type(layer).__name__}")
    return IntegerModel(tuple(net.input_shape), ops, net.bits)


def quantize_input(x) -> np.ndarray:
    """Float images in [0, 1] → uint8 ``round(255·x)`` (as :class:`~.layers.InputQuantizer`)."""
    t = torch.as_tensor(x).to(EXACT_DTYPE)
    q = torch.clamp(torch.round(t * INPUT_MAX), 0, INPUT_MAX)
    return q.numpy().astype(np.uint8)

