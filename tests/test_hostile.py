"""Careless and hostile input: every case ends in one clear line, and nothing on disk is lost or half-written.

The report cases drive the real command line (``archbench.cli.main``) in forked child processes, with the
slow parts (the quick benchmark, the verification) replaced by fakes and each file write slowed down, so that
a real SIGINT or SIGTERM lands in the middle of writing; the read-only case runs as the user ``nobody``. Each asserts the exit status, that stderr is one line
without a traceback, and that the files on disk are exactly the old set or exactly the new set.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import stat
import struct
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import pytest
import torch

import archbench
from archbench.analysis.bottleneck import bottleneck_comparison
from archbench.analysis.counts import count_macs
from archbench.cli import main
from archbench.data import load_dataset, make_loaders
from archbench.errors import ArchbenchError, DataFileError, OptionTypeError, OutputPathError, TrainingError
from archbench.layers import BatchNorm
from archbench.report.build import QUICK_BENCH_JSON, REPORT_FILES
from archbench.report.files import check_output_dir, check_output_file, replace_dir, write_text
from archbench.train import FitConfig, fit

OWNED = (*REPORT_FILES, QUICK_BENCH_JSON)


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Every entry under ``folder`` (hidden ones too): relative path -> (content, permission bits)."""
    return {
        str(p.relative_to(folder)): (p.read_text() if p.is_file() else "<dir>", stat.S_IMODE(p.stat().st_mode))
        for p in sorted(folder.rglob("*"))
    }


def report_set(tag: str, mode: int = 0o644) -> dict[str, tuple[str, int]]:
    files = {f"report/{n}": (f"{tag} {n}\n", mode) for n in REPORT_FILES}
    files[f"report/{QUICK_BENCH_JSON}"] = (f"{tag} bench\n", mode)
    files["report/notes.txt"] = ("mine, keep me\n", 0o644)  # not a report file: always kept
    return {"report": ("<dir>", 0o755), **files}


@pytest.fixture()
def workspace() -> Iterator[Path]:
    """A world-readable folder (so a non-root user can work in it) holding an old report and a note."""
    base = Path(tempfile.mkdtemp(prefix="archbench-hostile-"))
    os.chmod(base, 0o755)
    work = base / "work"
    work.mkdir(mode=0o755)
    report = work / "report"
    report.mkdir(mode=0o755)
    for name in OWNED:
        (report / name).write_text(f"old {name}\n" if name != QUICK_BENCH_JSON else "old bench\n")
    (report / "notes.txt").write_text("mine, keep me\n")
    for path in (report, *report.iterdir()):
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    assert snapshot(work) == report_set("old")
    yield work
    shutil.rmtree(base, ignore_errors=True)


@dataclass
class Run:
    """`archbench report` running in a forked child process: its pid and the read ends of its pipes."""

    pid: int
    progress: IO[str]
    stdout: int
    stderr: int

    def wait_for(self, line: str) -> None:
        for got in self.progress:
            if got.strip() == line:
                return
        raise AssertionError(f"the run ended before announcing {line!r}: {self.finish()}")

    def finish(self) -> tuple[int, str, str]:
        """Exit status, stdout and stderr once the child has ended."""
        _, status = os.waitpid(self.pid, 0)
        texts = []
        for fd in (self.stdout, self.stderr):
            with os.fdopen(fd, encoding="utf-8") as handle:
                texts.append(handle.read())
        self.progress.close()
        return os.waitstatus_to_exitcode(status), texts[0], texts[1]


