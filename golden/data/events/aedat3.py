"""AEDAT 3.1 (cAER) files and labels, as used by DVS128 Gesture: readers and writers.

Layout::

    header  ASCII lines starting with '#' and ending with '\\r\\n': '#!AER-DAT3.1',
            '#Format: RAW', '#Source <id>: <device>', '#Start-Time: ...', and last
            '#!END-HEADER'.
    body    packets. Every field is little-endian and signed. A packet is a 28-byte header
            (int16 eventType, int16 eventSource, int32 eventSize, int32 eventTSOffset,
            int32 eventTSOverflow, int32 eventCapacity, int32 eventNumber,
            int32 eventValid) followed by eventCapacity * eventSize bytes of events.

Polarity events (eventType 1, 8 bytes each): uint32 data (bit 0 valid, bit 1 polarity with
1 = ON, bits 16..2 Y, bits 31..17 X), then int32 timestamp. The full time in µs is
``(eventTSOverflow << 31) | timestamp``. Coordinates are kept as stored: origin at the
upper-left, as in the images of DVS128 Gesture.

The reader decodes the first ``eventNumber`` slots of each polarity packet (the rest of the
capacity is unused space), keeps the events whose valid bit is set, and skips packets of
every other type by seeking past ``eventCapacity * eventSize`` bytes.

Labels: ``userNN_<lighting>_labels.csv`` with the header ``class,startTime_usec,endTime_usec``
and classes 1..11; a labelled sample is the events with ``start <= t < end``
(:func:`split_by_labels`).
"""
from __future__ import annotations

import struct

import numpy as np

from .core import EVENT_DTYPE, EventFileError, as_events, atomic_write_bytes, read_file_bytes

__all__ = ["read_aedat3", "write_aedat3", "read_gesture_labels", "write_gesture_labels",
           "split_by_labels", "LABEL_DTYPE", "GESTURE_SENSOR", "POLARITY_EVENT"]

#: (height, width) of the DVS128.
GESTURE_SENSOR = (128, 128)
#: eventType of polarity packets.
POLARITY_EVENT = 1
#: One labelled interval: class as in the CSV (1..11), start and end in µs.
LABEL_DTYPE = np.dtype([("label", np.int64), ("start", np.int64), ("end", np.int64)])

_MAGIC = b"#!AER-DAT3.1"
_END = b"#!END-HEADER"
_PACKET = struct.Struct("<hhiiiiii")
_POLARITY = np.dtype([("data", "<u4"), ("ts", "<i4")])
_LABEL_HEADER = "class,startTime_usec,endTime_usec"
_TS_BITS = 31


def _header_end(path, data: bytes) -> int:
    if not data.startswith(_MAGIC):
        raise EventFileError(path, 0, f"the file does not start with {_MAGIC.decode()!r} "
                             f"(found {data[:len(_MAGIC)]!r})",
                             "This reader handles AEDAT 3.1 only; is it a DVS128 Gesture "
                             ".aedat file? Otherwise download or extract it again.")
    pos = 0
    while True:
        nl = data.find(b"\n", pos)
        if nl < 0 or not data.startswith(b"#", pos):
            raise EventFileError(path, pos, f"the header ends without a {_END.decode()!r} "
                                 "line")
        line = data[pos:nl].rstrip(b"\r")
        pos = nl + 1
        if line == _END:
            return pos


