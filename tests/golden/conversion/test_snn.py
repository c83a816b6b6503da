import numpy as np
import pytest
import torch

from trident.golden.conversion import (ConvertedIF, ConvertibleANN, convert, max_norm_convert, max_norm_thresholds,
                                       quantize, round_ties, tanh_spike)


def spike_count(neuron, x, T):
    """Spikes of ``neuron`` for the constant current ``x`` applied for ``T`` steps."""
    with torch.no_grad():
        return neuron(x.unsqueeze(0).expand(T, *x.shape)).sum(0)


# Dyadic values: every potential the neuron reaches is exact in binary floating point, so the
# comparison with the quantizer is exact, ties (x·T/θ = k + 1/2) included.
DYADIC = torch.arange(-64, 257, dtype=torch.float32) / 64  # −1 … 4 in steps of 1/64


@pytest.mark.parametrize("theta", [1.0, 2.0, 0.5])
@pytest.mark.parametrize("T", [1, 2, 3, 4, 5, 8, 16])
@pytest.mark.parametrize("fire", ["strict", "geq"])
def test_constant_input_gives_the_quantizer_initial_potential(theta, T, fire):
    neuron = ConvertedIF(theta, DYADIC.shape, offset="init", fire=fire)
    count = spike_count(neuron, DYADIC, T)
    expected = torch.clamp(round_ties(DYADIC * T / theta, fire), 0, T)
    assert torch.equal(count, expected)
    # the spike train's value θ·count/T is the Phase-I activation at inference
    torch.testing.assert_close(theta * count / T, quantize(DYADIC, theta, T, fire))


@pytest.mark.parametrize("T", [1, 2, 4, 8, 16])
@pytest.mark.parametrize("fire", ["strict", "geq"])
def test_constant_input_gives_the_quantizer_per_step_offset(T, fire):
    neuron = ConvertedIF(2.0, DYADIC.shape, offset="step", fire=fire)
    assert torch.all(neuron.u_init == 0)
    count = spike_count(neuron, DYADIC, T)
    assert torch.equal(count, torch.clamp(round_ties(DYADIC * T / 2.0, fire), 0, T))


@pytest.mark.parametrize("T", [1, 3, 8])
def test_no_offset_floors(T):
    z = DYADIC * T / 2.0
    count_geq = spike_count(ConvertedIF(2.0, DYADIC.shape, offset="none", fire="geq"), DYADIC, T)
    assert torch.equal(count_geq, torch.clamp(torch.floor(z), 0, T))
    count_strict = spike_count(ConvertedIF(2.0, DYADIC.shape, offset="none", fire="strict"), DYADIC, T)
    assert torch.equal(count_strict, torch.clamp(torch.ceil(z) - 1, 0, T))


def test_constant_input_random_values_float64():
    torch.manual_seed(0)
    theta, T = 1.37, 12
    x = torch.randn(20000, dtype=torch.float64) * 2
    z = x * T / theta
    x = x[(z - z.floor() - 0.5).abs() > 1e-6]  # away from ties, where float rounding decides
    neuron = ConvertedIF(theta, x.shape).double()
    assert torch.equal(spike_count(neuron, x, T), torch.clamp(round_ties(x * T / theta), 0, T))


def _quantized(arch, shape, T, seed=0):
    torch.manual_seed(seed)
    ann = ConvertibleANN(arch, shape, 10, theta_init=1.0).double()
    for i, a in enumerate(ann.activations()):
        a.theta.data.fill_(0.4 / (i + 1))
    return ann.set_activation(mode="quant", T=T).eval()


ARCHS = [("fc40,fc30,fc20", (64,)), ("conv6k3p1,avgpool2,conv8k3p1,fc16", (1, 8, 8))]


@pytest.mark.parametrize("arch,shape", ARCHS)
def test_T1_snn_equals_quantized_ann_exactly(arch, shape):
    ann = _quantized(arch, shape, T=1)
    snn = convert(ann, 1)
    x = torch.rand(200, *shape, dtype=torch.float64) * 2
    ann_out = ann.layer_outputs(x)
    snn_out = snn.layer_rates(x)
    for a, s in zip(ann_out[:-1], snn_out[:-1]):
        assert torch.equal(a, s)  # hidden layers: the same binary pattern times θ
        assert a.abs().sum() > 0
    torch.testing.assert_close(snn_out[-1], ann_out[-1])


