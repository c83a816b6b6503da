"""``Device``: one driver API over every transport (golden model, RTL simulation, board).

The register map is not written down here: the device reads the SoC's global block and
rebuilds the map with :func:`~trident.rtl.soc.regmap.regmap_from_global`, i.e. from the
same objects the RTL's CSR bank was generated from.
"""

import time
from dataclasses import dataclass

import numpy as np

from trident.rtl.soc.regmap import CORE_COUNTERS, SOC_COUNTERS, regmap_from_global

__all__ = ["Device", "QueuedRun", "DeviceError", "DeviceTimeout", "CoreError"]


def _error_name(code):
    """The descriptor format's name of a core error code."""
    from trident.golden.hw.descriptors import ErrorCode
    try:
        return ErrorCode(code).name
    except ValueError:
        return "unknown code"


class DeviceError(RuntimeError):
    """Something went wrong on the device; the message ends with a status dump."""


class DeviceTimeout(DeviceError):
    """A core or the program queue did not finish in time."""


class CoreError(DeviceError):
    """A core stopped its program with an error code.

    Attributes
    ----------
    core, code, pc : int
    """

    def __init__(self, message, core, code, pc):
        super().__init__(message)
        self.core, self.code, self.pc = core, code, pc


@dataclass(frozen=True)
class QueuedRun:
    """What :meth:`Device.run_queued` reports.

    Attributes
    ----------
    counters : dict
        ``{core: {name: value}}`` for the cores that ran: each the sum over the core's
        programs of the run.
    overflow : bool
        Some program reported overflow.
    cycles : int
        SoC cycles (``global.cycles``) from the first entry to the drained queue, the host's
        writes of the entries included.
    """
    counters: dict
    overflow: bool
    cycles: int


