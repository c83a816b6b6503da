"""The C++ neuron kernels (trident.golden.kernels) against the PyTorch paths.

- C++ fused path == per-step autograd path for every option combination: spikes exactly,
  input and k gradients to 1e-12 in float64; spikes and charged potentials bit-identical
  in float32 too (inputs on a coarse grid hit the threshold exactly, so any change in the
  order or precision of the charge shows up).
- The PyTorch fused path (TRIDENT_NO_CPP_KERNELS=1) stays correct and is really used.
- A failed build warns once and falls back (subprocess with a missing compiler).
"""
import contextlib
import itertools
import os
import subprocess
import sys
import textwrap
from pathlib import Path
import warnings

import pytest
import torch

from trident.golden import kernels
from trident.golden import surrogate as surrogates
from trident.golden.neurons import NeuronConfig, make_neuron

CPP = pytest.mark.skipif(kernels.disabled() or not kernels.load(),
                         reason=f"C++ kernels unavailable: {kernels.build_info().get('error')}")

KINDS = ["if", "lif", "klif"]
RESETS = [0.0, None, -0.3]
SURROGATES = ["sigmoid", "atan", "rectangular", "triangle"]
CASES = list(itertools.product(KINDS, RESETS, [True, False], [False, True], SURROGATES))


def config(kind, v_reset, decay_input, detach, surrogate, **extra):
    fields = dict(kind=kind, tau=1.7, v_reset=v_reset, decay_input=decay_input, detach_reset=detach,
                  surrogate=surrogate, k_init=0.8)
    fields.update(extra)
    return NeuronConfig(**fields)


@pytest.fixture
def path(request, monkeypatch):
    """Select the fused path: "cpp" (skipped when it cannot be built) or "python"."""
    if request.param == "cpp":
        if kernels.disabled() or not kernels.load():
            pytest.skip(f"C++ kernels unavailable: {kernels.build_info().get('error')}")
        monkeypatch.delenv(kernels.DISABLE_ENV, raising=False)
    else:
        monkeypatch.setenv(kernels.DISABLE_ENV, "1")
    return request.param


def fused_and_stepwise(cfg, dtype):
    fused = make_neuron(cfg, fused=True).to(dtype)
    stepwise = make_neuron(cfg, fused=False).to(dtype)
    return fused, stepwise


def compare(cfg, x, path, grad_tol):
    fused, stepwise = fused_and_stepwise(cfg, x.dtype)
    assert kernels.neuron_supported(x, fused.k, cfg, fused.surrogate_function) == (path == "cpp")
    generator = torch.Generator().manual_seed(7)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    sa, sb = fused(xa), stepwise(xb)
    assert sa.dtype == x.dtype and sa.shape == x.shape
    assert torch.equal(sa, sb)
    grad = torch.randn(sa.shape, generator=generator).to(x.dtype)
    (sa * grad).sum().backward()
    (sb * grad).sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad, rtol=grad_tol, atol=grad_tol)
    if cfg.kind == "klif":
        torch.testing.assert_close(fused.k.grad, stepwise.k.grad, rtol=grad_tol, atol=grad_tol)
    return sa, xa.grad


@pytest.mark.parametrize("path", ["cpp", "python"], indirect=True)
@pytest.mark.parametrize("kind,v_reset,decay_input,detach,surrogate", CASES)
def test_fused_equals_stepwise_float64(path, kind, v_reset, decay_input, detach, surrogate):
    cfg = config(kind, v_reset, decay_input, detach, surrogate)
    generator = torch.Generator().manual_seed(len(str(cfg)))
    x = torch.randn(8, 4, 6, dtype=torch.float64, generator=generator) * 1.5
    compare(cfg, x, path, 1e-12)


@contextlib.contextmanager
def force_baseline(on):
    torch.ops.trident_kernels.force_baseline(on)
    try:
        yield
    finally:
        torch.ops.trident_kernels.force_baseline(False)


