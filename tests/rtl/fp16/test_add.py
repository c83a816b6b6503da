"""FPAdd in the Amaranth simulator: directed cases, every vector suite, several depths."""

import pytest

from trident.rtl.fp16 import FPAdd
from trident.verify.fp16.units import build_case, check_amaranth, quick_suites, simulate_fields, spec

# (a, b, sub, expected z): each a documented corner of the numeric contract
DIRECTED = [
    (0x3C00, 0x3C00, 0, 0x4000),   # 1 + 1 = 2
    (0x3C00, 0x1000, 0, 0x3C00),   # 1 + 2^-11: tie, rounds to even (1)
    (0x3C00, 0x1600, 0, 0x3C02),   # 1 + 3*2^-11: tie, rounds to even (1 + 2 ulp)
    (0x3C01, 0x1000, 0, 0x3C02),   # (1+ulp) + 2^-11: tie, rounds up to even
    (0x7BFF, 0x7BFF, 0, 0x7C00),   # max + max overflows to +inf
    (0x7BFF, 0x4B00, 0, 0x7BFF),   # 65504 + 14 (< half ulp) stays 65504
    (0x7BFF, 0x4C00, 0, 0x7C00),   # 65504 + 16 (half ulp: tie, even is 2^16) -> inf
    (0x8000, 0x8000, 0, 0x8000),   # -0 + -0 = -0
    (0x0000, 0x8000, 0, 0x0000),   # +0 + -0 = +0
    (0x8000, 0x0000, 1, 0x8000),   # -0 - +0 = -0
    (0x3C00, 0x3C00, 1, 0x0000),   # 1 - 1 = +0
    (0x0001, 0x0001, 0, 0x0002),   # subnormal + subnormal
    (0x0400, 0x0001, 1, 0x03FF),   # smallest normal - smallest subnormal = largest subnormal
    (0x03FF, 0x0001, 0, 0x0400),   # largest subnormal + smallest subnormal = smallest normal
    (0x7C00, 0x7C00, 1, 0x7E00),   # inf - inf = NaN
    (0x7C00, 0xFC00, 0, 0x7E00),   # inf + -inf = NaN
    (0xFC00, 0x3C00, 0, 0xFC00),   # -inf + 1 = -inf
    (0x7C01, 0x3C00, 0, 0x7E00),   # signalling NaN -> canonical NaN
    (0xFE00, 0x7C00, 0, 0x7E00),   # negative NaN -> canonical NaN
]


@pytest.mark.parametrize("stages", [0, 4])
def test_directed(stages):
    a, b, sub, z = zip(*DIRECTED)
    out = simulate_fields(spec("add", stages=stages), a=a, b=b, sub=sub)
    got = [int(x) for x in out["z"]]
    bad = [(hex(r[0]), hex(r[1]), r[2], hex(g), hex(r[3])) for r, g in zip(DIRECTED, got)
           if g != r[3]]
    assert not bad, f"(a, b, sub, got, expected): {bad}"


@pytest.mark.parametrize("stages", list(range(len(FPAdd.STEPS) + 1)))
def test_suites_every_depth(rng, stages):
    s = spec("add", stages=stages)
    case = build_case(s, rng, quick_suites(s, 120), total=1500)
    assert check_amaranth(s, case) == []


def test_backpressure_idle_and_tag(rng, seed):
    s = spec("add", stages=3, backpressure=True, tag_width=6)
    case = build_case(s, rng, quick_suites(s, 80), total=1500)
    assert check_amaranth(s, case, idle=0.3, backpressure=0.4, seed=seed) == []
