"""What the SoC and DRAM benches share: where reports go, the two files each writes, the
digits batch of one training step and the command-line options of a simulated step."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from trident.atomic import atomic_write_text
from trident.golden.data import load_dataset

REPORTS = Path(__file__).resolve().parent / "reports"


def write_report(stem: Path, data: dict, markdown: str) -> None:
    """``<stem>.json`` (the figures, with the configuration) and ``<stem>.md``, atomically."""
    atomic_write_text(stem.with_suffix(".json"), json.dumps(data, indent=2) + "\n")
    atomic_write_text(stem.with_suffix(".md"), markdown)


def digits_step(steps: int, batch: int):
    """``(dataset, x, y)``: the first ``batch`` digits, direct-encoded over ``steps`` steps."""
    data = load_dataset("digits", steps)
    x = data.x_train[:batch].unsqueeze(0).expand(steps, batch, *data.x_train.shape[1:]).contiguous()
    return data, x, data.y_train[:batch]


def sim_step_arguments(parser: argparse.ArgumentParser, report: str) -> None:
    """``--steps``, ``--batch``, ``--simulator`` and ``--out`` (default ``reports/<report>``)."""
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--simulator", default="verilator")
    parser.add_argument("--out", type=Path, default=REPORTS / report)
