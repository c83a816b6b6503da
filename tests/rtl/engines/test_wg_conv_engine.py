"""Conv WG engine (exact fixed-point weight gradient of a conv tile) against the golden.

Every expected gradient comes from ``trident.golden.hw.gradient.conv2d_weight_grad`` (the
exact accumulator, rounded once); comparisons are on raw binary16 patterns, every lane of
every word (lanes past the tile's channels must read ``+0``); the counters (active inputs,
lane terms, footprint positions without a live group) are checked on every tile.  The δ
maps go in flat, two binary16 per word, the unused half of a row's last word holding a
NaN the engine must ignore.
Default run: Amaranth (multi-group tiles of 1–9 channels on 4 lanes, shapes, strides 1/2,
padding 0–2, K 1–5, special δ values, analog inputs, idle inputs, back-pressure, another
build; the cycle model) and a suite on Icarus and Verilator; ``-m slow``: larger maps on
Verilator.
"""

import itertools
import time

import pytest
import torch

from trident.rtl.engines.harness import assert_all_exact
from trident.rtl.engines.wg_conv_harness import (conv_wg_case, conv_wg_cycle_model,
                                                 run_cocotb_conv_wg, simulate_conv_wg)
from trident.verify.pytest_fixtures import SIMULATOR_PARAMS, require_simulator