def read_aedat3(path) -> np.ndarray:
    """Read the polarity events of an AEDAT 3.1 file.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.aedat`` file.

    Returns
    -------
    numpy.ndarray
        Valid polarity events of :data:`~trident.golden.data.events.EVENT_DTYPE` in file
        order, with full 64-bit timestamps (overflow counter applied).

    Raises
    ------
    EventFileError
        If the header is malformed, a packet header or a packet's events are cut short, or
        a packet header is inconsistent (negative sizes, more events than capacity, a
        polarity packet whose events are not 8 bytes), or a valid event has a negative
        timestamp.
    """
    data = read_file_bytes(path)
    pos = _header_end(path, data)
    chunks = []
    while pos < len(data):
        if len(data) - pos < _PACKET.size:
            raise EventFileError(path, pos, f"packet header cut short: {len(data) - pos} of "
                                 f"{_PACKET.size} bytes")
        (etype, _source, esize, _tsoffset, overflow, capacity, number,
         _valid) = _PACKET.unpack_from(data, pos)
        if esize <= 0 or capacity < 0 or not 0 <= number <= capacity or overflow < 0:
            raise EventFileError(path, pos, f"inconsistent packet header (eventType {etype}, "
                                 f"eventSize {esize}, eventTSOverflow {overflow}, "
                                 f"eventCapacity {capacity}, eventNumber {number})")
        start = pos + _PACKET.size
        end = start + capacity * esize
        if end > len(data):
            raise EventFileError(path, start, f"packet of {capacity} x {esize}-byte events "
                                 f"needs {capacity * esize} bytes, only {len(data) - start} "
                                 "remain")
        if etype == POLARITY_EVENT:
            if esize != _POLARITY.itemsize:
                raise EventFileError(path, pos, f"polarity packet with eventSize {esize}, "
                                     "expected 8")
            ev = np.frombuffer(data, dtype=_POLARITY, count=number, offset=start)
            word = ev["data"]
            ok = (word & 1).astype(bool)
            negative = np.flatnonzero(ok & (ev["ts"] < 0))
            if negative.size:
                raise EventFileError(path, start + 8 * int(negative[0]), "negative timestamp "
                                     "(AEDAT 3.1 timestamps are 31-bit, the overflow counter "
                                     "holds the higher bits)")
            word = word[ok]
            chunk = np.empty(word.size, dtype=EVENT_DTYPE)
            chunk["t"] = (np.int64(overflow) << _TS_BITS) | ev["ts"][ok].astype(np.int64)
            chunk["x"] = word >> 17
            chunk["y"] = (word >> 2) & 0x7FFF
            chunk["p"] = (word >> 1) & 1
            chunks.append(chunk)
        pos = end
    if not chunks:
        return np.empty(0, dtype=EVENT_DTYPE)
    return np.concatenate(chunks)


def encode_aedat3(events, *, events_per_packet: int = 4096, source: int = 1,
                  device: str = "DVS128",
                  start_time: str = "1970-01-01 00:00:00 (TZ+0000)") -> bytes:
    """Encode events into the bytes of an AEDAT 3.1 file (see :func:`write_aedat3`)."""
    events = as_events(events)
    if events_per_packet < 1:
        raise ValueError("events_per_packet must be >= 1")
    x, y, p, t = (events[k].astype(np.int64) for k in "xypt")
    if events.size:
        if x.max() > 0x7FFF or y.max() > 0x7FFF:
            raise ValueError("AEDAT 3.1 polarity events hold x and y in 15 bits")
        if t.min() < 0:
            raise ValueError("AEDAT 3.1 timestamps must be >= 0")
        if (np.diff(t) < 0).any():
            raise ValueError("AEDAT 3.1 timestamps must be non-decreasing")
    parts = [f"{_MAGIC.decode()}\r\n#Format: RAW\r\n#Source {source}: {device}\r\n"
             f"#Start-Time: {start_time}\r\n{_END.decode()}\r\n".encode("ascii")]
    overflow = t >> _TS_BITS
    word = ((x << 17) | (y << 2) | (p << 1) | 1).astype(np.uint32)
    ts = (t & ((1 << _TS_BITS) - 1)).astype(np.int32)
    # A packet carries one overflow value, so packets break where it changes as well as every
    # events_per_packet events.
    breaks = np.flatnonzero(np.diff(overflow)) + 1
    for seg in np.split(np.arange(t.size), breaks):
        for i in range(0, seg.size, events_per_packet):
            idx = seg[i:i + events_per_packet]
            n = idx.size
            parts.append(_PACKET.pack(POLARITY_EVENT, source, _POLARITY.itemsize, 4,
                                      int(overflow[idx[0]]), n, n, n))
            body = np.empty(n, dtype=_POLARITY)
            body["data"], body["ts"] = word[idx], ts[idx]
            parts.append(body.tobytes())
    return b"".join(parts)


