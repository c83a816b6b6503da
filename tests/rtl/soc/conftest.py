"""The SoC tests' test double (traffic_core.py) is imported from this folder."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from trident.verify.pytest_fixtures import rng, seed  # noqa: E402,F401

