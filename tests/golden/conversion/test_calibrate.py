import pytest
import torch

from trident.golden.conversion import (CalibrationConfig, ConvertibleANN, calibrate, convert, finetune_noisy,
                                       output_gap, train_ann)
from trident.golden.data import load_digits_split

T = 4


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    data = load_digits_split()
    ann = ConvertibleANN("fc64,bn,fc32,bn", (1, 8, 8), 10)
    train_ann(ann, data.x_train, data.y_train, epochs=8, generator=torch.Generator().manual_seed(1))
    ann.eval().fold_batchnorm()
    tuned = finetune_noisy(ann, data.x_train, data.y_train, T, epochs=3,
                           generator=torch.Generator().manual_seed(2))
    perm = torch.randperm(len(data.x_train), generator=torch.Generator().manual_seed(3))
    return tuned, data.x_train[perm[:256]], data.x_train[perm[256:384]], data.x_test


def test_potential_calibration_removes_a_systematic_gap_on_held_out_data(setup):
    tuned, x_cal, _, x_test = setup
    snn = convert(tuned, T, offset="none")  # floors: every neuron is biased low by θ/(2T)
    before = output_gap(snn, tuned, x_test)
    calibrate(snn, tuned, x_cal, config=CalibrationConfig(steps="a"))
    after = output_gap(snn, tuned, x_test)
    assert after["kl"] < 0.5 * before["kl"]
    assert after["mae"] < before["mae"]
    assert after["agreement"] >= before["agreement"]


def test_full_calibration_reduces_the_gap_on_held_out_data(setup):
    tuned, x_cal, x_val, x_test = setup
    snn = convert(tuned, T, offset="none")
    before = output_gap(snn, tuned, x_test)
    log = calibrate(snn, tuned, x_cal, config=CalibrationConfig(epochs=5), x_val=x_val,
                    generator=torch.Generator().manual_seed(0))
    after = output_gap(snn, tuned, x_test)
    assert after["kl"] < 0.5 * before["kl"]
    for entry in log[1:3]:
        b = entry["steps"][1]
        assert b["step"] == "b" and b["val_kl_after"] <= b["val_kl_before"]
    assert [p["pass"] for p in log[-1]["selection"]] == ["converted", "a", "b", "a"]


def test_output_potential_calibration_matches_mean_logits(setup):
    tuned, x_cal, _, _ = setup
    snn = convert(tuned, T)
    calibrate(snn, tuned, x_cal, config=CalibrationConfig(steps="a"))
    with torch.no_grad():
        torch.testing.assert_close(snn(x_cal).mean(0), tuned(x_cal).mean(0), atol=1e-4, rtol=0)


def test_layer_major_order_and_keep_best(setup):
    tuned, x_cal, x_val, _ = setup
    snn = convert(tuned, T)
    log = calibrate(snn, tuned, x_cal, config=CalibrationConfig(order="layer", epochs=2), x_val=x_val)
    assert [s["step"] for s in log[1]["steps"]] == ["a", "b", "a"]
    assert log[0]["steps"][1]["skipped"]  # with the θ/2 offset layer 0 is exact: nothing to learn
    selection = log[-1]["selection"]
    assert len(selection) == 2
    # keep_best never leaves the network worse on the validation samples than converted
    final = output_gap(snn, tuned, x_val)["kl"]
    assert final <= selection[0]["val_output_kl"] + 1e-7


def test_channel_granularity_shifts_whole_channels():
    torch.manual_seed(0)
    ann = ConvertibleANN("conv4k3p1,fc16", (1, 8, 8), 10, theta_init=1.0).set_activation(mode="quant", T=4).eval()
    snn = convert(ann, 4)
    u0 = snn.stages[1].neuron.u_init.clone()
    snn.stages[0].weight.weight.data.mul_(0.5)  # a mismatch the first layer must correct
    calibrate(snn, ann, torch.rand(64, 1, 8, 8), config=CalibrationConfig(steps="a", granularity="channel"))
    shift = snn.stages[0].neuron.u_init - 0.5
    assert torch.allclose(shift, shift[:, :1, :1].expand_as(shift))
    assert shift.abs().sum() > 0
    assert snn.stages[1].neuron.u_init.shape == u0.shape


def test_config_validation():
    with pytest.raises(ValueError, match="steps"):
        CalibrationConfig(steps="abc")
    with pytest.raises(ValueError, match="order"):
        CalibrationConfig(order="random")
    with pytest.raises(ValueError, match="granularity"):
        CalibrationConfig(granularity="layer")
