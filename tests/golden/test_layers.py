import pytest
import torch
from torch import nn

from trident.golden import layers


def spikes(*shape, density=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(*shape, generator=g) < density).to(torch.float64)


@pytest.mark.parametrize("make,plain,shape", [
    (lambda: layers.Linear(12, 5, bias=False), lambda m: nn.functional.linear(*m), (4, 3, 12)),
    (lambda: layers.Conv2d(2, 3, 3, stride=2, padding=1, bias=False),
     lambda m: nn.functional.conv2d(m[0], m[1], None, 2, 1), (4, 3, 2, 9, 9)),
])
def test_spike_input_layers_match_plain_layers(make, plain, shape):
    layer = make().double()
    x = spikes(*shape)
    reference_in = x.clone().requires_grad_()
    steps, batch = shape[:2]
    reference = plain((reference_in.reshape(steps * batch, *shape[2:]), layer.weight))
    reference = reference.reshape(steps, batch, *reference.shape[1:])
    layer.spike_input = True
    x_in = x.clone().requires_grad_()
    out = layer(x_in)
    torch.testing.assert_close(out, reference)
    grad = torch.randn_like(out)
    (out * grad).sum().backward()
    w_grad = layer.weight.grad.clone()
    layer.weight.grad = None
    (reference * grad).sum().backward()
    torch.testing.assert_close(x_in.grad, reference_in.grad)
    torch.testing.assert_close(w_grad, layer.weight.grad)


def test_spike_max_pool_routes_gradient_like_plain_pool():
    x = spikes(2, 3, 4, 6, 6, density=0.5)
    pool = layers.MaxPool2d(2)
    pool.spike_input = True
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    out = pool(a)
    reference = nn.functional.max_pool2d(b.reshape(6, 4, 6, 6), 2).reshape(out.shape)
    assert torch.equal(out, reference)
    grad = torch.randn_like(out)
    (out * grad).sum().backward()
    (reference * grad).sum().backward()
    assert torch.equal(a.grad, b.grad)


def test_spike_input_keeps_one_byte_per_spike():
    layer = layers.Linear(100, 10, bias=False)
    layer.spike_input = True
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        layer(spikes(4, 8, 100).float().requires_grad_())
    assert any(t.dtype == torch.bool and t.numel() == 3200 for t in saved)
    assert not any(t.dtype == torch.float32 and t.numel() == 3200 for t in saved)


def test_flatten_and_readout():
    x = torch.rand(5, 2, 3, 4, 4)
    assert layers.Flatten()(x).shape == (5, 2, 48)
    readout = layers.Readout(48, 7)
    torch.testing.assert_close(readout(layers.Flatten()(x)), layers.Flatten()(x).mean(0) @ readout.weight.T)
