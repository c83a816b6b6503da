import pytest
import torch

from trident.golden.conversion import ConversionConfig, finetune_noisy, ConvertibleANN, run_conversion


def test_config_validation():
    with pytest.raises(ValueError, match="T must"):
        ConversionConfig(T=())
    with pytest.raises(ValueError, match="offset"):
        ConversionConfig(offset="half")
    with pytest.raises(ValueError, match="surrogate scale"):
        ConversionConfig(surrogate_scale="relative")
    with pytest.raises(ValueError, match="percentile"):
        ConversionConfig(baseline_percentile=0)
    assert ConversionConfig(T=[8, 2]).T == (8, 2)


def test_finetune_needs_folded_bn_and_leaves_the_ann_alone():
    ann = ConvertibleANN("fc8,bn", (64,), 10)
    x, y = torch.rand(32, 64), torch.randint(0, 10, (32,))
    with pytest.raises(ValueError, match="fold BatchNorm"):
        finetune_noisy(ann, x, y, 4)
    ann.eval().fold_batchnorm()
    tuned = finetune_noisy(ann, x, y, 4, epochs=1)
    assert ann.activation_mode == "clip" and tuned.activation_mode == "quant"
    assert not tuned.training and tuned.activations()[0].T == 4


@pytest.mark.slow
def test_dual_phase_mlp_reaches_its_ann_at_T8():
    report = run_conversion(ConversionConfig(model="digits-mlp", T=(4, 8), seed=0))
    row = {r["T"]: r for r in report["results"]}
    assert report["ann_accuracy"] - row[8]["dual_phase"] <= 0.01
    assert row[4]["dual_phase"] > row[4]["max_norm"]
    assert row[8]["dual_phase"] >= row[8]["max_norm"]
    assert report["bn_fold_max_abs_diff"] < 1e-4
