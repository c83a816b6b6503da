"""The fused ``BPWG`` descriptor (BP and WG of one input tile over all outputs, δI read once):
the same DRAM image and the same numbers as BP followed by WG, the traffic it saves, when the
compiler emits it, and every check ``validate`` makes on it (docs/descriptors.md)."""
import dataclasses

import numpy as np
import pytest
import torch

from trident.golden.hw import HwExactNetwork
from trident.golden.hw import compiler as C
from trident.golden.hw import descriptors as D
from trident.golden.hw import program as P
from trident.golden.network import SpikingNetwork
from trident.golden.neurons import NeuronConfig

from .test_compiler import CORE, assert_same

E, O = D.ErrorCode, D.Opcode
HEADER = D.DESC_WORDS + D.PARAM_HEADER_WORDS         # what one descriptor reads besides its operands


def _net(arch, shape, momentum=0.9):
    """A spiking network whose weights are scaled so that the deep layers still spike."""
    torch.manual_seed(0)
    m = SpikingNetwork(arch, shape, 10, NeuronConfig(kind="lif", tau=2.0, detach_reset=True, surrogate="sigmoid"))
    with torch.no_grad():
        for layer in [*m.body, m.readout]:
            if hasattr(layer, "weight"):
                layer.weight.mul_(4.0)
    return HwExactNetwork.from_float(m, lr=0.1, momentum=momentum)


# two hidden layers: layer 1's BP/WG is fused, not only the readout's; the CNN fuses a conv layer
NETS = {"mlp": ("fc64,fc48", (64,)), "cnn": ("conv4k3p1,maxpool2,conv6k3p1,fc64", (1, 8, 8))}


def _batch(shape, steps=3, n=4):
    g = torch.Generator().manual_seed(1)
    return torch.rand(steps, n, *shape, generator=g), torch.randint(0, 10, (n,), generator=g)


def _run_alone(mem, descs):
    """Run ``descs`` + END from a program area appended past the image; returns (memory, Status)."""
    mem = np.concatenate([mem, np.zeros((len(descs) + 1) * D.DESC_WORDS, np.uint32)])
    for k, d in enumerate([*descs, D.Descriptor(op=O.END)]):
        pc = mem.size - (len(descs) + 1 - k) * D.DESC_WORDS
        mem[pc:pc + D.DESC_WORDS] = D.pack(d)
    st = P.run(mem, mem.size - (len(descs) + 1) * D.DESC_WORDS, CORE)
    assert st.error == E.NONE
    return mem[:-(len(descs) + 1) * D.DESC_WORDS], st


def test_bpwg_equals_bp_then_wg_and_reads_delta_once():
    """Every BPWG of a tiled CNN (conv, FC and readout layers, tiles with in_lo > 0): from the
    state after a training step with its outputs (δS below, the gradient) cleared, the fused
    descriptor leaves exactly the DRAM image that its BP followed by its WG leaves, writes the
    same words, and reads δI and the descriptor + parameter header once instead of twice."""
    x, y = _batch(NETS["cnn"][1])
    prog = C.compile(_net(*NETS["cnn"]), x.shape[1], CORE, steps=x.shape[0], max_tile=2)
    mem = prog.memory.copy()
    P.train_step(prog, mem, x, y)
    fused = [d for d in prog.backward if d.op == O.BPWG]
    assert {D.LayerType(d.layer) for d in fused} == set(D.LayerType)
    assert {D.LayerType(d.layer) for d in fused if d.in_lo > 0} == set(D.LayerType)
    for d in fused:
        i = next(k for k, g in enumerate(prog.grads) if g.addr <= d.d_addr < g.addr + g.size)
        start = mem.copy()
        for buf in (prog.errors[i - 1], prog.grads[i]):         # BPWG's outputs: start from zeros
            start[buf.addr:buf.addr + buf.size] = 0
        bp, wg = D.split_bpwg(d)
        assert D.validate(bp, CORE) == E.NONE and D.validate(wg, CORE) == E.NONE
        after_fused, st_fused = _run_alone(start, [d])
        after_apart, st_apart = _run_alone(start, [bp, wg])
        assert np.array_equal(after_fused, after_apart), (d.tag, d.in_lo)
        for buf in (prog.errors[i - 1], prog.grads[i]):         # … and both really computed something
            assert after_fused[buf.addr:buf.addr + buf.size].any(), (d.tag, d.in_lo, buf.name)
        c_fused, (c_bp, c_wg) = st_fused.counters[0], st_apart.counters[:2]
        rows, per_sample = D.slot_rows(d, "b")
        delta = rows * d.b_words * (1 if per_sample else d.steps)
        assert c_fused.read == c_bp.read + c_wg.read - delta - HEADER
        assert c_fused.written == c_bp.written + c_wg.written


