"""Multi-core programs (docs/descriptors.md §10): every layer's ops split over N cores, run as
phases of per-core programs; results bit-identical to one core and to ``HwExactNetwork.step``,
phases that touch disjoint words, balanced work, the host's guard of the UPDATE phase, and the
DRAM traffic per core."""
import numpy as np
import pytest
import torch

from trident.golden.hw import HwExactNetwork
from trident.golden.hw import compiler as C
from trident.golden.hw import descriptors as D
from trident.golden.hw import program as P
from trident.golden.network import SpikingNetwork
from trident.golden.neurons import NeuronConfig

from .test_compiler import CORE, check_step, cnn, cnn_batch, mlp, mlp_batch

O = D.Opcode
CORES = (1, 2, 3, 4)
NETS = {"mlp": (mlp, mlp_batch), "cnn": (cnn, cnn_batch)}


def _buffers(prog):
    return {b.name: b for b in (prog.input, prog.logits, prog.grad_logits, *prog.weights, *prog.grads,
                                *prog.momentum, *prog.potentials, *prog.spikes, *prog.deltas, *prog.errors)}


def _trained(name, cores, momentum=0.9, steps_run=2):
    """Two training steps with ``cores`` cores, checked bit for bit against ``HwExactNetwork.step``
    (logits, loss, G, H, spikes, δI, gradients, weights, momentum) by ``check_step``."""
    net, batch = NETS[name]
    x, y = batch()
    return check_step(net(momentum), x, y, steps_run=steps_run, cores=cores)


@pytest.fixture(scope="module")
def single_core():
    return {name: _trained(name, 1) for name in NETS}


@pytest.mark.parametrize("cores", CORES[1:])
@pytest.mark.parametrize("name", NETS)
def test_training_is_bit_identical_to_one_core(name, cores, single_core):
    prog, mem = _trained(name, cores)
    ref_prog, ref_mem = single_core[name]
    ref = _buffers(ref_prog)
    for key, b in _buffers(prog).items():           # every word of every tensor after two steps
        r = ref[key]
        assert (b.size, b.pitch) == (r.size, r.pitch)
        assert np.array_equal(mem[b.addr:b.addr + b.size], ref_mem[r.addr:r.addr + r.size]), key


def test_momentum_free_cnn_on_three_cores_is_bit_exact():
    _trained("cnn", 3, momentum=0.0)


def _written_words(d, steps, batch):
    """The words a descriptor writes, from docs/descriptors.md §3 (independent of program.py)."""
    if d.op == O.UPDATE:
        ranges = [(d.a_addr, d.length)] + ([(d.c_addr, d.length)] if d.momentum else [])
        return set().union(*(range(a, a + n) for a, n in ranges))
    outputs = {O.FP: "cd", O.BP: "c", O.BPN: "d", O.WG: "a", O.BPWG: "cd", O.END: ""}[O(d.op)]
    out = set()
    for s in outputs:
        if d.op == O.FP and d.layer == D.LayerType.READOUT and s == "d":
            continue
        addr, pitch, words, tstride = (getattr(d, f"{s}_{k}") for k in ("addr", "pitch", "words", "tstride"))
        rows, per_sample = D.slot_rows(d, s)
        for t in range(1 if per_sample else steps):
            for r in range(rows):
                out.update(range(addr + t * tstride + r * pitch, addr + t * tstride + r * pitch + words))
    return out


