"""Register encoding: NeuronParams.registers() / HwExactNetwork.registers() → the bits of
NeuronRegisters, and the sigmoid table contents."""

import pytest
import torch

import neuron_cases as C
from trident.golden.hw import HwExactNetwork
from trident.golden.hw import neuron as hw_neuron
from trident.golden.neurons import NeuronConfig
from trident.rtl.neuron import (SIGMOID_SEGMENTS, NeuronKind, NeuronRegisters, SurrogateKind,
                                decode_registers, encode_registers, sigmoid_table_words)


@pytest.mark.parametrize("kind,soft,decay,surrogate", C.configurations())
def test_encode_roundtrip(kind, soft, decay, surrogate, rng):
    regs = C.realistic_registers(rng, kind, soft, decay, surrogate)
    word = encode_registers(regs)
    assert word < (1 << NeuronRegisters.as_shape().size)
    f = decode_registers(word)
    assert f["kind"] == {"if": NeuronKind.IF, "lif": NeuronKind.LIF,
                         "klif": NeuronKind.KLIF}[kind].value
    assert f["surrogate"] == {"rectangular": SurrogateKind.RECTANGULAR,
                              "triangle": SurrogateKind.TRIANGLE,
                              "sigmoid": SurrogateKind.SIGMOID}[surrogate].value
    assert (f["soft_reset"], f["decay_input"]) == (int(soft), int(decay))
    for name in ("v_th", "v_reset", "v_rest", "inv_tau", "leak", "k"):
        assert f[name] == regs[name]
    assert f["alpha"] == regs["surrogate_alpha"]
    assert f["half_width"] == regs.get("surrogate_half_width", 0)
    assert f["neg_alpha_sq"] == regs.get("surrogate_neg_alpha_sq", 0)
    table = sigmoid_table_words(regs)
    assert len(table) == SIGMOID_SEGMENTS
    if surrogate == "sigmoid":
        assert [a for a, _ in table] == regs["surrogate_slope"]
        assert [b for _, b in table] == regs["surrogate_intercept"]


def test_golden_params_from_registers_equal_from_config(rng):
    """The tests' reconstruction of NeuronParams from register bits is the golden's own."""
    for kind, soft, decay, surrogate in C.configurations():
        cfg = NeuronConfig(kind=kind, tau=3.0, decay_input=decay, v_threshold=0.75,
                           v_reset=None if soft else -0.25, surrogate=surrogate)
        p = hw_neuron.NeuronParams.from_config(cfg, k=1.5)
        q = C.golden_params(p.registers())
        x = C.h(C.surrogate_inputs(rng, p.registers(), 500))
        assert (C.b(p.surrogate(x)) == C.b(q.surrogate(x))).all()
        for name in ("v_th", "v_reset", "v_rest", "inv_tau", "neg_inv_tau", "leak", "k"):
            assert int(C.b(getattr(p, name))) == int(C.b(getattr(q, name)))


def test_network_registers_encode():
    from trident.golden.network import SpikingNetwork
    torch.manual_seed(0)
    model = SpikingNetwork("fc16", (8,), 3, NeuronConfig(kind="klif", detach_reset=True,
                                                         surrogate="triangle", tau=4.0))
    regs = HwExactNetwork.from_float(model, lr=0.1).registers()["neuron"]
    f = decode_registers(encode_registers(regs))
    assert f["kind"] == NeuronKind.KLIF.value
    assert f["surrogate"] == SurrogateKind.TRIANGLE.value
    assert (f["v_th"], f["inv_tau"], f["leak"]) == (0x3C00, 0x3400, 0x3A00)
    assert f["neg_alpha_sq"] == regs["surrogate_neg_alpha_sq"]


def test_encode_rejects_bad_values():
    regs = C.realistic_registers(__import__("numpy").random.default_rng(0), "lif", False, True,
                                 "sigmoid")
    with pytest.raises(ValueError):
        encode_registers({**regs, "v_th": 1 << 16})
    with pytest.raises(KeyError):
        encode_registers({**regs, "kind": "alif"})
