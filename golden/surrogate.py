"""Surrogate gradients for the Heaviside spike, behind a registry.

The forward pass of a spiking neuron is always the Heaviside step
``Θ(x) = 1 if x >= 0 else 0``.  The backward pass replaces its derivative (a Dirac
delta) with a smooth or piecewise surrogate ``h(x)``, the derivative of a
*primitive* function that approaches the step.  Each surrogate here exposes both,
so tests can check ``derivative`` against finite differences of ``primitive``.

The rectangular and triangle surrogates are exactly zero outside a window: that
zero is the sparsity the back-propagation engine exploits (ALGORITHMS.md §2–3).

Registry
--------
``register`` adds a class under a name; ``get(name, **params)`` builds one and
raises ``ValueError`` naming the valid choices for an unknown name.
``names()`` lists the registered names.
"""
from __future__ import annotations

import math

import torch

__all__ = ["Surrogate", "Sigmoid", "ATan", "Rectangular", "Triangle", "register", "get", "names",
           "spike"]

_REGISTRY: dict[str, type["Surrogate"]] = {}


def register(name: str):
    """Class decorator: make a :class:`Surrogate` subclass available as ``get(name)``."""
    def decorate(cls):
        if name in _REGISTRY:
            raise ValueError(f"surrogate {name!r} is already registered")
        cls.name = name
        _REGISTRY[name] = cls
        return cls
    return decorate


def names() -> list[str]:
    """Registered surrogate names, sorted."""
    return sorted(_REGISTRY)


def get(name: str | "Surrogate", **params) -> "Surrogate":
    """Build the surrogate registered as ``name`` (an instance is returned unchanged)."""
    if isinstance(name, Surrogate):
        return name
    try:
        cls = _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown surrogate {name!r}; valid choices: {', '.join(names())}") from None
    return cls(**params)


class Surrogate:
    """A surrogate gradient ``h(x)`` for the spike ``Θ(x)``.

    Members
    -------
    alpha : float
        Sharpness: larger means closer to the true step (narrower, taller ``h``).
    name : str
        The registry name (set by :func:`register`).
    primitive(x)
        The smooth function whose derivative is the surrogate.
    derivative(x)
        ``h(x)``, used in the backward pass.
    """

    name = "?"
    default_alpha = 1.0

    def __init__(self, alpha: float | None = None):
        self.alpha = float(self.default_alpha if alpha is None else alpha)
        if not self.alpha > 0:
            raise ValueError(f"surrogate {self.name!r}: alpha must be > 0, got {self.alpha}")

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return spike(x, self)

    def __repr__(self):
        return f"{type(self).__name__}(alpha={self.alpha})"

    def __eq__(self, other):
        return type(self) is type(other) and self.alpha == other.alpha

    def __hash__(self):
        return hash((type(self), self.alpha))


@register("sigmoid")
class Sigmoid(Surrogate):
    """``primitive = σ(αx)``, ``h = α σ(αx)(1 − σ(αx))``; SpikingJelly's default (α = 4)."""

    default_alpha = 4.0

    def primitive(self, x):
        return torch.sigmoid(self.alpha * x)

    def derivative(self, x):
        sg = torch.sigmoid(self.alpha * x)
        return self.alpha * sg * (1 - sg)


@register("atan")
class ATan(Surrogate):
    """``primitive = atan(π α x / 2)/π + 1/2``, ``h = (α/2) / (1 + (π α x / 2)²)`` (α = 2)."""

    default_alpha = 2.0

    def primitive(self, x):
        return torch.atan(math.pi / 2 * self.alpha * x) / math.pi + 0.5

    def derivative(self, x):
        return self.alpha / 2 / (1 + (math.pi / 2 * self.alpha * x) ** 2)


@register("rectangular")
class Rectangular(Surrogate):
    """``h = α`` on ``|x| < 1/(2α)``, zero elsewhere; ``primitive = clamp(αx + 1/2, 0, 1)``.

    With window width ``a = 1/α`` this is ALGORITHMS.md's ``h = 1/a on |x| < a/2``.
    """

    def primitive(self, x):
        return torch.clamp(self.alpha * x + 0.5, 0.0, 1.0)

    def derivative(self, x):
        return (x.abs() < 0.5 / self.alpha).to(x.dtype) * self.alpha


@register("triangle")
class Triangle(Surrogate):
    """``h = α − α²|x|`` on ``|x| < 1/α``, zero elsewhere (SpikingJelly's PiecewiseQuadratic).

    The primitive is piecewise quadratic: 0 below ``−1/α``, ``α²x²/2 + αx + 1/2`` up to 0,
    ``−α²x²/2 + αx + 1/2`` up to ``1/α``, and 1 above.
    """

    def primitive(self, x):
        a = self.alpha
        inside = torch.where(x <= 0, a * a * x * x / 2 + a * x + 0.5, -a * a * x * x / 2 + a * x + 0.5)
        return torch.where(x < -1 / a, torch.zeros_like(x), torch.where(x > 1 / a, torch.ones_like(x), inside))

    def derivative(self, x):
        return torch.clamp(self.alpha - self.alpha ** 2 * x.abs(), min=0.0)


class _Spike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, surrogate):
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * ctx.surrogate.derivative(x), None


def spike(x: torch.Tensor, surrogate: Surrogate) -> torch.Tensor:
    """Heaviside ``Θ(x)`` forward (1 where ``x >= 0``), ``surrogate.derivative`` backward."""
    return _Spike.apply(x, surrogate)
