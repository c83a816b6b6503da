"""Plots written by the runtime (PNG, through matplotlib's non-interactive backend)."""
from __future__ import annotations

import io
from pathlib import Path

from trident.atomic import atomic_write

__all__ = ["plot_training_curve"]


def plot_training_curve(history: list[dict], path: str | Path, title: str = "") -> None:
    """Loss and train/test accuracy per epoch, side by side."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax_loss.plot(epochs, [h["loss"] for h in history], marker="o", ms=3)
    ax_loss.set(xlabel="epoch", ylabel="training loss", yscale="log")
    ax_acc.plot(epochs, [h["train_accuracy"] for h in history], marker="o", ms=3, label="train")
    ax_acc.plot(epochs, [h["test_accuracy"] for h in history], marker="s", ms=3, label="test")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1.02))
    ax_acc.legend(loc="lower right")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write(path, buffer.getvalue())
