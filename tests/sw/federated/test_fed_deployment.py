"""``trident fed`` on Flower's deployment runtime: SuperLink, SuperNodes and ``flwr run``
as real processes on 127.0.0.1.  The short ones run by default; the longer fault scenarios
are ``slow``."""
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from trident.sw.federated.cli import main
from trident.sw.federated.config import FedConfig
from trident.sw.federated.local import simulate
from trident.sw.federated.orchestrator import FedOptions, Federation, _free_ports
from trident.sw.federated.processes import survivors

SMALL = ["--model", "mlp-small", "--T", "2", "--local-epochs", "1"]


def _run_id(run_dir: Path) -> str:
    for line in (run_dir / "federation.jsonl").read_text().splitlines():
        event = json.loads(line)
        if event["event"] == "start":
            return event["run_id"]
    raise AssertionError("no start event")


def _cfg(report: dict) -> FedConfig:
    return FedConfig(**report["config"])


def _same_as_simulation(report: dict, participants=None) -> None:
    sim = simulate(_cfg(report), participants)
    assert report["weights_sha256"] == sim["weights_sha256"]
    assert np.allclose(report["accuracy_per_round"], [h["accuracy"] for h in sim["history"][1:]])


def test_unavailable_device_fails_before_anything_starts(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["fed", "--device", "board", "--run-dir", str(run_dir), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "device 'board' (a Trident FPGA board over UART/Ethernet) is not available yet" in err
    assert not run_dir.exists()
    assert main(["fed", "--worker-device", "7:sim", "--run-dir", str(run_dir), "--quiet"]) == 2
    assert "there are workers 0..4" in capsys.readouterr().err
    assert not run_dir.exists()
    assert main(["fed", "--strategy", "fedavg", "--mu", "0.1", "--run-dir", str(run_dir), "--quiet"]) == 2
    assert "--strategy fedprox" in capsys.readouterr().err


def test_small_federation_runs_on_the_deployment_runtime(tmp_path, capsys):
    run_dir, report_path = tmp_path / "run", tmp_path / "fed.json"
    code = main(["fed", "--workers", "2", "--rounds", "1", "--partition", "dirichlet:0.5", "--run-dir",
                 str(run_dir), "--report", str(report_path), "--round-timeout", "120", *SMALL])
    out = capsys.readouterr().out
    assert code == 0, out
    report = json.loads(report_path.read_text())
    assert 0 <= report["final_accuracy"] <= 1 and report["participants_per_round"] == {"1": [0, 1]}
    assert report["deployment"]["tls"] is False and report["deployment"]["flwr_version"] == "1.41.0"
    assert {"setup_s", "run_s", "round_s", "wall_s", "shutdown_s"} <= set(report["timings"])
    assert Path(report["plot"]).read_bytes()[:4] == b"\x89PNG"
    _same_as_simulation(report)                  # the runtime changes nothing in the arithmetic
    assert survivors(_run_id(run_dir)) == []
    # Flower's state, the app and every log stay in the run directory
    for sub in ("flwr/superlink", "flwr/worker-0", "flwr/worker-1", "flwr/cli", "logs", "server", "app"):
        assert (run_dir / sub).is_dir(), sub
    assert not list((Path.home() / ".flwr" / "apps").glob("trident.trident-fed*"))
    assert "final accuracy" in out


def test_unregistered_nodes_are_refused(tmp_path):
    fed = Federation(FedConfig(workers=2, rounds=1), FedOptions(run_dir=tmp_path / "run", auth=True, progress=False))
    fed._prepare()
    from trident.sw.federated.processes import ProcessSet
    fed.procs = ProcessSet(fed.run_id, fed.env, fed.run_dir)
    try:
        fed._start_superlink()
        keys = fed.keys
        fed.keys = keys[:1]                          # register worker 0's key only
        registered = fed._register_nodes()
        fed.keys = keys
        assert list(registered.values()) == [0]
        fed._start_worker(0)
        fed._start_worker(1)                         # a key the SuperLink does not know
        argv = [a for a in fed._supernode_argv(1)]   # no key at all
        i = argv.index("--auth-supernode-private-key")
        del argv[i:i + 2]
        argv[argv.index("--port") + 1] = str(_free_ports(1)[0])
        fed.procs.spawn("keyless", argv, fed._path("logs", "keyless.log"), fed._home("keyless"))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (fed.procs.children["worker-1"].alive()
                                               or fed.procs.children["keyless"].alive()):
            time.sleep(0.5)
        assert fed.procs.children["worker-1"].popen.returncode not in (None, 0)
        assert fed.procs.children["keyless"].popen.returncode not in (None, 0)
        assert "Failed to activate SuperNode" in fed._path("logs", "worker-1.log").read_text()
        assert "must be registered" in fed._path("logs", "keyless.log").read_text()
        while time.monotonic() < deadline and "SuperNode ID:" not in fed._path("logs", "worker-0.log").read_text():
            time.sleep(0.5)
        assert fed.procs.children["worker-0"].alive()
        assert f"SuperNode ID: {next(iter(registered))}" in fed._path("logs", "worker-0.log").read_text()
    finally:
        assert fed.procs.shutdown() == []


def test_ctrl_c_stops_every_process(tmp_path):
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "trident.sw.federated.cli", "fed", "--workers", "2", "--rounds",
                             "50", "--run-dir", str(run_dir), *SMALL], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 150
    events = run_dir / "server" / "events.jsonl"
    while time.monotonic() < deadline and proc.poll() is None:
        if events.exists() and '"round_start"' in events.read_text():
            break
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()
    run_id = _run_id(run_dir)
    assert len(survivors(run_id)) >= 5             # SuperLink, 2 SuperNodes, their SuperExecs, flwr run, ServerApp
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert survivors(run_id) == []


@pytest.mark.slow
@pytest.mark.parametrize("tls", [False, True], ids=["insecure", "tls"])
def test_worker_killed_mid_round_drops_out_and_rejoins(tmp_path, tls):
    """SIGKILL worker 2's SuperNode as it starts round 3.  Without TLS its node is unregistered,
    round 3 ends at once and the restarted SuperNode (a new node id) trains in round 4.  With
    TLS the restarted SuperNode authenticates with the same key; the SuperLink refuses it until
    it has noticed the old session is gone (two missed 30 s heartbeats), then gives it its node
    id back, so the worker is absent for one or two rounds."""
    rounds = 5 if tls else 4
    report_path = tmp_path / "fed.json"
    assert main(["fed", "--workers", "5", "--rounds", str(rounds), "--run-dir", str(tmp_path / "run"), "--report",
                 str(report_path), "--round-timeout", "120", "--inject-fault", "2:kill@3", "--quiet", *SMALL,
                 *(["--tls"] if tls else [])]) == 0
    report = json.loads(report_path.read_text())
    parts = report["participants_per_round"]
    everyone = [0, 1, 2, 3, 4]
    assert parts["1"] == parts["2"] == everyone and parts["3"] == [0, 1, 3, 4] and parts[str(rounds)] == everyone
    r3 = report["rounds"][2]
    assert [e["worker"] for e in r3["missing"] + r3["failed"]] == [2]
    events = [(e["event"], e["worker"]) for e in report["worker_events"] if e["worker"] == 2]
    assert ("worker_killed", 2) in events and events.count(("worker_connected", 2)) == 2
    assert report["workers"][2]["deaths"] == 1
    if tls:
        assert len(report["workers"][2]["node_ids"]) == 1 and report["workers"][2]["restarts"] >= 1
    else:
        assert parts["4"] == everyone and report["workers"][2]["restarts"] == 1
        assert r3["failed"] and "Node Unavailable" in r3["failed"][0]["reason"]
        assert len(report["workers"][2]["node_ids"]) == 2
    # the global model is exactly FedAvg over the updates that came back
    _same_as_simulation(report, lambda rnd: parts[str(rnd)])
    assert survivors(_run_id(tmp_path / "run")) == []


@pytest.mark.slow
def test_tls_auth_and_corrupt_updates_are_rejected(tmp_path):
    report_path = tmp_path / "fed.json"
    assert main(["fed", "--workers", "3", "--rounds", "2", "--auth", "--run-dir", str(tmp_path / "run"),
                 "--report", str(report_path), "--inject-fault", "1:nan@1", "--inject-fault", "2:inf@2",
                 "--inject-fault", "0:crash@2", "--quiet", *SMALL]) == 0
    report = json.loads(report_path.read_text())
    assert report["deployment"]["tls"] and report["deployment"]["node_auth"]
    assert report["participants_per_round"] == {"1": [0, 2], "2": [1]}
    r1, r2 = report["rounds"]
    assert r1["rejected"][0]["worker"] == 1 and "NaN" in r1["rejected"][0]["reason"]
    assert r2["rejected"][0]["worker"] == 2 and "±Inf" in r2["rejected"][0]["reason"]
    assert r2["failed"][0]["worker"] == 0 and "injected fault" in r2["failed"][0]["reason"]
    assert all(len(w["node_ids"]) == 1 for w in report["workers"])
    _same_as_simulation(report, lambda rnd: [0, 2] if rnd == 1 else [1])
    log = (tmp_path / "run" / "logs" / "flwr-run.log").read_text()
    assert "rejected the update of worker 1" in log


@pytest.mark.slow
def test_a_hanging_worker_times_out(tmp_path):
    report_path = tmp_path / "fed.json"
    assert main(["fed", "--workers", "2", "--rounds", "1", "--round-timeout", "25", "--run-dir",
                 str(tmp_path / "run"), "--report", str(report_path), "--inject-fault", "1:hang@1", "--quiet",
                 *SMALL]) == 0
    report = json.loads(report_path.read_text())
    r1 = report["rounds"][0]
    assert r1["participants"] == [0] and r1["missing"][0]["worker"] == 1
    assert "round timeout (25 s)" in r1["missing"][0]["reason"]
    assert 25 <= r1["train_s"] < 40