def write_aedat3(path, events, *, events_per_packet: int = 4096, source: int = 1,
                 device: str = "DVS128", start_time: str = "1970-01-01 00:00:00 (TZ+0000)"):
    """Write polarity events to an AEDAT 3.1 file, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Destination (parent folders are created); written to a temporary name and renamed.
    events : numpy.ndarray
        Structured array with fields ``t, x, y, p``, timestamps non-decreasing and >= 0;
        times of 2**31 µs and more are written with the packet overflow counter.
    events_per_packet : int
        Largest packet; a packet also ends where the overflow counter changes. All events
        are written valid, with capacity = number = valid.
    source : int
        eventSource of the packets and the id in the ``#Source`` header line.
    device : str
        Device name in the ``#Source`` header line.
    start_time : str
        ``#Start-Time`` header value; a fixed default keeps files reproducible.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    return atomic_write_bytes(path, encode_aedat3(events, events_per_packet=events_per_packet,
                                                  source=source, device=device,
                                                  start_time=start_time))


def read_gesture_labels(path) -> np.ndarray:
    """Read a DVS128 Gesture ``*_labels.csv`` file.

    Parameters
    ----------
    path : str or os.PathLike
        The CSV file: header ``class,startTime_usec,endTime_usec`` then one row per sample.

    Returns
    -------
    numpy.ndarray
        Array of :data:`LABEL_DTYPE` (``label`` 1..11 as in the file, ``start``, ``end``).

    Raises
    ------
    EventFileError
        If the header is wrong or a row is not three integers with a class in 1..11 and
        ``start < end``; the offset is that of the offending line.
    """
    data = read_file_bytes(path)
    rows = []
    offset = 0
    for number, line in enumerate(data.splitlines(keepends=True)):
        text = line.decode("ascii", errors="replace").strip()
        if number == 0:
            if text.replace(" ", "") != _LABEL_HEADER:
                raise EventFileError(path, offset, f"expected the header {_LABEL_HEADER!r}, "
                                     f"found {text!r}")
        elif text:
            try:
                label, start, end = (int(v) for v in text.split(","))
            except ValueError:
                raise EventFileError(path, offset, f"line {number + 1} is not three integers: "
                                     f"{text!r}") from None
            if not 1 <= label <= 11 or start >= end:
                raise EventFileError(path, offset, f"line {number + 1}: class must be 1..11 "
                                     f"and start < end, got {text!r}")
            rows.append((label, start, end))
        offset += len(line)
    if not data:
        raise EventFileError(path, 0, "empty labels file")
    return np.array(rows, dtype=LABEL_DTYPE)


def write_gesture_labels(path, labels):
    """Write a DVS128 Gesture labels CSV, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Destination.
    labels : array_like
        Array of :data:`LABEL_DTYPE`, or rows ``(class, start, end)``.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    labels = np.asarray(labels)
    if labels.dtype.names is None:
        labels = np.array([tuple(int(v) for v in row) for row in labels.reshape(-1, 3)],
                          dtype=LABEL_DTYPE)
    lines = [_LABEL_HEADER] + [f"{int(r['label'])},{int(r['start'])},{int(r['end'])}"
                               for r in labels]
    return atomic_write_bytes(path, ("\n".join(lines) + "\n").encode("ascii"))


def split_by_labels(events, labels) -> list[tuple[np.ndarray, int]]:
    """Cut a recording into its labelled samples.

    Parameters
    ----------
    events : numpy.ndarray
        Events of one recording (:data:`EVENT_DTYPE`).
    labels : numpy.ndarray
        Its labels (:data:`LABEL_DTYPE`), e.g. from :func:`read_gesture_labels`.

    Returns
    -------
    list of (numpy.ndarray, int)
        One ``(events, class)`` per label row, in row order: the events with
        ``start <= t < end`` (kept in file order) and the class as stored (1..11).
    """
    t = events["t"]
    if t.size and (np.diff(t) >= 0).all():
        lo = np.searchsorted(t, labels["start"], side="left")
        hi = np.searchsorted(t, labels["end"], side="left")
        return [(events[a:b], int(c)) for a, b, c in zip(lo, hi, labels["label"])]
    # Out-of-order timestamps: a mask per interval is slower but exact.
    return [(events[(t >= s) & (t < e)], int(c))
            for c, s, e in zip(labels["label"], labels["start"], labels["end"])]
