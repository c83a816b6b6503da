"""Federated training across 5 golden-device workers with Flower, against centralised training.

Scenarios (each federated one is a real ``trident fed`` run: a SuperLink, 5 SuperNodes and
``flwr run`` as separate processes on 127.0.0.1, started and stopped by the command):

``noniid``          5 workers, 10 rounds × E local epochs, Dirichlet(0.5) by label, FedAvg
``noniid-fedprox``  the same with FedProx (μ = 0.01, the proximal term in binary16)
``noniid-kill``     the same as ``noniid`` with worker 2's SuperNode SIGKILLed in round 3
                    (it is restarted and rejoins)
``noniid-sim``      the same as ``noniid`` with worker 2 on the simulated SoC RTL (Verilator):
                    its global weights must equal ``noniid``'s bit for bit (slow: the RTL
                    worker trains ~85 steps per round)
``iid``             5 workers, 10 rounds × E local epochs, IID, FedAvg
``centralized``     ``trident.sw.runtime.train`` with the same precision (fp16-hw, the golden
                    device), model, optimiser and seed, for rounds × E epochs

``--extra-seeds`` repeats IID-federated vs centralised for more seeds with
:func:`trident.sw.federated.local.simulate`, the in-process run of the same rounds, which
the tests show ends with bit-identical weights to the deployed run.

Run:  .venv/bin/python bench/federated.py [--local-epochs 5] [--only iid,centralized]
      [--extra-seeds 1 2] [--report bench/reports/federated.md]
      (the report in bench/reports was made with ``--extra-seeds 1 2``; ``--render
      bench/reports/federated.json`` rewrites the markdown and PNG from saved results;
      ``--render … --add noniid-sim=REPORT.json`` adds a scenario run on its own — the
      ``trident fed`` report of exactly the command ``fed_args`` gives — to the saved results)
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ("noniid", "noniid-fedprox", "noniid-kill", "noniid-sim", "iid", "centralized")


def fed_args(name: str, rounds: int, epochs: int, run_dir: Path, report: Path) -> list[str]:
    args = ["fed", "--workers", "5", "--rounds", str(rounds), "--local-epochs", str(epochs), "--device", "golden",
            "--run-dir", str(run_dir), "--report", str(report), "--quiet"]
    if name.startswith("noniid"):
        args += ["--partition", "dirichlet:0.5"]
    else:
        args += ["--partition", "iid"]
    if name == "noniid-fedprox":
        args += ["--strategy", "fedprox", "--mu", "0.01"]
    if name == "noniid-kill":
        args += ["--inject-fault", "2:kill@3"]
    if name == "noniid-sim":
        args += ["--worker-device", "2:sim", "--round-timeout", "1800"]
    return args


def run_fed(name: str, rounds: int, epochs: int, out: Path) -> dict:
    from trident.sw.federated.cli import main
    run_dir, report = out / name, out / f"{name}.json"
    args = fed_args(name, rounds, epochs, run_dir, report)
    t0 = time.perf_counter()
    code = main(args)
    if code != 0:
        raise SystemExit(f"{name}: trident {' '.join(args)} failed with exit code {code}")
    result = json.loads(report.read_text())
    result["command"] = "trident " + shlex.join(args)
    result["bench_wall_s"] = time.perf_counter() - t0
    return result


def added_scenario(name: str, report: Path, meta: dict) -> dict:
    """A scenario's ``trident fed`` report run outside the bench, checked to be the command the
    bench runs (same settings), with the bench's fields."""
    result = json.loads(report.read_text())
    want = run_config(name, meta["rounds"], meta["local_epochs"])
    if result["config"] != want:
        diff = {k: (result["config"].get(k), v) for k, v in want.items() if result["config"].get(k) != v}
        raise SystemExit(f"{report}: not the {name} scenario (report, bench): {diff}")
    run_dir = Path(result["deployment"]["run_dir"])
    result["command"] = "trident " + shlex.join(fed_args(name, meta["rounds"], meta["local_epochs"], run_dir, report))
    result["bench_wall_s"] = result["timings"]["wall_s"]
    return result


def run_config(name: str, rounds: int, epochs: int) -> dict:
    """The settings of a federated scenario, as a `trident fed` report's ``config`` holds them."""
    import dataclasses

    from trident.sw.federated.cli import add_fed_parser, fed_config
    parser = argparse.ArgumentParser(prog="trident")
    add_fed_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(fed_args(name, rounds, epochs, Path("."), Path("x.json")))
    return dataclasses.asdict(fed_config(args))


