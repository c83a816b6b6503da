"""Validation of worker updates and the exact FedAvg arithmetic for binary16 weights.

Aggregation contract (bit-reproducible)
---------------------------------------
Given accepted updates ``(k, n_k, W_k)`` — worker id, sample count, binary16 arrays — and
``n = Σ n_k``, every element of the new global array is::

    acc ← +0.0                                        (float64)
    for k in ascending worker id:
        acc ← fl64(acc + fl64(n_k · W_k))             (the product is exact: ≤ 11 + 31 bits)
    W ← RNE16(fl64(acc / n))                          (numpy float64 → float16, one rounding)

``fl64`` is IEEE float64 round-to-nearest-even; ``RNE16`` numpy's direct float64 → binary16
conversion (round to nearest, ties to even, subnormals kept).  The order of the sum is fixed
by worker id, never by reply arrival, so the same accepted updates always give the same bits.
A weighted mean of finite binary16 values cannot overflow binary16, and rejected updates
never enter the sum, so the global model can never become NaN or Inf.

The same function serves other dtypes (e.g. float32): the final rounding is then to that
dtype.

Validation
----------
:func:`check_update` accepts an update only if it has exactly the global model's array
names, each with the global array's shape and dtype, and every value finite; the reason of a
rejection is returned as a sentence for the logs and the report.
"""
from __future__ import annotations

import numpy as np

__all__ = ["check_update", "check_sample_count", "fedavg_exact"]

MAX_SAMPLES = 1 << 31


def check_update(update: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> str | None:
    """``None`` if ``update`` can be averaged into ``reference``; otherwise why not."""
    missing = [k for k in reference if k not in update]
    extra = [k for k in update if k not in reference]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing)}")
        if extra:
            parts.append(f"unexpected {', '.join(extra)}")
        return "wrong arrays: " + "; ".join(parts)
    for name, ref in reference.items():
        a = update[name]
        if not isinstance(a, np.ndarray):
            return f"{name} is a {type(a).__name__}, not an array"
        if a.shape != ref.shape:
            return f"{name} has shape {tuple(a.shape)}, expected {tuple(ref.shape)}"
        if a.dtype != ref.dtype:
            return f"{name} has dtype {a.dtype}, expected {ref.dtype}"
        bad = int(a.size - np.count_nonzero(np.isfinite(a)))
        if bad:
            nans = int(np.count_nonzero(np.isnan(a)))
            return f"{name} has {bad} non-finite values ({nans} NaN, {bad - nans} ±Inf)"
    return None


def check_sample_count(value) -> str | None:
    """``None`` for a positive integer sample count (as sent in a metric record)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return f"num-examples is {value!r}, not a number"
    if not float(value).is_integer() or not 1 <= value < MAX_SAMPLES:
        return f"num-examples is {value!r}, expected a positive integer"
    return None


def fedavg_exact(updates: list[tuple[int, int, dict[str, np.ndarray]]]) -> dict[str, np.ndarray]:
    """Weighted average of ``(worker_id, n_k, arrays)`` by the contract in the module docstring.

    The updates must already be validated; their order in the list does not matter.
    """
    if not updates:
        raise ValueError("nothing to aggregate")
    ordered = sorted(updates, key=lambda u: u[0])
    ids = [u[0] for u in ordered]
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate worker ids in aggregation: {ids}")
    total = np.float64(sum(int(u[1]) for u in ordered))
    reference = ordered[0][2]
    result = {}
    for name, ref in reference.items():
        acc = np.zeros(ref.shape, dtype=np.float64)
        for _, n_k, arrays in ordered:
            acc += np.float64(int(n_k)) * arrays[name].astype(np.float64)
        with np.errstate(over="ignore"):
            result[name] = (acc / total).astype(ref.dtype)
    return result
