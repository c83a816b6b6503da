"""Conv engine (event-driven scatter of kernel footprints) against the golden kernel.

Every expected current comes from ``trident.golden.hw.forward.conv2d_forward``;
comparisons are on raw binary16 patterns; the counters (events, lane ops, zero inputs)
are checked too.  Default run: spike and MAC layers with strides 1/2/4, padding, kernels
1–5, non-square inputs, special weights, idle inputs and back-pressure in the Amaranth
simulator; a spike suite over sizes × T × densities on Icarus and Verilator.
``-m slow``: larger maps and MAC mode on Verilator.
"""

import itertools
import time

import pytest
import torch

from trident.rtl.engines.harness import (ConvCase, assert_all_exact,
                                         assert_flat_word_counts, conv_case,
                                         conv_cycle_model, random_spikes, random_weights,
                                         run_cocotb_fc, simulate_fc, stimuli)
from trident.verify.pytest_fixtures import SIMULATOR_PARAMS, require_simulator

BASE = {"max_width": 16, "max_height": 16, "max_channels": 4, "max_kernel": 5,
        "max_stride": 4, "acc_depth": 512, "weight_depth": 512}
SPIKE = dict(BASE, lanes=4)
MAC = dict(BASE, lanes=4, lane_unit="fma")


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


def test_amaranth_spike(rng):
    cases = [conv_case(rng, 2, 6, 5, 3, 1, 1, 2, 0.3, kind="specials"),
             conv_case(rng, 2, 7, 4, 3, 2, 1, 2, 0.5),
             conv_case(rng, 1, 8, 6, 5, 2, 2, 1, 1.0, kind="wide"),
             conv_case(rng, 3, 5, 2, 1, 1, 0, 2, 0.0),
             conv_case(rng, 2, 9, 8, 2, 2, 0, 1, 0.4, height=4),
             conv_case(rng, 1, 9, 3, 3, 4, 2, 1, 0.7, kind="subnormal")]
    res = simulate_fc(SPIKE, cases, idle=0.2, backpressure=0.3,
                      seed=int(rng.integers(1 << 30)))
    _report("amaranth conv spike", res)
    assert_all_exact(res)


def test_amaranth_mac(rng):
    cases = [conv_case(rng, 2, 5, 5, 3, 1, 1, 2, 0.5, mac=True, specials=True,
                       kind="specials"),
             conv_case(rng, 1, 7, 2, 4, 2, 3, 1, 1.0, mac=True, kind="wide"),
             conv_case(rng, 2, 4, 3, 3, 1, 0, 1, 0.4, mac=True, kind="subnormal"),
             conv_case(rng, 1, 5, 4, 2, 1, 1, 1, 0.5)]            # spikes on the FMA lanes
    res = simulate_fc(MAC, cases, idle=0.2, backpressure=0.3, seed=int(rng.integers(1 << 30)))
    _report("amaranth conv mac", res)
    assert_all_exact(res)


@pytest.mark.parametrize("params", [dict(BASE, lanes=3, stages=2, word_bits=8, out_depth=4),
                                    dict(BASE, lanes=2, stages=1, word_bits=16)],
                         ids=["L3-P2-B8", "L2-P1-B16"])
def test_amaranth_configs(rng, params):
    cases = [conv_case(rng, 2, 5, 5, 3, 1, 1, 1, 0.5, kind="specials"),
             conv_case(rng, 3, 4, 4, 2, 1, 1, 1, 0.4, kind="subnormal"),
             conv_case(rng, 1, 7, 2, 4, 2, 3, 1, 1.0, kind="wide")]
    res = simulate_fc(params, cases, idle=0.3, backpressure=0.5,
                      seed=int(rng.integers(1 << 30)))
    _report(f"amaranth conv {params}", res)
    assert_all_exact(res)


def test_cycles_and_reuse(rng):
    """Busy cycles ≥ one per accumulator update plus the read-out (equal up to the
    pipeline drain when no output is hit twice within P + 2 cycles); a layer's weights
    stay resident across input sets."""
    w = random_weights(rng, 8, 2 * 9, "normal").reshape(8, 2, 3, 3)
    cases = [ConvCase(f"d{d}", w, random_spikes(rng, 2, 2 * 7 * 7, d).reshape(2, 2, 7, 7),
                      1, 1) for d in (0.0, 0.1, 1.0)]
    assert [bool(s.weights) for s in stimuli(SPIKE, cases)] == [True, False, False]
    res = simulate_fc(SPIKE, cases)
    assert_all_exact(res)
    for c, r in zip(cases, res):
        m = conv_cycle_model(SPIKE, c)
        assert m["updates"] + m["readout"] <= r.cycles <= 1.1 * m["model"], (c.name, r.cycles, m)


