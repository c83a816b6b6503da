"""Speed of the fused multi-step neuron: per-step autograd, PyTorch fused, C++ kernels.

The three implementations of the same neuron (trident.golden.neurons):

- ``per-step``: ``fused=False``, plain PyTorch per time step with autograd (the reference);
- ``py-fused``: ``_FusedMultiStep`` with its PyTorch loops (``TRIDENT_NO_CPP_KERNELS=1``);
- ``cpp``: ``_FusedMultiStep`` calling trident.golden.kernels (one C++ pass forward, one back).

For each shape and thread count (``torch.set_num_threads``) the variants alternate in one
process, so machine noise hits them alike; the time is the median over repeats of

- ``fwd``: the forward pass on an input that requires grad (what training runs);
- ``fwd+bwd``: forward, then ``backward`` of ``(s * g).sum()``.

The first-build time of the extension is measured in a fresh subprocess building into an
empty directory next to the cache (removed afterwards), so the cache itself is untouched.

Run:  .venv/bin/python bench/neuron_kernels.py [--repeats 15] [--report bench/reports/neuron_kernels.md]
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from trident.golden import kernels
from trident.golden.neurons import NeuronConfig, make_neuron

SHAPES = [(8, 32, 256), (8, 32, 16, 30, 30)]
THREADS = [1, 2]
VARIANTS = ["per-step", "py-fused", "cpp"]


def first_build_seconds() -> tuple[float, float]:
    """Compile the extension from scratch in a subprocess; (wall, CPU) seconds."""
    directory = kernels.extensions_dir().parent / f"first-build-{os.getpid()}"
    shutil.rmtree(directory, ignore_errors=True)
    env = dict(os.environ, TRIDENT_TORCH_EXTENSIONS_DIR=str(directory))
    env.pop(kernels.DISABLE_ENV, None)
    code = ("import sys; from trident.golden import kernels; ok = kernels.load(); "
            "sys.exit(0 if ok and kernels.build_info()['compiled'] else 1)")
    start = time.perf_counter()
    cpu_start = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
        cpu_end = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (cpu_end.ru_utime - cpu_start.ru_utime) + (cpu_end.ru_stime - cpu_start.ru_stime)
        return time.perf_counter() - start, cpu
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def make_step(variant, cfg, x, grad, backward):
    node = make_neuron(cfg, fused=variant != "per-step")
    xr = x.clone().requires_grad_()

    def step():
        os.environ[kernels.DISABLE_ENV] = "1" if variant == "py-fused" else "0"
        xr.grad = None
        s = node(xr)
        if backward:
            (s * grad).sum().backward()
    return step


def measure(shape, threads, repeats, cfg):
    torch.set_num_threads(threads)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=generator) * 1.5
    grad = torch.randn(shape, generator=generator)
    times = {}
    for backward in (False, True):
        steps = {v: make_step(v, cfg, x, grad, backward) for v in VARIANTS}
        samples = {v: [] for v in VARIANTS}
        for step in steps.values():  # warm-up
            step()
        for _ in range(repeats):
            for variant, step in steps.items():
                start = time.perf_counter()
                step()
                samples[variant].append(time.perf_counter() - start)
        for variant in VARIANTS:
            phase = "fwd+bwd" if backward else "fwd"
            times[(variant, phase)] = statistics.median(samples[variant])
            times[(variant, phase, "min")] = min(samples[variant])
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--report", type=Path, default=Path("bench/reports/neuron_kernels.md"))
    parser.add_argument("--no-build-time", action="store_true", help="skip the first-build measurement")
    args = parser.parse_args(argv)

    os.environ.pop(kernels.DISABLE_ENV, None)
    build_time = None if args.no_build_time else first_build_seconds()
    if not kernels.load():
        sys.exit(f"C++ kernels unavailable: {kernels.build_info()['error']}")
    isa = torch.ops.trident_kernels.isa()
    cfg = NeuronConfig()  # LIF, tau 2, decay_input, hard reset to 0, sigmoid surrogate (alpha 4)
    load_before = os.getloadavg()
    started = time.perf_counter()
    rows = []
    for shape in SHAPES:
        for threads in THREADS:
            repeats = args.repeats if torch.Size(shape).numel() < 1e6 else max(5, args.repeats // 3)
            times = measure(shape, threads, repeats, cfg)
            rows.append((shape, threads, repeats, times))
            print(shape, threads, {"/".join(key): f"{t * 1e3:.2f}ms" for key, t in times.items()}, flush=True)
    elapsed = time.perf_counter() - started
    load_after = os.getloadavg()
    os.environ.pop(kernels.DISABLE_ENV, None)

    lines = [
        "# Fused multi-step neuron: per-step vs PyTorch fused vs C++ kernels",
        "",
        f"Generated by `bench/neuron_kernels.py` on {platform.processor() or platform.machine()} "
        f"({os.cpu_count()} CPUs, shared), torch {torch.__version__}, float32, "
        f"`NeuronConfig()` (LIF, tau 2, hard reset, sigmoid surrogate), kernel ISA `{isa}`.",
        f"Median over repeats, variants interleaved; forward with autograd on (input requires grad); "
        f"backward of `(s * g).sum()`.  Load average {load_before[0]:.1f} before, "
        f"{load_after[0]:.1f} after ({elapsed:.0f} s run): absolute times are noisy, compare "
        f"within a row.",
        "",
        "First build of the extension (fresh directory, subprocess, compile + link + load): "
        + ("not measured" if build_time is None else
           f"**{build_time[0]:.1f} s** wall, {build_time[1]:.1f} s CPU (one g++ process)") + "; "
        f"later processes load the cached library in {kernels.build_info()['seconds']:.2f} s.",
        "",
        *([f"Note: the load average exceeded the {os.cpu_count()} CPUs during the run; with 2 threads, "
           "every parallel region waits for a thread the OS has descheduled, which hurts the paths "
           "that run many small torch ops (per-step, py-fused) the most.", ""]
          if max(load_before[0], load_after[0]) > (os.cpu_count() or 1) else []),
        "Median of the repeats:",
        "",
        "| shape | threads | pass | per-step ms | py-fused ms | cpp ms | per-step / cpp | py-fused / cpp | per-step / py-fused |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for shape, threads, repeats, times in rows:
        for phase in ("fwd", "fwd+bwd"):
            ps, pf, cc = (times[(v, phase)] for v in VARIANTS)
            lines.append(f"| {tuple(shape)} | {threads} | {phase} | {ps * 1e3:.2f} | {pf * 1e3:.2f} | "
                         f"{cc * 1e3:.2f} | {ps / cc:.1f}x | {pf / cc:.1f}x | {ps / pf:.1f}x |")
    lines += ["", "Best of the repeats (least disturbed by other load):", "",
              "| shape | threads | pass | per-step ms | py-fused ms | cpp ms | per-step / cpp | py-fused / cpp | per-step / py-fused |",
              "|---|---|---|---|---|---|---|---|---|"]
    for shape, threads, repeats, times in rows:
        for phase in ("fwd", "fwd+bwd"):
            ps, pf, cc = (times[(v, phase, "min")] for v in VARIANTS)
            lines.append(f"| {tuple(shape)} | {threads} | {phase} | {ps * 1e3:.2f} | {pf * 1e3:.2f} | "
                         f"{cc * 1e3:.2f} | {ps / cc:.1f}x | {pf / cc:.1f}x | {ps / pf:.1f}x |")
    lines.append("")
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
