"""binary16 primitives against Berkeley SoftFloat (softfloatpy): random and special values."""
import numpy as np
import pytest
import torch

sf = pytest.importorskip("softfloatpy")

from trident.golden.hw import fp16 as F          # noqa: E402
from trident.golden.hw import scalar as S        # noqa: E402

SPECIALS = [0x0000, 0x8000, 0x0001, 0x8001, 0x0002, 0x0200, 0x03FF, 0x83FF, 0x0400, 0x8400,
            0x1400, 0x3555, 0x3800, 0x3BFF, 0x3C00, 0xBC00, 0x3C01, 0xBC01, 0x3E00, 0x4000,
            0x5BFF, 0x7800, 0x7BFF, 0xFBFF, 0x7C00, 0xFC00, 0x7E00, 0xFE00, 0x7C01, 0x7FFF]


def t16(bits):
    return F.from_bits(torch.tensor(bits, dtype=torch.int32))


def as_list(x):
    return F.bits(x).flatten().tolist()


def rand_bits(n, seed):
    return np.random.default_rng(seed).integers(0, 1 << 16, size=n).tolist()


def finite_rand_bits(n, seed, lo=0x0000, hi=0x7BFF):
    rng = np.random.default_rng(seed)
    mag = rng.integers(lo, hi + 1, size=n)
    return (mag | (rng.integers(0, 2, size=n) << 15)).tolist()


def pairs():
    a = [x for x in SPECIALS for _ in SPECIALS] + rand_bits(20000, 1) + finite_rand_bits(20000, 2)
    b = [y for _ in SPECIALS for y in SPECIALS] + rand_bits(20000, 3) + finite_rand_bits(20000, 4)
    return a, b


@pytest.mark.parametrize("name", ["add", "sub", "mul"])
def test_binary_ops_match_softfloat(name):
    a, b = pairs()
    got = as_list(getattr(F, name)(t16(a), t16(b)))
    ref = [getattr(S, name)(x, y) for x, y in zip(a, b)]
    bad = [(hex(x), hex(y), hex(g), hex(r)) for x, y, g, r in zip(a, b, got, ref) if g != r]
    assert not bad, bad[:10]


def test_add_exhaustive_in_first_operand():
    a = list(range(1 << 16))
    for b in (0x3C00, 0x8001):          # 1.0 and −(smallest subnormal)
        got = as_list(F.add(t16(a), t16([b] * len(a))))
        ref = [S.add(x, b) for x in a]
        assert got == ref


def _fma_cases():
    sp = SPECIALS[::2] + [0x3C01, 0x7C00, 0x7E00]
    a = [x for x in sp for _ in sp for _ in sp]
    b = [y for _ in sp for y in sp for _ in sp]
    c = [z for _ in sp for _ in sp for z in sp]
    rng = np.random.default_rng(5)
    a += rand_bits(10000, 6) + finite_rand_bits(10000, 7)
    b += rand_bits(10000, 8) + finite_rand_bits(10000, 9)
    c += rand_bits(10000, 10) + finite_rand_bits(10000, 11)
    # ties of the product broken only by a tiny addend: the double-rounding trap
    n = 4000
    mant = rng.integers(0, 1024, size=(2, n))
    exp = rng.integers(10, 20, size=(2, n))
    a += ((exp[0] << 10) | mant[0]).tolist()
    b += ((exp[1] << 10) | mant[1]).tolist()
    c += (rng.integers(1, 0x0400, size=n) | (rng.integers(0, 2, size=n) << 15)).tolist()
    return a, b, c


def test_fma_matches_softfloat():
    a, b, c = _fma_cases()
    got = as_list(F.fma(t16(a), t16(b), t16(c)))
    ref = [S.fma(x, y, z) for x, y, z in zip(a, b, c)]
    bad = [(hex(x), hex(y), hex(z), hex(g), hex(r)) for x, y, z, g, r in zip(a, b, c, got, ref) if g != r]
    assert not bad, bad[:10]


def test_fma_scaled_matches_softfloat_binary128():
    rng = np.random.default_rng(12)
    n = 6000
    lr = finite_rand_bits(n, 13, 0x0001, 0x3C00)
    g = finite_rand_bits(n, 14) + []
    w = finite_rand_bits(n, 15)
    shifts = rng.integers(0, 16, size=n).tolist()
    lr += [0x2E66] * len(SPECIALS) ** 2
    g += [x for x in SPECIALS for _ in SPECIALS]
    w += [y for _ in SPECIALS for y in SPECIALS]
    shifts += [10] * len(SPECIALS) ** 2
    for sh in sorted(set(shifts)):
        idx = [i for i, s in enumerate(shifts) if s == sh]
        got = as_list(F.fma_scaled(t16([lr[i] for i in idx]), t16([g[i] for i in idx]), t16([w[i] for i in idx]), sh))
        ref = [S.fma_scaled(lr[i], g[i], w[i], sh) for i in idx]
        assert got == ref, sh


def test_round16_from_float64_matches_softfloat():
    rng = np.random.default_rng(16)
    # binary16 midpoints, nudged by tiny amounts (where a float32 detour would double-round)
    h = np.array(finite_rand_bits(5000, 17), dtype=np.uint16).view(np.float16).astype(np.float64)
    ulp = np.spacing(h.astype(np.float16)).astype(np.float64)
    mids = h + ulp / 2
    x = np.concatenate([mids, mids * (1 + 2.0 ** -40), mids * (1 - 2.0 ** -40), rng.standard_normal(5000),
                        rng.standard_normal(2000) * 2.0 ** -20, [65519.99, 65520.0, 2.0 ** -25, -2.0 ** -25,
                                                                 3 * 2.0 ** -26, 0.0, -0.0, np.inf, -np.inf, np.nan]])
    got = as_list(F.round16(x))
    ref = [S.from_float(v) for v in x.tolist()]
    assert got == ref


def test_torch_float32_to_half_is_rne():
    # used by the host's loss gradient and the WG analog terms
    rng = np.random.default_rng(18)
    x = np.concatenate([rng.standard_normal(20000).astype(np.float32) * np.float32(2.0) ** rng.integers(-30, 17, 20000),
                        np.array([65519.996, 65520.0, 2.0 ** -25, 2.0 ** -26 * 3], dtype=np.float32)]).astype(np.float32)
    got = as_list(torch.from_numpy(x).half())
    ref = [S.bits(sf.f32_to_f16(sf.Float32.from_float(float(v)))) for v in x.tolist()]
    assert got == ref


def test_compare_and_max0():
    a, b = pairs()
    ta, tb = t16(a), t16(b)
    assert F.ge(ta, tb).tolist() == [S.ge(x, y) for x, y in zip(a, b)]
    assert F.gt(ta, tb).tolist() == [S.gt(x, y) for x, y in zip(a, b)]
    assert F.lt(ta, tb).tolist() == [S.lt(x, y) for x, y in zip(a, b)]
    assert as_list(F.max0(ta)) == [S.max0(x) for x in a]
    assert as_list(F.absolute(ta)) == [S.absolute(x) for x in a]
    assert as_list(F.neg(ta)) == [S.neg(x) for x in a]


def test_nan_is_canonical_and_constants_round_once():
    x = F.add(t16([0x7C00, 0x7C01, 0xFE00]), t16([0xFC00, 0x3C00, 0x3C00]))
    assert as_list(x) == [F.NAN_BITS] * 3
    assert int(F.bits(F.const(0.1))) == 0x2E66
    assert int(F.bits(F.const(1 + 2.0 ** -11 + 2.0 ** -40))) == 0x3C01   # torch's float64 cast gives 0x3C00
