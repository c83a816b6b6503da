"""FPFMA in the Amaranth simulator: directed cases, every vector suite, several depths."""

import pytest

from trident.rtl.fp16 import FPFMA
from trident.verify.fp16.units import build_case, check_amaranth, quick_suites, simulate_fields, spec

DIRECTED = [   # (a, b, c, neg_prod, neg_c, expected z)
    (0x3C00, 0x3C00, 0x3C00, 0, 0, 0x4000),   # 1*1 + 1
    (0x3C02, 0x3C02, 0xBC00, 0, 0, 0x1C01),   # (1+2u)^2 - 1 = 4u + 4u^2 exactly (fused;
                                              # separate mul+add would give 4u = 0x1C00)
    (0x3C01, 0x3C01, 0xBC00, 0, 0, 0x1800),   # (1+u)^2 - 1 = 2u + u^2: tie, even (2u)
    (0x3C00, 0x3C00, 0x3C00, 0, 1, 0x0000),   # 1*1 - 1 = +0
    (0x3C00, 0x3C00, 0x3C00, 1, 0, 0x0000),   # -(1*1) + 1 = +0
    (0x3C00, 0x3C00, 0x3C00, 1, 1, 0xC000),   # -(1*1) - 1 = -2
    (0x8000, 0x3C00, 0x8000, 0, 0, 0x8000),   # -0*1 + -0 = -0
    (0x0000, 0x3C00, 0x8000, 0, 0, 0x0000),   # +0*1 + -0 = +0
    (0x0000, 0x7BFF, 0x0001, 0, 0, 0x0001),   # 0*max + min subnormal = min subnormal
    (0x0001, 0x3800, 0x0000, 0, 0, 0x0000),   # tiny product tie -> 0 (even)
    (0x7BFF, 0x3C00, 0x7BFF, 0, 0, 0x7C00),   # max + max overflows
    (0x7BFF, 0x4000, 0xFBFF, 0, 0, 0x7BFF),   # 2*max - max = max (no intermediate overflow)
    (0x7C00, 0x0000, 0x3C00, 0, 0, 0x7E00),   # inf*0 + 1 = NaN
    (0x7C00, 0x3C00, 0xFC00, 0, 0, 0x7E00),   # inf - inf = NaN
    (0x7C00, 0x3C00, 0x7C00, 0, 0, 0x7C00),   # inf + inf = inf
    (0x3C00, 0x3C00, 0x7E01, 0, 0, 0x7E00),   # NaN addend -> canonical NaN
    (0x0400, 0x3400, 0x8001, 0, 0, 0x00FF),   # 2^-14 * 2^-2 - 2^-24 = subnormal, exact
]


@pytest.mark.parametrize("stages", [0, 6])
def test_directed(stages):
    a, b, c, np_, nc, z = zip(*DIRECTED)
    out = simulate_fields(spec("fma", stages=stages), a=a, b=b, c=c, neg_prod=np_, neg_c=nc)
    got = [int(x) for x in out["z"]]
    bad = [tuple(hex(v) for v in r[:3]) + r[3:5] + (hex(g), hex(r[5]))
           for r, g in zip(DIRECTED, got) if g != r[5]]
    assert not bad, f"(a, b, c, neg_prod, neg_c, got, expected): {bad}"


def test_special_triples(rng):
    s = spec("fma")
    case = build_case(s, rng, {"specials": None})
    assert len(case) == 22 ** 3
    assert check_amaranth(s, case) == []


@pytest.mark.parametrize("stages", list(range(len(FPFMA.STEPS) + 1)))
def test_suites_every_depth(rng, stages):
    s = spec("fma", stages=stages)
    suites = {k: n for k, n in quick_suites(s, 200).items() if k != "specials"}
    case = build_case(s, rng, suites, total=1500)
    assert check_amaranth(s, case) == []


def test_backpressure_idle_and_tag(rng, seed):
    s = spec("fma", stages=5, backpressure=True, tag_width=8)
    suites = {k: n for k, n in quick_suites(s, 100).items() if k != "specials"}
    case = build_case(s, rng, suites, total=1200)
    assert check_amaranth(s, case, idle=0.2, backpressure=0.3, seed=seed) == []
