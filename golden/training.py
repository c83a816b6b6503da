"""Float32 surrogate-gradient BPTT: the reference training path of the golden model.

A *backend* is the part of training that differs between precisions and devices: it
owns the weights and whatever updates them.  The runtime (``trident.sw.runtime``) drives
any backend through the same calls.

Members
-------
Backend
    The protocol: ``train_step``, ``predict``, ``state_dict``/``load_state_dict`` (all
    that is needed to resume exactly), ``weights`` (the tensors a run is judged by).
Fp32Backend
    Autograd BPTT in float32 with SGD (optional momentum) or Adam.
HwBackend
    The hardware-exact FP16 kernels: FP, BP, WG and SGD as the device computes them.
device_tensor_names
    The names a device's weights carry in a report (the float model's).
weights_sha256
    A hash of named weight tensors, so two runs can be compared bit for bit.
"""
from __future__ import annotations

import contextlib
import hashlib
from typing import Protocol

import numpy as np
import torch
from torch.nn import functional as F

from .network import SpikingNetwork

__all__ = ["Backend", "Fp32Backend", "HwBackend", "weights_sha256", "device_tensor_names", "OPTIMIZERS"]

OPTIMIZERS = ("sgd", "adam")


class Backend(Protocol):
    precision: str

    def train_step(self, x_seq: torch.Tensor, labels: torch.Tensor) -> tuple[float, torch.Tensor]:
        """One optimisation step on a batch; returns the loss and the logits."""

    def predict(self, x_seq: torch.Tensor) -> torch.Tensor:
        """Logits ``[N, classes]`` for a batch, without learning."""

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...

    def weights(self) -> dict[str, torch.Tensor]:
        """The learned tensors, by name, in the precision the device holds them."""


def weights_sha256(weights: dict[str, torch.Tensor]) -> str:
    """SHA-256 over names, dtypes, shapes and raw bytes of the tensors, in name order."""
    digest = hashlib.sha256()
    for name in sorted(weights):
        array = np.ascontiguousarray(weights[name].detach().cpu().numpy())
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


class Fp32Backend:
    """Float32 BPTT with autograd through the (fused) multi-step neurons.

    Parameters
    ----------
    model : SpikingNetwork
    optimizer : {"sgd", "adam"}
    lr : float
    momentum : float
        SGD only.
    k_lr_scale : float
        Learning-rate multiplier for KLIF's ``k``.  Its gradient sums over every neuron and
        step of its layer, so at the weights' rate it runs away (and, once ``k ≤ 0``, the ReLU
        silences the layer for good); a smaller rate keeps it learning.
    """

    precision = "fp32"

    def __init__(self, model: SpikingNetwork, optimizer: str = "sgd", lr: float = 0.1,
                 momentum: float = 0.9, k_lr_scale: float = 0.05):
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {optimizer!r}; valid choices: {', '.join(OPTIMIZERS)}")
        if not lr > 0:
            raise ValueError(f"learning rate must be > 0, got {lr}")
        self.model = model
        scales = [n.k for n in model.neurons() if n.k.requires_grad]
        weights = [p for p in model.parameters() if all(p is not k for k in scales)]
        groups = [{"params": weights}] + ([{"params": scales, "lr": lr * k_lr_scale}] if scales else [])
        if optimizer == "sgd":
            self.optimizer = torch.optim.SGD(groups, lr=lr, momentum=momentum)
        else:
            self.optimizer = torch.optim.Adam(groups, lr=lr)

    def train_step(self, x_seq, labels):
        self.model.train()
        logits = self.model(x_seq)
        loss = F.cross_entropy(logits, labels)
        if not torch.isfinite(loss):
            return loss.item(), logits.detach()  # the runtime stops before anything is updated
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.item(), logits.detach()

    @torch.no_grad()
    def predict(self, x_seq):
        self.model.eval()
        return self.model(x_seq)

    def state_dict(self):
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state):
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])

    def weights(self):
        return dict(self.model.state_dict())


@contextlib.contextmanager
def _one_thread():
    """The FP16 kernels are many small operations: the intra-op thread pool costs more than it
    gives (digits MLP epoch: 1.0 s on one thread, 12.8 s on two on a 2-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def device_tensor_names(model: SpikingNetwork) -> tuple[list[str], dict[str, torch.Tensor]]:
    """How a device's weights are named in a report: the float model's names of its weight
    layers (body first, the readout last), and KLIF ``k`` values, which stay fixed on a device."""
    weighted = [name for name, m in model.body.named_children() if hasattr(m, "weight")]
    names = [f"body.{name}.weight" for name in weighted] + ["readout.weight"]
    fixed = {f"body.{name}.k": m.k.detach().clone() for name, m in model.body.named_children()
             if getattr(m, "k", None) is not None and m.k.requires_grad}
    return names, fixed


class HwBackend:
    """Training through the hardware-exact FP16 kernels (:mod:`trident.golden.hw`), no autograd.

    The weights live in binary16 exactly as the device holds them; ``weights()`` returns
    them under the float model's parameter names, so a report's ``weights_sha256`` compares
    directly with any other device that follows the contract.  ``spike_input``: the inputs are
    0/1 spikes (``HwExactNetwork``'s option; a device must be compiled the same way).
    """

    precision = "fp16-hw"

    def __init__(self, model: SpikingNetwork, lr: float, momentum: float = 0.0, loss_scale: float = 1024.0,
                 spike_input: bool = False):
        from .hw import HwExactNetwork
        self.model = model
        self.net = HwExactNetwork.from_float(model, lr=lr, loss_scale=loss_scale, momentum=momentum,
                                             spike_input=spike_input)
        self.names, self.fixed = device_tensor_names(model)

    def train_step(self, x_seq, labels):
        with _one_thread():
            return self.net.train_step(x_seq, labels)

    def predict(self, x_seq):
        with _one_thread():
            return self.net.forward(x_seq)

    def state_dict(self):
        return {"weights": [w.clone() for w in self.net.weights],
                "buffers": [None if b is None else b.clone() for b in self.net.buffers],
                "overflow_steps": self.net.overflow_steps}

    def load_state_dict(self, state):
        self.net.weights = [w.clone() for w in state["weights"]]
        self.net.buffers = [None if b is None else b.clone() for b in state["buffers"]]
        self.net.overflow_steps = state["overflow_steps"]

    def weights(self):
        self.net.copy_to(self.model)  # keep the float model in step for evaluation and export
        return dict(zip(self.names, self.net.weights)) | self.fixed
