"""Helpers of the SoC tests."""
import gc
import warnings


def collect_refused():
    """Collect a component whose constructor refused its arguments: Amaranth would warn
    that it was never elaborated."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gc.collect()
