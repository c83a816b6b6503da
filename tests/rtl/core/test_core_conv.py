"""The core with convolution (``TridentCore(conv=True)``) on Verilator and Icarus (cocotb)
against the golden device: random conv layers (kernels 1–5, stride 1 and 2, padding,
max pooling 2–3 with ragged edges, T ∈ {1, 2, 4, 8}, input densities 0–100 %, LIF / KLIF /
IF, both resets, every surrogate, spike and analog input, BP and WG apart and fused) as
programs ``FP, BPN, BP, WG (or BPWG), UPDATE``, and a compiled CNN training step.  Every
DRAM word after each program must equal the golden device's (pooled spikes, H, δI, δS,
gradients, updated weights and momentum, logits), and the DRAM words read and written its
traffic model.  ``-m slow``: the cross product of two geometries, T ∈ {1, 4, 8} and input
densities {0, 1, 10, 50, 100 %} (30 programs).
"""

import itertools

import numpy as np
import pytest

import core_cases as K
from trident.rtl.core.core import core_params
from trident.rtl.core.harness import Job, run_cocotb_jobs
from trident.verify.pytest_fixtures import SIMULATOR_PARAMS, require_simulator

CORE = dict(K.SMALL_CORE, conv=True, state_depth=256, max_inputs=512)
PARAMS = core_params(**CORE)

#: (C, Co, conv geometry, T, density, neuron, soft reset, surrogate, analog, momentum, fused)
LAYERS = (
    (2, 4, dict(in_h=8, in_w=8, kernel=3, padding=1, pool=2), 4, 0.1, "lif", False,
     "rectangular", False, False, True),
    (3, 5, dict(in_h=7, in_w=9, kernel=3, stride=2, padding=1), 1, 0.5, "klif", True,
     "triangle", False, True, False),
    (1, 3, dict(in_h=10, in_w=7, kernel=5, padding=2, pool=3), 8, 0.3, "if", False,
     "sigmoid", True, False, False),
    (4, 6, dict(in_h=6, in_w=6, kernel=1, pool=2), 2, 1.0, "lif", True, "triangle", False,
     True, True),
    (2, 4, dict(in_h=9, in_w=9, kernel=3, stride=2), 4, 0.0, "klif", False, "sigmoid", False,
     False, True),
    (4, 2, dict(in_h=5, in_w=11, kernel=2, padding=1, pool=2), 2, 0.01, "lif", False,
     "rectangular", False, True, False),
)


def layer_cases(rng):
    return [K.layer_program(rng, PARAMS, n_in=c_in, n_out=c_out, conv=geometry, steps=steps,
                            batch=2, density=density, kind=kind, soft_reset=soft,
                            surrogate=surrogate, analog=analog, momentum=momentum, fused=fused)
            for (c_in, c_out, geometry, steps, density, kind, soft, surrogate, analog, momentum,
                 fused) in LAYERS]


def check(case, image, result, status):
    gold_image, status = status
    assert result.error == status.error, case.label
    assert np.array_equal(image, gold_image), (f"{case.label}: "
                                               + K.describe_diff(gold_image, image, case.regions))
    assert result.counters["words_written"] == status.words_written, case.label
    assert result.counters["words_read"] == status.words_read, case.label


@pytest.mark.parametrize("simulator", SIMULATOR_PARAMS)
def test_conv_layers(simulator):
    """Conv layer programs with memory latency, jitter and back-pressure."""
    require_simulator(simulator)
    cases = layer_cases(np.random.default_rng(21))
    if simulator == "icarus":       # ~10× slower: two of them
        cases = cases[:2]
    images, results, info = run_cocotb_jobs(
        CORE, simulator, [c.memory for c in cases], [Job(k, c.pcs[0]) for k, c in enumerate(cases)],
        label="conv", latency=3, jitter=3, backpressure=0.15)
    for case, image, res in zip(cases, images, results):
        gold, statuses = case.golden(PARAMS)
        check(case, image, res, (gold, statuses[0]))
    print(f"[trident] {simulator} conv layers: {len(cases)} programs, "
          f"{sum(r.cycles for r in results)} cycles, build {info['build_s']:.1f} s, "
          f"sim {info['sim_s']:.1f} s")


