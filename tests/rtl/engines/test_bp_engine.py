"""BP engine (transposed FC and conv products, dual sparsity) against the golden kernels.

Every expected word comes from ``trident.golden.hw.backward.fc_backward`` /
``conv2d_backward`` (need mask applied with ``apply_need``); comparisons are on raw
binary16 patterns (NaN results must be the canonical 0x7E00); the counters (events, FMAs
executed, FMAs or zero deltas skipped) are checked on every case.

Default run: quick Amaranth-simulator cases (special weights and deltas, need masks,
other configurations, idle inputs and back-pressure, the cycle model, the sparsity
must-show), then on Icarus and Verilator: FC layers of 3 sizes × rows R = N·T (N = 2,
T ∈ {1, 4, 8}) × δ densities {0, 1, 10, 50, 100 %} with the need density cycling through
{all, 50 %, 10 %, none}, and conv layers of 3 shapes × R × δ densities × need.  ``-m slow``:
larger layers on Verilator.
"""

import itertools
import time

import pytest
import torch

from trident.rtl.engines.bp import ConvBPEngine
from trident.rtl.engines.harness import (BPCase, ConvBPCase, assert_all_exact,
                                         assert_flat_word_counts, bp_case, conv_bp_case,
                                         conv_cycle_model, cycle_model, make_engine,
                                         random_bp_deltas, random_need, random_weights,
                                         run_cocotb_fc, simulate_fc, stimuli)
from trident.verify.pytest_fixtures import SIMULATOR_PARAMS, require_simulator

FC = {"lanes": 4, "max_inputs": 256, "weight_depth": 1024, "max_rows": 32}
CONV = {"lanes": 4, "max_width": 16, "max_height": 16, "max_channels": 8, "max_kernel": 5,
        "max_stride": 4, "acc_depth": 512, "weight_depth": 512, "max_rows": 32}
DENSITIES = (0.0, 0.01, 0.1, 0.5, 1.0)
NEEDS = (None, 0.5, 0.1, 0.0)               # None: every output needed (no need words)
ROWS = (2, 8, 16)                           # N = 2 samples × T ∈ {1, 4, 8}


def _report(label, results, info=None, t0=None):
    words = sum(r.checked for r in results)
    cycles = sum(r.cycles for r in results)
    bad = sum(not r.exact for r in results)
    extra = ""
    if info:
        extra = f", build {info['build_s']:.1f} s, run {info['test_s']:.1f} s"
    if t0 is not None:
        extra += f", total {time.perf_counter() - t0:.1f} s"
    print(f"[trident] {label}: {len(results)} cases, {words} words, "
          f"{cycles} busy cycles, {bad} cases with mismatches{extra}")


def _classes(cases):
    """How many golden results are NaN / ±inf / subnormal, and how many were masked to +0
    by the need mask while the unmasked product is not +0 (the suite must hit them)."""
    out = {"nan": 0, "inf": 0, "subnormal": 0, "masked": 0, "total": 0}
    for c in cases:
        b = c.golden().view(torch.int16).int() & 0xFFFF
        mag = b & 0x7FFF
        out["nan"] += int((mag > 0x7C00).sum())
        out["inf"] += int((mag == 0x7C00).sum())
        out["subnormal"] += int(((mag > 0) & (mag < 0x400)).sum())
        out["total"] += b.numel()
        if c.need is not None:
            full = type(c)(**{**c.__dict__, "need": None}).golden()
            full = full.view(torch.int16).int() & 0xFFFF
            out["masked"] += int(((full != 0) & ~c.need).sum())
    return out


