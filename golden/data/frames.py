"""Integrate events into frames ``[T, 2, H, W]``.

Frame ``j``, channel ``c`` (0 = OFF, 1 = ON), pixel ``(y, x)`` counts the events of
polarity ``c`` at ``(y, x)`` in slice ``j``. How the events are sliced:

``split_by="number"``
    Each frame gets ``N // T`` consecutive events (in array order).
``split_by="time"``
    ``dT = (t_last - t_first) // T`` with ``t_first``/``t_last`` the smallest and largest
    timestamps; slice ``j`` is ``t_first + j*dT <= t < t_first + (j+1)*dT``.

and what happens to what does not fit evenly (``mode``):

``mode="spikingjelly"`` (default)
    The last frame also takes the remainder: the last ``N % T`` events, or every event from
    ``t_first + (T-1)*dT`` to ``t_last`` inclusive. Every event lands in some frame. This is
    SpikingJelly's ``integrate_events_by_fixed_frames_number``.
``mode="tonic"``
    The remainder is dropped, as tonic's ``ToFrame(n_event_bins=T)`` /
    ``ToFrame(n_time_bins=T)`` do: the last ``N % T`` events, and every event at or after
    ``t_first + T*dT`` -- which always includes the events at ``t_last`` when ``T`` divides
    ``t_last - t_first``.

By number the two modes agree exactly when ``N % T == 0``. By time they never agree on a
non-empty recording: ``t_first + T*dT <= t_last`` always holds, so tonic mode drops at least
the events at ``t_last`` -- only those when ``T`` divides ``t_last - t_first``, and also the
ones in ``[t_first + T*dT, t_last)`` otherwise.

Degenerate cases follow the definitions: with ``N < T`` (by number) or ``dT == 0`` (by
time) the first ``T - 1`` slices are empty, so SpikingJelly mode puts every event in the last
frame and tonic mode returns all-zero frames. No events give all-zero frames.
"""
from __future__ import annotations

import numpy as np

__all__ = ["events_to_frames", "frame_index", "SPLIT_BY", "MODES"]

SPLIT_BY = ("number", "time")
MODES = ("spikingjelly", "tonic")


def frame_index(events, T: int, *, split_by: str = "number",
                mode: str = "spikingjelly") -> np.ndarray:
    """Return the frame each event falls in, or -1 for events the mode drops.

    Parameters
    ----------
    events : numpy.ndarray
        Structured array with at least the field ``t`` (:data:`EVENT_DTYPE`).
    T : int
        Number of frames, >= 1.
    split_by : {"number", "time"}
    mode : {"spikingjelly", "tonic"}
        See the module docstring.

    Returns
    -------
    numpy.ndarray
        int64 array of frame indices in ``-1 .. T-1``, one per event.
    """
    if split_by not in SPLIT_BY:
        raise ValueError(f"unknown split_by {split_by!r}; valid: {', '.join(SPLIT_BY)}")
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; valid: {', '.join(MODES)}")
    T = int(T)
    if T < 1:
        raise ValueError(f"T must be >= 1, got {T}")
    n = len(events)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    if split_by == "number":
        per_frame = n // T
        if per_frame == 0:
            j = np.full(n, T - 1 if mode == "spikingjelly" else -1, dtype=np.int64)
        else:
            j = np.arange(n, dtype=np.int64) // per_frame
    else:
        t = events["t"].astype(np.int64)
        t_first = t.min()
        dt = (t.max() - t_first) // T
        if dt == 0:
            j = np.full(n, T - 1 if mode == "spikingjelly" else -1, dtype=np.int64)
        else:
            j = (t - t_first) // dt
    if mode == "spikingjelly":
        np.minimum(j, T - 1, out=j)
    else:
        j[j >= T] = -1
    return j


def events_to_frames(events, T: int, height: int, width: int, *, split_by: str = "number",
                     mode: str = "spikingjelly", dtype=np.float32) -> np.ndarray:
    """Integrate events into ``T`` two-channel count frames.

    Parameters
    ----------
    events : numpy.ndarray
        Structured array with fields ``t, x, y, p`` (:data:`EVENT_DTYPE`); ``p`` is 0 (OFF)
        or 1 (ON). By-number slicing follows array order, which readers keep as in the file.
    T : int
        Number of frames.
    height, width : int
        Sensor size; every event must have ``y < height`` and ``x < width``.
    split_by : {"number", "time"}
        Slice by event count or by time (see the module docstring).
    mode : {"spikingjelly", "tonic"}
        Whether the last frame takes the remainder or the remainder is dropped.
    dtype : numpy dtype
        Output dtype (counts are exact in float32 up to 2**24 per pixel).

    Returns
    -------
    numpy.ndarray
        ``[T, 2, height, width]``: channel 0 counts OFF events, channel 1 ON events.

    Raises
    ------
    ValueError
        On an event outside the sensor, a polarity other than 0/1, or a bad option.
    """
    j = frame_index(events, T, split_by=split_by, mode=mode)
    size = T * 2 * height * width
    if j.size == 0:
        return np.zeros((T, 2, height, width), dtype=dtype)
    x = events["x"].astype(np.int64)
    y = events["y"].astype(np.int64)
    p = events["p"].astype(np.int64)
    if x.max() >= width or y.max() >= height or x.min() < 0 or y.min() < 0:
        raise ValueError(f"events outside the {height}x{width} sensor "
                         f"(x up to {x.max()}, y up to {y.max()})")
    if p.min() < 0 or p.max() > 1:
        raise ValueError("polarities must be 0 (OFF) or 1 (ON)")
    keep = j >= 0
    flat = ((j[keep] * 2 + p[keep]) * height + y[keep]) * width + x[keep]
    counts = np.bincount(flat, minlength=size)
    return counts.reshape(T, 2, height, width).astype(dtype, copy=False)
