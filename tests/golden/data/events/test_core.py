"""Tests for trident.golden.data.events.core: event dtype, file error, atomic writes."""
import pickle

import numpy as np
import pytest

from trident.golden.data.events.core import (EVENT_DTYPE, EventFileError, as_events,
                                             atomic_write_bytes, make_events)


def test_event_dtype_fields():
    assert EVENT_DTYPE.names == ("t", "x", "y", "p")
    assert EVENT_DTYPE["t"] == np.int64 and EVENT_DTYPE["x"] == np.uint16
    assert EVENT_DTYPE["y"] == np.uint16 and EVENT_DTYPE["p"] == np.uint8


def test_make_events_and_validation():
    ev = make_events([5, 6], [1, 2], [3, 4], [True, False])
    assert ev.dtype == EVENT_DTYPE
    assert ev.tolist() == [(5, 1, 3, 1), (6, 2, 4, 0)]
    with pytest.raises(ValueError, match="same length"):
        make_events([1], [1, 2], [1], [1])
    with pytest.raises(ValueError, match="polarities"):
        make_events([1], [1], [1], [2])
    with pytest.raises(ValueError, match="x coordinates"):
        make_events([1], [-1], [1], [1])


def test_as_events_converts_other_structured_arrays():
    other = np.array([(1, 2, 3, 1)], dtype=[("x", "i4"), ("y", "i4"), ("t", "f8"),
                                             ("p", "?")])
    ev = as_events(other)
    assert ev.dtype == EVENT_DTYPE and ev.tolist() == [(3, 1, 2, 1)]
    with pytest.raises(TypeError, match="fields t, x, y, p"):
        as_events(np.zeros(3))


def test_event_file_error_message_and_pickle(tmp_path):
    err = EventFileError(tmp_path / "a.bin", 42, "bad thing")
    assert isinstance(err, ValueError)
    text = str(err)
    assert str(tmp_path / "a.bin") in text and "byte offset 42" in text and "bad thing" in text
    assert "download" in text  # tells the user what to do
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == text and again.offset == 42


def test_atomic_write_creates_and_replaces(tmp_path):
    target = tmp_path / "sub" / "f.bin"
    atomic_write_bytes(target, b"abc")
    assert target.read_bytes() == b"abc"
    atomic_write_bytes(target, [b"de", b"f"])
    assert target.read_bytes() == b"def"
    assert [p.name for p in target.parent.iterdir()] == ["f.bin"]


def test_atomic_write_failure_leaves_old_file_and_no_temp(tmp_path):
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")

    def chunks():
        yield b"partial"
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        atomic_write_bytes(target, chunks())
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]
    with pytest.raises(RuntimeError):
        atomic_write_bytes(tmp_path / "new.bin", chunks())
    assert not (tmp_path / "new.bin").exists()
