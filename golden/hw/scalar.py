"""The contract, one scalar operation at a time, on Berkeley SoftFloat (softfloatpy).

An executable copy of docs/numerics.md written for clarity, not speed: plain loops in the
documented order over 16-bit patterns (Python ints), every arithmetic operation a SoftFloat
call in round-to-nearest-even, NaN results replaced by ``0x7E00``.  The vectorised kernels are
tested against it bit for bit on small layers, and RTL testbenches can use it per transaction.
Needs the ``hw`` extra (``softfloatpy``).

Orders here are enumerated from their definitions (sorted flat indices), independently of the
loop nests the vectorised kernels use.
"""
from __future__ import annotations

import math
from fractions import Fraction

import softfloatpy as sf

NAN = 0x7E00
ZERO = 0x0000


def f16(b: int) -> sf.Float16:
    return sf.Float16.from_bytes((int(b) & 0xFFFF).to_bytes(2, "big"))


def bits(x: sf.Float16) -> int:
    b = int.from_bytes(x.to_bytes(), "big")
    return NAN if sf.f16_is_nan(x) else b


def value(b: int) -> float:
    """The exact value (float64 holds every binary16 exactly)."""
    return sf.f16_to_f64(f16(b)).to_float()


def is_nan(b: int) -> bool:
    return (b & 0x7FFF) > 0x7C00


def is_zero(b: int) -> bool:
    return (b & 0x7FFF) == 0


def _rne():
    sf.set_rounding_mode(sf.RoundingMode.NEAR_EVEN)


def add(a, b):
    _rne()
    return bits(sf.f16_add(f16(a), f16(b)))


def sub(a, b):
    _rne()
    return bits(sf.f16_sub(f16(a), f16(b)))


def mul(a, b):
    _rne()
    return bits(sf.f16_mul(f16(a), f16(b)))


def fma(a, b, c):
    """``RNE(a·b + c)``."""
    _rne()
    return bits(sf.f16_mul_add(f16(a), f16(b), f16(c)))


def neg(a):
    return (a ^ 0x8000) if not is_nan(a) else NAN


def absolute(a):
    return (a & 0x7FFF) if not is_nan(a) else NAN


def ge(a, b) -> bool:
    return bool(sf.f16_le_quiet(f16(b), f16(a)))


def gt(a, b) -> bool:
    return bool(sf.f16_lt_quiet(f16(b), f16(a)))


def lt(a, b) -> bool:
    return bool(sf.f16_lt_quiet(f16(a), f16(b)))


def max0(a):
    return a if gt(a, ZERO) else ZERO


def from_float(x: float) -> int:
    """``RNE(x)`` for a Python float (SoftFloat f64 → f16)."""
    _rne()
    return bits(sf.f64_to_f16(sf.Float64.from_float(float(x))))


def _f128(b: int) -> sf.Float128:
    return sf.f16_to_f128(f16(b))


def round_units(q: int, fraction_bits: int = 24) -> int:
    """Round the exact value ``q · 2^−fraction_bits`` (``|q| < 2^63``) to binary16 once."""
    _rne()
    x = sf.i64_to_f128(sf.Int64.from_int(int(q)))                             # exact (113 bits)
    x = sf.f128_mul(x, sf.Float128.from_float(2.0 ** -fraction_bits))        # exact
    return bits(sf.f128_to_f16(x))


def fma_scaled(lr, g, w, shift: int):
    """``RNE(w − lr·g·2^−shift)`` once (the SGD update), through exact binary128 steps."""
    _rne()
    if is_nan(lr) or is_nan(g) or is_nan(w):
        return NAN
    p = sf.f128_mul(_f128(lr), _f128(g))                              # exact: 22 bits
    p = sf.f128_mul(p, sf.Float128.from_float(2.0 ** -shift))          # exact: exponent only
    return bits(sf.f128_to_f16(sf.f128_sub(_f128(w), p)))


# --------------------------------------------------------------------------- engines
def fc_forward(weight, inputs, mac: bool):
    """``weight[j][i]``, ``inputs[r][i]`` (0/1 spikes, or binary16 patterns if ``mac``)."""
    out = []
    for row in inputs:
        out_row = []
        for wj in weight:
            acc = ZERO
            for i in range(len(row)):                                   # ascending input index
                if mac:
                    if not is_zero(row[i]):
                        acc = fma(wj[i], row[i], acc)
                elif row[i]:
                    acc = add(acc, wj[i])
            out_row.append(acc)
        out.append(out_row)
    return out


def fc_backward(weight, di):
    """``δS[r][i] = Σ_j (ascending, δI ≠ 0) fma(W[j][i], δI[r][j], acc)``."""
    n_in = len(weight[0])
    out = []
    for row in di:
        res = []
        for i in range(n_in):
            acc = ZERO
            for j in range(len(row)):
                if not is_zero(row[j]):
                    acc = fma(weight[j][i], row[j], acc)
            res.append(acc)
        out.append(res)
    return out


