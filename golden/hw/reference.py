"""Float64 reference of the contract's math, with rigorous rounding-error bounds.

:class:`Approx` carries, for every element, the exact-arithmetic value ``v`` of a quantity
(evaluated in float64) and a bound ``e`` on how far the binary16 kernels may be from it.
Each operation propagates the bound by the standard model of RNE arithmetic
(docs/numerics.md §9): with ``u = 2^−11`` and ``η = 2^−25``,

- ``a ± b``:      ``d = e_a + e_b``;                     ``e = d + u(|v| + d)``   (subnormal sums are exact)
- ``a · b``:      ``d = |a|e_b + |b|e_a + e_a e_b``;     ``e = d + u(|v| + d) + η``
- ``fma(a,b,c)``: ``d = |a|e_b + |b|e_a + e_a e_b + e_c``; ``e = d + u(|v| + d) + η``
- exact sum (WG): ``e = Σ e_terms``; its one rounding adds ``u(|v| + e)``
- 1-Lipschitz selections (``max0``, ``|·|``) keep ``e``.

These are *running* error bounds: they follow the same operation sequence as the kernels, so
they are tight, and they are rigorous (no first-order truncation).  A comparison or a
rectangular-window test is *decided* only when the reference is farther than ``e`` from the
threshold; otherwise :class:`Undecided` is raised (the bound cannot continue through a spike
that might flip).  The reference values themselves (``v``) are the plain math of
ALGORITHMS.md §3 with the reset path detached, and the tests check them against PyTorch
autograd on the float model in float64.

:func:`reference_step` runs one training step of an MLP (analog first layer, spiking hidden
layers, readout, host loss, BP, WG, SGD).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from . import fp16 as F
from .neuron import NeuronParams

__all__ = ["Approx", "Undecided", "gamma", "add", "sub", "mul", "fma", "max0", "absolute", "select",
           "decide_ge", "decide_gt", "rounded", "neuron_forward", "neuron_backward", "surrogate",
           "fc_forward", "fc_backward", "weight_grad", "reference_step", "ReferenceStep", "within"]

U = F.U
ETA = F.ETA


class Undecided(AssertionError):
    """A spike, window or segment decision is within the error bound of its threshold."""


def gamma(n: int) -> float:
    """``γ_n = n·u / (1 − n·u)``: the classic bound for n successive roundings."""
    return n * U / (1 - n * U)


@dataclass
class Approx:
    v: torch.Tensor
    e: torch.Tensor

    @classmethod
    def exact(cls, t) -> "Approx":
        v = torch.as_tensor(t).double()
        return cls(v, torch.zeros_like(v))

    @classmethod
    def const(cls, c: torch.Tensor, like: "Approx") -> "Approx":
        v = torch.full_like(like.v, float(c))
        return cls(v, torch.zeros_like(v))

    def __getitem__(self, idx):
        return Approx(self.v[idx], self.e[idx])

    def __setitem__(self, idx, other: "Approx"):
        self.v[idx] = other.v
        self.e[idx] = other.e

    @property
    def shape(self):
        return self.v.shape

    def reshape(self, *shape):
        return Approx(self.v.reshape(*shape), self.e.reshape(*shape))

    def expand(self, *shape):
        return Approx(self.v.expand(*shape).clone(), self.e.expand(*shape).clone())

    @staticmethod
    def stack(items):
        return Approx(torch.stack([a.v for a in items]), torch.stack([a.e for a in items]))


def _c(x, like):
    return x if isinstance(x, Approx) else Approx(torch.full_like(like.v, float(x)), torch.zeros_like(like.v))


def add(a: Approx, b: Approx) -> Approx:
    b = _c(b, a)
    v = a.v + b.v
    d = a.e + b.e
    return Approx(v, d + U * (v.abs() + d))


def sub(a: Approx, b: Approx) -> Approx:
    b = _c(b, a)
    v = a.v - b.v
    d = a.e + b.e
    return Approx(v, d + U * (v.abs() + d))


def mul(a: Approx, b) -> Approx:
    b = _c(b, a)
    v = a.v * b.v
    d = a.v.abs() * b.e + b.v.abs() * a.e + a.e * b.e
    return Approx(v, d + U * (v.abs() + d) + ETA)


def fma(a: Approx, b, c: Approx) -> Approx:
    b = _c(b, a)
    c = _c(c, a)
    v = a.v * b.v + c.v
    d = a.v.abs() * b.e + b.v.abs() * a.e + a.e * b.e + c.e
    return Approx(v, d + U * (v.abs() + d) + ETA)


def rounded(a: Approx) -> Approx:
    """One RNE rounding of an exactly accumulated sum of binary16 values (no underflow error)."""
    return Approx(a.v, a.e + U * (a.v.abs() + a.e))


def max0(a: Approx) -> Approx:
    return Approx(a.v.clamp(min=0.0), a.e.clone())


def absolute(a: Approx) -> Approx:
    return Approx(a.v.abs(), a.e.clone())


def select(cond: torch.Tensor, a: Approx, b: Approx) -> Approx:
    return Approx(torch.where(cond, a.v, b.v), torch.where(cond, a.e, b.e))


def _decide(diff: torch.Tensor, err: torch.Tensor, what: str):
    bad = (diff.abs() <= err) & (err > 0)
    if bool(bad.any()):
        raise Undecided(f"{int(bad.sum())} {what} decisions lie within the error bound")


def decide_ge(a: Approx, c: float) -> torch.Tensor:
    _decide(a.v - c, a.e, "fire (Z ≥ V_th)")
    return a.v >= c


def decide_gt(a: Approx, c: float) -> torch.Tensor:
    _decide(a.v - c, a.e, "sign (k·H > 0)")
    return a.v > c


def within(hw: torch.Tensor, ref: Approx, slack: float = 2.0 ** -30) -> torch.Tensor:
    """Elementwise: is the binary16 result within the bound (float64 evaluation slack)?"""
    h = hw.double()
    return (h - ref.v).abs() <= ref.e * (1 + slack) + 1e-300


# --------------------------------------------------------------------------- surrogate
def surrogate(p: NeuronParams, x: Approx) -> Approx:
    """``h(x)`` of the hardware surrogate evaluated on the reference ``x`` (with bound)."""
    sg = p.surrogate
    if sg.name == "rectangular":
        w = float(sg.half_width16)
        _decide(x.v.abs() - w, x.e, "rectangular window")
        return Approx(torch.where(x.v.abs() < w, float(sg.alpha16), 0.0), torch.zeros_like(x.v))
    if sg.name == "triangle":
        return max0(fma(absolute(x), float(sg.neg_alpha_sq16), Approx.const(sg.alpha16, x)))
    if sg.name == "sigmoid":
        u = mul(absolute(x), float(sg.alpha16))
        knots = torch.round(u.v * 8) / 8
        _decide(u.v - knots, u.e, "sigmoid segment")
        _decide(u.v - 8.0, u.e, "sigmoid cut-off")
        inside = u.v < 8.0
        k = torch.floor(torch.where(inside, u.v, 0.0) * 8).long().clamp(0, 63)
        a = sg.slope16.double()[k]
        b = sg.intercept16.double()[k]
        h = fma(u, Approx(a, torch.zeros_like(a)), Approx(b, torch.zeros_like(b)))
        return select(inside, h, Approx.exact(torch.zeros_like(u.v)))
    raise ValueError(sg.name)


# --------------------------------------------------------------------------- neuron unit
def neuron_forward(p: NeuronParams, current: Approx):
    """Reference of :func:`..neuron.neuron_forward`: ``(S decided bool, H Approx)``."""
    steps = current.shape[0]
    v = Approx.const(p.v_rest, current[0])
    s_seq, h_seq = [], []
    for t in range(steps):
        x = current[t]
        if p.kind == "if":
            h = add(v, x)
        else:
            dv = sub(v, float(p.v_rest))
            if p.decay_input:
                h = fma(sub(x, dv), float(p.inv_tau), v)
            else:
                h = add(fma(dv, float(p.neg_inv_tau), v), x)
        z = max0(mul(h, float(p.k))) if p.kind == "klif" else h
        s = decide_ge(z, float(p.v_th))
        reset = sub(z, float(p.v_th)) if p.soft_reset else Approx.const(p.v_reset, z)
        v = select(s, reset, z)
        s_seq.append(s)
        h_seq.append(h)
    return torch.stack(s_seq), Approx.stack(h_seq)


def neuron_backward(p: NeuronParams, h_seq: Approx, s_seq: torch.Tensor, ds: Approx):
    """Reference of :func:`..neuron.neuron_backward`: ``(h, δU, δI)`` as Approx."""
    steps = h_seq.shape[0]
    du_next = Approx.exact(torch.zeros_like(h_seq.v[0]))
    hs, dus = [], []
    for t in range(steps - 1, -1, -1):
        h = h_seq[t]
        if p.kind == "klif":
            kh = mul(h, float(p.k))
            z = max0(kh)
        else:
            z = h
        sg = surrogate(p, sub(z, float(p.v_th)))
        carry = du_next if p.kind == "if" else mul(du_next, float(p.leak))
        if not p.soft_reset:
            carry = select(s_seq[t], Approx.exact(torch.zeros_like(carry.v)), carry)
        dz = fma(ds[t], sg, carry)
        if p.kind == "klif":
            pos = decide_gt(kh, 0.0)
            du = select(pos, mul(dz, float(p.k)), Approx.exact(torch.zeros_like(dz.v)))
        else:
            du = dz
        hs.append(sg)
        dus.append(du)
        du_next = du
    hs, dus = Approx.stack(hs[::-1]), Approx.stack(dus[::-1])
    gain = p.input_gain
    di = mul(dus, float(gain)) if gain is not None else dus
    return hs, dus, di


# --------------------------------------------------------------------------- engines
def fc_forward(weight: torch.Tensor, inputs) -> Approx:
    """``inputs`` bool spikes ``[R, I]`` or Approx analog values; ascending-order running bound."""
    w = Approx.exact(weight)
    rows = inputs.shape[0]
    acc = Approx.exact(torch.zeros(rows, weight.shape[0], dtype=torch.float64))
    for i in range(weight.shape[1]):
        wi = Approx(w.v[:, i].expand(rows, -1), w.e[:, i].expand(rows, -1))
        if isinstance(inputs, Approx):
            xi = Approx(inputs.v[:, i:i + 1].expand_as(wi.v), inputs.e[:, i:i + 1].expand_as(wi.v))
            active = (xi.v != 0) | (xi.e > 0)
            acc = select(active, fma(wi, xi, acc), acc)
        else:
            active = inputs[:, i:i + 1].expand_as(wi.v)
            acc = select(active, add(acc, wi), acc)
    return acc


def fc_backward(weight: torch.Tensor, di: Approx) -> Approx:
    """``Wᵀ · δI`` in ascending output order (never skipped: the rules cover a skipped term)."""
    rows = di.shape[0]
    acc = Approx.exact(torch.zeros(rows, weight.shape[1], dtype=torch.float64))
    w = weight.double()
    for j in range(weight.shape[0]):
        dj = Approx(di.v[:, j:j + 1].expand_as(acc.v), di.e[:, j:j + 1].expand_as(acc.v))
        acc = fma(dj, Approx(w[j].expand_as(acc.v), torch.zeros_like(acc.v)), acc)
    return acc


def weight_grad(di: Approx, inputs) -> Approx:
    """WG: exact sum over rows (spike terms δI, analog terms RNE(δI·x)), then one rounding."""
    if isinstance(inputs, Approx):
        terms = mul(Approx(di.v[:, :, None], di.e[:, :, None]),
                    Approx(inputs.v[:, None, :], inputs.e[:, None, :]))
        # a pair with an exact zero operand is skipped in hardware and zero here: no error
        exact_zero = (((di.v == 0) & (di.e == 0))[:, :, None]
                      | ((inputs.v == 0) & (inputs.e == 0))[:, None, :])
        terms = Approx(terms.v, torch.where(exact_zero, torch.zeros_like(terms.e), terms.e))
        acc = Approx(terms.v.sum(0), terms.e.sum(0))
    else:
        s = inputs.double()
        acc = Approx(torch.einsum("rj,ri->ji", di.v, s), torch.einsum("rj,ri->ji", di.e, s))
    return rounded(acc)


# --------------------------------------------------------------------------- one step
@dataclass
class ReferenceStep:
    layers: list          # per hidden layer: dict of Approx / bool tensors
    readout: dict
    logits: Approx
    grad_logits: Approx
    loss: float


def reference_step(weights: list[torch.Tensor], p: NeuronParams, x16: torch.Tensor,
                   labels: torch.Tensor, loss_scale: float, lr16: torch.Tensor) -> ReferenceStep:
    """One SGD step of an MLP (``weights``: hidden layers then the readout, binary16) on the
    binary16 input ``x16 [T, N, F]``; every quantity with its bound."""
    steps, batch = x16.shape[:2]
    rows = steps * batch
    layers = []
    cur = Approx.exact(x16.reshape(rows, -1))
    for w in weights[:-1]:
        current = fc_forward(w, cur).reshape(steps, batch, -1)
        s, h = neuron_forward(p, current)
        layers.append({"inputs": cur, "current": current, "spikes": s, "potential": h, "weight": w})
        cur = s.reshape(rows, -1)
    w_r = weights[-1]
    r_cur = fc_forward(w_r, cur).reshape(steps, batch, -1)
    v = Approx.exact(torch.zeros(batch, w_r.shape[0], dtype=torch.float64))
    for t in range(steps):
        v = add(v, r_cur[t])
    inv_t = F.const(1.0 / steps)
    logits = mul(v, float(inv_t))
    # host, float32 in hardware mode: bound by the softmax's ∞-norm Lipschitz constant 1/2
    z = logits.v
    prob = torch.softmax(z, 1)
    onehot = torch.nn.functional.one_hot(labels, z.shape[1]).double()
    factor = loss_scale / batch
    gv = (prob - onehot) * factor
    host_err = factor * (0.5 * logits.e.max(1, keepdim=True).values + 2.0 ** -20)
    g_host = Approx(gv, host_err.expand_as(gv) + U * (gv.abs() + host_err) + ETA)
    loss = float(torch.nn.functional.cross_entropy(z, labels))
    # BP / WG
    d_out = mul(g_host, float(inv_t))
    readout = {"current": r_cur, "v": v, "logits": logits, "d_out": d_out}
    d_rows = Approx(d_out.v.unsqueeze(0).expand(steps, -1, -1).reshape(rows, -1),
                    d_out.e.unsqueeze(0).expand(steps, -1, -1).reshape(rows, -1))
    readout["grad"] = weight_grad(d_rows, cur)
    ds = fc_backward(w_r, d_out)                                   # [N, F], the same every step
    ds = Approx(ds.v.unsqueeze(0).expand(steps, -1, -1).clone(), ds.e.unsqueeze(0).expand(steps, -1, -1).clone())
    for li in range(len(layers) - 1, -1, -1):
        L = layers[li]
        sg, du, di = neuron_backward(p, L["potential"], L["spikes"], ds)
        L.update(surrogate=sg, ds=ds, du=du, di=di)
        di_rows = di.reshape(rows, -1)
        L["grad"] = weight_grad(di_rows, L["inputs"])
        if li > 0:
            ds = fc_backward(L["weight"], di_rows).reshape(steps, batch, -1)
    # update: W' = RNE(W − lr·g·2^−s), g the binary16 gradient (bound carried)
    scale = float(lr16) / loss_scale
    for L, w in list(zip(layers, weights[:-1])) + [(readout, w_r)]:
        g = L["grad"]
        new_v = w.double() - scale * g.v
        d = scale * g.e
        L["weight_after"] = Approx(new_v, d + U * (new_v.abs() + d) + ETA)
    return ReferenceStep(layers, readout, logits, g_host, loss)