def fc_suite(rng, sizes=((37, 13), (64, 9), (20, 45)), rows=ROWS, densities=DENSITIES,
             kinds=(("specials", "normal"), ("normal", "specials"), ("subnormal", "wide"))):
    """Forward layers ``(J, I)``: one weight matrix per size (resident at its own base,
    reused for every case), δ rows at each density, the need density cycling."""
    cases, base, k = [], 0, 0
    for n, (n_out, n_in) in enumerate(sizes):
        wkind, dkind = kinds[n % len(kinds)]
        w = random_weights(rng, n_out, n_in, wkind)
        for r, d in itertools.product(rows, densities):
            nd = NEEDS[k % len(NEEDS)]
            k += 1
            nds = "all" if nd is None else f"{nd:g}"
            cases.append(BPCase(f"bp-{n_out}x{n_in}-{wkind}-{dkind}-R{r}-d{d:g}-need{nds}",
                                w, random_bp_deltas(rng, r, n_out, d, dkind),
                                random_need(rng, r, n_in, nd), base))
        base += -(-n_in // 4) * n_out
    return cases


def conv_suite(rng, shapes=((2, 6, 6, 5, 3, 1, 1), (5, 7, 9, 3, 3, 2, 1),
                            (3, 5, 5, 4, 2, 1, 0)),
               rows=(2, 8), densities=(0.0, 0.1, 0.5, 1.0),
               kinds=(("specials", "normal"), ("normal", "specials"), ("wide", "subnormal"))):
    """Forward layers ``(C, H, W, Co, K, stride, pad)``: one weight tensor per shape,
    reused; δ maps at each density, the need density cycling."""
    cases, k = [], 0
    for n, (c, h, w_, co, kk, s, p) in enumerate(shapes):
        wkind, dkind = kinds[n % len(kinds)]
        proto = conv_bp_case(rng, c, w_, co, kk, s, p, 1, 0.0, kind=wkind, height=h)
        for r, d in itertools.product(rows, densities):
            nd = NEEDS[k % len(NEEDS)]
            k += 1
            one = conv_bp_case(rng, c, w_, co, kk, s, p, r, d, nd, kind=wkind,
                               delta_kind=dkind, height=h)
            cases.append(ConvBPCase(one.name, proto.weight, one.deltas,
                                    one.in_shape, s, p, one.need))
    return cases


# ---- Amaranth simulator: FC ----------------------------------------------------------

def test_amaranth_fc(rng):
    cases = [bp_case(rng, 20, 13, 3, 0.5, None, kind="specials"),
             bp_case(rng, 9, 30, 4, 0.5, 0.3, delta_kind="specials"),
             bp_case(rng, 17, 50, 3, 0.0, 0.5),
             bp_case(rng, 17, 50, 2, 1.0, 0.0, kind="wide"),
             bp_case(rng, 11, 26, 3, 0.3, 0.1, kind="subnormal", delta_kind="subnormal",
                     w_base=300)]
    res = simulate_fc(FC, cases, idle=0.2, backpressure=0.3, seed=int(rng.integers(1 << 30)))
    _report("amaranth bp fc", res)
    assert_all_exact(res)


@pytest.mark.parametrize("params", [
    {"lanes": 3, "stages": 2, "word_bits": 16, "out_depth": 2, "max_inputs": 64,
     "weight_depth": 512, "max_rows": 8},
    {"lanes": 2, "stages": 3, "word_bits": 64, "max_inputs": 32, "weight_depth": 256},
], ids=["L3-P2-B16", "L2-P3-B64"])
def test_amaranth_fc_configs(rng, params):
    """Other lane counts, pipeline depths (need words of P·L bits), word widths and a
    minimal output FIFO, with heavy back-pressure."""
    cases = [bp_case(rng, 21, 17, 3, 0.5, 0.3, kind="specials", delta_kind="specials"),
             bp_case(rng, 16, 9, 2, 1.0, None, kind="wide"),
             bp_case(rng, 7, 20, 2, 0.6, 0.5)]
    res = simulate_fc(params, cases, idle=0.3, backpressure=0.6,
                      seed=int(rng.integers(1 << 30)))
    _report(f"amaranth bp fc {params}", res)
    assert_all_exact(res)


def test_fc_weight_reuse(rng):
    """The transposed weights stay resident across calls (different δ rows and masks)."""
    w = random_weights(rng, 12, 10, "normal")
    cases = [BPCase(f"call{k}", w, random_bp_deltas(rng, 3, 12, 0.5),
                    random_need(rng, 3, 10, (None, 0.5, 0.0)[k])) for k in range(3)]
    assert [bool(s.weights) for s in stimuli(FC, cases)] == [True, False, False]
    assert_all_exact(simulate_fc(FC, cases))


def test_fc_cycles_and_sparsity(rng):
    """Busy cycles follow the documented model (rounds of P per block of needed groups and
    non-zero δ, the merger's word per group), 10 % δ density costs at most 0.2 × the
    100 % cycles, and the cycles fall with the need density (only needed groups get
    slots)."""
    w = random_weights(rng, 40, 96, "normal")                 # J = 40, I = 96: 24 groups
    dens = {d: random_bp_deltas(rng, 3, 40, d, exact=True) for d in (0.0, 0.1, 1.0)}
    half = torch.zeros(3, 96, dtype=torch.bool)
    half[:, 1::8] = True                                      # every other group, one lane
    tenth = torch.zeros(3, 96, dtype=torch.bool)
    tenth[:, 3::10] = True                                    # 10 % of the neurons: 10 groups
    cases = [BPCase(f"d{d:g}", w, x) for d, x in dens.items()]
    cases += [BPCase("d1-half-groups", w, dens[1.0], half),
              BPCase("d1-need0.1", w, dens[1.0], tenth),
              BPCase("d1-no-need", w, dens[1.0], torch.zeros(3, 96, dtype=torch.bool))]
    res = simulate_fc(FC, cases)
    assert_all_exact(res)
    cyc = {c.name: r.cycles for c, r in zip(cases, res)}
    for c, r in zip(cases, res):
        m = cycle_model(FC, c)
        assert m["issue"] <= r.cycles, (c.name, r.cycles, m)
        assert abs(r.cycles - m["model"]) <= 8 + 0.05 * m["model"], (c.name, r.cycles, m)
    assert cyc["d0.1"] <= 0.2 * cyc["d1"], cyc
    assert cyc["d1-half-groups"] <= 0.55 * cyc["d1"], cyc
    assert cyc["d1-need0.1"] <= 0.6 * cyc["d1"], cyc
    assert cyc["d1-no-need"] <= 0.1 * cyc["d1"], cyc


def test_fc_sparse_need_span(rng):
    """Needed groups far apart: blocks close after D groups (the merge FIFO's half), so the
    scanner never fills the merge FIFO while the merger waits (a small FIFO here)."""
    params = dict(FC, merge_depth=8)
    w = random_weights(rng, 10, 160, "specials")               # 40 groups, D = 4
    need = torch.zeros(3, 160, dtype=torch.bool)
    need[:, ::37] = True
    need[1, 60:64] = True
    cases = [BPCase("sparse-need", w, random_bp_deltas(rng, 3, 10, 0.7), need),
             BPCase("dense-need", w, random_bp_deltas(rng, 2, 10, 0.7))]
    res = simulate_fc(params, cases, backpressure=0.3, seed=int(rng.integers(1 << 30)))
    assert_all_exact(res)


# ---- Amaranth simulator: conv --------------------------------------------------------

def test_amaranth_conv(rng):
    cases = [conv_bp_case(rng, 2, 6, 5, 3, 1, 1, 2, 0.5, None, kind="specials"),
             conv_bp_case(rng, 5, 7, 3, 3, 2, 1, 2, 0.5, 0.5, delta_kind="specials"),
             conv_bp_case(rng, 1, 8, 2, 5, 2, 2, 1, 1.0, 0.3, kind="wide"),
             conv_bp_case(rng, 3, 9, 2, 2, 2, 0, 1, 0.4, None, height=5),
             conv_bp_case(rng, 2, 9, 3, 3, 4, 2, 1, 0.7, 0.1, kind="subnormal"),
             conv_bp_case(rng, 6, 4, 2, 1, 1, 0, 2, 0.6, 0.0),
             conv_bp_case(rng, 2, 5, 3, 3, 1, 1, 2, 0.0, 0.5)]
    res = simulate_fc(CONV, cases, idle=0.2, backpressure=0.3,
                      seed=int(rng.integers(1 << 30)))
    _report("amaranth bp conv", res)
    assert_all_exact(res)


@pytest.mark.parametrize("params", [dict(CONV, lanes=3, stages=2, word_bits=16, out_depth=4),
                                    dict(CONV, lanes=2, stages=3, word_bits=64)],
                         ids=["L3-P2-B16", "L2-P3-B64"])
def test_amaranth_conv_configs(rng, params):
    cases = [conv_bp_case(rng, 4, 5, 3, 3, 1, 1, 1, 0.5, 0.5, kind="specials"),
             conv_bp_case(rng, 3, 4, 2, 2, 1, 1, 1, 0.4, None, kind="subnormal"),
             conv_bp_case(rng, 1, 7, 2, 4, 2, 3, 1, 1.0, 0.3, kind="wide")]
    res = simulate_fc(params, cases, idle=0.3, backpressure=0.5,
                      seed=int(rng.integers(1 << 30)))
    _report(f"amaranth bp conv {params}", res)
    assert_all_exact(res)


def test_conv_cycles_and_reuse(rng):
    """Busy cycles ≥ one per accumulator update plus the read-out and within 10 % of the
    model; the scatter falls with the δ density; weights stay resident."""
    proto = conv_bp_case(rng, 8, 7, 2, 3, 1, 1, 2, 0.0)
    cases = [ConvBPCase(f"d{d:g}", proto.weight,
                        random_bp_deltas(rng, 2, 2 * 7 * 7, d, exact=True).reshape(
                            2, 2, 7, 7),
                        proto.in_shape, 1, 1) for d in (0.0, 0.1, 1.0)]
    assert [bool(s.weights) for s in stimuli(CONV, cases)] == [True, False, False]
    res = simulate_fc(CONV, cases)
    assert_all_exact(res)
    for c, r in zip(cases, res):
        m = conv_cycle_model(CONV, c)
        assert m["updates"] + m["readout"] <= r.cycles <= 1.1 * m["model"], (c.name, r.cycles, m)
    scatter = [r.cycles - conv_cycle_model(CONV, c)["readout"] for c, r in zip(cases, res)]
    assert scatter[1] <= 0.2 * scatter[2], scatter


@pytest.mark.parametrize("params", [dict(CONV, flat_readout=True),
                                    dict(CONV, lanes=3, stages=2, out_depth=4,
                                         flat_readout=True)],
                         ids=["L4", "L3-P2"])
def test_amaranth_conv_flat(rng, params):
    """Flat read-out of the δS maps: (c, iy, ix) order, L values per word, the last word
    padded with +0, ceil(C·H·W / L) words per row; non-square maps, strides 1 and 2,
    padding, K ∈ {1, 3, 5}, C not a multiple of L, R ≥ 2, specials, idle inputs and
    back-pressure.  The cases run back to back on one engine; the last (zero δI) reads
    every accumulator word the others used (W = 16, C = 2·L), all +0.  No need mask:
    no ``need`` member, and a case with one is refused."""
    L = params["lanes"]
    assert "need" not in make_engine(params, ConvBPEngine).signature.members
    cases = [conv_bp_case(rng, 5, 7, 4, 3, 1, 1, 2, 0.5, height=5, kind="specials",
                          delta_kind="specials"),
             conv_bp_case(rng, 7, 9, 3, 5, 2, 2, 3, 0.5, height=6, kind="wide"),
             conv_bp_case(rng, 6, 8, 2, 1, 2, 0, 2, 0.7, height=5, kind="subnormal",
                          delta_kind="subnormal"),
             conv_bp_case(rng, 2, 6, 3, 3, 2, 1, 2, 1.0, height=9),
             conv_bp_case(rng, 2 * L, 16, 2, 3, 1, 1, 1, 0.0, height=7)]
    assert not cases[-1].golden().view(torch.int16).any()
    res = simulate_fc(params, cases, idle=0.2, backpressure=0.4,
                      seed=int(rng.integers(1 << 30)))
    _report(f"amaranth bp conv flat {params}", res)
    assert_flat_word_counts(params, cases, res)
    assert_all_exact(res)
    with pytest.raises(ValueError, match="need"):
        stimuli(params, [conv_bp_case(rng, 3, 5, 2, 3, 1, 1, 1, 0.5, 0.5)])


# ---- cocotb on Icarus and Verilator -------------------------------------------------

@pytest.mark.parametrize("simulator", SIMULATOR_PARAMS)
def test_cocotb_fc(simulator, rng):
    require_simulator(simulator)
    t0 = time.perf_counter()
    cases = fc_suite(rng)
    classes = _classes(cases)
    assert all(classes[k] for k in ("nan", "inf", "subnormal", "masked")), classes
    res, info = run_cocotb_fc(FC, simulator, cases, idle=0.05, backpressure=0.1,
                              label="bp-fc")
    _report(f"{simulator} bp fc {classes}", res, info, t0)
    assert_all_exact(res)


@pytest.mark.parametrize("simulator", SIMULATOR_PARAMS)
def test_cocotb_conv(simulator, rng):
    require_simulator(simulator)
    t0 = time.perf_counter()
    cases = conv_suite(rng)
    classes = _classes(cases)
    assert all(classes[k] for k in ("nan", "inf", "subnormal", "masked")), classes
    res, info = run_cocotb_fc(CONV, simulator, cases, idle=0.05, backpressure=0.1,
                              label="bp-conv")
    _report(f"{simulator} bp conv {classes}", res, info, t0)
    assert_all_exact(res)


# ---- slow regressions ---------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("params", [dict(FC, max_inputs=512, weight_depth=8192, max_rows=64),
                                    dict(FC, lanes=8, max_inputs=512, weight_depth=4096,
                                         max_rows=64)],
                         ids=["L4", "L8"])
