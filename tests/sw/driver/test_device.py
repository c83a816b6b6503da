"""One driver, three transports: the same checks run on the golden model, on the SoC RTL
in a simulator (sim transport) and through the RTL's UART bridge (serial transport)."""

import numpy as np
import pytest
from traffic_core import BAD, ERROR_BAD_COUNT, HANG, TrafficSoC, traffic_executor

from trident.rtl.soc.regmap import MAGIC, SoCParams
from trident.sw.driver import (CoreError, Device, DeviceError, DeviceTimeout, GoldenTransport,
                               SerialTransport)
from trident.verify.runner import simulator_available

SIM_PARAMS = {"cores": 2, "dram_words": 1024, "uart_divisor": 4, "uart_max_words": 16,
              "queue_depth": 4}
GOLDEN_PARAMS = SoCParams(cores=2, addr_width=16, dram_words=1024, queue_depth=4)


def exercise(dev, rng):
    """What every transport must do identically; returns what the device computed."""
    assert dev.read_csr("global.id")["magic"] == MAGIC
    assert dev.cores == 2 and dev.params.dram_words == 1024
    dev.write_csr("global.scratch", value=0xC0FFEE)
    assert dev.read_csr("global.scratch")["value"] == 0xC0FFEE
    data = rng.integers(0, 1 << 32, 40, dtype=np.uint64).astype(np.uint32)
    dev.write_mem(0x100, data)
    assert np.array_equal(dev.read_mem(0x100, 40), data)
    dev.write_mem(0x000, [0x100, 0x200, 20, 5])
    dev.write_mem(0x010, [0x114, 0x214, 20, 0xFFFFFFFF])
    dev.clear_counters()
    dev.start(0, 0x000)
    dev.start(1, 0x010)
    counters = [dev.wait(0), dev.wait(1)]
    out = dev.read_mem(0x200, 40)
    assert np.array_equal(out[:20], data[:20] + np.uint32(5))
    assert np.array_equal(out[20:], data[20:] - np.uint32(1))
    for c in counters:
        assert c["dram_bytes_read"] == 16 + 4 * 20 and c["dram_bytes_written"] == 4 * 20
        assert c["fp_ops"] == 20 and c["wg_ops"] == 0
    assert dev.dram_traffic()["bytes_written"] == 2 * 4 * 20
    assert dev.read_csr("core[0].irq")["pending"] == 0       # wait() acknowledged it
    # A program error is raised with the core's code and address.
    dev.write_mem(0x020, [0, 0, BAD | 1, 0])
    with pytest.raises(CoreError, match="core 1 stopped with error 0x11") as err:
        dev.run(1, 0x020)
    assert (err.value.code, err.value.pc) == (ERROR_BAD_COUNT, 0x020)
    assert "core 0: busy=0 done=1" in str(err.value)
    # Bad input is refused before the device is touched.
    with pytest.raises(IndexError, match="outside the device's 1024 words"):
        dev.write_mem(1020, np.zeros(8, np.uint32))
    with pytest.raises(IndexError, match="cores 0…1"):
        dev.start(2, 0)
    with pytest.raises(KeyError, match="no register 'core\\[5\\].status'"):
        dev.read_csr("core[5].status")
    with pytest.raises(ValueError, match="integers in 0"):
        dev.write_mem(0, np.array([-1]))
    return out, {k: v for k, v in counters[0].items() if "busy" not in k}


def exercise_queue(dev):
    """Three phases through the program queue (4 entries: filled and drained in turns),
    each phase reading what the other core wrote in the one before; then a failing
    program.  Returns what the device computed."""
    data = np.arange(1, 9, dtype=np.uint32)
    dev.write_mem(0x100, data)
    programs = {0x40: [0x100, 0x110, 8, 1], 0x44: [0x100, 0x120, 8, 2],   # phase 1
                0x48: [0x120, 0x130, 8, 3], 0x4C: [0x110, 0x140, 8, 4],   # phase 2: swapped
                0x50: [0x130, 0x150, 8, 5]}                               # phase 3
    for address, words in programs.items():
        dev.write_mem(address, words)
    run = dev.run_queued([[0x40, 0x44], [0x48, 0x4C], [0x50]])
    assert np.array_equal(dev.read_mem(0x150, 8), data + np.uint32(2 + 3 + 5))
    assert np.array_equal(dev.read_mem(0x140, 8), data + np.uint32(1 + 4))
    counters = run.counters
    assert run.overflow is False and sorted(counters) == [0, 1]
    if dev.transport.kind != "golden":          # the golden model counts no cycles
        assert run.cycles > counters[0]["busy_cycles"] >= 3 * 8 * 3
    assert counters[0]["fp_ops"] == 24 and counters[1]["fp_ops"] == 16
    assert counters[0]["dram_bytes_read"] == 3 * (16 + 32) and counters[1]["dram_bytes_written"] == 2 * 32
    assert dev.read_csr("queue.status")["idle"] == 1
    dev.write_mem(0x60, [0, 0, BAD | 1, 0])
    with pytest.raises(CoreError, match="core 1 stopped with error 0x11") as err:
        dev.run_queued([[0x40, None], [None, 0x60], [0x50, 0x44]])
    assert "queue: idle=0 halted=1" in str(err.value)
    assert err.value.pc == 0x60
    assert dev.read_csr("queue.status") == {"idle": 1, "halted": 0, "overflow": 0,
                                            "dropped": 0, "level": 0}     # flushed
    with pytest.raises(IndexError, match="outside the device's 1024 words"):
        dev.run_queued([[0x40, 4096]])
    return dev.read_mem(0x100, 0x60), {k: v for k, v in counters[0].items() if "busy" not in k}


