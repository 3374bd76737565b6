"""The report builder: tables from a benchmark JSON fixture, valid PNGs, atomic writes, bad JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from torch import nn

import archbench
from archbench.bench.results import EXTRA_INFO_KEYS
from archbench.cli import main
from archbench.registry import ModelSpec, register_model, unregister_model
from archbench.report import build as report_build
from archbench.report.build import REPORT_FILES, build_report, networks_markdown
from archbench.report.files import write_text
from archbench.verify import check_cases, shape_checks

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _row(model: str, mode: str, batch: int, median: float, macs: int, iqr: float = 1e-5, **more: float) -> dict:
    info = {
        "model": model, "mode": mode, "device": "cpu", "dtype": "float32", "batch": batch,
        "input_shape": [1, 28, 28], "threads": 2, "params": 61_706, "macs_per_image": macs,
        "flops_per_image": 2 * macs, "images_per_s": batch / median, "gflops_per_s": 2 * macs * batch / median / 1e9,
        "channels_last": False, "compile": False, "status": "ok",
    }  # fmt: skip
    assert set(info) == set(EXTRA_INFO_KEYS)
    info.update(more)
    stats = {"median": median, "iqr": iqr, "rounds": 50, "min": median * 0.9, "max": median * 1.2, "mean": median}
    return {"name": f"test_network[{model}-{mode}-b{batch}]", "group": f"{model}-{mode}", "stats": stats, "extra_info": info}


@pytest.fixture(scope="module")
def bench_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    macs = 416_520  # lenet5: 117,600 + 240,000 + 48,000 + 10,080 + 840 (conv and linear closed forms)
    data = {
        "machine_info": {
            "archbench": {"torch": "x", "threads": 2, "device": "cpu"},
            "archbench_peak": [{"device": "cpu", "dtype": "float32", "threads": 2, "matmul_gflops_per_s": 180.1,
                                "conv_gflops_per_s": 220.8, "gflops_per_s": 220.8, "readings_gflops_per_s": [101.0, 220.8],
                                "theoretical_gflops_per_s": 166.2, "theoretical_basis": "lanes × FMA × clock"}],
        },  # fmt: skip
        "benchmarks": [
            _row("lenet5", "forward", 1, 0.0002, macs, pct_of_peak=40.0),
            _row("lenet5", "forward", 64, 0.0016, macs, pct_of_peak=151.5),  # a peak measured in a slow spell
            _row("lenet5_bn", "train_step", 64, 0.006, 281_640),
            _row("lenet5_bn_torch", "train_step", 64, 0.005, 281_640),
        ],
        "datetime": "2026-11-23T00:00:00",
    }
    path = tmp_path_factory.mktemp("bench") / "bench.json"
    path.write_text(json.dumps(data))
    return path


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory, bench_json: Path) -> report_build.Report:
    out = tmp_path_factory.mktemp("reports")
    (out / "notes.txt").write_text("mine, keep me")
    # Every check runs in test_verify.py; the report is tested with those of three small networks.
    light = check_cases(["lenet5", "lenet5_bn", "lenet5_bn_torch"])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(report_build, "all_checks", lambda: [row for case in light for row in case.run()])
        patch.setattr("archbench.report.memory.list_models", lambda: ["lenet5", "lenet5_bn"])  # tested in test_memory
        return build_report(out, [bench_json])


def test_report_writes_exactly_its_files(report: report_build.Report) -> None:
    names = {p.name for p in report.out_dir.iterdir()}
    assert names == set(REPORT_FILES) - {"scale.md"} | {"notes.txt"}  # scale.md only from a scale JSON
    assert (report.out_dir / "notes.txt").read_text() == "mine, keep me"  # never deleted or touched
    assert not report.failed


def test_speed_tables_come_from_the_json(report: report_build.Report) -> None:
    speed = (report.out_dir / "speed.md").read_text()
    # images/s = batch / median: 64 / 0.0016 = 40,000; GFLOP/s = 2 × 416,520 × 40,000 / 1e9 = 33.32
    row = next(line for line in speed.splitlines() if line.startswith("| `lenet5`") and "| 64 " in line)
    assert "1.6 ms" in row
    assert "40,000" in speed and "33.32" in speed
    assert "5,000" in speed  # batch 1 / 0.0002 s
    # The BatchNorm pair, side by side: 6 ms / 5 ms = 1.200
    assert "1.200" in speed and "lenet5_bn" in speed
    # the measured peak: the better of its readings before and after the run, both shown
    peak = next(line for line in speed.splitlines() if line.startswith("| cpu"))
    assert [c.strip() for c in peak.strip("|").split("|")] == ["cpu", "float32", "2", "180.1", "220.8", "101.0 / 220.8",
                                                               "220.8", "166.2"]  # fmt: skip
    # a row above 100% of the measured peak says what that means; the others do not
    (above,) = [line for line in speed.splitlines() if line.startswith("Above 100%")]
    assert above.startswith("Above 100%: `lenet5` at batch 64, 151.5% of peak, ran faster than the measured peak")


def test_networks_table_values(report: report_build.Report) -> None:
    text = (report.out_dir / "networks.md").read_text()
    # lenet5: params 61,706 and MACs 416,520 (closed forms in archbench/models/lenet.py), FLOPs 833,040, 400 features
    row = next(line for line in text.splitlines() if line.startswith("| [`lenet5`]"))
    assert all(v in row for v in ("61,706", "416,520", "833,040", "400", "seed 000"))
    vgg16 = next(line for line in text.splitlines() if line.startswith("| [`vgg16`]"))
    assert "`vgg16`" in vgg16.split("|")[8]  # its torchvision counterpart
    assert "15,500,000,000 ± 1.0% MACs at 3×224×224 (torchvision form)" in text  # a declared figure, with source
    bottleneck = (report.out_dir / "bottleneck.md").read_text()
    assert "120,422,400" in bottleneck and "12,443,648" in bottleneck and "9.68×" in bottleneck


def test_index_summarises(report: report_build.Report) -> None:
    index = (report.out_dir / "README.md").read_text()
    assert f"Networks verified: {len(archbench.list_models())}" in index
    assert f"{len(report.checks)} passed, 0 failed" in index
    assert "`lenet5` forward on cpu: 40,000 images/s at batch 64" in index


def test_pngs_are_valid_images(report: report_build.Report) -> None:
    from PIL import Image

    for name in REPORT_FILES:
        if name.endswith(".png"):
            path = report.out_dir / name
            assert path.read_bytes()[:8] == PNG_SIGNATURE
            with Image.open(path) as image:
                image.verify()
                assert min(image.size) > 100


def test_tables_are_deterministic(report: report_build.Report) -> None:
    assert networks_markdown() == (report.out_dir / "networks.md").read_text()


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "README.md"
    write_text(target, "old")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        write_text(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["README.md"]  # no temporary file left


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("{not json", "are not valid JSON"),
        (json.dumps({"hello": 1}), "is not a pytest-benchmark results file"),
        (json.dumps({"benchmarks": [], "machine_info": {}}), "was not written by archbench"),
    ],
)
def test_bad_json_is_one_line_and_writes_nothing(
    tmp_path: Path, content: str, fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    out = tmp_path / "out"
    assert main(["report", "--out", str(out), "--bench-json", str(bad), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment in err
    assert not out.exists()


def test_a_false_claim_fails_its_check() -> None:
    spec = ModelSpec("wrong_claims", (1, 28, 28), 10, "test", "claims 999 features", 999, layer_shapes={"0": (6, 1, 1)})

    @register_model(spec)
    def wrong() -> nn.Module:
        return nn.Sequential(nn.Conv2d(1, 6, 5), nn.Flatten(), nn.Linear(6 * 24 * 24, 10))

    try:
        rows = shape_checks(["wrong_claims"])
    finally:
        unregister_model("wrong_claims")
    failed = {r.name for r in rows if not r.passed}
    assert failed == {"wrong_claims: flattened features", "wrong_claims: 0 output at 1×28×28"}
