"""The ``sim`` transport: the SoC RTL in Icarus or Verilator, driven from the host process.

:class:`SimTransport` generates the SoC's Verilog (cached), starts a cocotb run of
:mod:`~trident.sw.driver.sim_server` in a thread (the simulator is a child process) and
talks to it over a Unix socket (:mod:`~trident.sw.driver.simlink`).  CSR accesses go
through the SoC's host port; DRAM bulk transfers use the memory backdoor; between start
and done the SoC runs on its own (``RUN``: up to ``cycles`` or the next interrupt).

:class:`SimUartStream` is a byte stream over the same link that drives the SoC's UART
pins, so :class:`~trident.sw.driver.transport.SerialTransport` can be tested against the
RTL's UART bridge.
"""

import os
import re
import shutil
import socket
import struct
import tempfile
import threading
import time

import numpy as np

from .simlink import ERROR, HEADER, Op, recv_exact
from .transport import Transport

__all__ = ["SimTransport", "SimUartStream", "SimulatorError", "icarus_compatible"]


def icarus_compatible(vmod):
    """The Verilog of ``vmod`` with no escaped identifier starting with ``$``.

    Yosys names the functions of its parallel muxes ``\\$flatten…``; Icarus 11 takes a call
    of such a function for a system task ("System function $flatten… not defined").
    Amaranth's unoptimised Verilog compiles, but its ``always @*`` blocks that nothing
    changes never run in Icarus and leave X behind, so the optimised netlist is renamed.
    """
    from trident.verify.verilog import VerilogModule

    path = vmod.path.with_name(vmod.path.stem + "-icarus.v")
    if not path.exists():
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(re.sub(r"\\\$", r"\\_$", vmod.path.read_text()))
        os.replace(tmp, path)
    return VerilogModule(path=path, toplevel=vmod.toplevel, key=vmod.key + "-icarus",
                         cls=vmod.cls, params=vmod.params)


def _axi_setting(soc_cls, soc_params, stall, command_cycles):
    """``TRIDENT_SIM_AXI`` for the server (empty without AXI DRAM)."""
    if soc_params.get("dram", "bram") != "axi":
        return ""
    import inspect

    from trident.rtl.soc.regmap import build_regmap

    words = soc_params.get("dram_words",
                           inspect.signature(soc_cls).parameters["dram_words"].default)
    status = build_regmap().locate("dram.status")
    _, busy_bit = status.register.field("busy")
    return f"{words},{status.address},{busy_bit},{stall},{command_cycles}"


class SimulatorError(RuntimeError):
    """The simulator failed to start, died, or refused a request."""


