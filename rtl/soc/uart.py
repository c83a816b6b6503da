"""UART host link: 8N1 receiver and transmitter, and the bridge that turns request frames
(:mod:`trident.rtl.soc.protocol`) into host-port reads and writes.
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from trident.rtl.core.ports import MemoryPortSignature

from .host import HOST_ADDR_WIDTH
from .protocol import CRC_POLY, HEADER_BYTES, SYNC_REPLY, SYNC_REQUEST, Command, Status

__all__ = ["UartRx", "UartTx", "UartBridge", "crc8_next"]


def crc8_next(m, crc, byte, name):
    """A signal holding the CRC-8/0x07 after one more byte (combinational; one signal per
    bit step, so the expression does not double with every step)."""
    c = crc ^ byte
    for step in range(8):
        nxt = Signal(8, name=f"{name}_{step}")
        shifted = (c << 1)[:8]
        m.d.comb += nxt.eq(Mux(c[7], shifted ^ CRC_POLY, shifted))
        c = nxt
    return c


class UartRx(wiring.Component):
    """8N1 receiver.  Bytes come out as one-cycle ``valid`` pulses (no back-pressure: a
    UART cannot wait).

    Parameters
    ----------
    divisor : int
        Clock cycles per bit (at least 4).

    Members
    -------
    rx : In(1)
    o : Out(stream.Signature(8, always_ready=True))
    """

    def __init__(self, divisor):
        if divisor < 4:
            raise ValueError(f"UART divisor {divisor} is below 4 cycles per bit")
        self.divisor = divisor
        super().__init__({"rx": In(1, init=1), "o": Out(stream.Signature(8, always_ready=True))})

    def elaborate(self, platform):
        m = Module()
        sync_ff = Signal(2, init=0b11)        # two flops against metastability
        m.d.sync += sync_ff.eq(Cat(self.rx, sync_ff[0]))
        line = sync_ff[1]
        timer = Signal(range(self.divisor * 3 // 2 + 1))
        bits = Signal(range(10))
        shift = Signal(8)
        m.d.sync += self.o.valid.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~line):
                    # Sample each bit in its middle: 1.5 bit times after the start edge.
                    m.d.sync += [timer.eq(self.divisor * 3 // 2 - 1), bits.eq(0)]
                    m.next = "DATA"
            with m.State("DATA"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.d.sync += [timer.eq(self.divisor - 1), bits.eq(bits + 1),
                                 shift.eq(Cat(shift[1:], line))]
                    with m.If(bits == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    # A missing stop bit is a framing error: drop the byte.
                    m.d.sync += [self.o.valid.eq(line), self.o.payload.eq(shift)]
                    m.next = "IDLE"
        return m


class UartTx(wiring.Component):
    """8N1 transmitter.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit.

    Members
    -------
    i : In(stream.Signature(8))
    tx : Out(1)
    """

    def __init__(self, divisor):
        self.divisor = divisor
        super().__init__({"i": In(stream.Signature(8)), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        timer = Signal(range(self.divisor))
        shift = Signal(10, init=0x3FF)          # stop, data, start — LSB goes first
        left = Signal(range(11))
        m.d.comb += [self.tx.eq(shift[0]), self.i.ready.eq(left == 0)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [shift.eq(Cat(0, self.i.payload, 1)), left.eq(10),
                         timer.eq(self.divisor - 1)]
        with m.Elif(left != 0):
            with m.If(timer != 0):
                m.d.sync += timer.eq(timer - 1)
            with m.Else():
                m.d.sync += [timer.eq(self.divisor - 1), left.eq(left - 1),
                             shift.eq(Cat(shift[1:], 1))]
        return m


class UartBridge(wiring.Component):
    """Request frames in on ``rx``, host-port reads and writes, reply frames out on ``tx``.

    A write frame is buffered (up to ``max_words``) and carried out only after its CRC
    checked.  A frame that stops for 20 byte times is abandoned.

    Parameters
    ----------
    divisor : int
        Clock cycles per UART bit.
    max_words : int
        Longest burst of one frame.

    Members
    -------
    rx : In(1)
    tx : Out(1)
    host : Out(MemoryPortSignature(HOST_ADDR_WIDTH))
    """

    def __init__(self, divisor, max_words=64):
        if not 1 <= max_words <= 0xFFFF:
            raise ValueError(f"max_words = {max_words}: must be 1 … 65535")
        self.divisor = divisor
        self.max_words = max_words
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1),
                          "host": Out(MemoryPortSignature(HOST_ADDR_WIDTH))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.rx = rx = UartRx(self.divisor)
        m.submodules.tx = tx = UartTx(self.divisor)
        m.d.comb += [rx.rx.eq(self.rx), self.tx.eq(tx.tx)]
        m.submodules.buffer = buf = Memory(shape=32, depth=self.max_words, init=[])
        buf_w = buf.write_port()
        buf_r = buf.read_port()

        header = Signal(8 * HEADER_BYTES)        # cmd, addr, count as received
        cmd, addr, count = header[0:8], header[8:40], header[40:56]
        crc = Signal(8)
        nbytes = Signal(range(HEADER_BYTES + 1))  # bytes of the header, or of a word
        word = Signal(32)
        index = Signal(range(self.max_words + 1))  # words received / carried out / sent
        status = Signal(Status)
        reply_count = Signal(16)
        timeout = 20 * 10 * self.divisor     # 20 byte times without a byte
        idle = Signal(range(timeout + 1))
        byte = rx.o.payload

        m.d.comb += [buf_w.addr.eq(index), buf_w.data.eq(Cat(word[8:], byte)),
                     buf_r.addr.eq(index)]
        req, resp = self.host.req, self.host.resp
        m.d.comb += req.payload.addr.eq(addr[2:] + index)

        crc_rx = crc8_next(m, crc, byte, "crc_rx")              # crc with the byte received
        crc_tx = crc8_next(m, crc, tx.i.payload, "crc_tx")      # crc with the byte sent

        def send(value, next_state):
            m.d.comb += [tx.i.valid.eq(1), tx.i.payload.eq(value)]
            with m.If(tx.i.ready):
                m.d.sync += crc.eq(crc_tx)
                m.next = next_state

        receiving = Signal()
        with m.If(receiving & ~rx.o.valid):
            m.d.sync += idle.eq(idle + 1)
        with m.Else():
            m.d.sync += idle.eq(0)

        # The status of the frame whose CRC byte is arriving now.
        verdict = Signal(Status)
        with m.If(crc_rx != 0):
            m.d.comb += verdict.eq(Status.CRC)
        with m.Elif((cmd != Command.READ) & (cmd != Command.WRITE)):
            m.d.comb += verdict.eq(Status.COMMAND)
        with m.Elif((count == 0) | (count > self.max_words)):
            m.d.comb += verdict.eq(Status.LENGTH)
        with m.Elif(addr[:2] != 0):
            m.d.comb += verdict.eq(Status.ALIGN)
        with m.Else():
            m.d.comb += verdict.eq(Status.OK)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(rx.o.valid & (byte == SYNC_REQUEST)):
                    m.d.sync += [crc.eq(0), nbytes.eq(0), index.eq(0)]
                    m.next = "HEADER"
            with m.State("HEADER"):
                m.d.comb += receiving.eq(1)
                with m.If(idle == timeout):
                    m.next = "IDLE"
                with m.If(rx.o.valid):
                    m.d.sync += [header.eq(Cat(header[8:], byte)), crc.eq(crc_rx),
                                 nbytes.eq(nbytes + 1)]
                    with m.If(nbytes == HEADER_BYTES - 1):
                        m.d.sync += nbytes.eq(0)
                        # count is the last two header bytes: its high byte arrives now.
                        new_count = Cat(header[48:56], byte)
                        with m.If((header[8:16] == Command.WRITE) & (new_count != 0) &
                                  (new_count <= self.max_words)):
                            m.next = "PAYLOAD"
                        with m.Else():
                            m.next = "CHECK"
            with m.State("PAYLOAD"):
                m.d.comb += receiving.eq(1)
                with m.If(idle == timeout):
                    m.next = "IDLE"
                with m.If(rx.o.valid):
                    m.d.sync += [word.eq(Cat(word[8:], byte)), crc.eq(crc_rx),
                                 nbytes.eq(nbytes + 1)]
                    with m.If(nbytes == 3):
                        m.d.comb += buf_w.en.eq(1)
                        m.d.sync += [nbytes.eq(0), index.eq(index + 1)]
                        with m.If(index + 1 == count):
                            m.next = "CHECK"
            with m.State("CHECK"):
                m.d.comb += receiving.eq(1)
                with m.If(idle == timeout):
                    m.next = "IDLE"
                with m.If(rx.o.valid):
                    m.d.sync += [index.eq(0), nbytes.eq(0), status.eq(verdict),
                                 reply_count.eq(Mux((verdict == Status.OK) &
                                                    (cmd == Command.READ), count, 0))]
                    with m.If((verdict == Status.OK) & (cmd == Command.WRITE)):
                        m.next = "WRITE_FETCH"
                    with m.Else():
                        m.next = "REPLY_SYNC"
            with m.State("WRITE_FETCH"):
                m.d.comb += buf_r.en.eq(1)
                m.next = "WRITE"
            with m.State("WRITE"):
                m.d.comb += [req.valid.eq(1), req.payload.write.eq(1),
                             req.payload.data.eq(buf_r.data)]
                with m.If(req.ready):
                    m.d.sync += index.eq(index + 1)
                    with m.If(index + 1 == count):
                        m.d.sync += index.eq(0)
                        m.next = "REPLY_SYNC"
                    with m.Else():
                        m.next = "WRITE_FETCH"
            with m.State("REPLY_SYNC"):
                m.d.comb += [tx.i.valid.eq(1), tx.i.payload.eq(SYNC_REPLY)]
                with m.If(tx.i.ready):
                    m.d.sync += crc.eq(0)        # the reply CRC starts after the sync byte
                    m.next = "REPLY_STATUS"
            with m.State("REPLY_STATUS"):
                send(status, "REPLY_COUNT0")
            with m.State("REPLY_COUNT0"):
                send(reply_count[:8], "REPLY_COUNT1")
            with m.State("REPLY_COUNT1"):
                with m.If(reply_count == 0):
                    send(reply_count[8:], "REPLY_CRC")
                with m.Else():
                    send(reply_count[8:], "READ")
            with m.State("READ"):
                m.d.comb += [req.valid.eq(1), req.payload.write.eq(0)]
                with m.If(req.ready):
                    m.next = "READ_WAIT"
            with m.State("READ_WAIT"):
                m.d.comb += resp.ready.eq(1)
                with m.If(resp.valid):
                    m.d.sync += [word.eq(resp.payload), nbytes.eq(0), index.eq(index + 1)]
                    m.next = "READ_SEND"
            with m.State("READ_SEND"):
                m.d.comb += [tx.i.valid.eq(1), tx.i.payload.eq(word[:8])]
                with m.If(tx.i.ready):
                    m.d.sync += [crc.eq(crc_tx), word.eq(word >> 8),
                                 nbytes.eq(nbytes + 1)]
                    with m.If((nbytes == 3) & (index == reply_count)):
                        m.next = "REPLY_CRC"
                    with m.Elif(nbytes == 3):
                        m.next = "READ"
            with m.State("REPLY_CRC"):
                m.d.comb += [tx.i.valid.eq(1), tx.i.payload.eq(crc)]
                with m.If(tx.i.ready):
                    m.next = "IDLE"
        return m