@pytest.mark.parametrize("cores", CORES)
@pytest.mark.parametrize("name", NETS)
def test_phases_are_programs_on_disjoint_outputs(name, cores):
    net, batch = NETS[name]
    x, _ = batch()
    prog = C.compile(net(0.9), x.shape[1], CORE, steps=x.shape[0], cores=cores)
    phases = prog.forward_phases + prog.backward_phases
    assert all(len(p) == cores for p in phases)
    pcs = [pc for p in phases for pc in p if pc is not None]
    assert sorted(pcs) == sorted(prog.programs) and len(set(pcs)) == len(pcs)
    for pc, descs in prog.programs.items():          # the image holds them; END only at the end
        assert [d.op == O.END for d in descs] == [False] * (len(descs) - 1) + [True]
        for k, d in enumerate(descs):
            assert D.unpack(prog.memory[pc + k * D.DESC_WORDS:pc + (k + 1) * D.DESC_WORDS]) == d
            assert D.validate(d, CORE) == D.ErrorCode.NONE
    for passes in (prog.forward_phases, prog.backward_phases):
        # no two descriptors of a pass write the same word: in particular no two cores of a phase
        sets = [_written_words(d, prog.steps, prog.batch) for p in passes for pc in p if pc is not None
                for d in prog.programs[pc]]
        assert sum(map(len, sets)) == len(set().union(*sets))
    if cores == 1:
        assert prog.forward_phases == [[prog.forward_pc]] and prog.backward_phases == [[prog.backward_pc]]
        assert prog.update_phase is None
    else:
        with pytest.raises(ValueError, match="forward_phases"):
            prog.forward_pc
        assert prog.update_phase == len(prog.backward_phases) - 1
        last = [d.op for pc in prog.backward_phases[-1] if pc is not None for d in prog.programs[pc]]
        assert set(last) == {O.UPDATE, O.END}
        assert O.UPDATE not in [d.op for p in prog.backward_phases[:-1] for pc in p if pc is not None
                                for d in prog.programs[pc]]
    guards = {d.guard for d in prog.backward if d.op == O.UPDATE}
    assert guards == {int(cores == 1)}              # several cores: the host guards the UPDATE phase
    # with one core or many, the UPDATEs cover every weight word exactly once
    lengths = sum(d.length for d in prog.backward if d.op == O.UPDATE)
    assert lengths == sum(w.size for w in prog.weights)


def test_a_layer_with_fewer_tiles_than_cores_leaves_cores_idle():
    x, y = mlp_batch()
    prog = C.compile(mlp(0.0), 8, CORE, steps=4, cores=4)
    hidden, readout = prog.forward_phases
    assert hidden[1:] == [None, None, None]          # 32 spiking outputs: one aligned tile of 32
    assert [len(prog.programs[pc]) - 1 for pc in readout] == [1, 1, 1, 1]
    assert [prog.programs[pc][0].out_cnt for pc in readout] == [4, 2, 2, 2]     # 10 classes, pairs
    _, _, (fwd, bwd) = P.train_step(prog, prog.memory.copy(), x, y)
    assert fwd.done and bwd.done and fwd.error == D.ErrorCode.NONE
    assert set(fwd.by_core()) == {0, 1, 2, 3} and set(bwd.by_core()) == {0, 1, 2, 3}


def _work(d):
    """Multiply-accumulates per (t, n) row of a descriptor (UPDATE: words; END: none)."""
    if d.op in (O.UPDATE, O.END):
        return d.length
    per = {O.FP: d.out_cnt * d.in_total, O.BP: d.in_cnt * d.out_total, O.WG: d.out_cnt * d.in_cnt,
           O.BPWG: 2 * d.in_cnt * d.out_total, O.BPN: d.out_cnt}[O(d.op)]
    return per * d.out_plane * (1 if d.op == O.BPN else d.kk)


def test_work_is_balanced_over_cores():
    """The digits MLP 64-256-10 on 4 cores: every phase splits evenly, except the readout's FP
    (10 classes in aligned pairs: 4, 2, 2, 2)."""
    torch.manual_seed(0)
    net = HwExactNetwork.from_float(SpikingNetwork("fc256", (64,), 10, NeuronConfig(detach_reset=True)), lr=0.1,
                                    momentum=0.9)
    prog = C.compile(net, 32, CORE, steps=8, direct_input=True, cores=4)
    phases = prog.forward_phases + prog.backward_phases
    assert len(phases) == 2 + 4
    for k, phase in enumerate(phases):
        work = [sum(_work(d) for d in prog.programs[pc]) for pc in phase]
        if k == 1:
            assert work == [4 * 256, 2 * 256, 2 * 256, 2 * 256]
        else:
            assert max(work) - min(work) <= 0.02 * max(work), (k, work)
    fp = [prog.programs[pc] for pc in phases[0]]
    assert [[d.out_cnt for d in p if d.op == O.FP] for p in fp] == [[64]] * 4