def _step(name, cores, fuse, core=CORE, steps_run=2):
    arch, shape = NETS[name]
    x, y = _batch(shape)
    prog = C.compile(_net(arch, shape), x.shape[1], core, steps=x.shape[0], cores=cores, fuse=fuse)
    mem, out = prog.memory.copy(), []
    for _ in range(steps_run):
        loss, logits, (fwd, bwd) = P.train_step(prog, mem, x, y)
        assert not bwd.overflow
        out.append((loss, logits, fwd.words_read + bwd.words_read, fwd.words_written + bwd.words_written))
    return prog, mem, out


def _same_state(a, b):
    """Every tensor the host can read, bit for bit, from two programs' memories."""
    (pa, ma), (pb, mb) = a, b
    for what in ("weights", "grads", "momentum", "potentials", "spikes", "deltas", "errors"):
        for k, (ba, bb) in enumerate(zip(getattr(pa, what), getattr(pb, what), strict=True)):
            assert_same(ba.read(ma), bb.read(mb), f"{what}{k}")
    assert_same(pa.read_logits(ma), pb.read_logits(mb), "logits")


@pytest.mark.parametrize("cores", [1, 3])
@pytest.mark.parametrize("name", NETS)
def test_fused_training_is_bit_identical_and_reads_less(name, cores):
    """Two training steps with and without fusion: the same weights, momentum, gradients, logits
    and intermediate tensors; the fused program writes the same number of words and reads
    strictly fewer (δI and a descriptor + header saved per input tile)."""
    fused, apart = _step(name, cores, True), _step(name, cores, False)
    ops = [(O(d.op), D.LayerType(d.layer)) for d in fused[0].backward]
    assert (O.BPWG, D.LayerType.READOUT) in ops and (O.BP, D.LayerType.FC) not in ops
    assert any(op == O.BPWG and lt != D.LayerType.READOUT for op, lt in ops)      # a hidden layer fused
    assert O.BPWG not in {d.op for d in apart[0].backward}
    _same_state(fused[:2], apart[:2])
    assert all(g.read(fused[1]).ne(0).any() for g in fused[0].grads)
    for (loss_f, logits_f, read_f, written_f), (loss_a, logits_a, read_a, written_a) in zip(fused[2], apart[2]):
        assert loss_f == loss_a and torch.equal(logits_f, logits_a)
        assert read_f < read_a and written_f == written_a


