"""The golden device: executes a descriptor program on a DRAM image (docs/descriptors.md).

:func:`run` is what a Trident core does between ``start`` and ``done``: fetch a descriptor,
validate it (a bad one stops the program with its error code and address, before any data
access), execute it, go on with the next one until ``END``.  Execution is vectorised: each
operand is sliced out of the word array, unpacked, handed to the hardware-exact kernels
(:mod:`.forward`, :mod:`.neuron`, :mod:`.backward`, :mod:`.gradient`, :mod:`.update`) and the
results are packed back.  The words read and written per descriptor follow the counting model
of docs/descriptors.md §7, which the RTL's counters match.

A pass compiled for several cores is a sequence of phases (:func:`run_phases`): the host starts
every core of a phase and waits for all of them.  The golden model runs the cores of a phase one
after the other; their results cannot depend on that order because no core of a phase writes a
word that another core of the phase reads or writes, which :func:`run_phases` checks.

Members
-------
Counter
    ``(pc, op, tag, read, written, core, phase)`` of one executed descriptor.
Status
    ``done``, ``error`` (:class:`~.descriptors.ErrorCode`), ``error_pc``, ``error_core``,
    ``overflow`` (a WG wrote a non-finite gradient), ``counters``; ``words_read``,
    ``words_written`` (totals), ``by_opcode()``, ``by_core()``.
PhaseConflict : RuntimeError
    Two cores of a phase touched the same word, one of them writing it (a compiler bug).
run(memory, pc, core) -> Status
    Execute the program at word address ``pc`` on ``memory`` (``numpy.uint32``, modified in place).
run_phases(memory, phases, core, update_phase=None) -> Status
    Execute a pass: phase by phase, every core's program of the phase.
train_step(program, memory, x_seq, labels) -> (loss, logits, (Status, Status))
    Host side of one training step around a compiled program (:mod:`.compiler`), any number of cores.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import torch

from . import backward as B
from . import descriptors as D
from . import fp16 as F
from . import forward as FW
from . import gradient as G
from . import neuron as N
from .network import host_loss_grad
from .update import sgd_update

__all__ = ["Counter", "Status", "PhaseConflict", "run", "run_phases", "train_step"]


@dataclass
class Counter:
    """DRAM words one descriptor read and wrote (docs/descriptors.md §7), on core ``core`` in
    phase ``phase`` of its pass (0 for a lone program)."""
    pc: int
    op: D.Opcode
    tag: int
    read: int = 0
    written: int = 0
    core: int = 0
    phase: int = 0


@dataclass
class Status:
    """How a program ended.

    Members
    -------
    done : bool
        The program stopped (END or an error).
    error : ErrorCode
        ``NONE`` after END.
    error_pc : int
        Address of the failing descriptor (0 without error).
    error_core : int
        The core that ran it (0 without error).
    overflow : bool
        A WG of this program (of this pass, on any core) wrote ±inf or NaN: the UPDATEs were
        skipped.
    counters : list of Counter
        One per fetched descriptor, the failing one included, in execution order.
    words_read, words_written : int (properties)
        Totals; ``by_opcode()`` splits them per opcode, ``by_core()`` per core.
    """
    done: bool = False
    error: D.ErrorCode = D.ErrorCode.NONE
    error_pc: int = 0
    error_core: int = 0
    overflow: bool = False
    counters: list[Counter] = field(default_factory=list)

    @property
    def words_read(self) -> int:
        return sum(c.read for c in self.counters)

    @property
    def words_written(self) -> int:
        return sum(c.written for c in self.counters)

    def by_opcode(self) -> dict:
        """``{opcode name: (words read, words written)}`` summed over the counters."""
        out = {}
        for c in self.counters:
            name = D.Opcode(c.op).name if c.op in set(D.Opcode) else f"op{c.op}"     # a bad opcode's fetch
            r, w = out.get(name, (0, 0))
            out[name] = (r + c.read, w + c.written)
        return out

    def by_core(self) -> dict:
        """``{core: (words read, words written)}`` summed over the counters (the per-core DRAM
        counters of the device)."""
        out = {}
        for c in self.counters:
            r, w = out.get(c.core, (0, 0))
            out[c.core] = (r + c.read, w + c.written)
        return dict(sorted(out.items()))


class PhaseConflict(RuntimeError):
    """Two cores of one phase touched the same DRAM word and at least one of them wrote it: the
    result would depend on the order (or timing) of the cores."""


def _const(pattern: int) -> torch.Tensor:
    """A register constant (0-dim binary16) from its 16-bit pattern."""
    return F.from_bits(pattern).reshape(())


class _Machine:
    """One program run: the memory, the descriptor being executed and its counter."""

    def __init__(self, memory: np.ndarray, core: D.CoreParams, track: bool = False):
        if memory.dtype != np.uint32 or memory.ndim != 1:
            raise TypeError("memory must be a 1-D numpy.uint32 word array")
        self.mem = memory
        self.core = dataclasses.replace(core, dram_words=min(core.dram_words, memory.size))
        self.overflow = False
        self.d = None            # the descriptor being executed
        self.counter = None      # and its traffic counter
        # word addresses of the data read and written (tensors, weights); None: not tracked
        self.touched = {"read": [], "written": []} if track else None

    def _touch(self, how: str, idx: np.ndarray) -> None:
        if self.touched is not None:
            self.touched[how].append(np.asarray(idx).reshape(-1))

    # ---- operands -------------------------------------------------------------------
    def _index(self, slot: str) -> np.ndarray:
        """Word addresses of a slot: ``[rows, words]`` (weights, per-sample) or ``[T, N, words]``."""
        d = self.d
        addr, pitch, words, tstride = (getattr(d, f"{slot}_{k}") for k in ("addr", "pitch", "words", "tstride"))
        rows, per_sample = D.slot_rows(d, slot)
        idx = addr + pitch * np.arange(rows)[:, None] + np.arange(words)[None, :]
        if not per_sample:
            idx = idx[None] + tstride * np.arange(d.steps)[:, None, None]
        return idx

    def read(self, slot: str, kind: str, count: int) -> torch.Tensor:
        """A slot as bool spikes or binary16, ``[rows, count]`` or ``[T, N, count]``."""
        idx = self._index(slot)
        self.counter.read += idx.size
        self._touch("read", idx)
        flat = self.mem[idx.reshape(-1, idx.shape[-1])]
        data = D.unpack_spikes(flat, count) if kind == "spikes" else D.unpack_half(flat, count)
        return torch.from_numpy(np.ascontiguousarray(data)).reshape(*idx.shape[:-1], count)

    def write(self, slot: str, values: torch.Tensor) -> None:
        """Pack ``values`` (bool or binary16, leading dims as the slot's rows) into the slot."""
        idx = self._index(slot)
        self.counter.written += idx.size
        self._touch("written", idx)
        rows = values.reshape(-1, values.shape[-1]).numpy()
        words = idx.shape[-1]
        packed = D.pack_spikes(rows, words) if values.dtype == torch.bool else D.pack_half(rows, words)
        self.mem[idx.reshape(-1, words)] = packed

    def params(self, sigmoid_table: bool) -> tuple[dict, N.NeuronParams | None]:
        """The parameter block (header, and the table when the op evaluates the surrogate)."""
        d = self.d
        self.counter.read += D.PARAM_HEADER_WORDS + (D.PARAM_WORDS - D.PARAM_HEADER_WORDS) * sigmoid_table
        regs = D.decode_param_block(self.mem[d.param_addr:d.param_addr + D.PARAM_WORDS])
        if d.layer == D.LayerType.READOUT or d.op not in (D.Opcode.FP, D.Opcode.BPN):
            return regs, None
        # the golden's names are the enum names in lower case
        regs.update(kind=D.NeuronType(d.neuron).name.lower(), soft_reset=d.soft_reset,
                    decay_input=d.decay_input, surrogate=D.SurrogateType(d.surrogate).name.lower())
        return regs, N.NeuronParams.from_registers(regs)

    # ---- geometry -------------------------------------------------------------------
    def _maps(self, t: torch.Tensor, count: int, h: int, w: int) -> torch.Tensor:
        """``[T, N, count·h·w]`` → rows ``[T·N, count, h, w]`` (conv), or ``[T·N, count]`` (FC)."""
        rows = t.reshape(-1, t.shape[-1])
        return rows.reshape(-1, count, h, w) if self.d.layer == D.LayerType.CONV else rows

    def _steps(self, t: torch.Tensor, slot: str) -> torch.Tensor:
        """A per-sample input ``[N, …]`` is the same for every step: expand it to ``[T, N, …]``."""
        if D.slot_rows(self.d, slot)[1]:
            return t.unsqueeze(0).expand(self.d.steps, *t.shape)
        return t

    def _weights(self, cols: int, rows: int) -> torch.Tensor:
        w = self.read("a", "half", cols * self.d.kk)
        if self.d.layer == D.LayerType.CONV:
            return w.reshape(rows, cols, self.d.kernel, self.d.kernel)
        return w

    # ---- opcodes --------------------------------------------------------------------
    def fp(self):
        d = self.d
        regs, neuron = self.params(False)
        w = self._weights(d.in_total, d.out_cnt)
        x = self.read("b", "half" if d.analog else "spikes", d.in_total * d.in_plane)
        if d.layer == D.LayerType.READOUT:
            self.write("c", FW.readout_forward(w, self._steps(x, "b"), _const(regs["inv_T"]))[2])
            return
        cur = FW.conv2d_forward(w, self._maps(x, d.in_total, d.in_h, d.in_w), d.stride, d.padding) \
            if d.layer == D.LayerType.CONV else FW.fc_forward(w, x.reshape(-1, x.shape[-1]))
        # a per-sample input gives the same currents every step: computed once, used T times
        cur = self._steps(cur.reshape(*x.shape[:-1], -1), "b")
        s, h = N.neuron_forward(neuron, cur)
        self.write("c", h)
        if d.pool > 1:
            s = FW.maxpool_forward(self._maps(s, d.out_cnt, d.out_h, d.out_w), d.pool)[0]
        self.write("d", s.reshape(d.steps, d.batch, -1))

    def bp(self):
        regs, _ = self.params(False)
        self._bp(regs, self.read("b", "half", self.d.out_total * self.d.out_plane))

    def _bp(self, regs: dict, delta: torch.Tensor) -> None:
        """The transposed product of the ``δI`` rows ``delta`` (slot b) → ``δS`` (slot c)."""
        d = self.d
        w = self._weights(d.in_cnt, d.out_total)
        if d.layer == D.LayerType.READOUT:
            self.write("c", B.fc_backward(w, F.mul(delta, _const(regs["inv_T"]).expand_as(delta))))
            return
        rows = self._maps(self._steps(delta, "b"), d.out_total, d.out_h, d.out_w)
        if d.layer == D.LayerType.CONV:
            ds = B.conv2d_backward(w, rows, (d.in_cnt, d.in_h, d.in_w), d.stride, d.padding)
        else:
            ds = B.fc_backward(w, rows)
        self.write("c", ds.reshape(d.steps, d.batch, -1))

    def bpn(self):
        d = self.d
        _, neuron = self.params(d.surrogate == D.SurrogateType.SIGMOID)
        ds = self._steps(self.read("b", "half", d.out_cnt * d.pool_plane), "b")
        h = self.read("c", "half", d.out_cnt * d.out_plane)
        s = F.ge(N.scale(neuron, h), neuron.v_th.expand_as(h))     # the spikes FP fired, from H
        if d.pool > 1:
            first = FW.maxpool_forward(self._maps(s, d.out_cnt, d.out_h, d.out_w), d.pool)[1]
            ds = B.maxpool_backward(self._maps(ds, d.out_cnt, d.pool_h, d.pool_w), first, d.pool,
                                    (d.out_cnt, d.out_h, d.out_w)).reshape(h.shape)
        self.write("d", N.neuron_backward(neuron, h, s, ds).di)

    def wg(self):
        regs, _ = self.params(False)
        x = self.read("b", "half" if self.d.analog else "spikes", self.d.in_cnt * self.d.in_plane)
        self._wg(regs, x, "b", self.read("c", "half", self.d.out_cnt * self.d.out_plane), "c", "a")

    def bpwg(self):
        """BP and WG of an input tile over all outputs: ``δI`` (slot b) is read once for both."""
        d = self.d
        regs, _ = self.params(False)
        delta = self.read("b", "half", d.out_total * d.out_plane)
        x = self.read("e", "half" if d.analog else "spikes", d.in_cnt * d.in_plane)
        self._bp(regs, delta)
        self._wg(regs, x, "e", delta, "b", "d")

    def _wg(self, regs: dict, x: torch.Tensor, x_slot: str, delta: torch.Tensor, delta_slot: str,
            grad_slot: str) -> None:
        """The gradient tile of inputs ``x`` and ``δI`` rows ``delta`` (read from the slots
        named) → ``grad_slot``; a non-finite gradient sets ``overflow``."""
        d = self.d
        x = self._steps(x, x_slot)
        if d.layer == D.LayerType.READOUT:
            delta = F.mul(delta, _const(regs["inv_T"]).expand_as(delta))
        delta = self._steps(delta, delta_slot)
        rows_x = self._maps(x, d.in_cnt, d.in_h, d.in_w)
        rows_d = self._maps(delta, d.out_cnt, d.out_h, d.out_w)
        if d.layer == D.LayerType.CONV:
            g = G.conv2d_weight_grad(rows_d, rows_x, d.kernel, d.stride, d.padding).to_fp16()
        else:
            g = G.fc_weight_grad(rows_d, rows_x).to_fp16()
        self.overflow |= not bool(torch.isfinite(g).all())
        self.write(grad_slot, g.reshape(d.out_cnt, -1))

    def _halves(self, addr: int) -> torch.Tensor:
        self._touch("read", np.arange(addr, addr + self.d.length))
        words = self.mem[addr:addr + self.d.length][None]
        return torch.from_numpy(D.unpack_half(words, 2 * self.d.length)[0].copy())

    def _store(self, addr: int, values: torch.Tensor) -> None:
        self._touch("written", np.arange(addr, addr + self.d.length))
        self.mem[addr:addr + self.d.length] = D.pack_half(values.numpy()[None], self.d.length)[0]

    def update(self):
        d = self.d
        if d.guard and self.overflow:
            return
        regs, _ = self.params(False)
        m16 = _const(regs["momentum"]) if d.momentum else None
        buf = self._halves(d.c_addr) if d.momentum else None
        w, buf = sgd_update(self._halves(d.a_addr), self._halves(d.b_addr), _const(regs["lr"]), regs["shift"],
                            m16, buf)
        self._store(d.a_addr, w)
        if d.momentum:
            self._store(d.c_addr, buf)
        self.counter.read += d.length * (2 + d.momentum)
        self.counter.written += d.length * (1 + d.momentum)


def run(memory: np.ndarray, pc: int, core: D.CoreParams, max_descriptors: int = 1 << 20) -> Status:
    """Execute the descriptor program at word address ``pc``.

    Parameters
    ----------
    memory : numpy.ndarray of uint32
        The DRAM (word ``a`` at index ``a``), modified in place.  The address space is its first
        ``min(core.dram_words, memory.size)`` words.
    pc : int
        Word address of the first descriptor.
    core : CoreParams
        The core's elaboration parameters (what :func:`~.descriptors.validate` checks against).
    max_descriptors : int
        Safety limit for a program without END (``RuntimeError``).

    Returns
    -------
    Status
    """
    return _execute(_Machine(memory, core), pc, max_descriptors)


def _execute(m: _Machine, pc: int, max_descriptors: int = 1 << 20) -> Status:
    status = Status()
    ops = {D.Opcode.FP: m.fp, D.Opcode.BP: m.bp, D.Opcode.BPN: m.bpn, D.Opcode.WG: m.wg,
           D.Opcode.BPWG: m.bpwg, D.Opcode.UPDATE: m.update}
    memory = m.mem
    for _ in range(max_descriptors):
        if pc < 0 or pc + D.DESC_WORDS > m.core.dram_words:
            status.error, status.error_pc = D.ErrorCode.PC_RANGE, pc
            break
        d = D.unpack(memory[pc:pc + D.DESC_WORDS])
        m.d = d
        m.counter = Counter(pc, d.op, d.tag, read=D.DESC_WORDS)
        status.counters.append(m.counter)
        err = D.validate(d, m.core)
        if err != D.ErrorCode.NONE:
            status.error, status.error_pc = err, pc
            break
        if d.op == D.Opcode.END:
            break
        ops[D.Opcode(d.op)]()
        pc += D.DESC_WORDS
    else:
        raise RuntimeError(f"no END within {max_descriptors} descriptors")
    status.done = True
    status.overflow = m.overflow
    return status


def _check_disjoint(phase: int, touched: dict) -> None:
    """``touched``: per core ``{"read": words, "written": words}``.  No word written by one core
    may be read or written by another core of the same phase."""
    sets = {c: {how: np.unique(np.concatenate(idx)) if idx else np.empty(0, np.int64) for how, idx in t.items()}
            for c, t in touched.items()}
    for a in sets:
        for b in sets:
            if a == b:
                continue
            for how in ("written", "read") if a < b else ("read",):
                both = np.intersect1d(sets[a]["written"], sets[b][how])
                if both.size:
                    raise PhaseConflict(f"phase {phase}: core {a} writes word {int(both[0])} that core {b} "
                                        f"{'also writes' if how == 'written' else 'reads'} "
                                        f"({both.size} such words): the cores' programs overlap")


def run_phases(memory: np.ndarray, phases: list, core: D.CoreParams, update_phase: int | None = None) -> Status:
    """Execute a pass of a program compiled for several cores, as the host does: phase after
    phase, every core of a phase started, all of them waited for.

    Parameters
    ----------
    memory : numpy.ndarray of uint32
        The shared DRAM, modified in place.
    phases : list of list of (int or None)
        Per phase, per core the address of the core's program, None for an idle core
        (``Program.forward_phases`` / ``backward_phases``).
    core : CoreParams
        Every core's parameters.
    update_phase : int, optional
        This phase runs only if no core reported ``overflow`` in the earlier phases
        (``Program.update_phase``: the host's guard of the UPDATEs).

    Returns
    -------
    Status
        The pass: the counters of every core (with ``core`` and ``phase``), the first error (the
        pass stops after the phase in which a core stopped with an error), overflow of any core.

    Raises
    ------
    PhaseConflict
        Two cores of a phase touched a word that one of them writes (the model check that makes
        running them one after another equivalent to running them concurrently).
    """
    total = Status()
    for k, phase in enumerate(phases):
        if k == update_phase and total.overflow:
            break
        track = sum(pc is not None for pc in phase) > 1
        touched = {}
        for c, pc in enumerate(phase):
            if pc is None:
                continue
            m = _Machine(memory, core, track=track)
            st = _execute(m, pc)
            touched[c] = m.touched
            for counter in st.counters:
                counter.core, counter.phase = c, k
            total.counters += st.counters
            total.overflow |= st.overflow
            if st.error != D.ErrorCode.NONE and total.error == D.ErrorCode.NONE:
                total.error, total.error_pc, total.error_core = st.error, st.error_pc, c
        if track:
            _check_disjoint(k, touched)
        if total.error != D.ErrorCode.NONE:
            break
    total.done = True
    return total


def _check(status: Status, what: str) -> Status:
    if status.error != D.ErrorCode.NONE:
        raise RuntimeError(f"{what} program of core {status.error_core} stopped at descriptor {status.error_pc}: "
                           f"{status.error.name} ({status.error.message})")
    return status


def train_step(program, memory: np.ndarray, x_seq: torch.Tensor, labels) -> tuple[float, torch.Tensor, tuple]:
    """One training step on the golden device: the host's part (numerics.md §7) around the
    compiled phases (one program per pass with one core).

    Parameters
    ----------
    program : compiler.Program
    memory : numpy.ndarray of uint32
        The DRAM (start from ``program.memory.copy()``), updated in place.
    x_seq : torch.Tensor ``[T, N, …]``
    labels : ``[N]`` class indices

    Returns
    -------
    loss : float
    logits : torch.Tensor
        ``[N, C]`` float32 (exact from binary16).
    statuses : (Status, Status)
        Forward and backward pass (``statuses[1].overflow``: the update was skipped;
        ``by_core()``: each core's DRAM words).
    """
    program.write_input(memory, x_seq)
    fwd = _check(run_phases(memory, program.forward_phases, program.core), "forward")
    logits16 = program.read_logits(memory)
    loss, g16 = host_loss_grad(logits16, torch.as_tensor(labels, dtype=torch.long), program.loss_scale)
    program.write_loss_grad(memory, g16)
    bwd = _check(run_phases(memory, program.backward_phases, program.core, program.update_phase), "backward")
    return loss, logits16.float(), (fwd, bwd)


def _main(argv=None) -> None:
    """``python -m trident.golden.hw.program``: DRAM words of one training step per opcode (and
    per core with ``--cores``), for a network of random weights and inputs (the counts depend on
    the shapes only)."""
    import argparse

    from ..network import SpikingNetwork
    from ..neurons import NeuronConfig
    from .compiler import compile as compile_network
    from .network import HwExactNetwork

    ap = argparse.ArgumentParser(description=_main.__doc__)
    ap.add_argument("--arch", default="fc256")
    ap.add_argument("--input", default="64", help="input shape, e.g. 64 or 1,8,8")
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--direct", action="store_true", help="input stored once per sample (direct encoding)")
    ap.add_argument("--momentum", type=float, default=0.0)
    ap.add_argument("--cores", type=int, default=1, help="cores the layers are split over (phases)")
    args = ap.parse_args(argv)
    if args.cores < 1:
        ap.error(f"--cores {args.cores}: give the number of cores, at least 1")
    torch.set_num_threads(1)
    torch.manual_seed(0)
    shape = tuple(int(s) for s in args.input.split(","))
    model = SpikingNetwork(args.arch, shape, args.classes, NeuronConfig(detach_reset=True))
    net = HwExactNetwork.from_float(model, lr=0.1, momentum=args.momentum)
    prog = compile_network(net, args.batch, D.CoreParams(), steps=args.steps, direct_input=args.direct,
                           cores=args.cores)
    x = torch.rand(args.steps, args.batch, *shape)
    if args.direct:
        x = x[:1].expand_as(x)
    mem = prog.memory.copy()
    _, _, statuses = train_step(prog, mem, x, torch.randint(0, args.classes, (args.batch,)))
    print(f"{args.arch} {shape} T={args.steps} N={args.batch} direct={args.direct} cores={args.cores}: "
          f"{len(prog.forward)} + {len(prog.backward)} descriptors in {len(prog.forward_phases)} + "
          f"{len(prog.backward_phases)} phases, image {prog.memory.size} words")
    total, cores = [0, 0], {}
    for name, st in zip(("forward", "backward"), statuses):
        for op, (r, w) in st.by_opcode().items():
            print(f"  {name:8s} {op:6s} read {r:9d} written {w:9d} words")
            total[0] += r
            total[1] += w
        for c, (r, w) in st.by_core().items():
            cores[c] = (cores.get(c, (0, 0))[0] + r, cores.get(c, (0, 0))[1] + w)
    if args.cores > 1:
        for c, (r, w) in cores.items():
            print(f"  core {c:3d}          read {r:9d} written {w:9d} words")
    print(f"  total: read {total[0]} written {total[1]} words = {4 * sum(total)} bytes")


if __name__ == "__main__":
    _main()
