"""Per-unit test specifications: which vectors to generate and which oracle checks them.

A :class:`UnitSpec` ties an FP16 component class (and its parameters) to

- ``suites``: named vector generators returning input fields,
- ``oracle``: the SoftFloat reference for those inputs (output fields),
- ``cross``: optional second oracle (NumPy float16) that must agree with SoftFloat on
  every generated vector (checked by :func:`build_case`, so a DUT that matches SoftFloat
  matches NumPy too).

:func:`build_case` turns a spec and some suites into packed input/expected payloads for
either simulator path (Amaranth's simulator via :func:`check_amaranth`, or cocotb via
:func:`trident.verify.runner.run_stream_vectors`).
"""

from dataclasses import dataclass, field

import numpy as np

from ...rtl.fp16 import FPAdd, FPCompare, FPFMA, FPFromInt, FPMul, FPToInt
from ..payload import pack, payload_layout, unpack
from . import oracle as O
from . import vectors as V

__all__ = ["UnitSpec", "Case", "SPECS", "spec", "build_case", "check_amaranth",
           "fill_random", "describe_fn", "quick_suites", "simulate_fields", "run_cocotb_case"]


@dataclass
class UnitSpec:
    """How to test one FP16 operation."""
    name: str
    cls: type
    params: dict
    suites: dict                     # name -> fn(rng, n) -> dict of input fields
    oracle: object                   # fn(inputs dict) -> dict of output fields
    cross: object = None             # optional fn(inputs) -> dict (second opinion)
    random: object = None            # fn(rng, n) -> inputs: the uniform-random filler
    mask: dict = field(default_factory=dict)   # output field -> bit mask (default all)

    def with_params(self, **params):
        return UnitSpec(self.name, self.cls, {**self.params, **params}, self.suites,
                        self.oracle, self.cross, self.random, self.mask)

    def component(self, used=False):
        """An instance (``used=False``: only for its layouts, no "never elaborated" warning)."""
        dut = self.cls(**self.params)
        if not used:
            dut._MustUse__silence = True
        return dut


@dataclass
class Case:
    """Packed vectors for one run."""
    spec: UnitSpec
    inputs: dict          # field -> array
    expected: dict        # field -> array
    in_packed: np.ndarray
    exp_packed: np.ndarray
    counts: dict          # suite -> number of vectors

    def __len__(self):
        return len(self.in_packed)


def _cat(parts):
    keys = parts[0].keys()
    return {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in keys}


def _tagged(spec, inputs, rng):
    tag_width = spec.params.get("tag_width", 0)
    if tag_width:
        n = len(next(iter(inputs.values())))
        inputs = dict(inputs, tag=rng.integers(0, 1 << tag_width, n))
    return inputs


def fill_random(spec, rng, n):
    """``n`` uniform random inputs for ``spec``."""
    return spec.random(rng, n)


def build_case(spec, rng, suites=None, total=None, extra=None):
    """Generate the vectors of some suites (all by default), pad with uniform random ones
    up to ``total``, compute the expected outputs, and pack everything.

    ``suites`` maps suite names to counts (or is a list of names: default counts).
    """
    if suites is None:
        suites = {name: None for name in spec.suites}
    elif not isinstance(suites, dict):
        suites = {name: None for name in suites}
    parts, counts = [], {}
    for name, n in suites.items():
        gen = spec.suites[name]
        part = gen(rng, n) if n is not None else gen(rng, None)
        parts.append(part)
        counts[name] = len(next(iter(part.values())))
    if extra is not None:
        parts.append(extra)
        counts["extra"] = len(next(iter(extra.values())))
    have = sum(counts.values())
    if total is not None and have < total:
        parts.append(spec.random(rng, total - have))
        counts["random"] = total - have
    inputs = _cat(parts)
    inputs = _tagged(spec, inputs, rng)
    expected = spec.oracle(inputs)
    if spec.cross is not None:      # NumPy float16 must agree with SoftFloat on every vector
        second = spec.cross(inputs)
        for k, v in second.items():
            bad = np.nonzero(np.asarray(v) != np.asarray(expected[k]))[0]
            if len(bad):
                raise AssertionError(f"oracles disagree on {spec.name}.{k} for {len(bad)} "
                                     f"vectors, first input index {bad[0]}")
    if "tag" in inputs:
        expected = dict(expected, tag=inputs["tag"])
    dut = spec.component()
    in_layout, out_layout = payload_layout(dut, "i"), payload_layout(dut, "o")
    in_packed = pack(in_layout, **inputs)
    exp_packed = pack(out_layout, **expected)
    return Case(spec, inputs, expected, in_packed, exp_packed, counts)


