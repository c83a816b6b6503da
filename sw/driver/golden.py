"""The ``golden`` transport: a device model with the SoC's registers and memory semantics.

Registers behave as declared in :func:`~trident.rtl.soc.regmap.build_regmap` (the model
walks the same objects: RW storage, W pulses, W1C bits, build constants), DRAM is a
``numpy.uint32`` array, and ``core[i].control.start`` runs the descriptor program with
the golden device (:func:`trident.golden.hw.program.run`) to completion at once: after a
start the core reads done.  The program queue (``core[i].enqueue``, ``queue.*``) runs each
program as it is enqueued, since nothing is ever busy here; a halted queue keeps its
entries until ``queue.control.flush``, as the RTL's does.
"""

import numpy as np

from trident.rtl.soc.csr import Access
from trident.rtl.soc.regmap import HOST_DRAM_BASE, SoCParams, build_regmap

from .transport import Transport

__all__ = ["GoldenTransport", "golden_executor"]


def golden_executor(core_params=None):
    """An executor running programs with :func:`trident.golden.hw.program.run`.

    Parameters
    ----------
    core_params : trident.golden.hw.descriptors.CoreParams, optional
        What the cores can do (default: its defaults).
    """
    from trident.golden.hw import descriptors as D
    from trident.golden.hw import program as P

    params = core_params or D.CoreParams()

    def execute(memory, pc, core):
        status = P.run(memory, pc, params)
        return {"error": int(status.error), "error_pc": status.error_pc,
                "overflow": int(status.overflow),
                "counters": {"words_read": status.words_read,
                             "words_written": status.words_written,
                             "descriptors": len(status.counters),
                             "dram_bytes_read": 4 * status.words_read,
                             "dram_bytes_written": 4 * status.words_written}}
    return execute


