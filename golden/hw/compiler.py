"""The host compiler: a :class:`~.network.HwExactNetwork` → descriptor programs + a DRAM image
(docs/descriptors.md).

:func:`compile` checks that the network fits the core (features, sizes, scratchpads, DRAM)
before anything touches a device, lays out DRAM, splits every layer into tiles that fit the
core's scratchpads and start on word boundaries, and emits two programs:

* **forward**: FP of every layer, tile by tile, ending with the readout's logits in DRAM;
* **backward**: for the readout, then every layer top-down: BPN (not for the readout), WG, BP
  (not for the first layer); then one guarded UPDATE per weight layer.

With ``cores = N > 1`` every pass is a sequence of **phases** (layers depend on each other):
within a phase each core runs its own short program on a disjoint share of the phase's tiles,
and the host starts all cores of a phase and waits for all of them before the next one
(docs/descriptors.md §10).  With one core a pass is one phase holding one program.

A training step (:func:`.program.train_step`): the host writes the input, runs the forward
phases, reads the logits, writes the loss gradient ``G``, runs the backward phases.
:class:`Program` is the host's map of DRAM (where the programs are, where to write inputs and
``G``, where to read logits, weights, gradients and the intermediate tensors).

Members
-------
CompileError : ValueError
    The network does not fit this core; the message names the layer and the limit.
Buffer
    One tensor in DRAM: address, row layout, reading and writing it from the host.
Program
    ``memory`` (the initial image), the phases of both passes (``forward_phases``,
    ``backward_phases``, ``update_phase``), the programs, the buffers and the host map.
compile(net, batch, core, steps, direct_input=False, max_tile=None, base=0, cores=1) -> Program
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from . import descriptors as D
from . import fp16 as F
from . import forward as FW
from .gradient import MAX_TERMS

__all__ = ["CompileError", "Buffer", "Program", "compile"]

_WIDTH = {f.name: f.width for f in D.FIELDS}


class CompileError(ValueError):
    """The network cannot run on this core as configured (which layer, which limit)."""


@dataclass(frozen=True)
class Buffer:
    """A tensor in DRAM: ``rows`` rows ``pitch`` words apart (samples, or weight rows), and with
    a T dimension ``steps`` such blocks ``tstride`` words apart; a row holds ``elements`` spikes
    (1 bit) or binary16 values, padded to whole words.

    Members
    -------
    name : str
    addr, pitch, tstride : int
        Word address, words per row, words per step (0: no T dimension).
    kind : str
        ``"spikes"`` or ``"half"``.
    steps, rows, elements : int
        T (1 without a T dimension), N (or weight rows), elements per row.
    shape : tuple
        Logical shape of one row's elements (``(C, H, W)``, ``(J,)``, a weight row ``(C, K, K)``).
    """
    name: str
    addr: int
    kind: str
    steps: int
    rows: int
    elements: int
    pitch: int
    tstride: int
    shape: tuple

    @property
    def per_word(self) -> int:
        return D.SPIKES_PER_WORD if self.kind == "spikes" else D.HALVES_PER_WORD

    @property
    def size(self) -> int:
        """Words the buffer occupies."""
        return self.steps * self.rows * self.pitch

    def slot(self, name: str, lo: int = 0, count: int | None = None, row: int = 0) -> dict:
        """Descriptor fields of slot ``name`` for the elements ``[lo, lo + count)`` of every row,
        starting at row ``row`` (weight rows)."""
        count = self.elements - lo if count is None else count
        return {f"{name}_addr": self.addr + row * self.pitch + lo // self.per_word, f"{name}_pitch": self.pitch,
                f"{name}_words": -(-count // self.per_word), f"{name}_tstride": self.tstride}

    def _leading(self) -> tuple:
        return (self.steps, self.rows) if self.tstride else (self.rows,)

    def decode(self, words: np.ndarray) -> torch.Tensor:
        """The buffer's :attr:`size` words (from ``addr`` on) → ``[T, rows, *shape]``, or
        ``[rows, *shape]`` without a T dimension (bool or binary16)."""
        rows = np.asarray(words, dtype=np.uint32).reshape(-1, self.pitch)
        data = D.unpack_spikes(rows, self.elements) if self.kind == "spikes" else D.unpack_half(rows, self.elements)
        return torch.from_numpy(np.ascontiguousarray(data)).reshape(*self._leading(), *self.shape)

    def encode(self, values: torch.Tensor) -> np.ndarray:
        """The inverse of :meth:`decode`: :attr:`size` words, rows padded with zeros."""
        expected = (*self._leading(), *self.shape)
        if tuple(values.shape) != expected:
            raise ValueError(f"{self.name}: expected shape {expected}, got {tuple(values.shape)}")
        rows = values.reshape(-1, self.elements).numpy()
        pack = D.pack_spikes if self.kind == "spikes" else D.pack_half
        return pack(rows, self.pitch).reshape(-1)

    def read(self, memory: np.ndarray) -> torch.Tensor:
        """:meth:`decode` of the buffer's words in a DRAM array."""
        return self.decode(memory[self.addr:self.addr + self.size])

    def write(self, memory: np.ndarray, values: torch.Tensor) -> None:
        """Store :meth:`encode` of ``values`` in a DRAM array."""
        memory[self.addr:self.addr + self.size] = self.encode(values)


