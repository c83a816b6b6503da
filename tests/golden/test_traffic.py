"""The GPU BPTT traffic counter: closed-form checks on the phases it can be checked on."""
import torch

from trident.golden.network import SpikingNetwork
from trident.golden.neurons import NeuronConfig
from trident.golden.traffic import gpu_bptt_traffic



def _count(steps, batch=16, arch="mlp-small"):
    torch.manual_seed(0)
    model = SpikingNetwork(arch, (1, 8, 8), 10, NeuronConfig(kind="lif"))
    x = torch.rand(steps, batch, 1, 8, 8)
    y = torch.randint(0, 10, (batch,))
    return model, gpu_bptt_traffic(model, x, y)


def test_update_reads_and_writes_every_parameter_as_sgd_momentum_does():
    model, count = _count(4)
    params = sum(p.numel() * 4 for p in model.parameters())
    # buf = buf·μ + g (reads buf, g; writes buf), then w = w − lr·buf (reads w, buf; writes w)
    assert count.read["update"] == 5 * params
    assert count.written["update"] == 3 * params


def test_every_further_step_adds_the_same_traffic_and_weights_do_not_grow():
    """Per-step tensors: from the second step on each step adds the same operators, so the
    count is affine in T (no quadratic gradient accumulation over the sequence)."""
    counts = {steps: _count(steps)[1] for steps in (2, 3, 4)}
    for phase in ("forward", "backward"):
        total = {k: c.read[phase] + c.written[phase] for k, c in counts.items()}
        assert total[4] - total[3] == total[3] - total[2] > 0, phase
    assert counts[2].read["update"] == counts[4].read["update"]


def test_the_per_step_path_is_counted_and_the_model_is_restored():
    model, count = _count(4)
    assert all(m.fused for m in model.modules() if hasattr(m, "fused"))
    # the per-step loop: several operators per neuron step (charge, threshold, reset, ...)
    assert count.ops["forward"] > 4 * 2 * 3
    assert count.total == sum(count.read.values()) + sum(count.written.values())
    assert count.as_dict()["fp16_bound_bytes"] == count.total // 2
