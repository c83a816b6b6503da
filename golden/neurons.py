"""Multi-step spiking neurons: IF, LIF and KLIF, with SpikingJelly's semantics.

Every neuron takes a whole sequence ``x_seq`` of shape ``[T, N, ...]`` (time first, as
SpikingJelly's multi-step mode) and returns the spikes ``[T, N, ...]``.  Within a step,
charge, fire and reset happen in that order (ALGORITHMS.md §1):

- charge  IF:  ``H = V + X``
          LIF, ``decay_input=True``:  ``H = V + (X − (V − V_reset)) / τ``
          LIF, ``decay_input=False``: ``H = V − (V − V_reset) / τ + X``
          (with soft reset, ``V_reset`` reads 0 in the charge, as in SpikingJelly)
- KLIF:   ``Z = ReLU(k · H)`` with a learnable scalar ``k``; otherwise ``Z = H``
- fire:   ``S = Θ(Z − V_th)``
- reset:  hard ``V = Z (1 − S) + V_reset S``; soft ``V = Z − V_th S``

The neuron holds no state between calls: each call starts from ``V = V_reset`` (0 for soft
reset).  A model therefore cannot carry membrane potential from one batch into the next by
forgetting a ``reset()``.

Two execution paths compute the same function:

- ``fused=True`` (default): one autograd function over the whole sequence.  The forward
  loop runs without building a graph and keeps only ``H`` per step; the backward pass runs
  the BPTT recursion by hand.  This is what makes CPU training fast and light.
- ``fused=False``: plain per-step PyTorch operations with autograd, equivalent to
  SpikingJelly's ``torch`` backend; the reference the fused path is tested against.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
from torch import nn

from . import surrogate as surrogates

__all__ = ["NeuronConfig", "NeuronTrace", "MultiStepNeuron", "IFNode", "LIFNode", "KLIFNode",
           "make_neuron", "NEURON_KINDS"]

NEURON_KINDS = ("if", "lif", "klif")


@dataclass(frozen=True)
class NeuronConfig:
    """Everything that defines a neuron's dynamics (shared with the hardware-exact kernels).

    Members
    -------
    kind : str
        ``"if"``, ``"lif"`` or ``"klif"``.
    tau : float
        Membrane time constant (LIF, KLIF); must be > 1.
    decay_input : bool
        Whether the input is divided by ``tau`` too (LIF, KLIF).
    v_threshold : float
        Firing threshold ``V_th``.
    v_reset : float or None
        Reset potential for hard reset; ``None`` selects soft reset (subtract ``V_th``).
    detach_reset : bool
        Cut the gradient through the reset path (default False, as SpikingJelly).
    surrogate : str
        Name of the surrogate gradient (see :mod:`trident.golden.surrogate`).
    surrogate_alpha : float or None
        Surrogate sharpness; ``None`` takes the surrogate's default.
    k_init : float
        Initial KLIF scale ``k``.
    """

    kind: str = "lif"
    tau: float = 2.0
    decay_input: bool = True
    v_threshold: float = 1.0
    v_reset: float | None = 0.0
    detach_reset: bool = False
    surrogate: str = "sigmoid"
    surrogate_alpha: float | None = None
    k_init: float = 1.0

    def __post_init__(self):
        if self.kind not in NEURON_KINDS:
            raise ValueError(f"unknown neuron {self.kind!r}; valid choices: {', '.join(NEURON_KINDS)}")
        if self.kind != "if" and not self.tau > 1:
            raise ValueError(f"tau must be > 1 for a leaky neuron, got {self.tau}")
        surrogates.get(self.surrogate, alpha=self.surrogate_alpha)  # validates the name early

    @property
    def soft_reset(self) -> bool:
        return self.v_reset is None

    @property
    def v_rest(self) -> float:
        """The potential a neuron starts from and leaks towards."""
        return 0.0 if self.v_reset is None else self.v_reset

    def make_surrogate(self) -> surrogates.Surrogate:
        return surrogates.get(self.surrogate, alpha=self.surrogate_alpha)

    def as_dict(self) -> dict:
        return asdict(self)


class NeuronTrace(NamedTuple):
    """Per-step internals of one run: spikes ``s``, charged potential ``h``, potential after
    reset ``v`` (each ``[T, N, ...]``)."""

    s: torch.Tensor
    h: torch.Tensor
    v: torch.Tensor


def _charge(cfg: NeuronConfig, v, x):
    if cfg.kind == "if":
        return v + x
    if cfg.decay_input:
        return v + (x - (v - cfg.v_rest)) / cfg.tau
    return v - (v - cfg.v_rest) / cfg.tau + x


def _reset(cfg: NeuronConfig, z, s):
    if cfg.soft_reset:
        return z - cfg.v_threshold * s
    return z * (1.0 - s) + cfg.v_reset * s


def _scale(cfg: NeuronConfig, h, k):
    return torch.relu(k * h) if cfg.kind == "klif" else h


def _forward_loop(x_seq, k, cfg: NeuronConfig):
    v = torch.full_like(x_seq[0], cfg.v_rest)
    h_seq = torch.empty_like(x_seq)
    s_seq = torch.empty_like(x_seq)
    for t in range(x_seq.shape[0]):
        h = _charge(cfg, v, x_seq[t])
        z = _scale(cfg, h, k)
        s = (z - cfg.v_threshold >= 0).to(x_seq.dtype)
        v = _reset(cfg, z, s)
        h_seq[t] = h
        s_seq[t] = s
    return s_seq, h_seq


class _FusedMultiStep(torch.autograd.Function):
    """The whole ``[T, ...]`` sequence as one autograd node; backward is BPTT by hand."""

    @staticmethod
    def forward(ctx, x_seq, k, cfg: NeuronConfig, surrogate):
        from . import kernels  # C++ kernels (built on first use); the PyTorch loop otherwise
        ctx.cpp = kernels.neuron_supported(x_seq, k, cfg, surrogate)
        s_seq, h_seq = kernels.neuron_forward(x_seq, k, cfg) if ctx.cpp else _forward_loop(x_seq, k, cfg)
        ctx.save_for_backward(h_seq, k)
        ctx.cfg, ctx.surrogate = cfg, surrogate
        return s_seq

    @staticmethod
    def backward(ctx, grad_s):
        h_seq, k = ctx.saved_tensors
        cfg, sg = ctx.cfg, ctx.surrogate
        klif = cfg.kind == "klif"
        # C++ kernel unless a differentiable backward is asked for (create_graph=True)
        if ctx.cpp and not torch.is_grad_enabled() and grad_s.device.type == "cpu":
            from . import kernels
            grad_x, grad_k = kernels.neuron_backward(grad_s, h_seq, k, cfg, sg)
            return grad_x, (grad_k.reshape(k.shape) if klif and ctx.needs_input_grad[1] else None), None, None
        leak = 1.0 if cfg.kind == "if" else 1.0 - 1.0 / cfg.tau
        input_gain = 1.0 / cfg.tau if cfg.kind != "if" and cfg.decay_input else 1.0
        grad_x = torch.empty_like(grad_s)
        grad_k = torch.zeros((), dtype=grad_s.dtype)
        grad_v = torch.zeros_like(grad_s[0])
        for t in range(grad_s.shape[0] - 1, -1, -1):
            h = h_seq[t]
            if klif:
                positive = (k * h > 0).to(h.dtype)
                z = k * h * positive
            else:
                z = h
            s = (z - cfg.v_threshold >= 0).to(h.dtype)
            grad_spike = grad_s[t]
            if not cfg.detach_reset:
                dv_ds = -cfg.v_threshold if cfg.soft_reset else cfg.v_reset - z
                grad_spike = grad_spike + grad_v * dv_ds
            dv_dz = 1.0 if cfg.soft_reset else 1.0 - s
            grad_z = grad_spike * sg.derivative(z - cfg.v_threshold) + grad_v * dv_dz
            if klif:
                grad_k = grad_k + (grad_z * h * positive).sum()
                grad_h = grad_z * k * positive
            else:
                grad_h = grad_z
            grad_x[t] = grad_h * input_gain
            grad_v = grad_h * leak
        return grad_x, (grad_k.reshape(k.shape) if klif and ctx.needs_input_grad[1] else None), None, None


class MultiStepNeuron(nn.Module):
    """Base of the multi-step neurons; see the module docstring for the dynamics.

    Members
    -------
    config : NeuronConfig
        The dynamics.
    surrogate_function : Surrogate
        The surrogate gradient used in the backward pass.
    fused : bool
        Use the fused whole-sequence autograd function (True) or per-step autograd (False).
    k : torch.nn.Parameter
        KLIF only: the learnable scale.
    """

    def __init__(self, config: NeuronConfig, fused: bool = True):
        super().__init__()
        self.config = config
        self.surrogate_function = config.make_surrogate()
        self.fused = fused
        if config.kind == "klif":
            self.k = nn.Parameter(torch.tensor(float(config.k_init)))
        else:
            self.register_buffer("k", torch.tensor(1.0), persistent=False)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        if x_seq.dim() < 2:
            raise ValueError(f"{type(self).__name__} expects a sequence [T, N, ...], got shape "
                             f"{tuple(x_seq.shape)}")
        if self.fused:
            return _FusedMultiStep.apply(x_seq, self.k, self.config, self.surrogate_function)
        return self._stepwise(x_seq).s

    def trace(self, x_seq: torch.Tensor) -> NeuronTrace:
        """Run the sequence and return spikes, charged and reset potentials per step."""
        return self._stepwise(x_seq)

    def _stepwise(self, x_seq):
        cfg = self.config
        v = torch.full_like(x_seq[0], cfg.v_rest)
        s_seq, h_seq, v_seq = [], [], []
        # unbind: its backward is one stack (indexing x_seq[t] would add T full-size
        # gradient tensors, a quadratic cost in T)
        for x in x_seq.unbind(0):
            h = _charge(cfg, v, x)
            z = _scale(cfg, h, self.k)
            s = surrogates.spike(z - cfg.v_threshold, self.surrogate_function)
            v = _reset(cfg, z, s.detach() if cfg.detach_reset else s)
            s_seq.append(s)
            h_seq.append(h)
            v_seq.append(v)
        return NeuronTrace(torch.stack(s_seq), torch.stack(h_seq), torch.stack(v_seq))

    def extra_repr(self):
        fields = ", ".join(f"{k}={v}" for k, v in self.config.as_dict().items())
        return f"{fields}, fused={self.fused}"


def _config(kind, surrogate_function, **fields) -> NeuronConfig:
    if isinstance(surrogate_function, surrogates.Surrogate):
        fields.update(surrogate=surrogate_function.name, surrogate_alpha=surrogate_function.alpha)
    else:
        fields.update(surrogate=surrogate_function)
    return NeuronConfig(kind=kind, **fields)


class IFNode(MultiStepNeuron):
    """Integrate-and-fire neuron (SpikingJelly ``IFNode`` arguments)."""

    def __init__(self, v_threshold=1.0, v_reset=0.0, surrogate_function="sigmoid",
                 detach_reset=False, fused=True):
        super().__init__(_config("if", surrogate_function, v_threshold=v_threshold,
                                 v_reset=v_reset, detach_reset=detach_reset), fused)


class LIFNode(MultiStepNeuron):
    """Leaky integrate-and-fire neuron (SpikingJelly ``LIFNode`` arguments)."""

    def __init__(self, tau=2.0, decay_input=True, v_threshold=1.0, v_reset=0.0,
                 surrogate_function="sigmoid", detach_reset=False, fused=True):
        super().__init__(_config("lif", surrogate_function, tau=tau, decay_input=decay_input,
                                 v_threshold=v_threshold, v_reset=v_reset,
                                 detach_reset=detach_reset), fused)


class KLIFNode(MultiStepNeuron):
    """LIF charge, then ``ReLU(k·H)`` with a learnable per-layer scalar ``k`` (KLIF)."""

    def __init__(self, tau=2.0, decay_input=True, v_threshold=1.0, v_reset=0.0,
                 surrogate_function="sigmoid", detach_reset=False, k_init=1.0, fused=True):
        super().__init__(_config("klif", surrogate_function, tau=tau, decay_input=decay_input,
                                 v_threshold=v_threshold, v_reset=v_reset,
                                 detach_reset=detach_reset, k_init=k_init), fused)


def make_neuron(config: NeuronConfig, fused: bool = True) -> MultiStepNeuron:
    """Build the neuron module a :class:`NeuronConfig` describes."""
    return MultiStepNeuron(config, fused)
