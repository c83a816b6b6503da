"""Federated on-edge training across Trident workers with Flower (``trident fed``).

Each worker is a Flower SuperNode whose ClientApp trains on its own device (the golden
device now; ``sim`` and ``board`` plug into the same factory later) with its private data
partition; a ServerApp runs FedAvg or FedProx with exact binary16 aggregation and evaluates
the global model on the server.  ``trident fed`` starts the SuperLink, the SuperNodes and
``flwr run`` as separate processes on 127.0.0.1 and stops all of them when it ends.

Modules
-------
config        FedConfig (every setting), partition specs, fault-injection specs
partition     IID and Dirichlet(α) partitions, deterministic for a seed
aggregate     update validation and the exact FedAvg arithmetic for binary16 weights
devices       the device factory; GoldenDevice with FedProx in binary16
local         local training, server-side evaluation, and an in-process simulation
client        the Flower ClientApp
server        the Flower ServerApp and its strategies
orchestrator  the processes, the run directory, supervision, restarts, the report
processes     child processes that never outlive ``trident fed``
security      TLS CA/certificate and SuperNode keys (``cryptography``)
report        the accuracy plot and the printed summary
cli           ``add_fed_parser(subparsers)`` for the ``trident`` command

See docs/federated.md.
"""
