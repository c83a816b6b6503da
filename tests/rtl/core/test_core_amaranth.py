"""The core in the Amaranth simulator against the golden device (``golden.hw.program``):
the error codes (default run), whole layer programs and a training step (``-m slow``);
every word of DRAM after each program, the DRAM traffic counters.

One simulation (one elaboration, ~15 s) runs all programs of a test back to back, the
memory peer adding latency, jitter and back-pressure.  The Amaranth simulator runs this
design at ~150 cycles/s, so the volume is in test_core_cocotb.py (Verilator, Icarus).
"""

import numpy as np
import pytest

import core_cases as K
from trident.golden.hw import descriptors as D
from trident.rtl.core.core import TridentCore, core_params
from trident.rtl.core.testbench import run_program

PARAMS = core_params(**K.SMALL_CORE)
#: every bad program: one per error code, and the variants (``"BPWG-ADDRESS_RANGE-e"``, …)
CASES = list(K.bad_programs(np.random.default_rng(7), PARAMS))


@pytest.fixture(scope="module")
def error_runs():
    """Every error code: the bad descriptor first (ADDRESS_RANGE: after a good one)."""
    rng = np.random.default_rng(7)
    bad = K.bad_programs(rng, PARAMS, good_first=False)
    bad[D.ErrorCode.ADDRESS_RANGE] = K.bad_programs(rng, PARAMS)[D.ErrorCode.ADDRESS_RANGE]
    jobs = [(c.memory.copy(), c.pcs[0]) for c in bad.values()]
    results = run_program(TridentCore(**K.SMALL_CORE), jobs, latency=2, jitter=2,
                          backpressure=0.2, seed=1, max_cycles=20_000)
    return {code: (c, *c.golden(PARAMS), job[0], res)
            for (code, c), job, res in zip(bad.items(), jobs, results)}


@pytest.mark.parametrize("key", CASES, ids=lambda c: getattr(c, "name", c))
def test_error_code(error_runs, key):
    """The core stops with the golden's code and address (never hangs: the peer gives up
    after 20,000 cycles), after the descriptors before it completed; DRAM as the golden."""
    case, gold, statuses, mem, res = error_runs[key]
    code = key if isinstance(key, D.ErrorCode) else D.ErrorCode[key.removeprefix("BPWG-").split("-")[0]]
    assert statuses[0].error == code
    assert res.done and res.error == int(code) and res.error_pc == statuses[0].error_pc
    assert np.array_equal(mem, gold), K.describe_diff(gold, mem, case.regions)
    assert res.counters["descriptors"] == len(statuses[0].counters)
    assert res.counters["words_read"] == statuses[0].words_read


@pytest.mark.slow
def test_layers_and_training_step():
    """Layer programs (spike LIF hard, analog KLIF soft sigmoid with momentum) and a
    compiled 16-12-4 training step, in one simulation."""
    rng = np.random.default_rng(3)
    layers = [K.layer_program(rng, PARAMS, n_in=37, n_out=13, steps=2, batch=2, density=0.5),
              K.layer_program(rng, PARAMS, n_in=20, n_out=9, steps=3, batch=1, density=0.3,
                              kind="klif", soft_reset=True, surrogate="sigmoid", analog=True,
                              momentum=True)]
    net, host, *_ = K.network(PARAMS)
    jobs = [(c.memory.copy(), c.pcs[0]) for c in layers]
    net_mem = net.memory.copy()
    jobs += [(net_mem, net.pcs[0]), (net_mem, net.pcs[1], host)]
    results = run_program(TridentCore(**K.SMALL_CORE), jobs, latency=3, jitter=3,
                          backpressure=0.2, seed=2)
    for case, (mem, _), res in zip(layers, jobs, results):
        gold, statuses = case.golden(PARAMS)
        assert res.error == 0 and np.array_equal(mem, gold), K.describe_diff(gold, mem, case.regions)
        assert res.counters["words_written"] == statuses[0].words_written
    gold, statuses = K.golden_with_host(net, host, PARAMS)
    assert [r.error for r in results[-2:]] == [0, 0]
    assert np.array_equal(net_mem, gold), K.describe_diff(gold, net_mem, net.regions)