def describe_fn(spec):
    """A ``describe(input, got, expected) -> str`` for failure messages (fields in hex)."""
    dut = spec.component()
    in_layout, out_layout = payload_layout(dut, "i"), payload_layout(dut, "o")

    def describe(inp, got, exp):
        i = {k: int(v[0]) for k, v in unpack(in_layout, np.array([inp], dtype=object)).items()}
        g = {k: int(v[0]) for k, v in unpack(out_layout, np.array([got], dtype=object)).items()}
        e = {k: int(v[0]) for k, v in unpack(out_layout, np.array([exp], dtype=object)).items()}
        ins = " ".join(f"{k}={v:#06x}" if v >= 0 else f"{k}={v}" for k, v in i.items())
        diff = " ".join(f"{k}: got {g[k]:#06x} expected {e[k]:#06x}" for k in e if g[k] != e[k])
        return f"{ins} -> {diff}"
    return describe


def check_amaranth(spec, case=None, *, rng=None, idle=0.0, backpressure=0.0, seed=0):
    """Run a case in the Amaranth simulator; returns a list of mismatch descriptions."""
    from ..amaranth_sim import simulate_stream

    if case is None:
        case = build_case(spec, rng)
    dut = spec.component(used=True)
    res = simulate_stream(dut, case.in_packed.tolist(), idle=idle, backpressure=backpressure,
                          seed=seed)
    got = np.array(res.outputs, dtype=object)
    exp = np.asarray(case.exp_packed, dtype=object)
    describe = describe_fn(spec)
    bad = [k for k in range(len(exp)) if int(got[k]) != int(exp[k])]
    problems = [describe(int(case.in_packed[k]), int(got[k]), int(exp[k])) for k in bad[:20]]
    if len(bad) > 20:
        problems.append(f"... {len(bad)} mismatches in all")
    if backpressure == 0 and any(lat != dut.latency for lat in res.latencies):
        problems.append(f"latency {sorted(set(res.latencies))} != {dut.latency}")
    return problems


# ---- the specs ---------------------------------------------------------------------

def _rand16(rng, n):
    return V.random_bits(rng, n)


def _add_oracle(x):
    sub = np.asarray(x["sub"]).astype(bool)
    z = np.where(sub, O.sf_sub(x["a"], x["b"]), O.sf_add(x["a"], x["b"]))
    return {"z": z.astype(np.uint16)}


def _add_cross(x):
    sub = np.asarray(x["sub"]).astype(bool)
    return {"z": np.where(sub, O.np_sub(x["a"], x["b"]), O.np_add(x["a"], x["b"]))}


def _pairs_with_sub(fn):
    def gen(rng, n):
        a, b = fn(rng, n)
        return {"a": a, "b": b, "sub": rng.integers(0, 2, len(a))}
    return gen


def _special_add(rng, n):
    a, b = V.special_pairs()
    return {"a": np.concatenate([a, a]), "b": np.concatenate([b, b]),
            "sub": np.repeat([0, 1], len(a))}


def _trip(fn, n_default):
    def gen(rng, n):
        out = fn(rng, n or n_default)
        if isinstance(out, tuple) and len(out) == 3:
            return dict(zip(("a", "b", "sub"), out))
        return out
    return gen


