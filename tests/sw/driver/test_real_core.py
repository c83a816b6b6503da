"""The real core (trident.rtl.core.core.TridentCore) in the SoC, driven through the sim
transport, against the golden transport with the golden device as executor: the same
driver calls give the same status, error codes, counters and — for a compiled network's
forward pass on two cores — the same DRAM, word for word."""

import numpy as np
import pytest
import torch

from trident.rtl.soc.regmap import SoCParams
from trident.rtl.soc.soc import SoC
from trident.sw.driver import CoreError, Device, GoldenTransport, golden_executor
from trident.verify.pytest_fixtures import require_simulator

WORDS = 1 << 14
CORE = dict(lanes=4, weight_depth=256, state_depth=64, max_inputs=64, max_steps=8, max_batch=8,
            addr_width=16, dram_words=WORDS)


def observe_errors(dev, D):
    """END on core 0, a bad opcode on core 1: what the driver sees."""
    bad = D.Descriptor(**{f.name: 0 for f in D.FIELDS})
    bad.op = max(int(op) for op in D.Opcode) + 1
    dev.write_mem(WORDS - 64, np.zeros(D.DESC_WORDS, np.uint32))
    dev.write_mem(WORDS - 32, np.array(D.pack(bad), np.uint32))
    counters = dev.run(0, WORDS - 64, timeout=120)
    with pytest.raises(CoreError) as err:
        dev.run(1, WORDS - 32, timeout=120)
    keep = ("descriptors", "words_read", "words_written", "dram_bytes_read", "dram_bytes_written")
    return ({k: counters[k] for k in keep}, err.value.code, err.value.pc,
            dev.read_csr("core[0].status"))


def forward_pass(dev, prog, image, queued):
    """Load the image, run every forward phase on the cores (through the program queue, or
    phase by phase from the host); DRAM, the bytes written and each core's words read."""
    dev.write_mem(0, image)
    dev.clear_counters()
    if queued:
        run = dev.run_queued(prog.forward_phases, timeout=300)
        words = {core: counters["words_read"] for core, counters in run.counters.items()}
    else:
        words = {}
        for phase in prog.forward_phases:
            for core, counters in dev.run_phase(phase, timeout=300).items():
                words[core] = words.get(core, 0) + counters["words_read"]
    return dev.read_mem(0, len(image)), dev.dram_traffic()["bytes_written"], words


def compiled_mlp(core_params):
    """MLP 64-16-10 (LIF), batch 4, T = 4, analog input, compiled for two cores."""
    from trident.golden.hw import HwExactNetwork
    from trident.golden.hw import compiler as C
    from trident.golden.network import SpikingNetwork
    from trident.golden.neurons import NeuronConfig
    torch.manual_seed(0)
    m = SpikingNetwork("fc16", (64,), 10, NeuronConfig(kind="lif", tau=2.0, detach_reset=True,
                                                       surrogate="sigmoid"))
    with torch.no_grad():
        m.body[0].weight.mul_(3.0)
        m.readout.weight.mul_(4.0)
    net = HwExactNetwork.from_float(m, lr=0.5, momentum=0.0)
    prog = C.compile(net, batch=4, core=core_params, steps=4, direct_input=True, cores=2)
    x = torch.rand(4, 64, generator=torch.Generator().manual_seed(1)).unsqueeze(0).repeat(4, 1, 1)
    image = np.array(prog.memory, dtype=np.uint32)
    prog.write_input(image, x)
    return prog, image


@pytest.mark.slow
def test_real_core_sim_matches_golden():
    core_mod = pytest.importorskip("trident.rtl.core.core")
    from trident.golden.hw import descriptors as D
    require_simulator("verilator")
    from trident.sw.driver.sim import SimTransport
    probe = core_mod.TridentCore(**CORE)
    probe._MustUse__silence = True          # only asked for its parameters
    core_params = probe.core_params()
    prog, image = compiled_mlp(core_params)
    golden = Device(GoldenTransport(SoCParams(cores=2, addr_width=16, dram_words=WORDS),
                                    executor=golden_executor(core_params)))
    expected = observe_errors(golden, D)
    assert expected[1] == D.ErrorCode.BAD_OPCODE and expected[2] == WORDS - 32
    expected_mem, _, expected_words = forward_pass(golden, prog, image, queued=False)
    assert not np.array_equal(expected_mem, image)          # the pass wrote something
    assert len(prog.forward_phases) > 1 and sorted(expected_words) == [0, 1]
    mem, _, words = forward_pass(golden, prog, image, queued=True)
    assert np.array_equal(mem, expected_mem) and words == expected_words
    with Device(SimTransport(SoC, {"core": core_mod.TridentCore, "core_params": CORE, "cores": 2,
                                   "dram_words": WORDS}, simulator="verilator")) as sim:
        assert observe_errors(sim, D) == expected
        for queued in (False, True):
            mem, written, words = forward_pass(sim, prog, image, queued)
            assert np.array_equal(mem, expected_mem)
            assert written > 0 and words == expected_words


@pytest.mark.parametrize("max_burst,dma_run", [pytest.param(1, 1, marks=pytest.mark.slow), (16, 8)])
def test_real_core_on_axi_dram_matches_golden(max_burst, dma_run):
    """Two real cores on the SoC's AXI port, cocotbext-axi's AxiRam behind it pausing every
    channel at random: a compiled forward pass leaves DRAM as the golden device does, and the
    AXI transaction counters show the bursts (single beats with ``max_burst = 1``)."""
    core_mod = pytest.importorskip("trident.rtl.core.core")
    pytest.importorskip("cocotbext.axi")
    require_simulator("verilator")
    from trident.sw.driver.sim import SimTransport
    probe = core_mod.TridentCore(**CORE)
    probe._MustUse__silence = True
    prog, image = compiled_mlp(probe.core_params())
    golden = Device(GoldenTransport(SoCParams(cores=2, addr_width=16, dram_words=WORDS),
                                    executor=golden_executor(probe.core_params())))
    expected_mem, _, expected_words = forward_pass(golden, prog, image, queued=True)
    soc = {"core": core_mod.TridentCore, "core_params": dict(CORE, dma_run=dma_run), "cores": 2,
           "dram_words": WORDS, "dram": "axi", "max_burst": max_burst}
    with Device(SimTransport(SoC, soc, simulator="verilator", axi_stall=0.3)) as sim:
        mem, written, words = forward_pass(sim, prog, image, queued=True)
        traffic = sim.dram_traffic()
        assert sim.read_csr("dram.status") == {"error": 0, "busy": 0}
    assert np.array_equal(mem, expected_mem) and words == expected_words
    read_words, written_words = traffic["bytes_read"] // 4, traffic["bytes_written"] // 4
    assert written == traffic["bytes_written"] and read_words > 0 and written_words > 0
    if max_burst == 1:
        assert (traffic["read_bursts"], traffic["write_bursts"]) == (read_words, written_words)
    else:       # this small layer's rows are short: the output rows give the longer bursts
        assert traffic["read_bursts"] < read_words
        assert traffic["write_bursts"] * 2 < written_words