PARAMS = {"lanes": 4, "max_width": 16, "max_height": 16, "max_channels": 4, "max_kernel": 5,
          "max_stride": 2, "max_groups": 4, "acc_depth": 256, "delta_depth": 512,
          "max_rows": 256}


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """The golden kernels run on a shared machine: one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

def _report(label, results, info=None, t0=None):
    words = sum(r.checked for r in results)
    cycles = sum(r.cycles for r in results)
    bad = sum(not r.exact for r in results)
    extra = f", build {info['build_s']:.1f} s, run {info['test_s']:.1f} s" if info else ""
    if t0 is not None:
        extra += f", total {time.perf_counter() - t0:.1f} s"
    print(f"[trident] {label}: {len(results)} tiles, {words} gradient words, "
          f"{cycles} busy cycles, {bad} tiles with mismatches{extra}")


def _assert_specials_reached(cases):
    """The golden gradients include NaN, ±inf, subnormals and zeros."""
    bits = torch.cat([c.golden().reshape(-1) for c in cases]).view(torch.int16).int() & 0xFFFF
    assert (bits == 0x7E00).any() and ((bits & 0x7FFF) == 0x7C00).any()
    assert (((bits & 0x7C00) == 0) & ((bits & 0x3FF) != 0)).any() and (bits == 0).any()


def _with_subnormal_gradient(make, tries=20):
    """A random tile whose gradients include a subnormal: sums of subnormal deltas leave the
    subnormal range for about one draw in forty, so draw again (bounded)."""
    for _ in range(tries):
        case = make()
        bits = case.golden().reshape(-1).view(torch.int16).int() & 0xFFFF
        if (((bits & 0x7C00) == 0) & ((bits & 0x3FF) != 0)).any():
            return case
    raise AssertionError(f"no subnormal gradient in {tries} draws")


def test_amaranth_spike(rng):
    """Tiles of 1–9 output channels on 4 lanes (1–3 groups, partial last groups), odd and
    even δ values per row, special δ values, idle inputs and back-pressure."""
    cases = [conv_wg_case(rng, 4, 2, 6, 3, 3, 1, 1, 0.5, row_density=1.0),
             conv_wg_case(rng, 8, 3, (7, 5), 9, 2, 2, 0, 0.3, kind="specials"),
             conv_wg_case(rng, 2, 1, 8, 2, 5, 2, 2, 1.0, kind="wide"),
             _with_subnormal_gradient(lambda: conv_wg_case(rng, 4, 2, 5, 5, 1, 1, 0, 0.6,
                                                           kind="subnormal", row_density=0.7)),
             conv_wg_case(rng, 4, 4, 4, 4, 4, 1, 2, 0.4, kind="specials"),
             conv_wg_case(rng, 3, 2, 6, 1, 3, 2, 1, 0.0),
             conv_wg_case(rng, 8, 2, 5, 9, 3, 1, 1, 0.5, kind="specials", row_density=0.8),
             conv_wg_case(rng, 4, 1, 4, 6, 2, 1, 0, 0.5, kind="specials", row_density=1.0,
                          dead_group=0.6)]
    res = simulate_conv_wg(PARAMS, cases, idle=0.2, backpressure=0.3,
                           seed=int(rng.integers(1 << 30)))
    _report("amaranth conv wg", res)
    assert_all_exact(res)
    _assert_specials_reached(cases)
    # the odd rows' last word carries a NaN in its unused half
    assert any(c.deltas[0].numel() % 2 for c in cases)


def test_amaranth_groups(rng):
    """n_out = 9, 3, 5, 1 on L = 4 (one to three groups, the last one partial; the lanes
    past n_out hold an earlier tile's δ values and must add nothing): spike and analog
    inputs, rows whose δ values are all ±0 beside live ones, groups dead at some positions
    and live at others, idle δ and input words, back-pressure; then 1×1 and 3×1 output
    maps, where consecutive δ values update the same bitmap word (60 % of the values ±0,
    so that a group's bit often rests on one lane)."""
    params = dict(PARAMS, mac_support=True)
    cases = []
    for n, co in enumerate((9, 3, 5, 1)):
        cases.append(conv_wg_case(rng, 4, 2, (5, 6), co, 3, 1 + n % 2, 1, 0.4,
                                  row_density=0.6, kind=("normal", "specials")[n % 2]))
        cases.append(conv_wg_case(rng, 3, 2, 5, co, 2, 1, 0, 0.5, row_density=0.7,
                                  mac=True, specials=bool(n % 2), kind="specials",
                                  dead_group=0.5))
    cases += [conv_wg_case(rng, rows, 2, size, 10, 3, 1, 0, 0.7, row_density=1.0,
                           dead_group=0.3, lane_zero=0.6) for rows, size in ((16, 3), (8, (5, 3)))]
    res = simulate_conv_wg(params, cases, idle=0.3, backpressure=0.3,
                           seed=int(rng.integers(1 << 30)))
    _report("amaranth conv wg groups", res)
    assert_all_exact(res)
    # the groups past the first did get terms
    assert any(c.golden()[4:].view(torch.int16).ne(0).any() for c in cases)


def test_amaranth_mac(rng):
    """Analog inputs (±0 skipped, subnormals, negatives, ±inf, NaN) through the FPMul
    lanes, and a spike tile on the same build."""
    params = dict(PARAMS, mac_support=True)
    cases = [conv_wg_case(rng, 3, 2, 6, 3, 3, 1, 1, 0.5, row_density=1.0, mac=True,
                          specials=True, kind="specials"),
             conv_wg_case(rng, 2, 2, 7, 6, 5, 2, 2, 1.0, kind="wide", mac=True),
             conv_wg_case(rng, 3, 1, 6, 4, 2, 1, 1, 0.7, kind="subnormal", mac=True),
             conv_wg_case(rng, 3, 2, 5, 7, 3, 2, 0, 0.4, kind="specials")]
    res = simulate_conv_wg(params, cases, idle=0.1, backpressure=0.2,
                           seed=int(rng.integers(1 << 30)))
    _report("amaranth conv wg mac", res)
    assert_all_exact(res)


def test_amaranth_config_and_cycles(rng):
    """L = 2, 8-bit words, a 2-word FIFO, one δ bank and two; busy cycles follow the model
    (δ maps, scan, footprints and live groups, read-out) for one and two groups, and the
    work falls with the input density."""
    for banks in (1, 2):
        params = {"lanes": 2, "word_bits": 8, "max_width": 12, "max_height": 12,
                  "max_channels": 2, "max_kernel": 3, "max_stride": 2, "max_groups": 2,
                  "acc_depth": 64, "delta_depth": 256, "delta_banks": banks, "max_rows": 64,
                  "out_depth": 2}
        cases = [conv_wg_case(rng, 4, 2, 8, co, 3, s, 1, d, row_density=1.0, kind="normal",
                              group_lanes=2)
                 for d in (0.0, 0.1, 1.0) for s in (1, 2) for co in (2, 3)]
        res = simulate_conv_wg(params, cases)
        assert_all_exact(res)
        for c, r in zip(cases, res):
            m = conv_wg_cycle_model(params, c)
            assert abs(r.cycles - m["model"]) <= 0.05 * m["model"] + 16, (c.name, r.cycles, m)
        assert res[4].cycles < 0.4 * res[8].cycles


def suite(rng, shapes=((2, 6, 3, 3, 1, 1), (3, (7, 5), 5, 2, 2, 0), (1, 8, 9, 5, 2, 2)),
          steps=(1, 4, 8), densities=(0.0, 0.01, 0.1, 0.5, 1.0), samples=2,
          kinds=("specials", "normal", "wide", "subnormal")):
    """Tiles over shapes ``(C, size, Co, K, stride, padding)`` × T × input densities;
    rows R = samples · T; alternating 30 % / 90 % live rows and the four δ kinds."""
    cases = []
    for n, (shape, t, d) in enumerate(itertools.product(shapes, steps, densities)):
        c, size, co, k, s, p = shape
        cases.append(conv_wg_case(rng, samples * t, c, size, co, k, s, p, d,
                                  row_density=(0.3, 0.9)[n % 2], kind=kinds[n % len(kinds)]))
    return cases


@pytest.mark.parametrize("simulator", SIMULATOR_PARAMS)
def test_cocotb_spike(simulator, rng):
    require_simulator(simulator)
    t0 = time.perf_counter()
    cases = suite(rng)
    res, info = run_cocotb_conv_wg(PARAMS, simulator, cases, idle=0.05, backpressure=0.1,
                                   label="conv-wg")
    _report(f"{simulator} conv wg", res, info, t0)
    assert_all_exact(res)
    _assert_specials_reached(cases)


@pytest.mark.slow
def test_slow_verilator(rng):
    require_simulator("verilator")
    params = {"lanes": 4, "max_width": 32, "max_height": 32, "max_channels": 8,
              "max_kernel": 5, "max_stride": 2, "max_groups": 4, "acc_depth": 256,
              "delta_depth": 1024, "max_rows": 1024}
    shapes = ((4, 16, 4, 3, 1, 1), (8, (20, 12), 3, 5, 2, 2), (2, 32, 6, 2, 2, 0),
              (3, 9, 9, 1, 1, 0))
    cases = suite(rng, shapes=shapes, steps=(4, 8), samples=4)
    for k in range(6):
        cases.append(conv_wg_case(rng, 8, 3, 10 + k, (4, 7, 2, 5, 8, 1)[k], 1 + k % 5,
                                  1 + k % 2, k % 3, 0.2 * (k + 1) % 1.01, mac=True,
                                  specials=bool(k % 2), kind=("specials", "normal", "wide")[k % 3]))
    res, info = run_cocotb_conv_wg(dict(params, mac_support=True), "verilator", cases,
                                   label="conv-wg-slow")
    _report("verilator conv wg slow", res, info)
    assert_all_exact(res)


SPARSITY_LAYERS = ((2, 16, 4, 3, 1, 1), (4, 16, 4, 3, 2, 1), (8, 8, 4, 5, 1, 2),
                   (16, 8, 4, 3, 1, 1))


def sparsity_table(rng, simulator, densities=(0.0, 0.01, 0.1, 0.5, 1.0), steps=8):
    """Busy cycles of one tile (all rows live, 30 % of the δ positions zero) per layer
    ``(C, size, Co, K, stride, padding)`` and input density, T = 8 rows."""
    params = {"lanes": 4, "max_width": 16, "max_height": 16, "max_channels": 16,
              "max_kernel": 5, "max_stride": 2, "max_groups": 1, "acc_depth": 256,
              "delta_depth": 256, "max_rows": 64}
    cases = [conv_wg_case(rng, steps, c, size, co, k, s, p, d, row_density=1.0,
                          dead_group=0.0)
             for (c, size, co, k, s, p) in SPARSITY_LAYERS for d in densities]
    res, _ = run_cocotb_conv_wg(params, simulator, cases, label="conv-wg-sparsity")
    assert_all_exact(res)
    table = {}
    for n, layer in enumerate(SPARSITY_LAYERS):
        row = res[n * len(densities):(n + 1) * len(densities)]
        table[layer] = {d: (r.cycles, r.counters["ops"]) for d, r in zip(densities, row)}
        cells = "  ".join(f"{d:g}: {r.cycles}" for d, r in zip(densities, row))
        print(f"[trident] conv wg C,size,Co,K,s,p={layer}: {cells}  "
              f"10%/100% = {row[2].cycles / row[-1].cycles:.3f}")
    return table


@pytest.mark.slow
def test_slow_sparsity(rng):
    """Cycles fall with the input density: 10 % costs less than a third of 100 %."""
    require_simulator("verilator")
    for layer, row in sparsity_table(rng, "verilator").items():
        assert row[0.1][0] < 0.34 * row[1.0][0], (layer, row)
