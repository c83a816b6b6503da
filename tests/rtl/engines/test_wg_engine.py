"""WG engine (exact fixed-point weight gradient of an FC tile) against the golden.

Every expected gradient comes from ``trident.golden.hw.gradient.fc_weight_grad`` (the
exact accumulator, rounded once); comparisons are on raw binary16 patterns; the counters
(events, lane terms, skipped rows) are checked too.  The two conversions
(binary16 → fixed, fixed → binary16) are also checked on their own against the golden's
``ExactGrad``.  Default run: Amaranth (spike and analog tiles with special values, idle
inputs, back-pressure, other lane counts) and a spike suite on Icarus and Verilator;
``-m slow``: larger tiles and analog inputs on Verilator.
"""

import itertools
import time

import numpy as np
import pytest
import torch
from amaranth.hdl import Module, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from trident.golden.hw.gradient import ExactGrad
from trident.rtl.engines.fixed import fixed_to_float16, float16_to_fixed, special_flags
from trident.rtl.engines.harness import (assert_all_exact, run_cocotb_fc, simulate_fc,
                                         wg_case, wg_cycle_model)
from trident.verify.pytest_fixtures import SIMULATOR_PARAMS, require_simulator

SPIKE = {"lanes": 4, "max_inputs": 64, "max_rows": 1024}
MAC = dict(SPIKE, mac_support=True)


def _report(label, results, info=None, t0=None):
    words = sum(r.checked for r in results)
    cycles = sum(r.cycles for r in results)
    bad = sum(not r.exact for r in results)
    extra = ""
    if info:
        extra = f", build {info['build_s']:.1f} s, run {info['test_s']:.1f} s"
    if t0 is not None:
        extra += f", total {time.perf_counter() - t0:.1f} s"
    print(f"[trident] {label}: {len(results)} tiles, {words} gradient words, "
          f"{cycles} busy cycles, {bad} tiles with mismatches{extra}")


class _Conversions(wiring.Component):
    def __init__(self):
        super().__init__({"acc": In(signed(64)), "flags": In(3), "x": In(16),
                          "z": Out(16), "fixed": Out(signed(41)), "special": Out(3)})

    def elaborate(self, platform):
        m = Module()
        nan, pinf, ninf = special_flags(self.x)
        m.d.comb += [
            self.z.eq(fixed_to_float16(m, self.acc, self.flags[0], self.flags[1], self.flags[2])),
            self.fixed.eq(float16_to_fixed(self.x)),
            self.special.eq(nan | (pinf << 1) | (ninf << 2)),
        ]
        return m


def test_conversions(rng):
    """binary16 → units of 2^−24 for every 16-bit pattern; the single rounding back for
    integers around every binade, ties, the subnormal/normal boundary, overflow, both
    signs, and the special flags — against ``golden.hw.gradient.ExactGrad``."""
    accs = [0, 1, 1023, 1024, 1025, 2047, 2048, 65504 << 24, (65520 << 24) - 1, 65520 << 24]
    for e in range(1, 62):
        accs += [int(v) + (1 << e) for v in rng.integers(0, 1 << e, 8, dtype=np.uint64)
                 .astype(object)]
    for msb in range(11, 45):                       # ties and neighbours
        sh = msb - 10
        v = ((1 << 10) | int(rng.integers(0, 1024))) << sh
        accs += [v | (1 << (sh - 1)), (v | (1 << (sh - 1))) + 1, v - 1, v + 1]
    accs += [-a for a in accs]
    flags = [(0, 0, 0)] * len(accs) + [(1, 0, 0), (0, 1, 0), (0, 0, 1), (0, 1, 1), (1, 1, 1)]
    accs += [5 << 30] * 5
    xs = list(range(1 << 16))
    dut = _Conversions()
    got_z, got_x = [], []

    async def bench(ctx):
        for a, f in zip(accs, flags):
            ctx.set(dut.acc, a)
            ctx.set(dut.flags, f[0] | (f[1] << 1) | (f[2] << 2))
            got_z.append(ctx.get(dut.z))
        for x in xs[::3] + [0x7C00, 0xFC00, 0x7E00, 0x7C01, 0xFFFF, 0x8000]:
            ctx.set(dut.x, x)
            got_x.append((x, ctx.get(dut.fixed), ctx.get(dut.special)))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    special = torch.tensor([float("nan") if f[0] or (f[1] and f[2]) else
                            float("inf") if f[1] else float("-inf") if f[2] else 0.0
                            for f in flags], dtype=torch.float64)
    exp = (ExactGrad(torch.tensor(accs, dtype=torch.int64), special).to_fp16()
           .view(torch.int16).int() & 0xFFFF).tolist()
    bad = [(a, hex(g), hex(e)) for a, g, e in zip(accs, got_z, exp) if g != e]
    assert not bad, bad[:10]
    for x, fx, sp in got_x:
        v = torch.tensor([x], dtype=torch.int32).to(torch.int16).view(torch.float16).double()
        finite = bool(torch.isfinite(v))
        assert fx == (int(v * 2 ** 24) if finite else 0), hex(x)
        assert sp == (1 if v.isnan() else 2 if v == float("inf") else
                      4 if v == float("-inf") else 0), hex(x)