def run_centralized(rounds: int, epochs: int, seed: int = 0) -> dict:
    from trident.sw.federated.config import FedConfig
    from trident.sw.runtime import train
    tc = FedConfig(rounds=rounds, local_epochs=epochs, seed=seed).train_config()
    t0 = time.perf_counter()
    report = train(tc, progress=False)
    report["bench_wall_s"] = time.perf_counter() - t0
    report["command"] = (f"trident train --precision fp16-hw --detach-reset --epochs {tc.epochs} --lr {tc.lr} "
                         f"--momentum {tc.momentum} --batch {tc.batch_size} --T {tc.T} --model {tc.model} "
                         f"--seed {seed}")
    return report


def extra_seed(seed: int, rounds: int, epochs: int) -> dict:
    from trident.sw.federated.config import FedConfig
    from trident.sw.federated.local import simulate
    t0 = time.perf_counter()
    fed = simulate(FedConfig(rounds=rounds, local_epochs=epochs, partition="iid", seed=seed))
    t1 = time.perf_counter()
    central = run_centralized(rounds, epochs, seed)
    return {"seed": seed, "federated_iid": fed["history"][-1]["accuracy"],
            "centralized": central["test_accuracy"], "federated_s": t1 - t0, "centralized_s": central["bench_wall_s"]}


def simulate_check(results: dict) -> dict:
    """Recompute each federated run in one process, with its participation, and compare."""
    from trident.sw.federated.config import FedConfig
    from trident.sw.federated.local import simulate
    out = {}
    for name, r in results.items():
        if name == "centralized":
            continue
        parts = r["participants_per_round"]
        sim = simulate(FedConfig(**r["config"]), lambda rnd, parts=parts: parts[str(rnd)])
        out[name] = {"identical": sim["weights_sha256"] == r["weights_sha256"], "sha": r["weights_sha256"]}
    return out


