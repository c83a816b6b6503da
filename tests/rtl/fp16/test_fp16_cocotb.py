"""cocotb regressions of every FP16 unit on Icarus and Verilator.

Default run: >= 100k vectors per operation on each simulator (every special-value pair,
ties, overflow/underflow, cancellation, biased and uniform random patterns; the integer
conversions exhaustively), plus other pipeline depths with back-pressure, idle cycles
and tags.  ``-m slow``: 10M random vectors per operation on Verilator and exhaustive
sweeps of one operand.  Expected results come from SoftFloat (see
trident.verify.fp16.oracle); the simulator side only drives, monitors and compares.
"""

import numpy as np
import pytest

from trident.verify.fp16 import vectors as V
from trident.verify.fp16.units import build_case, run_cocotb_case, spec
from trident.verify.pytest_fixtures import SIMULATOR_PARAMS, require_simulator
from trident.verify.runner import selected_simulators

# op -> [(spec name, constructor params, total vectors or None for the suites as is)]
DEFAULT = {
    "add": [("add", {}, 100_000)],
    "mul": [("mul", {}, 100_000)],
    "fma": [("fma", {}, 100_000)],
    "compare": [("compare", {}, 100_000)],
    "from_int": [("from_i16", {}, None), ("from_u16", {}, None)],         # exhaustive
    "to_int": [("to_i16_rne", {}, None), ("to_i16_rtz", {}, None)],       # exhaustive
}

# other depths, back-pressure, idle cycles, tags, widths: (spec, params, idle, bp, n,
# simulators).  Icarus builds are instant; each Verilator build costs a few seconds, so
# only some variants also run there (every depth also runs in the Amaranth tests).
BOTH, ICARUS = ("icarus", "verilator"), ("icarus",)
VARIANTS = [
    ("add", dict(stages=2, backpressure=True, tag_width=5), 0.2, 0.3, 8000, ICARUS),
    ("mul", dict(stages=5, backpressure=True), 0.1, 0.3, 8000, ICARUS),
    ("fma", dict(stages=3, backpressure=True, tag_width=3), 0.2, 0.2, 8000, BOTH),
    ("compare", dict(stages=0, backpressure=True), 0.3, 0.3, 8000, BOTH),
    ("from_i32", dict(stages=4), 0.0, 0.0, 8000, ICARUS),
    ("to_u16_rne", dict(stages=1, backpressure=True), 0.2, 0.5, 8000, ICARUS),
]
VARIANT_PARAMS = [pytest.param(*v[:5], sim, id=f"{v[0]}-s{v[1].get('stages')}-{sim}")
                  for v in VARIANTS for sim in v[5] if sim in selected_simulators()]


def _report(result, case):
    print(f"[trident] {case.spec.name}{case.spec.params} on {result.simulator}: "
          f"{result.vectors} vectors {case.counts}, build {result.build_s:.1f} s, "
          f"run {result.test_s:.1f} s ({result.vectors_per_s or 0:.0f} vectors/s)")


@pytest.mark.parametrize("simulator", SIMULATOR_PARAMS)
@pytest.mark.parametrize("op", list(DEFAULT))
def test_default(op, simulator, rng):
    require_simulator(simulator)
    total = 0
    for name, params, n in DEFAULT[op]:
        s = spec(name, **params)
        case = build_case(s, rng, total=n)
        result = run_cocotb_case(s, simulator, case, label=f"{name}-default")
        _report(result, case)
        total += len(case)
    assert total >= 100_000


@pytest.mark.parametrize("name,params,idle,backpressure,n,simulator", VARIANT_PARAMS)
def test_variant(name, params, idle, backpressure, n, simulator, rng):
    require_simulator(simulator)
    s = spec(name, **params)
    suites = {k: None for k in ("specials", "boundaries") if k in s.suites}
    case = build_case(s, rng, suites, total=n)
    result = run_cocotb_case(s, simulator, case, idle=idle, backpressure=backpressure,
                             label=f"{name}-variant")
    _report(result, case)