ADD = UnitSpec(
    name="add", cls=FPAdd, params={},
    suites={
        "specials": _special_add,
        "ties": _trip(V.ties_add, 4000),
        "overflow": _trip(V.add_overflow, 4000),
        "underflow": _trip(V.add_underflow, 6000),
        "cancellation": _trip(V.add_cancellation, 10000),
        "biased": lambda rng, n: {"a": V.biased(rng, n or 30000), "b": V.biased(rng, n or 30000),
                                  "sub": rng.integers(0, 2, n or 30000)},
    },
    oracle=_add_oracle, cross=_add_cross,
    random=lambda rng, n: {"a": _rand16(rng, n), "b": _rand16(rng, n),
                           "sub": rng.integers(0, 2, n)},
)


def _mul_oracle(x):
    return {"z": O.sf_mul(x["a"], x["b"])}


def _mul_cross(x):
    return {"z": O.np_mul(x["a"], x["b"])}


def _pair(fn, n_default):
    def gen(rng, n):
        a, b = fn(rng, n or n_default)
        return {"a": a, "b": b}
    return gen


MUL = UnitSpec(
    name="mul", cls=FPMul, params={},
    suites={
        "specials": lambda rng, n: dict(zip(("a", "b"), V.special_pairs())),
        "ties": _pair(V.ties_mul, 4000),
        "overflow": _pair(V.mul_overflow, 6000),
        "underflow": _pair(V.mul_underflow, 10000),
        "subnormal_operand": _pair(V.mul_subnormal_operand, 10000),
        "biased": lambda rng, n: {"a": V.biased(rng, n or 30000), "b": V.biased(rng, n or 30000)},
    },
    oracle=_mul_oracle, cross=_mul_cross,
    random=lambda rng, n: {"a": _rand16(rng, n), "b": _rand16(rng, n)},
)


def _fma_oracle(x):
    n = len(x["a"])
    return {"z": O.sf_fma(x["a"], x["b"], x["c"], x.get("neg_prod", np.zeros(n)),
                          x.get("neg_c", np.zeros(n)))}


def _fma(fn, n_default, flags=True):
    def gen(rng, n):
        a, b, c = fn(rng, n or n_default)
        k = len(a)
        return {"a": a, "b": b, "c": c,
                "neg_prod": rng.integers(0, 2, k) if flags else np.zeros(k, dtype=np.int64),
                "neg_c": rng.integers(0, 2, k) if flags else np.zeros(k, dtype=np.int64)}
    return gen


FMA = UnitSpec(
    name="fma", cls=FPFMA, params={},
    suites={
        "specials": _fma(lambda rng, n: V.special_triples(), None, flags=False),
        "ties": _fma(V.ties_fma, 3000),
        "cancellation": _fma(V.fma_cancellation, 15000),
        "alignment": _fma(V.fma_alignment, 20000),
        "tiny": _fma(V.fma_tiny, 10000),
        "biased": _fma(lambda rng, n: (V.biased(rng, n), V.biased(rng, n), V.biased(rng, n)),
                       15000),
    },
    oracle=_fma_oracle,
    random=_fma(lambda rng, n: (_rand16(rng, n), _rand16(rng, n), _rand16(rng, n)), None),
)


def _cmp_oracle(x):
    return O.sf_compare(x["a"], x["b"])


COMPARE = UnitSpec(
    name="compare", cls=FPCompare, params={},
    suites={
        "specials": lambda rng, n: dict(zip(("a", "b"), V.special_pairs())),
        "neighbours": _pair(V.compare_pairs, 20000),
        "biased": lambda rng, n: {"a": V.biased(rng, n or 30000), "b": V.biased(rng, n or 30000)},
    },
    oracle=_cmp_oracle,
    random=lambda rng, n: {"a": _rand16(rng, n), "b": _rand16(rng, n)},
)


