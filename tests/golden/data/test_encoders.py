"""Tests for trident.golden.data.encoders: direct, rate and latency encoding."""
import pytest
import torch

from trident.golden.data.encoders import (ENCODERS, direct, encode, get_encoder, latency,
                                          rate)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_shapes_and_dtype(name):
    x = torch.rand(5, 1, 8, 8, generator=gen())
    out = get_encoder(name)(x, 4, generator=gen())
    assert out.shape == (4, 5, 1, 8, 8) and out.dtype == torch.float32
    assert encode(name, x.double(), 3, generator=gen()).dtype == torch.float64


def test_direct_repeats_and_copies():
    x = torch.tensor([[0.0, 0.3], [1.0, 0.7]])
    out = direct(x, 3)
    assert all(torch.equal(out[t], x) for t in range(3))
    out[0, 0, 0] = 5
    assert x[0, 0] == 0


def test_rate_reproducible_and_mean():
    x = torch.tensor([0.0, 0.1, 0.5, 0.9, 1.0]).repeat(200)
    a, b = rate(x, 50, generator=gen(7)), rate(x, 50, generator=gen(7))
    assert torch.equal(a, b)
    assert not torch.equal(a, rate(x, 50, generator=gen(8)))
    assert set(a.unique().tolist()) <= {0.0, 1.0}
    means = a.reshape(50, 200, 5).mean(dim=(0, 1))  # 10,000 draws per probability
    assert means[0] == 0 and means[4] == 1
    assert torch.allclose(means[1:4], torch.tensor([0.1, 0.5, 0.9]), atol=0.02)


def test_rate_needs_generator_and_unit_range():
    with pytest.raises(ValueError, match="torch.Generator"):
        rate(torch.rand(3), 4)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        rate(torch.tensor([1.5]), 4, generator=gen())


def test_latency_hand_computed():
    # T = 5: step = round((1 - x) * 4): x=1 -> 0, 0.75 -> 1, 0.5 -> 2, 0.3 -> round(2.8) = 3,
    # 0.05 -> round(3.8) = 4, x=0 -> no spike.
    x = torch.tensor([1.0, 0.75, 0.5, 0.3, 0.05, 0.0])
    expected = torch.tensor([
        [1, 0, 0, 0, 0, 0],
        [0, 1, 0, 0, 0, 0],
        [0, 0, 1, 0, 0, 0],
        [0, 0, 0, 1, 0, 0],
        [0, 0, 0, 0, 1, 0],
    ], dtype=torch.float32)
    assert torch.equal(latency(x, 5), expected)
    # Halves round to even: x = 0.5, T = 4 -> 1.5 -> step 2.
    assert latency(torch.tensor([0.5]), 4)[:, 0].tolist() == [0, 0, 1, 0]
    assert latency(torch.tensor([0.2, 0.0]), 1).tolist() == [[1.0, 0.0]]


def test_unknown_encoder_lists_valid_names():
    with pytest.raises(ValueError, match="direct, rate, latency"):
        get_encoder("poisson-ish")
    with pytest.raises(ValueError, match="T must be"):
        direct(torch.rand(2), 0)
