"""FPMul in the Amaranth simulator: directed cases, every vector suite, several depths."""

import pytest

from trident.rtl.fp16 import FPMul
from trident.verify.fp16.units import build_case, check_amaranth, quick_suites, simulate_fields, spec

DIRECTED = [   # (a, b, expected z)
    (0x3C00, 0x3C00, 0x3C00),   # 1 * 1
    (0x4000, 0xC000, 0xC400),   # 2 * -2 = -4
    (0x3C01, 0x3C01, 0x3C02),   # (1+u)^2 = 1 + 2u + u^2: rounds to 1 + 2u
    (0x3C01, 0x3BFF, 0x3C00),   # (1+u)(1-u/2) = 1 + u/2 - u^2/2: rounds to 1
    (0x3E00, 0x3C01, 0x3E02),   # 1.5 * (1+u) = 1.5 + 1.5u: tie, rounds to even 1.5 + 2u
    (0x7BFF, 0x4000, 0x7C00),   # max * 2 overflows
    (0x0001, 0x3800, 0x0000),   # min subnormal * 0.5 = tie between 0 and min: even (0)
    (0x0001, 0x3A00, 0x0001),   # min subnormal * 0.75 rounds up to min subnormal
    (0x0003, 0x3800, 0x0002),   # 3 * 2^-24 * 0.5 = 1.5 * 2^-24: tie, even (2 * 2^-24)
    (0x0001, 0x6400, 0x0400),   # min subnormal * 1024 = smallest normal
    (0x03FF, 0x3C01, 0x0400),   # largest subnormal * (1+u) rounds up to smallest normal
    (0x0400, 0x3800, 0x0200),   # smallest normal / 2 = subnormal
    (0x0001, 0x0001, 0x0000),   # subnormal * subnormal underflows to +0
    (0x8001, 0x0001, 0x8000),   # ... to -0
    (0x0000, 0x7C00, 0x7E00),   # 0 * inf = NaN
    (0x8000, 0x3C00, 0x8000),   # -0 * 1 = -0
    (0xFC00, 0xBC00, 0x7C00),   # -inf * -1 = +inf
    (0x7D00, 0x0000, 0x7E00),   # NaN * 0 = canonical NaN
]


@pytest.mark.parametrize("stages", [0, 4])
def test_directed(stages):
    a, b, z = zip(*DIRECTED)
    out = simulate_fields(spec("mul", stages=stages), a=a, b=b)
    got = [int(x) for x in out["z"]]
    bad = [(hex(r[0]), hex(r[1]), hex(g), hex(r[2])) for r, g in zip(DIRECTED, got) if g != r[2]]
    assert not bad, f"(a, b, got, expected): {bad}"


@pytest.mark.parametrize("stages", list(range(len(FPMul.STEPS) + 1)))
def test_suites_every_depth(rng, stages):
    s = spec("mul", stages=stages)
    case = build_case(s, rng, quick_suites(s, 150), total=1500)
    assert check_amaranth(s, case) == []


def test_backpressure_idle_and_tag(rng, seed):
    s = spec("mul", stages=4, backpressure=True, tag_width=3)
    case = build_case(s, rng, quick_suites(s, 80), total=1200)
    assert check_amaranth(s, case, idle=0.25, backpressure=0.5, seed=seed) == []
