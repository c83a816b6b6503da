"""EDAM generation and edalize flow configuration (no place and route: Yosys only writes
and reads the board's Verilog)."""
import json
import re
import subprocess

import pytest

from amaranth.hdl import Assert, Elaboratable, Module, Print, Signal

from trident.fpga.boards import get_board
from trident.fpga.build import edalize_flow, generate, launcher_command
from trident.fpga.configs import get_config
from trident.fpga.edam import design_name, make_edam, verilog_for
from trident.fpga.harness import BoardTop
from trident.fpga.launcher import find_tool


def test_design_name():
    assert design_name("fp16-add", "ulx3s-85f") == "fp16_add__ulx3s_85f"


def test_trellis_edam():
    board = get_board("ulx3s-85f")
    files = [{"name": "top.v", "file_type": "verilogSource"},
             {"name": "top.lpf", "file_type": "LPF"}]
    edam = make_edam("x", board, files, freq_mhz=100, seed=7, report_json="r.json")
    assert edam["toplevel"] == "top" and edam["files"] == files
    opts = edam["flow_options"]["nextpnr_options"]
    assert opts[:5] == ["--85k", "--package", "CABGA381", "--speed", "6"]
    assert "--timing-allow-fail" in opts
    assert opts[opts.index("--seed") + 1] == "7"
    assert opts[opts.index("--router") + 1] == "router1"       # nextpnr's own default, spelled out
    assert opts[opts.index("--report") + 1] == "r.json"
    assert all(not f["name"].startswith("/") for f in edam["files"])


def test_trellis_edam_router2_and_an_unknown_router():
    board = get_board("ulx3s-85f")
    files = [{"name": "top.v", "file_type": "verilogSource"}]
    opts = make_edam("x", board, files, freq_mhz=100, router="router2")["flow_options"][
        "nextpnr_options"]
    assert opts[opts.index("--router") + 1] == "router2"
    with pytest.raises(ValueError, match="router 'router3': nextpnr has router1, router2"):
        make_edam("x", board, files, freq_mhz=100, router="router3")


def test_generate_writes_relative_sources_and_makefile(tmp_path):
    board, config = get_board("ulx3s-85f"), get_config("blinky")
    flow, edam = generate(config, board, tmp_path, freq_mhz=80, seed=3)
    assert json.loads((tmp_path / "edam.json").read_text()) == edam
    assert 'FREQUENCY PORT "clk" 80.000 MHZ;' in (tmp_path / "top.lpf").read_text()
    assert "module top(" in (tmp_path / "top.v").read_text()
    make = (tmp_path / "Makefile").read_text()
    # every tool goes through the launcher, with paths relative to the build dir
    tool_lines = [l for l in make.splitlines() if l.startswith("\t")]
    assert tool_lines and all(l.startswith("\t$(EDALIZE_LAUNCHER) ") for l in tool_lines)
    assert str(tmp_path) not in make
    assert "--lpf top.lpf" in make and "--textcfg blinky__ulx3s_85f.config" in make
    assert "ecppack --compress blinky__ulx3s_85f.config blinky__ulx3s_85f.bit" in make
    assert "-p 'tcl edalize_yosys_template.tcl'" in make
    assert "trident.fpga.launcher" in launcher_command()


def test_flows_do_not_leak_options_between_builds(tmp_path):
    """edalize keeps Trellis options in a class dict; two builds in a process must not
    accumulate them."""
    board = get_board("ulx3s-85f")
    edam = make_edam("x", board, [{"name": "top.v", "file_type": "verilogSource"}],
                     freq_mhz=100)
    for i in range(3):
        d = tmp_path / str(i)
        d.mkdir()
        edalize_flow("trellis", edam, d).configure()
        make = (d / "Makefile").read_text()
        assert len(re.findall(r"--seed", make)) == 2          # build + build-gui targets
        assert make.count("--timing-allow-fail") == 2


def test_vivado_project_generation(tmp_path):
    flow, edam = generate(get_config("blinky"), get_board("kcu105"), tmp_path, freq_mhz=125)
    assert edam["flow_options"] == {"part": "xcku040-ffva1156-2-e"}
    tcl = (tmp_path / "blinky__kcu105.tcl").read_text()
    assert "set_property part xcku040-ffva1156-2-e" in tcl
    assert "read_verilog {top.v}" in tcl and "read_xdc {top.xdc}" in tcl
    assert "-period 8.000" in (tmp_path / "top.xdc").read_text()
    assert "vivado" in (tmp_path / "Makefile").read_text()


class _CheckedCounter(Elaboratable):
    """A counter with a simulation assertion and a print, as the Trident core has."""

    def __init__(self):
        self.leds = Signal(4)

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.leds.eq(self.leds + 1)
        m.d.sync += Assert(self.leds != 9, "counter: past 8")
        with m.If(self.leds == 15):
            m.d.sync += Print("counter wrapped")
        return m


def test_board_verilog_has_no_assertions_and_reads_as_plain_verilog(tmp_path):
    """Yosys reads the board's sources as Verilog-2005, which has no immediate ``assert``:
    the design's assertions are removed (its prints stay, synthesis ignores them)."""
    text = verilog_for(BoardTop(_CheckedCounter(), 4))
    assert "assert" not in text and "$write" in text
    (tmp_path / "top.v").write_text(text)
    done = subprocess.run([find_tool("yosys"), "-q", "-p",
                           "read_verilog top.v; synth -top top; stat"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
