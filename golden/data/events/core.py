"""What every event format shares: the in-memory event type, the file error, atomic writes.

All readers in :mod:`trident.golden.data.events` return events as one numpy structured array
of :data:`EVENT_DTYPE`, whatever the file format, so that frame integration and the datasets
never need to know where the events came from.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from trident.atomic import atomic_write

__all__ = ["EVENT_DTYPE", "EventFileError", "make_events", "atomic_write_bytes"]

#: One event: ``t`` timestamp in microseconds, ``x`` column and ``y`` row (origin at the
#: upper-left unless a reader documents otherwise), ``p`` polarity (1 = ON, brighter;
#: 0 = OFF, darker). int64 time so that AEDAT 3.1 overflow counters (t beyond 2^31 µs) fit.
EVENT_DTYPE = np.dtype([("t", np.int64), ("x", np.uint16), ("y", np.uint16), ("p", np.uint8)])

_DEFAULT_HINT = ("The file is truncated or corrupt: download or extract it again "
                 "(for generated data, delete it and it will be regenerated).")


class EventFileError(ValueError):
    """An event or label file that cannot be parsed.

    The message always names the file, the byte offset where parsing failed, what was wrong
    there and what to do about it.

    Parameters
    ----------
    path : str or os.PathLike
        The file being read.
    offset : int
        Byte offset (from the start of the file) of the first byte that could not be parsed.
    problem : str
        What was found there, in words.
    hint : str, optional
        What the user should do; defaults to re-downloading or regenerating the file.

    Attributes
    ----------
    path : pathlib.Path
    offset : int
    problem : str
    hint : str
    """

    def __init__(self, path, offset: int, problem: str, hint: str | None = None):
        self.path = Path(path)
        self.offset = int(offset)
        self.problem = problem
        self.hint = hint or _DEFAULT_HINT
        super().__init__(f"{self.path}: at byte offset {self.offset}: {problem}. {self.hint}")

    def __reduce__(self):
        # Keeps the exception picklable (multiprocessing data loaders re-raise it in the parent).
        return (type(self), (self.path, self.offset, self.problem, self.hint))


def make_events(t, x, y, p) -> np.ndarray:
    """Build an event array of :data:`EVENT_DTYPE` from four equally long sequences.

    Parameters
    ----------
    t, x, y, p : array_like
        Timestamps (µs), columns, rows and polarities (0 or 1; booleans are accepted).

    Returns
    -------
    numpy.ndarray
        Structured array of dtype :data:`EVENT_DTYPE`.

    Raises
    ------
    ValueError
        If the lengths differ, a coordinate does not fit uint16, or a polarity is not 0/1.
    """
    cols = [np.asarray(a).reshape(-1) for a in (t, x, y, p)]
    n = cols[0].size
    if any(c.size != n for c in cols):
        raise ValueError(f"t, x, y, p must have the same length, got {[c.size for c in cols]}")
    for name, c in zip("xy", cols[1:3]):
        if n and (c.min() < 0 or c.max() > np.iinfo(np.uint16).max):
            raise ValueError(f"{name} coordinates must lie in 0..65535")
    if n and not np.isin(cols[3], (0, 1)).all():
        raise ValueError("polarities must be 0 (OFF) or 1 (ON)")
    events = np.empty(n, dtype=EVENT_DTYPE)
    for name, c in zip("txyp", cols):
        events[name] = c
    return events


def as_events(events) -> np.ndarray:
    """Check that ``events`` is a 1-D array with the fields of :data:`EVENT_DTYPE`.

    Writers accept any structured array with fields ``t, x, y, p`` (e.g. tonic's), converting
    it field by field; anything else is a programming error reported clearly.
    """
    events = np.asarray(events)
    names = events.dtype.names or ()
    if events.ndim != 1 or not set("txyp") <= set(names):
        raise TypeError("events must be a 1-D structured array with fields t, x, y, p "
                        f"(see EVENT_DTYPE), got dtype {events.dtype} and shape {events.shape}")
    if events.dtype == EVENT_DTYPE:
        return events
    return make_events(events["t"], events["x"], events["y"], events["p"])


def atomic_write_bytes(path, chunks) -> Path:
    """Write bytes to ``path`` so that the file is either complete or absent.

    The data go to a temporary file in the same folder, which then replaces ``path`` with
    :func:`os.replace` (atomic on POSIX and Windows within one file system). A crash or an
    exception while writing leaves no half-written ``path`` behind, which is what lets the
    synthetic dataset treat "the file exists" as "the file is complete".

    No ``fsync``: the files written here are datasets that can be regenerated, and an fsync
    per file would dominate the generation time. Atomicity therefore holds against crashes
    of this process, not against a power cut.

    Parameters
    ----------
    path : str or os.PathLike
        Destination; its parent folders are created.
    chunks : bytes or iterable of bytes-like
        The content, written in order.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    return atomic_write(path, chunks, durable=False)


def read_file_bytes(path) -> bytes:
    """Read a whole file; a missing file is reported as such, not as a corrupt one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such event file")
    return path.read_bytes()
