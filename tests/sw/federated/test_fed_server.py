"""The ServerApp's strategy on hand-made replies: validation, rejection, exact average."""
from types import SimpleNamespace

import numpy as np
from flwr.app import Array, ArrayRecord, MetricRecord, RecordDict

from trident.sw.federated.aggregate import fedavg_exact
from trident.sw.federated.config import FedConfig
from trident.sw.federated.server import TridentFedProx, make_strategy

REF = {"w": np.zeros((3, 4), np.float16), "r": np.zeros((2,), np.float16)}


def _arrays(seed):
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(v.shape).astype(np.float16) for k, v in REF.items()}


def _reply(node, worker, n, arrays, mid=None):
    content = RecordDict({"arrays": ArrayRecord({k: Array(v) for k, v in arrays.items()}),
                          "metrics": MetricRecord({"num-examples": n, "worker-id": worker})})
    return SimpleNamespace(metadata=SimpleNamespace(src_node_id=node, reply_to_message_id=mid or f"m{node}"),
                           has_error=lambda: False, content=content)


def _error(node, mid):
    return SimpleNamespace(metadata=SimpleNamespace(src_node_id=1, reply_to_message_id=mid), has_error=lambda: True,
                           error=SimpleNamespace(code=5, reason="Node Unavailable"))


def _strategy(verify=False, min_workers=1, registered=None):
    s = make_strategy(FedConfig(workers=4, min_workers=min_workers))
    s.setup(REF, registered or {}, min_workers, 4, verify)
    return s


def test_bad_updates_are_rejected_and_the_rest_averaged_exactly():
    s = _strategy()
    good = {w: _arrays(w) for w in range(4)}
    nan = {k: v.copy() for k, v in good[1].items()}
    nan["w"][0, 0] = np.nan
    shape = dict(good[2], w=good[2]["w"][:, :3].copy())
    replies = [_reply(30, 3, 50, good[3]), _reply(10, 1, 20, nan), _reply(0, 0, 10, good[0]),
               _reply(20, 2, 40, shape), _reply(40, 0, 10, good[0]), _reply(50, 7, 10, good[0])]
    arrays, _ = s.aggregate_train(1, replies)
    out = s.outcome
    assert [a["worker"] for a in out.accepted] == [0, 3]
    reasons = {r["node"]: r["reason"] for r in out.rejected}
    assert "non-finite" in reasons["10"] and "shape (3, 3)" in reasons["20"]
    assert "second update from worker 0" in reasons["40"] and "not one of 0..3" in reasons["50"]
    expect = fedavg_exact([(0, 10, good[0]), (3, 50, good[3])])
    got = {k: v.numpy() for k, v in arrays.items()}
    assert all(np.array_equal(got[k].view(np.uint16), expect[k].view(np.uint16)) for k in REF)


def test_min_workers_keeps_the_global_model():
    s = _strategy(min_workers=2)
    arrays, _ = s.aggregate_train(1, [_reply(0, 0, 10, _arrays(0))])
    assert arrays is None and len(s.outcome.accepted) == 1


def test_registered_nodes_must_claim_their_worker_id():
    s = _strategy(verify=True, registered={100: 0, 101: 1})
    arrays, _ = s.aggregate_train(1, [_reply(100, 0, 5, _arrays(0)), _reply(101, 0, 5, _arrays(1))])
    assert [a["worker"] for a in s.outcome.accepted] == [0]
    assert "registered as worker 1" in s.outcome.rejected[0]["reason"]


def test_error_replies_name_the_destination_node():
    s = _strategy(registered={100: 2})
    s.reply_nodes = {"msg-a": 100}
    s.aggregate_train(1, [_error(100, "msg-a"), _reply(0, 0, 10, _arrays(0))])
    assert s.outcome.failed == [{"node": "100", "worker": 2, "reason": "error reply (code 5): Node Unavailable"}]


def test_fedprox_sends_mu():
    s = make_strategy(FedConfig(strategy="fedprox", mu=0.01))
    assert isinstance(s, TridentFedProx) and s.proximal_mu == 0.01
