"""Trident: training spiking neural networks on an open FP16 accelerator.

The code lives in the top-level folders of the repository and imports as
``trident.golden`` (PyTorch golden model), ``trident.rtl`` (Amaranth RTL),
``trident.verify`` (cocotb verification), ``trident.fpga`` (open FPGA flow) and
``trident.sw`` (host driver, runtime and the ``trident`` command).
"""

__version__ = "0.1.0"
