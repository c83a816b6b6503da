"""Fixtures of the RTL harness: ``seed``, ``rng`` (see trident.verify.pytest_fixtures)."""
from trident.verify.pytest_fixtures import rng, seed  # noqa: F401
