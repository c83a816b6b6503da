"""Tests for trident.golden.data.events.aedat3: DVS128 Gesture AEDAT 3.1 files and labels."""
import struct

import numpy as np
import pytest

from trident.golden.data.events import (EventFileError, make_events, read_aedat3,
                                        read_gesture_labels, split_by_labels, write_aedat3,
                                        write_gesture_labels)

HEADER = (b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n"
          b"#Start-Time: 2017-01-01 00:00:00 (TZ+0000)\r\n#!END-HEADER\r\n")

# Packet header: int16 type, int16 source, int32 size, tsoffset, tsoverflow, capacity,
# number, valid -- little-endian. Polarity event: uint32 (X<<17 | Y<<2 | p<<1 | valid), int32 t.
PACKET_1 = bytes([
    0x01, 0x00, 0x01, 0x00, 0x08, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00,                          # overflow 0
    0x03, 0x00, 0x00, 0x00,                          # capacity 3
    0x02, 0x00, 0x00, 0x00,                          # number 2 (third slot unused)
    0x01, 0x00, 0x00, 0x00,                          # valid 1
    0xCB, 0x00, 0xC8, 0x00, 0xE8, 0x03, 0x00, 0x00,  # X=100 Y=50 ON valid, t=1000
    0x08, 0x00, 0x02, 0x00, 0xDC, 0x05, 0x00, 0x00,  # X=1 Y=2 OFF, valid bit 0, t=1500
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00,  # unused slot beyond eventNumber
])
PACKET_2 = bytes([                                   # type 2 (not polarity): skipped
    0x02, 0x00, 0x01, 0x00, 0x0C, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00,
]) + bytes([0xAA] * 12)
PACKET_3 = bytes([
    0x01, 0x00, 0x01, 0x00, 0x08, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00,                          # overflow 1: t = 1 << 31 | ts
    0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
    0x11, 0x00, 0x06, 0x00, 0x05, 0x00, 0x00, 0x00,  # X=3 Y=4 OFF valid, ts=5
])
EXPECTED = [(1000, 100, 50, 1), (2**31 + 5, 3, 4, 0)]


@pytest.fixture
def recording(tmp_path):
    path = tmp_path / "user01_led.aedat"
    path.write_bytes(HEADER + PACKET_1 + PACKET_2 + PACKET_3)
    return path


def test_read_hand_computed_packets(recording):
    assert read_aedat3(recording).tolist() == EXPECTED


def test_write_hand_computed_bytes(tmp_path):
    ev = make_events(t=[1000, 1001, 2**31 + 5], x=[100, 7, 3], y=[50, 0, 4], p=[1, 0, 0])
    path = write_aedat3(tmp_path / "w.aedat", ev, events_per_packet=4,
                        start_time="2017-01-01 00:00:00 (TZ+0000)")
    # The overflow change forces a new packet even though the first is not full.
    assert path.read_bytes() == HEADER + bytes([
        0x01, 0x00, 0x01, 0x00, 0x08, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00,
        0x02, 0x00, 0x00, 0x00,
        0xCB, 0x00, 0xC8, 0x00, 0xE8, 0x03, 0x00, 0x00,
        0x01, 0x00, 0x0E, 0x00, 0xE9, 0x03, 0x00, 0x00,  # X=7 Y=0 OFF valid, t=1001
    ]) + PACKET_3
    assert np.array_equal(read_aedat3(path), ev)


def test_round_trip_many_packets(tmp_path):
    rng = np.random.default_rng(3)
    n = 3000
    t = np.sort(rng.integers(0, 2**33, n))  # several overflow values
    ev = make_events(t, rng.integers(0, 128, n), rng.integers(0, 128, n), rng.integers(0, 2, n))
    path = write_aedat3(tmp_path / "r.aedat", ev, events_per_packet=256)
    data = path.read_bytes()
    assert data.count(b"#!END-HEADER\r\n") == 1
    assert np.array_equal(read_aedat3(path), ev)