def test_golden_transport(rng):
    with Device(GoldenTransport(GOLDEN_PARAMS, executor=traffic_executor)) as dev:
        exercise(dev, rng)
        exercise_queue(dev)
        dev.write_mem(0x30, [0x100, 0x300, 4, 1])
        assert list(dev.run_phase([None, 0x30])) == [1]
        assert np.array_equal(dev.read_mem(0x300, 4), dev.read_mem(0x100, 4) + np.uint32(1))
        with pytest.raises(IndexError, match="3 programs for 2 cores"):
            dev.run_phase([0, 0, 0])


def test_golden_transport_runs_descriptor_programs():
    """The default executor is the golden device (trident.golden.hw.program): an all-zero
    descriptor is END."""
    dev = Device(GoldenTransport(SoCParams(cores=1, dram_words=4096)))
    counters = dev.run(0, 0x40)
    assert counters["descriptors"] == 1 and counters["words_read"] > 0
    assert dev.read_csr("core[0].status") == {"busy": 0, "done": 1, "overflow": 0}


@pytest.fixture(scope="module")
def sim():
    if not simulator_available("icarus"):
        pytest.skip("icarus is not installed")
    from trident.sw.driver.sim import SimTransport
    transport = SimTransport(TrafficSoC, SIM_PARAMS, simulator="icarus")
    yield transport
    transport.close()


def test_sim_and_serial_transports_match_golden(sim, rng, seed):
    """The same driver code on the RTL, through the host port and through the UART."""
    golden = Device(GoldenTransport(GOLDEN_PARAMS, executor=traffic_executor))
    expected = exercise(golden, np.random.default_rng(seed)), exercise_queue(golden)
    dev = Device(sim)
    assert dev.params == golden.params
    from trident.sw.driver.sim import SimUartStream
    serial = Device(SerialTransport(SimUartStream(sim), max_words=SIM_PARAMS["uart_max_words"]))
    for device in (dev, serial):
        got = exercise(device, np.random.default_rng(seed)), exercise_queue(device)
        for (words, counters), (want_words, want_counters) in zip(got, expected):
            assert np.array_equal(words, want_words) and counters == want_counters
    assert sim.cycles > 0


def test_sim_wait_times_out_with_a_status_dump(sim):
    dev = Device(sim)
    dev.write_mem(0x300, [0, 0, HANG, 0])
    dev.start(1, 0x300)
    with pytest.raises(DeviceTimeout) as err:
        dev.wait(1, timeout=0.3)
    text = str(err.value)
    assert "core 1 not done after 0.3 s (transport sim)" in text
    assert "core 1: busy=1 done=0" in text and "core 0: busy=0" in text
    assert "dram: error=0 busy=0 read_bursts=0 write_bursts=0" in text
    with pytest.raises(DeviceError, match="core 1 is still busy"):
        dev.start(1, 0x300)
    dev.write_mem(0x310, [0, 0, 0, 0])
    with pytest.raises(DeviceTimeout) as err:      # the queue waits for the hung core
        dev.run_queued([[0x310, 0x310]], timeout=0.3)
    text = str(err.value)
    assert "the program queue did not drain in 0.3 s (transport sim)" in text
    assert "queue: idle=0 halted=0 overflow=0 dropped=0 level=1" in text


def test_serial_link_errors_are_clear():
    class Silent:
        def write(self, data):
            return len(data)

        def read(self, n):
            return b""
    with pytest.raises(IOError, match="got 0 of 4 bytes of the reply header"):
        Device(SerialTransport(Silent()))


def test_serial_refusals_reach_the_host(sim):
    """A damaged frame and an over-long burst, through the RTL's UART bridge."""
    from trident.rtl.soc.protocol import Command, Status, decode_reply_header, encode_request
    from trident.sw.driver.sim import SimUartStream
    stream = SimUartStream(sim)
    scratch = Device(sim).regmap.locate("global.scratch").address
    frame = bytearray(encode_request(Command.WRITE, scratch, 1, [0x5EED]))
    frame[-2] ^= 0x01
    stream.write(bytes(frame))
    assert decode_reply_header(stream.read(4)) == (Status.CRC, 0)
    stream.read(1)
    serial = SerialTransport(stream, max_words=SIM_PARAMS["uart_max_words"] + 1)
    with pytest.raises(IOError, match="refused READ of 17 words .* status LENGTH"):
        serial.read_words(scratch, 17)
    assert Device(serial).read_csr("global.scratch")["value"] != 0x5EED