@dataclass
class _Layer:
    """One weight layer as the descriptors see it (FC and the readout are 1×1 maps)."""
    index: int
    kind: str                      # fc | conv | readout
    in_total: int
    in_hw: tuple
    out_total: int
    out_hw: tuple
    kernel: int = 1
    stride: int = 1
    padding: int = 0
    neuron: object = None
    pool: int = 1
    analog: bool = False

    @property
    def pool_hw(self):
        return (self.out_hw[0] // self.pool, self.out_hw[1] // self.pool)

    @property
    def out_shape(self) -> tuple:
        """A row of the layer's neurons: ``(C, H, W)`` or ``(J,)``."""
        return (self.out_total, *self.out_hw) if self.kind == "conv" else (self.out_total,)

    @property
    def weight_shape(self) -> tuple:
        """A weight row: ``(C, K, K)`` or ``(J,)``."""
        return (self.in_total, self.kernel, self.kernel) if self.kind == "conv" else (self.in_total,)

    @property
    def weight_words(self) -> int:
        """Words of the layer's weights (binary16 rows padded to whole words)."""
        return self.out_total * _ceil(math.prod(self.weight_shape), D.HALVES_PER_WORD)

    @property
    def pooled_shape(self) -> tuple:
        return (self.out_total, *self.pool_hw) if self.kind == "conv" else (self.out_total,)

    @property
    def name(self) -> str:
        return f"layer {self.index} ({self.kind} {self.in_total}→{self.out_total})"

    def fields(self) -> dict:
        ltype = {"fc": D.LayerType.FC, "conv": D.LayerType.CONV, "readout": D.LayerType.READOUT}[self.kind]
        (ih, iw), (oh, ow), (ph, pw) = self.in_hw, self.out_hw, self.pool_hw
        return dict(layer=ltype, pool=self.pool, kernel=self.kernel, stride=self.stride, padding=self.padding,
                    out_total=self.out_total, in_total=self.in_total, in_h=ih, in_w=iw, out_h=oh, out_w=ow,
                    pool_h=ph, pool_w=pw, kk=self.kernel ** 2, in_plane=ih * iw, out_plane=oh * ow,
                    pool_plane=ph * pw, tag=self.index)

    def neuron_fields(self) -> dict:
        p = self.neuron
        return dict(neuron=D.NeuronType[p.kind.upper()], surrogate=D.SurrogateType[p.surrogate.name.upper()],
                    soft_reset=int(p.soft_reset), decay_input=int(p.decay_input))


@dataclass
class Program:
    """A compiled network: the DRAM image, the programs of every core and phase, and the host's map.

    Members
    -------
    memory : numpy.ndarray of uint32
        The initial DRAM image (descriptors, parameter blocks, weights, zeroed buffers) from word 0;
        a driver loads ``memory[base:]`` at ``base``.
    base : int
        The first word the program uses (words below it are zero in ``memory``).
    core : CoreParams
    steps, batch : int
    cores : int
        N, the cores the programs were compiled for.
    forward_phases, backward_phases : list of list of (int or None)
        The passes: per phase, per core the word address of the core's program, or None for a
        core idle in that phase.  The host starts every core of a phase and waits for all of them
        before it starts the next phase.  With one core each pass is ``[[pc]]``.
    update_phase : int or None
        Index in ``backward_phases`` of the phase of UPDATEs that the host runs only if no core
        reported ``overflow`` in the earlier backward phases (the gradients of a core overflowed:
        skip the step).  None with one core (unless compiled with ``host_update``): its UPDATEs
        follow the WGs in the same program and their ``guard`` bit lets the core skip them itself.
    programs : dict of int to list of Descriptor
        Every program in the image (ending with END), by word address.
    forward_pc, backward_pc : int (properties)
        The address of the forward / backward program of a one-core compilation.
    forward, backward : list of Descriptor (properties)
        The descriptors of a pass, phase by phase and core by core (with their ENDs).
    input, logits, grad_logits : Buffer
        Host writes ``input`` (binary16 ``[T, N, …]``, or ``[N, …]`` with direct input) and
        ``grad_logits`` (``G``, ``[N, C]``); reads ``logits`` (``[N, C]``).
    weights, grads, momentum : list of Buffer
        Per weight layer (body layers first, the readout last); ``momentum`` is empty without it.
    potentials, spikes, deltas, errors : list of Buffer
        Per body layer: ``H``, its output spikes (pooled), ``δI``, and the ``δS`` BPN reads.
    loss_scale : float
    input_words(x_seq), write_input(memory, x_seq), read_logits(memory),
    write_loss_grad(memory, g16), read_weights(memory), read_grads(memory)
        The host's side of a step; a driver with a remote DRAM uses ``input_words`` and each
        buffer's ``encode``/``decode`` with ``addr`` and ``size``.
    """
    memory: np.ndarray
    base: int
    core: D.CoreParams
    steps: int
    batch: int
    cores: int
    forward_phases: list
    backward_phases: list
    update_phase: int | None
    programs: dict
    input: Buffer
    logits: Buffer
    grad_logits: Buffer
    weights: list[Buffer]
    grads: list[Buffer]
    momentum: list[Buffer]
    potentials: list[Buffer] = field(default_factory=list)
    spikes: list[Buffer] = field(default_factory=list)
    deltas: list[Buffer] = field(default_factory=list)
    errors: list[Buffer] = field(default_factory=list)
    loss_scale: float = 1.0

    def _single(self, phases: list, name: str) -> int:
        if len(phases) != 1 or len(phases[0]) != 1:
            raise ValueError(f"the {name} pass was compiled for {self.cores} cores in {len(phases)} phases: "
                             f"run {name}_phases (every core of a phase, then the next phase)")
        return phases[0][0]

    @property
    def forward_pc(self) -> int:
        return self._single(self.forward_phases, "forward")

    @property
    def backward_pc(self) -> int:
        return self._single(self.backward_phases, "backward")

    def _pass(self, phases: list) -> list:
        return [d for phase in phases for pc in phase if pc is not None for d in self.programs[pc]]

    @property
    def forward(self) -> list:
        return self._pass(self.forward_phases)

    @property
    def backward(self) -> list:
        return self._pass(self.backward_phases)

    def input_words(self, x_seq: torch.Tensor) -> np.ndarray:
        """The words of :attr:`input` for ``x_seq [T, N, …]``, rounded to binary16 (the host's
        job, numerics.md §7) or packed as spikes (a network with spike input: every value 0 or
        1); with direct input every step must be the same and only step 0 is stored.  A
        sample may come in any shape with the input's element count (e.g. flat).  A driver
        writes them at ``input.addr``."""
        if tuple(x_seq.shape[:2]) != (self.steps, self.batch):
            raise ValueError(f"expected input [{self.steps}, {self.batch}, …], got {tuple(x_seq.shape)}")
        per_sample = math.prod(x_seq.shape[2:])
        if per_sample != self.input.elements:
            raise ValueError(f"expected {self.input.elements} input values per sample "
                             f"(shape {tuple(self.input.shape)}), got {per_sample}")
        x16 = FW.host_input(x_seq, self.input.kind == "spikes").reshape(
            self.steps, self.batch, *self.input.shape)
        if self.input.tstride == 0:
            if not FW.dedup_steps(x16):
                raise ValueError("this program was compiled for direct input: every step must be the same")
            x16 = x16[0]
        return self.input.encode(x16)

    def write_input(self, memory: np.ndarray, x_seq: torch.Tensor) -> None:
        """Store :meth:`input_words` in a DRAM array."""
        memory[self.input.addr:self.input.addr + self.input.size] = self.input_words(x_seq)

    def read_logits(self, memory: np.ndarray) -> torch.Tensor:
        """The readout's logits ``[N, C]`` (binary16)."""
        return self.logits.read(memory)

    def write_loss_grad(self, memory: np.ndarray, g16: torch.Tensor) -> None:
        """Store the host's scaled loss gradient ``G [N, C]`` (binary16)."""
        self.grad_logits.write(memory, g16)

    def read_weights(self, memory: np.ndarray) -> list[torch.Tensor]:
        """The weights (binary16, the model's shapes), body layers first, the readout last."""
        return [b.read(memory) for b in self.weights]

    def read_grads(self, memory: np.ndarray) -> list[torch.Tensor]:
        """The last backward program's gradients (binary16, scaled by the loss scale)."""
        return [b.read(memory) for b in self.grads]


class _Allocator:
    def __init__(self, start: int):
        self.top = start

    def take(self, words: int) -> int:
        addr, self.top = self.top, self.top + words
        return addr

    def buffer(self, name, kind, steps, rows, shape, per_sample=False) -> Buffer:
        elements = math.prod(shape)
        pitch = -(-elements // (D.SPIKES_PER_WORD if kind == "spikes" else D.HALVES_PER_WORD))
        t = 1 if per_sample else steps
        return Buffer(name, self.take(t * rows * pitch), kind, t, rows, elements, pitch,
                      0 if per_sample else rows * pitch, tuple(shape))


def _layers(net) -> list[_Layer]:
    """The weight layers of ``net`` with their geometry; refuses what the descriptors cannot say."""
    shape, layers, cur = tuple(net.input_shape), [], None
    for st in net.stages:
        if st.kind == "flatten":
            shape = (math.prod(shape),)
        elif st.kind in ("fc", "conv"):
            analog = not layers and not net.spike_input
            if st.kind == "fc":
                cur = _Layer(st.index, "fc", shape[0], (1, 1), net.weights[st.index].shape[0], (1, 1),
                             analog=analog)
            else:
                c, h, w = shape
                oh, ow = (FW.conv_output_size(s, st.kernel, st.stride, st.padding) for s in (h, w))
                cur = _Layer(st.index, "conv", c, (h, w), net.weights[st.index].shape[0], (oh, ow), st.kernel,
                             st.stride, st.padding, analog=analog)
            layers.append(cur)
        elif st.kind == "neuron":
            cur.neuron = st.params
            shape = cur.out_shape
        else:  # maxpool
            if cur is None or cur.kind != "conv" or cur.pool != 1 or cur.neuron is None:
                raise CompileError("max pooling must follow the neurons of a conv layer directly (one pool per layer)")
            cur.pool = st.kernel
            shape = cur.pooled_shape
    if not layers:
        raise CompileError("the readout needs spike input: the network has no spiking layer")
    layers.append(_Layer(len(net.weights) - 1, "readout", math.prod(shape), (1, 1), net.weights[-1].shape[0],
                         (1, 1)))
    return layers


def _check_layer(L: _Layer, core: D.CoreParams, steps: int, batch: int) -> None:
    """Feature and size limits of one layer, with the message naming what does not fit."""
    def fail(what):
        raise CompileError(f"{L.name}: {what}")
    if L.kind == "conv" and not core.conv:
        fail("this core has no convolution support")
    if L.analog and not core.mac:
        fail("the first layer takes analog input (direct encoding, MAC mode) and this core has no MAC mode")
    if L.kernel > core.max_kernel or L.stride > core.max_stride or L.pool > core.max_pool:
        fail(f"kernel {L.kernel} / stride {L.stride} / pool {L.pool} exceed the core's limits "
             f"{core.max_kernel} / {core.max_stride} / {core.max_pool}")
    if L.padding >= L.kernel:
        fail(f"padding {L.padding} must be smaller than the kernel {L.kernel}")
    fields = L.fields()
    for name in ("out_total", "in_total", "in_h", "in_w", "out_h", "out_w", "kk", "in_plane", "out_plane"):
        if fields[name] >= 1 << _WIDTH[name]:
            fail(f"{name} = {fields[name]} does not fit the descriptor's {_WIDTH[name]}-bit field")
    terms = steps * batch * fields["out_plane"]
    if terms > MAX_TERMS:
        fail(f"{terms} WG terms per weight exceed the exact accumulator's {MAX_TERMS}")


def _granule(unit: int, plane: int) -> int:
    """Smallest tile step (in neurons/channels of ``plane`` elements) that keeps a packed row of
    ``unit`` elements per word aligned."""
    return unit // math.gcd(unit, plane)


@dataclass(frozen=True)
class _Split:
    """How one opcode divides one layer: ``total`` neurons/channels (outputs, or inputs for BP)
    in steps of ``granule`` (word alignment); a tile of ``n`` fits the scratchpads if ``fits(n)``;
    ``cost`` is the work per neuron/channel and (t, n) row (multiply-accumulates), what the
    split over cores balances."""
    what: str
    total: int
    granule: int
    fits: Callable[[int], bool]
    cost: int


def _tiles(L: _Layer, split: _Split, lo: int, hi: int, cap: int | None) -> list[tuple[int, int]]:
    """Split ``[lo, hi)`` (``lo`` on a granule) into ``(lo, count)`` tiles: the largest count (a
    multiple of the granule, or the whole range) that fits, and not above ``cap`` unless a
    granule is."""
    total, granule = hi - lo, split.granule
    candidates = [total] + list(range((total - 1) // granule * granule, 0, -granule))
    for size in candidates:
        if (cap is None or size <= max(cap, granule)) and split.fits(size):
            return [(a, min(size, hi - a)) for a in range(lo, hi, size)]
    raise CompileError(f"{L.name}: not even {min(granule, total)} {split.what} fit the core's scratchpads "
                       f"(tiles must be multiples of {granule} to stay word-aligned)")


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


class _Builder:
    """Plans the phases of both passes, lays out DRAM and emits the descriptors of one network.

    A work item is ``(opcode, layer index, *tile)``: ``(lo, count)`` for FP, BPN, BP and BPWG,
    ``(outputs, inputs)`` tiles for WG, ``(word offset, length)`` for UPDATE.
    """

    def __init__(self, net, batch: int, core: D.CoreParams, steps: int, direct_input: bool, max_tile, base,
                 cores: int, host_update: bool = False, fuse: bool = True):
        self.net, self.batch, self.core, self.steps, self.max_tile = net, batch, core, steps, max_tile
        self.cores = cores
        self.fuse = fuse
        self.host_update = host_update or cores > 1
        self.layers = _layers(net)
        for L in self.layers:
            _check_layer(L, core, steps, batch)
        self.momentum = net.momentum16 is not None
        a = self.alloc = _Allocator(base)
        plan = self._plan()
        # programs first, in pass, phase and core order (one core: forward, then backward)
        self.phases = {name: [[a.take((len(items) + 1) * D.DESC_WORDS) if items else None for items in phase]
                              for phase in phases] for name, phases in plan.items()}
        self.work = {pc: items for name, phases in plan.items()
                     for phase, pcs in zip(phases, self.phases[name]) for items, pc in zip(phase, pcs)
                     if pc is not None}
        self.params = [a.take(D.PARAM_WORDS) for _ in self.layers]
        self.weights, self.grads, self.moms = [], [], []
        for L in self.layers:
            shape = L.weight_shape
            self.weights.append(a.buffer(f"W{L.index}", "half", 1, L.out_total, shape, per_sample=True))
            self.grads.append(a.buffer(f"g{L.index}", "half", 1, L.out_total, shape, per_sample=True))
            if self.momentum:
                self.moms.append(a.buffer(f"m{L.index}", "half", 1, L.out_total, shape, per_sample=True))
        first = self.layers[0]
        in_shape = (first.in_total, *first.in_hw) if first.kind == "conv" else (first.in_total,)
        self.input = a.buffer("x", "spikes" if net.spike_input else "half", steps, batch, in_shape,
                              per_sample=direct_input)
        body = self.layers[:-1]
        self.H = [a.buffer(f"H{L.index}", "half", steps, batch, L.out_shape) for L in body]
        self.S = [a.buffer(f"S{L.index}", "spikes", steps, batch, L.pooled_shape) for L in body]
        ro = self.layers[-1]
        self.logits = a.buffer("logits", "half", steps, batch, (ro.out_total,), per_sample=True)
        self.G = a.buffer("G", "half", steps, batch, (ro.out_total,), per_sample=True)
        # δS of layer l is written by BP of layer l+1: per sample below the readout
        self.dS = [a.buffer(f"dS{L.index}", "half", steps, batch, L.pooled_shape,
                            per_sample=(i == len(body) - 1)) for i, L in enumerate(body)]
        self.dI = [a.buffer(f"dI{L.index}", "half", steps, batch, L.out_shape) for L in body]
        if a.top > core.dram_words:
            raise CompileError(f"the network needs {a.top} words of DRAM for batch {batch}, T = {steps}; "
                               f"the core addresses {core.dram_words}")

    # ---- tiling ---------------------------------------------------------------------
    def fp_split(self, L) -> _Split:
        c, f = self.core, L.fields()
        if f["in_total"] * f["in_plane"] > c.max_inputs:
            raise CompileError(f"{L.name}: an input row of {f['in_total'] * f['in_plane']} elements exceeds "
                               f"the event list ({c.max_inputs})")
        gran = 2 if L.kind == "readout" else math.lcm(_granule(2, f["out_plane"]), _granule(32, f["pool_plane"]))
        return _Split("outputs", L.out_total, gran, lambda n: (
            _ceil(n, c.lanes) * L.in_total * f["kk"] <= c.weight_depth and n * f["out_plane"] <= c.state_depth),
            L.in_total * f["kk"] * f["out_plane"])

    def bp_split(self, L) -> _Split:
        c, f = self.core, L.fields()
        if L.out_total * f["out_plane"] > c.max_inputs:
            raise CompileError(f"{L.name}: a δ row of {L.out_total * f['out_plane']} elements exceeds the "
                               f"event list ({c.max_inputs})")
        gran = math.lcm(_granule(2, f["kk"]), _granule(2, f["in_plane"]))
        return _Split("inputs", L.in_total, gran, lambda n: (
            _ceil(n, c.lanes) * L.out_total * f["kk"] <= c.weight_depth and n * f["in_plane"] <= c.state_depth),
            L.out_total * f["kk"] * f["out_plane"])

    def bpn_split(self, L) -> _Split:
        f = L.fields()
        gran = math.lcm(_granule(2, f["pool_plane"]), _granule(2, f["out_plane"]))
        return _Split("outputs", L.out_total, gran, lambda n: n * f["out_plane"] <= self.core.state_depth,
                      f["out_plane"])

    def wg_split(self, L) -> tuple[_Split, list[tuple[int, int]]]:
        """The input tiles (as wide as the event list and the accumulators allow with the smallest
        output tile) and the split of the outputs for that width."""
        c, f = self.core, L.fields()
        gran_in = math.lcm(_granule(2, f["kk"]), _granule(2 if L.analog else 32, f["in_plane"]))
        gran_out = _granule(2, f["out_plane"])
        smallest = _ceil(min(gran_out, L.out_total), c.lanes)
        ins = _tiles(L, _Split("inputs", L.in_total, gran_in, lambda n: (
            n * f["in_plane"] <= c.max_inputs and smallest * n * f["kk"] <= c.acc_depth), 0), 0, L.in_total,
            self.max_tile)
        width = ins[0][1]
        outs = _Split("outputs", L.out_total, gran_out,
                      lambda n: (_ceil(n, c.lanes) * width * f["kk"] <= c.acc_depth
                                 and _ceil(n, c.lanes) <= c.wg_groups and n * f["out_plane"] <= c.state_depth),
                      L.in_total * f["kk"] * f["out_plane"])
        return outs, ins

    def bpwg_split(self, L) -> _Split | None:
        """BP and WG of input tiles over all outputs (one ``BPWG`` per tile), or None when the
        layer's WG cannot take all its outputs in one tile (more groups than the accumulators'
        ``wg_groups``, a δI row larger than the state memory, or not even one granule of inputs
        fits): then BP and WG run apart."""
        c, f = self.core, L.fields()
        bp = self.bp_split(L)
        groups = _ceil(L.out_total, c.lanes)
        gran = math.lcm(bp.granule, _granule(2, f["kk"]), _granule(2 if L.analog else 32, f["in_plane"]))
        split = _Split("inputs", L.in_total, gran, lambda n: (
            bp.fits(n) and n * f["in_plane"] <= c.max_inputs and groups * n * f["kk"] <= c.acc_depth),
            2 * L.out_total * f["kk"] * f["out_plane"])
        if (groups > c.wg_groups or L.out_total * f["out_plane"] > c.state_depth
                or not split.fits(min(gran, L.in_total))):
            return None
        return split

    def _bp_and_wg(self, i) -> list[tuple]:
        """The jobs of layer ``i``'s BP and WG: one fused ``BPWG`` where it fits."""
        O = D.Opcode
        if self.fuse and self.bpwg_split(self.layers[i]) is not None:
            return [(O.BPWG, i)]
        return [(O.WG, i), (O.BP, i)]

    # ---- phases ---------------------------------------------------------------------
    def _shares(self, split: _Split, load: list) -> list[tuple[int, int]]:
        """Per core a contiguous range ``[lo, hi)`` of the split (possibly empty): granules go one
        by one to the core whose work in this phase would stay the smallest, so ops of unequal
        size in one phase even out; ``load`` (work per core) is updated."""
        counts = [0] * self.cores
        for _ in range(_ceil(split.total, split.granule)):
            k = min(range(self.cores), key=lambda k: (load[k] + (counts[k] + 1) * split.granule * split.cost, k))
            counts[k] += 1
        ranges, lo = [], 0
        for k, n in enumerate(counts):
            hi = min(lo + n * split.granule, split.total)
            ranges.append((lo, hi))
            load[k] += (hi - lo) * split.cost
            lo = hi
        return ranges

    def _phase(self, jobs) -> list[list[tuple]]:
        """Per core the work items of ``jobs`` (``(opcode, layer index)``): every op's share."""
        load, work = [0] * self.cores, [[] for _ in range(self.cores)]
        for op, i in jobs:
            L = self.layers[i]
            if op == D.Opcode.WG:
                split, ins = self.wg_split(L)
            else:
                split = {D.Opcode.FP: self.fp_split, D.Opcode.BP: self.bp_split, D.Opcode.BPN: self.bpn_split,
                         D.Opcode.BPWG: self.bpwg_split}[op](L)
            for k, (lo, hi) in enumerate(self._shares(split, load)):
                tiles = _tiles(L, split, lo, hi, self.max_tile) if hi > lo else []
                if op == D.Opcode.WG:
                    work[k] += [(op, i, o, inp) for o in tiles for inp in ins]
                else:
                    work[k] += [(op, i, t) for t in tiles]
        return work

    def _update_phase(self) -> list[list[tuple]]:
        """The weights of all layers as one run of words, cut into N nearly equal ranges: one
        UPDATE per core and layer its range touches."""
        sizes = [L.weight_words for L in self.layers]
        starts = np.cumsum([0] + sizes)
        cut = [starts[-1] * k // self.cores for k in range(self.cores + 1)]
        return [[(D.Opcode.UPDATE, i, int(max(a, s) - s), int(min(b, s + n) - max(a, s)))
                 for i, (s, n) in enumerate(zip(starts, sizes)) if max(a, s) < min(b, s + n)]
                for a, b in zip(cut, cut[1:])]

    def _plan(self) -> dict:
        """``{"forward": phases, "backward": phases}``, a phase being per core a list of work items.
        Forward: one phase per layer.  Backward: the readout's WG and BP; per body layer top-down
        its BPN, then its WG and BP (BPN needs the δS that BP of the layer above wrote, BP needs
        δI); last the UPDATEs (after every BP read its weights and every WG wrote its gradient).
        A layer's WG and BP are one ``BPWG`` per input tile where the WG fits (``fuse``).
        With one core the phases of a pass are one program: the core runs them in order."""
        O, n = D.Opcode, len(self.layers)
        forward = [self._phase([(O.FP, i)]) for i in range(n)]
        backward = [self._phase(self._bp_and_wg(n - 1) if n > 1 else [(O.WG, 0)])]
        for i in range(n - 2, -1, -1):
            backward += [self._phase([(O.BPN, i)]), self._phase(self._bp_and_wg(i) if i else [(O.WG, 0)])]
        backward.append(self._update_phase())
        if self.cores == 1:
            forward = [[sum((p[0] for p in forward), [])]]
            if not self.host_update:
                return {"forward": forward, "backward": [[sum((p[0] for p in backward), [])]]}
            backward = [[sum((p[0] for p in backward[:-1]), [])], backward[-1]]
        return {"forward": forward, "backward": backward}

    # ---- descriptors ----------------------------------------------------------------
    def _desc(self, L, op, **kw):
        i = self.layers.index(L)
        base = dict(op=op, steps=self.steps, batch=self.batch, param_addr=self.params[i], **L.fields())
        if op in (D.Opcode.FP, D.Opcode.BPN) and L.neuron is not None:
            base.update(L.neuron_fields())
        if op in (D.Opcode.FP, D.Opcode.WG):
            base["analog"] = int(L.analog)
        d = D.Descriptor(**{**base, **kw})
        err = D.validate(d, self.core)
        if err != D.ErrorCode.NONE:       # a compiler bug, or a limit the checks above missed
            raise CompileError(f"{L.name}: {D.Opcode(op).name} descriptor rejected: {err.message}")
        return d

    def _input_of(self, i):
        return self.input if i == 0 else self.S[i - 1]

    def fp(self, i, tile):
        L, (lo, n) = self.layers[i], tile
        f = L.fields()
        slots = {**self.weights[i].slot("a", row=lo), **self._input_of(i).slot("b")}
        if L.kind == "readout":
            slots.update(self.logits.slot("c", lo, n))
        else:
            slots.update(self.H[i].slot("c", lo * f["out_plane"], n * f["out_plane"]))
            slots.update(self.S[i].slot("d", lo * f["pool_plane"], n * f["pool_plane"]))
        return self._desc(L, D.Opcode.FP, out_lo=lo, out_cnt=n, in_cnt=L.in_total, **slots)

    def bpn(self, i, tile):
        L, (lo, n) = self.layers[i], tile
        f = L.fields()
        return self._desc(L, D.Opcode.BPN, out_lo=lo, out_cnt=n, in_cnt=L.in_total,
                          **self.dS[i].slot("b", lo * f["pool_plane"], n * f["pool_plane"]),
                          **self.H[i].slot("c", lo * f["out_plane"], n * f["out_plane"]),
                          **self.dI[i].slot("d", lo * f["out_plane"], n * f["out_plane"]))

    def _delta(self, i):
        return self.G if self.layers[i].kind == "readout" else self.dI[i]

    def wg(self, i, outs, ins):
        L, (olo, on), (ilo, inn) = self.layers[i], outs, ins
        f = L.fields()
        return self._desc(L, D.Opcode.WG, out_lo=olo, out_cnt=on, in_lo=ilo, in_cnt=inn,
                          **self.grads[i].slot("a", ilo * f["kk"], inn * f["kk"], row=olo),
                          **self._input_of(i).slot("b", ilo * f["in_plane"], inn * f["in_plane"]),
                          **self._delta(i).slot("c", olo * f["out_plane"], on * f["out_plane"]))

    def _bp_fields(self, i, lo, n) -> dict:
        """BP's fields for inputs ``[lo, lo + n)`` of layer ``i``: the tile, the weight columns
        (a), ``δI`` (b) and the ``δS`` of the layer below (c)."""
        L, f = self.layers[i], self.layers[i].fields()
        return dict(out_cnt=L.out_total, in_lo=lo, in_cnt=n,
                    **self.weights[i].slot("a", lo * f["kk"], n * f["kk"]), **self._delta(i).slot("b"),
                    **self.dS[i - 1].slot("c", lo * f["in_plane"], n * f["in_plane"]))

    def bp(self, i, tile):
        return self._desc(self.layers[i], D.Opcode.BP, **self._bp_fields(i, *tile))

    def bpwg(self, i, tile):
        """BP's fields plus WG's gradient tile (d) and input (e) of the same inputs."""
        L, (lo, n) = self.layers[i], tile
        f = L.fields()
        return self._desc(L, D.Opcode.BPWG, analog=int(L.analog), **self._bp_fields(i, lo, n),
                          **self.grads[i].slot("d", lo * f["kk"], n * f["kk"]),
                          **self._input_of(i).slot("e", lo * f["in_plane"], n * f["in_plane"]))

    def update(self, i, offset, length):
        """UPDATE of ``length`` words of layer ``i``'s weights from word ``offset``; ``guard`` only
        when the WGs run in the same program (one core; otherwise the host guards)."""
        W = self.weights[i]
        kw = dict(op=D.Opcode.UPDATE, guard=int(not self.host_update), param_addr=self.params[i],
                  tag=self.layers[i].index, length=length, a_addr=W.addr + offset,
                  b_addr=self.grads[i].addr + offset)
        if self.momentum:
            kw.update(momentum=1, c_addr=self.moms[i].addr + offset)
        d = D.Descriptor(**kw)
        assert D.validate(d, self.core) == D.ErrorCode.NONE
        return d

    def programs(self) -> dict:
        """Every program (its descriptors, END last) by address."""
        emit = {D.Opcode.FP: self.fp, D.Opcode.BPN: self.bpn, D.Opcode.WG: self.wg, D.Opcode.BP: self.bp,
                D.Opcode.BPWG: self.bpwg, D.Opcode.UPDATE: self.update}
        return {pc: [emit[op](i, *tile) for op, i, *tile in items] + [D.Descriptor(op=D.Opcode.END)]
                for pc, items in self.work.items()}

    def image(self, programs: dict) -> np.ndarray:
        mem = np.zeros(self.alloc.top, dtype=np.uint32)
        for pc, prog in programs.items():
            for k, d in enumerate(prog):
                mem[pc + k * D.DESC_WORDS:pc + (k + 1) * D.DESC_WORDS] = D.pack(d)
        net = self.net
        for i, L in enumerate(self.layers):
            mem[self.params[i]:self.params[i] + D.PARAM_WORDS] = D.param_block(
                L.neuron, self.steps, net.lr16, net.momentum16, net.scale_shift)
            self.weights[i].write(mem, net.weights[i])
            if self.momentum and net.buffers[i] is not None:
                self.moms[i].write(mem, net.buffers[i])
        return mem


def compile(net, batch: int, core: D.CoreParams = D.CoreParams(), steps: int = 8,
            direct_input: bool = False, max_tile: int | None = None, base: int = 0, cores: int = 1,
            host_update: bool = False, fuse: bool = True) -> Program:
    """Compile ``net`` for a batch of ``batch`` samples of ``steps`` time steps on ``cores`` cores.

    Parameters
    ----------
    net : HwExactNetwork
        Its weights, momentum buffers, ``lr``, loss scale and momentum go into the image.
    batch, steps : int
        N and T.
    core : CoreParams
        The core to run on (every core of the device is one of these); every limit is checked
        here (:class:`CompileError`).
    direct_input : bool
        The input is the same at every step (direct encoding): it is stored once per sample and
        FP computes the first layer's currents once.  (``net.spike_input``: the input is spikes,
        stored as bits, and the first layer is event-driven like the others.)
    max_tile : int, optional
        Cap on the neurons/channels of a tile (rounded up to the alignment granule): smaller
        tiles than the scratchpads need.
    base : int
        First DRAM word the program may use (the image is ``memory[base:]``).
    cores : int
        Cores sharing the DRAM: every op of a layer is split over them (docs/descriptors.md §10);
        the results are bit-identical for every N.
    host_update : bool
        Put the UPDATEs in a phase of their own also with one core (``update_phase`` set), so
        that the host can act on the gradients before they are applied (FedProx's proximal
        term) and guards the update itself.
    fuse : bool
        Run a layer's BP and WG as one ``BPWG`` per input tile (one read of ``δI`` for both,
        the two engines concurrently) wherever its WG takes all the layer's outputs in one
        tile; False keeps them apart (``BP`` and ``WG`` descriptors).

    Returns
    -------
    Program
    """
    if net.wg_accumulator != "exact":
        raise CompileError("the device implements the exact WG accumulator; the fp32/fp16 ablations do not compile")
    if not 1 <= steps <= core.max_steps or not 1 <= batch <= core.max_batch:
        raise CompileError(f"T = {steps}, N = {batch}: the core supports T ≤ {core.max_steps}, "
                           f"N ≤ {core.max_batch}")
    if isinstance(cores, bool) or not isinstance(cores, int) or cores < 1:
        raise CompileError(f"cores = {cores!r}: give the number of cores of the device, an int ≥ 1")
    if direct_input and net.spike_input:
        raise CompileError("direct input (one binary16 frame per sample, repeated) and spike input "
                           "(0/1 at every step) exclude each other: compile a spike-input network "
                           "with direct_input=False")
    b = _Builder(net, batch, core, steps, direct_input, max_tile, base, cores, host_update, fuse)
    programs = b.programs()
    return Program(memory=b.image(programs), base=base, core=core, steps=steps, batch=batch, cores=cores,
                   forward_phases=b.phases["forward"], backward_phases=b.phases["backward"],
                   update_phase=len(b.phases["backward"]) - 1 if b.host_update else None, programs=programs,
                   input=b.input, logits=b.logits, grad_logits=b.G, weights=b.weights, grads=b.grads,
                   momentum=b.moms, potentials=b.H, spikes=b.S, deltas=b.dI, errors=b.dS,
                   loss_scale=net.loss_scale)
