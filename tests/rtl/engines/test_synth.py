"""The synthesis helpers on a small unit: the per-submodule area breakdown, and place and
route with a chosen nextpnr router."""

from pathlib import Path

import pytest

from trident.rtl.engines.synth import (BREAKDOWN_CELLS, area_breakdown, breakdown_table,
                                       synthesize_engine)
from trident.rtl.engines.update import UpdateUnit


def test_area_breakdown_of_the_update_unit(tmp_path):
    """The update unit: its one FMA holds its one multiplier, the credit buffer its LUT RAM;
    the rows add up to the total, and ``depth=2`` splits the buffer into its FIFO."""
    params = {"lanes": 1, "momentum": True, "stages": 3}
    res = area_breakdown(UpdateUnit, params, build_dir=tmp_path)
    rows = {r["name"]: r for r in res["rows"]}
    assert set(rows) == {"fma", "out", "(own logic)"}
    assert rows["fma"]["dsp"] == 1 and res["total"]["dsp"] == 1
    assert rows["fma"]["lut4"] > rows["out"]["lut4"] > 0
    assert rows["out"]["lut_ram"] > 0 and rows["fma"]["lut_ram"] == 0
    for key in BREAKDOWN_CELLS:
        assert res["total"][key] == sum(r[key] for r in res["rows"])
    assert [r["lut4"] for r in res["rows"]] == sorted((r["lut4"] for r in res["rows"]), reverse=True)
    table = breakdown_table(res)
    assert "| fma |" in table and "**total**" in table
    deeper = {r["name"] for r in area_breakdown(UpdateUnit, params, build_dir=tmp_path,
                                                 depth=2)["rows"]}
    assert {"fma", "out", "out.out", "(own logic)"} <= deeper


def test_area_breakdown_refuses_depth_zero(tmp_path):
    with pytest.raises(ValueError, match="depth"):
        area_breakdown(UpdateUnit, {"lanes": 1}, build_dir=tmp_path, depth=0)


def test_synthesize_engine_refuses_an_unknown_router(tmp_path):
    with pytest.raises(ValueError, match="router3.*router1, router2"):
        synthesize_engine(UpdateUnit, {"lanes": 1}, build_dir=tmp_path, router="router3")
    assert not any(tmp_path.iterdir())          # refused before anything was built


def test_place_and_route_with_router2(tmp_path):
    """nextpnr is told which router to run, and the figures come back from its report."""
    res = synthesize_engine(UpdateUnit, {"lanes": 1, "stages": 3}, build_dir=tmp_path,
                            router="router2")
    log = (Path(res["build_dir"]) / "nextpnr.log").read_text()
    assert "Running router2" in log and "Router2 time" in log
    assert res["dsp"] == 1 and res["lut4"] > 0 and res["fmax_mhz"] > 0