class GoldenTransport(Transport):
    """The SoC's register and memory semantics in Python.

    Parameters
    ----------
    params : SoCParams
    executor : callable, optional
        ``executor(memory, pc, core) -> {"error", "error_pc", "overflow", "counters"}``
        runs core ``core``'s program at word ``pc`` on ``memory`` (modified in place);
        ``counters`` names registers of the core's block.  Default: :func:`golden_executor`.

    Attributes
    ----------
    memory : numpy.ndarray
        DRAM (``uint32``, ``params.dram_words``).
    """

    kind = "golden"

    def __init__(self, params=SoCParams(), executor=None):
        self.params = params
        self.map = build_regmap(params)
        self.memory = np.zeros(params.dram_words, dtype=np.uint32)
        self.executor = executor or golden_executor()
        # Every field instance's current value: storage, and what the "hardware" reports.
        self.fields = {f"{inst.path}.{f.name}": (f.const if f.const is not None else f.reset)
                       for inst in self.map.walk() for f in inst.register.fields}
        self.fields["queue.status.idle"] = 1
        self.queue = []                 # waiting entries: (core, address) or None (barrier)
        self.fresh = set(range(params.cores))   # cores whose next queued program clears counters

    def _field_paths(self, inst):
        return [(f, off, f"{inst.path}.{f.name}") for f, off in inst.register.layout()]

    def _read_register(self, addr):
        inst = self.map.at(addr)
        if inst is None:
            return 0
        return sum(self.fields[path] << off for f, off, path in self._field_paths(inst)
                   if f.access.readable)

    def _write_register(self, addr, value):
        inst = self.map.at(addr)
        if inst is None:
            return
        for f, off, path in self._field_paths(inst):
            bits = (value >> off) & ((1 << f.width) - 1)
            if f.access is Access.RW:
                self.fields[path] = bits
            elif f.access is Access.W1C:
                self.fields[path] &= ~bits
            elif f.access is Access.W:
                self._act(inst, f.name, bits)

    def _act(self, inst, field_name, bits):
        """A write of ``bits`` to the W field ``field_name`` (the RTL acts on the strobe:
        commands on bit 0, an enqueue on any address)."""
        if inst.register.name == "enqueue":
            self._enqueue((inst.index, bits))
        elif not bits & 1:
            return
        elif inst.path == "global.control" and field_name == "clear_counters":
            for path in self.fields:
                if path.startswith(("global.cycles.", "dram.")):
                    self.fields[path] = 0
        elif inst.register.name == "control" and field_name == "start":
            self._start(inst.index, self.fields[f"core[{inst.index}].program.address"])
        elif inst.path == "queue.control" and field_name == "barrier":
            self._enqueue(None)
        elif inst.path == "queue.control" and field_name == "flush":
            self.queue.clear()
            self.fresh = set(range(self.params.cores))
            for name in ("halted", "overflow", "dropped"):
                self.fields[f"queue.status.{name}"] = 0
            self._queue_state()

    def _enqueue(self, entry):
        if len(self.queue) >= self.params.queue_depth:
            self.fields["queue.status.dropped"] = 1
            return
        halted_before = self.fields["queue.status.halted"]
        self.queue.append(entry)
        while self.queue and not self.fields["queue.status.halted"]:
            entry = self.queue.pop(0)
            if entry is None:                   # a barrier: every core is idle here
                continue
            core, address = entry
            result = self._start(core, address, keep=core not in self.fresh)
            self.fresh.discard(core)
            self.fields["queue.status.halted"] |= int(result["error"] != 0)
            self.fields["queue.status.overflow"] |= int(result.get("overflow", 0))
        self._queue_state()
        if not halted_before:                   # the queue went busy and stopped again
            self.fields["queue.irq.pending"] = 1

    def _queue_state(self):
        self.fields["queue.status.level"] = len(self.queue)
        self.fields["queue.status.idle"] = int(not self.queue)

    def _start(self, core, address, keep=False):
        """Run ``core``'s program at ``address``; ``keep``: add to its counters (a queued
        run) instead of starting them from 0."""
        p = f"core[{core}]"
        block = self.map.locate(f"{p}.control").block
        counters = [reg.name for reg in block.registers if reg.fields[0].name == "count"]
        if not keep:
            for name in counters:
                self.fields[f"{p}.{name}.count"] = 0
        result = self.executor(self.memory, address, core)
        self.fields[f"{p}.status.done"] = 1
        self.fields[f"{p}.status.overflow"] = (result.get("overflow", 0) |
                                               (self.fields[f"{p}.status.overflow"] if keep else 0))
        self.fields[f"{p}.error.code"] = result["error"]
        self.fields[f"{p}.error_pc.address"] = result["error_pc"] if result["error"] else 0
        for name, value in result.get("counters", {}).items():
            self.fields[f"{p}.{name}.count"] = (self.fields[f"{p}.{name}.count"] + value) & 0xFFFFFFFF
        for name in ("bytes_read", "bytes_written"):
            self.fields[f"dram.{name}.count"] = (self.fields[f"dram.{name}.count"] +
                                                 result.get("counters", {}).get(f"dram_{name}", 0)
                                                 ) & 0xFFFFFFFF
        self.fields[f"{p}.irq.pending"] = 1
        return result

    def _dram_index(self, addr, count):
        word = (addr - HOST_DRAM_BASE) // 4
        if word + count > len(self.memory):
            raise IndexError(f"DRAM words {word}…{word + count - 1} are past the "
                             f"{len(self.memory)} words of this device")
        return word

    def read_words(self, addr, count):
        if addr >= HOST_DRAM_BASE:
            word = self._dram_index(addr, count)
            return self.memory[word:word + count].copy()
        return np.array([self._read_register(addr + 4 * i) for i in range(count)], np.uint32)

    def write_words(self, addr, words):
        words = np.asarray(words, dtype=np.uint32)
        if addr >= HOST_DRAM_BASE:
            word = self._dram_index(addr, len(words))
            self.memory[word:word + len(words)] = words
            return
        for i, w in enumerate(words):
            self._write_register(addr + 4 * i, int(w))
            self._update_irq()

    def _update_irq(self):
        self.fields["global.irq.pending"] = int(any(
            self.fields[f"{p}.irq.pending"] and self.fields[f"{p}.irq.enable"]
            for p in ("queue", *(f"core[{k}]" for k in range(self.params.cores)))))
