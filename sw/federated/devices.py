"""Device backends a federated worker trains on, behind one factory.

A worker asks :func:`make_device` for its device by name; everything else in the federation
(partitions, messages, aggregation) is the same for every device.  The device holds the
weights in its own precision and exchanges them as named numpy arrays.

Devices
-------
``golden``
    The golden device: :class:`trident.golden.training.HwBackend`, the hardware-exact
    binary16 FP/BP/WG/SGD kernels.  Weights travel as binary16.
``sim``
    The SoC RTL in Verilator, through the driver (:class:`trident.sw.device_backend.DeviceBackend`):
    the same binary16 weights bit for bit as ``golden``, FedAvg and FedProx (the device computes
    the gradients, the host adds the proximal term to them in DRAM, the device updates).
``board``
    A Trident FPGA board over UART/Ethernet — not available yet, likewise.

New devices plug in with :func:`register_device` (a factory ``(model, config) → device``);
:data:`DEVICES` lists every name the CLI accepts, :func:`available_devices` those that work.

FedProx on the binary16 device
------------------------------
FedProx adds ``(μ/2)‖w − w_g‖²`` to the local loss, i.e. ``μ(w − w_g)`` to the gradient.  The
WG engine hands over the *scaled* gradient ``G = S·∂L/∂W`` (``S = 2^s``, the loss scale), so
the proximal term is added in the same units, in binary16, in this fixed order, per element::

    d  = RNE16(W − W_g)                    (one binary16 subtraction)
    G' = RNE16(c · d + G)                  (one fused multiply-add), c = RNE16(μ · S)
    W  ← the device's SGD update with G'   (docs/numerics.md §6: momentum fma, then one
                                            fused  W − lr·m·2^−s)

``W_g`` is the global model received at the start of the round (binary16, held unchanged).
If any ``G'`` is ±Inf/NaN the step is skipped and counted as an overflow step, exactly as the
device does for ``G``.  With ``μ = 0`` the proximal path is not taken at all, so FedProx(0)
is bit-identical to FedAvg.  ``c`` is a binary16 register: for the usual μ (1e-4 … 1) and
``S = 1024`` it is exact up to RNE16(μ).
"""
from __future__ import annotations

from typing import Callable, Protocol

import numpy as np
import torch

from trident.golden.hw import fp16 as F
from trident.golden.hw.update import sgd_update
from trident.golden.network import SpikingNetwork
from trident.golden.training import HwBackend

__all__ = ["FederatedDevice", "GoldenDevice", "SimDevice", "DeviceUnavailableError", "DEVICES", "make_device",
           "register_device", "available_devices", "check_device", "proximal_gradients"]


def proximal_gradients(weights, global_weights, grads, c16) -> list[torch.Tensor]:
    """FedProx on binary16 (the module docstring): ``G' = RNE16(c·RNE16(W − W_g) + G)`` per
    layer, ``c16 = RNE16(μ·S)`` a binary16 scalar."""
    out = []
    for w, wg, g in zip(weights, global_weights, grads):
        d = F.sub(w, wg)
        out.append(F.fma(c16.expand_as(d), d, g))
    return out


class DeviceUnavailableError(ValueError):
    """The requested device exists in the design but cannot be used yet."""


class FederatedDevice(Protocol):
    name: str
    precision: str

    def get_weights(self) -> dict[str, np.ndarray]:
        """The learned arrays by name, in the device's precision (a copy)."""

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        """Load the global model and reset the optimiser state (a new round starts)."""

    def begin_round(self, mu: float) -> None:
        """Remember the current weights as ``w_global``; ``mu > 0`` enables the proximal term."""

    def train_step(self, x_seq: torch.Tensor, labels: torch.Tensor) -> tuple[float, torch.Tensor]: ...

    def predict(self, x_seq: torch.Tensor) -> torch.Tensor: ...


class GoldenDevice:
    """The hardware-exact binary16 device model (``HwBackend``), with FedProx in binary16."""

    name = "golden"
    precision = "fp16-hw"

    def __init__(self, model: SpikingNetwork, lr: float, momentum: float = 0.0, loss_scale: float = 1024.0):
        self.backend = HwBackend(model, lr=lr, momentum=momentum, loss_scale=loss_scale)
        self.net = self.backend.net
        self.names = list(self.backend.names)
        self._global: list[torch.Tensor] | None = None
        self._c16: torch.Tensor | None = None
        self.mu = 0.0

    @property
    def overflow_steps(self) -> int:
        return self.net.overflow_steps

    def get_weights(self) -> dict[str, np.ndarray]:
        return {n: w.detach().numpy().copy() for n, w in zip(self.names, self.net.weights)}

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        if list(weights) != self.names:
            raise ValueError(f"weights {list(weights)} do not match the device's layers {self.names}")
        new = []
        for name, old in zip(self.names, self.net.weights):
            a = np.asarray(weights[name])
            if a.shape != tuple(old.shape) or a.dtype != np.float16:
                raise ValueError(f"{name}: got {a.dtype}{list(a.shape)}, the device holds float16{list(old.shape)}")
            new.append(torch.from_numpy(a.copy()))
        self.net.weights = new
        self.net.buffers = [None] * len(new)
        self.net.overflow_steps = 0

    def begin_round(self, mu: float) -> None:
        self.mu = float(mu)
        if self.mu > 0:
            self._global = [w.clone() for w in self.net.weights]
            self._c16 = F.const(self.mu * self.net.loss_scale)
        else:
            self._global, self._c16 = None, None

    def train_step(self, x_seq, labels):
        if self.mu <= 0:
            return self.backend.train_step(x_seq, labels)
        torch_threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return self._prox_step(x_seq, labels)
        finally:
            torch.set_num_threads(torch_threads)

    def _prox_step(self, x_seq, labels):
        net = self.net
        out = net.step(x_seq, labels, update=False, trace=True)   # FP, host loss, BP, WG; no update
        grads = [lt.grad for lt in out.layers]
        if len(grads) != len(net.weights):
            raise RuntimeError("trace does not cover every weight layer")
        prox = proximal_gradients(net.weights, self._global, grads, self._c16)
        if all(bool(torch.isfinite(g).all()) for g in prox):
            for i, g in enumerate(prox):
                net.weights[i], net.buffers[i] = sgd_update(net.weights[i], g, net.lr16, net.scale_shift,
                                                            net.momentum16, net.buffers[i])
        else:
            net.overflow_steps += 1
        return out.loss, out.logits

    def predict(self, x_seq):
        return self.backend.predict(x_seq)


