"""4-bit shift-BN networks: STEs, bounds, shift-BN, integer-only inference, export (ALGORITHMS.md §5)."""
import json
import math

import numpy as np
import pytest
import torch

from trident.golden.data import load_dataset
from trident.golden.quant import (ExportError, FloatNetwork, QuantNetwork, QuantTrainConfig, ShiftBatchNorm,
                                  bounds, compare_integer, export_model, floor_ste, from_network, load_export,
                                  quantize_input, quantize_weight, round_ste, signed_bounds, train_quant,
                                  unsigned_bounds)
from trident.golden.quant.integer import IntShiftNorm, shift_round
from trident.golden.quant.train import fit


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", 1)


# --- bounds and straight-through estimators ------------------------------------------------

def test_bounds():
    assert signed_bounds(4) == (-7, 7)
    assert unsigned_bounds(4) == (0, 15)
    for n in range(2, 9):
        assert bounds(n, True) == (-(2 ** (n - 1) - 1), 2 ** (n - 1) - 1)
        assert bounds(n, False) == (0, 2 ** n - 1)
    with pytest.raises(ValueError, match="bit width"):
        signed_bounds(1)


def test_straight_through_estimators_are_exact_forward_and_identity_backward():
    x = torch.tensor([-2.5, -1.2, -0.5, 0.49, 0.5, 1.5, 2.7, 9.0], requires_grad=True)
    torch.testing.assert_close(round_ste(x), torch.round(x.detach()), rtol=0, atol=0)
    torch.testing.assert_close(floor_ste(x), torch.floor(x.detach()), rtol=0, atol=0)
    w = quantize_weight(x, 4)
    torch.testing.assert_close(w, torch.tensor([-2., -1., -0., 0., 0., 2., 3., 7.]), rtol=0, atol=0)
    (round_ste(x) * 1 + floor_ste(x) * 2 + w * 3).sum().backward()
    torch.testing.assert_close(x.grad, torch.full_like(x, 6.0))


# --- shift batch-norm ----------------------------------------------------------------------

@pytest.mark.parametrize("signed", [False, True])
def test_shift_bn_training_formula_and_bounds(signed):
    torch.manual_seed(0)
    x = torch.randint(-300, 900, (64, 5)).double()
    x[0], x[1] = 5000.0, -5000.0  # outliers that must clamp
    bn = ShiftBatchNorm(5, bits=4, signed=signed).double()
    y = bn(x)
    mean, std = x.mean(0), x.var(0, unbiased=False).add(bn.eps).sqrt()
    bias = torch.round(mean)
    shift = torch.round(torch.log2(std)) + (3 if signed else 2) - 4
    expected = torch.clamp(torch.floor((x - bias) / 2 ** shift), *bounds(4, signed))
    torch.testing.assert_close(y, expected, rtol=0, atol=0)
    low, high = bounds(4, signed)
    assert y.min() >= low and y.max() <= high
    assert y.min() == low and y.max() == high  # the range is used, both ends


def test_shift_bn_running_statistics_first_batch_copied_then_ema():
    bn = ShiftBatchNorm(3)
    a = torch.tensor([[0., 10., 100.], [4., 30., 300.]])
    b = torch.tensor([[8., 0., 0.], [12., 0., 0.]])
    bn(a)
    torch.testing.assert_close(bn.running_mean, a.double().mean(0))
    torch.testing.assert_close(bn.running_var, a.double().var(0, unbiased=False))
    bn(b)
    torch.testing.assert_close(bn.running_mean, 0.9 * a.double().mean(0) + 0.1 * b.double().mean(0))
    torch.testing.assert_close(bn.running_var, 0.9 * a.double().var(0, unbiased=False)
                               + 0.1 * b.double().var(0, unbiased=False))
    bn.eval()
    bias, shift = bn.inference_tables()
    torch.testing.assert_close(bias, torch.round(bn.running_mean))
    torch.testing.assert_close(shift, torch.round(0.5 * torch.log2(bn.running_var + bn.eps)) - 2)


