"""Tests for trident.golden.data.events.nmnist: the N-MNIST ATIS .bin format."""
import numpy as np
import pytest

from trident.golden.data.events import EventFileError, make_events, read_nmnist, write_nmnist


def test_hand_computed_bytes(tmp_path):
    # x, y, then p<<7 | t[22:16], t[15:8], t[7:0].
    ev = make_events(t=[0x012345, 0x7FFFFF, 256], x=[5, 33, 0], y=[7, 0, 33], p=[1, 0, 1])
    path = write_nmnist(tmp_path / "a.bin", ev)
    assert path.read_bytes() == bytes([
        0x05, 0x07, 0x81, 0x23, 0x45,
        0x21, 0x00, 0x7F, 0xFF, 0xFF,
        0x00, 0x21, 0x80, 0x01, 0x00,
    ])
    assert np.array_equal(read_nmnist(path), ev)


def test_read_overflow_marker(tmp_path):
    path = tmp_path / "o.bin"
    path.write_bytes(bytes([
        0x01, 0x02, 0x80, 0x00, 0x0A,   # x=1 y=2 ON t=10
        0x00, 0xF0, 0x00, 0x00, 0x00,   # y == 240: overflow marker, +2**13 from here on
        0x03, 0x04, 0x00, 0x00, 0x05,   # x=3 y=4 OFF stored t=5 -> 8197
        0x09, 0xF0, 0x12, 0x34, 0x56,   # a second marker (its other bytes are ignored)
        0x06, 0x07, 0x80, 0x00, 0x01,   # stored t=1 -> 1 + 2 * 8192 = 16385
    ]))
    assert read_nmnist(path).tolist() == [(10, 1, 2, 1), (8197, 3, 4, 0), (16385, 6, 7, 1)]


def test_write_long_timestamps_uses_markers(tmp_path):
    # 2**23 + 5 needs one marker: stored 8388613 - 8192 = 8380421 = 0x7FE005.
    ev = make_events(t=[7, 2**23 + 5], x=[1, 2], y=[3, 4], p=[0, 1])
    path = write_nmnist(tmp_path / "l.bin", ev)
    assert path.read_bytes() == bytes([
        0x01, 0x03, 0x00, 0x00, 0x07,
        0x00, 0xF0, 0x00, 0x00, 0x00,
        0x02, 0x04, 0xFF, 0xE0, 0x05,
    ])
    assert np.array_equal(read_nmnist(path), ev)


def test_round_trip_random(tmp_path):
    rng = np.random.default_rng(1)
    n = 2000
    y = rng.integers(0, 34, n)
    t = np.sort(rng.integers(0, 3 * 2**23, n))  # crosses 2**23 several times
    ev = make_events(t, rng.integers(0, 34, n), y, rng.integers(0, 2, n))
    assert np.array_equal(read_nmnist(write_nmnist(tmp_path / "r.bin", ev)), ev)
    empty = make_events([], [], [], [])
    assert read_nmnist(write_nmnist(tmp_path / "e.bin", empty)).size == 0


def test_writer_rejects_unrepresentable(tmp_path):
    with pytest.raises(ValueError, match="240"):
        write_nmnist(tmp_path / "a.bin", make_events([0], [0], [240], [0]))
    with pytest.raises(ValueError, match="< 256"):
        write_nmnist(tmp_path / "a.bin", make_events([0], [300], [0], [0]))
    with pytest.raises(ValueError, match="non-decreasing"):
        write_nmnist(tmp_path / "a.bin", make_events([2**24, 5], [0, 0], [0, 0], [0, 0]))
    assert not (tmp_path / "a.bin").exists()


def test_truncated_file_names_path_and_offset(tmp_path):
    path = tmp_path / "cut.bin"
    path.write_bytes(bytes(12))  # two events and 2 bytes of a third
    with pytest.raises(EventFileError) as info:
        read_nmnist(path)
    assert info.value.offset == 10
    assert str(path) in str(info.value) and "byte offset 10" in str(info.value)


def test_missing_file():
    with pytest.raises(FileNotFoundError):
        read_nmnist("/nonexistent/x.bin")
