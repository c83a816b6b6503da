"""Structure of the FP16 units: the value type, constructors, signatures, Verilog export."""

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream
from amaranth.sim import Simulator

from trident.rtl.fp16 import (CANONICAL_NAN, FPAdd, FPCompare, FPFMA, FPFromInt, FPMul, FPToInt,
                              Float16, PipelinedUnit)
from trident.verify.fp16 import oracle as O
from trident.verify.fp16 import vectors as V

UNITS = [FPAdd, FPMul, FPFMA, FPCompare, FPFromInt, FPToInt]


def test_float16_layout():
    layout = data.Layout.cast(Float16)
    assert layout.size == 16
    assert [(name, f.offset, f.width) for name, f in layout] == [
        ("mantissa", 0, 10), ("exponent", 10, 5), ("sign", 15, 1)]
    assert CANONICAL_NAN == 0x7E00


def test_float16_helpers():
    value = Signal(Float16)
    flags = {name: Signal(name=name) for name in
             ("nan", "inf", "zero", "sub", "hidden", "eexp", "sig")}
    flags["eexp"] = Signal(5, name="eexp")
    flags["sig"] = Signal(11, name="sig")
    m = Module()
    m.d.comb += [flags["nan"].eq(value.is_nan()), flags["inf"].eq(value.is_inf()),
                 flags["zero"].eq(value.is_zero()), flags["sub"].eq(value.is_subnormal()),
                 flags["hidden"].eq(value.hidden()), flags["eexp"].eq(value.effective_exponent()),
                 flags["sig"].eq(value.significand())]
    sim = Simulator(m)
    seen = []

    async def bench(ctx):
        for bits in V.SPECIALS.tolist():
            ctx.set(value.as_value(), bits)
            seen.append((bits, {k: ctx.get(s) for k, s in flags.items()}))
    sim.add_testbench(bench)
    sim.run()
    for bits, got in seen:
        f16 = np.array([bits], dtype=np.uint16).view(np.float16)[0]
        e, mant = (bits >> 10) & 0x1F, bits & 0x3FF
        assert got["nan"] == bool(np.isnan(f16)) == bool(O.is_nan([bits])[0])
        assert got["inf"] == bool(np.isinf(f16))
        assert got["zero"] == (f16 == 0)
        assert got["sub"] == (e == 0 and mant != 0)
        assert got["eexp"] == max(e, 1) and got["sig"] == mant | (0x400 if e else 0)


@pytest.mark.parametrize("cls", UNITS)
def test_signature_and_latency(cls):
    n = len(cls.STEPS)
    for stages in range(n + 1):
        unit = cls(stages)
        assert unit.latency == unit.stages == stages == len(unit.cuts)
        assert all(1 <= c <= n for c in unit.cuts)
        assert not stages or unit.cuts[-1] == n          # registered output
        assert isinstance(unit.signature.members["i"].signature, stream.Signature)
        assert isinstance(unit.signature.members["o"].signature, stream.Signature)
        unit._MustUse__silence = True
    for bad in (n + 1, -1):
        with pytest.raises(ValueError):
            cls(bad)


def test_explicit_cuts():
    unit = FPMul(cuts=(2, 5))
    unit._MustUse__silence = True
    assert unit.stages == 2 and unit.cuts == (2, 5)
    with pytest.raises(ValueError):
        FPMul(3, cuts=(2, 5))
    with pytest.raises(ValueError):
        FPMul(cuts=(0, 2))


def test_parameter_checks():
    with pytest.raises(ValueError):
        FPToInt(rounding="up")
    with pytest.raises(ValueError):
        FPFromInt(width=1, signed=True)
    with pytest.raises(ValueError):
        FPToInt(width=65)
    with pytest.raises(ValueError):
        FPAdd(tag_width=-1)


@pytest.mark.parametrize("cls", UNITS)
def test_verilog_convert_as_is(cls):
    """The FPGA flow can call verilog.convert(unit) directly (default and odd configs)."""
    configs = [{}]
    if cls is FPCompare:
        configs += [{"stages": 0}, {"backpressure": True, "tag_width": 4}]
    for params in configs:
        unit = cls(**params)
        text = verilog.convert(unit, name="unit")
        for port in ("i__payload", "i__valid", "i__ready", "o__payload", "o__valid",
                     "o__ready"):
            assert port in text
        assert ("input clk;" in text) == (unit.stages > 0)


def test_is_pipelined_unit():
    assert all(issubclass(cls, PipelinedUnit) for cls in UNITS)
