"""The ServerApp: FedAvg or FedProx over the workers, with exact binary16 aggregation.

Run configuration (written by ``trident fed`` into the Flower App's ``pyproject.toml``):
``run-dir`` (absolute path of the run directory), ``trident`` (the :class:`FedConfig` as
JSON) and ``node-workers`` (JSON ``{node id: worker id}`` of the registered SuperNodes).

One round
---------
1. Sample every connected SuperNode (``grid.get_node_ids()``); before round 1 wait until all
   ``workers`` are connected (at most ``startup_timeout`` s); a round that finds fewer than
   ``min_workers`` waits for them up to ``round_timeout`` s, then is skipped.
2. Push the training messages (global arrays + config) and pull replies every 0.2 s until
   all have replied or ``round_timeout`` s have passed.  A worker that died or hangs simply
   has no reply: it is recorded as *missing* and the round goes on with the others.
3. Every reply is checked (:func:`aggregate.check_update`, the sample count, that the
   worker id is the one registered for its node, no duplicates); rejected updates are
   logged with the reason.  Flower error replies (a ClientApp that raised, a node the
   SuperLink found unavailable) are recorded as *failed*.
4. With at least ``min_workers`` accepted updates the new global model is their exact
   weighted average (:func:`aggregate.fedavg_exact`); otherwise the global model is kept.
5. Server-side evaluation of the global model on the test split.

Everything the server writes goes to ``RUN/server/``: ``events.jsonl`` (one line per event,
appended as it happens), ``result.json`` (all rounds, written atomically at the end) and
``global-weights.npz`` (the final global model).
"""
from __future__ import annotations

import io
import json
import logging
import time
from pathlib import Path

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MessageType, RecordDict
from flwr.common import log
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg, FedProx

from trident.atomic import atomic_write, atomic_write_text

from .aggregate import check_sample_count, check_update, fedavg_exact
from .config import FedConfig

__all__ = ["server_app", "TridentFedAvg", "TridentFedProx", "make_strategy", "RoundOutcome", "run_federation"]

INFO, WARNING = logging.INFO, logging.WARNING
POLL_S = 0.2

server_app = ServerApp()


class RoundOutcome:
    """What happened to every update of one round (filled by ``aggregate_train``)."""

    def __init__(self):
        self.accepted: list[dict] = []
        self.rejected: list[dict] = []
        self.failed: list[dict] = []


class _ExactAggregation:
    """Sampling without blocking, validated updates and the exact binary16 average.

    Mixed into Flower's ``FedAvg`` / ``FedProx`` (which supply the message layout and, for
    FedProx, the ``proximal-mu`` entry the ClientApp reads)."""

    def setup(self, reference: dict[str, np.ndarray], node_workers: dict[int, int], min_workers: int,
              workers: int, verify_workers: bool):
        """``node_workers``: registered node id → worker id.  With ``verify_workers`` (registered
        keys, TLS) a reply must claim its node's registered worker id; without it (self-registered
        nodes) the claimed id is taken, checked for range and duplicates, and remembered."""
        self.reference = reference
        self.node_workers = dict(node_workers)
        self.min_workers = min_workers
        self.workers = workers
        self.verify_workers = verify_workers
        self.outcome = RoundOutcome()
        self.reply_nodes: dict[str, int] = {}

    def configure_train(self, server_round, arrays, config, grid):
        node_ids = sorted(grid.get_node_ids())
        config["server-round"] = server_round
        if isinstance(self, FedProx):
            config["proximal-mu"] = float(self.proximal_mu)
        record = RecordDict({self.arrayrecord_key: arrays, self.configrecord_key: config})
        return self._construct_messages(record, node_ids, MessageType.TRAIN)

    def aggregate_train(self, server_round, replies):
        outcome = self.outcome = RoundOutcome()
        seen_workers: set[int] = set()
        updates = []
        for msg in replies:
            # an error reply may come from the SuperLink itself (node unavailable): name the
            # node the message was sent to
            node = int(self.reply_nodes.get(msg.metadata.reply_to_message_id, msg.metadata.src_node_id))
            registered = self.node_workers.get(node)
            if msg.has_error():
                outcome.failed.append({"node": str(node), "worker": registered,
                                       "reason": f"error reply (code {msg.error.code}): {msg.error.reason}"})
                continue
            reason, worker, n_k, arrays, metrics = None, registered, None, None, {}
            try:
                content = msg.content
                if "metrics" not in content or self.arrayrecord_key not in content:
                    reason = "reply lacks the arrays or metrics record"
                else:
                    metrics = dict(content["metrics"])
                    claimed = metrics.get("worker-id")
                    n_k = metrics.get(self.weighted_by_key)
                    reason = check_sample_count(n_k)
                    if reason is None:
                        if not isinstance(claimed, int) or not 0 <= claimed < self.workers:
                            reason = f"claims worker id {claimed!r}, not one of 0..{self.workers - 1}"
                        elif self.verify_workers and claimed != registered:
                            reason = (f"claims worker id {claimed}, but node {node} is registered as "
                                      f"worker {registered}")
                        else:
                            worker = registered = claimed
                    if reason is None and registered in seen_workers:
                        reason = f"a second update from worker {registered} in this round"
                    if reason is None:
                        arrays = {k: v.numpy() for k, v in content[self.arrayrecord_key].items()}
                        reason = check_update(arrays, self.reference)
            except Exception as exc:  # a malformed payload must not take the server down
                reason = f"unreadable update: {type(exc).__name__}: {exc}"
            if reason is not None:
                outcome.rejected.append({"node": str(node), "worker": worker, "reason": reason})
                log(WARNING, "round %d: rejected the update of worker %s (node %s): %s",
                    server_round, worker, node, reason)
                continue
            seen_workers.add(registered)
            self.node_workers[node] = registered
            updates.append((registered, int(n_k), arrays))
            outcome.accepted.append({"worker": registered, "node": str(node), "num_examples": int(n_k),
                                     "metrics": {k: v for k, v in metrics.items()
                                                 if isinstance(v, (int, float)) and not isinstance(v, bool)}})
        outcome.accepted.sort(key=lambda a: a["worker"])
        if len(updates) < self.min_workers:
            log(WARNING, "round %d: %d valid update(s), fewer than --min-workers %d: the global model is kept",
                server_round, len(updates), self.min_workers)
            return None, None
        new = fedavg_exact(updates)
        return ArrayRecord({k: Array(np.ascontiguousarray(v)) for k, v in new.items()}), None


