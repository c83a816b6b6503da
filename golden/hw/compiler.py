"""The host compiler: a :class:`~.network.HwExactNetwork` → descriptor programs + a DRAM image
(docs/descriptors.md).

:func:`compile` checks that the network fits the core (features, sizes, scratchpads, DRAM)
before anything touches a device, lays out DRAM, splits every layer into tiles that fit the
core's scratchpads and start on word boundaries, and emits two programs:

* **forward**: FP of every layer, tile by tile, ending with the readout's logits in DRAM;
* **backward**: for the readout, then every layer top-down: BPN (not for the readout), WG, BP
  (not for the first layer); then one guarded UPDATE per weight layer.

A training step (:func:`.program.train_step`): the host writes the input, runs the forward
program, reads the logits, writes the loss gradient ``G``, runs the backward program.
:class:`Program` is the host's map of DRAM (where to write inputs and ``G``, where to read
logits, weights, gradients and the intermediate tensors).

Members
-------
CompileError : ValueError
    The network does not fit this core; the message names the layer and the limit.
Buffer
    One tensor in DRAM: address, row layout, reading and writing it from the host.
Program
    ``memory`` (the initial image), ``forward_pc``, ``backward_pc``, the buffers and the host map.
compile(net, batch, core, steps, direct_input=False, max_tile=None, base=0) -> Program
"""
from __future__ import annotations