def start_report(work: Path, *, tag: str = "new", delay: float = 0.0, umask: int = 0o022,
                 user: int | None = None, hold: str | None = None) -> Run:  # fmt: skip
    """Fork a child that runs the real ``archbench.cli.main(["report", ...])`` with fast fakes.

    The fakes replace the quick benchmark and the report's content (the slow parts), and each file write
    announces itself on a progress pipe and then sleeps ``delay`` seconds, so a signal lands mid-write; at the
    step named ``hold`` it sleeps up to 30 s, so the signal lands there however slowly the parent runs. A fork
    rather than a new interpreter: the child starts at once instead of importing torch again (seconds).
    """
    import archbench.bench.runner as runner
    import archbench.report.build as build
    from archbench.bench.results import BenchResults

    pipes = [os.pipe() for _ in range(3)]
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 99
        try:
            (progress_r, progress_w), (out_r, out_w), (err_r, err_w) = pipes
            os.dup2(out_w, 1)
            os.dup2(err_w, 2)
            sys.stdout = open(1, "w", buffering=1, closefd=False)
            sys.stderr = open(2, "w", buffering=1, closefd=False)
            progress = open(progress_w, "w", buffering=1)
            os.umask(umask)
            # Ctrl-C as a terminal delivers it, even where the shell that started pytest ignores SIGINT (nohup, &)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            if user is not None:
                os.setgroups([])
                os.setgid(user)
                os.setuid(user)

            def fake_bench(*, json_path: Path, **_: object) -> int:
                print("benchmarking", file=progress, flush=True)
                time.sleep(30 if hold == "benchmarking" else delay)
                Path(json_path).write_text(f"{tag} bench\n")
                return 0

            real_write = build.write_bytes

            def slow_write(path: Path, data: bytes) -> Path:
                print("writing", path.name, file=progress, flush=True)
                time.sleep(30 if hold == f"writing {path.name}" else delay)
                return real_write(path, data)

            runner.run_benchmarks = fake_bench
            build._report_files = lambda results, out_dir, log, **_: ({n: f"{tag} {n}\n" for n in REPORT_FILES}, [])
            build.load_results = lambda path: BenchResults(Path(path), {}, {}, [])
            build.write_bytes = slow_write
            code = main(["report", "--out", str(work / "report"), "--quiet"])
        except BaseException:  # noqa: BLE001 - the child reports anything unexpected as a traceback
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    for reader, writer in pipes:
        os.close(writer)
    return Run(pid, os.fdopen(pipes[0][0], encoding="utf-8"), pipes[1][0], pipes[2][0])


def one_line(stderr: str) -> str:
    assert stderr.count("\n") == 1 and "Traceback" not in stderr, stderr
    return stderr


# -------------------------------------------------------------------------------- reports: all or nothing
@pytest.mark.parametrize(
    ("sig", "moment", "status", "message"),
    [
        (signal.SIGINT, "writing networks.md", 130, "archbench: interrupted"),
        (signal.SIGTERM, "writing verification.md", 143, "archbench: terminated"),
        (signal.SIGTERM, "benchmarking", 143, "archbench: terminated"),
    ],
    ids=["sigint-mid-write", "sigterm-mid-write", "sigterm-mid-benchmark"],
)
def test_an_interrupted_report_leaves_exactly_the_old_one(
    workspace: Path, sig: signal.Signals, moment: str, status: int, message: str
) -> None:
    run = start_report(workspace, delay=0.3, hold=moment)
    run.wait_for(moment)
    os.kill(run.pid, sig)
    code, _, stderr = run.finish()
    assert code == status
    assert one_line(stderr).strip() == message
    assert snapshot(workspace) == report_set("old")  # no staging folder, no temporary file, nothing new


def test_two_concurrent_reports_one_refuses_the_other_completes(workspace: Path) -> None:
    first = start_report(workspace, delay=0.1, umask=0o027)
    first.wait_for("benchmarking")
    code, _, stderr = start_report(workspace, tag="second").finish()
    assert code == 2
    assert "Another archbench run is writing" in one_line(stderr)
    code, stdout, stderr = first.finish()
    assert (code, stderr) == (0, "")
    assert stdout.startswith("archbench: report in")
    # The complete new report; its files follow the umask 027 as a plain write would (not mkstemp's 0600).
    assert snapshot(workspace) == report_set("new", mode=0o640)