class TridentFedAvg(_ExactAggregation, FedAvg):
    """FedAvg with validated updates and the exact binary16 average."""


class TridentFedProx(_ExactAggregation, FedProx):
    """FedProx: FedAvg on the server; the workers add μ(w − w_global) to their gradients."""


def make_strategy(cfg: FedConfig):
    common = dict(fraction_train=1.0, fraction_evaluate=0.0, min_train_nodes=cfg.min_workers,
                  min_evaluate_nodes=0, min_available_nodes=cfg.min_workers)
    if cfg.strategy == "fedprox":
        return TridentFedProx(proximal_mu=cfg.mu, **common)
    return TridentFedAvg(**common)


class _Events:
    def __init__(self, directory: Path):
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "events.jsonl"

    def __call__(self, event: str, **fields) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps({"time": time.time(), "event": event, **fields}) + "\n")


def _wait_for_nodes(grid: Grid, want: int, timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        nodes = sorted(grid.get_node_ids())
        if len(nodes) >= want or time.monotonic() >= deadline:
            return nodes
        time.sleep(POLL_S * 2)


def _send_and_receive(grid: Grid, messages, timeout: float) -> tuple[list[Message], dict[str, int], dict[str, int]]:
    """Flower's send/receive with a finer poll; returns the replies, the unanswered message
    ids with their destination nodes, and every message id's destination node."""
    messages = list(messages)
    dst = {}
    ids = list(grid.push_messages(messages))
    for mid, m in zip(ids, messages):
        dst[mid] = int(m.metadata.dst_node_id)
    pending = set(ids)
    replies: list[Message] = []
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        got = list(grid.pull_messages(pending))
        replies += got
        pending -= {m.metadata.reply_to_message_id for m in got}
        if pending:
            time.sleep(POLL_S)
    return replies, {mid: dst[mid] for mid in pending}, dst


def run_federation(grid: Grid, cfg: FedConfig, run_dir: Path, node_workers: dict[int, int],
                   verify_workers: bool = False) -> dict:
    """All rounds; returns (and writes) the result."""
    from .local import GlobalEvaluator, global_sha256, initial_weights

    out = run_dir / "server"
    events = _Events(out)
    evaluate = GlobalEvaluator(cfg)
    weights = initial_weights(cfg)
    strategy = make_strategy(cfg)
    strategy.setup(weights, node_workers, cfg.min_workers, cfg.workers, verify_workers)
    acc0 = evaluate(weights)
    events("start", accuracy=acc0, weights_sha256=global_sha256(weights))
    log(INFO, "trident: round 0 accuracy %.4f; waiting for %d workers", acc0, cfg.workers)
    t_wait = time.monotonic()
    connected = _wait_for_nodes(grid, cfg.workers, cfg.startup_timeout)
    events("workers_connected", nodes=[str(n) for n in connected], seconds=time.monotonic() - t_wait)
    rounds = []
    t_start = time.monotonic()
    for rnd in range(1, cfg.rounds + 1):
        t0 = time.monotonic()
        nodes = _wait_for_nodes(grid, cfg.min_workers, cfg.round_timeout)
        sampled = [strategy.node_workers.get(n) for n in nodes]
        events("round_start", round=rnd, nodes=[str(n) for n in nodes], workers=sampled)
        log(INFO, "trident: [round %d/%d] training on %d workers %s", rnd, cfg.rounds, len(nodes), sampled)
        replies, unanswered, strategy.reply_nodes = [], {}, {}
        if len(nodes) >= cfg.min_workers:
            config = ConfigRecord({"trident": cfg.to_json()})
            arrays = ArrayRecord({k: Array(np.ascontiguousarray(v)) for k, v in weights.items()})
            messages = strategy.configure_train(rnd, arrays, config, grid)
            replies, unanswered, strategy.reply_nodes = _send_and_receive(grid, messages, cfg.round_timeout)
        t_train = time.monotonic() - t0
        new, _ = strategy.aggregate_train(rnd, replies)
        oc = strategy.outcome
        missing = [{"node": str(n), "worker": strategy.node_workers.get(n),
                    "reason": f"no reply within the round timeout ({cfg.round_timeout:g} s)"}
                   for n in sorted(unanswered.values())]
        for m in missing:
            log(WARNING, "round %d: worker %s (node %s) did not reply within %g s; the round goes on without it",
                rnd, m["worker"], m["node"], cfg.round_timeout)
        aggregated = new is not None
        if aggregated:
            weights = {k: v.numpy() for k, v in new.items()}
        t_eval = time.monotonic()
        acc = evaluate(weights)
        sha = global_sha256(weights)
        pairs = sorted(((strategy.node_workers.get(n), n) for n in nodes), key=lambda p: (p[0] is None, p[0] or 0, p[1]))
        entry = {"round": rnd, "accuracy": acc, "participants": [a["worker"] for a in oc.accepted],
                 "sampled": [w for w, _ in pairs], "sampled_nodes": [str(n) for _, n in pairs],
                 "aggregated": aggregated, "accepted": oc.accepted,
                 "rejected": oc.rejected, "failed": oc.failed, "missing": missing,
                 "weights_sha256": sha, "train_s": t_train, "eval_s": time.monotonic() - t_eval,
                 "round_s": time.monotonic() - t0}
        rounds.append(entry)
        events("round_end", **{k: v for k, v in entry.items() if k != "accepted"})
        log(INFO, "trident: round %d accuracy %.4f, participants %s%s", rnd, acc, entry["participants"],
            "" if aggregated else " (not aggregated: global model kept)")
    buf = io.BytesIO()
    np.savez(buf, **weights)
    atomic_write(out / "global-weights.npz", buf.getvalue())
    result = {"initial_accuracy": acc0, "rounds": rounds,
              "final_accuracy": rounds[-1]["accuracy"] if rounds else acc0,
              "weights_sha256": global_sha256(weights), "parameters": int(sum(v.size for v in weights.values())),
              "federation_s": time.monotonic() - t_start, "connected_at_start": len(connected),
              "config": json.loads(cfg.to_json())}
    atomic_write_text(out / "result.json", json.dumps(result, indent=2) + "\n")
    events("finished", final_accuracy=result["final_accuracy"], weights_sha256=result["weights_sha256"])
    return result


@server_app.main()
def main(grid: Grid, context: Context) -> None:
    run_config = context.run_config
    run_dir = Path(str(run_config["run-dir"]))
    cfg = FedConfig.from_json(str(run_config["trident"]))
    node_workers = {int(k): int(v) for k, v in json.loads(str(run_config["node-workers"])).items()}
    verify = bool(run_config.get("verify-workers", False))
    try:
        run_federation(grid, cfg, run_dir, node_workers, verify)
    except Exception as exc:
        _Events(run_dir / "server")("error", error=f"{type(exc).__name__}: {exc}")
        raise