def test_shift_bn_gradient_flows_through_the_straight_through_estimators():
    x = (torch.randn(32, 4) * 50).round().requires_grad_()
    ShiftBatchNorm(4, signed=True)(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_negative_shift_is_a_left_shift():
    bn = ShiftBatchNorm(2, bits=4, signed=True)
    bn.running_mean.copy_(torch.tensor([3.0, -2.0]))
    bn.running_var.copy_(torch.tensor([0.01, 0.25]))  # std 0.1, 0.5 -> log2 -3.3, -1 -> shift -4, -2
    bn.eval()
    bias, shift = bn.inference_tables()
    assert shift.tolist() == [-4.0, -2.0]
    x = torch.tensor([[3., -2.], [4., -3.], [2., -1.], [5., 0.]])
    y = bn(x)
    torch.testing.assert_close(y, torch.tensor([[0., 0.], [7., -4.], [-7., 4.], [7., 7.]], dtype=y.dtype))
    op = IntShiftNorm(bias.numpy().astype(np.int32), shift.numpy().astype(np.int8), -7, 7)
    np.testing.assert_array_equal(op(x.numpy().astype(np.int64)), y.numpy().astype(np.int64))


def test_arithmetic_shift_floors_negative_values():
    x = np.array([[-5, 5, -1, 7, -8]], dtype=np.int64).T  # [5, 1], channel axis 1
    for s in (-3, 0, 1, 2, 3):
        out = shift_round(x, np.array([s], dtype=np.int8))
        np.testing.assert_array_equal(out[:, 0], np.floor(x[:, 0] / 2.0 ** s).astype(np.int64))


def test_integer_inference_takes_integers_only():
    torch.manual_seed(0)
    net = QuantNetwork("fc8", (1, 8, 8), 10)
    net(torch.rand(16, 1, 8, 8))
    integer = from_network(net)
    with pytest.raises(TypeError, match="uint8"):
        integer.forward(np.zeros((2, 1, 8, 8), dtype=np.float32))
    with pytest.raises(TypeError, match="non-integer"):
        shift_round(np.zeros(3, dtype=np.float64).reshape(1, 3), np.zeros(3, dtype=np.int8))


# --- bit-exactness of integer-only inference -----------------------------------------------

def _quick(model, digits, **kw):
    torch.manual_seed(0)
    net = QuantNetwork(model, digits.input_shape, 10, **kw)
    fit(net, digits.x_train[:512], digits.y_train[:512], digits.x_test[:8], digits.y_test[:8], epochs=2,
        batch_size=64, lr=0.05)
    return net


@pytest.mark.parametrize("model,kw", [("mlp", {}), ("cnn", {}), ("conv8k3s2p1,fc32", {"signed_activations": True}),
                                      ("fc64", {"bits": 2}), ("fc64", {"bits": 8})])
def test_integer_inference_is_bit_identical_to_the_fake_quantized_network(model, kw, digits):
    net = _quick(model, digits, **kw)
    check = compare_integer(net, digits.x_test)  # every test input, every layer
    assert check["bit_identical"], check["mismatched_layers"]
    assert check["logits"].dtype == np.int64 and check["logits"].shape == (360, 10)
    with torch.no_grad():
        net.eval()
        np.testing.assert_array_equal(net(digits.x_test).numpy().astype(np.int64), check["logits"])
    for op in from_network(net).ops:  # the tables are integers of the declared widths
        for name in ("weight", "bias", "shift"):
            if hasattr(op, name):
                assert getattr(op, name).dtype.kind == "i"
    low, high = signed_bounds(net.bits)
    assert all(low <= int(op.weight.min()) and int(op.weight.max()) <= high
               for op in from_network(net).ops if hasattr(op, "weight"))


def test_uint8_inputs_are_round_255x(digits):
    x = quantize_input(digits.x_test)
    assert x.dtype == np.uint8
    np.testing.assert_array_equal(x, np.round(digits.x_test.numpy().astype(np.float64) * 255).astype(np.uint8))


# --- export and reload ---------------------------------------------------------------------

def test_export_reloads_to_the_same_outputs(tmp_path, digits):
    net = _quick("cnn", digits)
    x = quantize_input(digits.x_test)
    expected = from_network(net).forward(x)
    manifest_path = export_model(net, tmp_path / "exp")
    manifest = json.loads(manifest_path.read_text())
    assert manifest["format"] == "trident-quant" and manifest["version"] == 1 and manifest["bits"] == 4
    assert [op["op"] for op in manifest["ops"]] == ["conv2d", "shift_norm", "maxpool2d", "conv2d", "shift_norm",
                                                     "maxpool2d", "flatten", "linear"]
    assert all(op[k]["offset"] % 16 == 0 for op in manifest["ops"] for k in ("weight", "bias", "shift") if k in op)
    loaded = load_export(tmp_path / "exp")
    np.testing.assert_array_equal(loaded.forward(x), expected)
    assert loaded.ops[0].weight.dtype == np.int8 and loaded.ops[1].bias.dtype == np.int32
    assert loaded.ops[1].shift.dtype == np.int8
    # Re-exporting another network replaces the tables atomically and leaves no stale file.
    other = _quick("cnn", digits, bits=3)
    export_model(other, tmp_path / "exp")
    assert len(list((tmp_path / "exp").glob("tables-*.bin"))) == 1
    np.testing.assert_array_equal(load_export(tmp_path / "exp").forward(x), from_network(other).forward(x))
    assert not list((tmp_path / "exp").glob(".*tmp"))


def test_corrupt_export_is_refused(tmp_path, digits):
    net = _quick("mlp", digits)
    export_model(net, tmp_path)
    table = next(tmp_path.glob("tables-*.bin"))
    data = bytearray(table.read_bytes())
    data[5] ^= 1
    table.write_bytes(bytes(data))
    with pytest.raises(ExportError, match="SHA-256"):
        load_export(tmp_path)
    with pytest.raises(ExportError, match="no such export"):
        load_export(tmp_path / "missing")


# --- training and the CLI ------------------------------------------------------------------

def test_float_twin_has_the_same_topology(digits):
    q = QuantNetwork("cnn", digits.input_shape, 10)
    f = FloatNetwork("cnn", digits.input_shape, 10)
    qw = [m.weight.shape for m in q.weight_layers()]
    fw = [m.weight.shape for m in f.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
    assert qw == fw
    assert all(m.bias is None for m in q.weight_layers())
    with pytest.raises(ValueError, match="avgpool"):
        QuantNetwork("conv8k3,avgpool2", digits.input_shape, 10)


def test_train_quant_report(tmp_path):
    report = train_quant(QuantTrainConfig(model="fc32", epochs=3, export=str(tmp_path / "e")))
    assert report["integer"]["bit_identical"] and report["export"]["reload_identical"]
    assert math.isclose(report["integer"]["test_accuracy"], report["quant"]["test_accuracy"], abs_tol=1e-6)
    assert 0.5 < report["quant"]["test_accuracy"] <= 1 and 0.5 < report["float"]["test_accuracy"] <= 1


def test_cli(tmp_path, capsys):
    import argparse

    from trident.golden.quant.cli import add_quant4_parser
    parser = argparse.ArgumentParser()
    add_quant4_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["quant4", "train", "--model", "fc32", "--epochs", "1", "--train-limit", "256",
                              "--no-float", "--export", str(tmp_path / "e"), "--report", str(tmp_path / "r.json")])
    assert args.handler(args) == 0
    assert json.loads((tmp_path / "r.json").read_text())["integer"]["bit_identical"]
    args = parser.parse_args(["quant4", "eval", str(tmp_path / "e")])
    assert args.handler(args) == 0
    assert "integer-only inference: 360 test samples" in capsys.readouterr().out
    args = parser.parse_args(["quant4", "eval", str(tmp_path / "nothing")])
    assert args.handler(args) == 2


@pytest.mark.slow
@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_four_bit_within_one_point_of_float(model):
    """The bench's claim on three seeds (mean accuracy; one seed alone can miss by an image or two)."""
    reports = [train_quant(QuantTrainConfig(model=model, seed=seed)) for seed in range(3)]
    assert all(r["integer"]["bit_identical"] for r in reports)
    quant = sum(r["quant"]["test_accuracy"] for r in reports) / 3
    float_ = sum(r["float"]["test_accuracy"] for r in reports) / 3
    assert quant >= float_ - 0.01
