"""Tests for trident.golden.data.synthetic: the N-MNIST-like event digits."""
import numpy as np
import pytest

from trident.golden.data.digits import digits_arrays, digits_split_indices
from trident.golden.data.events import EVENT_DTYPE, read_nmnist
from trident.golden.data.synthetic import (SynthParams, generate_nmnist_synth,
                                           simulate_events, synth_dir)

SUBSET = 3


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    return root, generate_nmnist_synth(root, subset=SUBSET)


def test_layout_and_labels(generated):
    root, made = generated
    _, labels = digits_arrays()
    train, test = digits_split_indices()
    assert made["dir"] == synth_dir(root) and made["generated"] == 2 * SUBSET
    for split, index in (("Train", train), ("Test", test)):
        entries = made["samples"][split]
        assert [sid for _, _, sid in entries] == index[:SUBSET].tolist()
        for path, label, sid in entries:
            assert label == labels[sid]
            assert path == made["dir"] / split / str(label) / f"{sid:05d}.bin"
            assert path.is_file()
    assert (made["dir"] / "params.json").is_file()
    files = sorted(p.relative_to(made["dir"]) for p in made["dir"].rglob("*.bin"))
    assert len(files) == 2 * SUBSET  # nothing else written, no temp files left
    assert not list(made["dir"].rglob("*.tmp"))


def test_files_hold_the_generated_events(generated):
    _, made = generated
    images, _ = digits_arrays()
    entries = made["samples"]["Train"] + made["samples"]["Test"]
    ids = [sid for _, _, sid in entries]
    for (path, _, _), ev in zip(entries, simulate_events(images[ids], ids)):
        assert np.array_equal(read_nmnist(path), ev)


def test_events_look_like_nmnist(generated):
    _, made = generated
    for path, _, _ in made["samples"]["Train"]:
        ev = read_nmnist(path)
        assert ev.dtype == EVENT_DTYPE
        assert 1000 < ev.size < 10000                      # N-MNIST: about 4,000
        assert np.all(np.diff(ev["t"]) >= 0)
        assert ev["t"].min() >= 0 and ev["t"].max() < 300_000 + 1000
        assert ev["x"].max() < 34 and ev["y"].max() < 34
        assert 0.3 < ev["p"].mean() < 0.7                  # ON and OFF both present
        # Events from all three saccades (jitter may push a few past 300 ms).
        assert np.unique(np.minimum(ev["t"] // 100_000, 2)).tolist() == [0, 1, 2]


def test_second_call_only_reads(generated):
    root, made = generated
    mtimes = [p.stat().st_mtime_ns for p, _, _ in made["samples"]["Train"]]
    again = generate_nmnist_synth(root, subset=SUBSET)
    assert again["generated"] == 0
    assert [p.stat().st_mtime_ns for p, _, _ in again["samples"]["Train"]] == mtimes
    # A larger subset generates only the samples that are missing.
    assert generate_nmnist_synth(root, subset=SUBSET + 1)["generated"] == 2


def test_deterministic_and_independent_of_batching():
    images, _ = digits_arrays()
    ids = [5, 17, 1000]
    together = simulate_events(images[ids], ids)
    again = simulate_events(images[ids], ids)
    alone = simulate_events(images[[17]], [17])
    assert all(np.array_equal(a, b) for a, b in zip(together, again))
    assert np.array_equal(together[1], alone[0])
    reseeded = simulate_events(images[[17]], [17], SynthParams(seed=1))
    assert reseeded[0].size == alone[0].size              # jitter moves times, not events
    assert not np.array_equal(reseeded[0]["t"], alone[0]["t"])


def test_cache_key_follows_parameters(tmp_path):
    assert SynthParams().key() == SynthParams(path=[[1, 5], [3, 1], [5, 5]]).key()
    assert SynthParams().key() != SynthParams(seed=1).key()
    assert SynthParams().key() != SynthParams(threshold=0.3).key()
    assert synth_dir(tmp_path, SynthParams(seed=1)) != synth_dir(tmp_path)
    with pytest.raises(ValueError, match="sensor_size"):
        SynthParams(sensor_size=300)
    with pytest.raises(ValueError, match="step_us"):
        SynthParams(step_us=300)
