"""The ``1core`` FPGA configuration: registered, and (``-m slow``) its self-test passes in
the Amaranth simulator — the core runs a compiled training step from block RAM and the
memory checksum equals the golden device's."""

import pytest
from amaranth.sim import Simulator

from trident.fpga.configs import get_config
from trident.rtl.core.selftest import CoreSelfTest


def test_1core_config_registered():
    config = get_config("1core")
    top = config.make_core(8, {"lanes": 4})
    top._MustUse__silence = True          # built, not elaborated: that takes the slow test
    assert isinstance(top, CoreSelfTest) and top.params["lanes"] == 4


@pytest.mark.slow
def test_selftest_passes():
    top = CoreSelfTest(8, addr_width=11)
    seen = {}

    async def bench(ctx):
        for cycle in range(40_000):
            await ctx.tick()
            leds = ctx.get(top.leds)
            if leds & 0b11:
                seen.update(leds=leds, cycle=cycle)
                return

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert seen and seen["leds"] & 0b11 == 0b01, seen
