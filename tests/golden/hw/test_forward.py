"""FP engine: bit-exact against the SoftFloat scalar spec, sparse = dense, lane-count
independence, and the a-priori accumulation bound against float64."""
import pytest
import torch

pytest.importorskip("softfloatpy")

from trident.golden.hw import fp16 as F               # noqa: E402
from trident.golden.hw import forward as FW           # noqa: E402
from trident.golden.hw import reference as R          # noqa: E402
from trident.golden.hw import scalar as S             # noqa: E402


def gen(seed):
    return torch.Generator().manual_seed(seed)


def spikes(shape, density, seed):
    return torch.rand(*shape, generator=gen(seed)) < density


def analog(shape, seed, zero_frac=0.4):
    g = gen(seed)
    x = torch.rand(*shape, generator=g).half()
    x[torch.rand(*shape, generator=g) < zero_frac] = 0
    return x


def weights(shape, seed, scale=0.5):
    return (torch.randn(*shape, generator=gen(seed)) * scale).half()


def bits_list(x):
    return F.bits(x).tolist()


@pytest.mark.parametrize("mac", [False, True])
def test_fc_bit_exact_against_scalar(mac):
    w = weights((7, 11), 1)
    w[2, 3] = F.from_bits(torch.tensor(0x0001, dtype=torch.int32))     # a subnormal weight
    w[4, 0] = -0.0
    x = analog((6, 11), 2) if mac else spikes((6, 11), 0.4, 2)
    got = FW.fc_forward(w, x)
    ref = S.fc_forward(bits_list(w), bits_list(x) if mac else x.int().tolist(), mac)
    assert bits_list(got) == ref


def test_fc_specials_propagate_canonically():
    w = weights((5, 6), 3)
    w[1, 2] = float("inf")
    w[3, 4] = float("nan")
    s = spikes((4, 6), 0.5, 4)
    s[:, 2] = True
    got = FW.fc_forward(w, s)
    assert bits_list(got) == S.fc_forward(bits_list(w), s.int().tolist(), False)
    x = analog((4, 6), 5)
    x[0, 1] = float("inf")
    assert bits_list(FW.fc_forward(w, x)) == S.fc_forward(bits_list(w), bits_list(x), True)


def test_sparse_skipping_equals_dense_evaluation():
    w = weights((33, 50), 6, scale=2.0)
    s = spikes((20, 50), 0.2, 7)
    got = FW.fc_forward(w, s)
    acc = F.zeros(20, 33)
    for i in range(50):                       # dense: add s·W for every input, zeros included
        acc = F.add(acc, F.mul(s[:, i:i + 1].half().expand(20, 33), w[:, i].expand(20, 33)))
    assert torch.equal(F.bits(got), F.bits(acc))
    # MAC mode: the dense fma chain differs at most in the sign of a zero (an underflowed product)
    x = analog((20, 50), 8)
    got = FW.fc_forward(w, x)
    acc = F.zeros(20, 33)
    for i in range(50):
        acc = F.fma(w[:, i].expand(20, 33), x[:, i:i + 1].expand(20, 33), acc)
    assert torch.equal(got, acc) and torch.equal(F.bits(got)[got != 0], F.bits(acc)[acc != 0])


@pytest.mark.parametrize("mac", [False, True])
def test_result_is_independent_of_lane_count(mac):
    w = weights((37, 40), 9)
    x = analog((16, 40), 10) if mac else spikes((16, 40), 0.3, 10)
    outs = [F.bits(FW.fc_forward(w, x, lanes=k)) for k in (None, 1, 4, 16)]
    assert all(torch.equal(outs[0], o) for o in outs[1:])


@pytest.mark.parametrize("mac", [False, True])
def test_fc_within_apriori_bound(mac):
    """|Î − I| ≤ γ_K Σ|W x| + (1+γ_K)·K·η, K the number of active inputs (numerics.md §9)."""
    w = weights((64, 200), 11)
    x = analog((32, 200), 12) if mac else spikes((32, 200), 0.3, 12)
    got = FW.fc_forward(w, x).double()
    xd = x.double()
    exact = xd @ w.double().t()
    k = (x != 0).sum(1, keepdim=True).double()
    gam = k * F.U / (1 - k * F.U)
    bound = gam * (xd.abs() @ w.double().abs().t()) + ((1 + gam) * k * F.ETA if mac else 0)
    assert ((got - exact).abs() <= bound).all()
    running = R.fc_forward(w, R.Approx.exact(x) if mac else x)      # the tighter running bound
    assert R.within(FW.fc_forward(w, x), running).all() and (running.e <= bound + 1e-12).all()


@pytest.mark.parametrize("stride,padding,mac", [(1, 0, False), (2, 1, False), (2, 1, True), (1, 2, True)])
def test_conv_bit_exact_against_scalar(stride, padding, mac):
    w = weights((3, 2, 3, 3), 13)
    x = analog((2, 2, 6, 5), 14) if mac else spikes((2, 2, 6, 5), 0.4, 14)
    got = FW.conv2d_forward(w, x, stride, padding)
    ref = S.conv_forward(bits_list(w), bits_list(x) if mac else x.int().tolist(), stride, padding, mac)
    assert bits_list(got) == ref
    lanes = FW.conv2d_forward(w, x, stride, padding, lanes=1)
    assert torch.equal(F.bits(got), F.bits(lanes))


def test_conv_within_apriori_bound():
    w = weights((8, 4, 3, 3), 15)
    s = spikes((16, 4, 10, 10), 0.3, 16)
    got = FW.conv2d_forward(w, s, 1, 1).double()
    conv = torch.nn.functional.conv2d
    exact = conv(s.double(), w.double(), padding=1)
    k = conv(s.double(), torch.ones_like(w.double()[:1]), padding=1)       # active inputs per output
    bound = k * F.U / (1 - k * F.U) * conv(s.double(), w.double().abs(), padding=1)
    assert ((got - exact).abs() <= bound).all()


def test_maxpool_is_or_with_first_winner():
    s = spikes((3, 2, 6, 7), 0.3, 17)
    pooled, first = FW.maxpool_forward(s, 2)
    ref, idx = torch.nn.functional.max_pool2d(s.double(), 2, return_indices=True)
    assert torch.equal(pooled, ref > 0)
    # torch's flat index of the winner, back to the in-window raster position
    wy, wx = idx // 7, idx % 7
    oy = torch.arange(3).view(1, 1, 3, 1)
    ox = torch.arange(3).view(1, 1, 1, 3)
    assert torch.equal(first, (wy - 2 * oy) * 2 + (wx - 2 * ox))


def test_readout_bit_exact_against_scalar():
    w = weights((4, 9), 18)
    s = spikes((3, 5, 9), 0.4, 19)
    inv_t = F.const(1 / 3)
    cur, v, logits = FW.readout_forward(w, s, inv_t)
    ref_cur = S.fc_forward(bits_list(w), s.reshape(15, 9).int().tolist(), False)
    assert bits_list(cur.reshape(15, 4)) == ref_cur
    for n in range(5):
        for c in range(4):
            acc = S.ZERO
            for t in range(3):
                acc = S.add(acc, ref_cur[t * 5 + n][c])
            assert int(F.bits(v[n, c])) == acc
            assert int(F.bits(logits[n, c])) == S.mul(acc, int(F.bits(inv_t)))
