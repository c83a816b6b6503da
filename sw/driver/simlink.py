"""The message format between the ``sim`` transport (host process) and the cocotb server
in the simulator process (:mod:`trident.sw.driver.sim_server`), over a Unix socket.

Request: ``<B op, <I a, <I b, <I n`` then ``n`` payload bytes.
Reply:   ``<I n`` then ``n`` payload bytes; ``n = 0xFFFFFFFF`` means an error, followed by
``<I len`` and a UTF-8 message.

======================  =====================  ==========================================
op                      a, b                   payload → reply
======================  =====================  ==========================================
HOST_READ               byte address, words    → words (through the host port, cycle by cycle)
HOST_WRITE              byte address, words    words → nothing
MEM_LOAD                DRAM word, words       words → nothing (backdoor: no clock cycles)
MEM_DUMP                DRAM word, words       → words (backdoor)
RUN                     cycles, 1: until irq   → ``<Q`` cycles run
UART_SEND               0, 0                   bytes → nothing (driven on ``uart_rx``)
UART_RECV               bytes, max cycles      → the bytes seen on ``uart_tx`` (maybe fewer)
QUIT                    0, 0                   → nothing; the simulation ends
======================  =====================  ==========================================
"""

import enum
import struct

__all__ = ["Op", "HEADER", "ERROR", "recv_exact", "send_reply", "send_error"]

HEADER = struct.Struct("<BIII")
ERROR = 0xFFFFFFFF


class Op(enum.IntEnum):
    """Request operations (see the module docstring).

    Members
    -------
    HOST_READ, HOST_WRITE, MEM_LOAD, MEM_DUMP, RUN, UART_SEND, UART_RECV, QUIT
    """
    HOST_READ = 1
    HOST_WRITE = 2
    MEM_LOAD = 3
    MEM_DUMP = 4
    RUN = 5
    UART_SEND = 6
    UART_RECV = 7
    QUIT = 8


def recv_exact(sock, n):
    """``n`` bytes from ``sock``; ConnectionError if the peer went away."""
    chunks, left = [], n
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            raise ConnectionError(f"simulator link closed with {left} of {n} bytes missing")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def send_reply(sock, payload=b""):
    sock.sendall(struct.pack("<I", len(payload)) + payload)


def send_error(sock, message):
    data = message.encode()
    sock.sendall(struct.pack("<II", ERROR, len(data)) + data)
