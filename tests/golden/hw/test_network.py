"""HwExactNetwork: one training step against the float64 reference with running error
bounds (and that reference against autograd), conversion errors, determinism."""
import copy

import pytest
import torch
import torch.nn.functional as TF

pytest.importorskip("softfloatpy")

from trident.golden.hw import HwExactNetwork          # noqa: E402
from trident.golden.hw import fp16 as F               # noqa: E402
from trident.golden.hw import forward as FW           # noqa: E402
from trident.golden.hw import reference as R          # noqa: E402
from trident.golden.network import SpikingNetwork     # noqa: E402
from trident.golden.neurons import NeuronConfig       # noqa: E402


def cfg(**kw):
    base = dict(kind="lif", tau=2.0, detach_reset=True, surrogate="triangle")
    base.update(kw)
    return NeuronConfig(**base)


def tiny_mlp(seed, arch="fc10", **kw):
    torch.manual_seed(seed)
    m = SpikingNetwork(arch, (12,), 4, cfg(**kw))
    with torch.no_grad():
        for layer in m.body:                   # enough input current to make the hidden layers spike
            if hasattr(layer, "weight"):
                layer.weight.mul_(3.0)
        m.readout.weight.mul_(4.0)
    return m


def batch(seed, steps=4, n=8):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 12, generator=g)
    x[torch.rand(n, 12, generator=g) < 0.3] = 0
    return x.unsqueeze(0).repeat(steps, 1, 1), torch.randint(0, 4, (n,), generator=g)


@pytest.mark.parametrize("arch,kw", [("fc10", {}), ("fc10", dict(surrogate="rectangular")),
                                     ("fc10,fc6", dict(decay_input=False)),
                                     ("fc10", dict(kind="klif", k_init=0.75, v_reset=None))])
def test_train_step_within_bound_of_float64_reference(arch, kw):
    lr, scale = 0.5, 256.0
    for seed in range(100):            # first data/weights whose spike decisions are all decided
        model = tiny_mlp(seed % 5, arch, **kw)
        net = HwExactNetwork.from_float(model, lr=lr, loss_scale=scale)
        x, y = batch(seed)
        w_before = [w.clone() for w in net.weights]
        try:
            ref = R.reference_step(w_before, net.neuron, F.round16(x), y, scale, net.lr16)
        except R.Undecided:
            continue
        if all(L["spikes"].any() and (L["grad"].v != 0).any() for L in ref.layers):
            break                       # every layer active: a meaningful case
    else:
        pytest.fail("no decidable case")
    tr = net.step(x, y, trace=True)
    assert tr.updated
    assert R.within(tr.logits.half(), ref.logits).all()
    assert R.within(tr.grad_logits, ref.grad_logits).all()
    for lt, rl in zip(tr.layers[:-1], ref.layers):
        assert torch.equal(lt.spikes, rl["spikes"])
        for name in ("current", "potential", "surrogate", "du", "di"):
            assert R.within(getattr(lt, name), rl[name]).all(), name
        need = lt.surrogate != 0
        assert R.within(lt.ds[need], rl["ds"][need]).all()
        assert R.within(lt.grad, rl["grad"]).all()
        assert R.within(lt.weight_after, rl["weight_after"]).all()
    ro, rr = tr.layers[-1], ref.readout
    for name, key in (("current", "current"), ("v", "v"), ("di", "d_out"), ("grad", "grad"),
                      ("weight_after", "weight_after")):
        assert R.within(getattr(ro, name), rr[key]).all(), name
    # the bound is meaningful: far below the gradients it bounds
    for g in [rl["grad"] for rl in ref.layers] + [rr["grad"]]:
        assert g.e.max() < 0.1 * g.v.abs().max()
    # …and the reference is the float model's gradient: autograd in float64 from the same weights
    m64 = copy.deepcopy(model).double()
    net.copy_to(m64)                      # (already updated) – reload the pre-step weights below
    with torch.no_grad():
        for p, w in zip([m for m in m64.body if hasattr(m, "weight")] + [m64.readout], w_before):
            p.weight.copy_(w.double())
    loss = TF.cross_entropy(m64(F.round16(x).double()), y)
    loss.backward()
    lr16 = float(net.lr16)
    params = [m.weight for m in m64.body if hasattr(m, "weight")] + [m64.readout.weight]
    refs = [rl["weight_after"].v for rl in ref.layers] + [rr["weight_after"].v]
    for p, w, r in zip(params, w_before, refs):
        torch.testing.assert_close(w.double() - lr16 * p.grad, r, rtol=1e-12, atol=1e-15)
    assert abs(loss.item() - ref.loss) < 1e-12


