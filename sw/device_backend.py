"""Training on a Trident device through the driver: the runtime's backend for ``--device sim``
(the SoC RTL in a simulator) and for the driver's golden device model.

The network is compiled once (:mod:`trident.golden.hw.compiler`) and its DRAM image loaded;
then every training step is what the host does on a board (docs/numerics.md §7):

1. write the batch's binary16 inputs into DRAM (DMA);
2. run the forward program on the device's cores (every phase through the SoC's program queue);
3. read the logits, compute the loss and its scaled gradient ``G`` on the host, write ``G``;
4. run the backward program (BP, WG, and the guarded SGD update, all on the device; with the
   UPDATE in a phase of its own, the host checks the queue's overflow flag before queueing it);
5. read the counters.

A batch smaller than the compiled one (the last of an epoch) is padded with zero inputs and
zero rows of ``G``: padding samples contribute only zero terms, which BP and WG skip, so the
result is bit for bit that of the smaller batch (``HwBackend``'s).

Members
-------
DeviceBackend
    The backend (``train_step``, ``predict``, ``state_dict``/``load_state_dict``, ``weights``,
    ``device_report``).
open_device(kind, dram_words, cores=1, simulator=None, core_kwargs=None, dram="bram", axi=None) -> Device
    A :class:`~trident.sw.driver.Device` on the ``golden`` or ``sim`` transport.
AxiPort
    The simulated SoC's AXI DRAM port: burst length, the cores' DMA runs, the memory's stalls.
training_core(**overrides) -> (dict, CoreParams)
    The core the runtime trains on.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from trident.golden.hw import compiler as C
from trident.golden.hw import descriptors as D
from trident.golden.hw import fp16 as F
from trident.golden.hw.network import HwExactNetwork, host_loss_grad
from trident.golden.training import device_tensor_names

__all__ = ["DeviceBackend", "open_device", "training_core", "core_kwargs_for", "DEVICE_KINDS",
           "AXI_DMA_RUN", "AxiPort"]

DEVICE_KINDS = ("golden-soc", "sim")


def _dram_words_for(image_words: int) -> int:
    """The SoC's DRAM: the next power of two that holds the image (at least 64 k words)."""
    return max(1 << 16, 1 << (image_words - 1).bit_length())


def core_kwargs_for(model) -> dict:
    """The ``TridentCore`` arguments a model needs beyond the defaults: the conv engines for a
    CNN (a larger core: only when the model has a convolution)."""
    return {"conv": True} if any(isinstance(m, torch.nn.Conv2d) for m in model.modules()) else {}


def training_core(**overrides) -> tuple[dict, D.CoreParams]:
    """The core the runtime trains on: ``TridentCore``'s constructor arguments (its defaults
    unless overridden) and the :class:`CoreParams` the compiler and the golden device assume."""
    from trident.rtl.core.core import core_params
    return dict(overrides), core_params(**overrides)


#: ``TridentCore(dma_run=…)`` on an AXI DRAM port: a read channel keeps its turn for as many
#: words as it may have in flight (the DMA's depth), so its runs reach the port as bursts.
AXI_DMA_RUN = 8


@dataclass(frozen=True)
class AxiPort:
    """The AXI4 DRAM port of a simulated SoC (``open_device("sim", …, dram="axi", axi=…)``).

    Members
    -------
    max_burst : int
        Longest INCR burst the SoC's AXI master issues (``SoC(max_burst=…)``; 1: single beats).
    dma_run : int
        ``TridentCore(dma_run=…)``: words a core's read channel takes in a row.
    stall : float
        Probability that cocotbext-axi's ``AxiRam`` pauses a channel in a cycle.
    command_cycles : int
        The memory takes an address (AR or AW) on one cycle in this many.
    """
    max_burst: int = 16
    dma_run: int = AXI_DMA_RUN
    stall: float = 0.0
    command_cycles: int = 1


