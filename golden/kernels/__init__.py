"""C++ CPU kernels for the golden model, compiled on first use.

``neuron.cpp`` holds one forward and one backward kernel for the fused multi-step neurons
(:class:`trident.golden.neurons._FusedMultiStep`): IF / LIF / KLIF, hard or soft reset,
``decay_input``, ``detach_reset``, the four built-in surrogates, float32 and float64.  They
compute the same operations, in the same order and precision, as the PyTorch fused path
(spikes bit-identical, gradients within a few ulp), in one pass over the data with the
elements split across threads by ``at::parallel_for``.

Build and cache
---------------
The first call to :func:`load` compiles the source with ``torch.utils.cpp_extension``
(needs a C++ compiler and ``ninja``; about a minute on one core) into

    ``$TRIDENT_TORCH_EXTENSIONS_DIR`` or ``$TORCH_EXTENSIONS_DIR`` if set, else
    ``<virtualenv>/torch_extensions`` (``sys.prefix``, when running in a writable virtual
    environment), else ``~/.cache/trident/torch_extensions``,

in a subfolder per torch and Python version.  Later processes only load the library (ninja
recompiles if the source or the flags changed).  Concurrent first builds (pytest-xdist)
serialise on a lock file.  The flags keep IEEE semantics: ``-ffp-contract=off`` (no FMA
contraction) and no ``-ffast-math``.  The kernels are compiled twice, for baseline x86-64
and for AVX2 (without FMA), and the library picks one at run time.

Fallback
--------
If the build or the load fails, one ``RuntimeWarning`` says why and every caller keeps
using the PyTorch path.  ``TRIDENT_NO_CPP_KERNELS=1`` forces the PyTorch path without
trying to build (read at every call, so it can be toggled at run time).

Members
-------
load()
    Build/load once per process; True when the kernels are usable.
available()
    ``load()`` unless ``TRIDENT_NO_CPP_KERNELS`` is set.
disabled()
    Whether ``TRIDENT_NO_CPP_KERNELS`` forces the fallback.
build_info()
    Where the library was built, whether this process compiled or reused it, and how long
    that took; the error message after a failure.
neuron_supported, neuron_forward, neuron_backward
    The neuron kernels as ``_FusedMultiStep`` calls them.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import sys
import threading
import time
import warnings
from pathlib import Path

import torch

from .. import surrogate as surrogates

__all__ = ["load", "available", "disabled", "build_info", "extensions_dir", "neuron_supported",
           "neuron_forward", "neuron_backward", "DISABLE_ENV", "SOURCES", "CFLAGS"]

DISABLE_ENV = "TRIDENT_NO_CPP_KERNELS"
EXTENSION_NAME = "trident_kernels"
SOURCES = (Path(__file__).resolve().parent / "neuron.cpp",)  # includes neuron_impl.h
# IEEE semantics are part of the contract: no FMA contraction, no fast-math reassociation.
# -fno-trapping-math changes no result; it lets GCC if-convert the compares and vectorise.
CFLAGS = ["-O3", "-ffp-contract=off", "-fno-fast-math", "-fno-trapping-math"]

_lock = threading.Lock()
_ops = None           # torch.ops.trident_kernels once loaded
_error: str | None = None
_info: dict = {}


def disabled() -> bool:
    """True when ``TRIDENT_NO_CPP_KERNELS`` is set to anything but ``""`` or ``"0"``."""
    return os.environ.get(DISABLE_ENV, "").strip() not in ("", "0")


def extensions_dir() -> Path:
    """The folder the extension is built in (see the module docstring)."""
    for var in ("TRIDENT_TORCH_EXTENSIONS_DIR", "TORCH_EXTENSIONS_DIR"):
        if os.environ.get(var):
            base = Path(os.environ[var]).expanduser()
            break
    else:
        in_venv = sys.prefix != getattr(sys, "base_prefix", sys.prefix)
        if in_venv and os.access(sys.prefix, os.W_OK):
            base = Path(sys.prefix) / "torch_extensions"
        else:
            base = Path.home() / ".cache" / "trident" / "torch_extensions"
    tag = f"{EXTENSION_NAME}-torch{torch.__version__}-py{sys.version_info.major}{sys.version_info.minor}"
    return base / tag.replace("+", "_")


def build_info() -> dict:
    """``directory``, ``compiled`` (this process ran the compiler), ``seconds`` (build or
    load time), ``error`` (after a failed build)."""
    return dict(_info, error=_error)


def available() -> bool:
    """Whether the C++ kernels are used: not disabled, and built/loaded successfully."""
    return not disabled() and load()


def load(verbose: bool = False) -> bool:
    """Build (first time) and load the extension; on failure warn once and return False."""
    global _ops, _error
    if _ops is not None:
        return True
    if _error is not None:
        return False
    with _lock:
        if _ops is not None or _error is not None:
            return _ops is not None
        start = time.perf_counter()
        try:
            directory = extensions_dir()
            directory.mkdir(parents=True, exist_ok=True)
            _ensure_ninja_on_path()
            library = directory / f"{EXTENSION_NAME}.so"
            before = library.stat().st_mtime_ns if library.exists() else None
            if before is None:
                print(f"trident: compiling the C++ neuron kernels into {directory} (first use only, "
                      f"about a minute)...", file=sys.stderr, flush=True)
            with _build_lock(directory):
                from torch.utils import cpp_extension
                cpp_extension.load(name=EXTENSION_NAME, sources=[str(s) for s in SOURCES],
                                   extra_cflags=CFLAGS, build_directory=str(directory),
                                   with_cuda=False, is_python_module=False, verbose=verbose)
            _ops = torch.ops.trident_kernels
            after = library.stat().st_mtime_ns if library.exists() else None
            _info.update(directory=str(directory), compiled=before != after,
                         seconds=time.perf_counter() - start)
            return True
        except Exception as exc:  # compiler or ninja missing, build error, load error
            lines = [line for line in str(exc).strip().splitlines() if line.strip()]
            reason = f"{type(exc).__name__}: " + (" / ".join(lines[-3:]) if lines else "")
            _error = reason
            warnings.warn(f"trident: the C++ neuron kernels are unavailable ({reason[:600]}); "
                          f"falling back to the PyTorch path. Set {DISABLE_ENV}=1 to skip the build.",
                          RuntimeWarning, stacklevel=3)
            return False


def _ensure_ninja_on_path():
    """torch runs ``ninja`` from PATH; a pip-installed ninja sits in the environment's bin
    folder, which is not on PATH when the interpreter is run without activating it."""
    if shutil.which("ninja"):
        return
    candidates = [Path(sys.executable).parent]
    try:
        import ninja
        candidates.insert(0, Path(ninja.BIN_DIR))
    except Exception:
        pass
    for folder in candidates:
        if (folder / "ninja").exists() or (folder / "ninja.exe").exists():
            os.environ["PATH"] = str(folder) + os.pathsep + os.environ.get("PATH", "")
            return


@contextlib.contextmanager
def _build_lock(directory: Path):
    """Serialise builds across processes.  torch's own lock file (``<dir>/lock``) outlives a
    process killed mid-build and then blocks every later build forever; under this lock
    (released by the OS when its holder dies) such a file is stale and is removed."""
    try:
        import fcntl
    except ImportError:  # not POSIX: rely on torch's lock alone
        yield
        return
    with open(directory / "trident_build.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            with contextlib.suppress(FileNotFoundError):
                (directory / "lock").unlink()
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# ------------------------------------------------------------------------------------------
# neuron kernels

_KINDS = {"if": 0, "lif": 1, "klif": 2}
_SURROGATES = {surrogates.Sigmoid: 0, surrogates.ATan: 1, surrogates.Rectangular: 2,
               surrogates.Triangle: 3}
_DTYPES = (torch.float32, torch.float64)


def neuron_supported(x_seq: torch.Tensor, k: torch.Tensor, cfg, surrogate) -> bool:
    """Whether the C++ kernels handle this call (else the caller runs the PyTorch path):
    a non-empty float32/float64 CPU sequence, a built-in surrogate (exact class), a scalar
    ``k``, not under ``torch.compile``; builds the extension on first use."""
    return (x_seq.device.type == "cpu" and x_seq.dtype in _DTYPES and x_seq.dim() >= 1
            and x_seq.numel() > 0 and k.numel() == 1 and cfg.kind in _KINDS
            and type(surrogate) in _SURROGATES and not torch.compiler.is_compiling()
            and available())


def neuron_forward(x_seq: torch.Tensor, k: torch.Tensor, cfg) -> tuple[torch.Tensor, torch.Tensor]:
    """Spikes and charged potentials ``(s_seq, h_seq)``, both contiguous like ``x_seq``."""
    return _ops.neuron_forward(x_seq, _KINDS[cfg.kind], cfg.soft_reset, bool(cfg.decay_input),
                               float(cfg.tau), float(cfg.v_threshold),
                               0.0 if cfg.v_reset is None else float(cfg.v_reset), float(cfg.v_rest),
                               float(k.item()))


def neuron_backward(grad_s: torch.Tensor, h_seq: torch.Tensor, k: torch.Tensor, cfg,
                    surrogate) -> tuple[torch.Tensor, torch.Tensor]:
    """``(grad_x, grad_k)``: BPTT through the whole sequence; ``grad_k`` is a 0-dim tensor
    (the KLIF ``dL/dk``; zero for IF/LIF)."""
    if grad_s.dtype != h_seq.dtype:
        grad_s = grad_s.to(h_seq.dtype)
    return _ops.neuron_backward(grad_s, h_seq, _KINDS[cfg.kind], cfg.soft_reset, bool(cfg.decay_input),
                                bool(cfg.detach_reset), float(cfg.tau), float(cfg.v_threshold),
                                0.0 if cfg.v_reset is None else float(cfg.v_reset), float(k.item()),
                                _SURROGATES[type(surrogate)], float(surrogate.alpha))
