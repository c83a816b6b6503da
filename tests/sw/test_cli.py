import json
import subprocess
import sys

from trident.sw.cli import main


def test_train_prints_summary_and_writes_report(tmp_path, capsys):
    report = tmp_path / "r.json"
    code = main(["train", "--model", "mlp-small", "--T", "2", "--epochs", "1", "--train-limit", "128",
                 "--report", str(report), "--quiet"])
    assert code == 0
    out = capsys.readouterr().out
    assert "test accuracy" in out and "weights sha256" in out
    assert json.loads(report.read_text())["config"]["model"] == "mlp-small"


def test_bad_names_give_clear_errors(capsys):
    assert main(["train", "--dataset", "imagenet", "--quiet"]) == 2
    assert "unknown dataset 'imagenet'" in capsys.readouterr().err
    assert main(["train", "--surrogate", "relu", "--quiet"]) == 2
    assert "valid choices: atan, rectangular, sigmoid, triangle" in capsys.readouterr().err
    assert main(["train", "--model", "fc-3", "--quiet"]) == 2
    assert "cannot parse layer 'fc-3'" in capsys.readouterr().err


def test_resume_without_checkpoint_dir(capsys):
    assert main(["train", "--resume", "--quiet"]) == 2
    assert "--resume needs --checkpoint" in capsys.readouterr().err


def test_console_script_is_installed():
    out = subprocess.run([sys.executable, "-m", "trident.sw.cli", "train", "--help"], capture_output=True,
                         text=True, check=True).stdout
    assert "--precision" in out and "fp16-hw" in out
