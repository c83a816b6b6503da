"""FP engine (event-driven FC currents) against the golden kernel, bit for bit.

Every expected current comes from ``trident.golden.hw.forward.fc_forward``; the
comparison is on raw binary16 patterns (NaN results must be the canonical 0x7E00).
The counters are checked too (events, ops executed, ops skipped).

Default run: a few quick cases in the Amaranth simulator (including unusual
configurations), then on Icarus and Verilator the full cross product of layer sizes
(not multiples of L included) × T ∈ {1, 4, 8} × input densities {0, 1, 10, 50, 100 %}
in spike mode, and MAC mode with analog inputs, weights with special values, random idle
input cycles and back-pressure on the output.  ``-m slow``: larger layers, L = 8, more
seeds, on Verilator.
"""

import itertools
import time

import pytest
import torch

from trident.rtl.engines.harness import (FCCase, assert_all_exact, cycle_model, fc_case,
                                         random_analog, random_spikes, random_weights,
                                         run_cocotb_fc, simulate_fc, stimuli)
from trident.verify.pytest_fixtures import SIMULATOR_PARAMS, require_simulator

SPIKE = {"lanes": 4}                              # the default configuration
MAC = {"lanes": 4, "lane_unit": "fma"}
DENSITIES = (0.0, 0.01, 0.1, 0.5, 1.0)
STEPS = (1, 4, 8)


def _report(label, results, info=None, t0=None):
    words = sum(r.checked for r in results)
    cycles = sum(r.cycles for r in results)
    bad = sum(not r.exact for r in results)
    extra = ""
    if info:
        extra = f", build {info['build_s']:.1f} s, run {info['test_s']:.1f} s"
    if t0 is not None:
        extra += f", total {time.perf_counter() - t0:.1f} s"
    print(f"[trident] {label}: {len(results)} cases, {words} current words, "
          f"{cycles} busy cycles, {bad} cases with mismatches{extra}")


def _classes(cases):
    """How many golden currents are NaN / ±inf / subnormal / −0 (the suite must hit them)."""
    out = {"nan": 0, "inf": 0, "subnormal": 0, "neg_zero": 0, "total": 0}
    for c in cases:
        b = c.golden().view(torch.int16).int() & 0xFFFF
        mag = b & 0x7FFF
        out["nan"] += int((mag > 0x7C00).sum())
        out["inf"] += int((mag == 0x7C00).sum())
        out["subnormal"] += int(((mag > 0) & (mag < 0x400)).sum())
        out["neg_zero"] += int((b == 0x8000).sum())
        out["total"] += b.numel()
    return out


