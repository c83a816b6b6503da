"""The core on Icarus and Verilator (cocotb) against the golden device: random FC layers
(sizes, T ∈ {1, 4, 8}, input densities 0–100 %, LIF/KLIF/IF, hard/soft reset, every
surrogate, spike and analog input), a compiled training step of a 64-32-10 MLP (T = 4,
N = 4), and every error code.  Every DRAM word after each program must equal the golden
device's (spikes, H, δI, δS, gradients, updated weights and momentum, logits), and the
DRAM write counter its traffic model.

Default run: a spread of the layer matrix (15 programs), the error codes and the training
step on Verilator; 3 layer programs and 5 error codes on Icarus (it simulates this design
~8× slower); ``-m slow``: the whole matrix (45 programs) and a second network on Verilator.
"""

import itertools
from pathlib import Path

import numpy as np
import pytest

import core_cases as K
from trident.golden.hw import descriptors as D
from trident.rtl.core.core import core_params
from trident.rtl.core.harness import Job, run_cocotb_jobs
from trident.verify.pytest_fixtures import SIMULATOR_PARAMS, require_simulator

CORE = dict(K.SMALL_CORE)
PARAMS = core_params(**CORE)
SIZES = ((37, 13), (64, 8), (20, 33))
STEPS = (1, 4, 8)
DENSITIES = (0.0, 0.01, 0.1, 0.5, 1.0)
NEURONS = (("lif", False), ("klif", True), ("lif", True), ("klif", False), ("if", False))
SURROGATES = ("rectangular", "triangle", "sigmoid")


def layer_matrix(rng, full):
    """The layer cases: the full cross product, or a spread covering every value of each
    axis (sizes × densities with T, neuron, reset and surrogate rotating)."""
    if full:
        combos = itertools.product(SIZES, STEPS, DENSITIES)
    else:
        combos = ((size, STEPS[k % 3], dens)
                  for k, (size, dens) in enumerate(itertools.product(SIZES, DENSITIES)))
    cases = []
    for k, ((n_in, n_out), steps, density) in enumerate(combos):
        kind, soft = NEURONS[k % len(NEURONS)]
        cases.append(K.layer_program(
            rng, PARAMS, n_in=n_in, n_out=n_out, steps=steps, batch=2, density=density,
            kind=kind, soft_reset=soft, surrogate=SURROGATES[k % len(SURROGATES)],
            decay_input=k % 4 != 3, analog=k % 7 == 3, momentum=k % 2 == 1,
            fused=k % 3 != 2))
    return cases


def run_and_check(simulator, cases, label, **peer):
    images, results, info = run_cocotb_jobs(CORE, simulator, [c.memory for c in cases],
                                            [Job(k, c.pcs[0]) for k, c in enumerate(cases)],
                                            label=label, **peer)
    cycles = 0
    for case, image, res in zip(cases, images, results):
        gold, statuses = case.golden(PARAMS)
        assert res.error == statuses[0].error, case.label
        assert res.error_pc == statuses[0].error_pc, case.label
        assert np.array_equal(image, gold), f"{case.label}: " + K.describe_diff(gold, image, case.regions)
        assert res.counters["words_written"] == statuses[0].words_written, case.label
        assert res.counters["words_read"] == statuses[0].words_read, case.label
        assert res.counters["descriptors"] == len(statuses[0].counters), case.label
        cycles += res.cycles
    print(f"[trident] {simulator} {label}: {len(cases)} programs, {cycles} cycles, "
          f"build {info['build_s']:.1f} s, run {info['test_s']:.1f} s, sim {info['sim_s']:.1f} s")
    return results, info


@pytest.mark.parametrize("simulator", SIMULATOR_PARAMS)
def test_layers(simulator):
    """Layer programs (FP, BPN, BP, WG, UPDATE) with memory latency, jitter, back-pressure."""
    require_simulator(simulator)
    rng = np.random.default_rng(11)
    cases = layer_matrix(rng, full=False)
    if simulator == "icarus":
        cases = cases[::7]
    run_and_check(simulator, cases, "layers", latency=3, jitter=3, backpressure=0.15)


@pytest.mark.parametrize("simulator", SIMULATOR_PARAMS)
def test_error_codes(simulator):
    """Every error code (Icarus: every third), each after a good descriptor that must
    complete."""
    require_simulator(simulator)
    cases = list(K.bad_programs(np.random.default_rng(5), PARAMS).values())
    if simulator == "icarus":
        cases = cases[::3]
    results, info = run_and_check(simulator, cases, "errors", latency=2, backpressure=0.1)
    # the simulation says why each program stopped, by the format's name of the code
    log = Path(info["log"]).read_text(errors="replace")
    for res in results:
        name = D.ErrorCode(res.error).name
        assert f"stopped the program: {name} (error {res.error})" in log, name


