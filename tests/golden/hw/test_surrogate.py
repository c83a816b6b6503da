"""The surrogate unit: bit-exact against the SoftFloat scalar spec, exhaustively over all inputs."""
import math

import pytest
import torch

pytest.importorskip("softfloatpy")

from trident.golden import surrogate as float_surrogates   # noqa: E402
from trident.golden.hw import fp16 as F                     # noqa: E402
from trident.golden.hw import scalar as S                   # noqa: E402
from trident.golden.hw import surrogate as HS               # noqa: E402

ALL = F.from_bits(torch.arange(1 << 16, dtype=torch.int32))


@pytest.mark.parametrize("name,alpha", [("rectangular", 1.0), ("triangle", 1.0), ("sigmoid", 4.0),
                                        ("sigmoid", 2.5), ("triangle", 3.0)])
def test_exhaustive_against_softfloat(name, alpha):
    sg = HS.make(name, alpha)
    got = F.bits(sg(ALL)).tolist()
    regs = sg.registers()
    step = 1 if name == "sigmoid" and alpha == 4.0 else 13      # one exhaustive sweep is enough
    ref = [S.surrogate(name, regs, b) for b in range(0, 1 << 16, step)]
    assert got[::step] == ref


def test_sigmoid_table_accuracy():
    """The 64-segment table stays within 3.5e-4·α of the exact α σ(αx)(1 − σ(αx))."""
    for alpha in (1.0, 4.0, 8.0):
        sg = HS.make("sigmoid", alpha)
        x = ALL[torch.isfinite(ALL)]
        x = x[x.float().abs() < 20]
        exact = float_surrogates.get("sigmoid", alpha=alpha).derivative(x.double())
        err = (sg(x).double() - exact).abs().max().item()
        assert err <= 3.5e-4 * alpha, (alpha, err)


@pytest.mark.parametrize("name,alpha", [("rectangular", 1.0), ("triangle", 1.0), ("triangle", 2.0)])
def test_window_surrogates_are_the_float_ones_up_to_one_rounding(name, alpha):
    sg = HS.make(name, alpha)
    x = ALL[torch.isfinite(ALL)]
    exact = float_surrogates.get(name, alpha=alpha).derivative(x.double())
    got = sg(x).double()
    assert ((got - exact).abs() <= F.U * exact.abs() + F.ETA).all()
    assert ((got == 0) == (exact == 0)).float().mean() > 0.999       # the same zero window


def test_unsupported_surrogate_names_the_supported_ones():
    with pytest.raises(ValueError, match="rectangular, triangle, sigmoid"):
        HS.make("atan", 2.0)


def test_registers_are_bit_patterns():
    regs = HS.make("sigmoid", 4.0).registers()
    assert regs["alpha"] == 0x4400 and len(regs["slope"]) == 64 and len(regs["intercept"]) == 64
    assert all(0 <= b < 1 << 16 for b in regs["slope"] + regs["intercept"])
    # f(0)·α = 1 at the centre, and h(8/α) = 0 (continuous cut-off)
    assert math.isclose(float(HS.make("sigmoid", 4.0)(F.const(0.0).reshape(1))), 1.0)
