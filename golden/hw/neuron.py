"""The neuron unit in binary16: charge, fire, reset (FP) and the δU recursion (BP).

docs/numerics.md §2 (forward) and §4.1 (backward) are the specification; the operations
below are that text, one line each.  Every ``F.*`` call rounds once (RNE).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..neurons import NeuronConfig
from . import fp16 as F
from . import surrogate as hw_surrogate

__all__ = ["NeuronParams", "NeuronGrads", "charge", "scale", "neuron_forward", "surrogate_values",
           "neuron_backward"]


@dataclass(frozen=True)
class NeuronParams:
    """The neuron unit's register constants (all binary16, 0-dim tensors).

    ``inv_tau = RNE(1/τ)``, ``leak = RNE(1 − inv_tau)`` (the BP carry factor; the forward
    leak is implicit in the FMA), ``k`` the fixed KLIF scale.
    """

    kind: str
    decay_input: bool
    soft_reset: bool
    v_th: torch.Tensor
    v_reset: torch.Tensor
    v_rest: torch.Tensor
    inv_tau: torch.Tensor
    neg_inv_tau: torch.Tensor
    leak: torch.Tensor
    k: torch.Tensor
    surrogate: hw_surrogate.HwSurrogate

    @classmethod
    def from_config(cls, cfg: NeuronConfig, k: float | None = None) -> "NeuronParams":
        sg = cfg.make_surrogate()
        surrogate = hw_surrogate.make(sg.name, sg.alpha)
        inv_tau = F.const(1.0 / cfg.tau) if cfg.kind != "if" else F.const(1.0)
        leak = F.const(1.0 - float(inv_tau)) if cfg.kind != "if" else F.const(1.0)
        return cls(kind=cfg.kind, decay_input=bool(cfg.decay_input), soft_reset=cfg.soft_reset,
                   v_th=F.const(cfg.v_threshold),
                   v_reset=F.const(0.0 if cfg.v_reset is None else cfg.v_reset),
                   v_rest=F.const(cfg.v_rest), inv_tau=inv_tau, neg_inv_tau=F.neg(inv_tau),
                   leak=leak, k=F.const(cfg.k_init if k is None else k), surrogate=surrogate)

    @classmethod
    def from_registers(cls, regs: dict) -> "NeuronParams":
        """The inverse of :meth:`registers`: the unit configured from 16-bit register patterns."""
        c = {n: F.from_bits(int(regs[n])).reshape(()) for n in ("v_th", "v_reset", "v_rest", "inv_tau", "leak", "k")}
        prefix = "surrogate_"
        surrogate = hw_surrogate.from_registers(
            regs["surrogate"], {k[len(prefix):]: v for k, v in regs.items() if k.startswith(prefix)})
        return cls(kind=regs["kind"], decay_input=bool(regs["decay_input"]), soft_reset=bool(regs["soft_reset"]),
                   neg_inv_tau=F.neg(c["inv_tau"]), surrogate=surrogate, **c)

    @property
    def input_gain(self) -> torch.Tensor | None:
        """The factor on the gradient to the input current (``inv_tau`` or none)."""
        return self.inv_tau if (self.kind != "if" and self.decay_input) else None

    def registers(self) -> dict:
        """Constants as 16-bit patterns (what the RTL's CSRs hold)."""
        names = ("v_th", "v_reset", "v_rest", "inv_tau", "leak", "k")
        return {"kind": self.kind, "decay_input": self.decay_input, "soft_reset": self.soft_reset,
                **{n: int(F.bits(getattr(self, n))) for n in names},
                "surrogate": self.surrogate.name, **{f"surrogate_{k}": v for k, v in
                                                     self.surrogate.registers().items()}}


def _expand(c: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return c.expand_as(like)


def charge(p: NeuronParams, v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``H`` from the potential ``v`` and the input current ``x`` (numerics.md §2.5)."""
    if p.kind == "if":
        return F.add(v, x)
    dv = F.sub(v, _expand(p.v_rest, v))                       # V − V_rest
    if p.decay_input:
        d = F.sub(x, dv)                                      # X − (V − V_rest)
        return F.fma(d, _expand(p.inv_tau, d), v)             # V + d / τ
    a = F.fma(dv, _expand(p.neg_inv_tau, dv), v)              # V − (V − V_rest) / τ
    return F.add(a, x)                                        # … + X


def scale(p: NeuronParams, h: torch.Tensor) -> torch.Tensor:
    """``Z``: ``max0(RNE(k·H))`` for KLIF, ``H`` otherwise."""
    if p.kind == "klif":
        return F.max0(F.mul(_expand(p.k, h), h))
    return h


def neuron_forward(p: NeuronParams, current: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``[T, …]`` input currents; return spikes ``S`` (bool) and charged potentials ``H``."""
    steps = current.shape[0]
    v = p.v_rest.expand(current.shape[1:]).clone()
    s_seq = torch.empty(current.shape, dtype=torch.bool)
    h_seq = torch.empty_like(current)
    for t in range(steps):
        h = charge(p, v, current[t])
        z = scale(p, h)
        s = F.ge(z, _expand(p.v_th, z))
        if p.soft_reset:
            v = torch.where(s, F.sub(z, _expand(p.v_th, z)), z)
        else:
            v = torch.where(s, _expand(p.v_reset, z), z)
        s_seq[t] = s
        h_seq[t] = h
    return s_seq, h_seq


@dataclass
class NeuronGrads:
    """Per-step BP quantities (``[T, …]`` binary16): surrogate ``h``, ``δU = ∂L/∂H`` and the
    gradient ``δI`` to the input current."""

    h: torch.Tensor
    du: torch.Tensor
    di: torch.Tensor


def surrogate_values(p: NeuronParams, h_seq: torch.Tensor) -> torch.Tensor:
    """``h(Z − V_th)`` for every step (the surrogate unit, recomputed from the stored ``H``)."""
    z = scale(p, h_seq)
    return p.surrogate(F.sub(z, _expand(p.v_th, z)))


def neuron_backward(p: NeuronParams, h_seq: torch.Tensor, s_seq: torch.Tensor,
                    ds: torch.Tensor, sg: torch.Tensor | None = None) -> NeuronGrads:
    """The δU recursion, t = T … 1, reset path detached (numerics.md §4.1).

    ``h_seq``, ``s_seq`` are what FP kept; ``ds`` is ``δS`` (binary16, ``[T, …]``); ``sg`` the
    surrogate values if already computed.
    """
    if sg is None:
        sg = surrogate_values(p, h_seq)
    steps = h_seq.shape[0]
    du_seq = torch.empty_like(h_seq)
    du_next = F.zeros(h_seq.shape[1:])
    zero = F.zeros(())
    for t in range(steps - 1, -1, -1):
        carry = du_next if p.kind == "if" else F.mul(du_next, _expand(p.leak, du_next))
        if not p.soft_reset:
            carry = torch.where(s_seq[t], zero, carry)
        active = F.nonzero(ds[t]) & F.nonzero(sg[t])
        dz = torch.where(active, F.fma(ds[t], sg[t], carry), carry)
        if p.kind == "klif":
            z_pos = F.gt(F.mul(_expand(p.k, h_seq[t]), h_seq[t]), zero.expand_as(dz))
            du = torch.where(z_pos, F.mul(dz, _expand(p.k, dz)), zero)
        else:
            du = dz
        du_seq[t] = du
        du_next = du
    gain = p.input_gain
    di_seq = F.mul(du_seq, gain.expand_as(du_seq)) if gain is not None else du_seq
    return NeuronGrads(h=sg, du=du_seq, di=di_seq)
