import argparse
import json

import pytest
import torch

from trident.golden.conversion import ConvertibleANN, save_ann
from trident.golden.conversion.cli import add_convert_parser, main, parse_T_list

FAST = ["--model", "fc16", "--epochs", "2", "--finetune-epochs", "1", "--calib-epochs", "1",
        "--calib-samples", "64", "--calib-val-samples", "32", "--quiet"]


def test_parse_T_list():
    assert parse_T_list("1,2, 8") == (1, 2, 8)
    for bad in ("", "0,2", "a", "2,-1", "1.5"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_T_list(bad)


def test_parser_wiring():
    parser = argparse.ArgumentParser()
    add_convert_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["convert", "--T", "2,4"])
    assert args.T == (2, 4) and callable(args.handler)
    assert parser.parse_args(["convert"]).T == (1, 2, 4, 8, 16, 32)


@pytest.mark.parametrize("argv", [["--T", "0,4"], ["--T", "x"], ["--offset", "half"], ["--fire", "gt"],
                                  ["--calib-batch", "0"]])
def test_argument_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["convert", *argv])
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err


@pytest.mark.parametrize("argv,message", [
    (["--model", "conv4k3,maxpool2"], "max pooling"),
    (["--model", "fc16,gru"], "cannot parse"),
    (["--dataset", "mnist"], "unknown dataset"),
    (["--calib-steps", "abx"], "calibration steps"),
    (["--noise-p", "1.5"], "noise_p"),
    (["--calib-samples", "2000"], "calibration needs"),
    (["--ann", "/nonexistent/ann.pt"], "does not exist"),
])
def test_bad_input_returns_2_with_a_message(argv, message, capsys):
    assert main(["convert", *FAST, *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("trident convert: error:") and message in err


def test_unsuitable_ann_files(tmp_path, capsys):
    relu = ConvertibleANN("fc16", (1, 8, 8), 10, activation="relu")
    save_ann(relu, tmp_path / "relu.pt")
    assert main(["convert", *FAST, "--ann", str(tmp_path / "relu.pt")]) == 2
    assert "clip activations" in capsys.readouterr().err
    wrong = ConvertibleANN("fc16", (1, 8, 8), 5)
    save_ann(wrong, tmp_path / "five.pt")
    assert main(["convert", *FAST, "--ann", str(tmp_path / "five.pt")]) == 2
    assert "classes" in capsys.readouterr().err


def test_end_to_end_report_and_reload(tmp_path, capsys):
    torch.manual_seed(0)
    report_path, ann_path = tmp_path / "r.json", tmp_path / "ann.pt"
    assert main(["convert", *FAST, "--T", "1,2", "--report", str(report_path), "--save-ann", str(ann_path)]) == 0
    out = capsys.readouterr().out
    assert "dual-phase" in out and "max-norm" in out
    report = json.loads(report_path.read_text())
    assert [r["T"] for r in report["results"]] == [1, 2]
    for row in report["results"]:
        for key in ("quantized_ann", "converted", "dual_phase", "max_norm"):
            assert 0 <= row[key] <= 1
    # T = 1: the converted SNN is exactly the quantized ANN
    assert report["results"][0]["converted"] == report["results"][0]["quantized_ann"]
    assert report["config"]["T"] == [1, 2] and report["ann_source"] == "trained"
    # reload the saved (BN-folded) ANN, print JSON to stdout
    assert main(["convert", *FAST, "--T", "2", "--ann", str(ann_path), "--no-baseline", "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["ann_source"] == str(ann_path)
    assert again["ann_accuracy"] == report["ann_accuracy"]
    assert again["baseline_ann_accuracy"] is None and "max_norm" not in again["results"][0]
