"""Full builds of the FP16 unit configurations (slow: tens of seconds to minutes each).

Run with ``pytest -m slow tests/fpga``. They check the flow end to end on the real units:
a bitstream, the unit's own cell counts, DSP use, and an achieved Fmax in the report.
The performance targets themselves are tracked by ``bench/fp16_fpga.py``.
"""
import json

import pytest

from trident.fpga.cli import main
from trident.fpga.configs import ConfigUnavailableError, fp16_unit_class
from trident.fpga.launcher import ToolNotFoundError, find_tool

pytestmark = pytest.mark.slow


def _require(config):
    try:
        for tool in ("yosys", "nextpnr-ecp5", "ecppack"):
            find_tool(tool)
    except ToolNotFoundError as exc:
        pytest.skip(str(exc))
    try:
        fp16_unit_class(config)
    except ConfigUnavailableError as exc:
        pytest.skip(str(exc))


@pytest.mark.parametrize("config,stages,dsp", [
    ("fp16-add", 4, 0),
    ("fp16-mul", 4, 1),
    ("fp16-fma", 4, 1),
])
def test_unit_build(config, stages, dsp, tmp_path):
    _require(config)
    report = tmp_path / "build.json"
    assert main(["build", "--config", config, "--stages", str(stages), "--freq", "100",
                 "--build-dir", str(tmp_path / "b"), "--report", str(report), "--quiet"]) == 0
    r = json.loads(report.read_text())
    unit = r["units"][config.replace("-", "_")]
    assert r["params"]["stages"] == stages == unit["stages"]
    assert unit["lut4"] > 50 and unit["lut4_kept"] > 50 and unit["ff"] > 16
    assert unit["dsp"] == dsp == r["dsp"]
    assert r["lut4"] == unit["lut4"] + r["harness"]["lut4_equiv"]
    # flattened, a few registers merge across the unit's boundary
    assert r["ff"] <= unit["ff"] + r["harness"]["ff"]
    assert r["harness"]["lut4_equiv"] < 40
    assert 20 < r["fmax_mhz"] < 500
    assert r["critical_path"]["nets"]
    assert (tmp_path / "b" / f"{config.replace('-', '_')}__ulx3s_85f.bit").stat().st_size > 10_000


def test_all_units_together(tmp_path):
    for config in ("fp16-add", "fp16-mul", "fp16-fma"):
        _require(config)
    report = tmp_path / "build.json"
    assert main(["build", "--config", "fp16-units", "--build-dir", str(tmp_path / "b"),
                 "--report", str(report), "--quiet"]) == 0
    r = json.loads(report.read_text())
    assert set(r["units"]) == {"fp16_add", "fp16_mul", "fp16_fma"}
    assert r["dsp"] == sum(u["dsp"] for u in r["units"].values()) >= 2
    assert r["ff"] <= r["harness"]["ff"] + sum(u["ff"] for u in r["units"].values())


def test_orangecrab_build(tmp_path):
    """The second ECP5 board (speed 8, csfBGA-285) builds too."""
    try:
        find_tool("nextpnr-ecp5")
    except ToolNotFoundError as exc:
        pytest.skip(str(exc))
    report = tmp_path / "build.json"
    assert main(["build", "--config", "blinky", "--board", "orangecrab-85f",
                 "--build-dir", str(tmp_path / "b"), "--report", str(report), "--quiet"]) == 0
    r = json.loads(report.read_text())
    assert r["part"] == "LFE5U-85F-8MG285C" and r["fmax_mhz"] > 100
