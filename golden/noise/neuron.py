"""The noisy single-step neuron and its link to the deterministic N-step neuron (ALGORITHMS.md §6).

ALGORITHMS.md §6 is an [abstract] reconstruction; every choice below is a parameter of
:class:`NoiseConfig`, and the defaults marked [ours] are this project's.

Training neuron (T = 1, as the method prescribes; longer sequences are accepted and run the
same rule at every step with soft reset)::

    u = charge(V_rest, X)                         IF: u = X;  LIF: u = X/τ (decay_input)
    s = Θ(u + ε − V_th),  ε ~ N(μ, σ²)            fresh noise per neuron, sample and step
    backward: ∂s/∂u = h(u + ε − V_th)             the registered surrogate h, at the noisy
                                                  potential (``surrogate_at="noisy"``) or at
                                                  the mean one (``"mean"``, u + μ − V_th)

The firing probability for a constant input is therefore ``Φ((u + μ − V_th)/σ)``.

Deterministic N-step neuron (what the weights run as afterwards): IF or LIF with **soft
reset**, starting from the initial potential ``v_init``.  For IF and a constant input X its
firing rate is ``clamp(floor((N·X + v_init)/V_th)/N, 0, 1)``, a staircase around the ramp
``clamp(X/V_th, 0, 1)`` — centred on ``V_th/2`` with slope ``1/V_th``.

Matching the two [ours]: the Gaussian CDF has its centre at ``V_th − μ`` and slope
``1/(σ√(2π))`` there, so

- ``μ = V_th/2`` puts the single-step firing probability's centre on the ramp's centre;
- ``σ = V_th/√(2π) ≈ 0.40 V_th`` matches the slopes;
- ``v_init = V_th/2`` makes the N-step neuron round instead of floor (and at N = 1 it then
  fires exactly where the noiseless training neuron does: ``u ≥ V_th/2``).

``μ = 0`` is the literal formula of §6 (``ε ~ N(0, σ²)``); it centres the probability on
``V_th`` instead, a mismatch of ``V_th/2`` that the report measures.  For LIF the N-step
rate curve has another centre and slope; :func:`calibrate_noise` fits ``μ`` and ``σ`` to it.

Members
-------
NoiseConfig
    Neuron kind, threshold, noise and conversion parameters.
NoisyNeuron
    The training neuron (noise only in training mode unless ``noise_in_eval``).
InitialPotential
    Wraps a deterministic multi-step neuron so that it starts from ``v_init`` instead of rest.
firing_probability(config, u)
    ``Φ((u + μ − V_th)/σ)`` (the step ``Θ(u + μ − V_th)`` when σ = 0).
rate_curve(config, x, steps)
    Firing rate of the deterministic N-step soft-reset neuron for constant inputs ``x``.
calibrate_noise(config, steps)
    Least-squares ``(μ, σ)`` that make ``firing_probability`` follow ``rate_curve``.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import torch
from torch import nn

from .. import surrogate as surrogates
from ..neurons import MultiStepNeuron, NeuronConfig

__all__ = ["NoiseConfig", "NoisyNeuron", "InitialPotential", "firing_probability", "rate_curve",
           "calibrate_noise", "MATCHED_SIGMA"]

#: σ/V_th whose Gaussian CDF has the IF rate ramp's slope at its centre: 1/√(2π).
MATCHED_SIGMA = 1.0 / math.sqrt(2.0 * math.pi)


@dataclass(frozen=True)
class NoiseConfig:
    """Parameters of noise-based single-step training and of the conversion (see module doc).

    Members
    -------
    kind : {"if", "lif"}
    tau, decay_input : LIF charge (as :class:`~trident.golden.neurons.NeuronConfig`).
    v_threshold : float
    sigma : float or None
        Noise standard deviation; None = ``MATCHED_SIGMA · V_th`` [ours]. 0 = no noise.
    noise_mean : float or None
        μ; None = ``V_th/2`` [ours]. 0 is the literal ``ε ~ N(0, σ²)`` of §6.
    v_init : float or None
        Initial potential of the deterministic N-step neuron; None = ``V_th/2`` [ours].
    surrogate, surrogate_alpha : the surrogate gradient through Θ.
    surrogate_at : {"noisy", "mean"}
        Where the surrogate is evaluated: at the noisy potential (default) or without ε.
    noise_in_eval : bool
        Keep sampling noise in eval mode (default False: eval is deterministic).
    """

    kind: str = "if"
    tau: float = 2.0
    decay_input: bool = True
    v_threshold: float = 1.0
    sigma: float | None = None
    noise_mean: float | None = None
    v_init: float | None = None
    surrogate: str = "sigmoid"
    surrogate_alpha: float | None = None
    surrogate_at: str = "noisy"
    noise_in_eval: bool = False

    def __post_init__(self):
        if self.kind not in ("if", "lif"):
            raise ValueError(f"noise training supports 'if' and 'lif' neurons, got {self.kind!r}")
        if self.kind == "lif" and not self.tau > 1:
            raise ValueError(f"tau must be > 1 for a leaky neuron, got {self.tau}")
        if self.sigma is not None and self.sigma < 0:
            raise ValueError(f"sigma must be >= 0, got {self.sigma}")
        if self.surrogate_at not in ("noisy", "mean"):
            raise ValueError(f"surrogate_at must be 'noisy' or 'mean', got {self.surrogate_at!r}")
        surrogates.get(self.surrogate, alpha=self.surrogate_alpha)

    @property
    def sigma_value(self) -> float:
        return MATCHED_SIGMA * self.v_threshold if self.sigma is None else float(self.sigma)

    @property
    def mu(self) -> float:
        return self.v_threshold / 2 if self.noise_mean is None else float(self.noise_mean)

    @property
    def v_init_value(self) -> float:
        return self.v_threshold / 2 if self.v_init is None else float(self.v_init)

    def neuron_config(self) -> NeuronConfig:
        """The deterministic multi-step neuron the weights run as: soft reset, same charge."""
        return NeuronConfig(kind=self.kind, tau=self.tau, decay_input=self.decay_input,
                            v_threshold=self.v_threshold, v_reset=None, surrogate=self.surrogate,
                            surrogate_alpha=self.surrogate_alpha)

    def resolved(self) -> dict:
        """Every parameter with the defaults filled in (for reports)."""
        d = asdict(self)
        d.update(sigma=self.sigma_value, noise_mean=self.mu, v_init=self.v_init_value)
        return d

    def with_(self, **changes) -> "NoiseConfig":
        return replace(self, **changes)


def _charge(cfg: NoiseConfig, v, x):
    if cfg.kind == "if":
        return v + x
    if cfg.decay_input:
        return v + (x - v) / cfg.tau
    return v - v / cfg.tau + x


class NoisyNeuron(nn.Module):
    """Fires on a noisy potential ``Θ(u + ε − V_th)``, ``ε ~ N(μ, σ²)`` (soft reset if T > 1)."""

    def __init__(self, config: NoiseConfig):
        super().__init__()
        self.config = config
        self.surrogate_function = surrogates.get(config.surrogate, alpha=config.surrogate_alpha)

    def forward(self, x_seq: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if x_seq.dim() < 2:
            raise ValueError(f"NoisyNeuron expects a sequence [T, N, ...], got {tuple(x_seq.shape)}")
        cfg = self.config
        sigma, mu = cfg.sigma_value, cfg.mu
        noisy = (self.training or cfg.noise_in_eval) and sigma > 0
        v = torch.zeros_like(x_seq[0])
        out = []
        for t in range(x_seq.shape[0]):
            u = _charge(cfg, v, x_seq[t])
            shift = mu - cfg.v_threshold
            if noisy:
                eps = torch.randn(u.shape, generator=generator, dtype=u.dtype, device=u.device) * sigma
                x = u + (eps + shift).detach()
            else:
                x = u + shift
            if cfg.surrogate_at == "mean" and noisy:
                mean = u + shift
                s = surrogates.spike(mean, self.surrogate_function)
                s = s + ((x >= 0).to(u.dtype) - s).detach()
            else:
                s = surrogates.spike(x, self.surrogate_function)
            out.append(s)
            if t + 1 < x_seq.shape[0]:
                v = u - cfg.v_threshold * s
        return out[0].unsqueeze(0) if len(out) == 1 else torch.stack(out)

    def extra_repr(self):
        return ", ".join(f"{k}={v}" for k, v in self.config.resolved().items())


class InitialPotential(nn.Module):
    """A deterministic multi-step neuron that starts from ``v_init`` instead of its resting potential.

    Implemented exactly by folding the initial potential into the first step's input, so the
    wrapped neuron (and the hardware) stays unchanged: IF ``X'[0] = X[0] + v0``; LIF with
    ``decay_input`` ``X'[0] = X[0] + (τ − 1)·v0``; without ``decay_input``
    ``X'[0] = X[0] + (1 − 1/τ)·v0`` (soft reset, resting potential 0).
    """

    def __init__(self, neuron: MultiStepNeuron, v_init: float):
        super().__init__()
        cfg = neuron.config
        if not cfg.soft_reset:
            raise ValueError("InitialPotential is defined for soft-reset neurons")
        self.neuron = neuron
        self.v_init = float(v_init)
        if cfg.kind == "if":
            self.offset = self.v_init
        elif cfg.decay_input:
            self.offset = (cfg.tau - 1.0) * self.v_init
        else:
            self.offset = (1.0 - 1.0 / cfg.tau) * self.v_init

    @property
    def config(self) -> NeuronConfig:
        return self.neuron.config

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        if self.offset == 0.0:
            return self.neuron(x_seq)
        first = x_seq[:1] + self.offset
        return self.neuron(torch.cat([first, x_seq[1:]], 0))

    def extra_repr(self):
        return f"v_init={self.v_init}"


def firing_probability(config: NoiseConfig, u: torch.Tensor) -> torch.Tensor:
    """``P(s = 1) = Φ((u + μ − V_th)/σ)`` for the charged potential ``u`` (step if σ = 0)."""
    z = u + config.mu - config.v_threshold
    sigma = config.sigma_value
    if sigma == 0:
        return (z >= 0).to(u.dtype)
    return 0.5 * (1 + torch.erf(z / (sigma * math.sqrt(2.0))))


@torch.no_grad()
def rate_curve(config: NoiseConfig, x: torch.Tensor, steps: int, v_init: float | None = None) -> torch.Tensor:
    """Firing rate over ``steps`` of the deterministic soft-reset neuron fed the constant input ``x``.

    ``v_init`` defaults to ``config.v_init_value``.
    """
    from ..neurons import make_neuron
    neuron = make_neuron(config.neuron_config())
    v0 = config.v_init_value if v_init is None else float(v_init)
    seq = x.unsqueeze(0).expand(steps, *x.shape).contiguous()
    return InitialPotential(neuron, v0)(seq).mean(0)


def single_step_potential(config: NoiseConfig, x: torch.Tensor) -> torch.Tensor:
    """The potential ``u`` the single-step neuron fires on for input current ``x`` (from rest)."""
    return _charge(config, torch.zeros_like(x), x)


def calibrate_noise(config: NoiseConfig, steps: int = 16, lo: float = -1.0, hi: float = 3.0,
                    points: int = 801) -> tuple[float, float]:
    """``(μ, σ)`` minimising the squared gap between the single-step firing probability and the
    ``steps``-step rate curve over inputs in ``[lo, hi]·V_th`` (grid search; float64)."""
    x = torch.linspace(lo, hi, points, dtype=torch.float64) * config.v_threshold
    target = rate_curve(config, x, steps)
    u = single_step_potential(config, x)
    best = (math.inf, 0.0, 0.0)
    vt = config.v_threshold
    for mu in torch.linspace(-0.5, 1.0, 61, dtype=torch.float64).tolist():
        for sigma in torch.linspace(0.02, 1.0, 50, dtype=torch.float64).tolist():
            p = firing_probability(config.with_(noise_mean=mu * vt, sigma=sigma * vt), u)
            err = float(((p - target) ** 2).mean())
            if err < best[0]:
                best = (err, mu * vt, sigma * vt)
    return best[1], best[2]
