import pytest
import torch

from trident.golden import layers
from trident.golden.network import PRESETS, SpikingNetwork, parse_architecture
from trident.golden.neurons import MultiStepNeuron, NeuronConfig


def test_mlp_preset_shapes_and_no_biases():
    net = SpikingNetwork("mlp", (64,), 10, NeuronConfig())
    logits = net(torch.rand(8, 5, 64))
    assert logits.shape == (5, 10)
    assert [tuple(p.shape) for p in net.parameters()] == [(256, 64), (10, 256)]


def test_cnn_preset_shapes():
    net = SpikingNetwork("cnn", (2, 34, 34), 10, NeuronConfig(kind="klif"))
    assert net.feature_shape == (32, 4, 4)
    assert net(torch.rand(4, 3, 2, 34, 34)).shape == (3, 10)
    assert net.klif_scales() == [1.0, 1.0]


def test_bn_goes_between_weight_layer_and_neurons():
    net = SpikingNetwork("cnn", (2, 16, 16), 4, NeuronConfig())
    kinds = [type(m) for m in net.body]
    assert kinds[:3] == [layers.Conv2d, layers.BatchNorm2d, MultiStepNeuron]


def test_readout_is_time_average_of_weighted_spikes():
    net = SpikingNetwork("fc3", (2,), 2, NeuronConfig(kind="if"))
    spikes = torch.tensor([[[1.0, 0, 1]], [[0, 0, 1]]])
    expected = spikes.mean(0) @ net.readout.weight.T
    torch.testing.assert_close(net.readout(spikes), expected)


def test_state_is_owned_by_the_model():
    net = SpikingNetwork("mlp-small", (8,), 3, NeuronConfig())
    x = torch.rand(4, 2, 8) * 3
    assert torch.equal(net(x), net(x))


@pytest.mark.parametrize("text,error", [
    ("fc", "cannot parse layer 'fc'"),
    ("lstm64", "cannot parse layer 'lstm64'"),
    ("maxpool2", "no fc or conv layer"),
])
def test_bad_descriptions(text, error):
    with pytest.raises(ValueError, match=error):
        parse_architecture(text)


def test_impossible_sizes_are_rejected():
    with pytest.raises(ValueError, match="does not fit"):
        SpikingNetwork("conv4k9", (1, 5, 5), 2, NeuronConfig())
    with pytest.raises(ValueError, match=r"conv layer needs input \[C, H, W\]"):
        SpikingNetwork("conv4k3", (64,), 2, NeuronConfig())
    with pytest.raises(ValueError, match="bn must follow"):
        SpikingNetwork("bn,fc8", (4,), 2, NeuronConfig())
    with pytest.raises(ValueError, match=r"expected input \[T, N, 64\]"):
        SpikingNetwork("mlp", (64,), 10, NeuronConfig())(torch.rand(8, 2, 63))


def test_every_preset_parses():
    for name in PRESETS:
        assert parse_architecture(name)


def test_layers_fed_by_neurons_take_spike_input():
    net = SpikingNetwork("conv4k3,maxpool2,fc8", (1, 10, 10), 2, NeuronConfig())
    flags = [(type(m).__name__, m.spike_input) for m in net.body if hasattr(m, "spike_input")]
    assert flags == [("Conv2d", False), ("MaxPool2d", True), ("Linear", True)]


def test_convolutions_without_norm_start_louder():
    torch.manual_seed(0)
    plain = SpikingNetwork("conv8k3", (2, 12, 12), 2, NeuronConfig()).body[0].weight.abs().mean()
    torch.manual_seed(0)
    normed = SpikingNetwork("conv8k3,bn", (2, 12, 12), 2, NeuronConfig()).body[0].weight.abs().mean()
    torch.testing.assert_close(plain, normed * 4.0)