class SimTransport(Transport):
    """The SoC RTL in a simulator.

    Parameters
    ----------
    soc_cls : type
        :class:`~trident.rtl.soc.soc.SoC` or a subclass.
    soc_params : dict
        Its constructor arguments (``dram``, ``dram_words`` and ``uart_divisor`` as
        :class:`SoC` names them).  With ``dram="axi"`` the DRAM is cocotbext-axi's
        ``AxiRam`` on the SoC's AXI port.
    axi_stall : float
        With ``dram="axi"``: the probability that the AXI memory pauses a channel in a cycle.
    axi_command_cycles : int
        With ``dram="axi"``: the memory takes an address (AR, and AW) on one cycle in this
        many, as a memory controller spends cycles on every command (1: every cycle).
    simulator : str
        ``"icarus"`` or ``"verilator"``.
    start_timeout : float
        Seconds to wait for the build and the simulator to connect.

    Attributes
    ----------
    cycles : int
        Clock cycles spent in ``RUN`` requests so far.
    """

    kind = "sim"

    def __init__(self, soc_cls, soc_params, simulator="icarus", start_timeout=600.0,
                 axi_stall=0.0, axi_command_cycles=1):
        from trident.verify.verilog import generate_verilog

        self.simulator = simulator
        self.cycles = 0
        self._result = {}
        self._dir = tempfile.mkdtemp(prefix="trident-sim-")
        self._sock = None
        path = os.path.join(self._dir, "link")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(1)
        listener.settimeout(0.5)
        try:
            vmod = generate_verilog(soc_cls, dict(soc_params))
            if simulator == "icarus":
                vmod = icarus_compatible(vmod)
            memory = soc_cls.BACKDOOR_MEMORY if soc_params.get("dram", "bram") == "bram" else ""
            env = {"TRIDENT_SIM_SOCKET": path,
                   "TRIDENT_SIM_MEMORY": memory,
                   "TRIDENT_SIM_DIVISOR": str(soc_params.get("uart_divisor") or 0),
                   "TRIDENT_SIM_AXI": _axi_setting(soc_cls, soc_params, axi_stall,
                                                   axi_command_cycles)}
            self._thread = threading.Thread(target=self._simulate, args=(vmod, env, memory),
                                            daemon=True)
            self._thread.start()
            deadline = time.monotonic() + start_timeout
            while self._sock is None:
                try:
                    self._sock, _ = listener.accept()
                except socket.timeout:
                    if not self._thread.is_alive():
                        raise SimulatorError(f"the {simulator} simulation ended before it "
                                             f"connected: {self._log_tail()}") from None
                    if time.monotonic() > deadline:
                        raise SimulatorError(f"{simulator} did not connect within "
                                             f"{start_timeout} s") from None
        except BaseException:
            self.close()
            raise
        finally:
            listener.close()
        self._sock.settimeout(None)

    def _simulate(self, vmod, env, memory):
        from trident.verify.runner import run_cocotb
        try:
            self._result.update(run_cocotb(vmod, self.simulator,
                                           test_module="trident.sw.driver.sim_server",
                                           extra_env=env, label="sim-transport",
                                           public=(memory,) if memory else ()))
        except BaseException as e:       # reported by whoever waits for the simulator
            self._result["exception"] = e

    def _log_tail(self):
        if "exception" in self._result:
            return repr(self._result["exception"])
        log = self._result.get("log")
        if log and os.path.exists(log):
            return "log tail:\n" + open(log, errors="replace").read()[-2000:]
        return "(no log)"

    def request(self, op, a=0, b=0, payload=b""):
        """One simulator-link request; returns the reply payload."""
        if self._sock is None:
            raise SimulatorError("the simulator link is closed")
        try:
            self._sock.sendall(HEADER.pack(op, a, b, len(payload)) + payload)
            n, = struct.unpack("<I", recv_exact(self._sock, 4))
            if n == ERROR:
                length, = struct.unpack("<I", recv_exact(self._sock, 4))
                raise SimulatorError(f"simulator refused {Op(op).name}: "
                                     f"{recv_exact(self._sock, length).decode()}")
            return recv_exact(self._sock, n)
        except (ConnectionError, BrokenPipeError) as e:
            self._thread.join(timeout=10)
            raise SimulatorError(f"the simulator went away ({e}); {self._log_tail()}") from None

    def read_words(self, addr, count):
        return np.frombuffer(self.request(Op.HOST_READ, addr, count), dtype="<u4").astype(np.uint32)

    def write_words(self, addr, words):
        words = np.asarray(words, dtype="<u4")
        self.request(Op.HOST_WRITE, addr, len(words), words.tobytes())

    def load_dram(self, word, words):
        words = np.asarray(words, dtype="<u4")
        self.request(Op.MEM_LOAD, word, len(words), words.tobytes())

    def dump_dram(self, word, count):
        return np.frombuffer(self.request(Op.MEM_DUMP, word, count), dtype="<u4").astype(np.uint32)

    def pause(self, cycles):
        self.cycles += struct.unpack("<Q", self.request(Op.RUN, cycles, 1))[0]

    def close(self):
        if self._sock is not None:
            try:
                self.request(Op.QUIT)
            except SimulatorError:
                pass
            self._sock.close()
            self._sock = None
        thread = getattr(self, "_thread", None)
        if thread is not None:
            thread.join(timeout=60)
        if self._result.get("passed") and not os.environ.get("TRIDENT_KEEP_RUNS"):
            shutil.rmtree(self._result["test_dir"], ignore_errors=True)
        shutil.rmtree(self._dir, ignore_errors=True)


class SimUartStream:
    """A byte stream (``write``/``read``) on the simulated SoC's UART pins.

    Parameters
    ----------
    sim : SimTransport
        Of a SoC built with ``uart_divisor``.
    timeout_cycles : int
        How long :meth:`read` lets the simulation run for the bytes it waits for.
    """

    def __init__(self, sim, timeout_cycles=200_000):
        self.sim = sim
        self.timeout_cycles = timeout_cycles

    def write(self, data):
        self.sim.request(Op.UART_SEND, 0, 0, bytes(data))
        return len(data)

    def read(self, n):
        return self.sim.request(Op.UART_RECV, n, self.timeout_cycles)
