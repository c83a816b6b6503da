"""Atomic file writes: a file is either its old complete self or its new complete self.

Every writer in Trident that must never leave a torn file — checkpoints, reports, event
files, exported tables — goes through :func:`atomic_write`: the data go to a temporary file
in the destination's folder, which then replaces the destination with :func:`os.replace`
(atomic within one file system).  A crash or an exception while writing leaves the old file
(or no file) behind, never half of a new one.

Members
-------
atomic_write(path, data, durable=True) -> Path
    ``data`` is bytes or an iterable of byte chunks.  ``durable`` also fsyncs before the
    rename, so the new file survives a power cut; files that can be regenerated skip it.
atomic_write_text(path, text, durable=True) -> Path
"""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from pathlib import Path

__all__ = ["atomic_write", "atomic_write_text"]


def atomic_write(path: str | os.PathLike, data: bytes | Iterable[bytes], durable: bool = True) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    chunks = (data,) if isinstance(data, (bytes, bytearray, memoryview)) else data
    # Opened by hand rather than with tempfile.mkstemp, whose 0600 mode would survive the
    # rename; "x" refuses to clobber another writer's temporary file.
    tmp = path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
    try:
        with open(tmp, "xb") as f:
            for chunk in chunks:
                f.write(chunk)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str, durable: bool = True) -> Path:
    return atomic_write(path, text.encode(), durable)
