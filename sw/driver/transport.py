"""What a :class:`~trident.sw.driver.device.Device` needs from a transport, and the serial
transport (the UART framing of :mod:`trident.rtl.soc.protocol` over any byte stream).

A transport moves 32-bit words at host-space byte addresses (CSRs from 0, DRAM from
:data:`~trident.rtl.soc.regmap.HOST_DRAM_BASE`); the device above it knows the register map.
"""

import time

import numpy as np

from trident.rtl.soc.protocol import (REPLY_HEADER_BYTES, Command, ReplyError, Status, crc8,
                                      decode_reply_header, encode_request)
from trident.rtl.soc.regmap import HOST_DRAM_BASE

__all__ = ["Transport", "SerialTransport"]


class Transport:
    """Base of the transports.

    Subclasses implement :meth:`read_words` and :meth:`write_words`; they may override the
    DRAM bulk paths (:meth:`load_dram`, :meth:`dump_dram`) with something faster and
    :meth:`pause` to let device time pass while the host polls.
    """

    #: Short name (``golden``, ``sim``, ``serial``).
    kind = "?"

    def read_words(self, addr, count):
        """``count`` words from host byte address ``addr`` (``numpy.uint32``)."""
        raise NotImplementedError

    def write_words(self, addr, words):
        """Write words to consecutive host byte addresses from ``addr``."""
        raise NotImplementedError

    def load_dram(self, word, words):
        """Write ``words`` into DRAM from word address ``word``."""
        self.write_words(HOST_DRAM_BASE + 4 * word, words)

    def dump_dram(self, word, count):
        """``count`` DRAM words from word address ``word``."""
        return self.read_words(HOST_DRAM_BASE + 4 * word, count)

    def pause(self, cycles):
        """Let the device run about ``cycles`` clock cycles (or until an interrupt)."""

    def close(self):
        """Release what the transport holds (processes, ports)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class SerialTransport(Transport):
    """The UART bridge's framing over a byte stream.

    Parameters
    ----------
    stream : object
        ``write(bytes)`` and ``read(n) -> bytes`` (may return fewer bytes on a time-out),
        e.g. a ``serial.Serial`` with a timeout set.
    max_words : int
        The bridge's longest burst (``SoC(uart_max_words=…)``); longer transfers are split.
    poll_s : float
        How long :meth:`pause` sleeps (the board runs on its own meanwhile).
    """

    kind = "serial"

    def __init__(self, stream, max_words=64, poll_s=0.001):
        self.stream = stream
        self.max_words = max_words
        self.poll_s = poll_s

    @classmethod
    def open(cls, port, baudrate, max_words=64, timeout=1.0):
        """A serial transport on a board's UART (needs pyserial).

        ``baudrate`` must be the SoC clock divided by its ``uart_divisor``.
        """
        try:
            import serial
        except ImportError:
            raise ImportError("the serial transport needs pyserial: pip install pyserial==3.5") \
                from None
        return cls(serial.Serial(port, baudrate, timeout=timeout), max_words=max_words)

    def _read_exact(self, n, what):
        data = b""
        while len(data) < n:
            chunk = self.stream.read(n - len(data))
            if not chunk:
                raise ReplyError(f"serial link: got {len(data)} of {n} bytes of the {what} "
                                 f"before the time-out (is the board powered and the baud "
                                 f"rate right?)")
            data += chunk
        return data

    def _transfer(self, cmd, addr, count, words=()):
        self.stream.write(encode_request(cmd, addr, count, words))
        header = self._read_exact(REPLY_HEADER_BYTES, "reply header")
        status, n = decode_reply_header(header)
        body = self._read_exact(4 * n + 1, "reply")
        if crc8(header[1:] + body) != 0:
            raise ReplyError(f"serial link: reply to {Command(cmd).name} at {addr:#010x} "
                             f"failed its CRC (noise on the line?)")
        if status != Status.OK:
            raise ReplyError(f"serial link: the SoC refused {Command(cmd).name} of {count} words "
                             f"at {addr:#010x}: status {getattr(status, 'name', status)}")
        return np.frombuffer(body[:4 * n], dtype="<u4").astype(np.uint32)

    def read_words(self, addr, count):
        parts = [self._transfer(Command.READ, addr + 4 * i, min(self.max_words, count - i))
                 for i in range(0, count, self.max_words)]
        return np.concatenate(parts) if parts else np.zeros(0, np.uint32)

    def write_words(self, addr, words):
        words = [int(w) for w in np.asarray(words, dtype=np.uint32)]
        for i in range(0, len(words), self.max_words):
            chunk = words[i:i + self.max_words]
            self._transfer(Command.WRITE, addr + 4 * i, len(chunk), chunk)

    def pause(self, cycles):
        time.sleep(self.poll_s)

    def close(self):
        close = getattr(self.stream, "close", None)
        if close:
            close()