@pytest.mark.parametrize("arch,shape", ARCHS)
@pytest.mark.parametrize("T", [2, 5, 16])
def test_first_layer_is_exact_for_every_T(arch, shape, T):
    ann = _quantized(arch, shape, T)
    snn = convert(ann, T)
    x = torch.rand(100, *shape, dtype=torch.float64)
    theta = snn.thresholds()[0]
    counts = (snn.run(x)[0] / theta).sum(0)
    assert torch.equal(counts, counts.round())
    torch.testing.assert_close(theta * counts / T, ann.layer_outputs(x)[0])


def test_fused_and_stepwise_gradients_agree():
    torch.manual_seed(0)
    for detach in (True, False):
        for scale in ("threshold", "absolute"):
            neuron = ConvertedIF(1.3, (5,), offset="step", detach_reset=detach, surrogate_scale=scale).double()
            neuron.u_init += torch.rand(5, dtype=torch.float64) * 0.3
            current = (torch.rand(7, 4, 5, dtype=torch.float64) * 1.5).requires_grad_()
            weight = torch.randn(7, 4, 5, dtype=torch.float64)
            results = []
            for fused in (True, False):
                neuron.fused = fused
                neuron.alpha.grad, current.grad = None, None
                neuron.u_init.requires_grad_(True)
                neuron.u_init.grad = None
                spikes = neuron(current)
                (spikes * weight).sum().backward()
                results.append((spikes.detach(), current.grad.clone(), neuron.alpha.grad.clone(),
                                neuron.u_init.grad.clone()))
                neuron.u_init.requires_grad_(False)
            for a, b in zip(*results):
                torch.testing.assert_close(a, b)


def test_tanh_surrogate_is_the_derivative_of_its_primitive():
    x = torch.linspace(-2, 2, 41, dtype=torch.float64, requires_grad=True)
    alpha = torch.tensor(2.5, dtype=torch.float64, requires_grad=True)
    g = torch.randn(41, dtype=torch.float64)
    spikes = tanh_spike(x, alpha, strict=True)
    assert torch.equal(spikes, (x > 0).double())
    (spikes * g).sum().backward()
    x2 = x.detach().clone().requires_grad_()
    alpha2 = alpha.detach().clone().requires_grad_()
    ((0.5 * torch.tanh(alpha2 * x2) + 0.5) * g).sum().backward()
    torch.testing.assert_close(x.grad, x2.grad)
    torch.testing.assert_close(alpha.grad, alpha2.grad)


def test_convert_checks():
    ann = ConvertibleANN("fc16,bn", (64,), 10)
    with pytest.raises(ValueError, match="fold BatchNorm"):
        convert(ann, 4)
    relu = ConvertibleANN("fc16", (64,), 10, activation="relu")
    with pytest.raises(ValueError, match="thresholds"):
        convert(relu, 4)
    with pytest.raises(ValueError, match="need 1 thresholds"):
        convert(relu, 4, thresholds=[1.0, 2.0])
    with pytest.raises(ValueError, match="T must"):
        convert(ConvertibleANN("fc16", (64,), 10), 0)
    with pytest.raises(ValueError, match="offset"):
        ConvertedIF(1.0, (3,), offset="half")


def test_max_norm_thresholds_are_percentiles_of_positive_activations():
    torch.manual_seed(0)
    relu = ConvertibleANN("fc32,fc16", (64,), 10, activation="relu").eval()
    x = torch.rand(300, 64)
    outs = relu.layer_outputs(x)
    for pct in (99.9, 100):
        got = max_norm_thresholds(relu, x, pct, batch_size=128)
        for t, a in zip(got, outs[:-1]):
            v = a.detach().flatten().numpy()
            assert t == pytest.approx(float(np.percentile(v[v > 0], pct)), rel=1e-6)
    assert max_norm_thresholds(relu, x, 100) == pytest.approx([o.max().item() for o in outs[:-1]])


def test_max_norm_snn_approaches_the_relu_ann_for_long_T():
    torch.manual_seed(0)
    relu = ConvertibleANN("fc32,fc16", (64,), 10, activation="relu").eval()
    x = torch.rand(100, 64)
    snn = max_norm_convert(relu, x, 1024, percentile=100)
    with torch.no_grad():
        err = (snn(x) - relu(x)).abs().mean() / relu(x).abs().mean()
    assert err < 0.02
