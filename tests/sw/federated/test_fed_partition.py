import numpy as np
import pytest

from trident.golden.data import load_digits_split
from trident.sw.federated.config import parse_fault, parse_partition
from trident.sw.federated.partition import dirichlet_partition, iid_partition, make_partition, partition_summary


@pytest.fixture(scope="module")
def labels():
    return load_digits_split().y_train.numpy()


def _check_cover(parts, n):
    allidx = np.concatenate(parts)
    assert len(allidx) == n and len(np.unique(allidx)) == n
    assert all(np.all(np.diff(p) > 0) for p in parts)


def test_iid_is_a_deterministic_balanced_cover(labels):
    parts = iid_partition(labels, 5, seed=0)
    _check_cover(parts, len(labels))
    assert [len(p) for p in parts] == [288, 288, 287, 287, 287]
    again = iid_partition(labels, 5, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))
    other = iid_partition(labels, 5, seed=1)
    assert not all(np.array_equal(a, b) for a, b in zip(parts, other))


def test_dirichlet_is_deterministic_skewed_and_never_tiny(labels):
    parts = dirichlet_partition(labels, 5, 0.5, seed=0)
    _check_cover(parts, len(labels))
    assert all(np.array_equal(a, b) for a, b in zip(parts, dirichlet_partition(labels, 5, 0.5, seed=0)))
    assert min(len(p) for p in parts) >= 10
    summary = partition_summary(parts, labels)
    # non-IID: some worker has a class almost to itself and another has (nearly) none of it
    shares = np.array([s["per_class"] for s in summary], dtype=float)
    shares /= shares.sum(0, keepdims=True)
    assert shares.max() > 0.5 and shares.min() < 0.02
    iid = np.array([s["per_class"] for s in partition_summary(iid_partition(labels, 5), labels)], dtype=float)
    iid /= iid.sum(0, keepdims=True)
    assert iid.max() < 0.35


def test_large_alpha_tends_to_iid(labels):
    parts = dirichlet_partition(labels, 5, 1000.0, seed=3)
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) < 40


def test_partition_specs_and_errors(labels):
    assert parse_partition("iid") == ("iid", None)
    assert parse_partition("Dirichlet:0.5") == ("dirichlet", 0.5)
    for bad in ("dirichlet:-1", "dirichlet:x", "zipf"):
        with pytest.raises(ValueError, match="dirichlet|partition"):
            parse_partition(bad)
    assert len(make_partition("dirichlet:0.5", labels, 3)) == 3
    with pytest.raises(ValueError, match="at least 10"):
        dirichlet_partition(labels[:40], 5, 0.5)


def test_fault_syntax():
    f = parse_fault("2:kill@3")
    assert (f.worker, f.kind, f.round) == (2, "kill", 3) and str(f) == "2:kill@3"
    for bad in ("2kill@3", "2:explode@1", "x:nan@1", "1:nan@0"):
        with pytest.raises(ValueError):
            parse_fault(bad)
