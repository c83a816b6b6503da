"""WG engine: the exact accumulator against Python integers, order/chunk independence,
specials, and its single rounding."""
import pytest
import torch

pytest.importorskip("softfloatpy")

from trident.golden.hw import fp16 as F               # noqa: E402
from trident.golden.hw import gradient as G           # noqa: E402
from trident.golden.hw import scalar as S             # noqa: E402


def gen(seed):
    return torch.Generator().manual_seed(seed)


def grads(shape, seed, zero_frac=0.3):
    g = gen(seed)
    mag = torch.exp(torch.randn(*shape, generator=g) * 4 - 8)         # spans normals and subnormals
    d = (mag * torch.randn(*shape, generator=g).sign()).half()
    d[torch.rand(*shape, generator=g) < zero_frac] = 0
    return d


def bits_list(x):
    return F.bits(x).tolist()


@pytest.mark.parametrize("mac", [False, True])
def test_fc_weight_grad_exact_against_scalar(mac):
    d = grads((40, 6), 1)
    if mac:
        x = torch.rand(40, 7, generator=gen(2)).half()
        x[torch.rand(40, 7, generator=gen(3)) < 0.3] = 0
    else:
        x = torch.rand(40, 7, generator=gen(2)) < 0.5
    got = G.fc_weight_grad(d, x).to_fp16()
    ref = S.fc_weight_grad(bits_list(d), bits_list(x) if mac else x.int().tolist(), mac)
    assert bits_list(got) == ref


def test_specials_follow_the_rule():
    d = grads((6, 4), 4, zero_frac=0.0)
    d[0, 0], d[1, 1], d[2, 1], d[3, 2], d[4, 3] = float("inf"), float("inf"), float("-inf"), float("nan"), 65504
    d[5, 3] = 65504
    x = torch.ones(6, 3, dtype=torch.bool)
    got = G.fc_weight_grad(d, x).to_fp16()
    assert bits_list(got) == S.fc_weight_grad(bits_list(d), x.int().tolist(), False)
    assert torch.isinf(got[0]).all() and torch.isnan(got[1:3]).all() and torch.isinf(got[3]).all()


@pytest.mark.parametrize("mac", [False, True])
def test_order_and_chunking_do_not_matter(mac):
    d = grads((256, 32), 5)
    x = torch.rand(256, 20, generator=gen(6)).half() if mac else torch.rand(256, 20, generator=gen(6)) < 0.3
    whole = G.fc_weight_grad(d, x)
    perm = torch.randperm(256, generator=gen(7))
    shuffled = G.fc_weight_grad(d[perm], x[perm])
    parts = [G.fc_weight_grad(d[a:a + 37], x[a:a + 37]) for a in range(0, 256, 37)]   # "cores"
    merged = parts[0]
    for p in parts[1:]:
        merged = merged + p
    for other in (shuffled, merged):
        assert torch.equal(whole.acc, other.acc)
        assert torch.equal(F.bits(whole.to_fp16()), F.bits(other.to_fp16()))


def test_accumulator_is_exact_under_cancellation():
    # 65504 − 65504 + many subnormals: a float accumulator of any width below 64 bits loses them
    d = torch.tensor([[65504.0], [-65504.0]] + [[2.0 ** -24]] * 3000).half()
    x = torch.ones(d.shape[0], 1, dtype=torch.bool)
    g = G.fc_weight_grad(d, x)
    assert int(g.acc) == 3000
    assert float(g.to_fp16()) == float(F.const(3000 * 2.0 ** -24))


def test_conv_weight_grad_exact():
    d = grads((3, 2, 4, 4), 8)
    x = torch.rand(3, 3, 5, 5, generator=gen(9)) < 0.5
    for inputs, stride, pad in ((x, 1, 0), (x, 2, 2), (torch.rand(3, 3, 5, 5, generator=gen(10)).half(), 1, 0)):
        k = 2 if stride == 1 else 3
        ho = (5 + 2 * pad - k) // stride + 1
        di = d[:, :, :ho, :ho].contiguous() if ho <= 4 else grads((3, 2, ho, ho), 11)
        got = G.conv2d_weight_grad(di, inputs, k, stride, pad).to_fp16()
        mac = inputs.dtype != torch.bool
        xp = torch.nn.functional.pad(inputs.double(), (pad,) * 4)
        for co in range(2):
            for c in range(3):
                for ky in range(k):
                    for kx in range(k):
                        terms = []
                        for r in range(3):
                            for y in range(ho):
                                for xx in range(ho):
                                    dv = float(di[r, co, y, xx])
                                    xv = float(xp[r, c, y * stride + ky, xx * stride + kx])
                                    if dv != 0 and xv != 0:
                                        db = int(F.bits(di[r, co, y, xx]))
                                        terms.append(S.mul(db, S.from_float(xv)) if mac else db)
                        assert int(F.bits(got[co, c, ky, kx])) == S.exact_sum_round(terms)


def test_sequential_ablations_are_not_exact():
    d = grads((256, 16), 12)
    x = torch.rand(256, 16, generator=gen(13)) < 0.5
    exact = G.fc_weight_grad(d, x)
    f16 = G.sequential_fc_weight_grad(d, x, "fp16")
    f32 = G.sequential_fc_weight_grad(d, x, "fp32")
    err16 = (f16.double() - exact.value()).abs().max()
    err32 = (f32.double() - exact.value()).abs().max()
    assert err32 <= err16 and err16 > 0