@pytest.mark.parametrize("simulator", SIMULATOR_PARAMS)
def test_unoptimized_verilog(simulator, rng):
    """The Verilog exactly as ``amaranth.back.verilog.convert`` writes it (no Yosys opt)."""
    require_simulator(simulator)
    s = spec("fma")
    case = build_case(s, rng, {"alignment": 2000, "cancellation": 2000}, total=6000)
    run_cocotb_case(s, simulator, case, optimize=False, label="fma-plain")


# ---- slow regressions (pytest -m slow) ----------------------------------------------

CHUNK = 1_000_000
RANDOM_10M = {
    "add": ("add", None),
    "mul": ("mul", None),
    "fma": ("fma", None),
    "compare": ("compare", None),
    "from_int": ("from_i32", None),
}


@pytest.mark.slow
@pytest.mark.parametrize("op", list(RANDOM_10M))
def test_random_10m_verilator(op, rng):
    """10M uniform random vectors (plus the biased suites), in 1M chunks, on Verilator."""
    require_simulator("verilator")
    name, _ = RANDOM_10M[op]
    s = spec(name)
    done = 0
    while done < 10 * CHUNK:
        suites = {"biased": CHUNK // 10} if "biased" in s.suites else {}
        case = build_case(s, rng, suites, total=CHUNK)
        result = run_cocotb_case(s, "verilator", case, label=f"{name}-10m")
        _report(result, case)
        done += len(case)
    assert done >= 10_000_000


@pytest.mark.slow
@pytest.mark.parametrize("name", ["to_i8_rne", "to_i16_rne", "to_i16_rtz", "to_u16_rne",
                                  "to_i32_rtz", "from_i8", "from_i16", "from_u16"])
def test_exhaustive_conversions_verilator(name, rng):
    """Every input of the narrow conversions (the whole domain: nothing left to sample)."""
    require_simulator("verilator")
    s = spec(name)
    case = build_case(s, rng)
    _report(run_cocotb_case(s, "verilator", case, label=f"{name}-all"), case)


def _fixed_values(rng, n_random=10):
    return np.concatenate([V.SPECIALS, V.random_bits(rng, n_random)])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["add", "mul", "compare"])
def test_sweep_one_operand_verilator(name, rng):
    """Each operand over all 65,536 values against a fixed set of the other (both orders)."""
    require_simulator("verilator")
    s = spec(name)
    fixed = _fixed_values(rng)
    a, b = V.sweep_pairs(fixed)
    extra = {"a": a, "b": b}
    if name == "add":
        extra = {"a": np.concatenate([a, a]), "b": np.concatenate([b, b]),
                 "sub": np.repeat([0, 1], len(a))}
    for lo in range(0, len(extra["a"]), CHUNK):
        part = {k: v[lo:lo + CHUNK] for k, v in extra.items()}
        case = build_case(s, rng, {}, extra=part)
        _report(run_cocotb_case(s, "verilator", case, label=f"{name}-sweep"), case)


@pytest.mark.slow
def test_sweep_fma_verilator(rng):
    """a, b and c each over all 65,536 values, the other two from fixed pairs."""
    require_simulator("verilator")
    s = spec("fma")
    fixed = _fixed_values(rng, 6)
    pairs = [(x, y) for x in fixed[::2] for y in fixed[1::2]][:24]
    allv = V.exhaustive()
    for slot in ("a", "b", "c"):
        for x, y in pairs:
            others = [k for k in ("a", "b", "c") if k != slot]
            part = {slot: allv, others[0]: np.full(len(allv), x, dtype=np.uint16),
                    others[1]: np.full(len(allv), y, dtype=np.uint16),
                    "neg_prod": np.zeros(len(allv), dtype=np.int64),
                    "neg_c": np.zeros(len(allv), dtype=np.int64)}
            case = build_case(s, rng, {}, extra=part)
            run_cocotb_case(s, "verilator", case, label="fma-sweep")
