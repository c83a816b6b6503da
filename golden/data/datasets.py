"""One entry point for the trainer: :func:`load_dataset`.

=================  ========================  =========================================
name               data                      split
=================  ========================  =========================================
``digits``         static ``[N, 1, 8, 8]``   fixed stratified 1437 / 360 (digits.py)
``nmnist-synth``   frames ``[N, T, 2, 34,    the digits split; generated on first use
                   34]``                     (synthetic.py), cached under ``root``
``nmnist``         frames ``[N, T, 2, 34,    the dataset's ``Train/`` and ``Test/``
                   34]``                     (60,000 / 10,000)
``cifar10-dvs``    frames ``[N, T, 2, 128,   per class, files in natural order of their
                   128]``                    number: the first ``int(0.9 n)`` train, the
                                             rest test (900 / 100 per class, as
                                             SpikingJelly)
``dvs-gesture``    frames ``[N, T, 2, 128,   ``trials_to_train.txt`` /
                   128]``                    ``trials_to_test.txt``; one sample per row
                                             of each labels CSV, all 11 classes kept:
                                             1176 / 288 on the official release (as
                                             SpikingJelly; tonic's preprocessed copy has
                                             1077 / 264)
=================  ========================  =========================================

Static datasets hold images and are encoded per batch by the trainer with
:attr:`Dataset.encoding` (:mod:`trident.golden.data.encoders`); temporal ones already hold
``T`` frames per sample, integrated with :func:`trident.golden.data.frames.events_to_frames`
(``split_by="number"``, SpikingJelly mode, by default).

Frames are **binarised** by default: a pixel and polarity is 1 in a frame if it had at least
one event there, else 0. Inputs are thus spikes, which is what the accelerator's event-driven
FP engine consumes, and the value range does not depend on T or on the recording's event
rate. Pass ``binarize=False`` for raw event counts.

Real datasets cannot be downloaded here: place them yourself and pass ``root``. Expected
layouts::

    nmnist:       <root>/Train/<digit>/<id>.bin, <root>/Test/<digit>/<id>.bin
    cifar10-dvs:  <root>/<class name>/<name>_<number>.aedat  (10 class folders)
    dvs-gesture:  <root>/userNN_<lighting>.aedat, <root>/userNN_<lighting>_labels.csv,
                  <root>/trials_to_train.txt, <root>/trials_to_test.txt

Memory: frames are stored as ``dtype`` (float32 by default), ``N * T * 2 * H * W`` values;
N-MNIST at T = 8 is 4.5 GB in float32, so pass ``dtype=torch.uint8`` (and convert per batch)
for the large real datasets.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .digits import DIGITS_SHAPE, load_digits_split
from .encoders import ENCODERS, SPIKE_ENCODERS, get_encoder
from .events import (GESTURE_SENSOR, NMNIST_SENSOR, AEDAT2_SENSOR, read_aedat2, read_aedat3,
                     read_gesture_labels, read_nmnist, split_by_labels)
from .frames import SPLIT_BY, events_to_frames
from .synthetic import DEFAULT_ROOT, SynthParams, generate_nmnist_synth

__all__ = ["Dataset", "load_dataset", "DATASETS", "DEFAULT_ROOT", "GESTURE_CLASSES",
           "nmnist_files", "cifar10_dvs_files", "dvs_gesture_trials"]

#: DVS128 Gesture classes 1..11 of the labels CSV, in order (label = class - 1).
GESTURE_CLASSES = ("hand_clapping", "right_hand_wave", "left_hand_wave", "right_arm_clockwise",
                   "right_arm_counter_clockwise", "left_arm_clockwise",
                   "left_arm_counter_clockwise", "arm_roll", "air_drums", "air_guitar",
                   "other_gestures")


@dataclass
class Dataset:
    """A dataset ready for training.

    Attributes
    ----------
    name : str
        Name given to :func:`load_dataset`.
    T : int
        Number of time steps.
    x_train, x_test : torch.Tensor
        Static datasets: ``[N, *input_shape]`` float32 in [0, 1]. Temporal datasets:
        ``[N, T, *input_shape]`` frames.
    y_train, y_test : torch.Tensor
        int64 labels ``[N]`` in ``0 .. n_classes-1``.
    input_shape : tuple of int
        Shape of the input at one time step, e.g. ``(1, 8, 8)`` or ``(2, 34, 34)``.
    n_classes : int
    temporal : bool
        True when the samples already are sequences of frames.
    encoding : str or None
        Encoder name for static datasets (None for temporal ones).
    class_names : tuple of str
    meta : dict
        Provenance: where the data came from, split rule, generation details.
    spikes : bool (property)
        Every input the network sees is 0 or 1 (binarized frames, or a spike encoder): the
        hardware takes it as spikes (``HwExactNetwork(spike_input=True)``).
    """

    name: str
    T: int
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    input_shape: tuple
    n_classes: int
    temporal: bool
    encoding: str | None
    class_names: tuple = ()
    meta: dict = field(default_factory=dict)

    @property
    def spikes(self) -> bool:
        """Every input the network sees is 0 or 1: binarized frames, or a spike encoder."""
        if self.temporal:
            return bool(self.meta.get("binarize"))
        return self.encoding in SPIKE_ENCODERS

    def encode(self, x: torch.Tensor, *, generator: torch.Generator | None = None
               ) -> torch.Tensor:
        """Turn a batch from ``x_train``/``x_test`` into the network input ``[T, B, ...]``.

        Static datasets go through their encoder (``rate`` needs ``generator``); temporal
        batches ``[B, T, ...]`` are made time-major.
        """
        if self.temporal:
            return x.transpose(0, 1)
        return get_encoder(self.encoding)(x, self.T, generator=generator)


def _natural_key(path: Path):
    """Sort key that orders 'x_2' before 'x_10'."""
    return [int(s) if s.isdigit() else s for s in re.split(r"(\d+)", path.name)]


def _need_root(name: str, root, layout: str) -> Path:
    if root is None:
        raise ValueError(f"dataset {name!r} cannot be downloaded here: place it yourself and "
                         f"pass root=<folder>, laid out as {layout}")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder (dataset {name!r}, expected "
                                f"{layout})")
    return root


def _integrate(samples, T: int, sensor, *, split_by: str, binarize: bool, dtype,
               read: Callable | None = None):
    """Frames ``[N, T, 2, H, W]`` and labels for ``(events or path, label)`` pairs."""
    height, width = sensor
    x = torch.empty((len(samples), T, 2, height, width), dtype=dtype)
    y = torch.empty(len(samples), dtype=torch.int64)
    for i, (src, label) in enumerate(samples):
        events = read(src) if read is not None else src
        frames = events_to_frames(events, T, height, width, split_by=split_by)
        if binarize:
            frames = frames > 0
        elif not dtype.is_floating_point:
            # Saturate rather than wrap around when counts do not fit, e.g., uint8.
            frames = np.minimum(frames, torch.iinfo(dtype).max)
        x[i] = torch.from_numpy(frames)
        y[i] = label
    return x, y


def nmnist_files(root, split: str) -> list[tuple[Path, int]]:
    """``(path, digit)`` of the ``.bin`` files of ``<root>/<split>/<digit>/``.

    Ordered by digit, then by file name in natural order.
    """
    base = Path(root) / split
    if not base.is_dir():
        raise FileNotFoundError(f"{base}: no such folder (N-MNIST needs <root>/Train and "
                                "<root>/Test with one folder per digit)")
    out = []
    for digit in range(10):
        out += [(p, digit) for p in sorted((base / str(digit)).glob("*.bin"), key=_natural_key)]
    if not out:
        raise FileNotFoundError(f"{base}: no <digit>/*.bin files")
    return out


def cifar10_dvs_files(root) -> tuple[tuple[str, ...], list, list]:
    """The deterministic CIFAR10-DVS split.

    Class folders in alphabetical order give labels 0..9; in each, the ``.aedat`` files in
    natural order of their names (``cifar10_cat_2`` before ``cifar10_cat_10``); the first
    ``int(0.9 * n)`` train, the rest test.

    Returns
    -------
    (class_names, train, test)
        ``train`` and ``test`` are lists of ``(path, label)``.
    """
    root = Path(root)
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and any(d.glob("*.aedat")))
    if not classes:
        raise FileNotFoundError(f"{root}: no class folders holding .aedat files")
    train, test = [], []
    for label, name in enumerate(classes):
        files = sorted((root / name).glob("*.aedat"), key=_natural_key)
        cut = int(len(files) * 0.9)
        train += [(p, label) for p in files[:cut]]
        test += [(p, label) for p in files[cut:]]
    return tuple(classes), train, test


def dvs_gesture_trials(root, split: str) -> list[tuple[Path, Path]]:
    """``(aedat, labels_csv)`` pairs listed in ``<root>/trials_to_<split>.txt``."""
    root = Path(root)
    listing = root / f"trials_to_{split}.txt"
    if not listing.is_file():
        raise FileNotFoundError(f"{listing}: missing (DVS128 Gesture lists its trials in "
                                "trials_to_train.txt and trials_to_test.txt)")
    out = []
    for line in listing.read_text().splitlines():
        name = line.strip()
        if name:
            aedat = root / name
            out.append((aedat, aedat.with_name(aedat.stem + "_labels.csv")))
    return out


def _digits(T, root, encoding, seed, **_):
    s = load_digits_split()
    return dict(x_train=s.x_train, y_train=s.y_train, x_test=s.x_test, y_test=s.y_test,
                input_shape=DIGITS_SHAPE, n_classes=10, temporal=False,
                class_names=tuple(str(d) for d in range(10)),
                meta={"source": "sklearn.datasets.load_digits", "scale": "x / 16",
                      "split": "train_test_split(test_size=0.2, random_state=0, stratify=y)"})


def _subset(items, subset):
    return items if subset is None else items[:subset]


def _nmnist_synth(T, root, encoding, seed, *, split_by, binarize, dtype, subset, **_):
    params = SynthParams(seed=seed)
    start = time.perf_counter()
    made = generate_nmnist_synth(root if root is not None else DEFAULT_ROOT, params,
                                 subset=subset)
    generated_s = time.perf_counter() - start
    kw = dict(split_by=split_by, binarize=binarize, dtype=dtype, read=read_nmnist)
    x_train, y_train = _integrate([(p, c) for p, c, _ in made["samples"]["Train"]], T,
                                  NMNIST_SENSOR, **kw)
    x_test, y_test = _integrate([(p, c) for p, c, _ in made["samples"]["Test"]], T,
                                NMNIST_SENSOR, **kw)
    return dict(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                input_shape=(2, *NMNIST_SENSOR), n_classes=10, temporal=True,
                class_names=tuple(str(d) for d in range(10)),
                meta={"dir": str(made["dir"]), "params": params, "key": params.key(),
                      "generated": made["generated"], "generate_s": generated_s,
                      "split_by": split_by, "binarize": binarize})


def _nmnist(T, root, encoding, seed, *, split_by, binarize, dtype, subset, **_):
    root = _need_root("nmnist", root, "<root>/Train/<digit>/<id>.bin and <root>/Test/...")
    kw = dict(split_by=split_by, binarize=binarize, dtype=dtype, read=read_nmnist)
    x_train, y_train = _integrate(_subset(nmnist_files(root, "Train"), subset), T,
                                  NMNIST_SENSOR, **kw)
    x_test, y_test = _integrate(_subset(nmnist_files(root, "Test"), subset), T,
                                NMNIST_SENSOR, **kw)
    return dict(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                input_shape=(2, *NMNIST_SENSOR), n_classes=10, temporal=True,
                class_names=tuple(str(d) for d in range(10)),
                meta={"dir": str(root), "split_by": split_by, "binarize": binarize})


def _cifar10_dvs(T, root, encoding, seed, *, split_by, binarize, dtype, subset, **_):
    root = _need_root("cifar10-dvs", root, "<root>/<class>/<name>_<number>.aedat")
    classes, train, test = cifar10_dvs_files(root)
    kw = dict(split_by=split_by, binarize=binarize, dtype=dtype, read=read_aedat2)
    x_train, y_train = _integrate(_subset(train, subset), T, AEDAT2_SENSOR, **kw)
    x_test, y_test = _integrate(_subset(test, subset), T, AEDAT2_SENSOR, **kw)
    return dict(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                input_shape=(2, *AEDAT2_SENSOR), n_classes=len(classes), temporal=True,
                class_names=classes,
                meta={"dir": str(root), "split": "per class, natural order, first 90% train",
                      "orientation": "spikingjelly", "split_by": split_by,
                      "binarize": binarize})


def _gesture_samples(root, split, subset):
    samples = []
    for aedat, csv in dvs_gesture_trials(root, split):
        events = read_aedat3(aedat)
        samples += [(ev, c - 1) for ev, c in split_by_labels(events, read_gesture_labels(csv))]
        if subset is not None and len(samples) >= subset:
            return samples[:subset]
    return samples


def _dvs_gesture(T, root, encoding, seed, *, split_by, binarize, dtype, subset, **_):
    root = _need_root("dvs-gesture", root, "<root>/userNN_<lighting>.aedat with "
                      "_labels.csv files and trials_to_train.txt / trials_to_test.txt")
    kw = dict(split_by=split_by, binarize=binarize, dtype=dtype)
    x_train, y_train = _integrate(_gesture_samples(root, "train", subset), T, GESTURE_SENSOR,
                                  **kw)
    x_test, y_test = _integrate(_gesture_samples(root, "test", subset), T, GESTURE_SENSOR,
                                **kw)
    return dict(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                input_shape=(2, *GESTURE_SENSOR), n_classes=len(GESTURE_CLASSES),
                temporal=True, class_names=GESTURE_CLASSES,
                meta={"dir": str(root), "split": "trials_to_train/test.txt, one sample per "
                      "labels row", "split_by": split_by, "binarize": binarize})


#: Loaders by dataset name.
DATASETS: dict[str, Callable[..., dict]] = {
    "digits": _digits,
    "nmnist-synth": _nmnist_synth,
    "nmnist": _nmnist,
    "cifar10-dvs": _cifar10_dvs,
    "dvs-gesture": _dvs_gesture,
}
_STATIC = {"digits"}


def load_dataset(name: str, T: int, *, root=None, encoding: str | None = None, seed: int = 0,
                 split_by: str = "number", binarize: bool = True, subset: int | None = None,
                 dtype: torch.dtype = torch.float32) -> Dataset:
    """Load a dataset by name.

    Parameters
    ----------
    name : str
        One of :data:`DATASETS`: ``digits``, ``nmnist-synth``, ``nmnist``, ``cifar10-dvs``,
        ``dvs-gesture``.
    T : int
        Time steps: encoder steps for static datasets, frames for temporal ones.
    root : str or os.PathLike, optional
        ``nmnist-synth``: parent folder of the generated cache (default ``runs/data`` under
        the current directory). Real event datasets: the dataset folder (required).
        Unused by ``digits``.
    encoding : str, optional
        Static datasets only: encoder name (default ``"direct"``). Must be None for temporal
        datasets, whose samples already are spike frames.
    seed : int
        ``nmnist-synth``: generation seed (timestamp jitter). The digits split is fixed and
        does not depend on it; the real datasets ignore it.
    split_by : {"number", "time"}
        How events are cut into frames (SpikingJelly mode, see :mod:`.frames`).
    binarize : bool
        Frames as spikes (count > 0) rather than event counts.
    subset : int, optional
        Keep only the first ``subset`` samples of each split (quick runs and tests).
    dtype : torch.dtype
        dtype of temporal frames; with an integer dtype and ``binarize=False`` counts
        saturate at the dtype's maximum.

    Returns
    -------
    Dataset

    Raises
    ------
    ValueError
        For an unknown dataset or encoding name (the message lists the valid ones), an
        encoding given for a temporal dataset, or a real dataset without ``root``.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid: {', '.join(DATASETS)}")
    if int(T) != T or T < 1:
        raise ValueError(f"T must be a positive integer, got {T!r}")
    T = int(T)
    if encoding is not None and encoding not in ENCODERS:
        raise ValueError(f"unknown encoding {encoding!r}; valid: {', '.join(ENCODERS)}")
    if split_by not in SPLIT_BY:
        raise ValueError(f"unknown split_by {split_by!r}; valid: {', '.join(SPLIT_BY)}")
    if subset is not None and subset < 1:
        raise ValueError(f"subset must be >= 1, got {subset}")
    if name not in _STATIC and encoding is not None:
        raise ValueError(f"dataset {name!r} is already temporal (frames); it takes no "
                         f"encoding, got {encoding!r}")
    parts = DATASETS[name](T, root, encoding, seed, split_by=split_by, binarize=binarize,
                           dtype=dtype, subset=subset)
    if not parts["temporal"]:
        encoding = encoding or "direct"
        if subset is not None:
            for key in ("x_train", "y_train", "x_test", "y_test"):
                parts[key] = parts[key][:subset]
    return Dataset(name=name, T=T, encoding=encoding, **parts)
