"""Noise-based single-step training and its conversion to an N-step SNN (ALGORITHMS.md §6)."""
import argparse
import json
import math

import pytest
import torch

from trident.golden.neurons import IFNode, LIFNode, NeuronConfig, make_neuron
from trident.golden.noise import (MATCHED_SIGMA, InitialPotential, NoiseConfig, NoiseTrainConfig, NoisyNeuron,
                                  build_noisy_network, calibrate_noise, compare, firing_probability,
                                  rate_curve, single_step_potential, to_multistep)



# --- sigma = 0 is the deterministic neuron -------------------------------------------------

@pytest.mark.parametrize("kind", ["if", "lif"])
def test_sigma_zero_literal_is_the_deterministic_single_step_neuron(kind):
    cfg = NoiseConfig(kind=kind, sigma=0.0, noise_mean=0.0)
    x = torch.randn(1, 64, 10, dtype=torch.float64) * 2
    x1 = x.clone().requires_grad_()
    x2 = x.clone().requires_grad_()
    noisy = NoisyNeuron(cfg).train()
    ref = (IFNode(v_reset=None) if kind == "if" else LIFNode(v_reset=None)).double()
    s1, s2 = noisy(x1), ref(x2)
    torch.testing.assert_close(s1, s2, rtol=0, atol=0)
    g = torch.randn_like(s1)
    s1.backward(g)
    s2.backward(g)
    torch.testing.assert_close(x1.grad, x2.grad)  # the same surrogate gradient


def test_sigma_zero_with_mean_is_a_shifted_threshold():
    cfg = NoiseConfig(sigma=0.0)  # mu = V_th / 2
    u = torch.linspace(-1, 2, 301, dtype=torch.float64)
    s = NoisyNeuron(cfg).train()(u.view(1, -1))[0]
    torch.testing.assert_close(s, (u >= 0.5).double(), rtol=0, atol=0)


def test_noise_only_in_training_mode_unless_asked():
    cfg = NoiseConfig(sigma=0.5)
    x = torch.full((1, 4096), 0.4)
    neuron = NoisyNeuron(cfg)
    assert 0 < neuron.train()(x).mean() < 1
    assert neuron.eval()(x).mean() == 0.0  # deterministic: 0.4 + 0.5 < 1
    assert 0 < NoisyNeuron(cfg.with_(noise_in_eval=True)).eval()(x).mean() < 1


# --- the firing probability and the N-step rate --------------------------------------------

def test_single_step_firing_frequency_follows_the_gaussian_cdf():
    torch.manual_seed(0)
    cfg = NoiseConfig(sigma=0.3, noise_mean=0.2)
    u = torch.linspace(-0.5, 1.8, 24, dtype=torch.float64)
    x = u.view(1, 1, -1).expand(1, 20000, -1).contiguous()
    freq = NoisyNeuron(cfg).train()(x)[0].mean(0)
    expected = 0.5 * (1 + torch.erf((u + 0.2 - 1.0) / (0.3 * math.sqrt(2))))
    torch.testing.assert_close(freq, expected, rtol=0, atol=0.015)
    torch.testing.assert_close(firing_probability(cfg, u), expected)


def test_if_rate_curve_closed_form():
    cfg = NoiseConfig()  # v_init = V_th / 2
    x = torch.linspace(-0.5, 1.5, 97, dtype=torch.float64) + 1e-9
    for n in (1, 2, 8, 16):
        expected = torch.clamp(torch.floor((n * x + 0.5) / 1.0) / n, 0, 1)
        torch.testing.assert_close(rate_curve(cfg, x, n), expected, rtol=0, atol=0)


@pytest.mark.parametrize("steps", [4, 8, 16])
def test_noise_makes_the_single_step_probability_approximate_the_n_step_rate(steps):
    """The method's defining property: P(fire once, noisy) ≈ rate of the N-step soft-reset neuron."""
    cfg = NoiseConfig()  # IF, mu = V_th/2, sigma = V_th/sqrt(2 pi), v_init = V_th/2
    x = torch.linspace(-0.5, 1.5, 2001, dtype=torch.float64)
    rate = rate_curve(cfg, x, steps)
    noisy = firing_probability(cfg, single_step_potential(cfg, x))
    deterministic = firing_probability(cfg.with_(sigma=0.0), single_step_potential(cfg, x))
    gap = (noisy - rate).abs()
    gap0 = (deterministic - rate).abs()
    # The staircase of N steps is within 1/(2N) of its ramp (1/(4N) on average); the Gaussian
    # CDF is within ~0.11 of the ramp at its corners (0.03 on average).
    assert gap.mean() < 0.035 + 0.25 / steps and gap.max() < 0.12 + 0.5 / steps
    assert gap.mean() < 0.5 * gap0.mean()  # noise is what makes the match
    # The literal mu = 0 centres the probability on V_th instead of V_th / 2.
    literal = firing_probability(cfg.with_(noise_mean=0.0), single_step_potential(cfg, x))
    assert (literal - rate).abs().mean() > 2 * gap.mean()


