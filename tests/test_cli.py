"""The command line: output of `list` and `summary`, and one-line errors for bad input."""

from __future__ import annotations

import subprocess
import sys

import pytest

import archbench
from archbench.cli import main


def test_list_prints_every_network(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in archbench.list_models():
        assert name in out
    assert "61,706" in out  # lenet5: 156 + 2,416 + 48,120 + 10,164 + 850
    assert "seed 000" in out


def test_list_pattern(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "res*"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()[2:]
    assert [line.split()[0] for line in lines] == ["residual_net", "resnet18", "resnet34", "resnet50"]


def test_summary_shows_layer_shapes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", "lenet5", "--batch", "4"]) == 0
    out = capsys.readouterr().out
    assert "4×16×5×5" in out and "4×400" in out
    assert "total parameters: 61,706" in out


def test_summary_at_another_size(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", "resnet18", "--input-size", "1", "224", "224", "--depth", "1"]) == 0
    out = capsys.readouterr().out
    assert "1×512×7×7" in out and "layer1.0" not in out


@pytest.mark.parametrize("size", [["3,32,32"], ["3x32x32"], ["3", "32,32"]])
def test_input_size_may_be_one_word(size: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", "resnet18", "--model-arg", "in_channels=3", "--input-size", *size, "--depth", "1"]) == 0
    assert "1×512×1×1" in capsys.readouterr().out  # 32 halved five times


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["summary", "lenet"], "Unknown model 'lenet'; did you mean lenet5"),
        (["summary", "lenet5", "--input-size", "1", "20", "20"], "expects 400 input features but receives 144"),
        (["summary", "lenet5", "--input-size", "1", "0", "28"], "sizes must be positive"),
        (["summary", "lenet5", "--batch", "-3"], "sizes must be positive"),
        (["summary", "lenet5", "--input-size", "1", "x", "28"], "'x' is not a whole number"),
        (["list", "xyz*"], "No model matches 'xyz*'"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line_on_stderr(argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        status = main(argv)
    except SystemExit as exit_:  # argparse exits by itself
        status = exit_.code
    captured = capsys.readouterr()
    assert status == 2
    assert captured.err.count("\n") == 1 and fragment in captured.err
    assert "Traceback" not in captured.err and captured.out == ""


def test_python_dash_m_runs() -> None:
    done = subprocess.run([sys.executable, "-m", "archbench", "list", "mnist*"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "mnist_net" in done.stdout