def test_forward_trace_and_copy_to():
    model = tiny_mlp(0)
    net = HwExactNetwork.from_float(model, lr=0.1)
    x, y = batch(1)
    tr = net.step(x, y, update=False, trace=True)
    assert [lt.kind for lt in tr.layers] == ["fc", "readout"] and not tr.updated
    assert tr.layers[0].inputs.dtype == torch.float16 and tr.layers[1].inputs.dtype == torch.bool
    assert torch.equal(net.forward(x), tr.logits)
    loss, logits = net.train_step(x, y)
    assert isinstance(loss, float) and logits.dtype == torch.float32 and logits.shape == (8, 4)
    net.copy_to(model)
    assert torch.equal(model.body[0].weight, net.weights[0].float())
    assert torch.equal(model.readout.weight, net.weights[1].float())


@pytest.mark.parametrize("what,kw,arch", [
    ("detach", dict(detach_reset=False), "fc8"),
    ("surrogate", dict(surrogate="atan"), "fc8"),
    ("bn", {}, "fc8,bn"),
])
def test_unsupported_models_are_refused(what, kw, arch):
    c = cfg(**kw)
    m = SpikingNetwork(arch, (12,), 4, c)
    with pytest.raises(ValueError, match={"detach": "detach", "surrogate": "rectangular, triangle, sigmoid",
                                          "bn": "BatchNorm"}[what]):
        HwExactNetwork.from_float(m, lr=0.1)


def test_avgpool_and_bad_loss_scale_are_refused():
    m = SpikingNetwork("conv4k3,avgpool2", (1, 8, 8), 3, cfg())
    with pytest.raises(ValueError, match="AvgPool"):
        HwExactNetwork.from_float(m, lr=0.1)
    with pytest.raises(ValueError, match="power of two"):
        HwExactNetwork.from_float(tiny_mlp(0), lr=0.1, loss_scale=1000)
    net = HwExactNetwork.from_float(SpikingNetwork("fc8", (12,), 4, cfg(detach_reset=False)), lr=0.1,
                                    force_detach_reset=True)
    assert net.neuron.kind == "lif"


def test_cnn_step_uses_the_conv_kernels():
    torch.manual_seed(0)
    m = SpikingNetwork("conv4k3p1,maxpool2,conv6k3", (1, 8, 8), 3, cfg(surrogate="sigmoid"))
    with torch.no_grad():
        m.body[0].weight.mul_(4.0)
        m.body[3].weight.mul_(4.0)
    net = HwExactNetwork.from_float(m, lr=0.1)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 1, 8, 8, generator=g)
    y = torch.tensor([0, 2, 1])
    tr = net.step(x, y, trace=True)
    first, second, ro = tr.layers
    assert first.spikes.any() and second.spikes.any()
    assert first.kind == second.kind == "conv" and ro.kind == "readout"
    rows = first.inputs.reshape(6, 1, 8, 8)
    assert torch.equal(F.bits(first.current.reshape(6, 4, 8, 8)), F.bits(FW.conv2d_forward(first.weight, rows, 1, 1)))
    pooled, _ = FW.maxpool_forward(first.spikes.reshape(6, 4, 8, 8), 2)
    assert torch.equal(second.inputs.reshape(6, 4, 4, 4), pooled)
    assert all(torch.isfinite(lt.grad).all() for lt in tr.layers) and tr.updated
    # sanity (not the contract): the direction agrees with float64 autograd of the same weights
    m64 = copy.deepcopy(m).double()
    TF.cross_entropy(m64(F.round16(x).double()), y).backward()
    for lt, p in zip(tr.layers, [m64.body[0].weight, m64.body[3].weight, m64.readout.weight]):
        cos = TF.cosine_similarity(lt.grad.double().flatten(), p.grad.flatten() * net.loss_scale, dim=0)
        assert cos > 0.99


def test_one_digits_epoch_is_deterministic():
    from trident.golden.hw.measure import load_digits_split, make_model, train_hw
    data = load_digits_split()
    runs = []
    for _ in range(2):
        _, net = train_hw(make_model(0, "sigmoid"), data, 1, 0.5, 1024.0)
        runs.append([F.bits(w) for w in net.weights])
    assert all(torch.equal(a, b) for a, b in zip(*runs))


def test_wg_ablations_are_opt_in_and_fc_only():
    model = tiny_mlp(0)
    x, y = batch(2)
    exact = HwExactNetwork.from_float(copy.deepcopy(model), lr=0.1)
    f32 = HwExactNetwork.from_float(copy.deepcopy(model), lr=0.1, wg_accumulator="fp32")
    a, b = exact.step(x, y, trace=True), f32.step(x, y, trace=True)
    assert a.layers[0].grad_acc is not None and b.layers[0].grad_acc is None
    ga, gb = a.layers[0].grad.double(), b.layers[0].grad.double()
    assert 0 < (ga - gb).norm() < 1e-3 * ga.norm()        # a different (order-dependent) rounding
    with pytest.raises(ValueError, match="fully connected"):
        HwExactNetwork.from_float(SpikingNetwork("conv4k3", (1, 6, 6), 3, cfg()), lr=0.1, wg_accumulator="fp16")
    with pytest.raises(ValueError, match="layout"):
        exact.copy_to(SpikingNetwork("fc9", (12,), 4, cfg()))
