"""cocotb test of test_harness.Accumulator: the harness pieces wired by hand (Python model).

Not collected by pytest (no test_ prefix); run from test_harness.py through
trident.verify.runner.run_cocotb(..., python_path=[this directory]).
"""

import cocotb
from cocotb.triggers import ClockCycles

from trident.verify.tb import Scoreboard, StreamDriver, StreamMonitor
from trident.verify.tb.env import reset, start_clock


@cocotb.test()
async def accumulates(dut):
    clk = start_clock(dut)
    driver = StreamDriver(dut, "i", clk, idle=0.3)
    monitor = StreamMonitor(dut, "o", clk, backpressure=0.3)
    scoreboard = Scoreboard(name="accumulator")
    total = 0

    def model(index, value, cycle):          # the reference model, fed by the driver
        nonlocal total
        total = (total + value) & 0xFFFF
        scoreboard.expect(total)

    driver.on_accept(model)
    monitor.on_transfer(lambda value, cycle: scoreboard.observe(value))
    await reset(dut)
    driver.start()
    monitor.start()
    driver.send_many(range(1000, 1300))
    await ClockCycles(clk, 2000)
    assert scoreboard.checked == 300 and scoreboard.passed, scoreboard.report()
