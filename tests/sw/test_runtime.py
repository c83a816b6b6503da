import json

import pytest

from trident.sw.checkpoint import CheckpointError, load_checkpoint
from trident.sw.runtime import TrainConfig, TrainingError, train


def small(tmp_path, **overrides):
    fields = dict(dataset="digits", model="mlp-small", T=4, epochs=3, batch_size=64, lr=0.2,
                  train_limit=512, seed=3, encoding="rate")
    fields.update(overrides)
    return TrainConfig(**fields)


class Interrupt(Exception):
    pass


def interrupt_at(step):
    def hook(global_step):
        if global_step == step:
            raise Interrupt
    return hook


@pytest.mark.parametrize("precision", ["fp32", "fp16-hw"])
def test_resume_after_interruption_gives_the_same_weights(tmp_path, precision):
    settings = dict(precision=precision, detach_reset=True)
    straight = train(small(tmp_path, **settings), progress=False)
    run = tmp_path / "run"
    # 8 steps per epoch: stop mid-epoch 2, after a periodic checkpoint at step 10.
    with pytest.raises(Interrupt):
        train(small(tmp_path, **settings, checkpoint=str(run), checkpoint_every=5), progress=False,
              on_step=interrupt_at(12))
    assert load_checkpoint(run / "checkpoint.pt")["global_step"] == 10
    resumed = train(small(tmp_path, **settings, checkpoint=str(run), resume=True), progress=False)
    assert resumed["weights_sha256"] == straight["weights_sha256"]
    strip = lambda history: [{k: v for k, v in h.items() if k != "train_time_s"} for h in history]
    assert strip(resumed["history"]) == strip(straight["history"])


def test_resume_continues_to_more_epochs(tmp_path):
    run = tmp_path / "run"
    train(small(tmp_path, epochs=1, checkpoint=str(run)), progress=False)
    longer = train(small(tmp_path, epochs=3, checkpoint=str(run), resume=True), progress=False)
    assert longer["weights_sha256"] == train(small(tmp_path), progress=False)["weights_sha256"]
    assert [h["epoch"] for h in longer["history"]] == [1, 2, 3]


def test_report_fields(tmp_path):
    report_path = tmp_path / "out" / "report.json"
    report = train(small(tmp_path, epochs=1, report=str(report_path), plot=str(tmp_path / "curve.png")),
                   progress=False)
    on_disk = json.loads(report_path.read_text())
    assert on_disk == json.loads(json.dumps(report))
    for key in ("test_accuracy", "train_time_s", "samples_per_s", "device", "precision", "weights_sha256"):
        assert key in on_disk
    assert 0 <= on_disk["test_accuracy"] <= 1
    assert on_disk["config"]["T"] == 4 and on_disk["device"] == "golden" and on_disk["precision"] == "fp32"
    assert len(on_disk["weights_sha256"]) == 64
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_same_seed_same_weights_other_seed_other_weights(tmp_path):
    a = train(small(tmp_path, epochs=1), progress=False)
    b = train(small(tmp_path, epochs=1), progress=False)
    c = train(small(tmp_path, epochs=1, seed=4), progress=False)
    assert a["weights_sha256"] == b["weights_sha256"] != c["weights_sha256"]


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_checkpoint(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(TrainingError, match=r"loss became (nan|inf) at epoch 1, batch (\d+).*Lower --lr") as info:
        train(small(tmp_path, epochs=2, checkpoint=str(run), checkpoint_every=1, lr=float("inf")), progress=False)
    failed_at = int(info.value.args[0].split("batch ")[1].split(";")[0])
    assert load_checkpoint(run / "checkpoint.pt")["global_step"] == failed_at - 1


def test_corrupt_checkpoint_is_reported_and_left_alone(tmp_path):
    run = tmp_path / "run"
    train(small(tmp_path, epochs=1, checkpoint=str(run)), progress=False)
    path = run / "checkpoint.pt"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupt"):
        train(small(tmp_path, checkpoint=str(run), resume=True), progress=False)
    assert path.read_bytes() == bytes(data)
    path.write_bytes(bytes(data[:100]))
    with pytest.raises(CheckpointError, match="corrupt|not a Trident checkpoint"):
        train(small(tmp_path, checkpoint=str(run), resume=True), progress=False)


def test_resume_with_other_settings_is_refused(tmp_path):
    run = tmp_path / "run"
    train(small(tmp_path, epochs=1, checkpoint=str(run)), progress=False)
    with pytest.raises(CheckpointError, match="lr: saved 0.2, now 0.1"):
        train(small(tmp_path, checkpoint=str(run), resume=True, lr=0.1), progress=False)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        train(small(tmp_path, checkpoint=str(tmp_path / "elsewhere"), resume=True), progress=False)


@pytest.mark.parametrize("field,value,message", [
    ("precision", "bf16", "unknown precision 'bf16'; valid choices: fp32, fp16-hw"),
    ("device", "tpu", "unknown device 'tpu'"),
    ("T", 0, "T must be at least 1"),
    ("dataset", "imagenet", "imagenet"),
    ("neuron", "hh", "valid choices: if, lif, klif"),
    ("surrogate", "relu", "unknown surrogate"),
    ("model", "fc0x", "cannot parse layer"),
    ("precision", "fp16-hw", "add --detach-reset"),
    ("dram", "hbm", "unknown DRAM 'hbm'; valid choices: bram, axi"),
    ("dram", "axi", "use it with --device sim"),
])
def test_bad_settings_are_rejected(tmp_path, field, value, message):
    with pytest.raises(ValueError, match=message):
        train(small(tmp_path, **{field: value}), progress=False)


def test_hw_precision_holds_binary16_weights_and_refuses_what_hardware_lacks(tmp_path):
    report = train(small(tmp_path, epochs=1, precision="fp16-hw", detach_reset=True), progress=False)
    assert report["precision"] == "fp16-hw" and 0 <= report["test_accuracy"] <= 1
    with pytest.raises(ValueError, match="no hardware unit"):
        train(small(tmp_path, precision="fp16-hw", detach_reset=True, surrogate="atan"), progress=False)
    with pytest.raises(ValueError, match="use --optimizer sgd"):
        train(small(tmp_path, precision="fp16-hw", detach_reset=True, optimizer="adam"), progress=False)
