"""The golden device model: stopping on END and on errors (nothing touched after a bad
descriptor), the overflow guard of UPDATE, and the DRAM traffic counting model of
docs/descriptors.md §7 (checked against an independent reading of the document)."""
import dataclasses

import numpy as np
import pytest
import torch

from trident.golden.hw import compiler as C
from trident.golden.hw import descriptors as D
from trident.golden.hw import fp16 as F
from trident.golden.hw import program as P

from .test_compiler import CORE, cnn, cnn_batch, mlp, mlp_batch

E = D.ErrorCode
O = D.Opcode


def compiled(net=mlp, momentum=0.9, **kw):
    x, y = (mlp_batch() if net is mlp else cnn_batch())
    prog = C.compile(net(momentum), x.shape[1], CORE, steps=x.shape[0], **kw)
    return prog, prog.memory.copy(), x, y


def put(mem, pc, desc):
    mem[pc:pc + D.DESC_WORDS] = D.pack(desc)


def test_end_only_program():
    mem = np.zeros(64, dtype=np.uint32)
    st = P.run(mem, 0, CORE)
    assert st.done and st.error == E.NONE and not st.overflow
    assert [(c.pc, c.op, c.read, c.written) for c in st.counters] == [(0, O.END, 32, 0)]
    assert not mem.any()


def test_pc_outside_dram():
    mem = np.zeros(64, dtype=np.uint32)
    st = P.run(mem, 40, CORE)
    assert st.done and st.error == E.PC_RANGE and st.error_pc == 40 and st.counters == []
    st = P.run(mem, 0, dataclasses.replace(CORE, dram_words=16))      # the smaller of the two sizes
    assert st.error == E.PC_RANGE and st.error_pc == 0


def test_program_without_end_runs_off_the_end_of_dram():
    mem = np.zeros(3 * D.DESC_WORDS, dtype=np.uint32)
    for k in range(3):
        put(mem, k * D.DESC_WORDS, D.Descriptor(op=O.UPDATE, length=1, param_addr=0, a_addr=0, b_addr=0))
    st = P.run(mem, 0, CORE)
    assert st.error == E.PC_RANGE and st.error_pc == 3 * D.DESC_WORDS and len(st.counters) == 3


def test_bad_descriptor_stops_before_touching_memory():
    prog, mem, x, _ = compiled()
    prog.write_input(mem, x)
    bad_pc = prog.forward_pc + D.DESC_WORDS                      # the readout's FP
    put(mem, bad_pc, dataclasses.replace(prog.forward[1], op=9))
    reference = mem.copy()
    put(reference, bad_pc, D.Descriptor(op=O.END))               # the same program, cut before it
    st_ref = P.run(reference, prog.forward_pc, CORE)
    st = P.run(mem, prog.forward_pc, CORE)
    assert st.done and st.error == E.BAD_OPCODE and st.error_pc == bad_pc and st.error.message == "bad opcode"
    put(reference, bad_pc, dataclasses.replace(prog.forward[1], op=9))
    assert np.array_equal(mem, reference)                        # the first FP ran, nothing after it
    assert prog.potentials[0].read(mem).ne(0).any() and not prog.read_logits(mem).ne(0).any()
    assert [c.read for c in st.counters] == [c.read for c in st_ref.counters]
    assert st.counters[-1].written == 0


def test_core_mismatch_is_reported_with_the_failing_descriptor():
    prog, mem, x, _ = compiled()
    before = mem.copy()
    st = P.run(mem, prog.forward_pc, dataclasses.replace(CORE, weight_depth=256))
    assert (st.error, st.error_pc) == (E.WEIGHT_CAPACITY, prog.forward_pc)
    assert np.array_equal(mem, before)
    with pytest.raises(RuntimeError, match="WEIGHT_CAPACITY"):
        P.train_step(dataclasses.replace(prog, core=dataclasses.replace(CORE, weight_depth=256)), mem, x, _)


