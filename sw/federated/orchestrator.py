"""``trident fed``: start a Flower federation on loopback, run it, stop it, report.

Processes (all children of ``trident fed``; see :mod:`.processes` for how none survives it)
-----------------------------------------------------------------------------------------
``flower-superlink``   one HTTP port on 127.0.0.1 for the Fleet, Control and ServerAppIo
                       APIs; it starts ``flower-superexec``, which starts ``flwr-serverapp``
                       (our :mod:`.server`) when the run is submitted;
``flower-supernode``×W one per worker, each with its own Runtime API port, its own
                       ``FLWR_HOME``, its authentication key and ``--node-config
                       partition-id=k``; its ``flower-superexec`` starts a ``flwr-clientapp``
                       (our :mod:`.client`) for every message;
``flwr supernode register`` (once per worker) and ``flwr run --stream`` (submits the
                       Flower App built from ``RUN/app`` and follows it to the end).

Run directory
-------------
::

    RUN/fed_config.json        the settings         RUN/federation.jsonl  orchestrator events
    RUN/app/                   the Flower App       RUN/server/           ServerApp output
    RUN/flwr/<process>/        FLWR_HOME of each    RUN/workers/worker-k/ worker event logs
    RUN/logs/<process>.log     stdout+stderr        RUN/keys/, RUN/tls/   key material
    RUN/tmp/                   TMPDIR, caches       RUN/accuracy.png      default plot

Workers always authenticate with a generated key registered through the Control API
(``flwr supernode register``), so a restarted SuperNode gets its node id back; ``--auth``
additionally starts the SuperLink with ``--enable-supernode-auth``, which refuses any node
whose key was not registered.  ``--tls`` serves every API over TLS with a generated CA.
"""
from __future__ import annotations

import atexit
import json
import os
import re
import signal
import socket
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from trident.atomic import atomic_write_text

from .config import FedConfig, Fault
from .devices import check_device
from .processes import ProcessSet
from .security import make_node_keys, make_tls

__all__ = ["FedOptions", "Federation", "FederationError", "FederationInterrupted"]

SUPERNODE_START_S = 60.0


class FederationError(RuntimeError):
    """The federation could not run to the end; the message says why and where to look."""


class FederationInterrupted(Exception):
    """Ctrl-C / SIGTERM / SIGHUP."""


@dataclass
class FedOptions:
    run_dir: Path
    report: Path | None = None
    plot: Path | None = None
    tls: bool = False
    auth: bool = False
    faults: list[Fault] = field(default_factory=list)
    rejoin_delay: float = 1.0
    max_restarts: int = 3
    rejoin_window: float = 120.0
    base_port: int | None = None
    run_timeout: float | None = None
    progress: bool = True
    centralized: dict | None = None


def _free_ports(count: int) -> list[int]:
    socks, ports = [], []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _toml_dump(data: dict) -> str:
    import tomli_w
    return tomli_w.dumps(data)


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join("    " + line for line in text[-lines:])


class _Follow:
    """Reads the lines appended to a JSON-lines file since the last call."""

    def __init__(self, path: Path):
        self.path, self.offset, self.partial = path, 0, b""

    def __call__(self) -> list[dict]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return []
        self.offset += len(data)
        data = self.partial + data
        *complete, self.partial = data.split(b"\n")
        out = []
        for line in complete:
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out


