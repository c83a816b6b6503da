"""The Trident SoC: register map (declared once), CSR bank, interconnect, DRAM (block RAM or
AXI4), host bridge and UART bridge (docs/soc.md)."""
