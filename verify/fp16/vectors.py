"""FP16 test-vector generators: special values, ties, overflow/underflow, random patterns.

Every generator returns NumPy ``uint16`` arrays of bit patterns and takes a
``numpy.random.Generator`` so a run is reproducible from one seed.  The expected results
never come from here: :mod:`.oracle` computes them.
"""

import numpy as np

__all__ = [
    "SPECIALS", "f16", "fields", "special_pairs", "special_triples", "random_bits",
    "biased", "exact_value", "is_tie", "ties_add", "ties_mul", "ties_fma",
    "add_overflow", "add_underflow", "add_cancellation", "mul_overflow", "mul_underflow",
    "mul_subnormal_operand", "fma_cancellation", "fma_alignment", "fma_tiny",
    "compare_pairs", "int_boundaries", "to_int_specials", "exhaustive", "sweep_pairs",
]

#: The special values every op is checked on, all pairs (all triples for FMA).
SPECIALS = np.array([
    0x0000, 0x8000,          # +-0
    0x0001, 0x8001,          # +-smallest subnormal
    0x03FF, 0x83FF,          # +-largest subnormal
    0x0400, 0x8400,          # +-smallest normal
    0x3C00, 0xBC00,          # +-1
    0x3C01, 0xBBFF,          # 1 + ulp, -(1 - ulp/2)
    0x7BFF, 0xFBFF,          # +-largest finite
    0x7C00, 0xFC00,          # +-inf
    0x7E00, 0xFE00,          # quiet NaNs
    0x7C01, 0xFD55,          # signalling NaNs
    0x7FFF, 0x4000,          # NaN with full payload, 2
], dtype=np.uint16)


def f16(sign, exponent, mantissa):
    """Compose bit patterns from fields (arrays broadcast)."""
    sign = np.asarray(sign, dtype=np.uint32) & 1
    exponent = np.asarray(exponent, dtype=np.uint32) & 0x1F
    mantissa = np.asarray(mantissa, dtype=np.uint32) & 0x3FF
    return ((sign << 15) | (exponent << 10) | mantissa).astype(np.uint16)


def fields(bits):
    """(sign, exponent, mantissa) of bit patterns."""
    bits = np.asarray(bits, dtype=np.uint32)
    return bits >> 15, (bits >> 10) & 0x1F, bits & 0x3FF


def special_pairs():
    """All ordered pairs of :data:`SPECIALS` as (a, b)."""
    a, b = np.meshgrid(SPECIALS, SPECIALS, indexing="ij")
    return a.ravel(), b.ravel()


def special_triples():
    """All ordered triples of :data:`SPECIALS` as (a, b, c)."""
    a, b, c = np.meshgrid(SPECIALS, SPECIALS, SPECIALS, indexing="ij")
    return a.ravel(), b.ravel(), c.ravel()


def random_bits(rng, n):
    """Uniform random 16-bit patterns."""
    return rng.integers(0, 1 << 16, n, dtype=np.uint32).astype(np.uint16)


_EXP_HOT = np.array([0, 0, 1, 1, 2, 13, 14, 15, 16, 17, 28, 29, 30, 30, 31])
_MANT_HOT = np.array([0, 1, 2, 0x1FF, 0x200, 0x201, 0x3FE, 0x3FF])


def biased(rng, n, exponents=None, nan_inf=True):
    """Random values concentrated on interesting exponents and mantissas.

    Half of the exponents come from ``exponents`` (default: 0, 1, 2, 13-17, 28-31),
    the rest uniformly; a quarter of the mantissas are boundary patterns (0, 1, 0x200,
    0x3FF, ...), a quarter sparse (few bits set), the rest uniform.
    """
    hot = _EXP_HOT if exponents is None else np.asarray(exponents)
    exp = np.where(rng.random(n) < 0.5, rng.choice(hot, n), rng.integers(0, 32, n))
    if not nan_inf:
        exp = np.minimum(exp, 30)
    kind = rng.integers(0, 4, n)
    mant = rng.integers(0, 1 << 10, n)
    mant = np.where(kind == 0, rng.choice(_MANT_HOT, n), mant)
    sparse = (rng.random((n, 10)) < 0.15) @ (1 << np.arange(10))
    mant = np.where(kind == 1, sparse, mant)
    return f16(rng.integers(0, 2, n), exp, mant)


def _sparse_mantissa(rng, n, density=0.2):
    return (rng.random((n, 10)) < density) @ (1 << np.arange(10))


