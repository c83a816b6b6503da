"""The SGD update unit against SoftFloat (binary128 for the fused scaled update)."""
import pytest
import torch

pytest.importorskip("softfloatpy")

from trident.golden.hw import fp16 as F               # noqa: E402
from trident.golden.hw import scalar as S             # noqa: E402
from trident.golden.hw.update import sgd_update       # noqa: E402


def test_plain_and_momentum_updates_bit_exact():
    g = torch.Generator().manual_seed(0)
    w = (torch.randn(40, 30, generator=g) * 0.3).half()
    grad = (torch.randn(40, 30, generator=g) * 4).half()
    grad[0, :4] = torch.tensor([0.0, -0.0, float("inf"), 2.0 ** -24]).half()
    lr, mu = F.const(0.1), F.const(0.9)
    new, buf = sgd_update(w, grad, lr, 10)
    assert buf is None
    ref = [[S.fma_scaled(int(F.bits(lr)), gb, wb, 10) for gb, wb in zip(gr, wr)]
           for gr, wr in zip(F.bits(grad).tolist(), F.bits(w).tolist())]
    assert F.bits(new).tolist() == ref
    b0 = (torch.randn(40, 30, generator=g)).half()
    new, buf = sgd_update(w, grad, lr, 10, mu, b0)
    ref_buf = [[S.fma(int(F.bits(mu)), bb, gb) for bb, gb in zip(br, gr)]
               for br, gr in zip(F.bits(b0).tolist(), F.bits(grad).tolist())]
    assert F.bits(buf).tolist() == ref_buf
    ref = [[S.fma_scaled(int(F.bits(lr)), mb, wb, 10) for mb, wb in zip(mr, wr)]
           for mr, wr in zip(ref_buf, F.bits(w).tolist())]
    assert F.bits(new).tolist() == ref


def test_first_momentum_step_is_plain_sgd():
    w = torch.randn(5, 5).half()
    grad = torch.randn(5, 5).half()
    a, _ = sgd_update(w, grad, F.const(0.1), 3)
    b, buf = sgd_update(w, grad, F.const(0.1), 3, F.const(0.9), None)
    assert torch.equal(F.bits(a), F.bits(b)) and torch.equal(F.bits(buf), F.bits(grad))