def _golden(model: SpikingNetwork, config) -> GoldenDevice:
    return GoldenDevice(model, lr=config.lr, momentum=config.momentum, loss_scale=config.loss_scale)


class SimDevice:
    """The SoC RTL in simulation: one training step is the runtime's device step; under FedProx
    the host adds the proximal term to the device's gradients before the device's update.

    ``transport``: ``sim`` (the RTL) or ``golden-soc`` (the same driver on the golden device
    model, for quick checks)."""

    name = "sim"
    precision = "fp16-hw"

    def __init__(self, model: SpikingNetwork, config, transport: str = "sim"):
        from trident.sw.device_backend import DeviceBackend, open_device
        self.backend = DeviceBackend(model, lambda words: open_device(transport, words), lr=config.lr,
                                     momentum=config.momentum, loss_scale=config.loss_scale,
                                     batch_size=config.batch_size, steps=config.T, direct_input=True,
                                     host_update=True)
        self.names = list(self.backend.names)
        self._adjust = None

    @property
    def overflow_steps(self) -> int:
        return self.backend.overflow_steps

    def get_weights(self) -> dict[str, np.ndarray]:
        weights = self.backend.weights()
        return {n: weights[n].detach().numpy().copy() for n in self.names}

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        if list(weights) != self.names:
            raise ValueError(f"weights {list(weights)} do not match the device's layers {self.names}")
        shapes = [tuple(w.shape) for w in self.backend.net.weights]
        tensors = []
        for name, shape in zip(self.names, shapes):
            a = np.asarray(weights[name])
            if a.shape != shape or a.dtype != np.float16:
                raise ValueError(f"{name}: got {a.dtype}{list(a.shape)}, the device holds float16{list(shape)}")
            tensors.append(torch.from_numpy(a.copy()))
        momentum = [F.zeros(*t.shape) for t in tensors] if self.backend.program.momentum else None
        self.backend.load_state_dict({"weights": tensors, "buffers": momentum, "overflow_steps": 0})

    def begin_round(self, mu: float) -> None:
        self._adjust = None
        if mu > 0:
            current = self.backend.weights()
            w_global = [current[n].clone() for n in self.names]
            c16 = F.const(mu * self.backend.net.loss_scale)

            def adjust(weights, grads):
                return proximal_gradients(weights, w_global, grads, c16)
            self._adjust = adjust

    def train_step(self, x_seq, labels):
        return self.backend.train_step(x_seq, labels, adjust_gradients=self._adjust)

    def predict(self, x_seq):
        return self.backend.predict(x_seq)

    def close(self) -> None:
        self.backend.close()


def _sim(model: SpikingNetwork, config) -> SimDevice:
    if config.encoding not in (None, "direct"):
        raise DeviceUnavailableError("the sim device is compiled for direct-encoded input")
    return SimDevice(model, config)


def _unavailable(name: str, what: str, issue: str) -> Callable:
    def factory(model, config):
        raise DeviceUnavailableError(f"device {name!r} ({what}) is not available yet: {issue}. "
                                     f"Use --device golden (the hardware-exact FP16 device model).")
    factory.unavailable = True
    return factory


DEVICES: dict[str, Callable] = {
    "golden": _golden,
    "sim": _sim,
    "board": _unavailable("board", "a Trident FPGA board over UART/Ethernet", "there is no board transport yet"),
}


def register_device(name: str, factory: Callable) -> None:
    """Add or replace a device factory ``(model, config) → FederatedDevice``."""
    DEVICES[name] = factory


def available_devices() -> list[str]:
    return [name for name, f in DEVICES.items() if not getattr(f, "unavailable", False)]


def check_device(name: str) -> None:
    """Raise ``ValueError`` (unknown) or :class:`DeviceUnavailableError` before anything starts."""
    if name not in DEVICES:
        raise ValueError(f"unknown device {name!r}; valid choices: {', '.join(DEVICES)}")
    factory = DEVICES[name]
    if getattr(factory, "unavailable", False):
        factory(None, None)


def make_device(name: str, model: SpikingNetwork, config) -> FederatedDevice:
    """The device ``name`` holding ``model``'s layout, trained with ``config``'s lr/momentum/loss scale."""
    check_device(name)
    return DEVICES[name](model, config)
