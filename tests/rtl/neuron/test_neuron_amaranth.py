"""Neuron units in the Amaranth simulator: closed loops (the unit's own V / δU fed back, as
an engine does), run-time reconfiguration between segments, back-pressure with idle cycles,
fixed latency.  Expected values: trident.golden.hw.neuron / .surrogate (see neuron_cases).
The bulk of the vectors runs on Icarus and Verilator (test_neuron_cocotb.py)."""

import pytest

import neuron_cases as C
from trident.rtl.neuron import (DEFAULT_STAGES, NeuronBackwardUnit, NeuronUnit,
                                SurrogateUnit)


def _check(dut, segments, results):
    checked, bad = C.check_results(dut, segments, results)
    assert not bad, f"{len(bad)} mismatches of {checked}:\n" + "\n".join(bad[:15])
    return checked


def test_forward_closed_loop_every_configuration(rng):
    """IF/LIF/KLIF × hard/soft × decay_input, T = 4, V fed back from ``o.v``; the layer
    has latency + 2 neurons, so the loop runs without bubbles."""
    dut = NeuronUnit(tag_width=4)
    n = dut.latency + 2
    segments = [C.forward_segment(dut, rng, C.make_registers(rng, mode, kind, soft, decay,
                                                             "sigmoid"),
                                  4, n, label=f"{kind}-soft{soft}-decay{decay}-{mode}")
                for kind, soft, decay, _ in C.configurations(surrogates=("sigmoid",))
                for mode in (("realistic", "random") if kind == "klif" else ("realistic",))]
    C.scramble_state_inputs(dut, segments, "v", rng)
    results, latencies = C.simulate_segments(dut, segments, feedback=C.forward_feedback(dut))
    assert _check(dut, segments, results) == sum(len(s.inputs) for s in segments)
    assert set(latencies) == {dut.latency}


def test_forward_backpressure_and_idle(rng):
    dut = NeuronUnit(tag_width=3, backpressure=True, add_stages=2, mul_stages=2, fma_stages=3,
                     cmp_stages=0)
    segments = [C.forward_segment(dut, rng, C.make_registers(rng, "random", kind, soft, decay,
                                                             "triangle"),
                                  8, 12, label=f"{kind}-{soft}-{decay}")
                for kind, soft, decay in (("lif", False, True), ("klif", True, False),
                                          ("if", True, False))]
    results, latencies = C.simulate_segments(dut, segments, idle=0.3, backpressure=0.4, seed=3)
    _check(dut, segments, results)
    assert min(latencies) == dut.latency == 4 * 2 + 3 + 2 + 0 + 1


def test_surrogate_switching_and_table_reload(rng):
    """rectangular → sigmoid (table A) → triangle → sigmoid (table B): the table is
    rewritten between layers and the function follows ``regs.surrogate``."""
    dut = SurrogateUnit(tag_width=2)
    seq = [("rectangular", "realistic"), ("sigmoid", "realistic"), ("triangle", "random"),
           ("sigmoid", "random"), ("rectangular", "random"), ("triangle", "realistic")]
    segments = [C.surrogate_segment(dut, rng, C.make_registers(rng, mode, "lif", False, True,
                                                               name), 150, label=name)
                for name, mode in seq]
    results, latencies = C.simulate_segments(dut, segments)
    _check(dut, segments, results)
    assert set(latencies) == {dut.latency}
    assert dut.latency == DEFAULT_STAGES["mul"] + DEFAULT_STAGES["fma"] + 3


def test_surrogate_backpressure(rng):
    dut = SurrogateUnit(backpressure=True, mul_stages=1, fma_stages=2)
    segments = [C.surrogate_segment(dut, rng, C.make_registers(rng, "random", "lif", False,
                                                               True, name), 120, label=name)
                for name in C.SURROGATES]
    results, _ = C.simulate_segments(dut, segments, idle=0.25, backpressure=0.4, seed=5)
    _check(dut, segments, results)


def test_backward_closed_loop(rng):
    """δU[t+1] fed back from ``o.du``; a spread of configurations (the full cross product
    runs on the HDL simulators)."""
    dut = NeuronBackwardUnit(tag_width=4)
    n = dut.latency + 1
    picks = [("if", False, False, "rectangular", "realistic"),
             ("lif", False, True, "sigmoid", "realistic"),
             ("klif", True, True, "triangle", "realistic"),
             ("klif", False, False, "sigmoid", "random")]
    segments = [C.backward_segment(dut, rng, C.make_registers(rng, mode, kind, soft, decay, sg),
                                   3, n, from_forward=(mode == "realistic"),
                                   label=f"{kind}-{soft}-{decay}-{sg}-{mode}")
                for kind, soft, decay, sg, mode in picks]
    C.scramble_state_inputs(dut, segments, "du_next", rng)
    results, latencies = C.simulate_segments(dut, segments, feedback=C.backward_feedback(dut))
    _check(dut, segments, results)
    assert set(latencies) == {dut.latency}


def test_backward_backpressure_and_idle(rng):
    dut = NeuronBackwardUnit(tag_width=2, backpressure=True, add_stages=1, mul_stages=1,
                             fma_stages=2)
    segments = [C.backward_segment(dut, rng, C.make_registers(rng, "random", kind, soft, decay,
                                                              sg), 4, 10, from_forward=False,
                                   label=f"{kind}-{sg}")
                for kind, soft, decay, sg in (("klif", False, True, "sigmoid"),
                                              ("if", True, False, "rectangular"))]
    results, latencies = C.simulate_segments(dut, segments, idle=0.3, backpressure=0.4, seed=7)
    _check(dut, segments, results)
    assert min(latencies) == dut.latency == 1 + 5 + 4 + 5


def _unit(cls, **params):
    """An instance only looked at (not elaborated): no UnusedElaboratable warning."""
    unit = cls(**params)
    unit._MustUse__silence = True
    return unit


@pytest.mark.parametrize("cls", [NeuronUnit, SurrogateUnit, NeuronBackwardUnit])
def test_bad_parameters(cls):
    with pytest.raises(ValueError):
        cls(tag_width=-1)
    for bad in (99, -1, 1.5, True):
        with pytest.raises(ValueError):
            cls(fma_stages=bad)
    with pytest.raises(ValueError):
        cls(mul_stages=6)


def test_latency_formulas():
    s = DEFAULT_STAGES
    assert _unit(NeuronUnit).latency == 4 * s["add"] + s["fma"] + s["mul"] + s["cmp"] + 1
    assert _unit(NeuronBackwardUnit, add_stages=4, mul_stages=4, fma_stages=6).latency == \
        4 + 5 * 4 + 2 * 6 + 5
    assert _unit(SurrogateUnit, mul_stages=4, fma_stages=6).latency == 13
    assert _unit(NeuronUnit, tag_width=7).in_layout.size == 16 + 16 + 1 + 7
    assert _unit(NeuronBackwardUnit, tag_width=3).out_layout.size == 3 * 16 + 3