@pytest.mark.parametrize("name", NETS)
def test_per_core_counters_add_up_and_show_the_overhead(name, single_core):
    net, batch = NETS[name]
    x, y = batch()
    totals = {}
    for cores in CORES:
        prog = C.compile(net(0.9), x.shape[1], CORE, steps=x.shape[0], cores=cores)
        _, _, statuses = P.train_step(prog, prog.memory.copy(), x, y)
        read = written = 0
        for st in statuses:
            by_core = st.by_core()
            assert sum(r for r, _ in by_core.values()) == st.words_read
            assert sum(w for _, w in by_core.values()) == st.words_written
            assert {c.core for c in st.counters} <= set(range(cores))
            read, written = read + st.words_read, written + st.words_written
        totals[cores] = (read, written)
    one = totals[1]
    for cores, (read, written) in totals.items():
        assert written == one[1]                      # every output word is written once, whatever N
        assert read >= one[0]                         # inputs, δ and headers re-read per extra tile
        print(f"{name} N={cores}: read {read} written {written} words, "
              f"+{100 * (read + written - sum(one)) / sum(one):.1f} % over one core")


def test_host_skips_the_update_phase_after_an_overflow():
    """An infinite G: WG overflows on some core; with one core the guarded UPDATEs skip, with
    several the host does not run the UPDATE phase; weights and gradients agree bit for bit."""
    x, _ = mlp_batch()
    g = torch.zeros(8, 10, dtype=torch.float16)
    g[0, 3] = float("inf")
    results = []
    for cores in (1, 3):
        prog = C.compile(mlp(0.9), 8, CORE, steps=4, cores=cores)
        mem = prog.memory.copy()
        prog.write_input(mem, x)
        assert P.run_phases(mem, prog.forward_phases, CORE).error == D.ErrorCode.NONE
        prog.write_loss_grad(mem, g)
        before = mem.copy()
        st = P.run_phases(mem, prog.backward_phases, CORE, prog.update_phase)
        assert st.done and st.error == D.ErrorCode.NONE and st.overflow
        updates = [(c.read, c.written) for c in st.counters if c.op == O.UPDATE]
        if cores == 1:                                # fetched, skipped by the core's guard
            assert updates and all(u == (D.DESC_WORDS, 0) for u in updates)
        else:                                         # the host did not start the UPDATE phase
            assert not updates and max(c.phase for c in st.counters) == prog.update_phase - 1
        for w in prog.weights + prog.momentum:
            assert np.array_equal(mem[w.addr:w.addr + w.size], before[w.addr:w.addr + w.size])
        assert torch.isinf(prog.grads[-1].read(mem)).any()
        results.append(np.concatenate([mem[b.addr:b.addr + b.size] for b in prog.grads + prog.weights]))
    assert np.array_equal(*results)


def test_an_error_on_one_core_stops_the_pass_after_its_phase():
    x, y = mlp_batch()
    prog = C.compile(mlp(0.0), 8, CORE, steps=4, cores=2)
    mem = prog.memory.copy()
    pc = prog.backward_phases[1][1]                  # core 1's BPN program
    mem[pc:pc + D.DESC_WORDS] = D.pack(D.Descriptor(op=9))
    prog.write_input(mem, x)
    P.run_phases(mem, prog.forward_phases, CORE)
    st = P.run_phases(mem, prog.backward_phases, CORE, prog.update_phase)
    assert (st.error, st.error_pc, st.error_core) == (D.ErrorCode.BAD_OPCODE, pc, 1)
    assert max(c.phase for c in st.counters) == 1    # core 0 finished phase 1; no later phase ran
    with pytest.raises(RuntimeError, match="backward program of core 1 stopped at descriptor .*BAD_OPCODE"):
        P.train_step(prog, mem, x, y)


def test_overlapping_programs_in_one_phase_are_caught():
    prog = C.compile(mlp(0.0), 8, CORE, steps=4, cores=2)
    mem = prog.memory.copy()
    pc = prog.forward_phases[1][0]
    with pytest.raises(P.PhaseConflict, match="phase 0: core 0 writes word .* that core 1 also writes"):
        P.run_phases(mem, [[pc, pc]], CORE)


@pytest.mark.parametrize("cores", [0, -1, 2.0, True])
def test_bad_core_counts_are_refused(cores):
    with pytest.raises(C.CompileError, match="number of cores"):
        C.compile(mlp(0.0), 8, CORE, steps=4, cores=cores)


def test_cli_prints_per_core_traffic(capsys):
    P._main(["--arch", "fc16", "--input", "12", "--classes", "4", "--steps", "2", "--batch", "4", "--cores", "2"])
    out = capsys.readouterr().out
    assert "cores=2" in out and "core   0" in out and "core   1" in out and "total: read" in out
