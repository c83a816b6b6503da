"""Child processes that can never outlive their parent (Linux).

Every process of a federation is started by :class:`ProcessSet` with

- its own session and process group (``start_new_session``), so a signal reaches the
  process and everything it forked (a SuperNode and its ``flower-superexec`` and
  ``flwr-clientapp`` children);
- ``PR_SET_PDEATHSIG = SIGKILL``, so it dies with the ``trident fed`` process even if that
  one is SIGKILLed itself (Flower's own helpers then exit too: they watch their parent);
- an environment variable ``TRIDENT_FED_RUN=<run id>`` that every descendant inherits.
  Some Flower helpers start their own session (the SuperLink's ``flower-superexec``), so
  :meth:`ProcessSet.shutdown` finds them by this marker in ``/proc/*/environ``, signals them
  too, and repeats until none is left.

:func:`survivors` lists the live (non-zombie) processes carrying a run's marker; the tests
use it to check that nothing outlives ``trident fed``.
"""
from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["MARKER_ENV", "ProcessSet", "Child", "survivors", "marked_processes"]

MARKER_ENV = "TRIDENT_FED_RUN"
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except OSError:
        pass


def _state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def marked_processes(run_id: str) -> list[int]:
    """Live (not zombie) processes whose environment has ``TRIDENT_FED_RUN=run_id``."""
    needle = f"{MARKER_ENV}={run_id}".encode()
    found = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            env = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        if needle in env.split(b"\0") and _state(int(entry)) not in (None, "Z", "X"):
            found.append(int(entry))
    return found


survivors = marked_processes


@dataclass
class Child:
    name: str
    argv: list[str]
    popen: subprocess.Popen
    log: Path
    started: float = field(default_factory=time.time)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None


class ProcessSet:
    """Start, watch and stop the processes of one run (see the module docstring)."""

    def __init__(self, run_id: str, env: dict[str, str], cwd: Path):
        self.run_id = run_id
        self.env = dict(env, **{MARKER_ENV: run_id})
        self.cwd = cwd
        self.children: dict[str, Child] = {}
        self._closed = False

    def spawn(self, name: str, argv: list[str], log: Path, env: dict[str, str] | None = None) -> Child:
        if self._closed:
            raise RuntimeError("the process set is shut down")
        old = self.children.get(name)
        if old is not None and old.alive():
            raise RuntimeError(f"{name} is already running (pid {old.pid})")
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            out.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} start: {' '.join(argv)}\n".encode())
            out.flush()
            popen = subprocess.Popen(argv, cwd=self.cwd, env=dict(self.env, **(env or {})), stdin=subprocess.DEVNULL,
                                     stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                     preexec_fn=_die_with_parent)
        child = Child(name, argv, popen, log)
        self.children[name] = child
        return child

    def signal_group(self, name: str, sig: int) -> None:
        """Send ``sig`` to the process group of ``name`` (the child and what it forked)."""
        child = self.children[name]
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            pass

    def wait(self, name: str, timeout: float) -> int | None:
        try:
            return self.children[name].popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, name: str, grace: float = 5.0) -> None:
        """SIGTERM the group of one child, SIGKILL it after ``grace`` s."""
        if name not in self.children:
            return
        self.signal_group(name, signal.SIGTERM)
        if self.wait(name, grace) is None:
            self.signal_group(name, signal.SIGKILL)
            self.wait(name, 5.0)
        self.signal_group(name, signal.SIGKILL)   # anything left in the group

    def _signal_all(self, sig: int) -> None:
        for child in self.children.values():
            try:
                os.killpg(child.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        for pid in marked_processes(self.run_id):
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass

    def shutdown(self, grace: float = 5.0) -> list[int]:
        """Stop everything: SIGTERM, wait up to ``grace`` s, then SIGKILL until no marked
        process is left (at most ~10 s more).  Returns the pids still alive (normally none)."""
        self._closed = True
        self._signal_all(signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if all(not c.alive() for c in self.children.values()) and not marked_processes(self.run_id):
                break
            time.sleep(0.1)
        for _ in range(100):
            left = marked_processes(self.run_id)
            if not left and all(not c.alive() for c in self.children.values()):
                break
            self._signal_all(signal.SIGKILL)
            time.sleep(0.1)
        for child in self.children.values():
            try:
                child.popen.wait(1.0)
            except subprocess.TimeoutExpired:
                pass
        return marked_processes(self.run_id)
