import itertools
import math

import pytest
import torch

from trident.golden.neurons import IFNode, KLIFNode, LIFNode, NeuronConfig, make_neuron


def run(node, xs):
    x = torch.tensor(xs, dtype=torch.float64).reshape(-1, 1)
    trace = node.double().trace(x)
    return trace.s.flatten().tolist(), trace.h.flatten().tolist(), trace.v.flatten().tolist()


X = [1.5, 0.5, 1.5, 0.0, 2.0]


def test_lif_decay_input_hard_reset():
    s, h, v = run(LIFNode(tau=2.0), X)
    assert h == [0.75, 0.625, 1.0625, 0.0, 1.0]
    assert s == [0, 0, 1, 0, 1]  # fires at exactly V_th too
    assert v == [0.75, 0.625, 0.0, 0.0, 0.0]


def test_lif_decay_input_soft_reset():
    s, h, v = run(LIFNode(tau=2.0, v_reset=None), X)
    assert h == [0.75, 0.625, 1.0625, 0.03125, 1.015625]
    assert s == [0, 0, 1, 0, 1]
    assert v == [0.75, 0.625, 0.0625, 0.03125, 0.015625]


def test_lif_without_decay_input():
    s, h, v = run(LIFNode(tau=2.0, decay_input=False), X)
    assert h == [1.5, 0.5, 1.75, 0.0, 2.0]
    assert s == [1, 0, 1, 0, 1]


def test_lif_nonzero_reset_potential_is_the_resting_potential():
    s, h, v = run(LIFNode(tau=2.0, v_reset=-0.5), [2.0, 0.0, 4.0])
    assert h == [0.5, 0.0, 1.75]
    assert s == [0, 0, 1]
    assert v == [0.5, 0.0, -0.5]


def test_if_hard_and_soft():
    assert run(IFNode(), [0.4] * 4)[0] == [0, 0, 1, 0]
    s, h, v = run(IFNode(v_reset=None), [0.5] * 4)
    assert s == [0, 1, 0, 1]
    assert v == [0.5, 0.0, 0.5, 0.0]


def test_klif_scales_then_rectifies_and_resets_the_scaled_potential():
    s, h, v = run(KLIFNode(tau=2.0, k_init=2.0), [0.6, -1.0, 0.6, 1.4])
    assert s == [0, 0, 0, 1]
    assert [round(x, 12) for x in h] == [0.3, -0.2, 0.3, 1.0]
    assert [round(x, 12) for x in v] == [0.6, 0.0, 0.6, 0.0]
    s, _, v = run(KLIFNode(tau=2.0, k_init=2.0, v_reset=None), [0.6, -1.0, 0.6, 1.4])
    assert [round(x, 12) for x in v] == [0.6, 0.0, 0.6, 1.0]


def sigmoid_h(x, alpha=4.0):
    sg = 1 / (1 + math.exp(-alpha * x))
    return alpha * sg * (1 - sg)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("detach", [False, True])
def test_gradient_through_reset_hand_computed(fused, detach):
    node = IFNode(detach_reset=detach, fused=fused).double()
    x = torch.tensor([[1.2], [0.5]], dtype=torch.float64, requires_grad=True)
    node(x).sum().backward()
    # S1 = 1 resets V1 = H1(1-S1); dV1/dS1 = V_reset - H1 = -1.2 unless detached, dV1/dH1 = 0.
    via_reset = 0.0 if detach else -1.2 * sigmoid_h(-0.5)
    expected = [sigmoid_h(0.2) * (1 + via_reset), sigmoid_h(-0.5)]
    torch.testing.assert_close(x.grad.flatten(), torch.tensor(expected, dtype=torch.float64))


def test_klif_k_gradient_hand_computed():
    node = KLIFNode(tau=2.0, k_init=1.5).double()
    x = torch.tensor([[0.8]], dtype=torch.float64)
    node(x).sum().backward()
    h = 0.4  # H = x / τ; dS/dk = h(kH − V_th) · H · 1[kH > 0]
    torch.testing.assert_close(node.k.grad, torch.tensor(sigmoid_h(1.5 * h - 1.0) * h, dtype=torch.float64))


CASES = list(itertools.product(["if", "lif", "klif"], [0.0, None, -0.3], [True, False], [False, True],
                               ["sigmoid", "atan", "rectangular", "triangle"]))


@pytest.mark.parametrize("kind,v_reset,decay_input,detach,surrogate", CASES)
def test_fused_equals_stepwise(kind, v_reset, decay_input, detach, surrogate):
    cfg = NeuronConfig(kind=kind, tau=1.7, v_reset=v_reset, decay_input=decay_input, detach_reset=detach,
                       surrogate=surrogate, k_init=0.8)
    fused, stepwise = make_neuron(cfg, fused=True).double(), make_neuron(cfg, fused=False).double()
    generator = torch.Generator().manual_seed(len(str(cfg)))
    x = torch.randn(8, 4, 6, dtype=torch.float64, generator=generator) * 1.5
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    sa, sb = fused(xa), stepwise(xb)
    assert torch.equal(sa, sb)
    grad = torch.randn(sa.shape, dtype=torch.float64, generator=generator)
    (sa * grad).sum().backward()
    (sb * grad).sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-12, atol=1e-12)
    if kind == "klif":
        torch.testing.assert_close(fused.k.grad, stepwise.k.grad, rtol=1e-12, atol=1e-12)


def test_no_state_carries_between_calls():
    node = LIFNode()
    x = torch.full((3, 2), 1.5)
    assert torch.equal(node(x), node(x))


def test_bad_configuration_is_rejected():
    with pytest.raises(ValueError, match="valid choices: if, lif, klif"):
        NeuronConfig(kind="izhikevich")
    with pytest.raises(ValueError, match="tau must be > 1"):
        LIFNode(tau=0.5)
    with pytest.raises(ValueError, match="unknown surrogate"):
        LIFNode(surrogate_function="nope")
    with pytest.raises(ValueError, match=r"expects a sequence \[T, N, ...\]"):
        LIFNode()(torch.ones(3))