def test_labels_hand_bytes_and_split_across_packets(tmp_path, recording):
    labels_path = write_gesture_labels(tmp_path / "user01_led_labels.csv",
                                       [(3, 900, 2**31 + 6), (1, 0, 1000), (2, 1000, 2000)])
    assert labels_path.read_bytes() == (b"class,startTime_usec,endTime_usec\n"
                                        b"3,900,2147483654\n1,0,1000\n2,1000,2000\n")
    labels = read_gesture_labels(labels_path)
    assert labels.tolist() == [(3, 900, 2**31 + 6), (1, 0, 1000), (2, 1000, 2000)]
    samples = split_by_labels(read_aedat3(recording), labels)
    # The first interval spans packets 1 and 3; t == end is excluded, t == start included.
    assert [(s.tolist(), c) for s, c in samples] == [(EXPECTED, 3), ([], 1), (EXPECTED[:1], 2)]
    unsorted = read_aedat3(recording)[::-1]
    assert [(s.tolist(), c) for s, c in split_by_labels(unsorted, labels)] == [
        (EXPECTED[::-1], 3), ([], 1), (EXPECTED[:1], 2)]


def test_labels_crlf_and_blank_lines(tmp_path):
    path = tmp_path / "l.csv"
    path.write_bytes(b"class,startTime_usec,endTime_usec\r\n11,5,9\r\n\r\n")
    assert read_gesture_labels(path).tolist() == [(11, 5, 9)]


@pytest.mark.parametrize("content, offset, words", [
    # The header line is 33 characters + a newline: row 2 starts at byte 34, row 3 at 40.
    (b"class,start,end\n1,2,3\n", 0, "expected the header"),
    (b"class,startTime_usec,endTime_usec\n1,2,3\n1,2\n", 40, "not three integers"),
    (b"class,startTime_usec,endTime_usec\n12,2,3\n", 34, "class must be 1..11"),
    (b"", 0, "empty"),
])
def test_corrupt_labels(tmp_path, content, offset, words):
    path = tmp_path / "bad_labels.csv"
    path.write_bytes(content)
    with pytest.raises(EventFileError, match=words) as info:
        read_gesture_labels(path)
    assert info.value.offset == offset and str(path) in str(info.value)


def _bad_header():
    return struct.pack("<hhiiiiii", 1, 1, 8, 4, 0, 1, 2, 2) + bytes(8)


@pytest.mark.parametrize("content, offset, words", [
    (HEADER + PACKET_1 + PACKET_3[:20], len(HEADER) + len(PACKET_1), "packet header cut"),
    (HEADER + PACKET_1[:40], len(HEADER) + 28, "only 12 remain"),
    (HEADER + _bad_header(), len(HEADER), "inconsistent packet header"),
    (HEADER.replace(b"#!END-HEADER\r\n", b"") + PACKET_1, len(HEADER) - 14, "END-HEADER"),
    (b"#!AER-DAT2.0\r\n", 0, "does not start with"),
    (HEADER + PACKET_1 + PACKET_2 + PACKET_3[:32] + b"\xff\xff\xff\xff",
     len(HEADER) + len(PACKET_1) + len(PACKET_2) + 28, "negative timestamp"),
])
def test_corrupt_recordings(tmp_path, content, offset, words):
    path = tmp_path / "bad.aedat"
    path.write_bytes(content)
    with pytest.raises(EventFileError, match=words) as info:
        read_aedat3(path)
    assert info.value.offset == offset
    assert str(path) in str(info.value) and f"byte offset {offset}" in str(info.value)


def test_writer_rejects_unsorted(tmp_path):
    with pytest.raises(ValueError, match="non-decreasing"):
        write_aedat3(tmp_path / "a", make_events([5, 4], [0, 0], [0, 0], [0, 0]))