def test_a_read_only_report_folder_is_refused_before_any_work(workspace: Path) -> None:
    # Root ignores permission bits, so as root the run is a child that became `nobody`, who may write in
    # work/ (its owner) but not in work/report (root's, mode 555). Any other user runs as itself.
    user = 65534 if os.geteuid() == 0 else None
    if user is not None:
        os.chown(workspace, user, user)
    os.chmod(workspace / "report", 0o555)
    run = start_report(workspace, user=user)
    code, stdout, stderr = run.finish()
    assert code == 2
    assert "is not writable" in one_line(stderr)
    assert stdout == ""  # refused before the work
    expected = report_set("old")
    expected["report"] = ("<dir>", 0o555)
    assert snapshot(workspace) == expected


def test_replace_dir_keeps_the_old_folder_when_the_block_fails(tmp_path: Path) -> None:
    folder = tmp_path / "report"
    folder.mkdir()
    write_text(folder / "README.md", "old")
    with pytest.raises(KeyboardInterrupt), replace_dir(folder, owned={"README.md"}) as staging:
        write_text(staging / "README.md", "new")
        raise KeyboardInterrupt
    assert [p.name for p in tmp_path.iterdir()] == ["report"]
    assert (folder / "README.md").read_text() == "old"


def test_a_killed_run_is_repaired_by_the_next(tmp_path: Path) -> None:
    # What `kill -9` between the two renames of the fallback would leave: the folder moved aside, a staging one.
    (tmp_path / ".report.old-x1").mkdir()
    (tmp_path / ".report.old-x1" / "README.md").write_text("old")
    (tmp_path / ".report.new-x2").mkdir()
    with replace_dir(tmp_path / "report", owned={"speed.md"}) as staging:
        write_text(staging / "speed.md", "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == ["README.md", "speed.md"]


# ------------------------------------------------------------------------- output paths, checked up front
@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda tmp: tmp / "file.txt", "is not a folder; give a folder"),
        (lambda tmp: tmp / "missing" / "report", "does not exist; create it first"),
        (lambda tmp: tmp / "file.txt" / "report", "is a file, not a folder"),
        (lambda tmp: "", "needs a path"),
        (lambda tmp: "/", "holds the current folder, a git repository or a whole file system"),
    ],
    ids=["file-as-folder", "missing-parent", "file-as-parent", "empty", "root"],
)
def test_bad_report_folders_fail_in_one_line_before_any_work(
    tmp_path: Path, make, fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file.txt").write_text("keep")
    before = snapshot(tmp_path)
    assert main(["report", "--out", str(make(tmp_path)), "--bench-json", "missing.json", "--quiet"]) == 2
    assert fragment in one_line(capsys.readouterr().err)
    assert snapshot(tmp_path) == before


def test_the_current_folder_and_a_git_checkout_are_not_report_folders(tmp_path: Path) -> None:
    with pytest.raises(OutputPathError, match="holds the current folder"):
        check_output_dir(Path.cwd())
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    with pytest.raises(OutputPathError, match="git repository"):
        check_output_dir(tmp_path / "repo")


def test_output_file_checks(tmp_path: Path) -> None:
    with pytest.raises(OutputPathError, match="is a folder; give a file name"):
        check_output_file(tmp_path)
    with pytest.raises(OutputPathError, match="does not exist"):
        check_output_file(tmp_path / "missing" / "bench.json")
    with pytest.raises(OutputPathError, match="not a regular file"):
        check_output_file("/dev/null")
    assert check_output_file(tmp_path / "bench.json") == tmp_path.resolve() / "bench.json"


def test_a_json_given_twice_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bench = tmp_path / "bench.json"
    bench.write_text("{}")
    code = main(["report", "--out", str(tmp_path / "r"), "--bench-json", str(bench), f"{tmp_path}/./bench.json"])
    assert code == 2
    assert "twice" in one_line(capsys.readouterr().err)
    assert not (tmp_path / "r").exists()


def test_atomic_file_write_follows_the_umask_and_keeps_an_existing_mode(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        write_text(tmp_path / "new.md", "x")
        (tmp_path / "kept.md").write_text("old")
        os.chmod(tmp_path / "kept.md", 0o664)
        write_text(tmp_path / "kept.md", "new")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.md").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "kept.md").stat().st_mode) == 0o664


# ------------------------------------------------------------------------------------------- IDX files
def write_idx(path: Path, array: np.ndarray, *, magic: int | None = None, dims: tuple[int, ...] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    dims = array.shape if dims is None else dims
    magic = 0x0800 | len(dims) if magic is None else magic
    path.write_bytes(struct.pack(">i", magic) + struct.pack(f">{len(dims)}i", *dims) + array.astype(np.uint8).tobytes())


def fake_mnist(root: Path, n: int = 8, size: int = 28, labels: np.ndarray | None = None) -> Path:
    raw = root / "MNIST" / "raw"
    for prefix in ("train", "t10k"):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", np.zeros((n, size, size)))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10 if labels is None else labels)
    return raw


def _corrupt_magic(raw: Path) -> None:
    write_idx(raw / "train-images-idx3-ubyte", np.zeros((8, 28, 28)), magic=0x0801)


def _truncate(raw: Path) -> None:
    path = raw / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])


def _tail(raw: Path) -> None:
    with (raw / "train-labels-idx1-ubyte").open("ab") as handle:
        handle.write(b"\0")


def _empty(raw: Path) -> None:
    write_idx(raw / "train-images-idx3-ubyte", np.zeros((0, 28, 28)))
    write_idx(raw / "train-labels-idx1-ubyte", np.zeros(0))


def _tiny_header(raw: Path) -> None:
    (raw / "train-images-idx3-ubyte").write_bytes(b"\0\0")


@pytest.mark.parametrize(
    ("damage", "fragment"),
    [
        (_corrupt_magic, "train-images-idx3-ubyte is not an IDX images file: magic number 0x00000801"),
        # 4 magic + 3 × 4 sizes + 8 × 28 × 28 pixels = 6,288 bytes; 100 cut off.
        (_truncate, "train-images-idx3-ubyte is truncated: 6,188 bytes, but its header (8×28×28) needs 6,288"),
        (_tail, "train-labels-idx1-ubyte has 1 bytes more than its header"),
        (_tiny_header, "train-images-idx3-ubyte is truncated: 2 bytes"),
        (lambda raw: write_idx(raw / "train-labels-idx1-ubyte", np.arange(4)), "holds 8 images but"),
        (lambda raw: write_idx(raw / "train-labels-idx1-ubyte", np.array([1] * 7 + [200])), "has label 200 at position 7"),
        (lambda raw: (raw / "train-images-idx3-ubyte").unlink(), "train-images-idx3-ubyte is not in"),
        (_empty, "train-images-idx3-ubyte holds no images"),
        (lambda raw: write_idx(raw / "train-images-idx3-ubyte", np.zeros((8, 20, 20))), "20×20 images but the network takes 28×28"),
    ],
    ids=["magic", "truncated", "extra-bytes", "no-header", "count-mismatch", "label-200", "missing", "empty", "size"],
)
def test_damaged_idx_files_are_named_with_what_is_wrong(tmp_path: Path, damage, fragment: str) -> None:
    raw = fake_mnist(tmp_path)
    damage(raw)
    with pytest.raises(DataFileError) as info:
        load_dataset("mnist", tmp_path, train=True, image_size=28)
    assert fragment in str(info.value)
    assert str(raw) in str(info.value)  # names the file with its folder


def test_truncated_is_not_reported_as_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = fake_mnist(tmp_path)
    _truncate(raw)
    assert main(["train", "lenet5", "--data", "mnist", "--root", str(tmp_path)]) == 2
    err = one_line(capsys.readouterr().err)
    assert "truncated" in err and "not in" not in err


def test_a_file_as_data_folder(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("x")
    with pytest.raises(DataFileError, match="is a file"):
        load_dataset("mnist", tmp_path / "data", train=True)


# ------------------------------------------------------------------------------------------------ training
@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--lr", "inf"], "finite number above 0"),
        (["--lr", "nan"], "finite number above 0"),
        (["--lr", "-1"], "finite number above 0"),
        (["--lr", "1e39"], "below 3.4e38"),
        (["--momentum", "1.5"], "[0, 1)"),
        (["--momentum", "nan"], "[0, 1)"),
        (["--batch", "0"], "positive"),
        (["--epochs", "1.5"], "not a whole number"),
        (["--seed", str(2**64)], "torch.manual_seed"),
        (["--data", "cifar"], "invalid choice"),
    ],
)
def test_bad_training_options_are_one_line(argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        raise SystemExit(main(["train", "lenet5", *argv]))
    assert info.value.code == 2
    assert fragment in one_line(capsys.readouterr().err)


def test_a_nan_loss_stops_training_with_one_line() -> None:
    train, test = make_loaders("synthetic", batch_size=16, synthetic_size=64)
    with pytest.raises(TrainingError, match=r"loss became (nan|inf) at epoch 1, batch \d+.*lower the learning rate"):
        fit(archbench.get_model("lenet5_relu"), train, test, FitConfig(lr=1e30))


def test_batchnorm_and_batches_of_one() -> None:
    # 15 images in batches of 7: 7, 7 and a last batch of 1, which is dropped (BatchNorm cannot normalise it).
    train, test = make_loaders("synthetic", batch_size=7, synthetic_size=15)
    assert [len(labels) for _, labels in train] == [7, 7]
    assert len(fit(archbench.get_model("lenet5_bn"), train, test, FitConfig())) == 1
    # Batches of one image throughout: said before training starts.
    train, test = make_loaders("synthetic", batch_size=1, synthetic_size=4)
    with pytest.raises(TrainingError, match="batch of one image"):
        fit(archbench.get_model("lenet5_bn"), train, test, FitConfig())


@pytest.mark.parametrize(
    "kwargs", [{"epochs": 0}, {"epochs": True}, {"lr": 0}, {"lr": "0.1"}, {"momentum": 1.0}, {"output": "probs"}]
)
def test_fit_config_refuses_nonsense(kwargs: dict[str, object]) -> None:
    with pytest.raises(ArchbenchError):
        FitConfig(**kwargs)


# ------------------------------------------------------------------------------- the API, like PyTorch
@pytest.mark.parametrize(
    ("call", "kind", "fragment"),
    [
        (lambda: archbench.get_model(None), OptionTypeError, "must be a string"),
        (lambda: archbench.get_spec(42), OptionTypeError, "must be a string"),
        (lambda: archbench.list_models(None), OptionTypeError, "pattern must be a string"),
        (lambda: archbench.get_model("resnet18", num_classes=0), ArchbenchError, "at least 1"),
        (lambda: archbench.get_model("resnet18", in_channels=0), ArchbenchError, "at least 1"),
        (lambda: archbench.get_model("lenet5", num_classes=True), OptionTypeError, "whole number"),
        (lambda: archbench.get_model("lenet5", num_classes="10"), OptionTypeError, "whole number"),
        (lambda: archbench.get_model("mnist_net", dropout=2.0), ArchbenchError, "cannot be built with dropout=2.0"),
        (lambda: archbench.get_model("mnist_net", dropout=math.nan), OptionTypeError, "finite number"),
        (lambda: archbench.get_model("resnet18", variant=1), OptionTypeError, "must be a string"),
        (lambda: BatchNorm(True), ArchbenchError, "positive channel count, got True"),
        (lambda: BatchNorm(0), ArchbenchError, "positive channel count"),
        (lambda: BatchNorm(3, eps=0), ArchbenchError, "eps must be a finite number above 0"),
        (lambda: BatchNorm(3, eps=-1e-5), ArchbenchError, "eps must be a finite number above 0"),
        (lambda: BatchNorm(3, momentum=True), ArchbenchError, "momentum"),
        (lambda: BatchNorm(3, affine="yes"), ArchbenchError, "affine must be True or False"),
        (lambda: bottleneck_comparison(0), ArchbenchError, "positive integer"),
        (lambda: bottleneck_comparison(True), ArchbenchError, "positive integer"),
        (lambda: bottleneck_comparison(method="flops"), ArchbenchError, "Unknown counting method"),
        (lambda: make_loaders("synthetic", batch_size=True), OptionTypeError, "whole number"),
        (lambda: make_loaders("cifar"), ArchbenchError, "Unknown dataset"),
    ],
)
def test_the_api_refuses_nonsense_in_one_sentence(call, kind: type[Exception], fragment: str) -> None:
    with pytest.raises(kind) as info:
        call()
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_eps_zero_is_refused_like_torch_refuses_it() -> None:
    with pytest.raises(ValueError):  # torch's own refusal (in training), the behaviour we match up front
        torch.nn.BatchNorm2d(3, eps=0)(torch.ones(2, 3, 2, 2))


@pytest.mark.parametrize(
    ("c_in", "mid", "c_out", "size", "kernel", "batch"),
    [(3, 2, 5, 7, 3, 2), (192, 16, 32, 28, 5, 1), (1, 1, 1, 1, 1, 1), (4, 8, 2, 5, 7, 3)],
)
def test_bottleneck_closed_forms_match_the_counter_on_built_layers(c_in, mid, c_out, size, kernel, batch) -> None:
    from archbench.layers.blocks import BottleneckConv, DirectConv

    closed = bottleneck_comparison(c_in, mid, c_out, size=size, kernel=kernel, batch=batch)
    shape = (batch, c_in, size, size)
    assert closed.direct_macs == count_macs(DirectConv(c_in, c_out, kernel), shape, "torch").total
    assert closed.bottleneck_macs == count_macs(BottleneckConv(c_in, mid, c_out, kernel), shape, "torch").total
    assert closed.direct_params == sum(p.numel() for p in DirectConv(c_in, c_out, kernel).parameters())
    assert closed.bottleneck_params == sum(p.numel() for p in BottleneckConv(c_in, mid, c_out, kernel).parameters())


def test_a_huge_bottleneck_is_arithmetic(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import archbench.layers.blocks as blocks

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("built a layer")

    monkeypatch.setattr(blocks, "DirectConv", refuse)
    monkeypatch.setattr(blocks, "BottleneckConv", refuse)
    assert main(["bottleneck", "--in", "20000", "--out", "20000"]) == 0
    assert f"{28 * 28 * 20000 * 20000 * 25:,}" in capsys.readouterr().out  # the closed form, 7.84e12
    assert main(["bottleneck", "--in", "20000", "--out", "20000", "--method", "fvcore"]) == 2
    assert "use method 'analytic'" in one_line(capsys.readouterr().err)


# --------------------------------------------------------------------------- the command line at large
@pytest.mark.parametrize(
    "argv",
    [
        ["list", "no-such-*"],
        ["summary", "no_such_net"],
        ["summary", "lenet5", "--input-size", "0", "28", "28"],
        ["summary", "lenet5", "--input-size", "1", "3", "3"],
        ["flops", "lenet5", "--batch", "-1"],
        ["bottleneck", "--kernel", "4"],
        ["bottleneck", "--size", "inf"],
        ["train", "no_such_net"],
        ["report", "--bench-time", "nan"],
    ],
)
def test_careless_command_lines_end_in_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    try:
        code = main(argv)
    except SystemExit as stop:  # argparse's own refusals
        code = stop.code
    assert code == 2
    one_line(capsys.readouterr().err)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"archbench {archbench.__version__}\n"


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("HYPOTHESIS_PROFILE", "fast", "HYPOTHESIS_PROFILE='fast' is not one of default, thorough"),
        ("ARCHBENCH_TEST_THREADS", "two", "ARCHBENCH_TEST_THREADS='two' must be a whole number of threads"),
        ("ARCHBENCH_TEST_THREADS", "0", "from 1 to 4096"),
    ],
)
def test_the_test_environment_variables_are_checked(
    monkeypatch: pytest.MonkeyPatch, pytestconfig: pytest.Config, variable: str, value: str, fragment: str
) -> None:
    import conftest  # tests/conftest.py: pytest puts tests/ on sys.path (rootdir-relative, no __init__.py)

    monkeypatch.setenv(variable, value)
    threads = torch.get_num_threads()
    with pytest.raises(pytest.UsageError, match=fragment.replace("(", r"\(")):
        conftest.pytest_configure(pytestconfig)
    assert torch.get_num_threads() == threads


