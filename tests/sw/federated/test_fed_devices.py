import numpy as np
import pytest
import torch

from trident.golden.data import load_digits_split
from trident.golden.network import SpikingNetwork
from trident.golden.neurons import NeuronConfig
from trident.golden.training import HwBackend
from trident.sw.federated.devices import (DEVICES, DeviceUnavailableError, GoldenDevice, available_devices,
                                          check_device, make_device)

T = 2


@pytest.fixture(scope="module")
def batch():
    s = load_digits_split()
    x = s.x_train[:32].unsqueeze(0).expand(T, *s.x_train[:32].shape).contiguous()
    return x, s.y_train[:32]


def _model(seed=0):
    torch.manual_seed(seed)
    return SpikingNetwork("mlp-small", (1, 8, 8), 10, NeuronConfig(kind="lif", detach_reset=True))


def _device(momentum=0.9):
    return GoldenDevice(_model(), lr=0.2, momentum=momentum, loss_scale=1024.0)


def test_factory_names_and_unavailable_devices():
    assert set(DEVICES) >= {"golden", "sim", "board"}
    assert available_devices() == ["golden", "sim"]
    assert isinstance(make_device("golden", _model(), type("C", (), dict(lr=0.1, momentum=0.0, loss_scale=1024.0))),
                      GoldenDevice)
    for name in ("board",):
        with pytest.raises(DeviceUnavailableError, match=f"device '{name}' .* is not available yet.*--device golden"):
            check_device(name)
    with pytest.raises(ValueError, match="unknown device 'fpga'"):
        check_device("fpga")


def test_weights_round_trip_and_shape_checks():
    dev = _device()
    w = dev.get_weights()
    assert list(w) == ["body.1.weight", "readout.weight"] and all(a.dtype == np.float16 for a in w.values())
    dev.set_weights(w)
    bad = dict(w, **{"readout.weight": w["readout.weight"][:, :-1]})
    with pytest.raises(ValueError, match="readout.weight"):
        dev.set_weights(bad)


def test_mu_zero_is_exactly_the_device_training(batch):
    x, y = batch
    ref = HwBackend(_model(), lr=0.2, momentum=0.9, loss_scale=1024.0)
    dev = _device()
    dev.begin_round(0.0)
    for _ in range(3):
        ref.train_step(x, y)
        dev.train_step(x, y)
    assert all(torch.equal(a.view(torch.int16), b.view(torch.int16)) for a, b in zip(ref.net.weights, dev.net.weights))


def _f16(a):
    return np.asarray(a, dtype=np.float64).astype(np.float16)


def test_prox_step_follows_the_documented_fp16_formula(batch):
    x, y = batch
    mu = 0.05
    dev = _device(momentum=0.9)
    w_global = dev.get_weights()
    dev.begin_round(mu)
    rng = np.random.default_rng(0)
    w_local = {k: (v.astype(np.float64) + rng.normal(0, 0.02, v.shape)).astype(np.float16) for k, v in w_global.items()}
    dev.net.weights = [torch.from_numpy(w_local[k].copy()) for k in dev.names]
    grads = [lt.grad.numpy() for lt in dev.net.step(x, y, update=False, trace=True).layers]
    dev.train_step(x, y)
    net = dev.net
    c = float(_f16(mu * net.loss_scale))
    lr = float(net.lr16)
    mom = float(net.momentum16)
    for name, g, w_new in zip(dev.names, grads, net.weights):
        w, wg = w_local[name].astype(np.float64), w_global[name].astype(np.float64)
        d = _f16(w - wg).astype(np.float64)
        g2 = _f16(c * d + g.astype(np.float64)).astype(np.float64)
        m = _f16(mom * 0.0 + g2).astype(np.float64)
        expect = _f16(w - lr * m * 2.0 ** -net.scale_shift)
        assert np.array_equal(expect.view(np.uint16), w_new.numpy().view(np.uint16)), name


def test_prox_pulls_towards_the_global_model(batch):
    x, y = batch

    def drift(mu):
        dev = _device(momentum=0.0)
        start = dev.get_weights()
        dev.begin_round(mu)
        for _ in range(8):
            dev.train_step(x, y)
        end = dev.get_weights()
        return sum(float(np.sum((end[k].astype(np.float64) - start[k]) ** 2)) for k in start)

    assert drift(2.0) < 0.8 * drift(0.0)


@pytest.mark.parametrize("mu", [0.0, 0.5])
def test_device_driver_fedprox_equals_the_golden_device(batch, mu):
    """The SimDevice's driver path (device gradients in DRAM, the proximal term added by the
    host, the device's update), here on the golden device model behind the same driver, ends
    every step with the GoldenDevice's binary16 weights bit for bit, momentum included."""
    from trident.sw.federated.config import FedConfig
    from trident.sw.federated.devices import SimDevice
    x, y = batch
    tc = FedConfig(workers=2, rounds=1, model="mlp-small", T=T, lr=0.2, momentum=0.9).train_config()
    ref = GoldenDevice(_model(), lr=tc.lr, momentum=tc.momentum, loss_scale=tc.loss_scale)
    dev = SimDevice(_model(), tc, transport="golden-soc")
    try:
        rng = np.random.default_rng(1)
        start = {k: (v.astype(np.float64) + rng.normal(0, 0.02, v.shape)).astype(np.float16)
                 for k, v in ref.get_weights().items()}
        for d in (ref, dev):
            d.set_weights(start)
            d.begin_round(mu)
        moved = {k: (v.astype(np.float64) + rng.normal(0, 0.05, v.shape)).astype(np.float16)
                 for k, v in start.items()}
        for d in (ref, dev):                 # the local model leaves the global one
            d.set_weights(moved)
        for _ in range(3):
            ref.train_step(x, y)
            dev.train_step(x, y)
            a, b = ref.get_weights(), dev.get_weights()
            assert all(np.array_equal(a[k].view(np.uint16), b[k].view(np.uint16)) for k in a)
        assert dev.overflow_steps == ref.net.overflow_steps
    finally:
        dev.close()


def test_worker_devices_are_parsed_and_checked():
    from trident.sw.federated.config import FedConfig
    cfg = FedConfig(worker_devices="2:sim, 0:golden")
    assert cfg.device_of(2) == "sim" and cfg.device_of(0) == "golden" and cfg.device_of(1) == "golden"
    for bad in ("2sim", "x:sim", "2:"):
        with pytest.raises(ValueError, match="expected WORKER:DEVICE"):
            FedConfig(worker_devices=bad).validate()


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["fedavg", "fedprox"])
def test_a_sim_worker_gives_the_all_golden_global_model(strategy):
    """One worker of three on the SoC RTL (Verilator): after a round of FedAvg (or FedProx:
    the device's gradients, the host's proximal term, the device's update) the global weights
    are bit-identical to the all-golden federation."""
    from trident.sw.federated.config import FedConfig
    from trident.sw.federated.local import simulate
    base = dict(workers=3, rounds=1, local_epochs=1, model="mlp-small", T=2, lr=0.5, strategy=strategy,
                mu=0.5 if strategy == "fedprox" else 0.0)
    golden = simulate(FedConfig(**base))
    mixed = simulate(FedConfig(**base, worker_devices="1:sim"))
    assert mixed["weights_sha256"] == golden["weights_sha256"]