def grid_input(shape, dtype, seed):
    """Inputs on a 1/8 grid: potentials often land exactly on the threshold."""
    generator = torch.Generator().manual_seed(seed)
    return (torch.randint(-8, 17, shape, generator=generator) / 8.0).to(dtype)


@CPP
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind,v_reset,decay_input,detach,surrogate", CASES)
def test_cpp_is_bit_identical_to_pytorch(dtype, kind, v_reset, decay_input, detach, surrogate, monkeypatch):
    """Spikes and H of the C++ kernel equal the per-step trace bit for bit (float32 and
    float64), on random and on threshold-hitting inputs; gradients close in float32."""
    for tau in (2.0, 1.7):
        cfg = config(kind, v_reset, decay_input, detach, surrogate, tau=tau)
        stepwise = make_neuron(cfg, fused=False).to(dtype)
        k = stepwise.k.detach()
        for x in (grid_input((6, 3, 700), dtype, 1), torch.randn(6, 3, 700, dtype=dtype) * 1.5):
            trace = stepwise.trace(x)
            g = torch.randn_like(x)
            results = []
            for baseline in (False, True):  # both compiled copies (AVX2 and baseline)
                with force_baseline(baseline):
                    s, h = kernels.neuron_forward(x, k, cfg)
                    assert torch.equal(s, trace.s) and torch.equal(h, trace.h)
                    results.append(kernels.neuron_backward(g, h, k, cfg, stepwise.surrogate_function))
            assert all(torch.equal(a, b) for a, b in zip(*results))
    # gradients against the per-step autograd path; float32: rounding differences only
    monkeypatch.delenv(kernels.DISABLE_ENV, raising=False)
    compare(cfg, grid_input((6, 3, 700), dtype, 2), "cpp", 1e-12 if dtype == torch.float64 else 1e-5)


@CPP
def test_cpp_matches_pytorch_fused_path_exactly_where_pytorch_is_exact(monkeypatch):
    """Against the PyTorch fused path: identical spikes and H; gradients equal bit for bit
    for the surrogates without exp (atan rounds through a reciprocal in both)."""
    for dtype, surrogate in itertools.product([torch.float32, torch.float64], ["rectangular", "triangle"]):
        cfg = config("lif", 0.0, True, False, surrogate)
        x = grid_input((8, 2, 300), dtype, 3)
        results = []
        for disabled in ("0", "1"):
            monkeypatch.setenv(kernels.DISABLE_ENV, disabled)
            node = make_neuron(cfg).to(dtype)
            xr = x.clone().requires_grad_()
            s = node(xr)
            s.backward(torch.ones_like(s))
            results.append((s, xr.grad))
        assert torch.equal(results[0][0], results[1][0])
        assert torch.equal(results[0][1], results[1][1])


@CPP
@pytest.mark.parametrize("shape", [(1, 5), (3, 1), (5, 2, 513), (4, 1031), (2, 3, 4, 5, 6)])
def test_shapes_and_block_edges(shape):
    cfg = config("klif", None, True, False, "sigmoid")
    generator = torch.Generator().manual_seed(11)
    x = torch.randn(shape, dtype=torch.float64, generator=generator) * 1.5
    compare(cfg, x, "cpp", 1e-12)


@CPP
def test_non_contiguous_input_and_gradient():
    cfg = config("lif", 0.0, True, False, "atan")
    base = torch.randn(40, 8, 6, dtype=torch.float64) * 1.5
    x = base.transpose(0, 2)[:, ::2]  # [6, 4, 40], non-contiguous
    assert not x.is_contiguous()
    s, g = compare(cfg, x, "cpp", 1e-12)
    # .sum().backward() hands in an expanded (stride-0) gradient
    fused = make_neuron(cfg).double()
    xa = x.clone().requires_grad_()
    fused(xa).sum().backward()
    xb = x.clone().requires_grad_()
    make_neuron(cfg, fused=False).double()(xb).sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-12, atol=1e-12)


