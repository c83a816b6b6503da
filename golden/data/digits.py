"""scikit-learn's bundled 8x8 digits with Trident's fixed train/test split.

The data ship with scikit-learn (no download): 1797 grey-level images of 8x8 pixels with
values 0..16, ten classes. Trident scales them to [0, 1] (``x / 16``, float32) and splits
them once and for all with

``sklearn.model_selection.train_test_split(range(1797), test_size=0.2, random_state=0,
stratify=y, shuffle=True)``

which gives 1437 training and 360 test images with the class proportions of the whole set.
The split depends only on that call (a seeded numpy ``RandomState``, no threads, no floating
point), so it is identical on every run and machine; the test suite pins a checksum of the
indices so that a change in scikit-learn's splitting would be caught. Samples come in the
order ``train_test_split`` returns them; the indices into ``load_digits()`` are available from
:func:`digits_split_indices` (the synthetic event dataset uses them to keep the same split).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

__all__ = ["DigitsSplit", "load_digits_split", "digits_split_indices", "digits_arrays",
           "DIGITS_SHAPE", "N_DIGITS", "N_TRAIN", "N_TEST", "TEST_FRACTION", "SPLIT_SEED"]

#: Shape of one sample as returned here: one channel of 8x8 pixels.
DIGITS_SHAPE = (1, 8, 8)
N_DIGITS = 1797
N_TRAIN = 1437
N_TEST = 360
TEST_FRACTION = 0.2
SPLIT_SEED = 0


@dataclass(frozen=True)
class DigitsSplit:
    """The digits, scaled and split.

    Attributes
    ----------
    x_train, x_test : torch.Tensor
        float32 images ``[N, 1, 8, 8]`` in [0, 1] (flatten them for an MLP).
    y_train, y_test : torch.Tensor
        int64 labels ``[N]`` in 0..9.
    train_index, test_index : numpy.ndarray
        Positions of the samples in ``sklearn.datasets.load_digits()``.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    train_index: np.ndarray
    test_index: np.ndarray


@lru_cache(maxsize=1)
def _raw() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = bunch.images.astype(np.float32) / np.float32(16.0)
    images.setflags(write=False)
    target = bunch.target.astype(np.int64)
    target.setflags(write=False)
    return images, target


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """Return all 1797 images (float32 ``[1797, 8, 8]`` in [0, 1]) and labels (int64).

    The arrays are read-only and shared between calls.
    """
    return _raw()


@lru_cache(maxsize=1)
def digits_split_indices() -> tuple[np.ndarray, np.ndarray]:
    """Return the fixed ``(train_index, test_index)`` into ``load_digits()``.

    Returns
    -------
    tuple of numpy.ndarray
        int64 index arrays of length 1437 and 360, in the order of the split (read-only).
    """
    from sklearn.model_selection import train_test_split

    _, target = _raw()
    train, test = train_test_split(np.arange(target.size), test_size=TEST_FRACTION,
                                   random_state=SPLIT_SEED, shuffle=True, stratify=target)
    train = train.astype(np.int64)
    test = test.astype(np.int64)
    train.setflags(write=False)
    test.setflags(write=False)
    return train, test


def load_digits_split() -> DigitsSplit:
    """Load the digits scaled to [0, 1] with the fixed stratified 1437/360 split.

    Returns
    -------
    DigitsSplit
        Fresh tensors (safe to modify) and the index arrays of the split.

    Examples
    --------
    >>> s = load_digits_split()
    >>> tuple(s.x_train.shape), tuple(s.x_test.shape)
    ((1437, 1, 8, 8), (360, 1, 8, 8))
    """
    images, target = _raw()
    train, test = digits_split_indices()

    def take(index):
        x = torch.from_numpy(images[index].reshape(-1, *DIGITS_SHAPE).copy())
        return x, torch.from_numpy(target[index].copy())

    x_train, y_train = take(train)
    x_test, y_test = take(test)
    return DigitsSplit(x_train, y_train, x_test, y_test, train, test)
