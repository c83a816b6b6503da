"""BP engine kernels: the transposed products that hand the error to the layer below
(docs/numerics.md §4.2–4.5).

For every input neuron ``i`` (a lane) one binary16 accumulator starts at ``+0`` and receives
``acc ← fma(W[j, i], δI[j], acc)`` **sequentially in ascending output index ``j``**, skipping
every ``j`` with ``δI[j] = ±0``.  Outputs that the layer below multiplies by a zero surrogate
are not computed at all ("dual sparsity"); the contract reports them as ``+0`` (the
``need`` mask).  The neuron recursion (δU) lives in :mod:`.neuron`.
"""
from __future__ import annotations

import numpy as np
import torch

from . import fp16 as F
from .forward import _lane_groups, _mac_accumulate, _to_half

__all__ = ["fc_backward", "conv2d_backward", "maxpool_backward", "readout_backward", "apply_need"]


def apply_need(ds: torch.Tensor, need: torch.Tensor | None) -> torch.Tensor:
    """``+0`` where the layer below does not need the value (its surrogate is zero)."""
    return ds if need is None else torch.where(need, ds, F.zeros(()))


def fc_backward(weight: torch.Tensor, di: torch.Tensor, need: torch.Tensor | None = None,
                lanes: int | None = None) -> torch.Tensor:
    """``δS_below [R, I] = Wᵀ · δI`` for ``weight [J, I]``, ``di [R, J]`` (binary16)."""
    rows = di.shape[0]
    out = F.zeros(rows, weight.shape[1])
    d64 = di.numpy().astype(np.float64)
    nz = d64 != 0
    for group in _lane_groups(weight.shape[1], lanes):
        w64 = weight[:, group].numpy().astype(np.float64)
        acc64 = np.zeros((rows, w64.shape[1]))
        for j in np.flatnonzero(nz.any(0)):
            acc64 = _mac_accumulate(acc64, w64[None, j, :], d64[:, j:j + 1], nz[:, j:j + 1])
        out[:, group] = _to_half(acc64)
    return apply_need(out, need)


def conv2d_backward(weight: torch.Tensor, di: torch.Tensor, in_shape, stride: int = 1, padding: int = 0,
                    need: torch.Tensor | None = None, lanes: int | None = None) -> torch.Tensor:
    """Transposed convolution: ``di [R, Co, Ho, Wo]`` → ``δS_below [R, C, H, W]``.

    Per input neuron ``(c, iy, ix)`` the contributions arrive in ascending flat output index
    ``(co, y, x)``: ``co`` ascending, then ``ky`` descending, then ``kx`` descending (for a
    fixed input, ``y`` grows as ``ky`` shrinks).  Padding outputs do not exist.
    """
    rows, out_ch, ho, wo = di.shape
    chans, height, width = in_shape
    k = weight.shape[-1]
    d64 = di.numpy().astype(np.float64)
    out = F.zeros(rows, chans, height, width)
    for group in _lane_groups(chans, lanes):
        w64 = weight[:, group].numpy().astype(np.float64)
        n_in = w64.shape[1]
        acc64 = np.zeros((rows, n_in, height, width))
        for co in range(out_ch):
            d = d64[:, co]
            if not (d != 0).any():
                continue
            for ky in range(k - 1, -1, -1):
                y0 = max(0, -(-(padding - ky) // stride))
                y1 = min(ho - 1, (height - 1 + padding - ky) // stride)
                if y0 > y1:
                    continue
                iy0 = y0 * stride + ky - padding
                sy = slice(iy0, iy0 + (y1 - y0) * stride + 1, stride)
                for kx in range(k - 1, -1, -1):
                    x0 = max(0, -(-(padding - kx) // stride))
                    x1 = min(wo - 1, (width - 1 + padding - kx) // stride)
                    if x0 > x1:
                        continue
                    ix0 = x0 * stride + kx - padding
                    sx = slice(ix0, ix0 + (x1 - x0) * stride + 1, stride)
                    dd = d[:, None, y0:y1 + 1, x0:x1 + 1]
                    mask = dd != 0
                    if not mask.any():
                        continue
                    acc64[:, :, sy, sx] = _mac_accumulate(acc64[:, :, sy, sx],
                                                          w64[co, :, ky, kx][None, :, None, None], dd, mask)
        out[:, group] = _to_half(acc64)
    return apply_need(out, need)


def maxpool_backward(ds_pooled: torch.Tensor, first: torch.Tensor, kernel: int, in_shape) -> torch.Tensor:
    """Route each pooled gradient to the input that won the window (no arithmetic)."""
    rows, chans, ho, wo = ds_pooled.shape
    _, height, width = in_shape
    onehot = torch.nn.functional.one_hot(first, kernel * kernel).bool()          # [R, C, ho, wo, K²]
    vals = torch.where(onehot, ds_pooled[..., None], F.zeros(()))
    vals = vals.reshape(rows, chans, ho, wo, kernel, kernel).permute(0, 1, 2, 4, 3, 5)
    out = F.zeros(rows, chans, height, width)
    out[:, :, :ho * kernel, :wo * kernel] = vals.reshape(rows, chans, ho * kernel, wo * kernel)
    return out


def readout_backward(weight: torch.Tensor, grad_logits: torch.Tensor, inv_steps: torch.Tensor,
                     steps: int, need: torch.Tensor | None = None, lanes: int | None = None):
    """Readout BP.  ``grad_logits [N, C]`` is the host's (scaled) binary16 loss gradient.

    ``δO = RNE(G · inv_T)`` is the gradient of every step's current (the same for all ``t``);
    ``δS [T, N, F]`` is the transposed product of ``δO`` (computed once per sample — the
    contract's per-step result is identical for every step) with the ``need`` mask applied.
    Returns ``(δO [N, C], δS [T, N, F])``.
    """
    d_out = F.mul(grad_logits, inv_steps.expand_as(grad_logits))
    ds = fc_backward(weight, d_out, None, lanes)
    ds = ds.unsqueeze(0).expand(steps, *ds.shape).clone()
    return d_out, apply_need(ds, need)
