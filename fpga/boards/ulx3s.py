"""Radiona ULX3S with the LFE5U-85F (speed grade 6, caBGA-381): Trident's primary board.

Pins are the same facts amaranth-boards' ``ULX3S_85F_Platform`` holds (a test checks they
agree); we keep them here so building never needs the board's programmer on PATH.
"""
from . import Board, Pin, register_board

_LVCMOS33 = (("IO_TYPE", "LVCMOS33"),)
_LED = (("IO_TYPE", "LVCMOS33"), ("DRIVE", "4"))

ULX3S_85F = register_board(Board(
    name="ulx3s-85f",
    description="Radiona ULX3S (LFE5U-85F)",
    flow="trellis",
    family="ecp5",
    device="LFE5U-85F",
    package="CABGA381",
    speed="6",
    part="LFE5U-85F-6BG381C",
    clock=Pin(("G2",), _LVCMOS33),
    clock_hz=25e6,
    leds=tuple(Pin((site,), _LED) for site in "B2 C2 C1 D2 D1 E2 E1 H3".split()),
    capacity={"lut4": 83640, "ff": 83640, "bram": 208, "dsp": 156},
    notes="25 MHz oscillator on G2; 8 user LEDs; program with openFPGALoader -b ulx3s",
))