def test_a_folder_of_other_things_is_not_taken_for_a_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "home" / ".cache").mkdir(parents=True)
    before = snapshot(tmp_path)
    assert main(["report", "--out", str(tmp_path / "home"), "--bench-json", "missing.json"]) == 2
    assert "holds folders (.cache) and no report" in one_line(capsys.readouterr().err)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"input_shape": (0, 28, 28)}, "input_shape sizes must be at least 1"),
        ({"input_shape": (1, True, 28)}, "input_shape sizes must be a whole number"),
        ({"input_shape": "1x28x28"}, "must be a tuple of sizes"),
        ({"num_classes": 0}, "num_classes must be at least 1"),
        ({"bench_input_shape": (1, -2, 2)}, "bench_input_shape sizes must be at least 1"),
        ({"name": None}, "name must be a non-empty string"),
    ],
)
def test_model_specs_refuse_impossible_facts(change: dict[str, object], fragment: str) -> None:
    facts = {"name": "x", "input_shape": (1, 28, 28), "num_classes": 10, "source": "test", "description": "d",
             "flat_features": 4, **change}  # fmt: skip
    with pytest.raises(ArchbenchError, match=fragment):
        archbench.ModelSpec(**facts)


def test_replace_file_keeps_the_previous_file_on_interrupt_or_empty_output(tmp_path: Path) -> None:
    from archbench.report.files import replace_file

    target = tmp_path / "bench.json"
    target.write_text('{"benchmarks": 47}')
    with pytest.raises(KeyboardInterrupt), replace_file(target) as partial:
        partial.write_text('{"benchmarks": 1}')
        raise KeyboardInterrupt
    with pytest.raises(OutputPathError, match="nothing was written"), replace_file(target):
        pass
    assert [p.name for p in tmp_path.iterdir()] == ["bench.json"]
    assert json.loads(target.read_text()) == {"benchmarks": 47}
    with replace_file(target) as partial:
        partial.write_text('{"benchmarks": 48}')
    assert json.loads(target.read_text()) == {"benchmarks": 48}


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda loaders: fit(None, *loaders), "needs an nn.Module"),
        (lambda loaders: fit(archbench.get_model("lenet5"), *loaders, config={"lr": 1}), "needs a FitConfig"),
        (lambda loaders: FitConfig(device="gpu"), "torch device"),
        (lambda loaders: fit(archbench.get_model("lenet5"), [], loaders[1]), "no batches"),
        (lambda loaders: load_dataset("mnist", None, train=True), "root must be a folder path"),
    ],
)
def test_training_api_refuses_nonsense(call, fragment: str) -> None:
    loaders = make_loaders("synthetic", batch_size=8, synthetic_size=8)
    with pytest.raises(ArchbenchError, match=fragment):
        call(loaders)