# Icarus runs this design at ~1 k cycles/s: the whole step is a Verilator test only.
@pytest.mark.parametrize("simulator", ["verilator"])
def test_training_step(simulator):
    """A whole training step of a compiled 64-32-10 MLP (LIF, sigmoid, momentum, T = 4,
    N = 4, direct input): forward program, the host's ``G``, backward program (BPN, WG, BP,
    UPDATE).  The DRAM words read and written equal the traffic model."""
    require_simulator(simulator)
    case, host, prog, _, _ = K.network(PARAMS, arch="fc32", inputs=64, classes=10, steps=4,
                                       batch=4, surrogate="sigmoid", momentum=0.9,
                                       direct_input=True)
    gold, statuses = K.golden_with_host(case, host, PARAMS)
    g = prog.grad_logits
    patch = [(a, int(gold[a])) for a in range(g.addr, g.addr + g.size)]
    images, results, info = run_cocotb_jobs(
        CORE, simulator, [case.memory], [Job(0, case.pcs[0]), Job(0, case.pcs[1], patch)],
        label="step", latency=2, jitter=2, backpressure=0.1)
    assert [r.error for r in results] == [0, 0]
    assert np.array_equal(images[0], gold), K.describe_diff(gold, images[0], case.regions)
    for r, s in zip(results, statuses):
        assert r.counters["words_written"] == s.words_written
        assert r.counters["words_read"] == s.words_read
    print(f"[trident] {simulator} step: {results[0].cycles} + {results[1].cycles} cycles, "
          f"build {info['build_s']:.1f} s, sim {info['sim_s']:.1f} s")


@pytest.mark.parametrize("simulator", ["verilator"])
def test_training_step_with_overflowing_gradients(simulator):
    """The same step with a host ``G`` of ±65504: the gradients overflow, the core raises
    ``overflow`` and its guarded UPDATE leaves the weights and the momentum buffers as they
    were, as the golden device does (the whole DRAM image, gradients included)."""
    require_simulator(simulator)
    case, host, prog, _, _ = K.network(PARAMS, arch="fc32", inputs=64, classes=10, steps=4,
                                       batch=4, surrogate="sigmoid", momentum=0.9,
                                       direct_input=True)
    g = prog.grad_logits
    huge = np.uint32(0xFBFF7BFF)                       # +65504 and −65504

    def overflowing_host(mem):
        host(mem)
        mem[g.addr:g.addr + g.size] = huge

    gold, statuses = K.golden_with_host(case, overflowing_host, PARAMS)
    assert statuses[1].overflow
    for w in prog.weights:
        assert np.array_equal(gold[w.addr:w.addr + w.size], case.memory[w.addr:w.addr + w.size])
    patch = [(a, int(gold[a])) for a in range(g.addr, g.addr + g.size)]
    images, results, _ = run_cocotb_jobs(
        CORE, simulator, [case.memory], [Job(0, case.pcs[0]), Job(0, case.pcs[1], patch)],
        label="step-overflow", latency=2, jitter=2, backpressure=0.1)
    assert [r.error for r in results] == [0, 0]
    assert [bool(r.overflow) for r in results] == [False, True]
    assert np.array_equal(images[0], gold), K.describe_diff(gold, images[0], case.regions)


@pytest.mark.slow
@pytest.mark.parametrize("simulator", SIMULATOR_PARAMS)
def test_layers_full_matrix(simulator):
    """The whole cross product sizes × T × densities (45 layer programs)."""
    require_simulator(simulator)
    if simulator == "icarus":
        pytest.skip("Icarus: the default spread only")
    cases = layer_matrix(np.random.default_rng(13), full=True)
    run_and_check(simulator, cases, "matrix", latency=4, jitter=4, backpressure=0.3)


@pytest.mark.slow
def test_stepwise_input_network():
    """Input stored for every step (``tstride ≠ 0``), KLIF soft reset, triangle."""
    require_simulator("verilator")
    case, host, prog, _, _ = K.network(PARAMS, arch="fc24", inputs=40, classes=6, steps=4,
                                       batch=3, kind="klif", surrogate="triangle",
                                       soft_reset=True)
    gold, _ = K.golden_with_host(case, host, PARAMS)
    g = prog.grad_logits
    patch = [(a, int(gold[a])) for a in range(g.addr, g.addr + g.size)]
    images, results, _ = run_cocotb_jobs(CORE, "verilator", [case.memory],
                                         [Job(0, case.pcs[0]), Job(0, case.pcs[1], patch)],
                                         label="direct")
    assert [r.error for r in results] == [0, 0]
    assert np.array_equal(images[0], gold), K.describe_diff(gold, images[0], case.regions)
