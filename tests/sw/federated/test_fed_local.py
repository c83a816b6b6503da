import numpy as np

from trident.sw.federated.config import FedConfig
from trident.sw.federated.local import initial_weights, load_fed_data, local_train, simulate
from trident.sw.runtime import TrainConfig


def _cfg(**kw):
    base = dict(workers=3, rounds=1, local_epochs=1, T=2, model="mlp-small", partition="dirichlet:0.5")
    return FedConfig(**(base | kw))


def test_local_training_reports_its_partition_and_is_deterministic():
    cfg = _cfg()
    parts = load_fed_data(cfg).parts
    w0 = initial_weights(cfg)
    a, ma = local_train(cfg, 1, 1, w0)
    b, mb = local_train(cfg, 1, 1, w0)
    assert ma["num-examples"] == len(parts[1]) and ma["worker-id"] == 1
    assert ma["steps"] == -(-len(parts[1]) // cfg.batch_size)
    assert all(np.array_equal(a[k].view(np.uint16), b[k].view(np.uint16)) for k in a)
    c, _ = local_train(cfg, 1, 2, w0)           # another round shuffles differently
    assert any(not np.array_equal(a[k], c[k]) for k in a)


def test_simulation_is_reproducible_and_absent_workers_change_the_result():
    cfg = _cfg()
    r1, r2 = simulate(cfg), simulate(cfg)
    assert r1["weights_sha256"] == r2["weights_sha256"]
    r3 = simulate(cfg, participants=lambda rnd: [0, 2])
    assert r3["weights_sha256"] != r1["weights_sha256"]
    assert r3["history"][1]["participants"] == [0, 2]


def test_initial_model_is_the_centralised_one():
    import torch

    from trident.golden.data import load_dataset
    from trident.golden.network import SpikingNetwork
    cfg = _cfg()
    tc: TrainConfig = cfg.train_config()
    assert tc.epochs == cfg.rounds * cfg.local_epochs and tc.precision == "fp16-hw" and tc.detach_reset
    data = load_dataset("digits", cfg.T)
    torch.manual_seed(cfg.seed)
    model = SpikingNetwork(tc.model, data.input_shape, data.n_classes, tc.neuron_config())
    w = initial_weights(cfg)
    assert np.array_equal(w["readout.weight"], model.readout.weight.detach().half().numpy())