# ---- exact values and ties ---------------------------------------------------------

def exact_value(bits):
    """Exact value of one finite FP16 pattern as ``(integer, exponent)``: v = i * 2**e."""
    bits = int(bits)
    s, e, m = bits >> 15, (bits >> 10) & 0x1F, bits & 0x3FF
    sig = m | (0x400 if e else 0)
    val = -sig if s else sig
    return val, max(e, 1) - 25


def is_tie(integer, exponent):
    """True when ``integer * 2**exponent`` lies exactly halfway between two FP16 values."""
    mag = abs(int(integer))
    if mag == 0:
        return False
    binade = mag.bit_length() - 1 + exponent
    half_ulp = max(binade - 10, -24) - 1
    shift = half_ulp - exponent
    if shift < 0:
        return False
    tz = (mag & -mag).bit_length() - 1
    return tz == shift


def _finite(bits):
    return (np.asarray(bits, dtype=np.uint32) & 0x7C00) != 0x7C00


def _tie_mask_f64(values):
    """Vectorised :func:`is_tie` for exactly representable float64 values."""
    v = np.abs(values)
    out = np.zeros(v.shape, dtype=bool)
    nz = (v > 0) & np.isfinite(v)
    m, e = np.frexp(v[nz])                      # v = m * 2^e, m in [0.5, 1)
    mag = (m * 2.0 ** 53).astype(np.int64)      # exact: 53-bit significand
    exp = e - 53
    binade = e - 1
    half_ulp = np.maximum(binade - 10, -24) - 1
    shift = half_ulp - exp
    low = mag & -mag
    tz = np.log2(low.astype(np.float64)).astype(np.int64)
    out[nz] = (shift >= 0) & (tz == shift)
    return out


def ties_add(rng, n, candidates=None):
    """Pairs (a, b, sub) whose exact sum/difference is a rounding tie."""
    got_a, got_b, got_s = [], [], []
    total = 0
    for _ in range(50):
        k = candidates or max(4 * n, 20000)
        ea = rng.integers(1, 31, k)
        eb = np.clip(ea - rng.integers(0, 14, k), 0, 30)
        a = f16(rng.integers(0, 2, k), ea, _sparse_mantissa(rng, k, 0.25))
        b = f16(rng.integers(0, 2, k), eb, _sparse_mantissa(rng, k, 0.25))
        swap = rng.random(k) < 0.5
        a, b = np.where(swap, b, a), np.where(swap, a, b)
        sub = rng.integers(0, 2, k).astype(np.uint8)
        va = a.view(np.float16).astype(np.float64)
        vb = b.view(np.float16).astype(np.float64)
        v = np.where(sub == 1, va - vb, va + vb)      # exact in float64
        keep = _tie_mask_f64(v)
        got_a.append(a[keep]); got_b.append(b[keep]); got_s.append(sub[keep])
        total += int(keep.sum())
        if total >= n:
            break
    return (np.concatenate(got_a)[:n], np.concatenate(got_b)[:n],
            np.concatenate(got_s)[:n])


def ties_mul(rng, n):
    """Pairs (a, b) whose exact product is a rounding tie (normal and subnormal results)."""
    got_a, got_b = [], []
    total = 0
    for _ in range(50):
        k = max(4 * n, 20000)
        esum = rng.integers(2, 47, k)              # result exponents from deep subnormal up
        ea = np.clip(rng.integers(1, 31, k), np.maximum(esum - 30, 0), np.minimum(esum - 1, 30))
        eb = np.clip(esum - ea, 0, 30)
        a = f16(rng.integers(0, 2, k), ea, _sparse_mantissa(rng, k, 0.3))
        b = f16(rng.integers(0, 2, k), eb, rng.integers(0, 1024, k))
        va = a.view(np.float16).astype(np.float64)
        vb = b.view(np.float16).astype(np.float64)
        keep = _tie_mask_f64(va * vb)              # exact: 22-bit product
        got_a.append(a[keep]); got_b.append(b[keep])
        total += int(keep.sum())
        if total >= n:
            break
    return np.concatenate(got_a)[:n], np.concatenate(got_b)[:n]


def _exact_fma(a, b, c, neg_prod=0, neg_c=0):
    ia, xa = exact_value(a)
    ib, xb = exact_value(b)
    ic, xc = exact_value(c)
    prod = ia * ib * (-1 if neg_prod else 1)
    add = ic * (-1 if neg_c else 1)
    base = min(xa + xb, xc)
    return (prod << (xa + xb - base)) + (add << (xc - base)), base