def test_slow_fc(params, rng):
    require_simulator("verilator")
    lanes = params["lanes"]
    for _ in range(2):
        cases = fc_suite(rng, sizes=((257, 33), (100, 61), (512, 7)), rows=(4, 32, 64))
        if lanes != 4:
            cases = [BPCase(c.name, c.weight, c.deltas, c.need, 0) for c in cases]
        res, info = run_cocotb_fc(params, "verilator", cases, idle=0.02, backpressure=0.05,
                                  label="bp-slow")
        _report(f"verilator slow bp fc {params}", res, info)
        assert_all_exact(res)


@pytest.mark.slow
def test_slow_conv(rng):
    require_simulator("verilator")
    params = dict(CONV, max_width=32, max_height=32, max_channels=16, acc_depth=4096,
                  weight_depth=2048, max_rows=64)
    cases = conv_suite(rng, shapes=((4, 16, 16, 8, 3, 1, 1), (6, 12, 12, 6, 5, 2, 2),
                                    (2, 20, 20, 4, 3, 2, 0)), rows=(2, 8, 16),
                       densities=(0.0, 0.01, 0.1, 0.5, 1.0))
    res, info = run_cocotb_fc(params, "verilator", cases, idle=0.02, backpressure=0.05,
                              label="bp-conv-slow")
    _report("verilator slow bp conv", res, info)
    assert_all_exact(res)
