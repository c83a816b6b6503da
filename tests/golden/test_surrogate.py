import pytest
import torch

from trident.golden import surrogate


@pytest.mark.parametrize("name", surrogate.names())
@pytest.mark.parametrize("alpha", [None, 0.5, 3.0])
def test_derivative_matches_finite_differences_of_primitive(name, alpha):
    sg = surrogate.get(name, alpha=alpha)
    x = torch.linspace(-3, 3, 2001, dtype=torch.float64)
    eps = 1e-6
    numeric = (sg.primitive(x + eps) - sg.primitive(x - eps)) / (2 * eps)
    # Piecewise surrogates have kinks; central differences are exact away from them.
    edges = {"rectangular": [0.5 / sg.alpha], "triangle": [0.0, 1 / sg.alpha]}.get(name, [])
    away = torch.ones_like(x, dtype=torch.bool)
    for e in edges:
        away &= (x.abs() - e).abs() > 2 * eps
    torch.testing.assert_close(sg.derivative(x)[away], numeric[away], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", surrogate.names())
def test_primitive_is_a_step_approximation(name):
    sg = surrogate.get(name)
    assert float(sg.primitive(torch.tensor(-50.0))) < 0.01
    assert float(sg.primitive(torch.tensor(50.0))) > 0.99
    assert abs(float(sg.primitive(torch.tensor(0.0))) - 0.5) < 1e-6


def test_spike_forward_is_heaviside_and_backward_is_surrogate():
    sg = surrogate.get("sigmoid")
    x = torch.tensor([-1.0, -1e-7, 0.0, 0.3], requires_grad=True)
    s = surrogate.spike(x, sg)
    assert s.tolist() == [0.0, 0.0, 1.0, 1.0]
    s.sum().backward()
    torch.testing.assert_close(x.grad, sg.derivative(x.detach()))


def test_window_surrogates_are_exactly_zero_outside():
    x = torch.tensor([-2.0, -1.0, 1.0, 2.0])
    assert torch.count_nonzero(surrogate.get("triangle").derivative(x)) == 0
    assert torch.count_nonzero(surrogate.get("rectangular").derivative(x)) == 0


def test_hand_computed_values():
    x = torch.tensor([0.0, 0.25, -0.5])
    torch.testing.assert_close(surrogate.get("sigmoid").derivative(x[:1]), torch.tensor([1.0]))  # 4·½·½
    torch.testing.assert_close(surrogate.get("triangle").derivative(x), torch.tensor([1.0, 0.75, 0.5]))
    torch.testing.assert_close(surrogate.get("rectangular").derivative(x), torch.tensor([1.0, 1.0, 0.0]))
    torch.testing.assert_close(surrogate.get("atan").derivative(x[:1]), torch.tensor([1.0]))  # α/2


def test_unknown_name_lists_choices():
    with pytest.raises(ValueError, match="valid choices: atan, rectangular, sigmoid, triangle"):
        surrogate.get("relu")
    with pytest.raises(ValueError, match="alpha must be > 0"):
        surrogate.get("sigmoid", alpha=0)
