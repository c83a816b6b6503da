"""``HwExactNetwork``: training and inference with the hardware-exact binary16 kernels only.

Built from a float :class:`~trident.golden.network.SpikingNetwork`; no autograd is involved.
One training step is exactly what the device does (docs/numerics.md §7):

1. host: round the input to binary16;
2. FP engine + neuron unit, layer by layer, all T steps (:mod:`.forward`, :mod:`.neuron`);
3. host: logits (binary16 → float32), softmax cross-entropy in float32, the scaled gradient
   ``G = RNE((softmax − onehot) · S/N)`` handed back as binary16;
4. BP engine, top to bottom (:mod:`.backward`, :mod:`.neuron`), WG engine on every weight
   layer (:mod:`.gradient`);
5. update unit (:mod:`.update`) — skipped, and counted in ``overflow_steps``, when any
   gradient is ±inf or NaN (the host reads the WG overflow flag before issuing the update).

``step(..., trace=True)`` returns every per-layer intermediate (:class:`LayerTrace`): the
reference the RTL tests compare against.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as TF

from .. import layers as L
from ..neurons import MultiStepNeuron
from . import backward as B
from . import fp16 as F
from . import forward as FW
from . import gradient as G
from . import neuron as N
from .surrogate import SUPPORTED as SUPPORTED_SURROGATES
from .update import sgd_update

__all__ = ["HwExactNetwork", "LayerTrace", "StepTrace", "host_loss_grad"]


@dataclass
class LayerTrace:
    """Everything one weight layer computed in a step (binary16 unless noted).

    ``inputs`` — bool spikes, or binary16 values for the analog first layer, ``[T, N, …]``;
    ``current`` — ``I``; ``potential`` — ``H``; ``spikes`` — ``S`` (bool);
    ``surrogate`` — ``h``; ``ds`` — ``δS`` (``+0`` where ``h = 0``: not computed);
    ``du`` — ``δU``; ``di`` — ``δI`` (the readout: ``δO [N, C]``);
    ``grad_acc`` — the exact WG accumulator; ``grad`` — its binary16 rounding;
    ``weight`` / ``weight_after`` — before / after the update.
    Readout only: ``v`` (the integrator after T steps) and ``logits``.
    """

    kind: str
    inputs: torch.Tensor
    current: torch.Tensor
    weight: torch.Tensor
    potential: torch.Tensor | None = None
    spikes: torch.Tensor | None = None
    surrogate: torch.Tensor | None = None
    ds: torch.Tensor | None = None
    du: torch.Tensor | None = None
    di: torch.Tensor | None = None
    grad_acc: G.ExactGrad | None = None
    grad: torch.Tensor | None = None
    weight_after: torch.Tensor | None = None
    v: torch.Tensor | None = None
    logits: torch.Tensor | None = None


@dataclass
class StepTrace:
    loss: float
    logits: torch.Tensor               # float32 (converted from binary16)
    grad_logits: torch.Tensor | None   # the host's binary16 (scaled) loss gradient
    layers: list[LayerTrace] = field(default_factory=list)
    updated: bool = False


def host_loss_grad(logits16: torch.Tensor, labels: torch.Tensor, loss_scale: float):
    """Host side, float32: mean cross-entropy and ``RNE16((softmax − onehot) · S/N)``."""
    z = logits16.float()
    loss = TF.cross_entropy(z, labels)
    p = torch.softmax(z, dim=1)
    onehot = TF.one_hot(labels, z.shape[1]).float()
    factor = torch.tensor(loss_scale / z.shape[0], dtype=torch.float32)
    return float(loss), ((p - onehot) * factor).half()


@dataclass
class _Stage:
    kind: str                          # flatten | fc | conv | neuron | maxpool
    index: int = -1                    # weight index (fc, conv)
    kernel: int = 0
    stride: int = 1
    padding: int = 0
    params: N.NeuronParams | None = None


class HwExactNetwork:
    """A spiking network whose every operation follows the binary16 contract.

    Members
    -------
    weights : list of torch.Tensor
        binary16 weights, body layers first, the readout last.
    lr, loss_scale, momentum : float
        SGD settings; ``loss_scale`` is a power of two ``2^s``.
    neuron : NeuronParams
        The neuron unit's registers.
    overflow_steps : int
        Steps whose update was skipped because a gradient overflowed.
    spike_input : bool
        The input is spikes (every value 0 or 1: binarized event frames, rate coding): the
        first layer runs event-driven on them as every other layer does, and they cross DRAM
        as bits.  False: binary16 values, the first layer in MAC mode.
    """

    def __init__(self, stages, weights, neuron: N.NeuronParams, input_shape, lr: float,
                 loss_scale: float = 1024.0, momentum: float = 0.0, modules=None,
                 wg_accumulator: str = "exact", spike_input: bool = False):
        self.stages = list(stages)
        self.spike_input = bool(spike_input)
        self.weights = [w.detach().to(F.HALF).clone() for w in weights]
        self.neuron = neuron
        self.input_shape = tuple(input_shape)
        self._modules = modules
        self.lr = lr
        self.loss_scale = loss_scale
        self.momentum = momentum
        self.buffers = [None] * len(self.weights)
        self.overflow_steps = 0
        if wg_accumulator not in ("exact", "fp32", "fp16"):
            raise ValueError(f"wg_accumulator must be exact (the contract), fp32 or fp16 (ablations), "
                             f"got {wg_accumulator!r}")
        if wg_accumulator != "exact" and any(st.kind == "conv" for st in self.stages):
            raise ValueError("the fp32/fp16 WG ablations exist for fully connected layers only")
        self.wg_accumulator = wg_accumulator

    # ------------------------------------------------------------------ settings
    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value: float):
        if not value > 0:
            raise ValueError(f"lr must be > 0, got {value}")
        self._lr = float(value)
        self.lr16 = F.const(value)

    @property
    def loss_scale(self) -> float:
        return self._loss_scale

    @loss_scale.setter
    def loss_scale(self, value: float):
        shift = math.log2(value) if value > 0 else float("nan")
        if not (shift == int(shift) and shift >= 0):
            raise ValueError(f"loss_scale must be a power of two ≥ 1, got {value}")
        self._loss_scale = float(value)
        self.scale_shift = int(shift)

    @property
    def momentum(self) -> float:
        return self._momentum

    @momentum.setter
    def momentum(self, value: float):
        if not 0 <= value < 1:
            raise ValueError(f"momentum must be in [0, 1), got {value}")
        self._momentum = float(value)
        self.momentum16 = F.const(value) if value else None

    # ------------------------------------------------------------------ building
    @classmethod
    def from_float(cls, model, lr: float, loss_scale: float = 1024.0, momentum: float = 0.0,
                   force_detach_reset: bool = False, wg_accumulator: str = "exact",
                   spike_input: bool = False) -> "HwExactNetwork":
        """Convert a float :class:`SpikingNetwork` (weights rounded to binary16).

        The hardware implements the **detached** reset path (numerics.md §4.1).  A model built
        with ``detach_reset=False`` is refused unless ``force_detach_reset=True`` (its hw-mode
        gradients then are those of the detached variant).  Unsupported layers (batch norm,
        average pooling, biases), surrogates (``atan``) raise ``ValueError``.
        ``wg_accumulator`` other than ``"exact"`` selects a measurement ablation (sequential FP32
        or FP16 WG accumulation, FC only) that is *not* the contract.  ``spike_input``: see the
        class's members.
        """
        cfg = model.neuron
        if not cfg.detach_reset and not force_detach_reset:
            raise ValueError("hw mode implements the detached reset path (detach_reset=True); build the "
                             "float model with NeuronConfig(detach_reset=True), or pass "
                             "force_detach_reset=True to train it with the detached gradient")
        if cfg.surrogate not in SUPPORTED_SURROGATES:
            raise ValueError(f"surrogate {cfg.surrogate!r} has no hardware unit; hw mode supports: "
                             f"{', '.join(SUPPORTED_SURROGATES)}")
        stages, weights, modules = [], [], []
        neuron_params = None
        for m in model.body:
            if isinstance(m, L.Flatten):
                stages.append(_Stage("flatten"))
            elif isinstance(m, L.Linear):
                if m.bias is not None:
                    raise ValueError("hw mode: linear layers must have no bias")
                stages.append(_Stage("fc", index=len(weights)))
                weights.append(m.weight)
                modules.append(m)
            elif isinstance(m, L.Conv2d):
                if m.bias is not None:
                    raise ValueError("hw mode: conv layers must have no bias")
                kh, kw = m.kernel_size
                if (kh != kw or m.stride[0] != m.stride[1] or m.padding[0] != m.padding[1]
                        or m.dilation != (1, 1) or m.groups != 1 or m.padding_mode != "zeros"):
                    raise ValueError("hw mode supports square kernels, equal strides and zero padding, "
                                     "no dilation or groups")
                stages.append(_Stage("conv", index=len(weights), kernel=kh, stride=m.stride[0],
                                     padding=m.padding[0]))
                weights.append(m.weight)
                modules.append(m)
            elif isinstance(m, MultiStepNeuron):
                if not stages or stages[-1].kind not in ("fc", "conv"):
                    raise ValueError("hw mode: every neuron layer must follow an fc or conv layer directly")
                neuron_params = N.NeuronParams.from_config(cfg, k=float(m.k.detach()))   # per layer
                stages.append(_Stage("neuron", params=neuron_params))
            elif isinstance(m, L.MaxPool2d):
                k = m.kernel_size if isinstance(m.kernel_size, int) else m.kernel_size[0]
                s = m.stride if isinstance(m.stride, int) else m.stride[0]
                if (m.kernel_size not in (k, (k, k)) or s != k or m.padding not in (0, (0, 0))
                        or m.dilation not in (1, (1, 1)) or m.ceil_mode):
                    raise ValueError("hw mode supports max pooling with kernel = stride, no padding")
                stages.append(_Stage("maxpool", kernel=k))
            else:
                raise ValueError(f"hw mode does not support {type(m).__name__} layers (supported: "
                                 f"Linear, Conv2d, neurons, MaxPool2d, Flatten; no BatchNorm or AvgPool)")
        weights.append(model.readout.weight)
        modules.append(model.readout)
        net = cls(stages, weights, neuron_params, model.input_shape, lr, loss_scale, momentum, modules,
                  wg_accumulator, spike_input)
        return net

    def copy_to(self, model) -> None:
        """Write the binary16 weights into ``model`` (a float network of the same layout).
        KLIF ``k`` stays as it was (fixed in hw mode)."""
        targets = [m for m in model.body if isinstance(m, (L.Linear, L.Conv2d))] + [model.readout]
        if len(targets) != len(self.weights) or any(t.weight.shape != w.shape for t, w in zip(targets, self.weights)):
            raise ValueError("copy_to: model layout differs from this network")
        with torch.no_grad():
            for t, w in zip(targets, self.weights):
                t.weight.copy_(w.to(t.weight.dtype))

    # ------------------------------------------------------------------ passes
    def _check_input(self, x_seq):
        if x_seq.dim() != len(self.input_shape) + 2 or tuple(x_seq.shape[2:]) != self.input_shape:
            raise ValueError(f"expected input [T, N, {', '.join(map(str, self.input_shape))}], "
                             f"got {tuple(x_seq.shape)}")

    def _weight_forward(self, st: _Stage, x: torch.Tensor) -> torch.Tensor:
        """x: [T, N, ...] bool or binary16 → currents [T, N, ...]."""
        steps, batch = x.shape[:2]
        w = self.weights[st.index]
        analog = x.dtype != torch.bool
        if analog and steps > 1 and FW.dedup_steps(x):
            rows, reps = x[0], steps            # identical steps: compute once, same bits
        else:
            rows, reps = x.reshape(steps * batch, *x.shape[2:]), 1
        if st.kind == "fc":
            cur = FW.fc_forward(w, rows)
        else:
            cur = FW.conv2d_forward(w, rows, st.stride, st.padding)
        if reps > 1:
            return cur.unsqueeze(0).expand(steps, *cur.shape).clone()
        return cur.reshape(steps, batch, *cur.shape[1:])

    def _forward(self, x_seq, traces: list | None):
        self._check_input(x_seq)
        steps = x_seq.shape[0]
        x = FW.host_input(x_seq, self.spike_input)
        saved = []
        cur = x
        lt = None
        for st in self.stages:
            if st.kind == "flatten":
                saved.append(cur.shape)
                cur = cur.flatten(2)
            elif st.kind in ("fc", "conv"):
                current = self._weight_forward(st, cur)
                saved.append(cur)
                lt = LayerTrace(st.kind, cur, current, self.weights[st.index])
                if traces is not None:
                    traces.append(lt)
                cur = current
            elif st.kind == "neuron":
                s, h = N.neuron_forward(st.params, cur)
                saved.append((s, h))
                lt.potential, lt.spikes = h, s
                cur = s
            else:  # maxpool
                t_, n_ = cur.shape[:2]
                pooled, first = FW.maxpool_forward(cur.reshape(t_ * n_, *cur.shape[2:]), st.kernel)
                saved.append((cur.shape, first))
                cur = pooled.reshape(t_, n_, *pooled.shape[1:])
        body_shape = cur.shape
        feats = cur.flatten(2)
        inv_t = F.const(1.0 / steps)
        current, v, logits16 = FW.readout_forward(self.weights[-1], feats, inv_t)
        rt = LayerTrace("readout", feats, current, self.weights[-1], v=v, logits=logits16)
        if traces is not None:
            traces.append(rt)
        return logits16, saved, feats, body_shape, inv_t, rt

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        """Inference: logits ``[N, classes]`` as float32 (exact conversion from binary16)."""
        with torch.no_grad():
            return self._forward(x_seq, None)[0].float()

    __call__ = forward

    def step(self, x_seq: torch.Tensor, labels: torch.Tensor, update: bool = True,
             trace: bool = False) -> StepTrace:
        """One training step (FP, host loss, BP, WG, update).  ``trace=True`` keeps every
        intermediate in the returned :class:`StepTrace`."""
        with torch.no_grad():
            return self._step(x_seq, labels, update, trace)

    def _step(self, x_seq, labels, update, trace):
        labels = torch.as_tensor(labels, dtype=torch.long)
        traces = [] if trace else None
        logits16, saved, feats, body_shape, inv_t, rt = self._forward(x_seq, traces)
        steps = self._steps = x_seq.shape[0]
        loss, g16 = host_loss_grad(logits16, labels, self.loss_scale)
        grads: list[torch.Tensor | None] = [None] * len(self.weights)
        # readout
        d_out, ds = B.readout_backward(self.weights[-1], g16, inv_t, steps)
        acc, grads[-1] = self._weight_grad("fc", d_out.unsqueeze(0).expand(steps, *d_out.shape)
                                           .reshape(-1, d_out.shape[1]), feats.reshape(-1, feats.shape[2]))
        rt.di, rt.grad_acc, rt.grad = d_out, acc, grads[-1]
        layer_traces = [t for t in traces if t.kind != "readout"] if trace else None
        ds = ds.reshape(body_shape)
        di = None
        first_weight = min(i for i, s in enumerate(self.stages) if s.kind in ("fc", "conv"))
        for pos in range(len(self.stages) - 1, first_weight - 1, -1):  # nothing below the first layer learns
            st, sv = self.stages[pos], saved[pos]
            if st.kind == "flatten":
                ds = ds.reshape(sv)
            elif st.kind == "maxpool":
                shape, first = sv
                t_, n_ = shape[:2]
                ds = B.maxpool_backward(ds.reshape(t_ * n_, *ds.shape[2:]), first, st.kernel,
                                        shape[2:]).reshape(shape)
            elif st.kind == "neuron":
                s, h = sv
                sg = N.surrogate_values(st.params, h)
                ds = B.apply_need(ds, F.nonzero(sg))
                ng = N.neuron_backward(st.params, h, s, ds, sg)
                di = ng.di
                if trace:
                    lt = layer_traces[self.stages[pos - 1].index]
                    lt.surrogate, lt.ds, lt.du, lt.di = ng.h, ds, ng.du, ng.di
            else:  # fc / conv
                x_in = sv
                t_, n_ = x_in.shape[:2]
                rows_in = x_in.reshape(t_ * n_, *x_in.shape[2:])
                rows_di = di.reshape(t_ * n_, *di.shape[2:])
                w = self.weights[st.index]
                acc, grads[st.index] = self._weight_grad(st.kind, rows_di, rows_in, st)
                if trace:
                    lt = layer_traces[st.index]
                    lt.grad_acc, lt.grad = acc, grads[st.index]
                if pos != first_weight:
                    if st.kind == "fc":
                        ds = B.fc_backward(w, rows_di)
                    else:
                        ds = B.conv2d_backward(w, rows_di, x_in.shape[2:], st.stride, st.padding)
                    ds = ds.reshape(x_in.shape)
        updated = False
        if update:
            if all(bool(torch.isfinite(g).all()) for g in grads):
                for i, g in enumerate(grads):
                    self.weights[i], self.buffers[i] = sgd_update(self.weights[i], g, self.lr16, self.scale_shift,
                                                                  self.momentum16, self.buffers[i])
                updated = True
            else:
                self.overflow_steps += 1
        if trace:
            for i, lt in enumerate(layer_traces + [rt]):
                lt.weight_after = self.weights[i]
        return StepTrace(loss, logits16.float(), g16, traces or [], updated)

    def _weight_grad(self, kind, rows_di, rows_in, st=None):
        """WG: ``(exact accumulator or None, binary16 gradient)``."""
        if self.wg_accumulator != "exact":
            # rows are (t, n); the ablation's fixed order is n ascending, then t ascending
            return None, G.sequential_fc_weight_grad(*self._sample_major(rows_di, rows_in), self.wg_accumulator)
        if kind == "fc":
            acc = G.fc_weight_grad(rows_di, rows_in)
        else:
            acc = G.conv2d_weight_grad(rows_di, rows_in, st.kernel, st.stride, st.padding)
        return acc, acc.to_fp16()

    def _sample_major(self, *rows):
        steps = self._steps
        return [r.reshape(steps, -1, *r.shape[1:]).transpose(0, 1).reshape(r.shape) for r in rows]

    def train_step(self, x_seq: torch.Tensor, labels: torch.Tensor):
        """FP, host loss gradient, BP, WG and the update; returns ``(loss, logits float32)``."""
        out = self.step(x_seq, labels, update=True, trace=False)
        return out.loss, out.logits

    def registers(self) -> dict:
        """Register constants of the neuron and surrogate units (16-bit patterns) and the SGD."""
        return {"neuron": self.neuron.registers(), "lr": int(F.bits(self.lr16)),
                "loss_scale_shift": self.scale_shift,
                "momentum": int(F.bits(self.momentum16)) if self.momentum16 is not None else None}
