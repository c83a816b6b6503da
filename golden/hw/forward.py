"""FP engine kernels: event-driven accumulation of input currents (docs/numerics.md §2).

Every output neuron ``j`` (a *lane*) owns one binary16 accumulator that starts at ``+0`` and
receives its inputs **sequentially, in ascending input index, active inputs only**:

- spike mode (binary inputs):  ``acc ← RNE(acc + W[j, i])`` for every ``i`` with ``s[i] = 1``;
- MAC mode (analog inputs, the first layer under direct encoding):
  ``acc ← fma(W[j, i], x[i], acc)`` for every ``i`` with ``x[i] ≠ 0``.

Lanes never interact, so the result does not depend on how many lanes run in parallel (the
``lanes`` argument splits the outputs into groups to show it).  The kernels vectorise over the
rows (time steps × samples) and lanes with masks and loop only over the input index, the
order the contract fixes.  A masked-out input leaves the accumulator untouched, which is the
contract's definition of *skipping*.

Rows are the leading dimension ``R`` (time and batch folded, ``R = T·N``).
"""
from __future__ import annotations

import numpy as np
import torch

from . import fp16 as F

__all__ = ["fc_forward", "conv2d_forward", "conv_output_size", "maxpool_forward",
           "readout_forward", "dedup_steps", "host_input"]


def _lane_groups(count: int, lanes: int | None):
    lanes = count if not lanes else int(lanes)
    return [slice(a, min(a + lanes, count)) for a in range(0, count, lanes)]


