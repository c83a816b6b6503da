"""The ``1core`` configuration: one Trident core with a block-RAM DRAM and a self-test
(:class:`trident.rtl.core.selftest.CoreSelfTest`): after reset it runs a compiled training
step and lights LED 0 when the DRAM image equals the golden device's (LED 1: mismatch or
error; LED 2: busy; LED 3: a gradient overflowed)."""
from __future__ import annotations

from .configs import Config, ConfigUnavailableError, register_config

__all__ = ["make_core_selftest"]


def make_core_selftest(n_leds, lanes, weight_depth, state_depth, max_inputs, addr_width):
    try:
        from trident.rtl.core.selftest import CoreSelfTest
    except ImportError as exc:
        raise ConfigUnavailableError(f"config '1core' needs trident.rtl.core: {exc}") from exc
    return CoreSelfTest(n_leds, addr_width=addr_width, lanes=lanes, weight_depth=weight_depth,
                        state_depth=state_depth, max_inputs=max_inputs)


register_config(Config(
    name="1core",
    description="one Trident core + block-RAM DRAM running a training step as a self-test",
    factory=make_core_selftest,
    params={"lanes": 4, "weight_depth": 1024, "state_depth": 256, "max_inputs": 1024,
            "addr_width": 11},
    param_help={"lanes": "FP/BP engine lanes L (power of two)",
                "weight_depth": "weight scratchpad words (L binary16 each)",
                "state_depth": "neuron state memory (largest output tile)",
                "max_inputs": "longest input row (event list, WG tile)",
                "addr_width": "DRAM word-address bits (the block RAM has 2^bits − 1 words)"},
))
