"""The host-link framing of the UART bridge, shared by the RTL (:mod:`trident.rtl.soc.uart`)
and the driver's serial transport (:mod:`trident.sw.driver.transports`).

Request (host → SoC)::

    0xA5 | cmd | addr (4, little endian) | count (2, LE) | payload | crc8

``cmd`` 0x01 reads ``count`` words from byte address ``addr``, 0x02 writes ``count`` words
(the payload: ``4·count`` bytes, each word little endian).  ``addr`` is a host-space byte
address (CSRs from 0, DRAM from ``HOST_DRAM_BASE``), word aligned; words go to
consecutive addresses; ``1 ≤ count ≤`` the bridge's ``max_words``.

Reply (SoC → host)::

    0x5A | status | count (2, LE) | payload | crc8

``status`` is one of :class:`Status`; ``count`` is the words of payload (the words read,
0 for writes and errors).  A write is carried out only after its CRC checked.

``crc8`` is CRC-8 (polynomial 0x07, init 0, no reflection, no final XOR) over every byte
after the sync byte, so the CRC of a whole frame after its sync byte is 0.
"""

import struct

from amaranth.lib import enum

__all__ = ["SYNC_REQUEST", "SYNC_REPLY", "Command", "Status", "crc8", "encode_request",
           "ReplyError", "decode_reply_header", "REPLY_HEADER_BYTES", "HEADER_BYTES"]

SYNC_REQUEST = 0xA5
SYNC_REPLY = 0x5A
#: Request bytes after the sync byte and before the payload: cmd, addr, count.
HEADER_BYTES = 7
#: Reply bytes before the payload: sync, status, count.
REPLY_HEADER_BYTES = 4
CRC_POLY = 0x07


class Command(enum.IntEnum, shape=8):
    """Request commands (``cmd`` byte).

    Members
    -------
    READ
    WRITE
    """
    READ = 0x01
    WRITE = 0x02


class Status(enum.IntEnum, shape=8):
    """Reply status.

    Members
    -------
    OK
    CRC
        The request's CRC did not check; nothing was done.
    COMMAND
        Unknown command.
    LENGTH
        ``count`` is 0 or above the bridge's ``max_words``.
    ALIGN
        ``addr`` is not word aligned.
    """
    OK = 0
    CRC = 1
    COMMAND = 2
    LENGTH = 3
    ALIGN = 4


def crc8(data, crc=0):
    """CRC-8/0x07 of ``data`` (bytes), continuing from ``crc``."""
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ CRC_POLY) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def encode_request(cmd, addr, count, words=()):
    """The bytes of one request frame."""
    body = struct.pack("<BIH", int(cmd), addr, count) + b"".join(
        struct.pack("<I", w) for w in words)
    return bytes([SYNC_REQUEST]) + body + bytes([crc8(body)])


class ReplyError(IOError):
    """The SoC answered with a non-OK status, or the reply was damaged."""


def decode_reply_header(header):
    """``(status, count)`` of a reply's first :data:`REPLY_HEADER_BYTES` bytes."""
    if header[0] != SYNC_REPLY:
        raise ReplyError(f"reply starts with {header[0]:#04x}, not {SYNC_REPLY:#04x}: the link "
                         f"is out of step (wrong baud rate, or noise)")
    return Status(header[1]) if header[1] in Status._value2member_map_ else header[1], \
        struct.unpack("<H", bytes(header[2:4]))[0]
