"""The driver tests use the SoC tests' test double (tests/rtl/soc/traffic_core.py)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "rtl" / "soc"))
from trident.verify.pytest_fixtures import rng, seed  # noqa: E402,F401