def _from_int_spec(width=16, signed=True):
    lo, hi = (-(1 << (width - 1)), (1 << (width - 1))) if signed else (0, 1 << width)

    def all_values(rng, n):
        if width <= 17:
            return {"value": np.arange(lo, hi, dtype=np.int64)}
        return {"value": rng.integers(lo, hi, n or 65536, dtype=np.int64)}

    return UnitSpec(
        name=f"from_{'i' if signed else 'u'}{width}", cls=FPFromInt,
        params={"width": width, "signed": signed},
        suites={
            "boundaries": lambda rng, n: {"value": V.int_boundaries(width, signed)},
            "all" if width <= 17 else "uniform": all_values,
        },
        oracle=lambda x: {"z": O.sf_from_int(x["value"], width, signed)},
        random=lambda rng, n: {"value": rng.integers(lo, hi, n, dtype=np.int64)},
    )


def _to_int_spec(width=16, signed=True, rounding="nearest_even"):
    def oracle(x):
        value, invalid = O.sf_to_int(x["a"], width, signed, rounding)
        return {"value": value, "invalid": invalid}

    return UnitSpec(
        name=f"to_{'i' if signed else 'u'}{width}_{'rne' if rounding == 'nearest_even' else 'rtz'}",
        cls=FPToInt, params={"width": width, "signed": signed, "rounding": rounding},
        suites={"specials": lambda rng, n: {"a": V.to_int_specials()},
                "all": lambda rng, n: {"a": V.exhaustive()}},
        oracle=oracle,
        random=lambda rng, n: {"a": _rand16(rng, n)},
    )


FROM_I16 = _from_int_spec(16, True)
FROM_U16 = _from_int_spec(16, False)
FROM_I32 = _from_int_spec(32, True)
FROM_I8 = _from_int_spec(8, True)
TO_I16_RNE = _to_int_spec(16, True, "nearest_even")
TO_I16_RTZ = _to_int_spec(16, True, "toward_zero")
TO_U16_RNE = _to_int_spec(16, False, "nearest_even")
TO_I32_RTZ = _to_int_spec(32, True, "toward_zero")
TO_I8_RNE = _to_int_spec(8, True, "nearest_even")

SPECS = {s.name: s for s in (ADD, MUL, FMA, COMPARE, FROM_I16, FROM_U16, FROM_I32, FROM_I8,
                             TO_I16_RNE, TO_I16_RTZ, TO_U16_RNE, TO_I32_RTZ, TO_I8_RNE)}


def spec(name, **params):
    """The spec called ``name``, optionally with extra constructor parameters."""
    s = SPECS[name]
    return s.with_params(**params) if params else s


def quick_suites(spec, n):
    """Every suite of ``spec`` at ``n`` vectors (full specials/boundaries), for quick tests."""
    full = ("specials", "boundaries")
    return {k: (None if k in full else n) for k in spec.suites if k not in ("all",)}


def simulate_fields(spec, **inputs):
    """Run field arrays through the Amaranth simulator; returns the output fields."""
    from ..amaranth_sim import simulate_stream

    dut = spec.component(used=True)
    packed = pack(payload_layout(dut, "i"), **inputs)
    res = simulate_stream(dut, packed.tolist())
    return unpack(payload_layout(dut, "o"), np.array(res.outputs, dtype=object))


def run_cocotb_case(spec, simulator, case, *, idle=0.0, backpressure=0.0, check_latency=True,
                    optimize=None, label=None, **kwargs):
    """Run a :class:`Case` through cocotb on ``simulator`` (raises on any mismatch).

    Returns the :class:`trident.verify.runner.RunResult`.
    """
    from ..runner import run_stream_vectors
    from ..verilog import generate_verilog

    vmod = generate_verilog(spec.cls, spec.params, optimize=optimize)
    dut = spec.component()
    return run_stream_vectors(
        vmod, simulator, case.in_packed, case.exp_packed, idle=idle,
        backpressure=backpressure, latency=dut.latency if check_latency else None,
        describe=describe_fn(spec), label=label or spec.name, **kwargs)
