"""The descriptor format: field table, round trip, every error code of ``validate``, the
parameter block and the DRAM row packing (docs/descriptors.md)."""
import dataclasses
import random

import numpy as np
import pytest
import torch

from trident.golden.hw import descriptors as D
from trident.golden.hw import fp16 as F
from trident.golden.hw.neuron import NeuronParams
from trident.golden.neurons import NeuronConfig

E = D.ErrorCode
CORE = D.CoreParams()


def fc_fp(**kw):
    """A valid FP descriptor: FC 64 → 32 LIF neurons (tile 0..32 of 64), T = 4, N = 8."""
    d = D.Descriptor(op=D.Opcode.FP, layer=D.LayerType.FC, neuron=D.NeuronType.LIF,
                     surrogate=D.SurrogateType.SIGMOID, pool=1, kernel=1, stride=1, steps=4, batch=8,
                     out_lo=0, out_cnt=32, in_lo=0, in_cnt=64, out_total=64, in_total=64,
                     in_h=1, in_w=1, out_h=1, out_w=1, pool_h=1, pool_w=1, kk=1, in_plane=1, out_plane=1,
                     pool_plane=1, param_addr=8,
                     a_addr=100, a_pitch=32, a_words=32,
                     b_addr=2000, b_pitch=2, b_words=2, b_tstride=16,
                     c_addr=3000, c_pitch=32, c_words=16, c_tstride=256,
                     d_addr=4000, d_pitch=2, d_words=1, d_tstride=16)
    return dataclasses.replace(d, **kw)


def conv_fp(**kw):
    """A valid FP descriptor: conv 2×8×8 → 6×8×8 (K = 3, p = 1), max pool 2, tile of 4 channels."""
    d = fc_fp(layer=D.LayerType.CONV, pool=2, kernel=3, padding=1, out_cnt=4, out_total=6, in_cnt=2,
              in_total=2, in_h=8, in_w=8, out_h=8, out_w=8, pool_h=4, pool_w=4, kk=9, in_plane=64,
              out_plane=64, pool_plane=16, a_pitch=9, a_words=9, b_pitch=4, b_words=4, b_tstride=32,
              c_pitch=192, c_words=128, c_tstride=1536, d_pitch=3, d_words=2, d_tstride=24)
    return dataclasses.replace(d, **kw)


def wg(**kw):
    """A valid WG descriptor: FC 64 → 32, tile 8 outputs × 32 inputs."""
    d = fc_fp(op=D.Opcode.WG, out_lo=8, out_cnt=8, out_total=32, in_lo=32, in_cnt=32, a_addr=116,
              a_words=16, b_addr=2001, b_words=1, c_addr=3004, c_pitch=16, c_words=4, c_tstride=128,
              d_addr=0, d_pitch=0, d_words=0, d_tstride=0)
    return dataclasses.replace(d, **kw)


def update(**kw):
    d = D.Descriptor(op=D.Opcode.UPDATE, param_addr=8, length=100, a_addr=200, b_addr=400, c_addr=600,
                     momentum=1, guard=1)
    return dataclasses.replace(d, **kw)


def test_field_table_never_straddles_words_and_does_not_overlap():
    used = {}
    for f in D.FIELDS:
        assert 0 <= f.word < D.DESC_WORDS and f.offset + f.width <= 32, f
        for bit in range(f.offset, f.offset + f.width):
            assert (f.word, bit) not in used, (f.name, used.get((f.word, bit)))
            used[(f.word, bit)] = f.name
    assert [f.name for f in dataclasses.fields(D.Descriptor)] == [f.name for f in D.FIELDS]


def test_enums_match_the_rtl_neuron_registers():
    regs = pytest.importorskip("trident.rtl.neuron.registers")
    assert {k.name: k.value for k in regs.NeuronKind} == {k.name: k.value for k in D.NeuronType}
    assert {k.name: k.value for k in regs.SurrogateKind} == {k.name: k.value for k in D.SurrogateType}
    assert regs.SIGMOID_SEGMENTS == D.PARAM_WORDS - D.PARAM_TABLE_OFFSET


def test_pack_unpack_round_trip_random():
    rng = random.Random(0)
    for _ in range(200):
        d = D.Descriptor(**{f.name: rng.randrange(1 << f.width) for f in D.FIELDS})
        words = D.pack(d)
        assert len(words) == D.DESC_WORDS and all(0 <= w < 1 << 32 for w in words)
        assert D.unpack(words) == d
    with pytest.raises(ValueError, match="steps"):
        D.pack(fc_fp(steps=256))
    with pytest.raises(ValueError, match="32 words"):
        D.unpack([0] * 16)


def test_field_positions_are_the_documented_ones():
    words = D.pack(D.Descriptor(op=5, batch=0x1234, b_tstride=0xDEADBEEF, d_words=7))
    assert words[0] == 5 and words[1] == 0x1234 << 8 and words[16] == 0xDEADBEEF and words[21] == 7 << 16


