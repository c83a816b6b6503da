"""N-MNIST / N-Caltech101 ATIS ``.bin`` files: reader and writer.

Byte layout (no header; a flat sequence of 5-byte events)::

    byte 0  x                      uint8
    byte 1  y                      uint8
    byte 2  bit 7: polarity (1 = ON), bits 6..0: timestamp bits 22..16
    byte 3  timestamp bits 15..8
    byte 4  timestamp bits 7..0    (23-bit timestamp in µs)

An event with ``y == 240`` is a timestamp-overflow marker in some readers (tonic, the
original MATLAB ``Read_Ndataset.m``): every later event gets :data:`OVERFLOW_INCREMENT` µs
added and the marker itself is dropped. A 300 ms N-MNIST recording never contains one, but
the reader honours it and the writer emits markers when a timestamp needs more than 23 bits.

The real dataset lives in ``Train/<digit>/<id>.bin`` and ``Test/<digit>/<id>.bin`` on a
34 x 34 sensor; coordinates are used as stored (origin at the upper-left).
"""
from __future__ import annotations

import numpy as np

from .core import EVENT_DTYPE, EventFileError, as_events, atomic_write_bytes, read_file_bytes

__all__ = ["read_nmnist", "write_nmnist", "NMNIST_SENSOR", "OVERFLOW_MARKER_Y",
           "OVERFLOW_INCREMENT"]

#: (height, width) of the ATIS crop used by N-MNIST.
NMNIST_SENSOR = (34, 34)
#: ``y`` value that marks a timestamp overflow instead of an event.
OVERFLOW_MARKER_Y = 240
#: µs added to every event after an overflow marker (2**13, as in Read_Ndataset.m and tonic).
OVERFLOW_INCREMENT = 1 << 13
_TS_MAX = (1 << 23) - 1


def read_nmnist(path) -> np.ndarray:
    """Read an N-MNIST / N-Caltech101 ``.bin`` file.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.bin`` file.

    Returns
    -------
    numpy.ndarray
        Events of :data:`~trident.golden.data.events.EVENT_DTYPE` in file order, overflow
        markers removed and their increments applied.

    Raises
    ------
    EventFileError
        If the file size is not a multiple of 5 (the offset is that of the incomplete
        trailing event).
    FileNotFoundError
        If ``path`` does not exist.
    """
    data = read_file_bytes(path)
    tail = len(data) % 5
    if tail:
        offset = len(data) - tail
        raise EventFileError(path, offset, f"file size {len(data)} is not a multiple of 5: "
                             f"the last event is cut after {tail} byte(s)")
    raw = np.frombuffer(data, dtype=np.uint8).reshape(-1, 5)
    y = raw[:, 1]
    b2 = raw[:, 2].astype(np.int64)
    t = ((b2 & 0x7F) << 16) | (raw[:, 3].astype(np.int64) << 8) | raw[:, 4]
    marker = y == OVERFLOW_MARKER_Y
    if marker.any():
        # A marker shifts every later event, so the shift of an event is the number of markers
        # up to it; the markers themselves are then dropped.
        t = t + np.cumsum(marker, dtype=np.int64) * OVERFLOW_INCREMENT
    keep = ~marker
    events = np.empty(int(keep.sum()), dtype=EVENT_DTYPE)
    events["t"] = t[keep]
    events["x"] = raw[keep, 0]
    events["y"] = y[keep]
    events["p"] = b2[keep] >> 7
    return events


def encode_nmnist(events) -> bytes:
    """Encode events into the bytes of an N-MNIST ``.bin`` file (see :func:`write_nmnist`)."""
    events = as_events(events)
    x, y, p, t = (events[k].astype(np.int64) for k in "xypt")
    if events.size:
        if x.max() > 255 or y.max() > 255:
            raise ValueError("N-MNIST stores x and y in one byte each: coordinates must be < 256")
        if (y == OVERFLOW_MARKER_Y).any():
            raise ValueError("y == 240 cannot be written: readers take it for an overflow marker")
        if t.min() < 0:
            raise ValueError("N-MNIST timestamps must be >= 0")
    # k[i] = number of overflow markers written before event i: just enough to bring the
    # stored timestamp t - k * 2**13 into 23 bits, and never fewer than before (markers
    # accumulate). That only works if time does not go back across a marker.
    need = np.maximum(0, -(-(t - _TS_MAX) // OVERFLOW_INCREMENT))
    k = np.maximum.accumulate(need) if t.size else need
    stored = t - k * OVERFLOW_INCREMENT
    if stored.size and stored.min() < 0:
        raise ValueError("timestamps beyond 2**23 - 1 µs are written with overflow markers, "
                         "which needs events in non-decreasing time order")
    out = np.empty((t.size, 5), dtype=np.uint8)
    out[:, 0] = x
    out[:, 1] = y
    out[:, 2] = (p << 7) | (stored >> 16)
    out[:, 3] = (stored >> 8) & 0xFF
    out[:, 4] = stored & 0xFF
    if t.size and k[-1]:
        # Event i is preceded by k[i] markers in all, so it lands on row i + k[i]; every
        # other row is a marker (y = 240, all other bytes 0).
        full = np.zeros((t.size + int(k[-1]), 5), dtype=np.uint8)
        full[:, 1] = OVERFLOW_MARKER_Y
        full[np.arange(t.size) + k] = out
        out = full
    return out.tobytes()


def write_nmnist(path, events):
    """Write events to an N-MNIST ``.bin`` file, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Destination (parent folders are created). The file is written to a temporary name
        and renamed, so it is never seen half-written.
    events : numpy.ndarray
        Structured array with fields ``t, x, y, p`` (:data:`EVENT_DTYPE`). Timestamps above
        2**23 - 1 µs are written with ``y == 240`` overflow markers, which requires the events
        to be in non-decreasing time order.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ValueError
        If an event cannot be represented (x or y >= 256, y == 240, t < 0, or out-of-order
        timestamps that would need overflow markers).
    """
    return atomic_write_bytes(path, encode_nmnist(events))
