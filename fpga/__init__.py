"""trident.fpga"""
