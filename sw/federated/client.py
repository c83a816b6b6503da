"""The ClientApp: one Trident worker training on its device with its private partition.

Flower starts this app in a fresh ``flwr-clientapp`` process for every message its
SuperNode receives.  The SuperNode's ``--node-config`` says who the worker is:

``partition-id``   the worker id (0…W−1), which selects its data partition;
``num-partitions`` W, checked against the run's settings;
``worker-dir``     the worker's own folder in the run directory (its event log);
``fault``          optional, tests and demos only: ``KIND@ROUND[,KIND@ROUND…]``
                   (see :class:`trident.sw.federated.config.Fault`).

A training message carries the global model (``arrays``: named binary16 arrays) and a
``config`` record with ``server-round``, ``trident`` (the run's :class:`FedConfig` as JSON)
and, under FedProx, ``proximal-mu``.  The reply carries the new arrays and a ``metrics``
record whose ``num-examples`` (the partition size) weights the average.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
from flwr.app import Array, ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from .config import FedConfig

__all__ = ["client_app", "worker_event"]

client_app = ClientApp()


def worker_event(worker_dir: str | None, event: str, **fields) -> None:
    """Append one JSON line to the worker's event log (the orchestrator watches it)."""
    if not worker_dir:
        return
    path = Path(worker_dir) / "events.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"time": time.time(), "event": event, "pid": os.getpid(), **fields})
    with open(path, "a") as f:
        f.write(line + "\n")
        f.flush()


def _faults(node_config) -> dict[int, str]:
    text = str(node_config.get("fault", "") or "")
    out = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        kind, rnd = item.split("@", 1)
        out[int(rnd)] = kind.strip()
    return out


def _corrupt(weights: dict[str, np.ndarray], kind: str) -> dict[str, np.ndarray]:
    weights = {k: v.copy() for k, v in weights.items()}
    first = next(iter(weights))
    if kind == "nan":
        weights[first].flat[0] = np.nan
    elif kind == "inf":
        weights[first].flat[:3] = np.inf
    elif kind == "shape":
        weights[first] = weights[first][..., :-1].copy()
    return weights


@client_app.train()
def train(msg: Message, context: Context) -> Message:
    from .local import local_train   # torch and the golden model load only in the worker process

    node = context.node_config
    worker = int(node["partition-id"])
    worker_dir = str(node.get("worker-dir", "") or "")
    config = msg.content["config"]
    rnd = int(config["server-round"])
    worker_event(worker_dir, "train_start", round=rnd)
    cfg = FedConfig.from_json(str(config["trident"]))
    if int(node.get("num-partitions", cfg.workers)) != cfg.workers:
        raise ValueError(f"this SuperNode is configured for {node['num-partitions']} partitions, "
                         f"the run has {cfg.workers} workers")
    fault = _faults(node).get(rnd)
    if fault == "crash":
        worker_event(worker_dir, "fault", round=rnd, kind=fault)
        raise RuntimeError(f"injected fault: worker {worker} crashes in round {rnd}")
    mu = float(config.get("proximal-mu", 0.0))
    global_weights = {name: arr.numpy() for name, arr in msg.content["arrays"].items()}
    weights, metrics = local_train(cfg, worker, rnd, global_weights, mu)
    if fault in ("nan", "inf", "shape"):
        worker_event(worker_dir, "fault", round=rnd, kind=fault)
        weights = _corrupt(weights, fault)
    if fault == "hang":
        worker_event(worker_dir, "fault", round=rnd, kind=fault)
        time.sleep(cfg.round_timeout + 5)
    worker_event(worker_dir, "train_end", round=rnd, samples=metrics["num-examples"],
                 loss=metrics["train-loss"], seconds=metrics["train-time-s"])
    record = RecordDict({
        "arrays": ArrayRecord({name: Array(np.ascontiguousarray(a)) for name, a in weights.items()}),
        "metrics": MetricRecord(metrics),
    })
    return Message(content=record, reply_to=msg)
