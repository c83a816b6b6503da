"""Tests for trident.golden.data.digits: scaling and the fixed train/test split."""
import hashlib

import numpy as np
import torch

from trident.golden.data.digits import (DIGITS_SHAPE, N_TEST, N_TRAIN, digits_arrays,
                                        digits_split_indices, load_digits_split)


def _sha(index):
    return hashlib.sha256(np.ascontiguousarray(index, dtype="<i8").tobytes()).hexdigest()


def test_sizes_types_and_range():
    s = load_digits_split()
    assert (N_TRAIN, N_TEST) == (1437, 360)
    assert s.x_train.shape == (1437, *DIGITS_SHAPE) and s.x_test.shape == (360, 1, 8, 8)
    assert s.x_train.dtype == torch.float32 and s.y_train.dtype == torch.int64
    for x in (s.x_train, s.x_test):
        assert x.min() >= 0 and x.max() <= 1
        assert torch.equal(x * 16, torch.round(x * 16))  # exactly the original 0..16 / 16
    assert s.x_train.max() == 1 and s.x_train.min() == 0


def test_split_is_pinned():
    # sklearn train_test_split(test_size=0.2, random_state=0, stratify=y): pinned so that a
    # change of sklearn's splitting, or of our call, is caught.
    train, test = digits_split_indices()
    assert test[:8].tolist() == [1496, 188, 705, 820, 413, 744, 1466, 500]
    assert train[:8].tolist() == [1346, 295, 257, 385, 1640, 849, 640, 757]
    assert _sha(test) == "d9101e2e97e19974905f1336a8ef53c03166d6af2c53833be35ff03a33e7e0cd"
    assert _sha(train) == "d96def73c7daab649ddd680a3bb17f55bdb068fb4336710c16bb74437c52a7f0"


def test_split_partitions_and_matches_data():
    s = load_digits_split()
    images, labels = digits_arrays()
    assert sorted(np.concatenate([s.train_index, s.test_index]).tolist()) == list(range(1797))
    assert np.array_equal(s.x_test.numpy()[:, 0], images[s.test_index])
    assert np.array_equal(s.y_train.numpy(), labels[s.train_index])


def test_stratified():
    s = load_digits_split()
    _, labels = digits_arrays()
    whole = np.bincount(labels, minlength=10)
    test = np.bincount(s.y_test.numpy(), minlength=10)
    assert np.all(np.abs(test - 0.2 * whole) <= 1)


def test_deterministic_and_fresh_tensors():
    a, b = load_digits_split(), load_digits_split()
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    a.x_train.zero_()  # callers may modify their copy
    assert not torch.equal(a.x_train, load_digits_split().x_train)
