"""Encoders that turn a static input ``x [N, ...]`` in [0, 1] into a sequence ``[T, N, ...]``.

Time comes first, as in SpikingJelly's multi-step mode, so the result feeds a multi-step
network directly. All encoders share one signature, ``encoder(x, T, *, generator=None)``,
so the trainer can pick one by name (:func:`get_encoder`) and call it per batch:

``direct``
    The analog value at every step (the first layer then multiplies and accumulates; the
    input is not spikes).
``rate``
    Bernoulli spikes with probability ``x`` at every step, independently. It needs an
    explicit :class:`torch.Generator` so that a run can be reproduced.
``latency``
    Time-to-first-spike: one spike per input at step ``round((1 - x) * (T - 1))``; brighter
    inputs fire earlier (x = 1 at step 0), and x = 0 never fires.

Spike outputs have the dtype of ``x`` when it is floating point (float32 otherwise), with
values 0.0 and 1.0.
"""
from __future__ import annotations

from typing import Callable

import torch

__all__ = ["direct", "rate", "latency", "ENCODERS", "SPIKE_ENCODERS", "get_encoder", "encode"]


def _check_T(T: int) -> int:
    if int(T) != T or T < 1:
        raise ValueError(f"T must be a positive integer, got {T!r}")
    return int(T)


def _check_unit_range(x: torch.Tensor, name: str) -> None:
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError(f"{name} encoding needs inputs in [0, 1], got values in "
                         f"[{x.min().item():g}, {x.max().item():g}]")


def _float(x: torch.Tensor) -> torch.dtype:
    return x.dtype if x.is_floating_point() else torch.float32


def direct(x: torch.Tensor, T: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Repeat the analog input at every time step.

    Parameters
    ----------
    x : torch.Tensor
        Input ``[N, ...]``.
    T : int
        Number of time steps.
    generator : torch.Generator, optional
        Ignored; accepted so that all encoders share one signature.

    Returns
    -------
    torch.Tensor
        ``[T, N, ...]``, a contiguous copy (safe to modify in place).
    """
    T = _check_T(T)
    return x.unsqueeze(0).repeat(T, *([1] * x.dim()))


def rate(x: torch.Tensor, T: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Bernoulli (rate) encoding: at each step an input spikes with probability ``x``.

    Parameters
    ----------
    x : torch.Tensor
        Firing probabilities ``[N, ...]`` in [0, 1].
    T : int
        Number of time steps.
    generator : torch.Generator
        Required, on the device of ``x``: the only source of randomness, so the same
        generator state gives the same spikes.

    Returns
    -------
    torch.Tensor
        ``[T, N, ...]`` of 0.0/1.0; spike ``[t, i]`` is ``u < x[i]`` with ``u`` uniform in
        [0, 1), drawn in one call of shape ``[T, *x.shape]``.

    Raises
    ------
    ValueError
        If no generator is given or ``x`` leaves [0, 1].
    """
    T = _check_T(T)
    if generator is None:
        raise ValueError("rate encoding needs an explicit torch.Generator for reproducible "
                         "runs, e.g. generator=torch.Generator().manual_seed(0)")
    _check_unit_range(x, "rate")
    dtype = _float(x)
    u = torch.rand((T, *x.shape), generator=generator, device=x.device, dtype=dtype)
    return (u < x.to(dtype)).to(dtype)


def latency(x: torch.Tensor, T: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Latency (time-to-first-spike) encoding: at most one spike per input.

    Input ``x > 0`` spikes once, at step ``k = round((1 - x) * (T - 1))`` (``torch.round``:
    halves go to the even step, e.g. x = 0.5, T = 4 gives 1.5 -> step 2); ``x == 0`` never
    spikes. So x = 1 fires at step 0 and the smallest inputs at step ``T - 1``.

    Parameters
    ----------
    x : torch.Tensor
        Input ``[N, ...]`` in [0, 1].
    T : int
        Number of time steps.
    generator : torch.Generator, optional
        Ignored (the encoding is deterministic).

    Returns
    -------
    torch.Tensor
        ``[T, N, ...]`` of 0.0/1.0.
    """
    T = _check_T(T)
    _check_unit_range(x, "latency")
    dtype = _float(x)
    # Computed in float64 so that the step of an input does not depend on its dtype.
    step = torch.round((1.0 - x.to(torch.float64)) * (T - 1)).to(torch.long)
    steps = torch.arange(T, device=x.device).view(T, *([1] * x.dim()))
    return ((steps == step.unsqueeze(0)) & (x > 0).unsqueeze(0)).to(dtype)


#: Encoders by name.
ENCODERS: dict[str, Callable[..., torch.Tensor]] = {
    "direct": direct,
    "rate": rate,
    "latency": latency,
}


#: Encoders whose output is spikes (every value 0 or 1).
SPIKE_ENCODERS = ("rate", "latency")


def get_encoder(name: str) -> Callable[..., torch.Tensor]:
    """Look an encoder up by name.

    Parameters
    ----------
    name : str
        One of :data:`ENCODERS` (``"direct"``, ``"rate"``, ``"latency"``).

    Returns
    -------
    callable
        ``encoder(x, T, *, generator=None) -> [T, N, ...]``.

    Raises
    ------
    ValueError
        For an unknown name; the message lists the valid ones.
    """
    try:
        return ENCODERS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown encoding {name!r}; valid: {', '.join(ENCODERS)}") from None


def encode(name: str, x: torch.Tensor, T: int, *,
           generator: torch.Generator | None = None) -> torch.Tensor:
    """Encode ``x`` with the encoder called ``name``; see :func:`get_encoder`."""
    return get_encoder(name)(x, T, generator=generator)