def test_too_many_wg_groups_fall_back_to_wg_and_bp():
    """With wg_groups = 3 (12 outputs of 4 lanes), the readout (10 outputs) still fuses, layer 1
    (48 outputs = 12 groups) runs as separate WG + BP; the results equal an unfused program's."""
    core = dataclasses.replace(CORE, wg_groups=3)
    fused, apart = _step("mlp", 1, True, core, steps_run=1), _step("mlp", 1, False, core, steps_run=1)
    by_tag = {}
    for d in fused[0].backward:
        by_tag.setdefault(d.tag, set()).add(O(d.op))
    assert O.BPWG in by_tag[2] and {O.WG, O.BP} & by_tag[2] == set()
    assert {O.WG, O.BP} <= by_tag[1] and O.BPWG not in by_tag[1]
    assert all(-(-d.out_cnt // core.lanes) <= 3 for d in fused[0].backward if d.op == O.WG)
    assert O.BPWG not in {d.op for d in apart[0].backward}
    _same_state(fused[:2], apart[:2])
    for name in NETS:                     # fuse=False: never a BPWG, on one core or on three
        for cores in (1, 3):
            arch, shape = NETS[name]
            prog = C.compile(_net(arch, shape), 4, CORE, steps=3, cores=cores, fuse=False)
            assert O.BPWG not in {d.op for pc in prog.programs for d in prog.programs[pc]}


def bpwg(**kw):
    """A valid BPWG: FC 64 → 16, input tile [32, 64), T = 4, N = 8, spike input; rows of 64
    binary16 are 32 words (weights, gradient, δS), δI rows 16 halves = 8 words, input rows 2 words."""
    d = D.Descriptor(op=O.BPWG, layer=D.LayerType.FC, pool=1, kernel=1, stride=1, steps=4, batch=8,
                     out_lo=0, out_cnt=16, in_lo=32, in_cnt=32, out_total=16, in_total=64,
                     in_h=1, in_w=1, out_h=1, out_w=1, pool_h=1, pool_w=1, kk=1, in_plane=1, out_plane=1,
                     pool_plane=1, param_addr=8,
                     a_addr=116, a_pitch=32, a_words=16,                     # weights, columns 32..63
                     b_addr=3000, b_pitch=8, b_words=8, b_tstride=64,        # δI [T, N, 16]
                     c_addr=5016, c_pitch=32, c_words=16, c_tstride=256,     # δS [T, N, 64], tile
                     d_addr=7016, d_pitch=32, d_words=16,                    # gradient, columns 32..63
                     e_addr=2001, e_pitch=2, e_words=1, e_tstride=16)        # spikes [T, N, 64], tile
    return dataclasses.replace(d, **kw)


# the last word of slot d: 15 rows on, 16 words; of slot e: 3 steps and 7 samples on, 1 word
D_LAST, E_LAST = 15 * 32 + 16, 3 * 16 + 7 * 2 + 1
DRAM = CORE.dram_words
ANALOG = dict(analog=1, e_addr=2016, e_pitch=32, e_words=16, e_tstride=256)      # binary16 input


@pytest.mark.parametrize("code,desc,core", [
    (E.NONE, bpwg(), CORE),
    (E.NONE, bpwg(**ANALOG), CORE),
    (E.NONE, bpwg(d_addr=DRAM - D_LAST), CORE),                          # the address checks are tight
    (E.NONE, bpwg(e_addr=DRAM - E_LAST), CORE),
    (E.UNSUPPORTED, bpwg(**ANALOG), D.CoreParams(mac=False)),            # WG's input is analog
    (E.INCONSISTENT, bpwg(out_cnt=8), CORE),                             # BP covers every output
    (E.INCONSISTENT, bpwg(e_words=2), CORE),
    (E.INCONSISTENT, bpwg(d_words=15), CORE),
    (E.WEIGHT_CAPACITY, bpwg(), D.CoreParams(weight_depth=127, acc_depth=127)),   # BP's code is smaller
    (E.INPUT_CAPACITY, bpwg(), D.CoreParams(max_inputs=31)),             # in_cnt 32 > 31 ≥ out_total 16
    (E.ACC_CAPACITY, bpwg(), D.CoreParams(acc_depth=127)),               # 4 groups × 32 inputs
    (E.ACC_CAPACITY, bpwg(), D.CoreParams(wg_groups=3)),
    (E.ADDRESS_RANGE, bpwg(d_addr=DRAM - D_LAST + 1), CORE),
    (E.ADDRESS_RANGE, bpwg(e_addr=DRAM - E_LAST + 1), CORE),
    (E.MISALIGNED, bpwg(in_lo=16, in_cnt=16, a_words=8, c_words=8, d_words=8), CORE),   # spikes from bit 16
])
def test_validate_bpwg(code, desc, core):
    assert D.validate(desc, core) == code


def test_bpwg_checks_are_the_union_of_bp_and_wg():
    """The failures that come from WG's side (its input row, accumulators, input slot, MAC) are
    not BP's: BP alone passes where BPWG fails; and every case above gives the smallest failing
    code of its BP and its WG (NONE when both pass)."""
    bp, wg = D.split_bpwg(bpwg())
    for core in (D.CoreParams(max_inputs=31), D.CoreParams(acc_depth=127), D.CoreParams(wg_groups=3)):
        assert D.validate(bp, core) == E.NONE and D.validate(wg, core) != E.NONE
    for code, desc, core in test_validate_bpwg.pytestmark[0].args[1]:
        codes = [D.validate(part, core) for part in D.split_bpwg(desc)]
        assert min((c for c in codes if c != E.NONE), default=E.NONE) == code, (code, codes)