def test_amaranth_spike(rng):
    cases = [wg_case(rng, 6, 20, 4, 0.5), wg_case(rng, 16, 37, 3, 0.3, kind="specials"),
             wg_case(rng, 10, 9, 4, 1.0, kind="wide"),
             wg_case(rng, 12, 40, 2, 0.2, kind="subnormal", row_density=0.3),
             wg_case(rng, 5, 33, 4, 0.0),
             # several groups per tile: every input row read once for all of them
             wg_case(rng, 9, 12, 18, 0.5, kind="specials"),
             wg_case(rng, 7, 8, 32, 0.7, row_density=0.9, lane_zero=0.6),
             # per-sample deltas (the readout's G): one row of deltas for T = 4 rows
             wg_case(rng, 12, 16, 10, 0.4, row_density=0.7, delta_rows=4)]
    res = simulate_fc(SPIKE, cases, idle=0.2, backpressure=0.3,
                      seed=int(rng.integers(1 << 30)))
    _report("amaranth wg spike", res)
    assert_all_exact(res)


def test_amaranth_mac(rng):
    cases = [wg_case(rng, 6, 20, 4, 0.5, mac=True, specials=True, kind="specials"),
             wg_case(rng, 8, 9, 4, 1.0, mac=True, kind="wide"),
             wg_case(rng, 8, 17, 2, 0.6, mac=True, kind="subnormal", row_density=0.8),
             wg_case(rng, 6, 12, 4, 0.5),                   # spikes on the MAC build
             wg_case(rng, 6, 9, 11, 0.6, mac=True, specials=True, kind="specials"),
             wg_case(rng, 8, 7, 9, 0.6, mac=True, delta_rows=2)]
    res = simulate_fc(MAC, cases, idle=0.2, backpressure=0.3, seed=int(rng.integers(1 << 30)))
    _report("amaranth wg mac", res)
    assert_all_exact(res)


def test_amaranth_config_and_cycles(rng):
    """L = 2, 8-bit words; busy cycles follow the model (scan + read-out)."""
    params = {"lanes": 2, "word_bits": 8, "max_inputs": 32, "max_rows": 64, "out_depth": 2}
    cases = [wg_case(rng, 12, 21, 2, d, kind="specials") for d in (0.0, 0.3, 1.0)]
    cases += [wg_case(rng, 12, 10, 6, d, row_density=0.8, lane_zero=0.7) for d in (0.3, 1.0)]
    cases += [wg_case(rng, 12, 10, 6, 0.5, row_density=0.8, delta_rows=3)]
    res = simulate_fc(params, cases)
    assert_all_exact(res)
    for c, r in zip(cases, res):
        m = wg_cycle_model(params, c)
        assert abs(r.cycles - m["model"]) <= 0.1 * m["model"] + 8, (c.name, r.cycles, m)


def spike_suite(rng, sizes=((37, 4), (64, 3), (16, 13)), rows=(8, 32),
                densities=(0.0, 0.01, 0.1, 0.5, 1.0), kinds=("specials", "normal", "wide", "subnormal")):
    """Tiles of ``(n_in, outputs)``: one group, a partial group, several groups."""
    cases = []
    for n, ((n_in, outputs), r, d) in enumerate(itertools.product(sizes, rows, densities)):
        cases.append(wg_case(rng, r, n_in, outputs, d, row_density=(0.3, 0.9)[n % 2],
                             kind=kinds[n % len(kinds)], lane_zero=(0.2, 0.7)[n % 2],
                             delta_rows=(1, 1, 4)[n % 3]))
    return cases


@pytest.mark.parametrize("simulator", SIMULATOR_PARAMS)
def test_cocotb_spike(simulator, rng):
    require_simulator(simulator)
    t0 = time.perf_counter()
    cases = spike_suite(rng)
    res, info = run_cocotb_fc(SPIKE, simulator, cases, idle=0.05, backpressure=0.1,
                              label="wg-spike")
    _report(f"{simulator} wg spike", res, info, t0)
    assert_all_exact(res)


@pytest.mark.slow
def test_slow_verilator(rng):
    require_simulator("verilator")
    params = {"lanes": 4, "max_inputs": 512, "max_rows": 1 << 12, "mac_support": True}   # 32 groups
    cases = spike_suite(rng, sizes=((200, 4), (512, 4), (77, 2), (30, 64), (8, 128)), rows=(64, 256))
    for k in range(6):
        cases.append(wg_case(rng, 64, 100 + k, 4, 0.2 * (k + 1) % 1.01, mac=True,
                             specials=bool(k % 2), kind=("specials", "normal", "wide")[k % 3]))
    res, info = run_cocotb_fc(params, "verilator", cases, label="wg-slow")
    _report("verilator wg slow", res, info)
    assert_all_exact(res)
