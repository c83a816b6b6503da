"""pytest fixtures for RTL tests; import them in a ``conftest.py``::

    from trident.verify.pytest_fixtures import *   # noqa: F401,F403

Fixtures
--------
seed
    A per-test 32-bit seed derived from ``$TRIDENT_SEED`` (random when unset, printed)
    and the test's node id, printed so a failure can be reproduced.
rng
    ``numpy.random.default_rng(seed)``.
simulator
    Parametrize a test with ``@pytest.mark.parametrize("simulator", SIMULATOR_PARAMS)``
    to run it on every selected simulator; unavailable ones are skipped.
"""

import numpy as np
import pytest

from .runner import base_seed, derive_seed, selected_simulators, simulator_available

__all__ = ["seed", "rng", "SIMULATOR_PARAMS", "require_simulator"]


@pytest.fixture
def seed(request):
    value = derive_seed(request.node.nodeid)
    print(f"[trident] seed {value} (TRIDENT_SEED={base_seed()})")
    return value


@pytest.fixture
def rng(seed):
    return np.random.default_rng(seed)


def require_simulator(name):
    """Skip the calling test when simulator ``name`` is not installed."""
    if not simulator_available(name):
        pytest.skip(f"{name} is not installed")


#: ``pytest.param`` per selected simulator (``$TRIDENT_SIMS``), with readable ids.
SIMULATOR_PARAMS = [pytest.param(s, id=s) for s in selected_simulators()]