def test_replace_dir_without_renameat2_falls_back_to_two_renames(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import archbench.report.files as files

    monkeypatch.setattr(files, "_exchange", lambda a, b: False)
    folder = tmp_path / "report"
    folder.mkdir()
    write_text(folder / "README.md", "old")
    write_text(folder / "notes.txt", "mine")
    with replace_dir(folder, owned={"README.md"}) as staging:
        write_text(staging / "README.md", "new")
    assert [p.name for p in tmp_path.iterdir()] == ["report"]
    assert {p.name: p.read_text() for p in folder.iterdir()} == {"README.md": "new", "notes.txt": "mine"}


def test_dense_layer_cost_is_arithmetic_and_refuses_nonsense() -> None:
    from archbench.analysis.bottleneck import dense_layer_cost

    # Seed 003: 3 × 1000 × 1000 inputs × 256 outputs = 768,000,000 weights; the meta-device counter agrees.
    assert dense_layer_cost().weights == 768_000_000 == dense_layer_cost(method="torch").weights
    assert dense_layer_cost((10**6,) * 3, 10**6).macs == 10**24  # no tensor could hold it
    for bad in (None, (), "abc", (3, 1e3, 1000)):
        with pytest.raises(ArchbenchError):
            dense_layer_cost(bad)


@pytest.mark.parametrize("bad", ["", "   ", "."])
def test_a_benchmark_json_that_is_empty_or_a_folder_is_one_line(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", bad, bad]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and ("file name" in err or "folder" in err)
