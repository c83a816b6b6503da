"""BP engine: transposed products bit-exact against the SoftFloat scalar spec, lane-count
independence, dual-sparsity masking, max-pool routing, and the accumulation bound."""
import pytest
import torch

pytest.importorskip("softfloatpy")

from trident.golden.hw import backward as B           # noqa: E402
from trident.golden.hw import fp16 as F               # noqa: E402
from trident.golden.hw import forward as FW           # noqa: E402
from trident.golden.hw import reference as R          # noqa: E402
from trident.golden.hw import scalar as S             # noqa: E402


def gen(seed):
    return torch.Generator().manual_seed(seed)


def grads(shape, seed, zero_frac=0.5, scale=1e-3):
    g = gen(seed)
    d = (torch.randn(*shape, generator=g) * scale).half()
    d[torch.rand(*shape, generator=g) < zero_frac] = 0
    return d


def weights(shape, seed):
    return (torch.randn(*shape, generator=gen(seed)) * 0.5).half()


def bits_list(x):
    return F.bits(x).tolist()


def test_fc_backward_bit_exact_lanes_and_need_mask():
    w = weights((9, 7), 1)
    d = grads((6, 9), 2, scale=1e-4)            # many products land in the subnormal range
    got = B.fc_backward(w, d)
    assert bits_list(got) == S.fc_backward(bits_list(w), bits_list(d))
    assert torch.equal(F.bits(got), F.bits(B.fc_backward(w, d, lanes=2)))
    need = torch.rand(6, 7, generator=gen(3)) < 0.5
    masked = B.fc_backward(w, d, need)
    assert torch.equal(F.bits(masked[need]), F.bits(got[need])) and (F.bits(masked[~need]) == 0).all()


def test_fc_backward_within_bound():
    w = weights((120, 50), 4)
    d = grads((40, 120), 5)
    got = B.fc_backward(w, d)
    exact = d.double() @ w.double()
    k = (d != 0).sum(1, keepdim=True).double()
    gam = k * F.U / (1 - k * F.U)
    bound = gam * (d.double().abs() @ w.double().abs()) + (1 + gam) * k * F.ETA
    assert ((got.double() - exact).abs() <= bound).all()
    assert R.within(got, R.fc_backward(w, R.Approx.exact(d))).all()


@pytest.mark.parametrize("stride,padding", [(1, 0), (2, 1), (1, 1), (3, 2)])
def test_conv_backward_bit_exact_against_scalar(stride, padding):
    w = weights((3, 2, 3, 3), 6)
    h, wd = 7, 6
    ho, wo = FW.conv_output_size(h, 3, stride, padding), FW.conv_output_size(wd, 3, stride, padding)
    d = grads((2, 3, ho, wo), 7, zero_frac=0.3)
    got = B.conv2d_backward(w, d, (2, h, wd), stride, padding)
    ref = S.conv_backward(bits_list(w), bits_list(d), (h, wd), stride, padding)
    assert bits_list(got) == ref
    assert torch.equal(F.bits(got), F.bits(B.conv2d_backward(w, d, (2, h, wd), stride, padding, lanes=1)))


def test_conv_backward_within_bound():
    w = weights((6, 4, 3, 3), 8)
    d = grads((8, 6, 9, 9), 9)
    got = B.conv2d_backward(w, d, (4, 9, 9), 1, 1).double()
    ct = torch.nn.functional.conv_transpose2d
    exact = ct(d.double(), w.double(), padding=1)
    k = ct((d != 0).double(), torch.ones_like(w.double()), padding=1)[:, :1]
    gam = k * F.U / (1 - k * F.U)
    bound = gam * ct(d.double().abs(), w.double().abs(), padding=1) + (1 + gam) * k * F.ETA
    assert ((got - exact).abs() <= bound).all()


def test_maxpool_backward_routes_like_torch():
    s = torch.rand(2, 3, 6, 6, generator=gen(10)) < 0.3
    pooled, first = FW.maxpool_forward(s, 2)
    d = grads((2, 3, 3, 3), 11, zero_frac=0.0)
    got = B.maxpool_backward(d, first, 2, (3, 6, 6))
    x = s.double().requires_grad_(True)
    torch.nn.functional.max_pool2d(x, 2).backward(d.double())
    assert torch.equal(got.double(), x.grad)


def test_readout_backward_is_the_same_every_step():
    w = weights((10, 12), 12)
    g = grads((5, 10), 13, zero_frac=0.2, scale=1.0)
    inv_t = F.const(1 / 8)
    d_out, ds = B.readout_backward(w, g, inv_t, 8)
    assert torch.equal(F.bits(d_out), F.bits(F.mul(g, inv_t.expand_as(g))))
    ref = S.fc_backward(bits_list(w), bits_list(d_out))
    assert all(bits_list(ds[t]) == ref for t in range(8))
