"""The federated run's PNG (accuracy per round) and its printed summary."""
from __future__ import annotations

import io
from pathlib import Path

from trident.atomic import atomic_write

__all__ = ["plot_accuracy", "summary_rows"]


def plot_accuracy(report: dict, path: str | Path, title: str = "") -> None:
    """Global test accuracy per round (round 0 = the initial model); rounds where a worker
    was missing or rejected are marked with how many took part."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    rounds = report["rounds"]
    xs = [0] + [r["round"] for r in rounds]
    ys = [report["initial_accuracy"]] + [r["accuracy"] for r in rounds]
    workers = report["config"]["workers"]
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    ax.plot(xs, ys, marker="o", ms=4, label="global model (server-side, test split)")
    for r in rounds:
        n = len(r["participants"])
        if n < workers:
            ax.annotate(f"{n}/{workers}", (r["round"], r["accuracy"]), textcoords="offset points",
                        xytext=(0, -14), ha="center", fontsize=8, color="tab:red")
    central = report.get("centralized", {}).get("test_accuracy")
    if central is not None:
        ax.axhline(central, ls="--", color="gray", lw=1, label=f"centralised ({central:.3f})")
    ax.set(xlabel="round", ylabel="test accuracy", ylim=(0, 1.02), xticks=xs)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write(path, buffer.getvalue())


def summary_rows(report: dict) -> list[tuple[str, str]]:
    c = report["config"]
    rows = [
        ("federation", f"{c['workers']} workers · {c['rounds']} rounds × {c['local_epochs']} local epochs · "
                       f"{c['strategy']}" + (f" (mu={c['mu']:g})" if c["strategy"] == "fedprox" else "")),
        ("device / partition", f"{c['device']} ({report['precision']}) / {c['partition']}"),
        ("accuracy per round", " ".join(f"{r['accuracy']:.3f}" for r in report["rounds"])),
        ("final accuracy", f"{report['final_accuracy']:.4f}"),
        ("weights sha256", report["weights_sha256"][:16] + "…"),
        ("time", f"{report['timings']['wall_s']:.1f} s wall, "
                 f"{report['timings']['mean_round_s']:.1f} s per round"),
    ]
    drops = [f"r{r['round']}: without {sorted(set(range(c['workers'])) - set(r['participants']))}"
             for r in report["rounds"] if len(r["participants"]) < c["workers"]]
    if drops:
        rows.append(("rounds with absent workers", ", ".join(drops)))
    if report.get("report_path"):
        rows.append(("report", report["report_path"]))
    if report.get("plot"):
        rows.append(("plot", report["plot"]))
    return rows
