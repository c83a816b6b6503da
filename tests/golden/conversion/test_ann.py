import pytest
import torch
from torch import nn

from trident.golden.conversion import ConvertibleANN, fold_batchnorm, load_ann, save_ann


def _randomise_bn(model):
    g = torch.Generator().manual_seed(0)
    for m in model.body:
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g))
            m.running_var.copy_(torch.rand(n, generator=g) + 0.2)
            m.weight.data.copy_(torch.randn(n, generator=g))
            m.bias.data.copy_(torch.randn(n, generator=g))


@pytest.mark.parametrize("arch,shape,bias", [("fc32,bn,fc16,bn", (1, 8, 8), True),
                                             ("fc32,bn,fc16,bn", (64,), False),
                                             ("conv4k3p1,bn,avgpool2,conv8k3,bn", (1, 8, 8), True),
                                             ("conv4k3s2,bn,fc12,bn", (1, 8, 8), False)])
def test_bn_folding_preserves_outputs(arch, shape, bias):
    torch.manual_seed(1)
    model = ConvertibleANN(arch, shape, 10, theta_init=1.5, bias=bias)
    _randomise_bn(model)
    model.eval()
    x = torch.rand(50, *shape)
    before = model(x)
    acts_before = model.layer_outputs(x)
    fold_batchnorm(model)
    assert not model.has_batchnorm()
    torch.testing.assert_close(model(x), before, rtol=1e-5, atol=1e-5)
    for a, b in zip(model.layer_outputs(x), acts_before):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_architecture_checks():
    with pytest.raises(ValueError, match="max pooling"):
        ConvertibleANN("conv4k3,maxpool2", (1, 8, 8), 10)
    with pytest.raises(ValueError, match="bn must follow"):
        ConvertibleANN("bn,fc10", (64,), 10)
    with pytest.raises(ValueError, match="cannot parse"):
        ConvertibleANN("fc10,dropout", (64,), 10)
    with pytest.raises(ValueError, match="activation"):
        ConvertibleANN("fc10", (64,), 10, activation="tanh")
    model = ConvertibleANN("digits-cnn", (1, 8, 8), 10)
    assert model(torch.rand(3, 64)).shape == (3, 10)  # flat input is reshaped
    with pytest.raises(ValueError, match="expected input"):
        model(torch.rand(3, 65))


def test_presets_and_thetas():
    model = ConvertibleANN("digits-mlp", (1, 8, 8), 10)
    assert model.architecture == "fc256,bn,fc128,bn"
    assert model.thetas() == [5.0, 5.0]
    model.set_activation(mode="quant", T=4)
    assert {a.mode for a in model.activations()} == {"quant"}


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = ConvertibleANN("conv4k3p1,bn,avgpool2,fc8,bn", (1, 8, 8), 10).eval()
    _randomise_bn(model)
    model.fold_batchnorm()
    save_ann(model, tmp_path / "ann.pt")
    loaded = load_ann(tmp_path / "ann.pt")
    x = torch.rand(5, 1, 8, 8)
    assert torch.equal(loaded(x), model(x))
    with pytest.raises(ValueError, match="does not exist"):
        load_ann(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read"):
        load_ann(tmp_path / "junk.pt")
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a Trident conversion ANN"):
        load_ann(tmp_path / "other.pt")
