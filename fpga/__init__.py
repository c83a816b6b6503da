"""trident.fpga: the open FPGA flow.

Amaranth design -> Verilog -> EDAM -> edalize flow (Trellis for ECP5: yosys, nextpnr-ecp5,
ecppack, all YoWASP through :mod:`trident.fpga.launcher`; Vivado project generation for
Xilinx boards) -> bitstream and a JSON build report. Entry points:
``trident.fpga.build.build(config, board, ...)`` and ``trident build`` /
``python -m trident.fpga build`` (:mod:`trident.fpga.cli`). See docs/fpga.md.

Modules: :mod:`.boards` (board registry), :mod:`.configs` (what to build),
:mod:`.harness` (board top and measurement harness), :mod:`.edam` (sources and EDAM),
:mod:`.launcher` (the ``EDALIZE_LAUNCHER``), :mod:`.reports` (tool output parsing),
:mod:`.build` (running a build), :mod:`.cli` (``trident build``).
"""