def spike_suite(rng, sizes=((37, 13), (64, 8), (130, 5)), steps=STEPS, densities=DENSITIES,
                kinds=("specials", "wide", "subnormal", "normal"), lanes=4):
    """Per layer size one weight matrix (``kinds`` in turn), loaded once at its own base
    address and reused for every (T, density): the cross product of the task."""
    cases, base = [], 0
    for k, (n_in, n_out) in enumerate(sizes):
        kind = kinds[k % len(kinds)]
        w = random_weights(rng, n_out, n_in, kind)
        for t, d in itertools.product(steps, densities):
            cases.append(FCCase(f"spk-{n_in}x{n_out}-{kind}-T{t}-d{d:g}", w,
                                random_spikes(rng, t, n_in, d), base))
        base += -(-n_out // lanes) * n_in
    return cases


def mac_suite(rng, sizes=((37, 13), (50, 6)), steps=STEPS, densities=(0.0, 0.1, 0.5, 1.0),
              kinds=("specials", "subnormal", "wide", "normal"), lanes=4):
    """MAC mode: analog inputs with ±0 skipped (T = 4: inputs with ±inf and NaN; T = 8:
    the same input every step, as under direct encoding)."""
    cases, base = [], 0
    for k, (n_in, n_out) in enumerate(sizes):
        kind = kinds[k % len(kinds)]
        w = random_weights(rng, n_out, n_in, kind)
        for t, d in itertools.product(steps, densities):
            x = random_analog(rng, t, n_in, d, specials=(t == 4), repeat=(t == 8))
            cases.append(FCCase(f"mac-{n_in}x{n_out}-{kind}-T{t}-d{d:g}", w, x, base))
        base += -(-n_out // lanes) * n_in
    # spike inputs on the MAC configuration: fma(W, 1, acc) must equal add(acc, W)
    w = random_weights(rng, 11, 45, "specials")
    cases.append(FCCase("mac-unit-spikes", w, random_spikes(rng, 4, 45, 0.5), 0))
    return cases


# ---- Amaranth simulator: quick unit tests --------------------------------------------

def test_amaranth_spike(rng):
    cases = [fc_case(rng, 20, 6, 2, 0.5, kind="specials"),
             fc_case(rng, 9, 13, 1, 1.0, kind="wide"),
             fc_case(rng, 33, 3, 2, 0.0),
             fc_case(rng, 40, 9, 3, 0.1, kind="subnormal", w_base=100)]
    res = simulate_fc(SPIKE, cases, idle=0.2, backpressure=0.3, seed=int(rng.integers(1 << 30)))
    _report("amaranth spike", res)
    assert_all_exact(res)


def test_amaranth_mac(rng):
    cases = [fc_case(rng, 15, 7, 2, 0.6, mac=True, specials=True, kind="specials"),
             fc_case(rng, 8, 5, 1, 1.0, mac=True, kind="wide"),
             fc_case(rng, 12, 9, 2, 0.4)]                       # spikes through the FMAs
    res = simulate_fc(MAC, cases, idle=0.2, backpressure=0.3, seed=int(rng.integers(1 << 30)))
    _report("amaranth mac", res)
    assert_all_exact(res)


@pytest.mark.parametrize("params", [
    {"lanes": 3, "stages": 2, "word_bits": 8, "out_depth": 2, "max_inputs": 64,
     "weight_depth": 512, "max_steps": 8},
    {"lanes": 1, "stages": 1, "word_bits": 16, "max_inputs": 32, "weight_depth": 512},
    {"lanes": 2, "lane_unit": "fma", "stages": 3, "word_bits": 16, "max_inputs": 32,
     "weight_depth": 256},
], ids=["L3-P2-B8", "L1-P1-B16", "L2-fma-P3"])
def test_amaranth_configs(rng, params):
    """Other lane counts, pipeline depths, word widths and a minimal output FIFO, with
    heavy back-pressure."""
    mac = params.get("lane_unit") == "fma"
    cases = [fc_case(rng, 21, 7, 3, 0.5, kind="specials", mac=mac, specials=mac),
             fc_case(rng, 32, 5, 2, 1.0, kind="wide")]
    res = simulate_fc(params, cases, idle=0.3, backpressure=0.6, seed=int(rng.integers(1 << 30)))
    _report(f"amaranth {params}", res)
    assert_all_exact(res)


def test_amaranth_weight_reuse(rng):
    """Two layers resident at different base addresses, run alternately without reloading:
    weights are stationary across input sets (and across the T steps inside each)."""
    w1 = random_weights(rng, 6, 19, "normal")
    w2 = random_weights(rng, 9, 11, "specials")
    base2 = 2 * 19
    cases = [FCCase("a", w1, random_spikes(rng, 2, 19, 0.5), 0),
             FCCase("b", w2, random_spikes(rng, 2, 11, 0.5), base2),
             FCCase("a-again", w1, random_spikes(rng, 3, 19, 0.3), 0),
             FCCase("b-again", w2, random_spikes(rng, 1, 11, 1.0), base2)]
    assert [bool(s.weights) for s in stimuli(SPIKE, cases)] == [True, True, False, False]
    res = simulate_fc(SPIKE, cases)
    assert_all_exact(res)


def test_cycles_follow_the_model(rng):
    """Busy cycles follow the documented model (P·max(1, events) per block and step,
    compressor one step ahead, prologue and epilogue) within a few cycles."""
    cases = [fc_case(rng, 50, 20, 3, d) for d in (0.0, 0.1, 1.0)]
    res = simulate_fc(SPIKE, cases)
    assert_all_exact(res)
    for c, r in zip(cases, res):
        m = cycle_model(SPIKE, c)
        assert m["issue"] <= r.cycles, (c.name, r.cycles, m)
        assert abs(r.cycles - m["model"]) <= 8 + 0.02 * m["model"], (c.name, r.cycles, m)


# ---- cocotb on Icarus and Verilator -------------------------------------------------

@pytest.mark.parametrize("simulator", SIMULATOR_PARAMS)
def test_cocotb_spike(simulator, rng):
    require_simulator(simulator)
    t0 = time.perf_counter()
    cases = spike_suite(rng)
    classes = _classes(cases)
    assert classes["nan"] and classes["inf"] and classes["subnormal"], classes
    res, info = run_cocotb_fc(SPIKE, simulator, cases, idle=0.05, backpressure=0.1,
                              label="fp-spike")
    _report(f"{simulator} spike {classes}", res, info, t0)
    assert_all_exact(res)


@pytest.mark.parametrize("simulator", SIMULATOR_PARAMS)
def test_cocotb_mac(simulator, rng):
    require_simulator(simulator)
    t0 = time.perf_counter()
    cases = mac_suite(rng)
    classes = _classes(cases)
    assert classes["nan"] and classes["inf"] and classes["subnormal"], classes
    res, info = run_cocotb_fc(MAC, simulator, cases, idle=0.05, backpressure=0.1,
                              label="fp-mac")
    _report(f"{simulator} mac {classes}", res, info, t0)
    assert_all_exact(res)


# ---- slow regressions ---------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("params", [{"lanes": 4, "weight_depth": 8192},
                                    {"lanes": 8, "max_inputs": 512, "weight_depth": 4096},
                                    {"lanes": 8, "lane_unit": "fma", "max_inputs": 512,
                                     "weight_depth": 4096}],
                         ids=["L4", "L8", "L8-fma"])
def test_slow_large_layers(params, rng):
    require_simulator("verilator")
    mac = params.get("lane_unit") == "fma"
    lanes = params["lanes"]
    for seed_round in range(3):
        cases = spike_suite(rng, sizes=((257, 33), (100, 61), (512, 7)), lanes=lanes)
        res, info = run_cocotb_fc(params, "verilator", cases, idle=0.02, backpressure=0.05,
                                  label="fp-slow")
        _report(f"verilator slow {params}", res, info)
        assert_all_exact(res)
        if mac:
            cases = mac_suite(rng, sizes=((200, 30), (77, 17)), lanes=lanes)
            res, info = run_cocotb_fc(params, "verilator", cases, label="fp-slow-mac")
            _report(f"verilator slow mac {params}", res, info)
            assert_all_exact(res)
