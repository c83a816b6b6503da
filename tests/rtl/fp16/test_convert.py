"""FPFromInt and FPToInt in the Amaranth simulator (several widths, both signs, both modes)."""

import pytest

from trident.verify.fp16.units import build_case, check_amaranth, quick_suites, simulate_fields, spec


def test_from_int_directed():
    # 2049, 4098 and 4102 are ties (to the even neighbour); 4099 is above a tie
    values = [0, 1, -1, 2047, 2048, 2049, 2050, 2051, 4097, 4098, 4099, 4102, 32767, -32768,
              -2049]
    expected = [0x0000, 0x3C00, 0xBC00, 0x67FF, 0x6800, 0x6800, 0x6801, 0x6802, 0x6C00,
                0x6C00, 0x6C01, 0x6C02, 0x7800, 0xF800, 0xE800]
    out = simulate_fields(spec("from_i16"), value=values)
    got = [int(x) for x in out["z"]]
    assert got == expected, [(v, hex(g), hex(e)) for v, g, e in zip(values, got, expected) if g != e]


def test_to_int_directed():
    a = [0x3800, 0x3E00, 0x4100, 0xB800, 0xBE00, 0x7BFF, 0xFBFF, 0x7C00, 0xFC00, 0x7E00, 0x77FF, 0x7800]
    rne = [0, 2, 2, 0, -2, 32767, -32768, 32767, -32768, 32767, 32752, 32767]
    rtz = [0, 1, 2, 0, -1, 32767, -32768, 32767, -32768, 32767, 32752, 32767]
    inv = [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 1]
    for name, exp in (("to_i16_rne", rne), ("to_i16_rtz", rtz)):
        out = simulate_fields(spec(name), a=a)
        assert [int(x) for x in out["value"]] == exp, name
        assert [int(x) for x in out["invalid"]] == inv, name


@pytest.mark.parametrize("name", ["from_i16", "from_u16", "from_i32", "from_i8"])
@pytest.mark.parametrize("stages", [0, 2, 4])
def test_from_int(rng, name, stages):
    s = spec(name, stages=stages)
    case = build_case(s, rng, {"boundaries": None}, total=1500)
    assert check_amaranth(s, case) == []


@pytest.mark.parametrize("name", ["to_i16_rne", "to_i16_rtz", "to_u16_rne", "to_i32_rtz", "to_i8_rne"])
@pytest.mark.parametrize("stages", [0, 2, 4])
def test_to_int(rng, name, stages):
    s = spec(name, stages=stages)
    case = build_case(s, rng, {"specials": None}, total=1500)
    assert check_amaranth(s, case) == []


def test_backpressure_idle_and_tag(rng, seed):
    for name in ("from_i16", "to_i16_rne"):
        s = spec(name, stages=3, backpressure=True, tag_width=2)
        case = build_case(s, rng, quick_suites(s, 50), total=800)
        assert check_amaranth(s, case, idle=0.3, backpressure=0.3, seed=seed) == []
