"""Trident's compute engines (Amaranth): event-driven datapaths of a core.

See docs/engines.md.

Stable names
------------
EventCompressor   dense input words -> ascending list of active indices, one per cycle
FPEngine          forward currents of a fully connected layer, spike and MAC mode
ConvEngine        forward currents of a 2D convolution, spike and MAC mode
WGEngine          weight gradient of an FC tile in an exact fixed-point accumulator
BPEngine          BP of a fully connected layer (transposed product, need mask)
ConvBPEngine      BP of a 2D convolution (transposed convolution, need mask)
ConvWGEngine      weight gradient of a 2D convolution tile in the exact accumulator
UpdateUnit        in-place SGD (optional momentum), the loss scale removed in one rounding
"""

from .bp import BPEngine, ConvBPEngine, bp_config_layout
from .compress import EventCompressor, event_layout
from .conv import ConvEngine, conv_config_layout, conv_current_layout
from .fp import FPEngine, current_layout, layer_config_layout, weight_write_layout
from .update import UpdateUnit, update_in_layout, update_out_layout, update_regs_layout
from .wg import ExactAccumulators, WGEngine, acc_update_layout, grad_layout, wg_config_layout
from .wg_conv import ConvWGEngine, conv_wg_config_layout

__all__ = ["EventCompressor", "event_layout", "FPEngine", "layer_config_layout",
           "weight_write_layout", "current_layout", "ConvEngine", "conv_config_layout",
           "conv_current_layout", "WGEngine", "wg_config_layout", "grad_layout",
           "BPEngine", "ConvBPEngine", "bp_config_layout", "ExactAccumulators", "acc_update_layout",
           "ConvWGEngine", "conv_wg_config_layout", "UpdateUnit", "update_in_layout", "update_out_layout",
           "update_regs_layout"]
