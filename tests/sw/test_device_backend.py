"""Training through the driver: the device backend on the SoC's golden register/memory model
gives the golden model's weights bit for bit; bad models are refused before a device opens."""
import json

import pytest
import torch

from trident.golden.hw.compiler import CompileError
from trident.golden.network import SpikingNetwork
from trident.golden.neurons import NeuronConfig
from trident.golden.training import HwBackend
from trident.sw.device_backend import AxiPort, DeviceBackend, open_device
from trident.sw.runtime import TrainConfig, train


def _config(tmp_path, device, **overrides):
    fields = dict(precision="fp16-hw", detach_reset=True, epochs=2, train_limit=70, batch_size=32, T=4,
                  device=device, threads=1, report=str(tmp_path / f"{device}.json"))
    fields.update(overrides)
    return TrainConfig(**fields)


@pytest.mark.parametrize("neuron,reset,model", [("lif", "hard", "mlp-small"), ("klif", "soft", "mlp-small"),
                                                ("lif", "soft", "conv4k3p1,maxpool2,fc16")])
def test_golden_soc_trains_to_the_golden_models_weights(tmp_path, neuron, reset, model):
    """70 samples = two full batches and a partial one (padded on the device) per epoch; a CNN
    on cores built with the conv engines."""
    reports = [train(_config(tmp_path, device, neuron=neuron, reset=reset, model=model), progress=False)
               for device in ("golden", "golden-soc")]
    assert reports[0]["weights_sha256"] == reports[1]["weights_sha256"]
    assert reports[0]["history"] == [{**h, "train_time_s": h0["train_time_s"]}
                                     for h, h0 in zip(reports[1]["history"], reports[0]["history"])]
    figures = reports[1]["device_figures"]
    assert figures["transport"] == "golden"
    assert figures["dram_bytes_per_step"] > 0 and figures["overflow_steps"] == 0
    assert json.loads((tmp_path / "golden-soc.json").read_text())["device_figures"] == figures


def test_spike_input_data_train_as_spikes_on_the_device(tmp_path):
    """Rate-coded digits are 0/1: the runtime compiles the network for spike input (bits in
    DRAM, an event-driven first layer), and the golden model agrees bit for bit."""
    reports = [train(_config(tmp_path, device, model="conv4k3p1,maxpool2,fc16", encoding="rate"),
                     progress=False) for device in ("golden", "golden-soc")]
    assert reports[0]["weights_sha256"] == reports[1]["weights_sha256"]
    assert reports[1]["device_figures"]["input"] == "spikes"
    direct = train(_config(tmp_path, "golden-soc", model="conv4k3p1,maxpool2,fc16", epochs=1), progress=False)
    assert direct["device_figures"]["input"] == "binary16"


def test_resume_on_the_device_continues_exactly(tmp_path):
    whole = train(_config(tmp_path, "golden-soc"), progress=False)
    run_dir = tmp_path / "run"
    interrupted = _config(tmp_path, "golden-soc", checkpoint=str(run_dir), checkpoint_every=1)

    class Stop(Exception):
        pass

    def stop_after(step):
        if step == 4:
            raise Stop

    with pytest.raises(Stop):
        train(interrupted, progress=False, on_step=stop_after)
    resumed = train(_config(tmp_path, "golden-soc", checkpoint=str(run_dir), resume=True), progress=False)
    assert resumed["weights_sha256"] == whole["weights_sha256"]


def test_a_model_too_large_for_the_core_is_refused_before_a_device_opens():
    torch.manual_seed(0)
    model = SpikingNetwork("mlp2", (1, 8, 8), 10, NeuronConfig(kind="lif", detach_reset=True))
    opened = []

    def factory(words):
        opened.append(words)
        return open_device("golden-soc", words)

    with pytest.raises(CompileError, match=r"layer 1 \(fc 256→128\)"):
        DeviceBackend(model, factory, lr=0.1, momentum=0.9, loss_scale=1024.0, batch_size=32, steps=4,
                      direct_input=True)
    assert opened == []


@pytest.mark.parametrize("spike_input", [False, True], ids=["binary16-input", "spike-input"])
def test_device_backend_matches_hw_backend_step_by_step_with_a_partial_batch(spike_input):
    torch.manual_seed(1)
    model = SpikingNetwork("mlp-small", (1, 8, 8), 10, NeuronConfig(kind="lif", detach_reset=True))
    ref = HwBackend(model, lr=0.2, momentum=0.9, spike_input=spike_input)
    dev = DeviceBackend(model, lambda words: open_device("golden-soc", words), lr=0.2, momentum=0.9,
                        loss_scale=1024.0, batch_size=8, steps=3, direct_input=False, spike_input=spike_input)
    assert dev.program.input.kind == ("spikes" if spike_input else "half")
    g = torch.Generator().manual_seed(2)
    for n in (8, 5, 8):
        x = (torch.rand(3, n, 1, 8, 8, generator=g) < 0.3).float()
        y = torch.randint(0, 10, (n,), generator=g)
        loss_ref, logits_ref = ref.train_step(x, y)
        loss_dev, logits_dev = dev.train_step(x, y)
        assert loss_dev == loss_ref and torch.equal(logits_dev, logits_ref)
    for (name, w_ref), (name_dev, w_dev) in zip(ref.weights().items(), dev.weights().items()):
        assert name == name_dev and torch.equal(w_ref.view(torch.int16), w_dev.view(torch.int16))
    x = (torch.rand(3, 11, 1, 8, 8, generator=g) < 0.3).float()       # evaluation in device-sized chunks
    assert torch.equal(dev.predict(x), ref.predict(x))
    with pytest.raises(ValueError, match="compiled for T = 3"):
        dev.train_step(torch.zeros(4, 8, 1, 8, 8), torch.zeros(8, dtype=torch.long))


