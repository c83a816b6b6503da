"""Compare the reports of `make demo`: the simulated RTL, the golden device and float32.

Checks what the demo claims and exits 1 if a check fails: the simulated RTL ends with the
golden device's weights bit for bit (equal ``weights_sha256``), and its test accuracy is within
``--max-gap`` percentage points of the float32 golden model trained with the same settings.

Usage: python scripts/compare_reports.py SIM.json GOLDEN.json FP32.json [--max-gap 1.0]
"""
import argparse
import json
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sim")
    parser.add_argument("golden")
    parser.add_argument("fp32")
    parser.add_argument("--max-gap", type=float, default=1.0, help="percentage points")
    args = parser.parse_args(argv)
    reports = {name: json.load(open(path)) for name, path in
               (("sim", args.sim), ("golden", args.golden), ("fp32", args.fp32))}
    print(f"{'run':<8} {'device':<11} {'precision':<9} {'test acc':>8}  weights sha256")
    for name, r in reports.items():
        print(f"{name:<8} {r['device']:<11} {r['precision']:<9} {r['test_accuracy']:>8.4f}  {r['weights_sha256'][:16]}…")
    figures = reports["sim"].get("device_figures") or {}
    if figures:
        print(f"sim: {figures['device_cycles_per_step']:.0f} device cycles and "
              f"{figures['dram_bytes_per_step']:.0f} DRAM bytes per training step")
    same = reports["sim"]["weights_sha256"] == reports["golden"]["weights_sha256"]
    gap = 100 * abs(reports["sim"]["test_accuracy"] - reports["fp32"]["test_accuracy"])
    print(f"sim weights = golden weights (bit for bit): {'yes' if same else 'NO'}")
    print(f"|sim − fp32| test accuracy: {gap:.2f} pp (limit {args.max_gap})")
    return 0 if same and gap <= args.max_gap else 1


if __name__ == "__main__":
    sys.exit(main())
