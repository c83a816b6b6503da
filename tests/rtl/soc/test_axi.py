"""The AXI4 master adapter in cocotb against cocotbext-axi's AxiRam (Icarus by default;
Verilator under -m slow)."""

import os
import shutil
from pathlib import Path

import pytest
from traffic_core import TrafficSoC

from trident.sw.driver.sim import icarus_compatible
from trident.verify.pytest_fixtures import SIMULATOR_PARAMS, require_simulator
from trident.verify.runner import run_cocotb
from trident.verify.verilog import generate_verilog

pytest.importorskip("cocotbext.axi")


def run_axi(simulator, cores, pause, seed):
    require_simulator(simulator)
    words = 1024
    vmod = generate_verilog(TrafficSoC, {"cores": cores, "dram": "axi", "dram_words": words})
    if simulator == "icarus":
        vmod = icarus_compatible(vmod)
    out = run_cocotb(vmod, simulator, test_module="cocotb_axi", label=f"axi-{cores}",
                     python_path=[Path(__file__).parent],
                     extra_env={"TRIDENT_CORES": str(cores), "TRIDENT_DRAM_WORDS": str(words),
                                "TRIDENT_AXI_PAUSE": str(int(pause)),
                                "TRIDENT_SEED_AXI": str(seed)})
    assert out["passed"], f"see {out['log']}"
    if not os.environ.get("TRIDENT_KEEP_RUNS"):
        shutil.rmtree(out["test_dir"], ignore_errors=True)


def test_axi_dram_two_cores_with_stalls(seed):
    run_axi("icarus", 2, True, seed)


@pytest.mark.slow
@pytest.mark.parametrize("simulator", SIMULATOR_PARAMS)
@pytest.mark.parametrize("cores", [1, 4])
def test_axi_dram_slow(simulator, cores, seed):
    run_axi(simulator, cores, True, seed)
