"""Deterministic partitions of a training set across workers.

Both functions return one sorted ``int64`` index array per worker (worker ids 0…W−1); the
arrays are disjoint and together cover every sample.  They depend only on the labels, the
number of workers, the parameters and ``seed`` (numpy's PCG64), so every process of a
federation — the server and each worker — computes the same partition on its own.

IID
    Shuffle all indices with the seed, then cut them into W nearly equal parts
    (``numpy.array_split``: the first ``n mod W`` workers get one sample more).
Dirichlet(α) by label (non-IID, as in Hsu et al. 2019)
    For each class c in ascending order: shuffle the class's indices, draw proportions
    ``p ~ Dir(α·1_W)``, and cut the shuffled indices at ``round(cumsum(p)·n_c)``.  Small α
    gives each worker few classes; large α tends to IID.  A draw that leaves any worker with
    fewer than ``min_size`` samples is rejected and the whole partition drawn again from the
    same generator (at most ``max_tries`` times), so a partition never has an empty worker.
"""
from __future__ import annotations

import numpy as np

from .config import parse_partition

__all__ = ["iid_partition", "dirichlet_partition", "make_partition", "partition_summary"]


def _labels(labels) -> np.ndarray:
    y = np.asarray(labels.numpy() if hasattr(labels, "numpy") else labels)
    if y.ndim != 1:
        raise ValueError(f"labels must be one-dimensional, got shape {y.shape}")
    return y.astype(np.int64)


def iid_partition(labels, workers: int, seed: int = 0) -> list[np.ndarray]:
    """Shuffle and split into ``workers`` nearly equal parts."""
    y = _labels(labels)
    if not 1 <= workers <= len(y):
        raise ValueError(f"cannot split {len(y)} samples across {workers} workers")
    order = np.random.Generator(np.random.PCG64(seed)).permutation(len(y))
    return [np.sort(part).astype(np.int64) for part in np.array_split(order, workers)]


def dirichlet_partition(labels, workers: int, alpha: float, seed: int = 0, min_size: int = 10,
                        max_tries: int = 1000) -> list[np.ndarray]:
    """Non-IID split: per class, proportions drawn from ``Dir(alpha)`` (see module docstring)."""
    y = _labels(labels)
    if not alpha > 0:
        raise ValueError(f"Dirichlet alpha must be > 0, got {alpha}")
    if not 1 <= workers or workers * min_size > len(y):
        raise ValueError(f"cannot give {workers} workers at least {min_size} of {len(y)} samples each")
    rng = np.random.Generator(np.random.PCG64(seed))
    classes = np.unique(y)
    for _ in range(max_tries):
        parts: list[list[np.ndarray]] = [[] for _ in range(workers)]
        for c in classes:
            idx = np.flatnonzero(y == c)
            idx = idx[rng.permutation(len(idx))]
            p = rng.dirichlet(np.full(workers, float(alpha)))
            cuts = np.round(np.cumsum(p)[:-1] * len(idx)).astype(np.int64)
            for k, chunk in enumerate(np.split(idx, cuts)):
                parts[k].append(chunk)
        result = [np.sort(np.concatenate(p)).astype(np.int64) for p in parts]
        if min(len(r) for r in result) >= min_size:
            return result
    raise ValueError(f"no Dirichlet({alpha}) partition with at least {min_size} samples per worker in "
                     f"{max_tries} draws; use a larger alpha or fewer workers")


def make_partition(spec: str, labels, workers: int, seed: int = 0) -> list[np.ndarray]:
    """Partition by a spec string: ``iid`` or ``dirichlet:ALPHA``."""
    kind, alpha = parse_partition(spec)
    if kind == "iid":
        return iid_partition(labels, workers, seed)
    return dirichlet_partition(labels, workers, alpha, seed)


def partition_summary(parts: list[np.ndarray], labels) -> list[dict]:
    """Per worker: sample count and samples per class (for reports)."""
    y = _labels(labels)
    classes = np.unique(y)
    return [{"worker": k, "samples": int(len(p)),
             "per_class": [int((y[p] == c).sum()) for c in classes]} for k, p in enumerate(parts)]
