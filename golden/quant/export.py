"""Export and load the integer tables of a 4-bit shift-BN network (format ``trident-quant`` v1).

An export is a folder with two files:

``manifest.json``
    The network as a list of operations, each naming the arrays it needs by offset into the
    table file (the format is described in docs/quant4.md and below).
``tables-<sha256[:16]>.bin``
    All arrays back to back, little-endian, each starting at a multiple of 16 bytes
    (zero padding in between); the manifest records the file's size and SHA-256.

Writes are atomic: the table file (content-addressed name) is written first through a
temporary file and a rename, then the manifest the same way, and only then are table files
no manifest refers to removed.  A reader therefore sees the previous complete export or the
new complete one, never a mix; :func:`load_export` checks the size and hash.

Manifest (JSON)::

    {"format": "trident-quant", "version": 1, "bits": 4,
     "input": {"shape": [1, 8, 8], "dtype": "uint8", "encoding": "round(255 * x), x in [0, 1]"},
     "tables": {"file": "tables-….bin", "bytes": N, "sha256": "…"},
     "ops": [
       {"op": "conv2d", "stride": 1, "padding": 1,
        "weight": {"offset": 0, "shape": [16, 1, 3, 3], "dtype": "int8"}},
       {"op": "shift_norm", "lower": 0, "upper": 15,
        "bias": {"offset": 144, "shape": [16], "dtype": "int32"},
        "shift": {"offset": 208, "shape": [16], "dtype": "int8"}},
       {"op": "maxpool2d", "kernel": 2},
       {"op": "flatten"},
       {"op": "linear", "weight": {"offset": …, "shape": [10, 128], "dtype": "int8"}}]}

Array layouts are C order: conv weights ``[out, in, kh, kw]``, FC weights ``[out, in]``,
flatten is channel-major ``(C, H, W)`` as PyTorch.  Weights are one two's-complement byte
each (values in ``[−(2^(n−1) − 1), 2^(n−1) − 1]``), biases int32, shifts int8 (negative =
left shift).  The last op's int accumulators are the logits.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from trident.atomic import atomic_write

from .integer import IntConv2d, IntegerModel, IntFlatten, IntLinear, IntMaxPool2d, IntShiftNorm, from_network
from .ste import signed_bounds

__all__ = ["export_model", "load_export", "ExportError", "FORMAT", "VERSION", "MANIFEST"]

FORMAT = "trident-quant"
VERSION = 1
MANIFEST = "manifest.json"
ALIGN = 16
_DTYPES = {"int8": "<i1", "int32": "<i4"}


class ExportError(RuntimeError):
    pass


class _Blob:
    def __init__(self):
        self.parts: list[bytes] = []
        self.size = 0

    def add(self, array: np.ndarray, dtype: str) -> dict:
        pad = (-self.size) % ALIGN
        if pad:
            self.parts.append(b"\0" * pad)
            self.size += pad
        data = np.ascontiguousarray(array.astype(_DTYPES[dtype])).tobytes()
        entry = {"offset": self.size, "shape": list(array.shape), "dtype": dtype}
        self.parts.append(data)
        self.size += len(data)
        return entry

    def bytes(self) -> bytes:
        return b"".join(self.parts)


def _check_range(name: str, a: np.ndarray, low: int, high: int) -> None:
    if a.size and (a.min() < low or a.max() > high):
        raise ExportError(f"{name} has values in [{a.min()}, {a.max()}], outside [{low}, {high}]")


def export_model(model, folder, *, meta: dict | None = None) -> Path:
    """Write ``model`` (a QuantNetwork or an :class:`IntegerModel`) to ``folder``; returns the manifest path."""
    integer = model if isinstance(model, IntegerModel) else from_network(model)
    low, high = signed_bounds(integer.bits)
    blob = _Blob()
    ops = []
    for i, op in enumerate(integer.ops):
        if isinstance(op, IntConv2d):
            _check_range(f"op {i} conv weight", op.weight, low, high)
            ops.append({"op": "conv2d", "stride": int(op.stride), "padding": int(op.padding),
                        "weight": blob.add(op.weight, "int8")})
        elif isinstance(op, IntLinear):
            _check_range(f"op {i} linear weight", op.weight, low, high)
            ops.append({"op": "linear", "weight": blob.add(op.weight, "int8")})
        elif isinstance(op, IntShiftNorm):
            _check_range(f"op {i} bias", op.bias, -2**31, 2**31 - 1)
            _check_range(f"op {i} shift", op.shift, -128, 127)
            ops.append({"op": "shift_norm", "lower": int(op.lower), "upper": int(op.upper),
                        "bias": blob.add(op.bias, "int32"), "shift": blob.add(op.shift, "int8")})
        elif isinstance(op, IntMaxPool2d):
            ops.append({"op": "maxpool2d", "kernel": int(op.kernel)})
        elif isinstance(op, IntFlatten):
            ops.append({"op": "flatten"})
        else:
            raise ExportError(f"cannot export op {type(op).__name__}")
    data = blob.bytes()
    sha = hashlib.sha256(data).hexdigest()
    folder = Path(folder)
    table_name = f"tables-{sha[:16]}.bin"
    manifest = {
        "format": FORMAT, "version": VERSION, "bits": int(integer.bits),
        "input": {"shape": list(integer.input_shape), "dtype": "uint8",
                  "encoding": "round(255 * x), x in [0, 1]"},
        "tables": {"file": table_name, "bytes": len(data), "sha256": sha},
        "ops": ops,
        "meta": meta or {},
    }
    atomic_write(folder / table_name, data)
    atomic_write(folder / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
    for stale in folder.glob("tables-*.bin"):
        if stale.name != table_name:
            stale.unlink(missing_ok=True)
    return folder / MANIFEST


def _array(data: bytes, entry: dict, what: str) -> np.ndarray:
    try:
        dtype = np.dtype(_DTYPES[entry["dtype"]])
    except KeyError:
        raise ExportError(f"{what}: unknown dtype {entry.get('dtype')!r}") from None
    shape = tuple(int(d) for d in entry["shape"])
    count = int(np.prod(shape)) if shape else 1
    start = int(entry["offset"])
    end = start + count * dtype.itemsize
    if start < 0 or end > len(data):
        raise ExportError(f"{what}: bytes {start}..{end} lie outside the table file ({len(data)} bytes)")
    return np.frombuffer(data, dtype=dtype, count=count, offset=start).reshape(shape).astype(dtype.newbyteorder("="))


def load_export(folder) -> IntegerModel:
    """Read an export back into an :class:`IntegerModel` (checks format, size and SHA-256)."""
    folder = Path(folder)
    path = folder / MANIFEST if folder.is_dir() else folder
    folder = path.parent
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise ExportError(f"{path}: no such export (expected {MANIFEST} written by export_model)") from None
    except json.JSONDecodeError as exc:
        raise ExportError(f"{path}: not valid JSON ({exc})") from None
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise ExportError(f"{path}: format {manifest.get('format')!r} v{manifest.get('version')}, "
                          f"this reader knows {FORMAT!r} v{VERSION}")
    tables = manifest["tables"]
    data = (folder / tables["file"]).read_bytes()
    if len(data) != tables["bytes"] or hashlib.sha256(data).hexdigest() != tables["sha256"]:
        raise ExportError(f"{folder / tables['file']}: size or SHA-256 does not match the manifest "
                          "(corrupt or from another export)")
    ops = []
    for i, op in enumerate(manifest["ops"]):
        kind = op["op"]
        if kind == "conv2d":
            ops.append(IntConv2d(_array(data, op["weight"], f"op {i}"), int(op["stride"]), int(op["padding"])))
        elif kind == "linear":
            ops.append(IntLinear(_array(data, op["weight"], f"op {i}")))
        elif kind == "shift_norm":
            ops.append(IntShiftNorm(_array(data, op["bias"], f"op {i} bias"),
                                    _array(data, op["shift"], f"op {i} shift"), int(op["lower"]), int(op["upper"])))
        elif kind == "maxpool2d":
            ops.append(IntMaxPool2d(int(op["kernel"])))
        elif kind == "flatten":
            ops.append(IntFlatten())
        else:
            raise ExportError(f"{path}: op {i} has unknown type {kind!r}")
    return IntegerModel(tuple(manifest["input"]["shape"]), ops, int(manifest["bits"]))
