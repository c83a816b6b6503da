"""Tests for trident.golden.data.events.aedat2: CIFAR10-DVS AEDAT 2.0 files."""
import numpy as np
import pytest

from trident.golden.data.events import EventFileError, make_events, read_aedat2, write_aedat2

HEADER = b"#!AER-DAT2.0\r\n# a comment\r\n"
# address = Y << 8 | X << 1 | bit0, then timestamp, both int32 big-endian.
BODY = bytes([
    0x00, 0x00, 0x14, 0x15, 0x00, 0x00, 0x03, 0xE8,   # X=10 Y=20 bit0=1, t=1000
    0x00, 0x00, 0x7F, 0x00, 0x00, 0x01, 0x00, 0x00,   # X=0 Y=127 bit0=0, t=65536
    0x00, 0x00, 0x80, 0x03, 0x00, 0x01, 0x00, 0x01,   # bit 15 set: external event, dropped
])


def test_read_hand_computed_both_orientations(tmp_path):
    path = tmp_path / "a.aedat"
    path.write_bytes(HEADER + BODY)
    assert read_aedat2(path, orientation="raw").tolist() == [(1000, 10, 20, 1),
                                                             (65536, 0, 127, 0)]
    # SpikingJelly: x = 127 - Y, y = 127 - X, p = 1 - bit0.
    assert read_aedat2(path).tolist() == [(1000, 107, 117, 0), (65536, 0, 127, 1)]


def test_write_hand_computed_bytes(tmp_path):
    ev = make_events(t=[1000, 65536], x=[10, 0], y=[20, 127], p=[1, 0])
    path = write_aedat2(tmp_path / "w.aedat", ev, orientation="raw", header=("#!AER-DAT2.0",))
    assert path.read_bytes() == b"#!AER-DAT2.0\r\n" + BODY[:16]
    sj = make_events(t=[1000, 65536], x=[107, 0], y=[117, 127], p=[0, 1])
    path = write_aedat2(tmp_path / "s.aedat", sj, header=("#!AER-DAT2.0",))
    assert path.read_bytes() == b"#!AER-DAT2.0\r\n" + BODY[:16]


@pytest.mark.parametrize("orientation", ["spikingjelly", "raw"])
def test_round_trip(tmp_path, orientation):
    rng = np.random.default_rng(2)
    n = 500
    ev = make_events(np.sort(rng.integers(0, 2**31, n)), rng.integers(0, 128, n),
                     rng.integers(0, 128, n), rng.integers(0, 2, n))
    path = write_aedat2(tmp_path / "r.aedat", ev, orientation=orientation)
    assert path.read_bytes().startswith(b"#!AER-DAT2.0\r\n")
    assert np.array_equal(read_aedat2(path, orientation=orientation), ev)


def test_writer_rejects(tmp_path):
    with pytest.raises(ValueError, match="at least one event"):
        write_aedat2(tmp_path / "a", make_events([], [], [], []))
    with pytest.raises(ValueError, match="0..127"):
        write_aedat2(tmp_path / "a", make_events([0], [128], [0], [0]))
    with pytest.raises(ValueError, match="non-decreasing"):
        write_aedat2(tmp_path / "a", make_events([5, 4], [0, 0], [0, 0], [0, 0]))
    with pytest.raises(ValueError, match="orientation"):
        read_aedat2(tmp_path / "a", orientation="upside-down")


@pytest.mark.parametrize("content, offset, words", [
    (HEADER, len(HEADER), "empty body"),
    (HEADER + BODY[:12], len(HEADER) + 8, "odd number of 32-bit words"),
    (HEADER + BODY[:10], len(HEADER) + 8, "not a whole number"),
    (b"#!AER-DAT3.1\r\n" + BODY, 0, "does not start with"),
    (b"#!AER-DAT2.0\r\n# no line end", 14, "ends inside the header"),
])
def test_corrupt_files(tmp_path, content, offset, words):
    path = tmp_path / "bad.aedat"
    path.write_bytes(content)
    with pytest.raises(EventFileError, match=words) as info:
        read_aedat2(path)
    assert info.value.offset == offset
    assert str(path) in str(info.value) and f"byte offset {offset}" in str(info.value)