def _mac_accumulate(acc64: np.ndarray, w64: np.ndarray, x64: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """One MAC step on float64 copies of binary16 values: ``fma`` where ``mask``, else keep."""
    with np.errstate(invalid="ignore", over="ignore"):
        new = (w64 * x64 + acc64).astype(np.float16).astype(np.float64)
    return np.where(mask, new, acc64)


def _to_half(a64: np.ndarray) -> torch.Tensor:
    return F.canon(torch.from_numpy(np.ascontiguousarray(a64.astype(np.float16))))


def _spike_accumulate(w: torch.Tensor, spikes: torch.Tensor) -> torch.Tensor:
    """Spike mode for ``w [J, I]`` and ``spikes [R, I]``: ``acc ← RNE(acc + W[:, i])`` on active rows.

    The accumulator is never −0 (it starts at +0 and a sum of two binary16 values is −0 only
    when both are −0), so adding ``s·W = ±0`` for an inactive input changes nothing: with
    finite weights the masked update equals the dense one, which is what runs here.
    """
    rows = spikes.shape[0]
    acc = F.zeros(rows, w.shape[0])
    cols = spikes.any(0).nonzero().flatten().tolist()
    if bool(torch.isfinite(w).all()):
        s16 = spikes.to(F.HALF)
        for i in cols:
            acc = acc + s16[:, i:i + 1] * w[None, :, i]
    else:   # inf·0 would be NaN: select instead
        for i in cols:
            acc = torch.where(spikes[:, i:i + 1], acc + w[None, :, i], acc)
    return F.canon(acc)


def fc_forward(weight: torch.Tensor, inputs: torch.Tensor, lanes: int | None = None) -> torch.Tensor:
    """Fully connected FP: ``weight [J, I]`` (binary16), ``inputs [R, I]`` → currents ``[R, J]``.

    Boolean ``inputs`` select spike mode; binary16 ``inputs`` select MAC mode.
    """
    rows, width = inputs.shape
    out = F.zeros(rows, weight.shape[0])
    for group in _lane_groups(weight.shape[0], lanes):
        w = weight[group]
        if inputs.dtype == torch.bool:
            acc = _spike_accumulate(w, inputs)
        else:
            if inputs.dtype != F.HALF:
                raise TypeError(f"FP inputs must be bool spikes or binary16 values, got {inputs.dtype}")
            x64 = inputs.numpy().astype(np.float64)
            w64 = w.numpy().astype(np.float64)
            acc64 = np.zeros((rows, w.shape[0]))
            nz = x64 != 0
            for i in np.flatnonzero(nz.any(0)):
                acc64 = _mac_accumulate(acc64, w64[None, :, i], x64[:, i:i + 1], nz[:, i:i + 1])
            acc = _to_half(acc64)
        out[:, group] = acc
    return out


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def conv2d_forward(weight: torch.Tensor, inputs: torch.Tensor, stride: int = 1, padding: int = 0,
                   lanes: int | None = None) -> torch.Tensor:
    """2D convolution FP: ``weight [Co, C, K, K]``, ``inputs [R, C, H, W]`` → ``[R, Co, Ho, Wo]``.

    Each active input scatters its kernel footprint.  Per output neuron ``(co, y, x)`` the
    inputs of its receptive field arrive in ascending flat input index ``(c, iy, ix)``, which
    is ascending ``(c, ky, kx)``; padding positions are absent inputs (never accumulated).
    The golden loops over ``(c, ky, kx)`` and vectorises over rows and output positions.
    """
    rows, chans, height, width = inputs.shape
    out_ch, _, k, _ = weight.shape
    ho, wo = (conv_output_size(height, k, stride, padding), conv_output_size(width, k, stride, padding))
    spikes = inputs.dtype == torch.bool
    if not spikes and inputs.dtype != F.HALF:
        raise TypeError(f"FP inputs must be bool spikes or binary16 values, got {inputs.dtype}")
    pad = torch.nn.functional.pad
    if spikes:
        xp = pad(inputs, (padding,) * 4, value=False)
    else:
        xp = pad(inputs.double(), (padding,) * 4).numpy()
    span_y, span_x = stride * (ho - 1) + 1, stride * (wo - 1) + 1
    out = F.zeros(rows, out_ch, ho, wo)
    for group in _lane_groups(out_ch, lanes):
        w = weight[group]
        n_out = w.shape[0]
        if spikes:
            acc = F.zeros(rows, n_out, ho, wo)
        else:
            acc64 = np.zeros((rows, n_out, ho, wo))
            w64 = w.numpy().astype(np.float64)
        for c in range(chans):
            for ky in range(k):
                for kx in range(k):
                    window = xp[:, c, ky:ky + span_y:stride, kx:kx + span_x:stride]
                    if spikes:
                        if not bool(window.any()):
                            continue
                        acc = torch.where(window[:, None], F.add(acc, w[:, c, ky, kx].reshape(1, -1, 1, 1)
                                                                 .expand_as(acc)), acc)
                    else:
                        nz = window != 0
                        if not nz.any():
                            continue
                        acc64 = _mac_accumulate(acc64, w64[None, :, c, ky, kx, None, None],
                                                window[:, None], nz[:, None])
        out[:, group] = acc if spikes else _to_half(acc64)
    return out


def maxpool_forward(spikes: torch.Tensor, kernel: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Max pooling of spikes ``[R, C, H, W]`` (kernel = stride, no padding): an OR per window.

    Also returns, per pooled output, the index ``0 … K²−1`` (raster order in the window) of the
    first active input, or 0 when none is active — where BP routes the gradient (the same
    choice as PyTorch's ``max_pool2d``).
    """
    rows, chans, height, width = spikes.shape
    ho, wo = height // kernel, width // kernel
    win = (spikes[:, :, :ho * kernel, :wo * kernel]
           .reshape(rows, chans, ho, kernel, wo, kernel).permute(0, 1, 2, 4, 3, 5)
           .reshape(rows, chans, ho, wo, kernel * kernel))
    pooled = win.any(-1)
    first = torch.argmax(win.to(torch.uint8), dim=-1)     # first maximum; 0 when none
    return pooled, first


def dedup_steps(x_seq: torch.Tensor) -> bool:
    """True when every step of ``[T, N, …]`` equals step 0 (direct encoding repeats the input)."""
    return all(torch.equal(x_seq[t], x_seq[0]) for t in range(1, x_seq.shape[0]))


def host_input(x_seq: torch.Tensor, spikes: bool) -> torch.Tensor:
    """The network input as the host sends it: binary16 (rounded), or with ``spikes`` bool
    spikes — then every value must be 0 or 1 (``ValueError`` names the first that is not)."""
    if not spikes:
        return F.round16(x_seq.double())
    if x_seq.dtype == torch.bool:
        return x_seq
    bad = (x_seq != 0) & (x_seq != 1)
    if bool(bad.any()):
        where = tuple(int(i) for i in bad.nonzero()[0])
        raise ValueError(f"spike input: every value must be 0 or 1, got {float(x_seq[where])} at "
                         f"[T, N, …] index {where}; binarize the frames (count > 0), or use a "
                         f"network built with spike_input=False (binary16 input)")
    return x_seq != 0


def readout_forward(weight: torch.Tensor, spikes: torch.Tensor, inv_steps: torch.Tensor,
                    lanes: int | None = None):
    """Readout FP: ``spikes [T, N, F]`` (bool) → ``(currents [T, N, C], V [N, C], logits [N, C])``.

    ``I[t]`` is the spike-mode accumulation; the integrator ``V ← RNE(V + I[t])`` runs t
    ascending from ``+0``; ``logits = RNE(V · inv_T)`` with ``inv_T = RNE(1/T)``.
    """
    steps, batch, feat = spikes.shape
    cur = fc_forward(weight, spikes.reshape(steps * batch, feat), lanes).reshape(steps, batch, -1)
    v = F.zeros(batch, weight.shape[0])
    for t in range(steps):
        v = F.add(v, cur[t])
    return cur, v, F.mul(v, inv_steps.expand_as(v))
