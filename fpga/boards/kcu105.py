"""Xilinx KCU105 (Kintex UltraScale XCKU040-2FFVA1156E): a large board for users who own
Vivado. Trident generates the Vivado project through edalize's vivado flow; it cannot run
Vivado here. Facts from amaranth-boards' ``KCU105Platform``.
"""
from . import Board, Pin, register_board

KCU105 = register_board(Board(
    name="kcu105",
    description="Xilinx KCU105 (Kintex UltraScale XCKU040)",
    flow="vivado",
    family="kintexu",
    device="xcku040",
    package="ffva1156",
    speed="2-e",
    part="xcku040-ffva1156-2-e",
    clock=Pin(("G10", "F10"), (("IOSTANDARD", "LVDS"),)),
    clock_hz=125e6,
    leds=tuple(Pin((site,), (("IOSTANDARD", "LVCMOS18"),))
               for site in "AP8 H23 P20 P21 N22 M22 R23 P23".split()),
    capacity={"lut6": 242400, "ff": 484800, "bram36": 600, "dsp48": 1920},
    notes="125 MHz LVDS clock on G10/F10; Vivado project generation only",
))