def open_device(kind: str, dram_words: int, cores: int = 1, simulator: str | None = None,
                core_kwargs: dict | None = None, dram: str = "bram", axi: AxiPort | None = None):
    """Open a device with ``cores`` cores of ``TridentCore(**core_kwargs)`` and ``dram_words``
    words of DRAM.

    ``kind``: ``"golden-soc"`` (the driver's device model: the SoC's registers and memory,
    the golden kernels with that core's limits) or ``"sim"`` (the SoC RTL on ``simulator``:
    ``verilator`` by default; ``dram="axi"``: the SoC's AXI4 port, cocotbext-axi's ``AxiRam``
    behind it, as ``axi`` says — :class:`AxiPort`'s defaults unless given).
    """
    from trident.rtl.soc.regmap import SoCParams
    from trident.sw.driver import Device, GoldenTransport, golden_executor

    if axi is not None and (kind, dram) != ("sim", "axi"):
        raise ValueError(f"axi={axi} is for open_device('sim', …, dram='axi'), not kind={kind!r}, dram={dram!r}")
    kwargs, limits = training_core(**(core_kwargs or {}))
    if kind == "golden-soc":
        return Device(GoldenTransport(SoCParams(cores=cores, dram_words=dram_words),
                                      executor=golden_executor(limits)))
    if kind == "sim":
        from trident.rtl.core.core import TridentCore
        from trident.rtl.soc.soc import SoC
        from trident.sw.driver.sim import SimTransport
        core = dict(kwargs, dram_words=dram_words)
        soc = {"core": TridentCore, "core_params": core, "cores": cores, "dram_words": dram_words,
               "dram": dram}
        transport = {}
        if dram == "axi":
            axi = axi or AxiPort()
            core["dma_run"] = axi.dma_run
            soc["max_burst"] = axi.max_burst
            transport = {"axi_stall": axi.stall, "axi_command_cycles": axi.command_cycles}
        return Device(SimTransport(SoC, soc, simulator=simulator or "verilator", **transport))
    raise ValueError(f"unknown device kind {kind!r}; valid: {', '.join(DEVICE_KINDS)}")