def test_matched_sigma_matches_the_ramp_slope():
    cfg = NoiseConfig(v_threshold=2.0)
    assert cfg.sigma_value == pytest.approx(2.0 * MATCHED_SIGMA)
    u = torch.tensor([1.0 - 1e-4, 1.0 + 1e-4], dtype=torch.float64)  # centre = V_th - mu = 1
    p = firing_probability(cfg, u)
    assert float((p[1] - p[0]) / 2e-4) == pytest.approx(1 / cfg.v_threshold, rel=1e-4)


def test_calibration_for_lif_beats_the_if_defaults():
    cfg = NoiseConfig(kind="lif")
    mu, sigma = calibrate_noise(cfg, 8)
    x = torch.linspace(-1, 3, 801, dtype=torch.float64)
    rate = rate_curve(cfg, x, 8)
    u = single_step_potential(cfg, x)
    err_fit = ((firing_probability(cfg.with_(noise_mean=mu, sigma=sigma), u) - rate) ** 2).mean()
    err_default = ((firing_probability(cfg, u) - rate) ** 2).mean()
    assert err_fit < 0.5 * err_default
    assert 0 < sigma < 1 and -0.5 <= mu <= 1


# --- the conversion ------------------------------------------------------------------------

@pytest.mark.parametrize("kind,decay_input", [("if", True), ("lif", True), ("lif", False)])
def test_initial_potential_equals_starting_from_v_init(kind, decay_input):
    cfg = NeuronConfig(kind=kind, v_reset=None, decay_input=decay_input, tau=3.0)
    x = torch.randn(6, 5, 7, dtype=torch.float64)
    got = InitialPotential(make_neuron(cfg), 0.37)(x)
    v = torch.full_like(x[0], 0.37)
    expected = []
    for t in range(6):
        if kind == "if":
            h = v + x[t]
        elif decay_input:
            h = v + (x[t] - v) / 3.0
        else:
            h = v - v / 3.0 + x[t]
        s = (h >= 1.0).double()
        v = h - s
        expected.append(s)
    torch.testing.assert_close(got, torch.stack(expected), rtol=0, atol=0)


def test_to_multistep_copies_weights_and_runs_any_n():
    torch.manual_seed(0)
    cfg = NoiseConfig()
    net = build_noisy_network("fc32", (1, 8, 8), 10, cfg)
    multi = to_multistep(net, cfg)
    for (name, a), (_, b) in zip(net.named_parameters(), multi.named_parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not any(isinstance(m, NoisyNeuron) for m in multi.modules())
    assert all(m.v_init == 0.5 for m in multi.modules() if isinstance(m, InitialPotential))
    x = torch.rand(8, 1, 8, 8)
    for n in (1, 3, 16):
        assert multi(x.unsqueeze(0).expand(n, *x.shape)).shape == (8, 10)
    # At N = 1 the converted network computes what the noiseless training network computes.
    net.eval()
    torch.testing.assert_close(multi(x.unsqueeze(0)), net(x.unsqueeze(0)))


def test_compare_runs_every_variant():
    torch.manual_seed(0)
    report = compare(NoiseTrainConfig(model="fc32", epochs=2, train_limit=512, steps=(1, 4), batch_size=32,
                                      lr=3e-3))
    r = report["results"]
    assert set(r) == {"noise", "sigma0", "literal", "bptt1", "bptt4"}
    assert set(r["noise"]["accuracy"]) == {1, 4} and set(r["bptt4"]["accuracy"]) == {4}
    assert r["sigma0"]["noise"]["sigma"] == 0.0 and r["literal"]["noise"]["noise_mean"] == 0.0
    assert all(0 <= a <= 1 for v in r.values() for a in v["accuracy"].values())
    assert set(report["time_ratio_noise_vs_bptt"]) == {1, 4}
    assert r["noise"]["accuracy"][4] > 0.3


def test_cli(tmp_path, capsys):
    from trident.golden.noise.cli import add_noise_train_parser
    parser = argparse.ArgumentParser()
    add_noise_train_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["noise-train", "--model", "fc16", "--epochs", "1", "--train-limit", "128",
                              "--steps", "1,2", "--no-ablations", "--neuron", "lif", "--calibrate", "2",
                              "--report", str(tmp_path / "r.json")])
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    assert "bptt2" in out and "N=2" in out
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["config"]["noise"]["kind"] == "lif"
    with pytest.raises(SystemExit):
        parser.parse_args(["noise-train", "--steps", "0,x"])


@pytest.mark.slow
def test_noise_trained_within_two_points_of_bptt_at_eight_steps():
    report = compare(NoiseTrainConfig(model="mlp2", epochs=20, batch_size=64, steps=(8,),
                                      sigma_zero_ablation=False, literal_ablation=False))
    r = report["results"]
    assert r["noise"]["accuracy"][8] >= r["bptt8"]["accuracy"][8] - 0.02
    assert r["noise"]["train_time_s"] < r["bptt8"]["train_time_s"]
