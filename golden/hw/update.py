"""The SGD update unit, in place, binary16 (docs/numerics.md §6).

With the loss scaled by ``S = 2^s`` on the host, the gradient ``g`` the WG engine hands over
is ``S · ∂L/∂W`` (binary16).  The update removes the scale inside one fused operation:

- plain:     ``W ← RNE(W − lr · g · 2^−s)``                       (one rounding)
- momentum:  ``m ← fma(μ, m, g)`` (binary16 buffer, scaled units);
             ``W ← RNE(W − lr · m · 2^−s)``

``lr = RNE(lr)`` and ``μ = RNE(μ)`` are binary16 registers, ``s`` a small integer register.
Every weight is updated (no skipping), so signed zeros follow IEEE rules.
This is PyTorch's SGD (dampening 0, no Nesterov, no weight decay): its first step
``m = g`` equals ``fma(μ, +0, g)``.
"""
from __future__ import annotations

import torch

from . import fp16 as F

__all__ = ["sgd_update"]


def sgd_update(weight: torch.Tensor, grad: torch.Tensor, lr: torch.Tensor, shift: int,
               momentum: torch.Tensor | None = None, buf: torch.Tensor | None = None):
    """Return ``(new_weight, new_buf)`` (``new_buf`` is None without momentum)."""
    if momentum is not None:
        if buf is None:
            buf = F.zeros(weight.shape)
        buf = F.fma(momentum.expand_as(buf), buf, grad)
        step = buf
    else:
        step = grad
    return F.fma_scaled(lr.expand_as(step), step, weight, shift), buf
