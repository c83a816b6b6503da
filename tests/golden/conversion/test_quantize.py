import pytest
import torch

from trident.golden.conversion import ClipActivation, quantize, round_ties


def test_round_ties_follow_the_fire_rule():
    z = torch.tensor([-0.5, 0.5, 1.5, 2.5, 0.49, 0.51, 3.0])
    assert round_ties(z, "strict").tolist() == [-1, 0, 1, 2, 0, 1, 3]  # ties down (U > θ)
    assert round_ties(z, "geq").tolist() == [0, 1, 2, 3, 0, 1, 3]  # ties up (U ≥ θ)
    with pytest.raises(ValueError, match="fire rule"):
        round_ties(z, "gt")


def test_clip_mode_is_clamped_identity():
    act = ClipActivation(theta_init=-2.0, mode="clip")  # |θ| is used
    x = torch.tensor([-1.0, 0.0, 0.7, 2.0, 3.5])
    assert act(x).tolist() == pytest.approx([0.0, 0.0, 0.7, 2.0, 2.0])


@pytest.mark.parametrize("T", [1, 2, 3, 8, 32])
@pytest.mark.parametrize("fire", ["strict", "geq"])
def test_inference_is_exactly_the_T_level_quantizer(T, fire):
    torch.manual_seed(T)
    act = ClipActivation(theta_init=2.7, mode="quant", T=T, p=0.1, fire=fire).eval()
    x = torch.randn(4000) * 3
    x[:10] = torch.arange(10) * 2.7 / (2 * T)  # exact half-levels: the ties
    y = act(x)
    assert torch.equal(y, quantize(x, act.theta, T, fire))
    levels = torch.unique(y)
    assert len(levels) <= T + 1
    k = levels.double() * T / 2.7
    assert torch.allclose(k, k.round(), atol=1e-4) and k.round().min() >= 0 and k.round().max() <= T


def test_noise_free_training_equals_inference():
    act = ClipActivation(1.5, mode="quant", T=4, p=0.0).train()
    x = torch.randn(500)
    assert torch.equal(act(x), quantize(x, 1.5, 4))


def test_noisy_training_rounds_a_fraction_1_minus_p():
    torch.manual_seed(0)
    theta, T, p = 2.0, 4, 0.3
    act = ClipActivation(theta, mode="quant", T=T, p=p).train()
    x = torch.rand(20000) * theta  # inside the clipping range
    y = act(x)
    rounded = torch.isclose(y, quantize(x, theta, T))
    kept = torch.isclose(y, x)
    assert torch.all(rounded | kept)
    frac_unrounded = (kept & ~rounded).float().mean().item()
    exact_levels = (torch.isclose(x, quantize(x, theta, T))).float().mean().item()
    assert frac_unrounded == pytest.approx(p * (1 - exact_levels), abs=0.02)
    # p = 1: no rounding at all, the clip activation
    act.configure(p=1.0)
    assert torch.allclose(act(x), x)


def test_straight_through_gradients():
    theta, T = 2.0, 4
    act = ClipActivation(theta, mode="quant", T=T, p=0.0).train()
    x = torch.tensor([0.3, 1.1, 1.9, -0.7, 5.0], requires_grad=True)
    act(x).sum().backward()
    # x: identity inside the range, zero where clamped
    assert x.grad.tolist() == [1.0, 1.0, 1.0, 0.0, 0.0]
    # θ: (round(z) − z)/T inside the range (the quantization error), 1 where clipped at θ
    z = x.detach() * T / theta
    inside = (round_ties(z) - z) / T
    expected = inside[:3].sum() + 1.0
    assert act.theta.grad.item() == pytest.approx(expected.item(), abs=1e-6)


def test_configure_validates():
    act = ClipActivation()
    with pytest.raises(ValueError, match="mode"):
        act.configure(mode="gelu")
    with pytest.raises(ValueError, match="T must"):
        act.configure(T=0)
    with pytest.raises(ValueError, match="p must"):
        act.configure(p=1.5)