@CPP
def test_results_do_not_depend_on_thread_count():
    cfg = config("klif", 0.0, True, False, "sigmoid")
    x = torch.randn(8, 64, 1000, dtype=torch.float32, generator=torch.Generator().manual_seed(5)) * 1.5
    threads = torch.get_num_threads()
    outs = []
    try:
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            node = make_neuron(cfg)
            xr = x.clone().requires_grad_()
            s = node(xr)
            (s * x).sum().backward()
            outs.append((s, xr.grad, node.k.grad))
    finally:
        torch.set_num_threads(threads)
    for other in outs[1:]:
        for a, b in zip(outs[0], other):
            assert torch.equal(a, b)


@CPP
def test_cpp_path_is_the_one_used(monkeypatch):
    calls = []
    forward, backward = kernels.neuron_forward, kernels.neuron_backward
    monkeypatch.setattr(kernels, "neuron_forward", lambda *a: calls.append("f") or forward(*a))
    monkeypatch.setattr(kernels, "neuron_backward", lambda *a: calls.append("b") or backward(*a))
    monkeypatch.delenv(kernels.DISABLE_ENV, raising=False)
    x = torch.randn(4, 3, requires_grad=True)
    make_neuron(NeuronConfig())(x).sum().backward()
    assert calls == ["f", "b"]
    monkeypatch.setenv(kernels.DISABLE_ENV, "1")
    calls.clear()
    make_neuron(NeuronConfig())(x).sum().backward()
    assert calls == []


@CPP
def test_unsupported_calls_take_the_pytorch_path(monkeypatch):
    monkeypatch.delenv(kernels.DISABLE_ENV, raising=False)
    cfg = NeuronConfig()
    sg = cfg.make_surrogate()
    k = torch.tensor(1.0)
    assert kernels.neuron_supported(torch.ones(2, 3), k, cfg, sg)
    assert not kernels.neuron_supported(torch.ones(2, 3, dtype=torch.float16), k, cfg, sg)
    assert not kernels.neuron_supported(torch.ones(0, 3), k, cfg, sg)

    class Custom(surrogates.Sigmoid):  # same name, different class: not the built-in math
        def derivative(self, x):
            return torch.ones_like(x)

    assert not kernels.neuron_supported(torch.ones(2, 3), k, cfg, Custom())
    grads = []
    for fused in (True, False):
        node = make_neuron(cfg, fused=fused)
        node.surrogate_function = Custom()
        x = torch.linspace(-1, 3, 12).reshape(4, 3).requires_grad_()
        node(x).sum().backward()
        grads.append(x.grad)
    torch.testing.assert_close(grads[0], grads[1])


@CPP
def test_float16_falls_back_and_still_works(monkeypatch):
    monkeypatch.delenv(kernels.DISABLE_ENV, raising=False)
    x = (torch.randn(4, 8) * 2).to(torch.bfloat16)
    s = make_neuron(NeuronConfig())(x)
    ref = make_neuron(NeuronConfig(), fused=False)(x)
    assert torch.equal(s, ref)


@CPP
def test_create_graph_backward_stays_differentiable(monkeypatch):
    """A double backward needs the PyTorch backward (its ops are recorded); the kernel is
    only used for plain backward passes."""
    monkeypatch.delenv(kernels.DISABLE_ENV, raising=False)
    cfg = config("lif", 0.0, True, False, "sigmoid")
    x = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    g = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    out = make_neuron(cfg).double()(x)
    (gx,) = torch.autograd.grad(out, x, grad_outputs=g, create_graph=True)
    assert gx.requires_grad
    out_ref = make_neuron(cfg, fused=False).double()(x)
    (gx_ref,) = torch.autograd.grad(out_ref, x, grad_outputs=g, create_graph=True)
    torch.testing.assert_close(gx, gx_ref, rtol=1e-12, atol=1e-12)


