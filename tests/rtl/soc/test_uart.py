"""The UART bridge in the Amaranth simulator: request frames on the SoC's ``uart_rx``
line, reply frames from ``uart_tx`` (protocol: trident.rtl.soc.protocol)."""

import struct

import pytest
from amaranth.sim import Simulator
from support import collect_refused
from traffic_core import TrafficSoC

from trident.rtl.soc.protocol import (REPLY_HEADER_BYTES, SYNC_REQUEST, Command, Status, crc8,
                                      decode_reply_header, encode_request)
from trident.rtl.soc.uart import UartRx
from trident.rtl.soc.regmap import HOST_DRAM_BASE, SoCParams, build_regmap

DIVISOR = 4


def test_crc8_residue_and_known_value():
    assert crc8(b"123456789") == 0xF4           # CRC-8/SMBUS check value
    frame = encode_request(Command.WRITE, 0x10, 1, [0xDEADBEEF])
    assert frame[0] == SYNC_REQUEST and crc8(frame[1:]) == 0


def run_frames(frames, max_words=8):
    """Send each frame, collect each reply; returns ``[(status, count, words)]``."""
    dut = TrafficSoC(cores=1, dram_words=256, uart_divisor=DIVISOR, uart_max_words=max_words)
    received = []
    replies = []

    async def line_rx(ctx):
        """Background: decode bytes from uart_tx."""
        while True:
            while ctx.get(dut.uart_tx):
                await ctx.tick()
            await ctx.tick().repeat(DIVISOR // 2 + DIVISOR)
            value = 0
            for bit in range(8):
                value |= ctx.get(dut.uart_tx) << bit
                await ctx.tick().repeat(DIVISOR)
            assert ctx.get(dut.uart_tx) == 1, "missing stop bit"
            received.append(value)

    async def bench(ctx):
        ctx.set(dut.uart_rx, 1)
        await ctx.tick().repeat(4)
        for frame in frames:
            start = len(received)
            for byte in frame:
                for bit in [0, *((byte >> i) & 1 for i in range(8)), 1]:
                    ctx.set(dut.uart_rx, bit)
                    await ctx.tick().repeat(DIVISOR)
            for _ in range(40 * DIVISOR * (REPLY_HEADER_BYTES + 1)):
                if len(received) >= start + REPLY_HEADER_BYTES:
                    break
                await ctx.tick()
            status, count = decode_reply_header(received[start:start + REPLY_HEADER_BYTES])
            total = REPLY_HEADER_BYTES + 4 * count + 1
            while len(received) < start + total:
                await ctx.tick()
            body = bytes(received[start + 1:start + total])
            assert crc8(body) == 0, "reply CRC"
            words = list(struct.unpack(f"<{count}I", body[3:3 + 4 * count]))
            replies.append((status, count, words))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(line_rx, background=True)
    sim.add_testbench(bench)
    sim.run()
    return replies


def test_uart_reads_and_writes_csrs_and_dram():
    mm = build_regmap(SoCParams(cores=1, addr_width=16, dram_words=256))
    scratch = mm.locate("global.scratch").address
    ident = mm.locate("global.id").address
    dram = HOST_DRAM_BASE + 4 * 0x20
    frames = [
        encode_request(Command.WRITE, scratch, 1, [0x12345678]),
        encode_request(Command.READ, ident, 2, []),
        encode_request(Command.READ, scratch, 1, []),
        encode_request(Command.WRITE, dram, 8, list(range(100, 108))),
        encode_request(Command.READ, dram + 4, 7, []),
    ]
    replies = run_frames(frames)
    assert replies[0] == (Status.OK, 0, [])
    assert replies[1][2][0] == 0x54524944
    assert replies[2] == (Status.OK, 1, [0x12345678])
    assert replies[3] == (Status.OK, 0, [])
    assert replies[4] == (Status.OK, 7, list(range(101, 108)))


def test_uart_rejects_bad_frames_without_side_effects():
    mm = build_regmap(SoCParams(cores=1, addr_width=16, dram_words=256))
    scratch = mm.locate("global.scratch").address
    damaged = bytearray(encode_request(Command.WRITE, scratch, 1, [0xBAD]))
    damaged[-2] ^= 0x40
    body = struct.pack("<BIH", 0x07, scratch, 1)
    frames = [
        bytes(damaged),
        bytes([SYNC_REQUEST]) + body + bytes([crc8(body)]),          # unknown command
        encode_request(Command.READ, scratch, 9, []),                # above max_words = 8
        encode_request(Command.READ, scratch + 2, 1, []),            # misaligned
        encode_request(Command.READ, scratch, 1, []),
    ]
    replies = run_frames(frames)
    assert [r[0] for r in replies] == [Status.CRC, Status.COMMAND, Status.LENGTH, Status.ALIGN,
                                       Status.OK]
    assert replies[-1][2] == [0]             # the damaged write did nothing


def test_divisor_is_checked():
    with pytest.raises(ValueError, match="below 4 cycles per bit"):
        UartRx(2)
    collect_refused()
