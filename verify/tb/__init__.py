"""cocotb testbench components (run inside the simulator): stream driver and monitor,
scoreboard, clock/reset and vector-file helpers, and the generic ``stream_test``."""

from .scoreboard import Mismatch, Scoreboard, exact, masked
from .stream import StreamDriver, StreamMonitor

__all__ = ["StreamDriver", "StreamMonitor", "Scoreboard", "Mismatch", "exact", "masked"]