def plot(results: dict, epochs: int, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, style in (("iid", "o-"), ("noniid", "s-"), ("noniid-fedprox", "^-"), ("noniid-kill", "x--"),
                        ("noniid-sim", "+:")):
        if name in results:
            r = results[name]
            ax.plot(range(0, len(r["accuracy_per_round"]) + 1), [r["initial_accuracy"]] + r["accuracy_per_round"],
                    style, ms=4, label=f"{name} ({r['final_accuracy']:.3f})")
    if "centralized" in results:
        hist = results["centralized"]["history"]
        xs = [h["epoch"] / epochs for h in hist]
        ax.plot(xs, [h["test_accuracy"] for h in hist], color="gray", lw=1,
                label=f"centralised, x = epochs / {epochs} ({results['centralized']['test_accuracy']:.3f})")
    ax.set(xlabel="round", ylabel="test accuracy (digits)", ylim=(0, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("5 golden-device workers (fp16-hw), Flower deployment runtime", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_markdown(results: dict, meta: dict, path: Path) -> None:
    rounds, epochs = meta["rounds"], meta["local_epochs"]
    lines = [
        "# Federated training on 5 golden-device workers (Flower deployment runtime)",
        "",
        f"Generated by `bench/federated.py` on {meta['date']} · {meta['machine']} · flwr {meta['flwr']} · "
        f"torch {meta['torch']} · load average at start {meta['load']} (a shared machine: times are ±30 % "
        f"or worse; accuracies are deterministic).",
        "",
        "Every federated row is one `trident fed` run: `flower-superlink`, five `flower-supernode` processes "
        "(each its own port, `FLWR_HOME` and data partition) and `flwr run`, on 127.0.0.1, started and stopped "
        "by the command. Workers train on the golden device (`HwBackend`: hardware-exact binary16 "
        "FP/BP/WG/SGD); the server averages binary16 weights exactly (float64 sum in worker order, one RNE to "
        "binary16) and evaluates the global model on the digits test split (360 samples) after every round.",
        "",
        f"Settings: model `mlp` (64-256-10 LIF, T = 8, direct encoding), SGD lr 0.2, momentum 0.9 (reset each "
        f"round), batch 32, loss scale 1024, seed 0; {rounds} rounds × {epochs} local epochs. Centralised: "
        f"`sw.runtime.train` with the same precision and settings for {rounds * epochs} epochs.",
        "",
        "| scenario | final accuracy | accuracy per round | workers per round | mean round | wall | command |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in SCENARIOS:
        if name not in results or name == "centralized":
            continue
        r = results[name]
        per = " ".join(f"{a:.3f}" for a in r["accuracy_per_round"])
        workers = " ".join(str(len(r["participants_per_round"][str(i)])) for i in range(1, rounds + 1))
        lines.append(f"| {name} | **{r['final_accuracy']:.4f}** | {per} | {workers} | "
                     f"{r['timings']['mean_round_s']:.1f} s | {r['timings']['wall_s']:.0f} s | `{r['command']}` |")
    if "centralized" in results:
        c = results["centralized"]
        lines.append(f"| centralized | **{c['test_accuracy']:.4f}** | (epochs {epochs}, {2 * epochs}, …: "
                     + " ".join(f"{h['test_accuracy']:.3f}" for h in c["history"][epochs - 1::epochs])
                     + f") | – | – | {c['bench_wall_s']:.0f} s | `{c['command']}` |")
    lines += ["", "## Acceptance", ""]
    if "noniid" in results:
        a = results["noniid"]["final_accuracy"]
        lines.append(f"- Non-IID Dirichlet(0.5), 5 workers, {rounds} rounds: final global accuracy **{a:.4f}** "
                     f"({'≥' if a >= 0.90 else '<'} 0.90: {'met' if a >= 0.90 else 'NOT met'}).")
    if "iid" in results and "centralized" in results:
        f, c = results["iid"]["final_accuracy"], results["centralized"]["test_accuracy"]
        gap = (c - f) * 100
        lines.append(f"- IID federated **{f:.4f}** vs centralised **{c:.4f}** with the same {rounds * epochs} "
                     f"epochs: {gap:+.2f} percentage points (|gap| {'≤' if abs(gap) <= 1 else '>'} 1 pp: "
                     f"{'met' if abs(gap) <= 1 else 'NOT met'}). One test sample is 0.28 pp.")
    if "noniid-sim" in results and "noniid" in results:
        same = results["noniid-sim"]["weights_sha256"] == results["noniid"]["weights_sha256"]
        lines.append(f"- Non-IID with worker 2 on the simulated SoC RTL: global weights "
                     f"{'bit-identical to' if same else 'DIFFERENT from'} the all-golden run "
                     f"(`weights_sha256` {results['noniid-sim']['weights_sha256'][:16]}… vs "
                     f"{results['noniid']['weights_sha256'][:16]}…): {'met' if same else 'NOT met'}.")
    if meta.get("extra"):
        lines += ["", "### More seeds (IID, in-process `simulate`, bit-identical to the deployed rounds)", "",
                  "| seed | federated IID | centralised | gap (pp) |", "|---|---|---|---|"]
        for e in meta["extra"]:
            lines.append(f"| {e['seed']} | {e['federated_iid']:.4f} | {e['centralized']:.4f} | "
                         f"{(e['centralized'] - e['federated_iid']) * 100:+.2f} |")
    if meta.get("simulate_check"):
        lines += ["", "Deployed vs in-process: the same rounds computed by `local.simulate` end with the same "
                  "`weights_sha256` as the deployed runs: "
                  + "; ".join(f"{k} {'identical' if v['identical'] else 'DIFFERENT'} ({v['sha'][:16]}…)"
                              for k, v in meta["simulate_check"].items()) + "."]
    if "noniid-kill" in results:
        r = results["noniid-kill"]
        r3 = r["rounds"][2]
        gone = [m["worker"] for m in r3["missing"] + r3["failed"]]
        lines += ["", "## Fault: a worker dies mid-round", "",
                  f"Worker 2's SuperNode was SIGKILLed (its whole process group) as it started training in round 3. "
                  f"Round 3 went on with workers {r3['participants']} (worker {gone} recorded as "
                  f"{'missing' if r3['missing'] else 'failed: ' + r3['failed'][0]['reason']}); "
                  f"`trident fed` restarted the SuperNode and worker 2 took part again from round 4 "
                  f"(workers per round: {[len(r['participants_per_round'][str(i)]) for i in range(1, rounds + 1)]}). "
                  f"Final accuracy {r['final_accuracy']:.4f}."]
    lines += ["", "## Time", "",
              "Per round, most of the time is Flower's: every message starts a fresh `flwr-clientapp` process on "
              "each SuperNode (Python, flwr, torch and the golden model are imported each time), and the 5 workers "
              "share the machine's cores. The workers' own training time per round is in each JSON report "
              "(`rounds[].accepted[].metrics.train-time-s`).", ""]
    for name in SCENARIOS:
        if name in results and name != "centralized":
            t = results[name]["timings"]
            train = [sum(a["metrics"]["train-time-s"] for a in rr["accepted"]) / max(len(rr["accepted"]), 1)
                     for rr in results[name]["rounds"]]
            lines.append(f"- {name}: setup {t['setup_s']:.1f} s, rounds {t['mean_round_s']:.1f} s on average "
                         f"(min {min(t['round_s']):.1f}, max {max(t['round_s']):.1f}), of which a worker trains "
                         f"{sum(train) / len(train):.1f} s; shutdown {t['shutdown_s']:.1f} s; wall {t['wall_s']:.0f} s.")
    lines += ["", "![accuracy per round](federated.png)", "",
              "Raw results: `federated.json` (the full `trident fed` reports).", ""]
    path.write_text("\n".join(lines).replace(str(ROOT) + "/", ""))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--local-epochs", type=int, default=5)
    parser.add_argument("--only", default=",".join(SCENARIOS))
    parser.add_argument("--extra-seeds", type=int, nargs="*", default=[])
    parser.add_argument("--report", default=str(ROOT / "bench" / "reports" / "federated.md"))
    parser.add_argument("--out", default=str(ROOT / "runs" / "bench-federated" / time.strftime("%Y%m%d-%H%M%S")))
    parser.add_argument("--check-simulation", action="store_true",
                        help="recompute every federated scenario in-process and compare weights_sha256")
    parser.add_argument("--render", metavar="FEDERATED.json", help="only rewrite the report from saved results")
    parser.add_argument("--add", action="append", default=[], metavar="SCENARIO=REPORT.json",
                        help="with --render: add the `trident fed` report of a scenario run on its own")
    args = parser.parse_args(argv)
    if args.add and not args.render:
        parser.error("--add goes with --render")
    if args.render:
        saved = json.loads(Path(args.render).read_text())
        for item in args.add:
            name, _, path = item.partition("=")
            if name not in SCENARIOS or name == "centralized" or not path:
                parser.error(f"--add {item}: give SCENARIO=REPORT.json with a federated scenario")
            saved["results"][name] = added_scenario(name, Path(path), saved["meta"])
        if args.add:
            Path(args.render).write_text(json.dumps(saved, indent=1) + "\n")
        if args.check_simulation:
            saved["meta"]["simulate_check"] = simulate_check(saved["results"])
            Path(args.render).write_text(json.dumps(saved, indent=1) + "\n")
        report = Path(args.report)
        plot(saved["results"], saved["meta"]["local_epochs"], report.with_suffix(".png"))
        write_markdown(saved["results"], saved["meta"], report)
        print(f"wrote {report}")
        return 0
    import flwr
    import torch
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "flwr": flwr.__version__, "torch": torch.__version__,
            "load": " ".join(f"{x:.2f}" for x in os.getloadavg()), "rounds": args.rounds,
            "local_epochs": args.local_epochs}
    results = {}
    for name in args.only.split(","):
        if name not in SCENARIOS:
            raise SystemExit(f"unknown scenario {name}; choose from {', '.join(SCENARIOS)}")
        print(f"== {name}", flush=True)
        results[name] = (run_centralized(args.rounds, args.local_epochs) if name == "centralized"
                         else run_fed(name, args.rounds, args.local_epochs, out))
        acc = results[name].get("final_accuracy", results[name].get("test_accuracy"))
        print(f"   accuracy {acc:.4f}  ({results[name]['bench_wall_s']:.0f} s)", flush=True)
    meta["extra"] = [extra_seed(s, args.rounds, args.local_epochs) for s in args.extra_seeds]
    if args.check_simulation:
        meta["simulate_check"] = simulate_check(results)
    report = Path(args.report)
    report.parent.mkdir(parents=True, exist_ok=True)
    plot(results, args.local_epochs, report.with_suffix(".png"))
    report.with_suffix(".json").write_text(json.dumps({"meta": meta, "results": results}, indent=1) + "\n")
    write_markdown(results, meta, report)
    print(f"wrote {report}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
