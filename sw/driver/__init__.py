"""The host driver: :class:`Device`, one API over the transports ``golden`` (a device model
with the SoC's registers and memory semantics), ``sim`` (the SoC RTL in a simulator) and
``serial`` (the UART bridge's framing over a byte stream: a board, or the RTL in simulation).

Members
-------
Device, QueuedRun, DeviceError, DeviceTimeout, CoreError
    :mod:`.device`.
Transport, SerialTransport
    :mod:`.transport`.
GoldenTransport, golden_executor
    :mod:`.golden`.
SimTransport, SimUartStream, SimulatorError
    :mod:`.sim` (imported on use: it needs the simulator toolchain).
"""

from .device import CoreError, Device, DeviceError, DeviceTimeout, QueuedRun
from .golden import GoldenTransport, golden_executor
from .transport import SerialTransport, Transport

__all__ = ["Device", "QueuedRun", "DeviceError", "DeviceTimeout", "CoreError", "Transport",
           "SerialTransport", "GoldenTransport", "golden_executor"]
