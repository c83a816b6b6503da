"""The two files a bench writes: ``<stem>.json`` (its figures, with the command line's
configuration) and ``<stem>.md`` (the report), each written atomically."""
from __future__ import annotations

import json
from pathlib import Path

from trident.atomic import atomic_write_text


def write_report(stem: Path, data: dict, markdown: str) -> None:
    atomic_write_text(stem.with_suffix(".json"), json.dumps(data, indent=2) + "\n")
    atomic_write_text(stem.with_suffix(".md"), markdown)
