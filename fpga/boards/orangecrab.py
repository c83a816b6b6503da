"""1BitSquared OrangeCrab r0.2 with the LFE5U-85F (speed grade 8, csfBGA-285).

Facts from amaranth-boards' ``OrangeCrabR0_2_85FPlatform``: 48 MHz clock on A9 and an
active-low RGB LED (r, g, b on K4, M3, J3).
"""
from . import Board, Pin, register_board

_LVCMOS33 = (("IO_TYPE", "LVCMOS33"),)

ORANGECRAB_85F = register_board(Board(
    name="orangecrab-85f",
    description="OrangeCrab r0.2 (LFE5U-85F)",
    flow="trellis",
    family="ecp5",
    device="LFE5U-85F",
    package="CSFBGA285",
    speed="8",
    part="LFE5U-85F-8MG285C",
    clock=Pin(("A9",), _LVCMOS33),
    clock_hz=48e6,
    leds=tuple(Pin((site,), _LVCMOS33, invert=True) for site in ("K4", "M3", "J3")),
    capacity={"lut4": 83640, "ff": 83640, "bram": 208, "dsp": 156},
    notes="48 MHz oscillator on A9; RGB LED is active low; program over USB DFU (dfu-util)",
))