def flat_cases(rng, mac, lanes):
    """Layers for the flat read-out: non-square maps, strides 1 and 2, padding, K ∈
    {1, 3, 5}, Co not a multiple of L (a partial last group), T ≥ 2, specials; last, a
    layer of zero inputs whose read-out covers every accumulator word the others used
    (Wo = 16, Co = 2·L): its currents are +0 only if every earlier read-out left +0
    behind."""
    cases = [conv_case(rng, 2, 7, 5, 3, 1, 1, 2, 0.5, height=5, mac=mac, specials=mac,
                       kind="specials"),
             conv_case(rng, 3, 9, 6, 5, 2, 2, 3, 0.6, height=6, mac=mac, kind="wide"),
             conv_case(rng, 1, 8, 3, 1, 2, 0, 2, 0.7, height=11, mac=mac, kind="subnormal"),
             conv_case(rng, 2, 6, 7, 3, 2, 1, 2, 1.0, height=9, mac=mac),
             conv_case(rng, 2, 16, 2 * lanes, 3, 1, 1, 1, 0.0, height=12, mac=mac)]
    assert not cases[-1].golden().view(torch.int16).any()
    return cases


@pytest.mark.parametrize("params", [dict(SPIKE, flat_readout=True),
                                    dict(MAC, flat_readout=True),
                                    dict(BASE, lanes=3, stages=2, out_depth=4,
                                         flat_readout=True)],
                         ids=["spike", "mac", "L3-P2"])
def test_amaranth_flat(rng, params):
    """Flat read-out: every step's maps in (co, y, x) order, L values per word, the last
    word padded with +0, ceil(Co·Ho·Wo / L) words per step, with idle inputs and
    back-pressure; the cases run back to back on one engine (each starts from +0)."""
    mac = params.get("lane_unit") == "fma"
    cases = flat_cases(rng, mac, params["lanes"])
    res = simulate_fc(params, cases, idle=0.2, backpressure=0.4,
                      seed=int(rng.integers(1 << 30)))
    _report(f"amaranth conv flat {params}", res)
    assert_flat_word_counts(params, cases, res)
    assert_all_exact(res)


def test_flat_readout_cycles(rng):
    """The flat read-out reads one output per cycle: on one layer (no back-pressure) it
    takes exactly (Co − groups)·Ho·Wo cycles per step more than the grouped one."""
    flat = dict(SPIKE, flat_readout=True)
    case = conv_case(rng, 2, 8, 6, 3, 1, 1, 4, 0.3, height=6)
    grouped_res, flat_res = simulate_fc(SPIKE, [case]), simulate_fc(flat, [case])
    assert_all_exact(grouped_res + flat_res)
    ho, wo, _ = case.geometry
    g, f = grouped_res[0].cycles, flat_res[0].cycles
    print(f"[trident] {case.name}: grouped {g / case.steps:.1f}, flat {f / case.steps:.1f} "
          f"cycles per step")
    assert f - g == case.steps * (case.out_channels - case.groups(4)) * ho * wo, (g, f)
    m = conv_cycle_model(flat, case)
    assert m["updates"] + m["readout"] <= f <= 1.1 * m["model"], (f, m)


def spike_suite(rng, shapes=((2, 6, 6, 5, 3, 1, 1), (1, 7, 9, 4, 3, 2, 1),
                             (3, 5, 5, 3, 2, 1, 0)),
                steps=(1, 4), densities=(0.0, 0.1, 0.5, 1.0),
                kinds=("specials", "wide", "subnormal")):
    """(C, H, W, Co, K, stride, pad) shapes; one weight tensor per shape, reused."""
    cases, base = [], 0
    for n, (c, h, w_, co, k, s, p) in enumerate(shapes):
        kind = kinds[n % len(kinds)]
        flat = random_weights(rng, co, c * k * k, kind)
        weight = flat.reshape(co, c, k, k)
        for t, d in itertools.product(steps, densities):
            x = random_spikes(rng, t, c * h * w_, d).reshape(t, c, h, w_)
            cases.append(ConvCase(f"conv-{c}x{h}x{w_}-{co}c-k{k}s{s}p{p}-{kind}-T{t}-d{d:g}",
                                  weight, x, s, p, base))
        base += -(-co // 4) * c * k * k
    return cases


@pytest.mark.parametrize("simulator", SIMULATOR_PARAMS)
def test_cocotb_spike(simulator, rng):
    require_simulator(simulator)
    t0 = time.perf_counter()
    cases = spike_suite(rng)
    res, info = run_cocotb_fc(SPIKE, simulator, cases, idle=0.05, backpressure=0.1,
                              label="conv-spike")
    _report(f"{simulator} conv spike", res, info, t0)
    assert_all_exact(res)


@pytest.mark.slow
def test_slow_verilator(rng):
    require_simulator("verilator")
    params = dict(BASE, lanes=4, lane_unit="fma", max_width=32, max_height=32,
                  acc_depth=2048, weight_depth=2048)
    cases = spike_suite(rng, shapes=((2, 16, 16, 8, 3, 1, 1), (4, 12, 12, 6, 5, 2, 2),
                                     (1, 20, 20, 4, 3, 2, 0)), steps=(1, 4, 8),
                        densities=(0.0, 0.01, 0.1, 0.5, 1.0))
    for k in range(6):
        cases.append(conv_case(rng, 2, 10, 5, 3, 1 + (k % 2), 1, 4, 0.3 * (k % 3 + 1),
                               mac=True, specials=bool(k % 2), kind=("specials", "normal")[k % 2]))
    res, info = run_cocotb_fc(params, "verilator", cases[:-6], label="conv-slow")
    res2, _ = run_cocotb_fc(params, "verilator", cases[-6:], label="conv-slow-mac")
    _report("verilator conv slow", res + res2, info)
    assert_all_exact(res + res2)
