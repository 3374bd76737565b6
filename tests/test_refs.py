"""The command line on model references: module:attr, file.py:attr, --model-arg, and each bad reference."""

from __future__ import annotations

from pathlib import Path

import pytest

from archbench.cli import main

USER_MODEL = """
from torch import nn

def tiny(width=4):
    return nn.Sequential(nn.Conv2d(1, width, 3), nn.Flatten(), nn.Linear(width * 6 * 6, 10))

def broken():
    raise ValueError("boom")

def not_a_module():
    return 42
"""


@pytest.fixture
def user_file(tmp_path: Path) -> Path:
    path = tmp_path / "user_model.py"
    path.write_text(USER_MODEL)
    return path


def test_torchvision_reference(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["flops", "torchvision.models:vit_b_16", "--input-size", "3", "224", "224"]) == 0
    out = capsys.readouterr().out
    assert "17,563,828,224" in out  # torchvision's published 17.564 GMACs


def test_file_reference_with_model_arg(user_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ref = f"{user_file}:tiny"
    assert main(["flops", ref, "--input-size", "1", "8", "8", "--model-arg", "width=2"]) == 0
    out = capsys.readouterr().out
    # conv: 2 channels × 6×6 outputs × 9 taps; linear: 72 × 10
    assert f"{2 * 36 * 9 + 72 * 10:,}" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["no_such_module_xyz:net", "--input-size", "3"],
        ["torchvision.models:no_such_net", "--input-size", "3", "224", "224"],
        ["{file}:not_a_module", "--input-size", "1", "8", "8"],
        ["{file}:broken", "--input-size", "1", "8", "8"],
        ["{file}:tiny", "--input-size", "1", "8", "8", "--model-arg", "width"],
        ["{file}:tiny", "--input-size", "1", "8", "8", "--model-arg", "width=(("],
        ["{file}:tiny"],
    ],
    ids=["module-not-found", "attribute-missing", "not-a-module", "callable-raises", "arg-no-equals",
         "arg-not-literal", "no-input-size"],
)
def test_bad_reference_is_one_line_exit_2(
    argv: list[str], user_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [a.format(file=user_file) for a in argv]
    assert main(["flops", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("archbench: error:"), err
    assert "Traceback" not in err
