"""What the binary16 contract costs: float32 autograd SGD vs the hardware-exact mode on digits.

    python -m trident.golden.hw.measure [--epochs 30] [--seeds 0,1,2] [--surrogates sigmoid,rectangular] ...

Protocol (docs/numerics.md §10): sklearn ``load_digits`` / 16, stratified 80/20 split
(``random_state=0``), direct encoding (the image repeated over T = 8 steps), MLP 64-256-10,
LIF τ = 2, hard reset to 0, detached reset, batch 32, plain SGD; the same seed, initial
weights, batch order, learning rate and epochs for both runs.  The float model trains with
autograd in float32; the hw model trains with :class:`HwExactNetwork` (binary16 kernels only).
Besides accuracies and epoch times it reports, for the hw run, how many nonzero gradients
(δI of every layer and the weight gradients) are binary16 subnormals, for each loss scale.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as TF

from ..network import SpikingNetwork
from ..neurons import NeuronConfig
from .. import surrogate as surrogates
from . import fp16 as F
from . import surrogate as hw_surrogate
from .network import HwExactNetwork

__all__ = ["load_digits_split", "make_model", "train_float", "train_hw", "evaluate", "main"]


def load_digits_split():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    xtr, xte, ytr, yte = train_test_split(x, d.target, test_size=0.2, stratify=d.target, random_state=0)
    return (torch.tensor(xtr), torch.tensor(ytr, dtype=torch.long),
            torch.tensor(xte), torch.tensor(yte, dtype=torch.long))


def make_model(seed: int, surrogate: str, detach_reset: bool = True, arch: str = "fc256",
               alpha: float | None = None) -> SpikingNetwork:
    torch.manual_seed(seed)
    cfg = NeuronConfig(kind="lif", tau=2.0, decay_input=True, v_threshold=1.0, v_reset=0.0,
                       detach_reset=detach_reset, surrogate=surrogate, surrogate_alpha=alpha)
    return SpikingNetwork(arch, (64,), 10, cfg)


class _PWLSigmoid(surrogates.Surrogate):
    """The hardware's piecewise-linear sigmoid table in float arithmetic (for a float baseline
    that differs from hw mode only by the arithmetic)."""

    name = "sigmoid_pwl"

    def __init__(self, alpha):
        super().__init__(alpha)
        self.table = hw_surrogate.make("sigmoid", self.alpha)

    def derivative(self, x):
        return torch.from_numpy(self.table.reference(x.detach().double().cpu().numpy())).to(x.dtype)


def use_pwl_sigmoid(model) -> None:
    for n in model.neurons():
        n.surrogate_function = _PWLSigmoid(n.surrogate_function.alpha)


def _batches(n: int, batch: int, epoch: int, seed: int):
    g = torch.Generator().manual_seed(seed * 1000 + epoch)
    perm = torch.randperm(n, generator=g)
    return [perm[a:a + batch] for a in range(0, n, batch)]


def _seq(x, steps):
    return x.unsqueeze(0).expand(steps, *x.shape)


def evaluate(fn, x, y, steps, batch=256) -> float:
    correct = 0
    with torch.no_grad():
        for a in range(0, len(x), batch):
            correct += int((fn(_seq(x[a:a + batch], steps)).argmax(1) == y[a:a + batch]).sum())
    return correct / len(x)


def train_float(model, data, epochs, lr, steps=8, batch=32, seed=0, momentum=0.0):
    xtr, ytr, xte, yte = data
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    times = []
    for ep in range(epochs):
        t0 = time.perf_counter()
        for idx in _batches(len(xtr), batch, ep, seed):
            loss = TF.cross_entropy(model(_seq(xtr[idx], steps)), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - t0)
    return {"test_acc": evaluate(model, xte, yte, steps), "train_acc": evaluate(model, xtr, ytr, steps),
            "epoch_s": float(np.median(times))}


def _subnormal_stats(trace) -> dict:
    """Fraction of nonzero δI / weight gradients that are subnormal, and zero-underflow count."""
    out = {}
    for i, lt in enumerate(trace.layers):
        for name, t in (("di", lt.di), ("grad", lt.grad)):
            if t is None:
                continue
            a = t.float().abs()
            nz = a > 0
            out[f"L{i}.{name}.nonzero"] = int(nz.sum())
            out[f"L{i}.{name}.subnormal"] = int((nz & (a < F.MIN_NORMAL)).sum())
        if lt.grad_acc is not None and lt.grad is not None:
            exact = lt.grad_acc.value()
            out[f"L{i}.grad.flushed_to_zero"] = int(((exact != 0) & (lt.grad.float() == 0)).sum())
            out[f"L{i}.grad.max_abs"] = float(lt.grad.float().abs().max())
    return out


def _float64_gradients(net, trace, labels):
    """The MLP's weight gradients (times the loss scale) in float64 from the hw run's own
    forward pass (its spikes, potentials and logits): the ideal the binary16 BP/WG approximate."""
    p = net.neuron
    steps = trace.layers[0].current.shape[0]
    z = trace.logits.double()
    g = (torch.softmax(z, 1) - TF.one_hot(labels, z.shape[1]).double()) * (net.loss_scale / z.shape[0])
    ro = trace.layers[-1]
    d_out = g / steps
    feats = ro.inputs.double()                                         # [T, N, F]
    grads = [torch.einsum("nc,tnf->cf", d_out, feats)]
    ds = (d_out @ ro.weight.double()).unsqueeze(0).expand(steps, -1, -1)
    for lt in reversed(trace.layers[:-1]):
        h = lt.potential.double()
        zz = torch.relu(float(p.k) * h) if p.kind == "klif" else h
        sg = torch.from_numpy(p.surrogate.reference((zz - float(p.v_th)).numpy()))
        du_next = torch.zeros_like(h[0])
        di = torch.empty_like(h)
        lam = 1.0 if p.kind == "if" else float(p.leak)
        for t in range(steps - 1, -1, -1):
            carry = du_next * lam
            if not p.soft_reset:
                carry = torch.where(lt.spikes[t], torch.zeros_like(carry), carry)
            dz = ds[t] * sg[t] + carry
            du = dz * float(p.k) * (zz[t] > 0) if p.kind == "klif" else dz
            di[t] = du * (float(p.input_gain) if p.input_gain is not None else 1.0)
            du_next = du
        grads.insert(0, torch.einsum("tnj,tni->ji", di, lt.inputs.double()))
        ds = di @ lt.weight.double()
    return grads


def _gradient_error(net, trace, labels) -> dict:
    ideal = _float64_gradients(net, trace, labels)
    out = {}
    for i, (lt, g) in enumerate(zip(trace.layers, ideal)):
        out[f"L{i}.grad.rel_err"] = float((lt.grad.double() - g).norm() / g.norm().clamp(min=1e-300))
    return out


def train_hw(model, data, epochs, lr, loss_scale, steps=8, batch=32, seed=0, momentum=0.0, stats_every=0,
             wg_accumulator="exact"):
    xtr, ytr, xte, yte = data
    net = HwExactNetwork.from_float(model, lr=lr, loss_scale=loss_scale, momentum=momentum,
                                    wg_accumulator=wg_accumulator)
    times, stats = [], []
    for ep in range(epochs):
        t0 = time.perf_counter()
        for b, idx in enumerate(_batches(len(xtr), batch, ep, seed)):
            if stats_every and b % stats_every == 0:
                tr = net.step(_seq(xtr[idx], steps), ytr[idx], trace=True)
                stats.append({**_subnormal_stats(tr), **_gradient_error(net, tr, ytr[idx])})
            else:
                net.train_step(_seq(xtr[idx], steps), ytr[idx])
        times.append(time.perf_counter() - t0)
    agg = {}
    for s in stats:
        for k, v in s.items():
            agg.setdefault(k, []).append(v)
    summary = {}
    for k, v in agg.items():
        if k.endswith("max_abs"):
            summary[k] = max(v)
        elif k.endswith("rel_err"):
            summary[k + ".median"] = float(np.median(v))
        else:
            summary[k] = int(sum(v))
    return {"test_acc": evaluate(net.forward, xte, yte, steps), "train_acc": evaluate(net.forward, xtr, ytr, steps),
            "epoch_s": float(np.median(times)), "overflow_steps": net.overflow_steps, "gradient_stats": summary}, net


def order_dependence(data, batches_before: int = 10, batch: int = 32, steps: int = 8) -> dict:
    """Fraction of weight-gradient bits that change when a batch is split into two halves whose
    partial sums are merged (two cores), for the FP32 / FP16 sequential ablations; and their
    distance from the exact accumulator.  Per weight layer."""
    from . import gradient as G
    xtr, ytr = data[0], data[1]
    net = HwExactNetwork.from_float(make_model(0, "sigmoid"), lr=0.5, loss_scale=1024.0)
    for b in range(batches_before):
        sl = slice(b * batch, (b + 1) * batch)
        net.train_step(_seq(xtr[sl], steps), ytr[sl])
    sl = slice(batches_before * batch, (batches_before + 1) * batch)
    tr = net.step(_seq(xtr[sl], steps), ytr[sl], update=False, trace=True)

    def sample_major(r):
        return r.reshape(steps, batch, *r.shape[1:]).transpose(0, 1).reshape(r.shape)

    def fp32_partial(d, x):
        acc = torch.zeros(d.shape[1], x.shape[1])
        for r in range(d.shape[0]):
            if x.dtype == torch.bool:
                acc = acc + torch.where(x[r][None, :], d[r][:, None].float(), torch.zeros(()))
            else:
                acc = acc + d[r][:, None].float() * x[r][None, :].float()
        return acc

    out = {}
    for li, lt in enumerate(tr.layers):
        di = lt.di if lt.kind != "readout" else lt.di.unsqueeze(0).expand(steps, -1, -1)
        d = sample_major(di.reshape(-1, di.shape[-1]))
        x = sample_major(lt.inputs.reshape(-1, lt.inputs.shape[-1]))
        h = d.shape[0] // 2
        for acc in ("fp32", "fp16"):
            whole = G.sequential_fc_weight_grad(d, x, acc)
            if acc == "fp32":
                split = F.round16((fp32_partial(d[:h], x[:h]) + fp32_partial(d[h:], x[h:])).double())
            else:
                split = F.add(G.sequential_fc_weight_grad(d[:h], x[:h], "fp16"),
                              G.sequential_fc_weight_grad(d[h:], x[h:], "fp16"))
            exact = lt.grad.double()
            out[f"L{li}.{acc}"] = {
                "bits_changed_by_split": float((F.bits(whole) != F.bits(split)).float().mean()),
                "rel_err_vs_exact": float((whole.double() - exact).norm() / exact.norm())}
    return out


def _floats(text):
    return [float(eval(v, {}, {})) for v in text.split(",")]   # noqa: S307  (e.g. 2**10)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--lr", type=float, default=0.5)
    ap.add_argument("--momentum", type=float, default=0.0)
    ap.add_argument("--surrogates", default="sigmoid")
    ap.add_argument("--alpha", type=float, default=None)
    ap.add_argument("--arch", default="fc256")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--loss-scales", default="2**10", help="comma-separated powers of two")
    ap.add_argument("--wg", default="exact", help="WG accumulators: exact (contract), fp32, fp16 (ablations)")
    ap.add_argument("--stats-every", type=int, default=5, help="trace every k-th batch for subnormal stats")
    ap.add_argument("--float", default="detached",
                    help="comma-separated float32 baselines: detached (same math as hw), spikingjelly "
                         "(detach_reset=False), pwl (detached, with the hardware's sigmoid table), or none")
    ap.add_argument("--skip-hw", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None)
    ap.add_argument("--order-check", action="store_true",
                    help="only measure how batch splitting changes FP32/FP16-accumulated gradients")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = load_digits_split()
    if args.order_check:
        result = order_dependence(data)
        print(json.dumps(result, indent=1))
        return result
    runs = []

    def record(kind, r, **key):
        runs.append({"kind": kind, **key, **r})
        print(json.dumps(runs[-1]), flush=True)

    for seed in [int(v) for v in args.seeds.split(",")]:
        for sg in args.surrogates.split(","):
            key = dict(seed=seed, surrogate=sg)
            for variant in args.float.split(","):
                if variant == "none" or (variant == "pwl" and sg != "sigmoid"):
                    continue
                m = make_model(seed, sg, variant != "spikingjelly", args.arch, args.alpha)
                if variant == "pwl":
                    use_pwl_sigmoid(m)
                record("float32", train_float(m, data, args.epochs, args.lr, seed=seed, momentum=args.momentum),
                       variant=variant, **key)
            if args.skip_hw:
                continue
            for scale in _floats(args.loss_scales):
                for wg in args.wg.split(","):
                    m = make_model(seed, sg, True, args.arch, args.alpha)
                    r, _ = train_hw(m, data, args.epochs, args.lr, scale, seed=seed, momentum=args.momentum,
                                    stats_every=args.stats_every, wg_accumulator=wg)
                    record("hw_fp16", r, loss_scale=scale, wg=wg, **key)
    report = {"config": vars(args), "runs": runs}
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=1)
    return report


if __name__ == "__main__":
    main()
