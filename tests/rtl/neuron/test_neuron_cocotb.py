"""Neuron units on Icarus and Verilator (cocotb 2), bit for bit against the golden kernels.

Default run, per simulator:

* NeuronUnit: every kind × reset × decay_input, register sets both realistic (from a float
  configuration, as the host rounds them) and arbitrary patterns (NaN, ±inf, subnormal,
  negative constants), T ∈ {1, 4, 8}, currents around the threshold, exactly at it,
  specials and uniform patterns; plus single steps from arbitrary states V (specials
  included), checked against the golden ``charge``/``scale``.
* SurrogateUnit: rectangular/triangle/sigmoid × both register kinds (random sigmoid tables
  too), plus a sigmoid sample over uniform patterns.
* NeuronBackwardUnit: every kind × reset × decay_input × surrogate × both register kinds ×
  T ∈ {1, 4, 8}; H and S from a golden forward pass (with crafted potentials mixed in) or
  random; δS a third ±0 (skips), spread exponents, specials.
* back-pressure + idle cycles + tags on the BP unit (which contains the surrogate unit),
  on Icarus (Verilator: ``-m slow``).

``-m slow``: the sigmoid over all 65,536 inputs for five α and a random table (both
simulators), a ~10× larger random regression of both neuron units on Verilator, and the
back-pressure variant on Verilator.
The register set and the sigmoid table change between segments (run-time configuration).
"""

import numpy as np
import pytest

import neuron_cases as C
from trident.rtl.neuron import NeuronBackwardUnit, NeuronUnit, SurrogateUnit
from trident.verify.pytest_fixtures import SIMULATOR_PARAMS, require_simulator
from trident.verify.runner import selected_simulators

STEPS = (1, 4, 8)
MODES = ("realistic", "random")


def _run(cls, params, simulator, segments, label, **kw):
    dut = cls(**params)
    dut._MustUse__silence = True            # only its latency and layouts are used here
    res = C.run_cocotb_segments(cls, params, simulator, segments, label=label,
                                latency=None if kw.get("backpressure") else dut.latency, **kw)
    print(f"[trident] {label} on {simulator}: {res.vectors} vectors in {len(segments)} "
          f"segments, build {res.build_s:.1f} s, run {res.test_s:.1f} s "
          f"({res.summary.get('vectors_per_s') or 0:.0f} vectors/s), "
          f"{res.summary.get('errors')} mismatches")
    assert res.passed, C.failure_text(dut, segments, res)
    assert res.summary["checked"] == res.vectors
    return res


def forward_segments(dut, rng, neurons, steps=STEPS, single=64):
    """Sequences of T steps from V_rest, and ``single`` steps from arbitrary states V."""
    out = []
    for kind, soft, decay, _ in C.configurations(surrogates=("sigmoid",)):
        name = f"{kind}-soft{int(soft)}-decay{int(decay)}"
        for mode in MODES:
            regs = C.make_registers(rng, mode, kind, soft, decay, "sigmoid")
            out += [C.forward_segment(dut, rng, regs, t, neurons, label=f"{name}-{mode}-T{t}")
                    for t in steps]
            out.append(C.forward_step_segment(dut, rng, regs, single, label=f"{name}-{mode}-V"))
    return out


def backward_segments(dut, rng, neurons, steps=STEPS):
    return [C.backward_segment(dut, rng, C.make_registers(rng, mode, kind, soft, decay, sg), t,
                               neurons, from_forward=(mode == "realistic"),
                               label=f"{kind}-soft{int(soft)}-decay{int(decay)}-{sg}-{mode}-T{t}")
            for kind, soft, decay, sg in C.configurations() for mode in MODES for t in steps]


@pytest.mark.parametrize("simulator", SIMULATOR_PARAMS)
def test_forward(simulator, rng):
    require_simulator(simulator)
    params = {"tag_width": 8}
    segments = forward_segments(NeuronUnit(**params), rng, neurons=16)
    assert len(segments) == 3 * 2 * 2 * 2 * 4
    _run(NeuronUnit, params, simulator, segments, "neuron-forward")