@CPP
@pytest.mark.parametrize("avx2", [False, True])
def test_exp_fast_accuracy(avx2):
    exp_fast = torch.ops.trident_kernels.exp_fast
    x = torch.cat([torch.linspace(-708, 708, 200001, dtype=torch.float64),
                   torch.randn(100000, dtype=torch.float64) * 5])
    rel = ((exp_fast(x, avx2) - torch.exp(x)) / torch.exp(x)).abs().max().item()
    assert rel < 4 * 2.0 ** -52
    xf = torch.cat([torch.linspace(-87, 87, 200001), torch.randn(100000) * 5])
    ref = torch.exp(xf.double())
    relf = ((exp_fast(xf, avx2).double() - ref) / ref).abs().max().item()
    assert relf < 4 * 2.0 ** -23
    # saturation instead of overflow: the sigmoid stays finite and exact in the limits
    big = torch.tensor([-1e4, 1e4, float("-inf")], dtype=torch.float64)
    assert torch.isfinite(exp_fast(big, avx2)).all()


@CPP
def test_both_instruction_sets_agree_bit_for_bit():
    exp_fast = torch.ops.trident_kernels.exp_fast
    automatic = torch.ops.trident_kernels.isa()
    with force_baseline(True):
        assert torch.ops.trident_kernels.isa() == "baseline"
    assert torch.ops.trident_kernels.isa() == automatic
    x = torch.randn(100003, dtype=torch.float64) * 30
    assert torch.equal(exp_fast(x, False), exp_fast(x, True))
    assert torch.equal(exp_fast(x.float(), False), exp_fast(x.float(), True))


def test_disable_env_var(monkeypatch):
    monkeypatch.setenv(kernels.DISABLE_ENV, "1")
    assert kernels.disabled() and not kernels.available()
    cfg = NeuronConfig()
    assert not kernels.neuron_supported(torch.ones(2, 3), torch.tensor(1.0), cfg, cfg.make_surrogate())
    monkeypatch.setenv(kernels.DISABLE_ENV, "0")
    assert not kernels.disabled()


def test_extensions_dir_is_project_local(monkeypatch):
    monkeypatch.delenv("TRIDENT_TORCH_EXTENSIONS_DIR", raising=False)
    monkeypatch.delenv("TORCH_EXTENSIONS_DIR", raising=False)
    directory = kernels.extensions_dir()
    # inside the virtual environment when there is one, never a shared system folder
    if sys.prefix != sys.base_prefix:
        assert directory.is_relative_to(sys.prefix)
    else:
        assert directory.is_relative_to(Path.home())
    assert torch.__version__.replace("+", "_") in directory.name
    monkeypatch.setenv("TRIDENT_TORCH_EXTENSIONS_DIR", "/some/where")
    assert str(kernels.extensions_dir()).startswith("/some/where/")


def test_failed_build_warns_once_and_falls_back(tmp_path):
    """No working compiler: one RuntimeWarning, then the PyTorch path gives the usual result."""
    script = textwrap.dedent("""
        import warnings, torch
        from trident.golden import kernels
        from trident.golden.neurons import NeuronConfig, make_neuron
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
            for _ in range(3):
                s = make_neuron(NeuronConfig()).double()(x)
                s.sum().backward()
            ref = make_neuron(NeuronConfig(), fused=False).double()(x.detach())
        messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
        assert len(messages) == 1, messages
        assert "falling back to the PyTorch path" in messages[0], messages
        assert torch.equal(s, ref)
        assert kernels.build_info()["error"]
        print("OK")
    """)
    env = dict(os.environ, TRIDENT_TORCH_EXTENSIONS_DIR=str(tmp_path / "ext"), CXX=str(tmp_path / "no-such-c++"))
    env.pop(kernels.DISABLE_ENV, None)
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "OK" in result.stdout, result.stdout + result.stderr
