"""DRAM traffic of a GPU BPTT training step, counted operator by operator (docs/dram-traffic.md).

The model is what an eager PyTorch implementation of surrogate-gradient BPTT requests from
memory: every ATen operator of one training step (forward with per-step neuron tensors kept
for backward, the loss, the backward pass and the SGD update) reads each of its tensor
operands and writes each of its results once.  The counter runs the real float32 golden
model (:class:`~trident.golden.network.SpikingNetwork` with the per-step neuron path, the
way SpikingJelly's multi-step mode without its CuPy kernels runs) under a
``TorchDispatchMode`` and adds up the bytes, so the figure follows the network exactly
instead of a hand-written formula.

What it leaves out, on purpose and in the GPU's favour: operators that only make views
(no data moves); broadcast operands are counted at their stored size, not their expanded
one; and nothing is charged for kernel launches, the optimizer's extra passes over the
gradients beyond its operators, or the cuBLAS re-reads of matrix tiles.  What it does not
model: caches — on a GPU with a large L2, tensors of a small network may never reach DRAM,
so for tiny networks this is the traffic of the kernels' operands, an upper bound of the
DRAM bytes.  Mixed precision would halve most operands; ``bytes_fp16_bound`` is that
optimistic bound (every counted byte halved).

Members
-------
TrafficCount
    Bytes read and written per phase (``forward``, ``backward``, ``update``).
gpu_bptt_traffic(model, x_seq, labels, lr=0.1, momentum=0.9) -> TrafficCount
    Count one training step of ``model`` on the batch ``x_seq [T, N, ...]``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

__all__ = ["TrafficCount", "gpu_bptt_traffic"]

PHASES = ("forward", "backward", "update")


def _is_view_op(func) -> bool:
    schema = func._schema
    # ops whose result aliases an input without a write annotation only re-describe memory
    return bool(schema.returns) and all(r.alias_info is not None and not r.alias_info.is_write
                                        for r in schema.returns)


def _bytes(t: torch.Tensor) -> int:
    """Bytes an operator touches in ``t``: its elements, but a broadcast (stride-0) operand
    only as much as is stored."""
    dense = t.numel() * t.element_size()
    try:
        stored = t.untyped_storage().nbytes() - t.storage_offset() * t.element_size()
    except (RuntimeError, NotImplementedError):
        return dense
    return min(dense, max(stored, 0))


def _tensors(tree):
    out = []
    for item in tree:
        if isinstance(item, torch.Tensor):
            out.append(item)
        elif isinstance(item, (list, tuple)):
            out.extend(_tensors(item))
    return out


@dataclass
class TrafficCount:
    """Bytes per phase.

    Members
    -------
    read, written : dict[str, int]
        Per phase (``forward``, ``backward``, ``update``).
    ops : dict[str, int]
        Operators counted per phase.
    """

    read: dict = field(default_factory=lambda: dict.fromkeys(PHASES, 0))
    written: dict = field(default_factory=lambda: dict.fromkeys(PHASES, 0))
    ops: dict = field(default_factory=lambda: dict.fromkeys(PHASES, 0))

    @property
    def total(self) -> int:
        return sum(self.read.values()) + sum(self.written.values())

    @property
    def bytes_fp16_bound(self) -> int:
        return self.total // 2

    def as_dict(self) -> dict:
        return {"read": dict(self.read), "written": dict(self.written), "ops": dict(self.ops),
                "total_bytes": self.total, "fp16_bound_bytes": self.bytes_fp16_bound}


class _Counter(TorchDispatchMode):
    def __init__(self, count: TrafficCount):
        super().__init__()
        self.count = count
        self.phase = "forward"

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        if not _is_view_op(func):
            ins = {id(t): t for t in _tensors(list(args) + list(kwargs.values()))}
            outs = _tensors(result if isinstance(result, (list, tuple)) else [result])
            self.count.read[self.phase] += sum(_bytes(t) for t in ins.values())
            self.count.written[self.phase] += sum(_bytes(t) for t in outs)
            self.count.ops[self.phase] += 1
        return result


def gpu_bptt_traffic(model, x_seq: torch.Tensor, labels: torch.Tensor, lr: float = 0.1,
                     momentum: float = 0.9) -> TrafficCount:
    """Count the bytes of one float32 BPTT training step (SGD with momentum).

    ``model`` is switched to the per-step neuron path for the count (every step's tensors
    are separate autograd nodes, as in a GPU implementation that keeps per-step tensors for
    backward) and restored afterwards; its weights are updated by the step.
    """
    fused = [getattr(m, "fused", None) for m in model.modules()]
    for m in model.modules():
        if hasattr(m, "fused"):
            m.fused = False
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, foreach=False)
    # the momentum buffers exist from the second step on: count a step in the steady state
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(x_seq.float()), labels).backward()
    optimizer.step()
    count = TrafficCount()
    counter = _Counter(count)
    try:
        with counter:
            model.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x_seq.float()), labels)
            counter.phase = "backward"
            loss.backward()
            counter.phase = "update"
            optimizer.step()
    finally:
        for m, f in zip(model.modules(), fused):
            if f is not None:
                m.fused = f
    return count