import math
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
    """A compiled network: the DRAM image, the two programs and the host's map.

    Members
    -------
    memory : numpy.ndarray of uint32
        The initial DRAM image (descriptors, parameter blocks, weights, zeroed buffers) from word 0;
        a driver loads ``memory[base:]`` at ``base``.
    base : int
        The first word the program uses (words below it are zero in ``memory``).
    core : CoreParams
    steps, batch : int
    forward_pc, backward_pc : int
        Word addresses of the two programs.
    forward, backward : list of Descriptor
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
    forward_pc: int
    backward_pc: int
    forward: list
    backward: list
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

    def input_words(self, x_seq: torch.Tensor) -> np.ndarray:
        """The words of :attr:`input` for ``x_seq [T, N, …]``, rounded to binary16 (the host's
        job, numerics.md §7); with direct input every step must be the same and only step 0 is
        stored.  A driver writes them at ``input.addr``."""
        if tuple(x_seq.shape[:2]) != (self.steps, self.batch):
            raise ValueError(f"expected input [{self.steps}, {self.batch}, …], got {tuple(x_seq.shape)}")
        x16 = F.round16(x_seq.double())
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
            analog = not layers
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


def _tiles(L: _Layer, what: str, total: int, granule: int, fits, cap: int | None) -> list[tuple[int, int]]:
    """Split ``total`` into ``(lo, count)`` tiles: the largest count (a multiple of ``granule``, or
    everything) for which ``fits(count)`` holds, and not above ``cap`` unless a granule is."""
    candidates = [total] + list(range((total - 1) // granule * granule, 0, -granule))
    for size in candidates:
        if (cap is None or size <= max(cap, granule)) and fits(size):
            return [(lo, min(size, total - lo)) for lo in range(0, total, size)]
    raise CompileError(f"{L.name}: not even {min(granule, total)} {what} fit the core's scratchpads "
                       f"(tiles must be multiples of {granule} to stay word-aligned)")


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


class _Builder:
    """Lays out DRAM and emits the descriptors of one network."""

    def __init__(self, net, batch: int, core: D.CoreParams, steps: int, direct_input: bool, max_tile, base):
        self.net, self.batch, self.core, self.steps, self.max_tile = net, batch, core, steps, max_tile
        self.layers = _layers(net)
        for L in self.layers:
            _check_layer(L, core, steps, batch)
        self.momentum = net.momentum16 is not None
        n_desc = self._count_descriptors()
        self.alloc = _Allocator(base)
        self.forward_pc = self.alloc.take(n_desc[0] * D.DESC_WORDS)
        self.backward_pc = self.alloc.take(n_desc[1] * D.DESC_WORDS)
        self.params = [self.alloc.take(D.PARAM_WORDS) for _ in self.layers]
        a = self.alloc
        self.weights, self.grads, self.moms = [], [], []
        for L in self.layers:
            shape = (L.in_total, L.kernel, L.kernel) if L.kind == "conv" else (L.in_total,)
            self.weights.append(a.buffer(f"W{L.index}", "half", 1, L.out_total, shape, per_sample=True))
            self.grads.append(a.buffer(f"g{L.index}", "half", 1, L.out_total, shape, per_sample=True))
            if self.momentum:
                self.moms.append(a.buffer(f"m{L.index}", "half", 1, L.out_total, shape, per_sample=True))
        first = self.layers[0]
        in_shape = (first.in_total, *first.in_hw) if first.kind == "conv" else (first.in_total,)
        self.input = a.buffer("x", "half", steps, batch, in_shape, per_sample=direct_input)
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
    def _split(self, L, what, total, granule, fits):
        return _tiles(L, what, total, granule, fits, self.max_tile)

    def fp_tiles(self, L):
        c, f = self.core, L.fields()
        if f["in_total"] * f["in_plane"] > c.max_inputs:
            raise CompileError(f"{L.name}: an input row of {f['in_total'] * f['in_plane']} elements exceeds "
                               f"the event list ({c.max_inputs})")
        gran = 2 if L.kind == "readout" else math.lcm(_granule(2, f["out_plane"]), _granule(32, f["pool_plane"]))
        return self._split(L, "outputs", L.out_total, gran, lambda n: (
            _ceil(n, c.lanes) * L.in_total * f["kk"] <= c.weight_depth and n * f["out_plane"] <= c.state_depth))

    def bp_tiles(self, L):
        c, f = self.core, L.fields()
        if L.out_total * f["out_plane"] > c.max_inputs:
            raise CompileError(f"{L.name}: a δ row of {L.out_total * f['out_plane']} elements exceeds the "
                               f"event list ({c.max_inputs})")
        gran = math.lcm(_granule(2, f["kk"]), _granule(2, f["in_plane"]))
        return self._split(L, "inputs", L.in_total, gran, lambda n: (
            _ceil(n, c.lanes) * L.out_total * f["kk"] <= c.weight_depth and n * f["in_plane"] <= c.state_depth))

    def bpn_tiles(self, L):
        f = L.fields()
        gran = math.lcm(_granule(2, f["pool_plane"]), _granule(2, f["out_plane"]))
        return self._split(L, "outputs", L.out_total, gran, lambda n: n * f["out_plane"] <= self.core.state_depth)

    def wg_tiles(self, L):
        """Input tiles first (as wide as the event list and the accumulators allow with the smallest
        output tile), then output tiles for that width."""
        c, f = self.core, L.fields()
        gran_in = math.lcm(_granule(2, f["kk"]), _granule(2 if L.analog else 32, f["in_plane"]))
        gran_out = _granule(2, f["out_plane"])
        smallest = _ceil(min(gran_out, L.out_total), c.lanes)
        ins = self._split(L, "inputs", L.in_total, gran_in, lambda n: (
            n * f["in_plane"] <= c.max_inputs and smallest * n * f["kk"] <= c.acc_depth))
        width = ins[0][1]
        outs = self._split(L, "outputs", L.out_total, gran_out,
                           lambda n: _ceil(n, c.lanes) * width * f["kk"] <= c.acc_depth)
        return [(o, i) for o in outs for i in ins]

    def _count_descriptors(self):
        fwd = sum(len(self.fp_tiles(L)) for L in self.layers) + 1
        bwd = 1 + len(self.layers)
        for i, L in enumerate(self.layers):
            bwd += len(self.wg_tiles(L)) + (len(self.bp_tiles(L)) if i > 0 else 0)
            bwd += len(self.bpn_tiles(L)) if L.kind != "readout" else 0
        return fwd, bwd

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

    def forward_program(self):
        out = []
        for i, L in enumerate(self.layers):
            f, W = L.fields(), self.weights[i]
            for lo, n in self.fp_tiles(L):
                slots = {**W.slot("a", row=lo), **self._input_of(i).slot("b")}
                if L.kind == "readout":
                    slots.update(self.logits.slot("c", lo, n))
                else:
                    slots.update(self.H[i].slot("c", lo * f["out_plane"], n * f["out_plane"]))
                    slots.update(self.S[i].slot("d", lo * f["pool_plane"], n * f["pool_plane"]))
                out.append(self._desc(L, D.Opcode.FP, out_lo=lo, out_cnt=n, in_cnt=L.in_total, **slots))
        return out + [D.Descriptor(op=D.Opcode.END)]

    def backward_program(self):
        out = []
        for i in range(len(self.layers) - 1, -1, -1):
            L, f = self.layers[i], self.layers[i].fields()
            if L.kind == "readout":
                delta = self.G
            else:
                delta = self.dI[i]
                for lo, n in self.bpn_tiles(L):
                    out.append(self._desc(L, D.Opcode.BPN, out_lo=lo, out_cnt=n, in_cnt=L.in_total,
                                          **self.dS[i].slot("b", lo * f["pool_plane"], n * f["pool_plane"]),
                                          **self.H[i].slot("c", lo * f["out_plane"], n * f["out_plane"]),
                                          **self.dI[i].slot("d", lo * f["out_plane"], n * f["out_plane"])))
            for (olo, on), (ilo, inn) in self.wg_tiles(L):
                out.append(self._desc(L, D.Opcode.WG, out_lo=olo, out_cnt=on, in_lo=ilo, in_cnt=inn,
                                      **self.grads[i].slot("a", ilo * f["kk"], inn * f["kk"], row=olo),
                                      **self._input_of(i).slot("b", ilo * f["in_plane"], inn * f["in_plane"]),
                                      **delta.slot("c", olo * f["out_plane"], on * f["out_plane"])))
            if i > 0:
                for lo, n in self.bp_tiles(L):
                    out.append(self._desc(L, D.Opcode.BP, out_cnt=L.out_total, in_lo=lo, in_cnt=n,
                                          **self.weights[i].slot("a", lo * f["kk"], n * f["kk"]),
                                          **delta.slot("b"),
                                          **self.dS[i - 1].slot("c", lo * f["in_plane"], n * f["in_plane"])))
        for i, L in enumerate(self.layers):
            W = self.weights[i]
            kw = dict(op=D.Opcode.UPDATE, guard=1, param_addr=self.params[i], tag=L.index, length=W.size,
                      a_addr=W.addr, b_addr=self.grads[i].addr)
            if self.momentum:
                kw.update(momentum=1, c_addr=self.moms[i].addr)
            d = D.Descriptor(**kw)
            assert D.validate(d, self.core) == D.ErrorCode.NONE
            out.append(d)
        return out + [D.Descriptor(op=D.Opcode.END)]

    def image(self, forward, backward) -> np.ndarray:
        mem = np.zeros(self.alloc.top, dtype=np.uint32)
        for pc, prog in ((self.forward_pc, forward), (self.backward_pc, backward)):
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
            direct_input: bool = False, max_tile: int | None = None, base: int = 0) -> Program:
    """Compile ``net`` for a batch of ``batch`` samples of ``steps`` time steps.

    Parameters
    ----------
    net : HwExactNetwork
        Its weights, momentum buffers, ``lr``, loss scale and momentum go into the image.
    batch, steps : int
        N and T.
    core : CoreParams
        The core to run on; every limit is checked here (:class:`CompileError`).
    direct_input : bool
        The input is the same at every step (direct encoding): it is stored once per sample and
        FP computes the first layer's currents once.
    max_tile : int, optional
        Cap on the neurons/channels of a tile (rounded up to the alignment granule): smaller
        tiles than the scratchpads need, e.g. to spread a layer over several cores.
    base : int
        First DRAM word the program may use (the image is ``memory[base:]``).

    Returns
    -------
    Program
    """
    if net.wg_accumulator != "exact":
        raise CompileError("the device implements the exact WG accumulator; the fp32/fp16 ablations do not compile")
    if not 1 <= steps <= core.max_steps or not 1 <= batch <= core.max_batch:
        raise CompileError(f"T = {steps}, N = {batch}: the core supports T ≤ {core.max_steps}, "
                           f"N ≤ {core.max_batch}")
    b = _Builder(net, batch, core, steps, direct_input, max_tile, base)
    forward, backward = b.forward_program(), b.backward_program()
    return Program(memory=b.image(forward, backward), base=base, core=core, steps=steps, batch=batch,
                   forward_pc=b.forward_pc, backward_pc=b.backward_pc, forward=forward, backward=backward,
                   input=b.input, logits=b.logits, grad_logits=b.G, weights=b.weights, grads=b.grads,
                   momentum=b.moms, potentials=b.H, spikes=b.S, deltas=b.dI, errors=b.dS,
                   loss_scale=net.loss_scale)