def ties_fma(rng, n):
    """Triples (a, b, c) whose exact ``a*b + c`` is a rounding tie."""
    out = []
    for _ in range(200):
        k = max(4 * n, 5000)
        ea = rng.integers(1, 31, k)
        eb = rng.integers(1, 31, k)
        ep = ea + eb - 15
        ec = np.clip(ep + rng.integers(-13, 14, k), 0, 30)
        a = f16(rng.integers(0, 2, k), ea, _sparse_mantissa(rng, k, 0.2))
        b = f16(rng.integers(0, 2, k), eb, _sparse_mantissa(rng, k, 0.2))
        c = f16(rng.integers(0, 2, k), ec, _sparse_mantissa(rng, k, 0.3))
        ok = _finite(a) & _finite(b) & _finite(c)
        for x, y, z in zip(a[ok].tolist(), b[ok].tolist(), c[ok].tolist()):
            if is_tie(*_exact_fma(x, y, z)):
                out.append((x, y, z))
        if len(out) >= n:
            break
    arr = np.array(out[:n], dtype=np.uint16).reshape(-1, 3)
    return arr[:, 0], arr[:, 1], arr[:, 2]


# ---- overflow / underflow / cancellation -------------------------------------------

def add_overflow(rng, n):
    """Large operands of the same effective sign: sums near and beyond 65504."""
    a = f16(rng.integers(0, 2, n), rng.integers(28, 31, n), rng.integers(0, 1024, n))
    b = f16(rng.integers(0, 2, n), rng.integers(25, 31, n), rng.integers(0, 1024, n))
    a[: n // 8] = np.where(rng.random(n // 8) < 0.5, 0x7BFF, 0xFBFF)
    sub = rng.integers(0, 2, n).astype(np.uint8)
    return a, b, sub


def add_underflow(rng, n):
    """Subnormal and smallest-normal operands: subnormal results, normal <-> subnormal."""
    a = f16(rng.integers(0, 2, n), rng.integers(0, 3, n), rng.integers(0, 1024, n))
    b = f16(rng.integers(0, 2, n), rng.integers(0, 3, n), rng.integers(0, 1024, n))
    sub = rng.integers(0, 2, n).astype(np.uint8)
    return a, b, sub


def add_cancellation(rng, n):
    """a - b with b within a few ulps of a (massive cancellation, exact zeros)."""
    a = biased(rng, n, nan_inf=False)
    delta = rng.integers(-4, 5, n)
    b = ((a.astype(np.int32) & 0x7FFF) + delta).clip(0, 0x7BFF)
    b = (b | (a.astype(np.int32) & 0x8000)).astype(np.uint16)
    sub = np.ones(n, dtype=np.uint8)
    flip = rng.random(n) < 0.5                  # or a + (-b)
    b = np.where(flip, b ^ 0x8000, b).astype(np.uint16)
    sub = np.where(flip, 0, sub).astype(np.uint8)
    return a, b, sub


def mul_overflow(rng, n):
    """Exponent sums around the overflow threshold."""
    esum = rng.integers(43, 49, n)
    ea = np.clip(rng.integers(13, 31, n), esum - 30, 30)
    eb = np.clip(esum - ea, 1, 30)
    a = f16(rng.integers(0, 2, n), ea, rng.integers(0, 1024, n))
    b = f16(rng.integers(0, 2, n), eb, rng.integers(0, 1024, n))
    return a, b


def mul_underflow(rng, n):
    """Exponent sums from the smallest normal down below the smallest subnormal."""
    esum = rng.integers(2, 19, n)
    ea = np.clip(rng.integers(1, 18, n), 1, np.maximum(esum - 1, 1))
    eb = np.clip(esum - ea, 0, 30)
    a = f16(rng.integers(0, 2, n), ea, rng.integers(0, 1024, n))
    b = f16(rng.integers(0, 2, n), eb, rng.integers(0, 1024, n))
    return a, b


def mul_subnormal_operand(rng, n):
    """One subnormal operand times any finite value (left normalisation)."""
    a = f16(rng.integers(0, 2, n), 0, rng.integers(1, 1024, n))
    b = f16(rng.integers(0, 2, n), rng.integers(0, 31, n), rng.integers(0, 1024, n))
    swap = rng.random(n) < 0.5
    return np.where(swap, b, a).astype(np.uint16), np.where(swap, a, b).astype(np.uint16)


def fma_cancellation(rng, n):
    """c close to -(a*b): the product rounded, nudged by a few ulps (deep cancellation)."""
    a = biased(rng, n, exponents=np.arange(5, 26), nan_inf=False)
    b = biased(rng, n, exponents=np.arange(5, 26), nan_inf=False)
    with np.errstate(all="ignore"):
        p = (a.view(np.float16).astype(np.float64) * b.view(np.float16).astype(np.float64))
        p16 = p.astype(np.float16).view(np.uint16).astype(np.int32)
    delta = rng.integers(-3, 4, n)
    mag = np.clip((p16 & 0x7FFF) + delta, 0, 0x7BFF)
    c = ((p16 & 0x8000) ^ 0x8000 | mag).astype(np.uint16)
    return a, b, c


def fma_alignment(rng, n):
    """Addend exponents from far below to far above the product's (every shift amount)."""
    ea = rng.integers(0, 31, n)
    eb = rng.integers(0, 31, n)
    ep = np.maximum(ea, 1) + np.maximum(eb, 1) - 15
    ec = np.clip(ep + rng.integers(-30, 31, n), 0, 30)
    a = f16(rng.integers(0, 2, n), ea, rng.integers(0, 1024, n))
    b = f16(rng.integers(0, 2, n), eb, rng.integers(0, 1024, n))
    c = f16(rng.integers(0, 2, n), ec, rng.integers(0, 1024, n))
    return a, b, c


def fma_tiny(rng, n):
    """Subnormal products and addends, results around the subnormal range."""
    a = f16(rng.integers(0, 2, n), rng.integers(0, 12, n), rng.integers(0, 1024, n))
    b = f16(rng.integers(0, 2, n), rng.integers(0, 12, n), rng.integers(0, 1024, n))
    c = f16(rng.integers(0, 2, n), rng.integers(0, 3, n), rng.integers(0, 1024, n))
    return a, b, c


def compare_pairs(rng, n):
    """Equal values, neighbours (±1 ulp), sign flips and ±0 pairs."""
    a = biased(rng, n)
    kind = rng.integers(0, 4, n)
    step = rng.integers(-1, 2, n)
    neighbour = ((a.astype(np.int32) & 0x7FFF) + step).clip(0, 0x7FFF) | (a.astype(np.int32) & 0x8000)
    b = np.where(kind == 0, a, np.where(kind == 1, neighbour, np.where(kind == 2, a ^ 0x8000,
                                                                         biased(rng, n))))
    return a, b.astype(np.uint16)


def int_boundaries(width, signed):
    """Integers around powers of two, rounding ties and the ends of the range."""
    lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
    vals = set()
    for k in range(width + 1):
        for d in (-3, -2, -1, 0, 1, 2, 3):
            vals.add((1 << k) + d)
            vals.add(-(1 << k) + d)
    for k in range(11, width + 1):            # ties: 2^k + odd * 2^(k-11)
        for j in (1, 3, 5):
            vals.add((1 << k) + j * (1 << (k - 11)))
            vals.add(-((1 << k) + j * (1 << (k - 11))))
    vals.update((0, lo, hi, lo + 1, hi - 1, 65504, 65519, 65520, 65535, -65504, -65520))
    return np.array(sorted(v for v in vals if lo <= v <= hi), dtype=np.int64)


def to_int_specials():
    """FP16 values around integer rounding decisions and integer-range ends."""
    vals = [float(k) + d for k in range(-8, 9) for d in (-0.5, -0.25, 0.0, 0.25, 0.5, 0.75)]
    for p in (7, 8, 15, 16):
        for d in (-2, -1, -0.5, 0, 0.5, 1, 2):
            vals += [2.0 ** p + d, -(2.0 ** p) + d]
    vals += [65504.0, -65504.0, 32752.0, -32752.0, 32768.0, -32768.0, 0.49951171875]
    vals = [v for v in vals if abs(v) <= 65504.0]
    bits = np.array(vals, dtype=np.float16).view(np.uint16)
    return np.unique(np.concatenate([bits, SPECIALS]))


def exhaustive():
    """All 65,536 FP16 bit patterns."""
    return np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)


def sweep_pairs(fixed):
    """Every pattern against each value of ``fixed``, both operand orders: (a, b)."""
    allv = exhaustive()
    fixed = np.asarray(fixed, dtype=np.uint16)
    a = np.concatenate([np.repeat(allv, len(fixed)), np.tile(fixed, len(allv))])
    b = np.concatenate([np.tile(fixed, len(allv)), np.repeat(allv, len(fixed))])
    return a, b