def test_valid_descriptors_pass():
    for d in (fc_fp(), conv_fp(), wg(), update(), D.Descriptor(op=D.Opcode.END)):
        assert D.validate(d, CORE) == E.NONE, d
    assert D.validate(fc_fp(out_lo=32), CORE) == E.NONE
    assert D.validate(fc_fp(b_tstride=0), CORE) == E.NONE          # direct encoding: one row per sample


@pytest.mark.parametrize("code,desc,core", [
    (E.BAD_OPCODE, fc_fp(op=7), CORE),
    (E.BAD_OPCODE, fc_fp(op=15), CORE),
    (E.BAD_LAYER, fc_fp(layer=3), CORE),
    (E.BAD_LAYER, fc_fp(op=D.Opcode.BPN, layer=D.LayerType.READOUT), CORE),
    (E.BAD_NEURON, fc_fp(neuron=3), CORE),
    (E.BAD_SURROGATE, fc_fp(surrogate=3), CORE),
    (E.UNSUPPORTED, conv_fp(), D.CoreParams(conv=False)),
    (E.UNSUPPORTED, fc_fp(analog=1, b_words=32, b_pitch=32, b_tstride=256), D.CoreParams(mac=False)),
    (E.ZERO_SIZE, fc_fp(steps=0), CORE),
    (E.ZERO_SIZE, fc_fp(batch=0), CORE),
    (E.ZERO_SIZE, fc_fp(out_cnt=0), CORE),
    (E.ZERO_SIZE, update(length=0), CORE),
    (E.SIZE_LIMIT, fc_fp(), D.CoreParams(max_steps=3)),
    (E.SIZE_LIMIT, fc_fp(), D.CoreParams(max_batch=4)),
    (E.SIZE_LIMIT, conv_fp(), D.CoreParams(max_kernel=2)),
    (E.SIZE_LIMIT, conv_fp(), D.CoreParams(max_pool=1)),
    (E.SIZE_LIMIT, conv_fp(padding=3), CORE),
    (E.INCONSISTENT, fc_fp(out_lo=48), CORE),                          # tile past the layer
    (E.INCONSISTENT, fc_fp(in_cnt=32), CORE),                          # FP reads every input
    (E.INCONSISTENT, fc_fp(c_words=15), CORE),
    (E.INCONSISTENT, fc_fp(b_pitch=1), CORE),
    (E.INCONSISTENT, fc_fp(c_tstride=0), CORE),                        # outputs need a T dimension
    (E.INCONSISTENT, fc_fp(d_tstride=8), CORE),                        # steps overlap samples
    (E.INCONSISTENT, fc_fp(kernel=3, kk=9), CORE),                     # FC is 1×1
    (E.INCONSISTENT, conv_fp(out_h=7), CORE),
    (E.INCONSISTENT, conv_fp(pool_h=3), CORE),
    (E.INCONSISTENT, conv_fp(kk=8), CORE),
    (E.INCONSISTENT, wg(layer=D.LayerType.READOUT, c_tstride=128, op=D.Opcode.BP, out_lo=0,
                        out_cnt=32, a_words=16, b_words=16, b_pitch=16, b_tstride=128, c_words=16), CORE),
    (E.WEIGHT_CAPACITY, fc_fp(), D.CoreParams(weight_depth=64 * 8 - 1)),
    (E.STATE_CAPACITY, conv_fp(), D.CoreParams(state_depth=255)),
    (E.INPUT_CAPACITY, fc_fp(), D.CoreParams(max_inputs=63)),
    (E.ACC_CAPACITY, wg(), D.CoreParams(acc_depth=63)),
    (E.ACC_CAPACITY, wg(), D.CoreParams(wg_groups=1)),                 # 8 outputs = 2 groups
    (E.ADDRESS_RANGE, fc_fp(), D.CoreParams(dram_words=4000 + 3 * 16 + 7 * 2 + 1 - 1)),
    (E.ADDRESS_RANGE, fc_fp(param_addr=(1 << 22) - 71), CORE),
    (E.ADDRESS_RANGE, update(c_addr=(1 << 22) - 99), CORE),
    (E.MISALIGNED, fc_fp(out_lo=16), CORE),                            # spikes start inside a word
    (E.MISALIGNED, fc_fp(out_cnt=20, d_words=1, c_words=10), CORE),    # … or end inside one
    (E.MISALIGNED, wg(in_lo=16, in_cnt=16, a_words=8), CORE),
    (E.MISALIGNED, conv_fp(out_cnt=3, out_lo=3, c_words=96, d_words=2), CORE),
])
def test_every_error_code(code, desc, core):
    assert D.validate(desc, core) == code
    assert code.message and code.message != E.NONE.message


