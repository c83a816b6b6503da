"""Tests for trident.golden.data.frames: events -> [T, 2, H, W] frames."""
import numpy as np
import pytest

from trident.golden.data.events import make_events
from trident.golden.data.frames import events_to_frames, frame_index

# Seven events on a 2 x 3 sensor, 10 µs apart.
SEVEN = make_events(t=[0, 10, 20, 30, 40, 50, 60],
                    x=[0, 1, 2, 2, 0, 1, 2],
                    y=[0, 1, 0, 0, 1, 1, 1],
                    p=[1, 0, 1, 1, 0, 1, 0])


def frames_from(groups, events, T, H=2, W=3):
    """Frames built one event at a time from the hand-chosen event index groups."""
    out = np.zeros((T, 2, H, W), dtype=np.float32)
    for j, group in enumerate(groups):
        for i in group:
            out[j, events["p"][i], events["y"][i], events["x"][i]] += 1
    return out


def test_hand_frame_contents():
    f = events_to_frames(SEVEN[:2], 1, 2, 3)
    expected = np.zeros((1, 2, 2, 3), np.float32)
    expected[0, 1, 0, 0] = 1  # event 0: ON at (y=0, x=0)
    expected[0, 0, 1, 1] = 1  # event 1: OFF at (y=1, x=1)
    assert np.array_equal(f, expected)
    # Repeated pixels accumulate (events 2 and 3: ON at y=0, x=2).
    assert events_to_frames(SEVEN[2:4], 1, 2, 3)[0, 1, 0, 2] == 2


@pytest.mark.parametrize("split_by, mode, groups", [
    # N = 7, T = 3: 7 // 3 = 2 events per frame; the remainder (event 6) goes to the last
    # frame, or is dropped by tonic.
    ("number", "spikingjelly", [[0, 1], [2, 3], [4, 5, 6]]),
    ("number", "tonic", [[0, 1], [2, 3], [4, 5]]),
    # dT = (60 - 0) // 3 = 20: [0,20) [20,40) [40,60]; tonic's last window is [40, 60), so
    # the event at t_last = 60 (on the final boundary) is dropped.
    ("time", "spikingjelly", [[0, 1], [2, 3], [4, 5, 6]]),
    ("time", "tonic", [[0, 1], [2, 3], [4, 5]]),
])
def test_non_divisible_count_divisible_time(split_by, mode, groups):
    f = events_to_frames(SEVEN, 3, 2, 3, split_by=split_by, mode=mode)
    assert np.array_equal(f, frames_from(groups, SEVEN, 3))


@pytest.mark.parametrize("mode", ["spikingjelly", "tonic"])
def test_divisible_count_modes_agree(mode):
    six = SEVEN[:6]  # N = 6, T = 3: two events per frame, nothing left over
    f = events_to_frames(six, 3, 2, 3, split_by="number", mode=mode)
    assert np.array_equal(f, frames_from([[0, 1], [2, 3], [4, 5]], six, 3))


def test_time_non_divisible_span():
    ev = make_events(t=[0, 5, 9, 13, 21, 23], x=[0, 1, 2, 0, 1, 2], y=[0] * 6,
                     p=[1, 1, 0, 0, 1, 0])
    # dT = 23 // 2 = 11: windows [0, 11), [11, 22) then the remainder [22, 23].
    assert frame_index(ev, 2, split_by="time").tolist() == [0, 0, 0, 1, 1, 1]
    assert frame_index(ev, 2, split_by="time", mode="tonic").tolist() == [0, 0, 0, 1, 1, -1]
    sj = events_to_frames(ev, 2, 2, 3, split_by="time")
    tonic = events_to_frames(ev, 2, 2, 3, split_by="time", mode="tonic")
    assert np.array_equal(sj, frames_from([[0, 1, 2], [3, 4, 5]], ev, 2))
    assert np.array_equal(tonic, frames_from([[0, 1, 2], [3, 4]], ev, 2))


def test_degenerate_cases():
    assert frame_index(SEVEN[:2], 3).tolist() == [2, 2]          # N < T: all in the last
    assert frame_index(SEVEN[:2], 3, mode="tonic").tolist() == [-1, -1]
    same_t = make_events([5, 5, 6], [0, 1, 2], [0, 0, 0], [1, 1, 1])  # dT = 1 // 3 = 0
    assert frame_index(same_t, 3, split_by="time").tolist() == [2, 2, 2]
    assert frame_index(same_t, 3, split_by="time", mode="tonic").tolist() == [-1, -1, -1]
    assert events_to_frames(SEVEN[:0], 4, 2, 3).shape == (4, 2, 2, 3)
    assert events_to_frames(SEVEN[:0], 4, 2, 3).sum() == 0


def test_errors():
    with pytest.raises(ValueError, match="outside"):
        events_to_frames(SEVEN, 2, 2, 2)
    with pytest.raises(ValueError, match="split_by"):
        events_to_frames(SEVEN, 2, 2, 3, split_by="space")
    with pytest.raises(ValueError, match="mode"):
        events_to_frames(SEVEN, 2, 2, 3, mode="snntorch")
    with pytest.raises(ValueError, match="T must be"):
        events_to_frames(SEVEN, 0, 2, 3)


def _spikingjelly_reference(ev, T, split_by, H, W):
    """Loop-based restatement of SpikingJelly's segment indices (j_l, j_r)."""
    t, n = ev["t"], len(ev)
    out = np.zeros((T, 2, H, W))
    for j in range(T):
        if split_by == "number":
            lo, hi = j * (n // T), (j + 1) * (n // T) if j < T - 1 else n
        else:
            dt = (t[-1] - t[0]) // T
            lo = np.searchsorted(t, t[0] + j * dt)
            hi = np.searchsorted(t, t[0] + (j + 1) * dt) if j < T - 1 else n
        for i in range(lo, hi):
            out[j, ev["p"][i], ev["y"][i], ev["x"][i]] += 1
    return out


def _tonic_reference(ev, T, split_by, H, W):
    """Restatement of tonic's slice_events_by_event_bins / slice_events_by_time_bins."""
    t, n = ev["t"], len(ev)
    out = np.zeros((T, 2, H, W))
    for j in range(T):
        if split_by == "number":
            lo, hi = j * (n // T), (j + 1) * (n // T)
        else:
            dt = (t[-1] - t[0]) // T
            lo, hi = np.searchsorted(t, [t[0] + j * dt, t[0] + (j + 1) * dt])
        for i in range(lo, hi):
            out[j, ev["p"][i], ev["y"][i], ev["x"][i]] += 1
    return out


@pytest.mark.parametrize("n, T", [(600, 6), (601, 6), (997, 7)])
@pytest.mark.parametrize("split_by", ["number", "time"])
def test_matches_loop_references(n, T, split_by):
    rng = np.random.default_rng(n + T)
    ev = make_events(np.sort(rng.integers(0, 10_000, n)), rng.integers(0, 5, n),
                     rng.integers(0, 4, n), rng.integers(0, 2, n))
    sj = events_to_frames(ev, T, 4, 5, split_by=split_by)
    assert np.array_equal(sj, _spikingjelly_reference(ev, T, split_by, 4, 5))
    assert sj.sum() == n
    tonic = events_to_frames(ev, T, 4, 5, split_by=split_by, mode="tonic")
    assert np.array_equal(tonic, _tonic_reference(ev, T, split_by, 4, 5))
    if split_by == "number":
        assert np.array_equal(sj, tonic) == (n % T == 0)
        assert tonic.sum() == n - n % T
