"""Fixtures of the neuron-unit tests: ``seed``, ``rng``; this folder on ``sys.path`` for
the shared vector helpers (``neuron_cases``) and the cocotb module (``cocotb_neuron``)."""
import sys
from pathlib import Path

from trident.verify.pytest_fixtures import rng, seed  # noqa: F401

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