def conv_forward(weight, inputs, stride, padding, mac: bool):
    """``weight[co][c][ky][kx]``, ``inputs[r][c][y][x]``; the receptive field of every output
    is enumerated and sorted by flat input index (c, iy, ix)."""
    co_n, c_n, k = len(weight), len(weight[0]), len(weight[0][0])
    out = []
    for img in inputs:
        h, w = len(img[0]), len(img[0][0])
        ho, wo = (h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1
        res = [[[ZERO] * wo for _ in range(ho)] for _ in range(co_n)]
        for co in range(co_n):
            for y in range(ho):
                for x in range(wo):
                    field = []
                    for c in range(c_n):
                        for ky in range(k):
                            for kx in range(k):
                                iy, ix = y * stride - padding + ky, x * stride - padding + kx
                                if 0 <= iy < h and 0 <= ix < w:
                                    field.append(((c * h + iy) * w + ix, weight[co][c][ky][kx], img[c][iy][ix]))
                    acc = ZERO
                    for _, wv, xv in sorted(field):
                        if mac:
                            if not is_zero(xv):
                                acc = fma(wv, xv, acc)
                        elif xv:
                            acc = add(acc, wv)
                    res[co][y][x] = acc
        out.append(res)
    return out


def conv_backward(weight, di, in_hw, stride, padding):
    """Transposed conv: for every input, all outputs that read it, sorted by flat output index."""
    co_n, c_n, k = len(weight), len(weight[0]), len(weight[0][0])
    h, w = in_hw
    out = []
    for d in di:
        ho, wo = len(d[0]), len(d[0][0])
        res = [[[ZERO] * w for _ in range(h)] for _ in range(c_n)]
        for c in range(c_n):
            for iy in range(h):
                for ix in range(w):
                    terms = []
                    for co in range(co_n):
                        for y in range(ho):
                            for x in range(wo):
                                ky, kx = iy + padding - y * stride, ix + padding - x * stride
                                if 0 <= ky < k and 0 <= kx < k:
                                    terms.append(((co * ho + y) * wo + x, weight[co][c][ky][kx], d[co][y][x]))
                    acc = ZERO
                    for _, wv, dv in sorted(terms):
                        if not is_zero(dv):
                            acc = fma(wv, dv, acc)
                    res[c][iy][ix] = acc
        out.append(res)
    return out


def exact_sum_round(terms) -> int:
    """The WG accumulator: exact sum of binary16 terms, one rounding (specials by the rule)."""
    total = 0                                   # units of 2^-24
    nan = pinf = ninf = False
    for t in terms:
        if is_nan(t):
            nan = True
        elif (t & 0x7FFF) == 0x7C00:
            pinf, ninf = pinf or not (t & 0x8000), ninf or bool(t & 0x8000)
        else:
            total += int(Fraction(value(t)) * 2 ** 24)
    if nan or (pinf and ninf):
        return NAN
    if pinf:
        return 0x7C00
    if ninf:
        return 0xFC00
    return round_units(total)


def fc_weight_grad(di, inputs, mac: bool):
    """``g[j][i]`` over all rows r: terms ``δI[r][j]`` (spike) or ``RNE(δI·x)`` (MAC)."""
    n_out, n_in = len(di[0]), len(inputs[0])
    g = []
    for j in range(n_out):
        row = []
        for i in range(n_in):
            terms = []
            for r in range(len(di)):
                d, x = di[r][j], inputs[r][i]
                if is_zero(d):
                    continue
                if mac:
                    if not is_zero(x):
                        terms.append(mul(d, x))
                elif x:
                    terms.append(d)
            row.append(exact_sum_round(terms))
        g.append(row)
    return g


# --------------------------------------------------------------------------- neuron unit
def surrogate(name: str, regs: dict, x: int) -> int:
    """``h(x)`` with the registers of :meth:`HwSurrogate.registers`."""
    a = regs["alpha"]
    if name == "rectangular":
        return a if lt(absolute(x), regs["half_width"]) else ZERO
    if name == "triangle":
        return max0(fma(regs["neg_alpha_sq"], absolute(x), a))
    if name == "sigmoid":
        u = mul(a, absolute(x))
        if not lt(u, from_float(8.0)):
            return ZERO
        k = min(int(math.floor(value(u) * 8)), 63)
        return fma(regs["slope"][k], u, regs["intercept"][k])
    raise ValueError(name)


def neuron_forward(regs: dict, currents):
    """``currents[t]`` (binary16) for one neuron → ``(S[t], H[t])``."""
    kind, soft = regs["kind"], regs["soft_reset"]
    v = regs["v_rest"]
    s_out, h_out = [], []
    for x in currents:
        if kind == "if":
            h = add(v, x)
        else:
            dv = sub(v, regs["v_rest"])
            if regs["decay_input"]:
                h = fma(sub(x, dv), regs["inv_tau"], v)
            else:
                h = add(fma(dv, neg(regs["inv_tau"]), v), x)
        z = max0(mul(regs["k"], h)) if kind == "klif" else h
        s = ge(z, regs["v_th"])
        v = (sub(z, regs["v_th"]) if soft else regs["v_reset"]) if s else z
        s_out.append(s)
        h_out.append(h)
    return s_out, h_out


def neuron_backward(regs: dict, h_seq, s_seq, ds):
    """One neuron, t = T … 1 → ``(h[t], δU[t], δI[t])``."""
    kind, soft = regs["kind"], regs["soft_reset"]
    name = regs["surrogate"]
    sregs = {k[len("surrogate_"):]: v for k, v in regs.items() if k.startswith("surrogate_")}
    steps = len(h_seq)
    hs, dus, dis = [None] * steps, [None] * steps, [None] * steps
    du_next = ZERO
    for t in range(steps - 1, -1, -1):
        h = h_seq[t]
        z = max0(mul(regs["k"], h)) if kind == "klif" else h
        sg = surrogate(name, sregs, sub(z, regs["v_th"]))
        carry = du_next if kind == "if" else mul(du_next, regs["leak"])
        if not soft and s_seq[t]:
            carry = ZERO
        dz = fma(ds[t], sg, carry) if not (is_zero(ds[t]) or is_zero(sg)) else carry
        if kind == "klif":
            du = mul(dz, regs["k"]) if gt(mul(regs["k"], h), ZERO) else ZERO
        else:
            du = dz
        di = mul(du, regs["inv_tau"]) if (kind != "if" and regs["decay_input"]) else du
        hs[t], dus[t], dis[t] = sg, du, di
        du_next = du
    return hs, dus, dis