@pytest.mark.parametrize("simulator", SIMULATOR_PARAMS)
def test_surrogate(simulator, rng):
    require_simulator(simulator)
    params = {"tag_width": 4}
    dut = SurrogateUnit(**params)
    segments = [C.surrogate_segment(dut, rng, C.make_registers(rng, mode, "lif", False, True, sg),
                                    600, label=f"{sg}-{mode}")
                for sg in C.SURROGATES for mode in MODES]
    regs = C.realistic_registers(rng, "lif", False, True, "sigmoid")
    segments.append(C.surrogate_segment(dut, rng, regs, 0, x=rng.integers(0, 1 << 16, 2048),
                                        label="sigmoid-uniform"))
    _run(SurrogateUnit, params, simulator, segments, "neuron-surrogate")


@pytest.mark.parametrize("simulator", SIMULATOR_PARAMS)
def test_backward(simulator, rng):
    require_simulator(simulator)
    params = {"tag_width": 8}
    segments = backward_segments(NeuronBackwardUnit(**params), rng, neurons=6)
    assert len(segments) == 3 * 2 * 2 * 3 * 2 * 3
    _run(NeuronBackwardUnit, params, simulator, segments, "neuron-backward")


@pytest.mark.parametrize("simulator", [
    pytest.param(s, id=s, marks=[pytest.mark.slow] if s == "verilator" else [])
    for s in selected_simulators()])
def test_backward_backpressure(simulator, rng):
    """Idle input cycles, random ``o.ready``, tags; the BP unit contains the surrogate unit.
    (Verilator under ``-m slow``: its build of this variant alone takes ~30 s.)"""
    require_simulator(simulator)
    params = {"tag_width": 5, "backpressure": True}
    dut = NeuronBackwardUnit(**params)
    picks = [("klif", False, True, "sigmoid"), ("lif", True, False, "triangle"),
             ("if", False, False, "rectangular"), ("klif", True, False, "triangle")]
    segments = [C.backward_segment(dut, rng, C.make_registers(rng, mode, kind, soft, decay, sg), 8,
                                   24, from_forward=(mode == "realistic"),
                                   label=f"{kind}-{sg}-{mode}")
                for kind, soft, decay, sg in picks for mode in MODES]
    _run(NeuronBackwardUnit, params, simulator, segments, "neuron-backward-bp", idle=0.2,
         backpressure=0.3)


# ---- slow ----------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("simulator", SIMULATOR_PARAMS)
def test_sigmoid_exhaustive(simulator, rng):
    """Every binary16 input through the sigmoid table, for α = 1, 2, 4, 5.3 and 0.37 (host
    tables) and for a table of arbitrary patterns."""
    require_simulator(simulator)
    dut = SurrogateUnit()
    every = np.arange(1 << 16)
    segments = []
    for alpha in (1.0, 2.0, 4.0, 5.3, 0.37):
        from trident.golden.hw import neuron as hw_neuron
        from trident.golden.neurons import NeuronConfig
        regs = hw_neuron.NeuronParams.from_config(
            NeuronConfig(surrogate="sigmoid", surrogate_alpha=alpha)).registers()
        segments.append(C.surrogate_segment(dut, rng, regs, 0, x=every, label=f"alpha{alpha}"))
    regs = C.random_registers(rng, "lif", False, True, "sigmoid")
    segments.append(C.surrogate_segment(dut, rng, regs, 0, x=every, label="random-table"))
    _run(SurrogateUnit, {}, simulator, segments, "neuron-sigmoid-all")


@pytest.mark.slow
def test_forward_large_verilator(rng):
    require_simulator("verilator")
    params = {"tag_width": 8}
    segments = []
    for _ in range(10):
        segments += forward_segments(NeuronUnit(**params), rng, neurons=40)
    _run(NeuronUnit, params, "verilator", segments, "neuron-forward-large")


@pytest.mark.slow
def test_backward_large_verilator(rng):
    require_simulator("verilator")
    params = {"tag_width": 8}
    segments = []
    for _ in range(10):
        segments += backward_segments(NeuronBackwardUnit(**params), rng, neurons=16)
    _run(NeuronBackwardUnit, params, "verilator", segments, "neuron-backward-large")