#: (architecture, input maps, spike input): the second's 9×9 maps are tiled two maps at a
#: time, and each tile's row of spikes ends in a ragged line that no pooling window takes,
#: after the tile's last pooled word (a spike word left in the forward pipe once broke the
#: next tile); the third takes 0/1 input as spikes (an event-driven first layer)
CNNS = (("conv4k3p1,maxpool2,conv6k3s2,fc12", (2, 8, 8), False),
        ("conv8k3p1,maxpool2,fc12", (2, 9, 9), False),
        ("conv4k5s2p2,maxpool2,fc12", (2, 14, 14), True))


@pytest.mark.parametrize("arch,inputs,spike_input", CNNS,
                         ids=[a + ("-spike-input" if s else "") for a, _, s in CNNS])
def test_cnn_training_step(arch, inputs, spike_input):
    """A whole training step of a compiled CNN (conv-KLIF-maxpool, …, readout; soft reset,
    triangle surrogate, momentum, T = 3, N = 2) on Verilator: forward program, the host's
    ``G``, backward program."""
    simulator = "verilator"
    require_simulator(simulator)
    case, host, prog, _, _ = K.network(PARAMS, arch=arch, inputs=inputs, classes=4, steps=3,
                                       batch=2, kind="klif", surrogate="triangle",
                                       soft_reset=True, momentum=0.9, spike_input=spike_input)
    assert prog.input.kind == ("spikes" if spike_input else "half")
    gold, statuses = K.golden_with_host(case, host, PARAMS)
    g = prog.grad_logits
    patch = [(a, int(gold[a])) for a in range(g.addr, g.addr + g.size)]
    images, results, info = run_cocotb_jobs(
        CORE, simulator, [case.memory], [Job(0, case.pcs[0]), Job(0, case.pcs[1], patch)],
        label="cnn", latency=2, jitter=2, backpressure=0.1)
    assert [r.error for r in results] == [0, 0]
    assert np.array_equal(images[0], gold), K.describe_diff(gold, images[0], case.regions)
    for r, s in zip(results, statuses):
        assert r.counters["words_written"] == s.words_written
        assert r.counters["words_read"] == s.words_read
    print(f"[trident] {simulator} CNN step: {results[0].cycles} + {results[1].cycles} cycles, "
          f"build {info['build_s']:.1f} s, sim {info['sim_s']:.1f} s")


@pytest.mark.slow
def test_conv_layers_full_matrix():
    """Two conv geometries (3×3 padded with max pool 2; 5×5 stride 2 unpadded) × T ∈ {1, 4, 8}
    × input densities {0, 1, 10, 50, 100 %}, neurons, resets and surrogates rotating; peer
    latency 4 + jitter 4, 30 % back-pressure."""
    require_simulator("verilator")
    rng = np.random.default_rng(23)
    geometries = ((3, 4, dict(in_h=8, in_w=7, kernel=3, padding=1, pool=2)),
                  (2, 5, dict(in_h=11, in_w=9, kernel=5, stride=2)))
    neurons = (("lif", False), ("klif", True), ("if", True), ("klif", False))
    surrogates = ("rectangular", "triangle", "sigmoid")
    cases = []
    for k, ((c_in, c_out, geometry), steps, density) in enumerate(
            itertools.product(geometries, (1, 4, 8), (0.0, 0.01, 0.1, 0.5, 1.0))):
        kind, soft = neurons[k % len(neurons)]
        cases.append(K.layer_program(rng, PARAMS, n_in=c_in, n_out=c_out, conv=geometry,
                                     steps=steps, batch=2, density=density, kind=kind,
                                     soft_reset=soft, surrogate=surrogates[k % 3],
                                     analog=k % 7 == 3, momentum=k % 2 == 1, fused=k % 3 != 2))
    images, results, info = run_cocotb_jobs(
        CORE, "verilator", [c.memory for c in cases], [Job(k, c.pcs[0]) for k, c in enumerate(cases)],
        label="conv-matrix", latency=4, jitter=4, backpressure=0.3)
    for case, image, res in zip(cases, images, results):
        gold, statuses = case.golden(PARAMS)
        check(case, image, res, (gold, statuses[0]))
    print(f"[trident] verilator conv matrix: {len(cases)} programs, "
          f"{sum(r.cycles for r in results)} cycles, sim {info['sim_s']:.1f} s")