class Device:
    """A Trident SoC behind a transport.

    Parameters
    ----------
    transport : trident.sw.driver.transport.Transport

    Attributes
    ----------
    params : SoCParams
        Build parameters read from the device.
    regmap : MemoryMap
    """

    #: Cycles the device may run between two status polls while the host waits (the first
    #: poll; each later one doubles it up to :attr:`MAX_POLL_CYCLES`).  A transport that
    #: sees the SoC's ``irq`` (the simulator) ends a pause as soon as the awaited core or
    #: queue finishes, so long pauses cost no latency, only time-out granularity.
    POLL_CYCLES = 4096
    MAX_POLL_CYCLES = 1 << 16

    def _polls(self):
        """Cycles of successive pauses while waiting."""
        cycles = self.POLL_CYCLES
        while True:
            yield cycles
            cycles = min(2 * cycles, self.MAX_POLL_CYCLES)

    def __init__(self, transport):
        self.transport = transport
        self.params, self.regmap = regmap_from_global(
            lambda addr: int(transport.read_words(addr, 1)[0]))

    @property
    def cores(self):
        return self.params.cores

    # -- registers -------------------------------------------------------------------
    def read_csr(self, path):
        """The fields of register ``path`` (``"core[1].status"``) as a dict."""
        inst = self.regmap.locate(path)
        return inst.register.unpack(int(self.transport.read_words(inst.address, 1)[0]))

    def write_csr(self, path, value=None, **fields):
        """Write register ``path``: a raw ``value`` or field values (the others 0)."""
        inst = self.regmap.locate(path)
        if (value is None) == (not fields):
            raise TypeError(f"write_csr({path!r}): give either a raw value or field values")
        word = inst.register.pack(**fields) if fields else value
        if not 0 <= word <= 0xFFFFFFFF:
            raise ValueError(f"write_csr({path!r}): {word} is not a 32-bit value")
        self.transport.write_words(inst.address, [word])

    # -- memory ------------------------------------------------------------------------
    def _check_range(self, word, count, what):
        if word < 0 or count < 0 or word + count > self.params.dram_words:
            raise IndexError(f"{what}: DRAM words {word}…{word + count - 1} are outside the "
                             f"device's {self.params.dram_words} words (0…"
                             f"{self.params.dram_words - 1}); check the memory layout")

    def write_mem(self, word, data):
        """Write ``data`` (32-bit words, or bytes of a multiple of 4) at DRAM word ``word``."""
        if isinstance(data, (bytes, bytearray, memoryview)):
            if len(data) % 4:
                raise ValueError(f"write_mem: {len(data)} bytes is not a whole number of words")
            words = np.frombuffer(bytes(data), dtype="<u4").astype(np.uint32)
        else:
            words = np.asarray(data)
            if words.dtype.kind not in "ui" or (words.size and (words.min() < 0 or
                                                                 words.max() > 0xFFFFFFFF)):
                raise ValueError("write_mem: words must be integers in 0 … 2**32-1")
            words = words.astype(np.uint32).ravel()
        self._check_range(word, len(words), "write_mem")
        self.transport.load_dram(word, words)

    def read_mem(self, word, count):
        """``count`` DRAM words from ``word`` (``numpy.uint32``)."""
        self._check_range(word, count, "read_mem")
        return np.asarray(self.transport.dump_dram(word, count), dtype=np.uint32)

    # -- cores -------------------------------------------------------------------------
    def _check_core(self, core):
        if not 0 <= core < self.cores:
            raise IndexError(f"core {core}: this device has cores 0…{self.cores - 1}")

    def start(self, core, program):
        """Run the descriptor program at DRAM word ``program`` on ``core``."""
        self._check_core(core)
        self._check_range(program, 1, f"start(core {core})")
        if self.read_csr(f"core[{core}].status")["busy"]:
            raise DeviceError(f"core {core} is still busy: wait for it before starting it "
                              f"again\n{self.status_dump()}")
        p = f"core[{core}]"
        self.write_csr(f"{p}.irq", pending=1, enable=1)      # wake the simulator on done
        self.write_csr(f"{p}.program", address=program)
        self.write_csr(f"{p}.control", start=1)

    def wait(self, core, timeout=10.0):
        """Wait until ``core`` is done; return its counters.

        Raises
        ------
        DeviceTimeout
            Not done after ``timeout`` seconds (with every core's status).
        CoreError
            The program stopped with an error code.
        """
        self._check_core(core)
        p = f"core[{core}]"
        self._poll(f"{p}.status", lambda s: s["done"] and not s["busy"],
                   time.monotonic() + timeout, f"core {core} not done after {timeout} s")
        self.write_csr(f"{p}.irq", pending=1, enable=0)     # only what we wait for wakes us
        self._raise_if_failed(core)
        return self.counters(core)

    def _poll(self, path, finished, deadline, late):
        """Read register ``path`` until ``finished(fields)``, letting the device run between
        reads; its fields.  After ``deadline`` raise DeviceTimeout (``late``, the status dump)."""
        polls = self._polls()
        while True:
            status = self.read_csr(path)
            if finished(status):
                return status
            if time.monotonic() > deadline:
                raise DeviceTimeout(f"{late} (transport {self.transport.kind})\n"
                                    f"{self.status_dump()}")
            self.transport.pause(next(polls))

    def _raise_if_failed(self, core):
        code = self.read_csr(f"core[{core}].error")["code"]
        if code:
            pc = self.read_csr(f"core[{core}].error_pc")["address"]
            raise CoreError(f"core {core} stopped with error {code:#04x} ({_error_name(code)}) "
                            f"at descriptor word "
                            f"{pc:#x}\n{self.status_dump()}", core, code, pc)

    def run(self, core, program, timeout=10.0):
        """:meth:`start` then :meth:`wait`."""
        self.start(core, program)
        return self.wait(core, timeout)

    def run_phase(self, programs, timeout=10.0):
        """Start core ``k`` on ``programs[k]`` for every ``k`` (a list, one address per core
        or None to leave it idle), then wait for all of them: one phase of a compiled pass
        (trident.golden.hw.compiler).  Returns ``{core: counters}``."""
        if len(programs) > self.cores:
            raise IndexError(f"{len(programs)} programs for {self.cores} cores")
        started = [k for k, pc in enumerate(programs) if pc is not None]
        for k in started:
            self.start(k, programs[k])
        return {k: self.wait(k, timeout) for k in started}

    def run_queued(self, phases, timeout=10.0):
        """Run phases through the SoC's program queue and wait once: every phase's programs
        (a list per phase, one address per core or None), a barrier between phases.  The
        host is not involved between phases; a queue shorter than the work is filled and
        drained in turns (a drained queue is a barrier too).

        Returns
        -------
        QueuedRun

        Raises
        ------
        DeviceTimeout
            The queue did not drain within ``timeout`` seconds (with the status dump).
        CoreError
            A program stopped with an error; the queue halted and was flushed.
        """
        entries = []
        for phase in phases:
            if len(phase) > self.cores:
                raise IndexError(f"{len(phase)} programs for {self.cores} cores")
            for core, pc in enumerate(phase):
                if pc is not None:
                    self._check_range(pc, 1, f"run_queued(core {core})")
                    entries.append((core, pc))
            if entries and entries[-1] is not None:
                entries.append(None)            # barrier
        while entries and entries[-1] is None:
            entries.pop()                       # waiting for the queue is the last barrier
        used = sorted({e[0] for e in entries if e is not None})
        deadline = time.monotonic() + timeout
        self.write_csr("queue.control", flush=1)
        first_cycle = self.read_csr("global.cycles")["count"]
        depth = self.params.queue_depth
        for first in range(0, len(entries), depth):
            self.write_csr("queue.irq", pending=1, enable=1)    # wake on this chunk's end
            for entry in entries[first:first + depth]:
                if entry is None:
                    self.write_csr("queue.control", barrier=1)
                else:
                    self.write_csr(f"core[{entry[0]}].enqueue", address=entry[1])
            self._drain_queue(deadline, timeout, used)
        cycles = (self.read_csr("global.cycles")["count"] - first_cycle) & 0xFFFFFFFF
        self.write_csr("queue.irq", pending=1, enable=0)
        return QueuedRun(counters={k: self.counters(k) for k in used}, cycles=cycles,
                         overflow=bool(self.read_csr("queue.status")["overflow"]))

    def _drain_queue(self, deadline, timeout, used):
        status = self._poll("queue.status", lambda s: s["idle"] or s["halted"] or s["dropped"],
                            deadline, f"the program queue did not drain in {timeout} s")
        if status["dropped"]:
            raise DeviceError(f"the program queue dropped an entry (the driver wrote more "
                              f"than its {self.params.queue_depth} entries)\n"
                              f"{self.status_dump()}")
        if status["halted"]:
            try:
                for core in used:
                    self._raise_if_failed(core)
                raise DeviceError(f"the program queue halted but no core reports an error\n"
                                  f"{self.status_dump()}")
            finally:
                self.write_csr("queue.control", flush=1)

    # -- counters and diagnostics ------------------------------------------------------
    def counters(self, core):
        """The performance counters of ``core``'s last run, or of its programs in the last
        queued run (``{name: value}``): one read of the consecutive counter registers."""
        self._check_core(core)
        names = (*SOC_COUNTERS, *CORE_COUNTERS)       # consecutive registers (regmap)
        first = self.regmap.locate(f"core[{core}].{names[0]}").address
        words = self.transport.read_words(first, len(names))
        return {name: int(word) for name, word in zip(names, words)}

    def dram_traffic(self):
        """DRAM bytes read and written at the DRAM port, and the AXI transactions that
        carried them (0 with block-RAM DRAM), since reset or the last clear."""
        return {"bytes_read": self.read_csr("dram.bytes_read")["count"],
                "bytes_written": self.read_csr("dram.bytes_written")["count"],
                "read_bursts": self.read_csr("dram.read_bursts")["count"],
                "write_bursts": self.read_csr("dram.write_bursts")["count"],
                "cycles": self.read_csr("global.cycles")["count"]}

    def clear_counters(self):
        self.write_csr("global.control", clear_counters=1)

    def status_dump(self):
        """The queue's, the DRAM port's and every core's status registers, one line each."""
        q = self.read_csr("queue.status")
        dram = self.read_csr("dram.status")
        lines = [f"status of {self.cores} core(s) on the {self.transport.kind} transport:",
                 "  queue: " + " ".join(f"{k}={v}" for k, v in q.items()),
                 "  dram: " + " ".join(f"{k}={v}" for k, v in dram.items())
                 + f" read_bursts={self.read_csr('dram.read_bursts')['count']}"
                 + f" write_bursts={self.read_csr('dram.write_bursts')['count']}"]
        for k in range(self.cores):
            p = f"core[{k}]"
            s = self.read_csr(f"{p}.status")
            lines.append(f"  core {k}: busy={s['busy']} done={s['done']} "
                         f"overflow={s['overflow']} error={self.read_csr(f'{p}.error')['code']:#04x} "
                         f"error_pc={self.read_csr(f'{p}.error_pc')['address']:#x} "
                         f"program={self.read_csr(f'{p}.program')['address']:#x} "
                         f"busy_cycles={self.read_csr(f'{p}.busy_cycles')['count']}")
        return "\n".join(lines)

    def close(self):
        self.transport.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