@pytest.mark.parametrize("guard", [1, 0])
def test_overflowing_gradient_skips_the_guarded_update(guard):
    prog, mem, x, y = compiled()
    for k, d in enumerate(prog.backward):
        if d.op == O.UPDATE:
            put(mem, prog.backward_pc + k * D.DESC_WORDS, dataclasses.replace(d, guard=guard))
    prog.write_input(mem, x)
    assert P.run(mem, prog.forward_pc, CORE).error == E.NONE
    g = torch.zeros(8, 10, dtype=torch.float16)
    g[0, 3] = float("inf")
    prog.write_loss_grad(mem, g)
    weights = prog.read_weights(mem)
    st = P.run(mem, prog.backward_pc, CORE)
    assert st.done and st.error == E.NONE and st.overflow
    assert torch.isinf(prog.grads[-1].read(mem)).any()
    updates = [c for c in st.counters if c.op == O.UPDATE]
    after = prog.read_weights(mem)
    if guard:
        assert all((c.read, c.written) == (D.DESC_WORDS, 0) for c in updates)
        assert all(torch.equal(F.bits(a), F.bits(b)) for a, b in zip(weights, after))
    else:
        assert all(c.written > 0 for c in updates)
        assert not torch.equal(F.bits(weights[-1]), F.bits(after[-1]))


def _expected_traffic(d, steps, batch):
    """docs/descriptors.md §7, read independently of program.py."""
    if d.op == O.END:
        return D.DESC_WORDS, 0
    if d.op == O.UPDATE:
        m = d.momentum
        return D.DESC_WORDS + 8 + d.length * (2 + m), d.length * (1 + m)
    readout = d.layer == D.LayerType.READOUT
    read = D.DESC_WORDS + 8 + (64 if d.op == O.BPN and d.surrogate == D.SurrogateType.SIGMOID else 0)
    written = 0
    roles = {O.FP: "a:in b:in c:out d:out", O.BP: "a:in b:in c:out", O.BPN: "b:in c:in d:out",
             O.WG: "a:out b:in c:in", O.BPWG: "a:in b:in c:out d:out e:in"}[d.op].split()
    for role in roles:
        s, kind = role.split(":")
        if d.op == O.FP and readout and s == "d":
            continue
        words = getattr(d, f"{s}_words")
        if s == "a" or (d.op == O.BPWG and s == "d"):      # weight rows (BPWG: the gradient tile)
            rows = d.out_total if d.op in (O.BP, O.BPWG) else d.out_cnt
        elif (kind == "in" and getattr(d, f"{s}_tstride") == 0) or (kind == "out" and readout):
            rows = batch
        else:
            rows = steps * batch
        if kind == "in":
            read += rows * words
        else:
            written += rows * words
    return read, written


@pytest.mark.parametrize("net,kw", [(mlp, {}), (mlp, dict(direct_input=True, max_tile=4)), (cnn, dict(max_tile=2))])
def test_traffic_counters_follow_the_documented_model(net, kw):
    prog, mem, x, y = compiled(net, **kw)
    _, _, statuses = P.train_step(prog, mem, x, y)
    for st, descs, pc0 in zip(statuses, (prog.forward, prog.backward), (prog.forward_pc, prog.backward_pc)):
        assert [c.pc for c in st.counters] == [pc0 + k * D.DESC_WORDS for k in range(len(descs))]
        for c, d in zip(st.counters, descs):
            assert (c.read, c.written) == _expected_traffic(d, prog.steps, prog.batch), D.Opcode(d.op).name
            assert c.tag == d.tag and c.op == d.op
        assert st.words_read == sum(c.read for c in st.counters)


def test_weights_are_read_once_per_tile_and_outputs_written_once():
    """Weight-stationary: FP reads each weight word of the layer exactly once over its tiles,
    and the tiles of a layer write disjoint words that cover its output rows."""
    prog, mem, x, y = compiled(mlp, max_tile=4)
    _, _, (fwd, _) = P.train_step(prog, mem, x, y)
    readout = [(d, c) for d, c in zip(prog.forward, fwd.counters) if d.layer == D.LayerType.READOUT]
    assert len(readout) == 3                                     # 10 classes in tiles of 4, 4, 2
    weight_words = sum(d.out_cnt * d.a_words for d, _ in readout)
    assert weight_words == prog.weights[-1].size
    assert sum(c.written for _, c in readout) == prog.logits.size
