"""AEDAT 2.0 (jAER) files with DVS128 addresses, as used by CIFAR10-DVS: reader and writer.

Layout::

    header  ASCII lines starting with '#' and ending with '\\r\\n'; the first is
            '#!AER-DAT2.0'. There is no end marker: the header ends at the first line
            that does not start with '#'.
    body    8-byte big-endian events: int32 address, int32 timestamp (µs).

Address bits: bit 0 polarity, bits 7..1 X, bits 14..8 Y, bit 15 external-event flag (0 for
pixel events; events with it set are not pixel events and are dropped). X and Y count from
the sensor's lower-left corner.

Orientation
-----------
Libraries disagree on how the address maps to an image. The reader offers two conventions
and the writer inverts either exactly:

``"spikingjelly"`` (default)
    ``x = 127 - Y``, ``y = 127 - X``, ``p = 1 - bit0``. This is what SpikingJelly and tonic
    return for CIFAR10-DVS; it shows the objects upright with the origin at the upper-left
    (the recordings' X and Y fields are swapped with respect to jAER's DVS128 convention),
    and in jAER's DVS128 extractor bit 0 = 0 is an ON event.
``"raw"``
    ``x = X``, ``y = Y``, ``p = bit0``: the address fields as stored.

Frame integration (:mod:`trident.golden.data.frames`) only sees ``x, y, p`` and does not
depend on the choice.
"""
from __future__ import annotations

import numpy as np

from .core import EVENT_DTYPE, EventFileError, as_events, atomic_write_bytes, read_file_bytes

__all__ = ["read_aedat2", "write_aedat2", "AEDAT2_SENSOR", "ORIENTATIONS"]

#: (height, width) of the DVS128.
AEDAT2_SENSOR = (128, 128)
ORIENTATIONS = ("spikingjelly", "raw")
_MAGIC = b"#!AER-DAT2.0"
_DEFAULT_HEADER = (
    "#!AER-DAT2.0",
    "# This is a raw AE data file - do not edit",
    "# Data format is int32 address, int32 timestamp (8 bytes total), repeated for each event",
    "# Timestamps tick is 1 us",
)
_EVENT = np.dtype([("addr", ">i4"), ("t", ">i4")])


def _check_orientation(orientation: str) -> None:
    if orientation not in ORIENTATIONS:
        raise ValueError(f"unknown orientation {orientation!r}; valid: {', '.join(ORIENTATIONS)}")


def _header_end(path, data: bytes) -> int:
    """Return the offset of the first body byte, checking the magic line."""
    if not data.startswith(_MAGIC):
        raise EventFileError(path, 0, f"the file does not start with {_MAGIC.decode()!r} "
                             f"(found {data[:len(_MAGIC)]!r})",
                             "This reader handles AEDAT 2.0 only; is it a CIFAR10-DVS .aedat "
                             "file? Otherwise download or extract it again.")
    pos = 0
    while data.startswith(b"#", pos):
        nl = data.find(b"\n", pos)
        if nl < 0:
            raise EventFileError(path, pos, "header line without a line end: the file ends "
                                 "inside the header")
        pos = nl + 1
    return pos


def read_aedat2(path, *, orientation: str = "spikingjelly") -> np.ndarray:
    """Read a CIFAR10-DVS AEDAT 2.0 file.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.aedat`` file.
    orientation : {"spikingjelly", "raw"}
        How addresses map to ``x, y, p`` (see the module docstring).

    Returns
    -------
    numpy.ndarray
        Pixel events of :data:`~trident.golden.data.events.EVENT_DTYPE` in file order
        (external events dropped). Timestamps are taken as stored; they are not checked for
        order, since frame integration does not need it.

    Raises
    ------
    EventFileError
        If the magic line is missing, the header is not terminated, the body is empty or
        its length is not a whole number of 8-byte events (an odd number of 32-bit words).
    """
    _check_orientation(orientation)
    data = read_file_bytes(path)
    start = _header_end(path, data)
    body = len(data) - start
    if body == 0:
        raise EventFileError(path, start, "the header is followed by no events (empty body)")
    if body % 8:
        offset = len(data) - body % 8
        what = ("an odd number of 32-bit words" if body % 4 == 0
                else f"{body} bytes, not a whole number of 32-bit words")
        raise EventFileError(path, offset, f"the body holds {what}: the last event "
                             "(address + timestamp, 8 bytes) is incomplete")
    raw = np.frombuffer(data, dtype=_EVENT, offset=start)
    addr = raw["addr"].astype(np.int64)
    keep = (addr & 0x8000) == 0
    addr = addr[keep]
    bit0 = addr & 1
    ax = (addr >> 1) & 0x7F
    ay = (addr >> 8) & 0x7F
    events = np.empty(addr.size, dtype=EVENT_DTYPE)
    events["t"] = raw["t"][keep]
    if orientation == "spikingjelly":
        events["x"], events["y"], events["p"] = 127 - ay, 127 - ax, 1 - bit0
    else:
        events["x"], events["y"], events["p"] = ax, ay, bit0
    return events


def encode_aedat2(events, *, orientation: str = "spikingjelly",
                  header: tuple[str, ...] = _DEFAULT_HEADER) -> bytes:
    """Encode events into the bytes of an AEDAT 2.0 file (see :func:`write_aedat2`)."""
    _check_orientation(orientation)
    events = as_events(events)
    if events.size == 0:
        raise ValueError("an AEDAT 2.0 file needs at least one event (readers reject an "
                         "empty body as corrupt)")
    x, y, p, t = (events[k].astype(np.int64) for k in "xypt")
    if x.max() > 127 or y.max() > 127:
        raise ValueError("DVS128 addresses hold x and y in 0..127")
    if t.min() < 0 or t.max() > np.iinfo(np.int32).max:
        raise ValueError("AEDAT 2.0 timestamps are int32 µs: they must lie in 0..2**31-1")
    if (np.diff(t) < 0).any():
        raise ValueError("AEDAT 2.0 timestamps must be non-decreasing")
    if not header or not header[0].startswith(_MAGIC.decode()):
        raise ValueError(f"the first header line must be {_MAGIC.decode()!r}")
    if any(not line.startswith("#") or "\n" in line or "\r" in line for line in header):
        raise ValueError("header lines must start with '#' and contain no line breaks")
    if orientation == "spikingjelly":
        ax, ay, bit0 = 127 - y, 127 - x, 1 - p
    else:
        ax, ay, bit0 = x, y, p
    body = np.empty(events.size, dtype=_EVENT)
    body["addr"] = (ay << 8) | (ax << 1) | bit0
    body["t"] = t
    head = "".join(line + "\r\n" for line in header).encode("ascii")
    return head + body.tobytes()


def write_aedat2(path, events, *, orientation: str = "spikingjelly",
                 header: tuple[str, ...] = _DEFAULT_HEADER):
    """Write events to an AEDAT 2.0 file with DVS128 addresses, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Destination (parent folders are created); written to a temporary name and renamed.
    events : numpy.ndarray
        Structured array with fields ``t, x, y, p``; at least one event, ``x, y`` in
        0..127, timestamps non-decreasing in 0..2**31-1.
    orientation : {"spikingjelly", "raw"}
        The convention the events are in; the same value given to :func:`read_aedat2`
        returns them unchanged.
    header : tuple of str
        Header lines without line ends; the first must be ``'#!AER-DAT2.0'``. The default
        carries no date so that files are byte-for-byte reproducible.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    return atomic_write_bytes(path, encode_aedat2(events, orientation=orientation,
                                                  header=header))
