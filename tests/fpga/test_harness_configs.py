"""Config registry and the synthesis harness (no FPGA tools needed)."""
import sys
import types

import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import data
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from trident.fpga.boards import get_board
from trident.fpga.configs import (ConfigUnavailableError, UnknownConfigError, config_names,
                                  get_config, parse_params)
from trident.fpga.edam import make_top, verilog_for
from trident.fpga.harness import BoardTop, NullUnit, UnitHarness, unit_ports


class Float16(data.Struct):          # the shape of trident.rtl.fp16's value type
    mantissa: 10
    exponent: 5
    sign: 1


class PipelinedAdd(wiring.Component):
    """A stand-in unit: a + b over ``stages`` registers, with valid in/out."""

    def __init__(self, stages=2):
        self.stages = stages
        super().__init__({"a": In(Float16), "b": In(16), "valid_in": In(1),
                          "result": Out(Float16), "valid_out": Out(1)})

    def elaborate(self, platform):
        m = Module()
        data, valid = self.a.as_value() + self.b, self.valid_in
        for i in range(self.stages):
            d, v = Signal(16, name=f"d{i}"), Signal(name=f"v{i}")
            m.d.sync += [d.eq(data), v.eq(valid)]
            data, valid = d, v
        m.d.comb += [self.result.eq(data), self.valid_out.eq(valid)]
        return m


def test_registry():
    names = config_names()
    assert {"blinky", "fp16-units", "fp16-add", "fp16-mul", "fp16-fma"} <= set(names)
    for name in ("fp16-add", "fp16-mul", "fp16-fma", "fp16-units"):
        assert "stages" in get_config(name).params
    with pytest.raises(UnknownConfigError) as exc:
        get_config("20core-typo")
    assert "fp16-add" in str(exc.value) and "blinky" in str(exc.value)


def test_params():
    assert parse_params(["stages=4", "x=0x10"]) == {"stages": 4, "x": 16}
    for bad in (["stages"], ["=3"], ["stages=four"]):
        with pytest.raises(ValueError):
            parse_params(bad)
    assert get_config("fp16-add").resolve_params({"stages": 5}) == {"stages": 5, "harness_only": 0}
    with pytest.raises(ValueError, match="no parameter"):
        get_config("blinky").resolve_params({"stages": 5})


def test_fp16_config_without_rtl_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "trident.rtl.fp16", None)      # import fails
    with pytest.raises(ConfigUnavailableError, match="cannot be imported"):
        get_config("fp16-add").make_core(8, {"stages": 3})
    monkeypatch.setitem(sys.modules, "trident.rtl.fp16", types.ModuleType("trident.rtl.fp16"))
    with pytest.raises(ConfigUnavailableError, match="no FP16 multiplier class"):
        get_config("fp16-mul").make_core(8, {"stages": 3})


def test_fp16_config_uses_rtl_classes(monkeypatch):
    fake = types.ModuleType("trident.rtl.fp16")
    fake.FPAdd = PipelinedAdd
    monkeypatch.setitem(sys.modules, "trident.rtl.fp16", fake)
    core = get_config("fp16-add").make_core(8, {"stages": 4})
    assert isinstance(core, UnitHarness)
    assert core.units["fp16_add"].stages == 4
    v = verilog_for(BoardTop(core, 8))
    assert "module top(" in v
    core = get_config("fp16-add").make_core(8, {"stages": 4, "harness_only": 1})
    assert isinstance(core.units["fp16_add"], NullUnit)
    v = verilog_for(BoardTop(core, 8))


def test_unit_ports_from_signature():
    unit = PipelinedAdd()
    unit._MustUse__silence = True          # only inspected, never elaborated
    ins, outs = unit_ports(unit)
    assert [len(s) for s in ins] == [16, 16, 1]
    assert [len(s) for s in outs] == [16, 1]
    with pytest.raises(TypeError):
        unit_ports(object())


def _run(top, cycles, probe):
    """Clock a BoardTop through its ``clk`` port; sample ``probe`` after each rising edge."""
    sim = Simulator(top)
    seen = []

    async def clock(ctx):
        while True:
            ctx.set(top.clk, 1)
            await ctx.delay(0.5e-6)
            ctx.set(top.clk, 0)
            await ctx.delay(0.5e-6)

    sim.add_process(clock)

    async def bench(ctx):
        for _ in range(cycles):
            await ctx.tick()
            seen.append(ctx.get(probe))

    sim.add_testbench(bench)
    sim.run()
    return seen


def test_unit_harness_drives_inputs_and_toggles_led():
    """Inputs change every cycle and the XOR-reduced LED is not constant."""
    unit = PipelinedAdd(stages=3)
    harness = UnitHarness({"add": unit}, n_leds=8)
    top = BoardTop(harness, 8)
    a_seen = _run(top, 40, unit.a.as_value())
    assert len(set(a_seen)) > 30
    # the LED needs inputs (1) + stages (3) + output capture (1) + XOR levels to move
    unit = PipelinedAdd(stages=3)
    harness = UnitHarness({"add": unit}, n_leds=8)
    led_seen = _run(BoardTop(harness, 8), 60, harness.leds)
    assert {v & 1 for v in led_seen[10:]} == {0, 1}


def test_board_top_inverts_active_low_leds():
    b = get_board("orangecrab-85f")
    top = make_top(get_config("blinky"), b)
    assert top.led_invert == 0b111
    seen = _run(top, 3, top.led)
    assert seen[0] == 0b111 ^ 0          # counter bits are 0 at start -> all LEDs off (high)


def test_verilog_has_board_ports():
    v = verilog_for(make_top(get_config("blinky"), get_board("ulx3s-85f")))
    assert "module top(" in v and "input clk" in v and "output [7:0] led" in v
    v = verilog_for(make_top(get_config("blinky"), get_board("kcu105")))
    assert "IBUFDS" in v and "clk_p" in v and "clk_n" in v
