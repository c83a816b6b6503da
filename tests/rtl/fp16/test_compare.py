"""FPCompare in the Amaranth simulator."""

import pytest

from trident.verify.fp16.units import build_case, check_amaranth, quick_suites, simulate_fields, spec

DIRECTED = [   # (a, b, equal, less, less_equal, unordered, min, max)
    (0x3C00, 0x4000, 0, 1, 1, 0, 0x3C00, 0x4000),
    (0x4000, 0x3C00, 0, 0, 0, 0, 0x3C00, 0x4000),
    (0x8000, 0x0000, 1, 0, 1, 0, 0x8000, 0x0000),   # -0 == +0, but min is -0
    (0x0000, 0x8000, 1, 0, 1, 0, 0x8000, 0x0000),
    (0xC000, 0xBC00, 0, 1, 1, 0, 0xC000, 0xBC00),   # -2 < -1
    (0x7E00, 0x3C00, 0, 0, 0, 1, 0x3C00, 0x3C00),   # NaN is ignored by min/max
    (0x3C00, 0x7C01, 0, 0, 0, 1, 0x3C00, 0x3C00),   # signalling NaN too
    (0xFE00, 0x7C01, 0, 0, 0, 1, 0x7E00, 0x7E00),   # two NaNs: canonical NaN
    (0xFC00, 0x7C00, 0, 1, 1, 0, 0xFC00, 0x7C00),
    (0x0001, 0x0001, 1, 0, 1, 0, 0x0001, 0x0001),
]
FIELDS = ("equal", "less", "less_equal", "unordered", "min", "max")


@pytest.mark.parametrize("stages", [0, 1, 2])
def test_directed(stages):
    a, b = zip(*[(r[0], r[1]) for r in DIRECTED])
    out = simulate_fields(spec("compare", stages=stages), a=a, b=b)
    for k, row in enumerate(DIRECTED):
        got = tuple(int(out[f][k]) for f in FIELDS)
        assert got == row[2:], f"a={row[0]:#06x} b={row[1]:#06x}: got {got} expected {row[2:]}"


@pytest.mark.parametrize("stages", [0, 1, 2])
def test_suites(rng, stages):
    s = spec("compare", stages=stages)
    case = build_case(s, rng, quick_suites(s, 400), total=2000)
    assert check_amaranth(s, case) == []


def test_backpressure_idle_and_tag(rng, seed):
    s = spec("compare", stages=0, backpressure=True, tag_width=4)
    case = build_case(s, rng, quick_suites(s, 100), total=1000)
    assert check_amaranth(s, case, idle=0.3, backpressure=0.3, seed=seed) == []
