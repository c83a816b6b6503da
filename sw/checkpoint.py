"""Atomic checkpoints: a run can be killed at any instant and lose nothing already saved.

A checkpoint is written to a temporary file in the same directory, flushed to disk and
then renamed over the old one, so a reader sees either the previous complete checkpoint
or the new complete one, never a torn file.  The payload carries a SHA-256 of its own
bytes, so a file damaged later is reported as corrupt instead of being half-loaded.

Members
-------
CheckpointError
    Raised for a missing, corrupt or incompatible checkpoint; the message says what to do.
save_checkpoint(path, state)
load_checkpoint(path)
"""
from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import torch

from trident.atomic import atomic_write

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint"]

_MAGIC = b"TRIDENT-CKPT-1\n"


class CheckpointError(RuntimeError):
    pass


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """Serialise ``state`` (tensors, numbers, strings, dicts) and write it atomically."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getvalue()
    atomic_write(path, _MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`, verifying its checksum."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}: train without --resume to start a new run")
    data = path.read_bytes()
    header_end = len(_MAGIC) + 65
    if not data.startswith(_MAGIC) or len(data) < header_end or data[header_end - 1:header_end] != b"\n":
        raise CheckpointError(f"{path} is not a Trident checkpoint (bad header); "
                              "delete it or point --checkpoint at another directory")
    digest, payload = data[len(_MAGIC):header_end - 1].decode(errors="replace"), data[header_end:]
    if hashlib.sha256(payload).hexdigest() != digest:
        raise CheckpointError(f"checkpoint {path} is corrupt (checksum mismatch over {len(payload)} bytes); "
                              "delete it to start over, or restore it from a backup")
    try:
        return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as exc:  # checksum-valid but unreadable: another version, or not plain data
        raise CheckpointError(f"checkpoint {path} cannot be read: {exc}") from exc
