"""SGD update unit and the scaled FMA path against the golden.

The scaled FMA (``FPFMA(scale_width=…)``: ``c − a·b·2^−s``, one rounding) is checked
operation by operation against ``golden.hw.scalar.fma_scaled`` (Berkeley SoftFloat), on
random operands, special operands, cancellations and subnormal results over the whole
range of ``s``.  The update unit is checked word by word against
``golden.hw.update.sgd_update`` (plain SGD and momentum, specials in weights, gradients
and buffers, several register settings in one run, idle inputs and back-pressure).
Default run: Amaranth and both cocotb simulators; ``-m slow``: long regressions.
"""

import time

import numpy as np
import pytest
import torch

from trident.golden.hw import scalar as S
from trident.rtl.engines.wg_conv_harness import (run_cocotb_update, simulate_update,
                                                 update_mismatches, update_segment)
from trident.rtl.engines.update import UpdateUnit
from trident.rtl.fp16 import FPFMA
from trident.verify.amaranth_sim import simulate_stream
from trident.verify.payload import pack, payload_layout
from trident.verify.pytest_fixtures import SIMULATOR_PARAMS, require_simulator
from trident.verify.runner import run_stream_vectors

SHIFT_BITS = 6

SPECIALS = [0x0000, 0x8000, 0x7C00, 0xFC00, 0x7E00, 0x7C01, 0xFE00, 0x0001, 0x8001, 0x03FF,
            0x0400, 0x8400, 0x7BFF, 0xFBFF, 0x3C00, 0xBC00, 0x3BFF, 0x3C01]



@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """The golden kernels run on a shared machine: one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

def scaled_fma_vectors(rng, n):
    """``(a, b, c, s)`` lists: random patterns, specials, and operands where ``a·b·2^−s``
    lands close to ``c`` (cancellation) or in / below the subnormal range, for every
    ``s``."""
    a, b, c = (rng.integers(0, 1 << 16, n) for _ in range(3))
    s = rng.integers(0, 1 << SHIFT_BITS, n)
    kind = rng.integers(0, 5, n)
    for k in range(n):
        if kind[k] == 1:                    # specials anywhere
            for arr in (a, b, c):
                if rng.random() < 0.5:
                    arr[k] = rng.choice(SPECIALS)
        elif kind[k] == 2:                  # near cancellation: c ≈ a·b·2^−s
            s[k] = rng.integers(0, 40)
            ea, eb = rng.integers(1, 31, 2)
            a[k] = (int(ea) << 10) | int(rng.integers(0, 1024)) | int(rng.integers(0, 2)) << 15
            b[k] = (int(eb) << 10) | int(rng.integers(0, 1024)) | int(rng.integers(0, 2)) << 15
            v = S.value(a[k]) * S.value(b[k]) * 2.0 ** -int(s[k])
            v *= 1 + rng.normal(0, 2.0 ** -9)
            c[k] = S.from_float(v) ^ (0x8000 * int(rng.random() < 0.1))
        elif kind[k] == 3:                  # subnormal / tiny results: c small or zero
            c[k] = rng.choice([0, 0x8000, int(rng.integers(0, 0x400)),
                               int(rng.integers(0x8000, 0x8400))])
            s[k] = rng.integers(0, 1 << SHIFT_BITS)
        elif kind[k] == 4:                  # small shifts with ordinary values
            s[k] = rng.integers(0, 12)
    return [int(x) for x in a], [int(x) for x in b], [int(x) for x in c], [int(x) for x in s]


def scaled_payloads(dut, a, b, c, s):
    n = len(a)
    inputs = pack(payload_layout(dut, "i"), a=a, b=b, c=c, neg_prod=[1] * n, neg_c=[0] * n,
                  scale=s)
    expected = [S.fma_scaled(x, y, z, k) for x, y, z, k in zip(a, b, c, s)]
    return inputs, expected


def test_scaled_fma_amaranth(rng):
    """Every combination of the special operands at s ∈ {0, 1, 15, 25, 63}, and random /
    cancelling / subnormal-result vectors, through a 6-stage scaled FMA."""
    a, b, c, s = scaled_fma_vectors(rng, 2500)
    sp = SPECIALS
    for x in sp:
        for y in sp:
            for z in sp[::2]:
                a.append(x), b.append(y), c.append(z), s.append(int(rng.choice([0, 1, 15, 25, 63])))
    dut = FPFMA(scale_width=SHIFT_BITS)
    inputs, expected = scaled_payloads(dut, a, b, c, s)
    res = simulate_stream(dut, inputs)
    bad = [(hex(a[k]), hex(b[k]), hex(c[k]), s[k], hex(res.outputs[k]), hex(expected[k]))
           for k in range(len(a)) if res.outputs[k] != expected[k]]
    assert not bad, bad[:10]
    assert set(res.latencies) == {6}
    # the vectors reach what they should: subnormal, zero and special results
    exp = np.array(expected)
    assert ((exp & 0x7C00) == 0).sum() > 200 and (exp == 0x7E00).sum() > 50


@pytest.mark.parametrize("simulator", SIMULATOR_PARAMS)
def test_scaled_fma_cocotb(simulator, rng):
    require_simulator(simulator)
    a, b, c, s = scaled_fma_vectors(rng, 20000)
    dut = FPFMA(scale_width=SHIFT_BITS)
    dut._MustUse__silence = True
    inputs, expected = scaled_payloads(dut, a, b, c, s)
    res = run_stream_vectors(FPFMA, simulator, inputs, expected,
                             params={"scale_width": SHIFT_BITS, "backpressure": True},
                             backpressure=0.1,
                             label="fma-scaled")
    assert res.passed


def _segments(rng, momentum, n_seg, words, lanes):
    segs = []
    for k in range(n_seg):
        seg = update_segment(rng, words, lanes, momentum=momentum)
        if momentum and k % 3 == 2:          # plain SGD on the momentum build
            seg.mu, seg.buf = None, None
        segs.append(seg)
    return segs


def _check(outs, packed, segments):
    bad = update_mismatches(outs, packed)
    assert not bad, bad[:10]
    # the golden results include specials, subnormals and both zeros
    new_w = torch.cat([s.golden()[0].reshape(-1) for s in segments])
    bits = new_w.view(torch.int16).numpy().astype(np.int64) & 0xFFFF
    assert (bits == 0x7E00).any() and (bits == 0x8000).any() and (bits == 0).any()
    assert (((bits & 0x7C00) == 0) & ((bits & 0x3FF) != 0)).any()


@pytest.mark.parametrize("momentum", [False, True], ids=["plain", "momentum"])
def test_update_amaranth(rng, momentum):
    params = {"lanes": 3, "momentum": momentum, "stages": 4}
    segs = _segments(rng, momentum, 6, 60, 3)
    outs, packed, lat, _ = simulate_update(params, segs, idle=0.2, backpressure=0.3,
                                        seed=int(rng.integers(1 << 30)))
    _check(outs, packed, segs)
    # the latency: word register, FMA (once: the momentum build's segments include plain
    # SGD ones), the other lanes, output FIFO
    assert min(lat) == 1 + params["stages"] + 3 - 1 + 2


@pytest.mark.parametrize("momentum", [False, True], ids=["plain", "momentum"])
def test_update_fma_busy_every_cycle(rng, momentum):
    """Without idle inputs or back-pressure the one FMA starts an operation every cycle:
    ``n`` words take ``n·L`` (``n·2·L``) cycles after the first word's latency.  With
    momentum a word's ``m'`` results re-enter ahead of the next word's operations, so words
    leave up to one word's worth of cycles early or late, never further."""
    params = {"lanes": 2, "momentum": momentum, "stages": 3}
    segs = [update_segment(rng, 200, 2, momentum=momentum)]
    outs, packed, lat, out_cycles = simulate_update(params, segs)
    assert not update_mismatches(outs, packed)
    per_word = 2 * (2 if momentum else 1)
    assert lat[0] == 1 + 3 * (2 if momentum else 1) + 1 + 2
    late = np.array(out_cycles) - out_cycles[0] - per_word * np.arange(200)
    assert np.abs(late).max() <= (per_word if momentum else 0)
    assert out_cycles[-1] - out_cycles[0] <= per_word * 199 + (per_word if momentum else 0)