def test_every_error_code_is_tested_or_raised_by_the_fetch():
    tested = {c for c, *_ in test_every_error_code.pytestmark[0].args[1]}
    assert set(E) - tested == {E.NONE, E.PC_RANGE}
    assert len({c.message for c in E}) == len(E)


def test_address_check_is_tight():
    last = 4000 + 3 * 16 + 7 * 2 + 1                                   # one past slot d's last word
    assert D.validate(fc_fp(), D.CoreParams(dram_words=last)) == E.NONE
    assert D.validate(fc_fp(), D.CoreParams(dram_words=last - 1)) == E.ADDRESS_RANGE


def test_param_block_holds_the_register_constants():
    cfg = NeuronConfig(kind="klif", tau=2.0, detach_reset=True, surrogate="sigmoid", k_init=0.75)
    p = NeuronParams.from_config(cfg)
    words = D.param_block(p, 4, F.const(0.5), F.const(0.9), 10)
    assert len(words) == D.PARAM_WORDS
    regs = p.registers()
    half = lambda w, hi: (words[w] >> (16 * hi)) & 0xFFFF        # noqa: E731
    assert (half(0, 0), half(0, 1), half(1, 0), half(1, 1), half(2, 0), half(2, 1), half(3, 0)) == (
        regs["v_th"], regs["v_reset"], regs["v_rest"], regs["inv_tau"], regs["leak"], regs["k"],
        regs["surrogate_alpha"])
    assert half(4, 1) == int(F.bits(F.const(0.25))) and half(5, 0) == int(F.bits(F.const(0.5)))
    assert half(5, 1) == int(F.bits(F.const(0.9))) and words[6] == 10
    assert [(half(8 + k, 0), half(8 + k, 1)) for k in range(64)] == list(
        zip(regs["surrogate_slope"], regs["surrogate_intercept"]))
    readout = D.param_block(None, 8, F.const(0.5), None, 0)
    assert readout[:4] == [0] * 4 and readout[5] == int(F.bits(F.const(0.5))) and readout[8:] == [0] * 64


def test_row_packing_matches_the_engine_layout_helpers():
    layout = pytest.importorskip("trident.rtl.engines.layout")
    rng = np.random.default_rng(0)
    for f in (1, 31, 32, 45, 100):
        s = rng.random((5, f)) < 0.4
        pitch = -(-f // 32)
        w = D.pack_spikes(s, pitch + 1)
        assert w.dtype == np.uint32 and (w[:, pitch:] == 0).all()
        assert [int(x) for x in w[:, :pitch].reshape(-1)] == layout.spike_words(s, 32)
        assert (D.unpack_spikes(w, f) == s).all()
        h = rng.standard_normal((5, f)).astype(np.float16)
        h[0, 0] = np.float16("-0")
        pitch = -(-f // 2)
        w = D.pack_half(h, pitch)
        assert [int(x) for x in w.reshape(-1)] == layout.analog_words(h, 32)
        assert (D.unpack_half(w, f).view(np.uint16) == h.view(np.uint16)).all()


@pytest.mark.parametrize("kind,surrogate,extra", [("lif", "sigmoid", {}), ("klif", "triangle", dict(v_reset=None)),
                                                  ("if", "rectangular", dict(decay_input=False))])
def test_param_block_decodes_into_the_same_units(kind, surrogate, extra):
    cfg = NeuronConfig(kind=kind, tau=3.0, detach_reset=True, surrogate=surrogate, k_init=0.6, **extra)
    p = NeuronParams.from_config(cfg)
    regs = D.decode_param_block(D.param_block(p, 8, F.const(0.25), None, 7))
    assert (regs["inv_T"], regs["lr"], regs["momentum"], regs["shift"]) == (
        int(F.bits(F.const(0.125))), int(F.bits(F.const(0.25))), 0, 7)
    regs.update(kind=kind, surrogate=surrogate, soft_reset=p.soft_reset, decay_input=p.decay_input)
    q = NeuronParams.from_registers(regs)
    assert q.registers() == p.registers()
    x = F.from_bits(torch.arange(0, 1 << 16, 7, dtype=torch.int32))        # every 7th pattern
    assert torch.equal(F.bits(q.surrogate(x)), F.bits(p.surrogate(x)))
    with pytest.raises(ValueError, match="72 words"):
        D.decode_param_block([0] * 8)


def test_slot_rows_and_expected_words():
    assert D.expected_words(fc_fp()) == {"a": 32, "b": 2, "c": 16, "d": 1}
    assert D.slot_rows(fc_fp(), "a") == (32, True) and D.slot_rows(fc_fp(), "c") == (8, False)
    assert D.slot_rows(fc_fp(b_tstride=0), "b") == (8, True)              # one row per sample
    assert D.slot_rows(wg(op=D.Opcode.BP), "a") == (32, True)              # BP reads every output row
    with pytest.raises(ValueError, match="slot 'a'"):
        D.slot_rows(update(), "a")
