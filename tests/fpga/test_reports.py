"""Parsing of nextpnr/yosys outputs captured from a real build (tests/fpga/data)."""
import json

import pytest

from trident.fpga import reports
from trident.fpga.build import write_json_atomic


def test_nextpnr_json_report(data_dir):
    data = json.loads((data_dir / "blinky-nextpnr-report.json").read_text())
    r = reports.parse_nextpnr_report(data)
    assert (r["lut4"], r["ff"], r["dsp"], r["bram"]) == (42, 42, 0, 0)
    assert r["clock"] == "$glbnet$clk$TRELLIS_IO_IN"
    assert r["fmax_mhz"] == pytest.approx(246.31, abs=0.01)
    assert r["timing_met"] is True
    assert r["utilization"]["TRELLIS_IO"] == {"available": 365, "used": 9}
    assert "MULT18X18D" not in r["utilization"]              # unused BELs are dropped
    cp = r["critical_path"]
    assert cp["start"] == "core.counter_TRELLIS_FF_Q_11"
    assert cp["delay_ns"] == pytest.approx(4.06, abs=0.01)
    assert cp["logic_levels"] == 3 and cp["nets"][0]["net"] == "core.counter[21]"


def test_nextpnr_log_fallback(data_dir):
    r = reports.parse_nextpnr_log((data_dir / "blinky-next.log").read_text())
    assert (r["lut4"], r["ff"], r["dsp"], r["bram"]) == (42, 42, 0, 0)
    assert r["fmax_mhz"] == pytest.approx(246.31)           # the last (post-route) figure
    assert r["clocks"]["$glbnet$clk$TRELLIS_IO_IN"]["constraint_mhz"] == 100.0
    assert r["critical_path_text"].startswith("Info: Critical path report for clock")
    assert "core.counter[21]" in r["critical_path_text"]


def test_failing_timing_is_a_warning_line(data_dir):
    r = reports.parse_nextpnr_log((data_dir / "blinky-400mhz-next.log").read_text())
    assert r["fmax_mhz"] == pytest.approx(246.31)
    assert r["timing_met"] is False


def test_yosys_stat_and_version(data_dir):
    text = (data_dir / "blinky-yosys.log").read_text()
    assert reports.parse_yosys_stat(text) == {"CCU2C": 13, "LUT4": 10, "PFUMX": 1,
                                              "TRELLIS_FF": 42}
    assert reports.yosys_version(data_dir / "blinky-yosys.log") == "Yosys 0.70 (git sha1 28ba3cb92)"
    assert reports.parse_yosys_stat("no stats here") == {}


def test_tool_times(data_dir, tmp_path):
    t = reports.tool_times(data_dir / "blinky-tools.jsonl")
    assert set(t) == {"yosys", "nextpnr-ecp5", "ecppack"}
    assert reports.tool_times(tmp_path / "missing.jsonl") == {}


def test_main_clock_choice():
    assert reports.main_clock(["$glbnet$pll_out", "$glbnet$clk$TRELLIS_IO_IN"]) == \
        "$glbnet$clk$TRELLIS_IO_IN"
    assert reports.main_clock(["only"]) == "only"
    assert reports.main_clock([]) is None


def test_parse_build_dir_prefers_json(data_dir, tmp_path):
    for src, dst in (("blinky-nextpnr-report.json", "nextpnr-report.json"),
                     ("blinky-next.log", "next.log"), ("blinky-yosys.log", "yosys.log")):
        (tmp_path / dst).write_text((data_dir / src).read_text())
    r = reports.parse_build_dir(tmp_path)
    assert r["utilization_source"] == "nextpnr-report.json"
    assert r["yosys_cells"]["LUT4"] == 10 and "critical_path_text" in r
    (tmp_path / "nextpnr-report.json").unlink()
    assert reports.parse_build_dir(tmp_path)["utilization_source"] == "next.log"


def test_report_written_atomically(tmp_path):
    path = tmp_path / "sub" / "build.json"
    write_json_atomic(path, {"a": 1})
    write_json_atomic(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    assert [p.name for p in path.parent.iterdir()] == ["build.json"]   # no temp files left
    with pytest.raises(TypeError):
        write_json_atomic(path, {"bad": object()})
    assert json.loads(path.read_text()) == {"a": 2}                    # old report intact
    assert [p.name for p in path.parent.iterdir()] == ["build.json"]


def test_yosys_per_module_stat(data_dir):
    """The extra yosys pass of an fp16-add build (FPAdd, 4 stages) keeps the unit apart."""
    mods = reports.parse_yosys_stat_modules((data_dir / "unit-stat.log").read_text())
    assert set(mods) == {"top", "top.core.fp16_add"}
    unit = mods["top.core.fp16_add"]
    assert unit == {"CCU2C": 32, "L6MUX21": 16, "LUT4": 299, "PFUMX": 63, "TRELLIS_FF": 122}
    assert reports.lut4_equivalent(unit) == 363
    assert mods["top"] == {"LUT4": 8, "TRELLIS_FF": 99}          # the harness
    assert reports.lut4_equivalent({"LUT4": 5, "CCU2C": 2, "PFUMX": 3}) == 9


def test_unit_report_subtracts_harness():
    from types import SimpleNamespace

    from trident.fpga.build import _unit_report
    cells = {"top.core.fp16_add": {"LUT4": 349, "CCU2C": 32, "TRELLIS_FF": 122,
                                   "lut4_equiv": 413},
             "top": {"LUT4": 8, "TRELLIS_FF": 99, "lut4_equiv": 8}}
    report = {"lut4": 407}
    core = SimpleNamespace(units={"fp16_add": SimpleNamespace(stages=4)})
    _unit_report(report, cells, ["fp16_add"], core)
    assert report["harness"] == {"lut4_equiv": 8, "ff": 99}
    u = report["units"]["fp16_add"]
    assert (u["lut4"], u["lut4_kept"], u["ff"], u["dsp"], u["stages"]) == (399, 413, 122, 0, 4)
    assert u["cells"] == {"LUT4": 349, "CCU2C": 32, "TRELLIS_FF": 122}