def test_update_words_keep_their_order_across_register_writes(rng):
    """Momentum and plain segments back to back, without waiting: a plain word may not
    overtake the ``m'`` operations of the momentum word before it."""
    params = {"lanes": 2, "momentum": True, "stages": 5}
    segs = []
    for k in range(8):
        seg = update_segment(rng, 3 + k % 3, 2, momentum=True)
        if k % 2:
            seg.mu, seg.buf = None, None
        segs.append(seg)
    outs, packed, _, _ = simulate_update(params, segs)
    bad = update_mismatches(outs, packed)
    assert not bad, bad[:10]


@pytest.mark.parametrize("simulator", SIMULATOR_PARAMS)
def test_update_cocotb(simulator, rng):
    require_simulator(simulator)
    t0 = time.perf_counter()
    params = {"lanes": 4, "momentum": True}
    segs = _segments(rng, True, 6, 200, 4)
    outs, packed, info = run_cocotb_update(params, simulator, segs, idle=0.1,
                                           backpressure=0.1, label="update-momentum")
    _check(outs, packed, segs)
    print(f"[trident] {simulator} update: {sum(len(p[1]) for p in packed)} words, "
          f"{info['cycles']} cycles, build {info['build_s']:.1f} s, run {info['test_s']:.1f} s, "
          f"total {time.perf_counter() - t0:.1f} s")


@pytest.mark.slow
@pytest.mark.parametrize("momentum", [False, True], ids=["plain", "momentum"])
def test_slow_update_verilator(rng, momentum):
    require_simulator("verilator")
    params = {"lanes": 4, "momentum": momentum, "shift_width": 5}
    segs = _segments(rng, momentum, 40, 1000, 4)
    outs, packed, _ = run_cocotb_update(params, "verilator", segs, idle=0.05,
                                        backpressure=0.05, label=f"update-slow-{momentum}")
    _check(outs, packed, segs)
    a, b, c, s = scaled_fma_vectors(rng, 200000)
    dut = FPFMA(scale_width=SHIFT_BITS)
    dut._MustUse__silence = True
    inputs, expected = scaled_payloads(dut, a, b, c, s)
    assert run_stream_vectors(FPFMA, "verilator", inputs, expected,
                              params={"scale_width": SHIFT_BITS}, label="fma-scaled-slow").passed


@pytest.mark.parametrize("kwargs", [{"lanes": 0}, {"shift_width": 0}, {"stages": 0}])
def test_update_arguments_are_checked(kwargs):
    with pytest.raises(ValueError, match="must be positive"):
        UpdateUnit(**kwargs)