class DeviceBackend:
    """Training on a device (see the module docstring).

    Parameters
    ----------
    model : SpikingNetwork
        Its weights are rounded to binary16 and loaded; KLIF ``k`` stays fixed (as in fp16-hw).
    device : trident.sw.driver.Device, or a callable ``dram_words -> Device``
        The device, or a factory that opens one large enough for the compiled image.
    lr, momentum, loss_scale : float
        SGD settings (registers in the image).
    batch_size, steps : int
        The compiled N and T.
    direct_input : bool
        Every step sees the same input (direct encoding): stored once per sample.
    spike_input : bool
        The inputs are 0/1 spikes (binarized event frames, rate coding): they cross DRAM as
        bits and the first layer runs event-driven (``HwExactNetwork(spike_input=True)``).
    cores : int
        Cores the program is split across (the device must have at least as many).
    core : CoreParams, optional
        What the device's cores can do (the compiler checks the network against it); default:
        :func:`training_core`'s for :func:`core_kwargs_for` the model.
    timeout : float
        Seconds a program may run before the driver gives up with a status dump.
    host_update : bool
        Run the UPDATEs in a phase of their own, so the host can change the gradients first.
    queued : bool
        Hand each pass to the SoC's program queue and wait once (default), instead of starting
        every core of every phase from the host; same results, fewer host transactions.
        ``device_cycles`` then counts the SoC's cycles from the first queued program to the
        queue drained; otherwise the sum over phases of the slowest core's busy cycles.
    fuse : bool
        Compile each layer's BP and WG as ``BPWG`` descriptors where they fit (default; one read
        of ``δI``, both engines at once), or apart (``compile(..., fuse=False)``); same results.
    """

    precision = "fp16-hw"

    def __init__(self, model, device, *, lr: float, momentum: float, loss_scale: float, batch_size: int,
                 steps: int, direct_input: bool, spike_input: bool = False, cores: int = 1,
                 core: D.CoreParams | None = None, timeout: float = 600.0, host_update: bool = False,
                 queued: bool = True, fuse: bool = True):
        self.model = model
        self.net = HwExactNetwork.from_float(model, lr=lr, loss_scale=loss_scale, momentum=momentum,
                                             spike_input=spike_input)
        self.names, self.fixed = device_tensor_names(model)
        core = core or training_core(**core_kwargs_for(model))[1]
        self.program = C.compile(self.net, batch_size, core, steps=steps, direct_input=direct_input, cores=cores,
                                 host_update=host_update, fuse=fuse)
        self.device = device(_dram_words_for(len(self.program.memory))) if callable(device) else device
        self.timeout = timeout
        self.queued = queued
        self.device.write_mem(0, self.program.memory)
        self.overflow_steps = 0
        self.reset_figures()

    def reset_figures(self) -> None:
        """Start the figures of :meth:`device_report` (steps, cycles, traffic) from zero."""
        self.totals = {"steps": 0, "cycles": 0, "core_cycles": 0, "dram_bytes_read": 0, "dram_bytes_written": 0,
                       "axi_transactions": 0}
        self.engine_busy: dict[str, int] = {}

    # -- transfers -----------------------------------------------------------------------
    def _write(self, buffer: C.Buffer, values: torch.Tensor) -> None:
        self.device.write_mem(buffer.addr, buffer.encode(values))

    def _read(self, buffer: C.Buffer) -> torch.Tensor:
        return buffer.decode(self.device.read_mem(buffer.addr, buffer.size))

    def _run_pass(self, phases, update_phase=None, account: bool = True, before_update=None) -> bool:
        """Run a pass.  The UPDATE phase (of a multi-core program, or one compiled with
        ``host_update``) runs only if no program before it reported overflow (the host's guard;
        one core guards its UPDATE itself) and ``before_update()`` (the host's work on the
        gradients) returns True.  Returns whether the step was skipped for an overflow."""
        if update_phase is None:
            return self._run_phases(phases, account)
        overflow = self._run_phases(phases[:update_phase], account)
        if not overflow and before_update is not None and not before_update():
            overflow = True
        if not overflow:
            self._run_phases(phases[update_phase:], account)
        return overflow

    def _run_phases(self, phases, account: bool) -> bool:
        """Run phases through the SoC's program queue (one wait for all of them), or one by one
        from the host (start every core of a phase, wait for all) when not ``queued``.  Returns
        whether a program reported overflow."""
        if self.queued:
            run = self.device.run_queued(phases, timeout=self.timeout)
            cycles, overflow, runs = run.cycles, run.overflow, list(run.counters.values())
        else:
            cycles, overflow, runs = 0, False, []
            for phase in phases:
                counters = self.device.run_phase(phase, timeout=self.timeout)
                overflow |= any(self.device.read_csr(f"core[{core}].status")["overflow"] for core in counters)
                cycles += max(c["busy_cycles"] for c in counters.values())     # the slowest core
                runs += counters.values()
        if account:                             # evaluation is not part of the training figures
            self.totals["cycles"] += cycles
            for counters in runs:
                self._account(counters)
        return overflow

    def _account(self, counters: dict) -> None:
        self.totals["core_cycles"] += counters["busy_cycles"]
        self.totals["dram_bytes_read"] += counters["dram_bytes_read"]
        self.totals["dram_bytes_written"] += counters["dram_bytes_written"]
        for name, value in counters.items():
            if name.endswith("_busy"):
                self.engine_busy[name] = self.engine_busy.get(name, 0) + value

    def _load_input(self, x_seq: torch.Tensor) -> int:
        """Write a batch (padded to the compiled N); returns its real size."""
        p = self.program
        steps, n = x_seq.shape[:2]
        if steps != p.steps or n > p.batch:
            raise ValueError(f"the device program was compiled for T = {p.steps} and batches of at most "
                             f"{p.batch}; got T = {steps}, N = {n}")
        if n < p.batch:
            x_seq = torch.cat([x_seq, x_seq.new_zeros(steps, p.batch - n, *x_seq.shape[2:])], dim=1)
        self.device.write_mem(p.input.addr, p.input_words(x_seq))
        return n

    def _adjust_gradients(self, adjust) -> bool:
        """Replace the gradients in DRAM with ``adjust(weights, grads)`` (lists of binary16
        tensors shaped as the weights); False (nothing written) if any result is not finite."""
        p = self.program
        grads = adjust(self._tensors(p.weights), self._tensors(p.grads))
        if not all(bool(torch.isfinite(g).all()) for g in grads):
            return False
        for b, g in zip(p.grads, grads):
            self._write(b, g.reshape(b.rows, *b.shape))
        return True

    # -- the Backend protocol -------------------------------------------------------------
    def train_step(self, x_seq, labels, adjust_gradients=None):
        """One training step.  ``adjust_gradients(weights, grads) -> grads`` (needs
        ``host_update``) runs on the host between the gradients and the update, e.g. FedProx's
        proximal term; a non-finite result skips the update as an overflow does."""
        p = self.program
        before_update = None
        if adjust_gradients is not None:
            if p.update_phase is None:
                raise ValueError("adjust_gradients needs a program compiled with host_update=True")

            def before_update():
                return self._adjust_gradients(adjust_gradients)
        transactions = self._axi_transactions()
        n = self._load_input(x_seq)
        self._run_pass(p.forward_phases)
        logits16 = self._read(p.logits)[:n]
        loss, g16 = host_loss_grad(logits16, torch.as_tensor(labels, dtype=torch.long), p.loss_scale)
        if n < p.batch:
            g16 = torch.cat([g16, F.zeros(p.batch - n, g16.shape[1])])
        self._write(p.grad_logits, g16)
        if self._run_pass(p.backward_phases, p.update_phase, before_update=before_update):
            self.overflow_steps += 1            # the guarded UPDATE skipped the step
        self.totals["axi_transactions"] += (self._axi_transactions() - transactions) % (1 << 32)
        self.totals["steps"] += 1
        return loss, logits16.float()

    def _axi_transactions(self) -> int:
        """The SoC's AXI transactions so far (AR + AW, modulo 2^32); 0, and no register read,
        with block-RAM DRAM."""
        if not self.device.params.axi_dram:
            return 0
        return (self.device.read_csr("dram.read_bursts")["count"]
                + self.device.read_csr("dram.write_bursts")["count"])

    def predict(self, x_seq):
        out = []
        for start in range(0, x_seq.shape[1], self.program.batch):
            chunk = x_seq[:, start:start + self.program.batch]
            n = self._load_input(chunk)
            self._run_pass(self.program.forward_phases, account=False)
            out.append(self._read(self.program.logits)[:n].float())
        return torch.cat(out)

    def _tensors(self, buffers) -> list[torch.Tensor]:
        return [self._read(b).reshape(w.shape) for b, w in zip(buffers, self.net.weights)]

    def state_dict(self):
        return {"weights": self._tensors(self.program.weights),
                "buffers": self._tensors(self.program.momentum) if self.program.momentum else None,
                "overflow_steps": self.overflow_steps}

    def load_state_dict(self, state):
        for b, w in zip(self.program.weights, state["weights"]):
            self._write(b, w.reshape(b.rows, *b.shape))
        if state["buffers"] is not None:
            for b, m in zip(self.program.momentum, state["buffers"]):
                self._write(b, m.reshape(b.rows, *b.shape))
        self.overflow_steps = state["overflow_steps"]

    def weights(self):
        current = self._tensors(self.program.weights)
        self.net.weights = current
        self.net.copy_to(self.model)
        return dict(zip(self.names, current)) | self.fixed

    def device_report(self) -> dict:
        """Device figures for the training report: cycles, engine utilisation, DRAM bytes and
        AXI transactions (0 with block-RAM DRAM) per step, and how the input crosses DRAM
        (``"spikes"``: bits, or ``"binary16"``)."""
        steps = max(self.totals["steps"], 1)
        cycles = self.totals["cycles"]
        return {
            "transport": self.device.transport.kind,
            "cores": len(self.program.forward_phases[0]),
            "device_cycles": cycles,
            "device_cycles_per_step": cycles / steps,
            "core_busy_cycles": self.totals["core_cycles"],
            "engine_utilization": {k.removesuffix("_busy"): (v / self.totals["core_cycles"]
                                                             if self.totals["core_cycles"] else 0.0)
                                   for k, v in sorted(self.engine_busy.items()) if k != "busy_cycles"},
            "dram_bytes_per_step": (self.totals["dram_bytes_read"] + self.totals["dram_bytes_written"]) / steps,
            "dram_bytes_read": self.totals["dram_bytes_read"],
            "dram_bytes_written": self.totals["dram_bytes_written"],
            "axi_transactions_per_step": self.totals["axi_transactions"] / steps,
            "overflow_steps": self.overflow_steps,
            "descriptors": {"forward": len(self.program.forward), "backward": len(self.program.backward)},
            "input": "spikes" if self.program.input.kind == "spikes" else "binary16",
        }

    def close(self):
        self.device.close()