class Federation:
    """One ``trident fed`` run (see the module docstring)."""

    def __init__(self, cfg: FedConfig, options: FedOptions):
        self.cfg = cfg
        self.opt = options
        self.run_dir = Path(options.run_dir).resolve()
        self.run_id = uuid.uuid4().hex
        self.bin = Path(sys.executable).parent
        self.events: list[dict] = []
        self.procs: ProcessSet | None = None
        self.restarts = {k: 0 for k in range(cfg.workers)}
        self.deaths = {k: 0 for k in range(cfg.workers)}
        self.window_start: dict[int, float] = {}
        self.backoff: dict[int, float] = {}
        self.worker_state = {k: "running" for k in range(cfg.workers)}
        self.restart_at: dict[int, float] = {}
        self.killed_by_us: set[int] = set()
        self.restart_announced: set[int] = set()
        self.current_node: dict[int, int] = {}
        self.node_history: dict[int, list[int]] = {}
        self.log_offset: dict[int, int] = {}
        self.workers_info: list[dict] = []

    # ------------------------------------------------------------------ helpers
    def _event(self, event: str, **fields) -> None:
        entry = {"time": time.time(), "event": event, **fields}
        self.events.append(entry)
        with open(self.run_dir / "federation.jsonl", "a") as f:
            f.write(json.dumps(entry) + "\n")

    def _say(self, text: str) -> None:
        if self.opt.progress:
            print(f"[trident fed] {text}", flush=True)

    def _path(self, *parts) -> Path:
        return self.run_dir.joinpath(*parts)

    def _home(self, name: str) -> dict[str, str]:
        home = self._path("flwr", name)
        home.mkdir(parents=True, exist_ok=True)
        return {"FLWR_HOME": str(home)}

    # ------------------------------------------------------------------ preparation
    def _prepare(self) -> None:
        cfg = self.cfg
        cfg.validate()
        for device in {cfg.device, *cfg.worker_device_map().values()}:
            check_device(device)
        for f in self.opt.faults:
            if f.worker >= cfg.workers or f.round > cfg.rounds:
                raise ValueError(f"fault {f}: there are workers 0..{cfg.workers - 1} and rounds 1..{cfg.rounds}")
        if self.run_dir.exists() and any(self.run_dir.iterdir()):
            raise ValueError(f"run directory {self.run_dir} is not empty; choose a new --run-dir or delete it")
        for sub in ("logs", "tmp", "server", "workers", "keys", "flwr"):
            self._path(sub).mkdir(parents=True, exist_ok=True)
        atomic_write_text(self._path("fed_config.json"), json.dumps(asdict(cfg), indent=2) + "\n")

        from .local import load_fed_data
        from .partition import partition_summary
        fed_data = load_fed_data(cfg)
        self.partition = partition_summary(fed_data.parts, fed_data.dataset.y_train)

        # Flower accepts SuperNode keys only over TLS: --auth implies --tls.
        self.tls = make_tls(self._path("tls")) if (self.opt.tls or self.opt.auth) else None
        self.keys = ([make_node_keys(self._path("keys"), f"worker-{k}") for k in range(cfg.workers)]
                     if self.tls else [])
        if self.opt.base_port:
            self.ports = [self.opt.base_port + i for i in range(cfg.workers + 1)]
            busy = [p for p in self.ports if _port_open(p)]
            if busy:
                raise ValueError(f"ports {busy} are in use; choose another --port")
        else:
            self.ports = _free_ports(cfg.workers + 1)
        self.link_port, self.node_ports = self.ports[0], self.ports[1:]
        connection = {"address": f"127.0.0.1:{self.link_port}"}
        if self.tls:
            connection["root-certificates"] = str(self.tls.ca_cert)
        else:
            connection["insecure"] = True
        cli_home = self._path("flwr", "cli")
        cli_home.mkdir(parents=True, exist_ok=True)
        (cli_home / "config.toml").write_text(_toml_dump({"superlink": {"default": "local", "local": connection}}))

        tmp = self._path("tmp")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FLWR_")}
        self.env.update({
            "FLWR_TELEMETRY_ENABLED": "0", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1",
            "TMPDIR": str(tmp), "MPLCONFIGDIR": str(tmp / "matplotlib"), "XDG_CACHE_HOME": str(tmp / "cache"),
            "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}",
        })

    def _write_app(self, node_workers: dict[int, int]) -> Path:
        app = self._path("app")
        app.mkdir(exist_ok=True)
        (app / "trident_fed_app.py").write_text(
            '"""The Trident federated Flower App (generated by `trident fed`)."""\n'
            "from trident.sw.federated.client import client_app\n"
            "from trident.sw.federated.server import server_app\n\n"
            '__all__ = ["client_app", "server_app"]\n')
        pyproject = {
            "build-system": {"requires": ["hatchling"], "build-backend": "hatchling.build"},
            "project": {"name": "trident-fed", "version": "1.0.0", "license": "Apache-2.0",
                        "description": "Trident federated on-edge SNN training", "dependencies": []},
            "tool": {"hatch": {"build": {"targets": {"wheel": {"packages": ["."]}}}},
                     "flwr": {"app": {"publisher": "trident",
                                      "components": {"serverapp": "trident_fed_app:server_app",
                                                     "clientapp": "trident_fed_app:client_app"},
                                      "config": {"run-dir": str(self.run_dir), "trident": self.cfg.to_json(),
                                                 "node-workers": json.dumps({str(n): k for n, k in
                                                                             node_workers.items()}),
                                                 "verify-workers": bool(node_workers)}}}},
        }
        (app / "pyproject.toml").write_text(_toml_dump(pyproject))
        return app

    # ------------------------------------------------------------------ processes
    def _security_args_link(self) -> list[str]:
        if not self.tls:
            return ["--insecure"]
        return ["--ssl-certfile", str(self.tls.server_cert), "--ssl-keyfile", str(self.tls.server_key),
                "--ssl-ca-certfile", str(self.tls.ca_cert)]

    def _start_superlink(self) -> None:
        argv = [str(self.bin / "flower-superlink"), "--host", "127.0.0.1", "--port", str(self.link_port),
                "--disable-runtime-dependency-installation", *self._security_args_link()]
        if self.opt.auth:
            argv.append("--enable-supernode-auth")
        child = self.procs.spawn("superlink", argv, self._path("logs", "superlink.log"), self._home("superlink"))
        self._event("superlink_start", pid=child.pid, port=self.link_port, tls=bool(self.tls), auth=self.opt.auth)
        deadline = time.monotonic() + 90
        while not _port_open(self.link_port):
            if not child.alive():
                raise FederationError(f"the SuperLink exited with code {child.popen.returncode} before serving "
                                      f"on port {self.link_port}:\n{_tail(child.log)}")
            if time.monotonic() > deadline:
                raise FederationError(f"the SuperLink did not open port {self.link_port} in 90 s:\n{_tail(child.log)}")
            time.sleep(0.2)

    def _register_nodes(self) -> dict[int, int]:
        names = []
        for k, keys in enumerate(self.keys):
            name = f"register-{k}"
            self.procs.spawn(name, [str(self.bin / "flwr"), "supernode", "register", str(keys.public_key), "local",
                                    "--name", f"worker-{k}", "--format", "json"],
                             self._path("logs", f"{name}.log"), self._home("cli"))
            names.append(name)
        node_workers = {}
        for k, name in enumerate(names):
            rc = self.procs.wait(name, 180)
            log = self._path("logs", f"{name}.log")
            found = re.findall(r'"node-id":\s*"?(\d+)', log.read_text(errors="replace"))
            if rc != 0 or not found:
                raise FederationError(f"registering worker {k}'s key failed (exit code {rc}):\n{_tail(log)}")
            node_workers[int(found[-1])] = k
        self._event("nodes_registered", nodes={str(n): k for n, k in node_workers.items()})
        return node_workers

    def _supernode_argv(self, k: int) -> list[str]:
        argv = [str(self.bin / "flower-supernode"), "--superlink", f"127.0.0.1:{self.link_port}",
                "--port", str(self.node_ports[k])]
        if self.tls:
            argv += ["--auth-supernode-private-key", str(self.keys[k].private_key),
                     "--root-certificates", str(self.tls.ca_cert), "--ssl-certfile", str(self.tls.server_cert),
                     "--ssl-keyfile", str(self.tls.server_key), "--ssl-ca-certfile", str(self.tls.ca_cert)]
        else:
            argv.append("--insecure")
        worker_dir = self._path("workers", f"worker-{k}")
        worker_dir.mkdir(parents=True, exist_ok=True)
        node_config = f'partition-id={k} num-partitions={self.cfg.workers} worker-dir="{worker_dir}"'
        faults = [f"{f.kind}@{f.round}" for f in self.opt.faults if f.worker == k and f.kind != "kill"]
        if faults:
            node_config += f' fault="{",".join(faults)}"'
        return argv + ["--node-config", node_config]

    def _start_worker(self, k: int) -> None:
        log = self._path("logs", f"worker-{k}.log")
        self.log_offset[k] = log.stat().st_size if log.exists() else 0
        self.worker_state[k] = "running"
        child = self.procs.spawn(f"worker-{k}", self._supernode_argv(k), self._path("logs", f"worker-{k}.log"),
                                 self._home(f"worker-{k}"))
        self._event("worker_start", worker=k, pid=child.pid, port=self.node_ports[k], restart=self.restarts[k])

    # ------------------------------------------------------------------ supervision
    def _worker_died(self, k: int, now: float) -> None:
        """Bookkeeping for a SuperNode that is no longer running (killed by us or not).

        A worker that had connected and then died is restarted after ``rejoin_delay`` (at most
        ``max_restarts`` times).  A SuperNode that exits before it connected (the SuperLink
        refused it: e.g. a registered key whose previous session has not timed out yet, which
        Flower detects after two missed 30 s heartbeats) is retried with a growing pause
        (1, 2, 4, 8, 8 … s) for ``rejoin_window`` s before the worker is given up."""
        child = self.procs.children[f"worker-{k}"]
        node = self.current_node.pop(k, None)
        rc = child.popen.returncode
        if k in self.killed_by_us:
            self.killed_by_us.discard(k)
        elif node is not None:
            self._event("worker_exited", worker=k, returncode=rc)
            self._say(f"worker {k}: SuperNode exited with code {rc}")
        else:
            self._event("worker_refused", worker=k, returncode=rc)
        if node is not None and not self.tls:
            # A self-registered node: remove it, so the SuperLink reports it unavailable at once
            # instead of after its heartbeat expires (a registered key keeps its node id instead).
            name = f"unregister-{k}-{node}"
            self.procs.spawn(name, [str(self.bin / "flwr"), "supernode", "unregister", str(node), "local",
                                    "--format", "json"], self._path("logs", f"{name}.log"), self._home("cli"))
            self._event("node_unregistered", worker=k, node=str(node))
        if node is not None:
            self.deaths[k] += 1
            self.window_start[k], self.backoff[k] = now, self.opt.rejoin_delay
            if self.deaths[k] > self.opt.max_restarts:
                self._give_up(k, f"--max-restarts {self.opt.max_restarts} reached")
                return
            pause = self.opt.rejoin_delay
        else:
            self.window_start.setdefault(k, now)
            if now - self.window_start[k] > self.opt.rejoin_window:
                self._give_up(k, f"it could not connect for {self.opt.rejoin_window:g} s; see "
                                 f"{self._path('logs', f'worker-{k}.log')}")
                return
            pause = self.backoff[k] = min(max(2 * self.backoff.get(k, 0.5), 1.0), 8.0)
        self.worker_state[k] = "restart"
        self.restart_at[k] = now + pause

    def _give_up(self, k: int, why: str) -> None:
        self.worker_state[k] = "gone"
        self._event("worker_given_up", worker=k, restarts=self.restarts[k], reason=why)
        self._say(f"worker {k}: given up ({why})")

    def _supervise(self, run_child) -> None:
        kills = {f.worker: f.round for f in self.opt.faults if f.kind == "kill"}
        follow_workers = {k: _Follow(self._path("workers", f"worker-{k}", "events.jsonl"))
                          for k in range(self.cfg.workers)}
        follow_server = _Follow(self._path("server", "events.jsonl"))
        timeout = self.opt.run_timeout or (self.cfg.startup_timeout + 120
                                           + self.cfg.rounds * (self.cfg.round_timeout + 60))
        deadline = time.monotonic() + timeout
        while run_child.alive():
            now = time.monotonic()
            if now > deadline:
                raise FederationError(f"the run did not finish within {timeout:.0f} s; logs in {self._path('logs')}")
            link = self.procs.children["superlink"]
            if not link.alive():
                raise FederationError(f"the SuperLink exited (code {link.popen.returncode}):\n"
                                      f"{_tail(link.log)}")
            for k in range(self.cfg.workers):
                self._learn_node_id(k)
                for ev in follow_workers[k]():
                    if (ev.get("event") == "train_start" and kills.get(k) == ev.get("round")
                            and self.worker_state[k] == "running"):
                        self.procs.signal_group(f"worker-{k}", signal.SIGKILL)
                        self.procs.wait(f"worker-{k}", 5)
                        self.killed_by_us.add(k)
                        del kills[k]
                        self._event("worker_killed", worker=k, round=ev["round"], signal="SIGKILL",
                                    reason="injected fault")
                        self._say(f"worker {k}: SuperNode killed (SIGKILL) during round {ev['round']} "
                                  f"(injected fault)")
                state = self.worker_state[k]
                if state == "running" and not self.procs.children[f"worker-{k}"].alive():
                    self._worker_died(k, now)
                elif state == "restart" and now >= self.restart_at[k]:
                    self.restarts[k] += 1
                    self._start_worker(k)
                    if self.deaths[k] and k not in self.restart_announced:
                        self.restart_announced.add(k)
                        self._say(f"worker {k}: SuperNode restarted (rejoins the federation)")
            if all(s == "gone" for s in self.worker_state.values()):
                raise FederationError("every worker's SuperNode failed and was given up; see "
                                      f"{self._path('logs')}/worker-*.log:\n{_tail(self._path('logs', 'worker-0.log'))}")
            for ev in follow_server():
                self._server_progress(ev)
            time.sleep(0.1)
        for ev in follow_server():
            self._server_progress(ev)

    def _learn_node_id(self, k: int) -> None:
        """Read the node id a SuperNode logs once the SuperLink accepted it."""
        if k in self.current_node or self.worker_state[k] != "running":
            return
        child = self.procs.children[f"worker-{k}"]
        try:
            with open(child.log, "rb") as f:
                f.seek(self.log_offset.get(k, 0))
                text = f.read().decode(errors="replace")
        except OSError:
            return
        found = re.findall(r"SuperNode ID: (\d+)", text)
        if found:
            node = int(found[-1])
            self.current_node[k] = node
            self.node_history.setdefault(k, [])
            if node not in self.node_history[k]:
                self.node_history[k].append(node)
            self._event("worker_connected", worker=k, node=str(node))
            self.window_start.pop(k, None)
            self.restart_announced.discard(k)
            if self.deaths[k]:
                self._say(f"worker {k}: reconnected as node {node}")

    def _server_progress(self, ev: dict) -> None:
        kind = ev.get("event")
        if kind == "start":
            self._say(f"initial global accuracy {ev['accuracy']:.4f}")
        elif kind == "workers_connected":
            self._say(f"{len(ev['nodes'])} workers connected after {ev['seconds']:.1f} s")
        elif kind == "round_end":
            absent = sorted(set(range(self.cfg.workers)) - set(ev["participants"]))
            extra = f", without {absent}" if absent else ""
            if ev["rejected"]:
                extra += f", rejected {[r['worker'] for r in ev['rejected']]}"
            self._say(f"round {ev['round']}/{self.cfg.rounds}: accuracy {ev['accuracy']:.4f}, "
                      f"workers {ev['participants']}{extra} [{ev['round_s']:.1f} s]")
        elif kind == "error":
            self._say(f"ServerApp error: {ev['error']}")

    # ------------------------------------------------------------------ run
    def run(self) -> dict:
        wall0 = time.monotonic()
        self._prepare()
        self.procs = ProcessSet(self.run_id, self.env, self.run_dir)
        atexit.register(self._cleanup)
        old_handlers = {}

        def interrupt(signum, frame):
            raise FederationInterrupted(signal.Signals(signum).name)

        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            try:
                old_handlers[sig] = signal.signal(sig, interrupt)
            except ValueError:   # not the main thread: rely on atexit and the finally below
                pass
        timings = {}
        try:
            self._event("start", run_id=self.run_id, pid=os.getpid())
            self._say(f"run directory {self.run_dir}")
            self._start_superlink()
            self._say(f"SuperLink on 127.0.0.1:{self.link_port} ({'TLS' if self.tls else 'insecure'}"
                      f"{', node authentication' if self.opt.auth else ''})")
            node_workers = self._register_nodes() if self.tls else {}
            app = self._write_app(node_workers)
            for k in range(self.cfg.workers):
                self._start_worker(k)
            self._say(f"{self.cfg.workers} SuperNodes on ports {self.node_ports}")
            timings["setup_s"] = time.monotonic() - wall0
            run_child = self.procs.spawn("flwr-run", [str(self.bin / "flwr"), "run", str(app), "local", "--stream"],
                                         self._path("logs", "flwr-run.log"), self._home("cli"))
            t_run = time.monotonic()
            self._supervise(run_child)
            timings["run_s"] = time.monotonic() - t_run
            rc = run_child.popen.returncode
            result_path = self._path("server", "result.json")
            if not result_path.exists():
                raise FederationError(f"the Flower run ended (flwr run exit code {rc}) without a result; "
                                      f"ServerApp log:\n{_tail(self._path('logs', 'flwr-run.log'), 40)}")
            result = json.loads(result_path.read_text())
            self._event("run_finished", returncode=rc)
        finally:
            for sig in old_handlers:   # a second Ctrl-C must not cut the shutdown short
                signal.signal(sig, signal.SIG_IGN)
            t_stop = time.monotonic()
            left = self._cleanup()
            timings["shutdown_s"] = time.monotonic() - t_stop
            for sig, handler in old_handlers.items():
                signal.signal(sig, handler)
            atexit.unregister(self._cleanup)
        if left:
            raise FederationError(f"processes {left} survived the shutdown")
        timings["wall_s"] = time.monotonic() - wall0
        return self._report(result, node_workers, timings)

    def _cleanup(self) -> list[int]:
        if self.procs is None:
            return []
        left = self.procs.shutdown()
        try:
            self._event("stopped", survivors=left)
        except OSError:
            pass
        return left

    def _report(self, result: dict, node_workers: dict[int, int], timings: dict) -> dict:
        import flwr

        cfg = self.cfg
        rounds = result["rounds"]
        round_s = [r["round_s"] for r in rounds]
        timings.update({"federation_s": result["federation_s"], "round_s": round_s,
                        "mean_round_s": sum(round_s) / len(round_s) if round_s else 0.0})
        for n, k in node_workers.items():
            self.node_history.setdefault(k, [])
            if n not in self.node_history[k]:
                self.node_history[k].insert(0, n)
        owner = {n: k for k, ids in self.node_history.items() for n in ids}
        for r in rounds:   # attribute what the server could not (a node that had not replied yet)
            for entry in r["missing"] + r["failed"] + r["rejected"]:
                if entry.get("worker") is None and int(entry["node"]) in owner:
                    entry["worker"] = owner[int(entry["node"])]
            r["sampled"] = [w if w is not None else owner.get(int(n))
                            for w, n in zip(r["sampled"], r["sampled_nodes"])]
        report = {
            "final_accuracy": result["final_accuracy"],
            "initial_accuracy": result["initial_accuracy"],
            "accuracy_per_round": [r["accuracy"] for r in rounds],
            "participants_per_round": {str(r["round"]): r["participants"] for r in rounds},
            "weights_sha256": result["weights_sha256"],
            "parameters": result["parameters"],
            "precision": "fp16-hw" if cfg.device == "golden" else cfg.device,
            "rounds": rounds,
            "worker_events": [e for e in self.events if e["event"].startswith("worker_")],
            "workers": [{"worker": p["worker"], "node_ids": [str(n) for n in self.node_history.get(p["worker"], [])],
                         "port": self.node_ports[p["worker"]],
                         "samples": p["samples"], "per_class": p["per_class"],
                         "restarts": self.restarts[p["worker"]], "deaths": self.deaths[p["worker"]]}
                        for p in self.partition],
            "deployment": {
                "runtime": "Flower deployment runtime: flower-superlink + one flower-supernode per worker "
                           "+ flwr run (subprocess isolation)",
                "flwr_version": flwr.__version__, "superlink": f"127.0.0.1:{self.link_port}",
                "tls": bool(self.tls), "node_auth": self.opt.auth, "run_dir": str(self.run_dir),
                "faults": [str(f) for f in self.opt.faults], "max_restarts": self.opt.max_restarts,
                "rejoin_delay_s": self.opt.rejoin_delay, "rejoin_window_s": self.opt.rejoin_window,
            },
            "timings": timings,
            "config": asdict(cfg),
        }
        if self.opt.centralized:
            report["centralized"] = self.opt.centralized
        plot = Path(self.opt.plot) if self.opt.plot else self._path("accuracy.png")
        from .report import plot_accuracy
        plot_accuracy(report, plot, title=f"{cfg.workers} workers · {cfg.partition} · {cfg.strategy} · "
                                          f"{cfg.device} ({report['precision']})")
        report["plot"] = str(plot)
        path = Path(self.opt.report) if self.opt.report else self._path("report.json")
        report["report_path"] = str(path)
        atomic_write_text(path, json.dumps(report, indent=2) + "\n")
        return report