def test_axi_port_options_need_the_simulated_axi_soc():
    with pytest.raises(ValueError, match="dram='axi'"):
        open_device("golden-soc", 1 << 16, axi=AxiPort(max_burst=4))
    with pytest.raises(ValueError, match="dram='axi'"):
        open_device("sim", 1 << 16, axi=AxiPort(), dram="bram")


def test_a_block_ram_device_is_not_asked_for_axi_counters():
    """The AXI burst counters are read around a step only where global.build says the DRAM
    is behind the AXI port (register reads cost a round trip on a board)."""
    torch.manual_seed(1)
    model = SpikingNetwork("mlp-small", (1, 8, 8), 10, NeuronConfig(kind="lif", detach_reset=True))
    dev = DeviceBackend(model, lambda words: open_device("golden-soc", words), lr=0.2, momentum=0.9,
                        loss_scale=1024.0, batch_size=4, steps=2, direct_input=False)
    assert not dev.device.params.axi_dram
    read = dev.device.read_csr
    names = []
    dev.device.read_csr = lambda name, *a, **k: names.append(name) or read(name, *a, **k)
    dev.train_step(torch.zeros(2, 4, 1, 8, 8), torch.zeros(4, dtype=torch.long))
    assert names and not [n for n in names if n.startswith("dram.")]
    assert dev.device_report()["axi_transactions_per_step"] == 0


def test_several_cores_give_the_one_core_weights(tmp_path):
    reports = [train(_config(tmp_path, "golden-soc", cores=cores, report=str(tmp_path / f"c{cores}.json")),
                     progress=False) for cores in (1, 2, 4)]
    assert len({r["weights_sha256"] for r in reports}) == 1
    assert [r["device_figures"]["cores"] for r in reports] == [1, 2, 4]


def test_a_killed_training_process_resumes_from_its_checkpoint(tmp_path):
    """SIGKILL `trident train --device golden-soc` after its first checkpoint: `--resume`
    ends with the weights of an uninterrupted run."""
    import signal
    import subprocess
    import sys
    import time

    args = ["--precision", "fp16-hw", "--detach-reset", "--epochs", "6", "--train-limit", "70", "--T", "4",
            "--model", "mlp-small", "--device", "golden-soc", "--threads", "1"]
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "trident.sw.cli", "train", *args, "--checkpoint", str(run_dir),
           "--checkpoint-every", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (run_dir / "checkpoint.pt").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL, "the run ended before it could be killed"
    resumed = subprocess.run([*cmd, "--resume", "--report", str(tmp_path / "resumed.json")],
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    whole = train(_config(tmp_path, "golden-soc", epochs=6, model="mlp-small"), progress=False)
    assert json.loads((tmp_path / "resumed.json").read_text())["weights_sha256"] == whole["weights_sha256"]


@pytest.mark.slow
def test_sim_trains_a_cnn_to_the_golden_models_weights(tmp_path):
    """The SoC RTL (cores with the conv engines) on Verilator: two steps of a CNN end with the
    golden model's weights."""
    from trident.verify.pytest_fixtures import require_simulator
    require_simulator("verilator")
    reports = [train(_config(tmp_path, device, model="conv4k3p1,maxpool2,fc16", epochs=1, train_limit=64),
                     progress=False) for device in ("golden", "sim")]
    assert reports[0]["weights_sha256"] == reports[1]["weights_sha256"]
    figures = reports[1]["device_figures"]
    assert figures["transport"] == "sim" and figures["device_cycles_per_step"] > 0


@pytest.mark.slow
def test_sim_on_axi_dram_trains_to_the_golden_models_weights(tmp_path):
    """`--device sim --dram axi`: the SoC's AXI port in bursts, cocotbext-axi's AxiRam behind
    it; two steps end with the golden model's weights, and the report counts the AXI
    transactions (fewer than the words moved: bursts)."""
    from trident.verify.pytest_fixtures import require_simulator
    require_simulator("verilator")
    reports = [train(_config(tmp_path, device, epochs=1, train_limit=64,
                             **({"dram": "axi"} if device == "sim" else {})), progress=False)
               for device in ("golden", "sim")]
    assert reports[0]["weights_sha256"] == reports[1]["weights_sha256"]
    figures = reports[1]["device_figures"]
    assert 0 < figures["axi_transactions_per_step"] < figures["dram_bytes_per_step"] / 4 / 2
