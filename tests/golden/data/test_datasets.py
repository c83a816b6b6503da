"""Tests for trident.golden.data.datasets: the load_dataset entry point."""
import numpy as np
import pytest
import torch

from trident.golden.data.datasets import (DATASETS, cifar10_dvs_files, load_dataset,
                                          nmnist_files)
from trident.golden.data.digits import digits_arrays, digits_split_indices
from trident.golden.data.events import (make_events, write_aedat2, write_aedat3,
                                        write_gesture_labels, write_nmnist)


def test_digits():
    ds = load_dataset("digits", 6)
    assert (ds.temporal, ds.encoding, ds.n_classes, ds.input_shape) == (False, "direct", 10,
                                                                       (1, 8, 8))
    assert ds.x_train.shape == (1437, 1, 8, 8) and ds.y_test.shape == (360,)
    assert ds.encode(ds.x_train[:4]).shape == (6, 4, 1, 8, 8)
    rated = load_dataset("digits", 6, encoding="rate", subset=10)
    assert rated.x_train.shape == (10, 1, 8, 8)
    g = torch.Generator().manual_seed(0)
    assert set(rated.encode(rated.x_test, generator=g).unique().tolist()) <= {0.0, 1.0}
    assert rated.spikes and not ds.spikes
    assert load_dataset("digits", 6, encoding="latency", subset=10).spikes


def test_bad_arguments():
    with pytest.raises(ValueError, match="digits, nmnist-synth, nmnist, cifar10-dvs, "
                                         "dvs-gesture"):
        load_dataset("mnist", 4)
    with pytest.raises(ValueError, match="direct, rate, latency"):
        load_dataset("digits", 4, encoding="phase")
    with pytest.raises(ValueError, match="already temporal"):
        load_dataset("nmnist-synth", 4, encoding="rate")
    for name in ("nmnist", "cifar10-dvs", "dvs-gesture"):
        with pytest.raises(ValueError, match="pass root="):
            load_dataset(name, 4)
    with pytest.raises(ValueError, match="split_by"):
        load_dataset("digits", 4, split_by="space")
    assert list(DATASETS) == ["digits", "nmnist-synth", "nmnist", "cifar10-dvs", "dvs-gesture"]


def test_nmnist_synth(tmp_path):
    ds = load_dataset("nmnist-synth", 5, root=tmp_path, subset=2)
    assert ds.temporal and ds.encoding is None and ds.input_shape == (2, 34, 34)
    assert ds.x_train.shape == (2, 5, 2, 34, 34) and ds.x_test.shape == (2, 5, 2, 34, 34)
    assert set(ds.x_train.unique().tolist()) == {0.0, 1.0}      # binarised
    assert ds.spikes
    _, labels = digits_arrays()
    train, test = digits_split_indices()
    assert ds.y_train.tolist() == labels[train[:2]].tolist()
    assert ds.y_test.tolist() == labels[test[:2]].tolist()
    assert ds.encode(ds.x_train).shape == (5, 2, 2, 34, 34)
    counts = load_dataset("nmnist-synth", 5, root=tmp_path, subset=2, binarize=False)
    assert counts.meta["generated"] == 0 and counts.x_train.max() > 1
    assert not counts.spikes
    assert torch.equal(counts.x_train > 0, ds.x_train > 0)


def test_nmnist_folder(tmp_path):
    for split, digit, name in [("Train", 3, "2.bin"), ("Train", 3, "10.bin"),
                               ("Train", 7, "1.bin"), ("Test", 0, "5.bin")]:
        ev = make_events([0, 10, 20], [digit, 1, 2], [0, 33, 5], [1, 0, 1])
        write_nmnist(tmp_path / split / str(digit) / name, ev)
    assert [(p.name, c) for p, c in nmnist_files(tmp_path, "Train")] == [
        ("2.bin", 3), ("10.bin", 3), ("1.bin", 7)]
    ds = load_dataset("nmnist", 2, root=tmp_path, binarize=False)
    assert ds.x_train.shape == (3, 2, 2, 34, 34) and ds.y_train.tolist() == [3, 3, 7]
    assert ds.x_train[2, 0, 1, 0, 7] == 1        # first frame: ON event at (0, x=digit)
    assert ds.x_test.shape == (1, 2, 2, 34, 34) and ds.y_test.tolist() == [0]


def test_cifar10_dvs_split(tmp_path):
    for cls in ("cat", "airplane"):
        for n in range(1, 11):
            ev = make_events([0, 5], [n, n], [0, 1], [1, 0])
            write_aedat2(tmp_path / cls / f"cifar10_{cls}_{n}.aedat", ev)
    classes, train, test = cifar10_dvs_files(tmp_path)
    assert classes == ("airplane", "cat")
    # Natural order: _10 is the last file of a class, so it is the one held out.
    assert [(p.name, c) for p, c in test] == [("cifar10_airplane_10.aedat", 0),
                                              ("cifar10_cat_10.aedat", 1)]
    assert len(train) == 18 and train[0][0].name == "cifar10_airplane_1.aedat"
    ds = load_dataset("cifar10-dvs", 2, root=tmp_path, subset=3)
    assert ds.x_train.shape == (3, 2, 2, 128, 128) and ds.n_classes == 2
    assert ds.x_test[1, 0, 1, 0, 10] == 1        # cat_10's ON event at (y=0, x=10)


def test_dvs_gesture(tmp_path):
    ev = make_events(np.arange(0, 100, 10), np.arange(10), np.arange(10), np.arange(10) % 2)
    for name in ("user01_led", "user02_lab"):
        write_aedat3(tmp_path / f"{name}.aedat", ev, events_per_packet=3)
    write_gesture_labels(tmp_path / "user01_led_labels.csv", [(1, 0, 30), (11, 30, 95)])
    write_gesture_labels(tmp_path / "user02_lab_labels.csv", [(4, 20, 40)])
    (tmp_path / "trials_to_train.txt").write_text("user01_led.aedat\n")
    (tmp_path / "trials_to_test.txt").write_text("user02_lab.aedat\n\n")
    ds = load_dataset("dvs-gesture", 1, root=tmp_path, binarize=False)
    assert ds.y_train.tolist() == [0, 10] and ds.y_test.tolist() == [3]
    assert ds.x_train.shape == (2, 1, 2, 128, 128) and ds.n_classes == 11
    assert ds.x_train.sum(dim=(1, 2, 3, 4)).tolist() == [3, 7]
    assert ds.x_test.sum().item() == 2
