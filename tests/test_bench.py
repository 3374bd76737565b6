"""The benchmark harness: synchronising timer, extra_info, images/s, OOM rows, the JSON round trip.

Everything runs on the CPU in a few seconds. The CUDA code path is exercised with a fake backend whose
tensors live on the CPU but which counts synchronisations and reports a peak memory, and with
``torch.cuda.synchronize`` monkeypatched.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from torch import nn

import archbench
from archbench.analysis.counts import count_macs, count_params
from archbench.bench import EXTRA_INFO_KEYS, Backend, SyncTimer, fingerprint, load_results, make_backend, resolve_device
from archbench.bench.cases import (
    RESNET_OURS,
    RESNET_TORCHVISION,
    BenchCase,
    SuiteOptions,
    enumerate_cases,
    parse_batches,
)
from archbench.bench.harness import run_case
from archbench.bench.results import CUDA_EXTRA_INFO_KEYS, OOM_KEY, make_extra_info
from archbench.bench.timing import choose_rounds, measure_peak_memory, warm_up
from archbench.bench.work import model_work
from archbench.cli import main
from archbench.errors import ArchbenchError
from archbench.registry import ModelSpec, register_model, unregister_model

REPO = Path(__file__).resolve().parents[1]


class FakeBenchmark:
    """The parts of pytest-benchmark's fixture the harness uses; pedantic times with the given clock."""

    def __init__(self, timer: Callable[[], float]) -> None:
        self.timer = timer
        self.extra_info: dict[str, Any] = {}
        self.durations: list[float] = []
        self.grads_none_before_step: list[bool] = []
        self.model: nn.Module | None = None

    def pedantic(self, target, setup=None, rounds=1, warmup_rounds=0, iterations=1):  # noqa: ANN001
        result = None
        for _ in range(rounds):
            if setup is not None:
                setup()
            start = self.timer()
            result = target()
            self.durations.append(self.timer() - start)
        self.stats = SimpleNamespace(stats=SimpleNamespace(median=statistics.median(self.durations)))
        return result


class FakeCuda:
    """A CUDA-like backend on the CPU: counts synchronisations and memory resets, reports a fixed peak."""

    def __init__(self) -> None:
        self.syncs = 0
        self.resets = 0
        self.releases = 0

    def synchronize(self) -> None:
        self.syncs += 1

    def backend(self) -> Backend:
        return Backend(
            "cuda",
            torch.device("cpu"),
            synchronize=self.synchronize,
            reset_peak_memory=lambda: setattr(self, "resets", self.resets + 1),
            peak_memory_bytes=lambda: 123_456,
            release_memory=lambda: setattr(self, "releases", self.releases + 1),
        )


def fast_options(**kw: Any) -> SuiteOptions:
    """A tiny budget that keeps the current thread count (tests/conftest.py sets it)."""
    defaults = dict(devices=("cpu",), threads=torch.get_num_threads(), max_time=0.01, min_rounds=3, warmup_seconds=0.0)
    return SuiteOptions(**{**defaults, **kw})


def case_of(model: str, mode: str, batch: int, device: str = "cpu", **kw: Any) -> BenchCase:
    options = fast_options(models=model, batches=(batch,), devices=(device,), **kw)
    return next(c for c in enumerate_cases(options) if c.mode == mode and c.model == model)


# --- the timer ----------------------------------------------------------------------------------------


def test_sync_timer_synchronises_before_reading_the_clock() -> None:
    seen: list[float] = []
    timer = SyncTimer("cuda", synchronize=lambda: seen.append(time.perf_counter()))
    first, second = timer(), timer()
    assert len(seen) == 2
    assert seen[0] <= first <= seen[1] <= second  # each reading comes after its synchronisation


def test_sync_timer_calls_torch_cuda_synchronize(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.append(device))
    timer = SyncTimer(torch.device("cuda", 0))
    timer()
    timer()
    assert calls == [torch.device("cuda", 0)] * 2
    backend = make_backend(torch.device("cuda", 0))  # the real backend's functions, looked up when called
    backend.timer()()
    backend.synchronize()
    assert len(calls) == 4
    assert SyncTimer("cpu").__name__ == "perf_counter"  # no synchronisation on the CPU


def test_resolve_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ArchbenchError, match="CUDA is not available"):
        resolve_device("cuda")
    with pytest.raises(ArchbenchError, match="Unknown device"):
        resolve_device("gpu0")


def test_warm_up_runs_setup_outside_the_clock_and_choose_rounds_clamps() -> None:
    log: list[str] = []
    per_call = warm_up(lambda: log.append("step"), time.perf_counter, setup=lambda: log.append("setup"),
                       min_calls=3, min_seconds=0.0)
    assert log[:4] == ["setup", "step", "setup", "step"] and log.count("step") == 4  # first call + 3
    assert per_call >= 0
    assert choose_rounds(0.001, 1.0, 5, 100) == 100
    assert choose_rounds(10.0, 1.0, 5, 100) == 5
    assert choose_rounds(0.1, 1.0, 5, 100) == 10


def test_peak_memory_uses_the_device_counter() -> None:
    fake = FakeCuda()
    assert measure_peak_memory(lambda: None, fake.backend()) == 123_456
    assert fake.resets == 1 and fake.syncs == 2
    assert measure_peak_memory(lambda: None, make_backend("cpu")) is None


# --- one case through the harness -----------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["forward", "train_step"])
def test_extra_info_has_every_field_and_images_per_s_is_batch_over_median(mode: str) -> None:
    case = case_of("lenet5_relu", mode, 4)
    backend = make_backend("cpu")
    bench = FakeBenchmark(backend.timer())
    outcome = run_case(bench, case, fast_options(), backend=backend)
    info = bench.extra_info
    assert outcome.status == "ok" and info == outcome.extra_info
    assert tuple(info) == EXTRA_INFO_KEYS
    median = statistics.median(bench.durations)
    assert info["images_per_s"] == pytest.approx(4 / median, rel=1e-12)
    assert info["gflops_per_s"] == pytest.approx(info["flops_per_image"] * info["images_per_s"] / 1e9)
    counted = count_macs("lenet5_relu", (1, 1, 28, 28), backward=True)
    assert info["macs_per_image"] == counted.total
    expected_flops = 2 * counted.total if mode == "forward" else 2 * (counted.total + counted.backward)
    assert info["flops_per_image"] == expected_flops
    assert info["params"] == count_params("lenet5_relu") == 44_426
    assert info["threads"] == torch.get_num_threads()
    assert (info["model"], info["mode"], info["device"], info["dtype"], info["batch"]) == (
        "lenet5_relu", mode, "cpu", "float32", 4,
    )
    assert info["input_shape"] == [1, 28, 28] and info["status"] == "ok"
    assert info["channels_last"] is False and info["compile"] is False
    json.dumps(info)  # JSON-ready


def test_train_step_flops_are_about_three_times_forward() -> None:
    work = model_work(archbench.get_model("resnet18"), (1, 96, 96))
    assert 2.5 < work.flops_per_image("train_step") / work.flops_per_image("forward") <= 3.0


def test_zero_grad_runs_outside_the_timed_region() -> None:
    case = case_of("lenet5_relu", "train_step", 4)
    backend = make_backend("cpu")
    states: list[bool] = []

    class Watching(FakeBenchmark):
        def pedantic(self, target, setup=None, rounds=1, warmup_rounds=0, iterations=1):  # noqa: ANN001
            def watched() -> torch.Tensor:
                # setup (zero_grad(set_to_none=True)) ran before the clock started: no gradients yet
                states.append(all(p.grad is None for p in params))
                return target()

            return super().pedantic(watched, setup=setup, rounds=rounds)

    import archbench.bench.harness as harness

    original = harness.prepare

    def spy(case: BenchCase, backend: Backend) -> harness.Workload:
        workload = original(case, backend)
        params.extend(workload.model.parameters())
        return workload

    params: list[nn.Parameter] = []
    harness.prepare = spy
    try:
        run_case(Watching(backend.timer()), case, fast_options(), backend=backend)
    finally:
        harness.prepare = original
    assert states and all(states)


def test_cuda_path_with_a_fake_device_synchronises_and_records_peak_memory() -> None:
    fake = FakeCuda()
    backend = fake.backend()
    case = case_of("lenet5_relu", "train_step", 4, device="cuda")
    bench = FakeBenchmark(backend.timer())
    outcome = run_case(bench, case, fast_options(devices=("cuda",)), backend=backend)
    info = outcome.extra_info
    assert tuple(info) == EXTRA_INFO_KEYS + CUDA_EXTRA_INFO_KEYS
    assert info["device"] == "cuda" and info["peak_memory_bytes"] == 123_456
    rounds = len(bench.durations)
    assert rounds >= 3
    # every timed round reads the clock twice, each after a synchronisation; plus warm-up and the memory pass
    assert fake.syncs >= 2 * rounds + 2
    assert fake.resets == 1


def test_gpu_options_are_recorded() -> None:
    case = case_of("lenet5_relu", "forward", 2, dtype="bfloat16", channels_last=True)
    assert case.id == "lenet5_relu-forward-cpu-b2-bfloat16-cl"
    backend = make_backend("cpu")
    outcome = run_case(FakeBenchmark(backend.timer()), case, fast_options(), backend=backend)
    assert outcome.extra_info["dtype"] == "bfloat16" and outcome.extra_info["channels_last"] is True


class _OomNet(nn.Module):
    """Runs at batch ≤ 4; raises CUDA's out-of-memory error above."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] > 4:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return self.fc(x.flatten(1))


def test_out_of_memory_is_recorded_and_the_run_goes_on() -> None:
    spec = ModelSpec("_bench_oom_net", (1, 2, 2), 3, "test", "raises OOM above batch 4", 4)
    register_model(spec)(_OomNet)
    try:
        fake = FakeCuda()
        backend = fake.backend()
        big = case_of("_bench_oom_net", "train_step", 64, device="cuda")
        bench = FakeBenchmark(backend.timer())
        outcome = run_case(bench, big, fast_options(devices=("cuda",)), backend=backend)
        assert outcome.status == "oom" and "batch 64" in outcome.error and "out of memory" in outcome.error
        assert outcome.extra_info["status"] == "oom" and outcome.extra_info["images_per_s"] is None
        assert tuple(outcome.extra_info) == EXTRA_INFO_KEYS + CUDA_EXTRA_INFO_KEYS
        assert fake.releases == 1
        small = case_of("_bench_oom_net", "train_step", 2, device="cuda")
        assert run_case(FakeBenchmark(backend.timer()), small, fast_options(), backend=backend).status == "ok"
    finally:
        unregister_model("_bench_oom_net")


# --- which cases run --------------------------------------------------------------------------------------


def test_quick_default_cases() -> None:
    cases = enumerate_cases(SuiteOptions(devices=("cpu", "cuda")))
    by_id = {c.id: c for c in cases}
    assert {c.batch for c in cases if c.model == "lenet5" and c.device == "cpu"} == {1, 64}
    assert {c.batch for c in cases if c.model == "resnet18" and c.device == "cpu"} == {1, 16}
    registered = set(archbench.list_models())
    assert {c.model for c in cases} == registered | {RESNET_OURS, RESNET_TORCHVISION}
    assert {c.mode for c in cases} == {"forward", "train_step"}
    # the comparisons share a group and alternate
    assert by_id["lenet5_bn-forward-cpu-b64"].group == by_id["lenet5_bn_torch-forward-cpu-b64"].group
    ours = by_id["resnet18_ours-train_step-cpu-b16"]
    assert ours.group == by_id["resnet18_torchvision-train_step-cpu-b16"].group and ours.input_shape == (3, 224, 224)
    ids = [c.id for c in cases]
    assert ids.index("resnet18_torchvision-train_step-cpu-b16") == ids.index("resnet18_ours-train_step-cpu-b16") + 1
    # a training step at batch 1 through a BatchNorm over features is skipped with the reason
    assert "at least 2 values per channel" in by_id["lenet5_bn-train_step-cpu-b1"].skip
    assert by_id["resnet18-train_step-cpu-b1"].skip is None
    assert by_id["lenet5-forward-cpu-b1"].group == "lenet5 forward"


def test_sweep_batches_and_parsing() -> None:
    sweep = enumerate_cases(SuiteOptions(devices=("cpu",), models="lenet5", sweep=True))
    assert {c.batch for c in sweep} == {1, 8, 64, 256, 1024}
    assert parse_batches("1,16, 64") == (1, 16, 64)
    with pytest.raises(ArchbenchError, match="positive whole numbers"):
        parse_batches("1,x")
    with pytest.raises(ArchbenchError, match="No model matches"):
        enumerate_cases(SuiteOptions(models="nope*"))


def test_fingerprint_records_the_environment() -> None:
    info = fingerprint(threads=2, dtype="bfloat16", channels_last=True, compile=False, device="cpu")
    for key in ("torch", "torchvision", "cpu_model", "threads", "gpu", "cuda_version", "cudnn_version",
                "cudnn_benchmark", "tf32_matmul", "tf32_cudnn", "dtype", "channels_last", "compile"):
        assert key in info
    assert info["dtype"] == "bfloat16" and info["threads"] == 2
    json.dumps(info)


# --- the results file --------------------------------------------------------------------------------------


def _valid_document() -> dict[str, Any]:
    case = case_of("lenet5_relu", "forward", 8)
    work = model_work(archbench.get_model("lenet5_relu"), (1, 28, 28))
    info = make_extra_info(case, work, 2, 0.004, cuda=False)
    oom_case = BenchCase("lenet5_relu", "forward", "cuda", 4096, (1, 28, 28), 10, "logits", "lenet5_relu forward")
    oom = make_extra_info(oom_case, work, 2, None, cuda=True, status="oom")
    return {
        "machine_info": {"node": "x", "archbench": fingerprint()},
        "benchmarks": [
            {"name": "test_network[a]", "group": "g", "extra_info": info, "stats": {"median": 0.004, "rounds": 5}},
            {"name": "test_batchnorm[x]", "group": "bn", "extra_info": {"threads": 2}, "stats": {"median": 1.0}},
        ],
        OOM_KEY: [{"name": "test_network[b]", "group": "g", "extra_info": oom, "error": "out of memory"}],
    }


def test_loader_reads_rows_and_keeps_other_benchmarks(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps(_valid_document()))
    results = load_results(path)
    assert [(r.model, r.status, r.batch) for r in results.rows] == [("lenet5_relu", "ok", 8), ("lenet5_relu", "oom", 4096)]
    assert results.rows[0].images_per_s == pytest.approx(2000) and results.rows[1].median_s is None
    assert len(results.other) == 1 and results.environment["torch"] == torch.__version__
    assert results.select(status="oom")[0].device == "cuda"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: "{not json", "not valid JSON"),
        (lambda d: json.dumps({"rows": []}), "not a pytest-benchmark results file"),
        (lambda d: json.dumps({**d, "machine_info": {"node": "x"}}), "not written by archbench"),
        (lambda d: json.dumps({**d, "benchmarks": [{**d["benchmarks"][0], "extra_info": {
            k: v for k, v in d["benchmarks"][0]["extra_info"].items() if k != "threads"}}]}), "lacks extra_info threads"),
        (lambda d: json.dumps({**d, "benchmarks": [{**d["benchmarks"][0], "extra_info": {
            **d["benchmarks"][0]["extra_info"], "images_per_s": 1.0}}]}), "batch / median"),
    ],
    ids=["corrupt", "foreign", "no-fingerprint", "missing-key", "inconsistent"],
)
def test_loader_rejects_bad_files_in_one_sentence(tmp_path: Path, mutate: Callable, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(mutate(_valid_document()))
    with pytest.raises(ArchbenchError, match=message) as err:
        load_results(path)
    assert "\n" not in str(err.value)
    with pytest.raises(ArchbenchError, match="do not exist"):
        load_results(tmp_path / "missing.json")


# --- end to end: pytest-benchmark writes JSON that the loader reads ---------------------------------------------


def test_archbench_bench_writes_json_the_loader_reads(tmp_path: Path) -> None:
    out = tmp_path / "reports" / "bench.json"
    cmd = [sys.executable, "-m", "archbench", "bench", "--device", "cpu", "--models", "lenet5_relu", "--batch", "2",
           "--max-time", "0.02", "--min-rounds", "3", "--threads", "1", "--json", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "benchmark 'lenet5_relu train_step'" in proc.stdout and "wrote 2 network rows" in proc.stdout
    results = load_results(out)
    assert sorted(r.mode for r in results.rows) == ["forward", "train_step"]
    for row in results.rows:
        assert tuple(row.extra_info) == EXTRA_INFO_KEYS and row.threads == 1
        assert row.images_per_s == pytest.approx(2 / row.median_s)
        assert row.stats["rounds"] >= 3
    env = results.environment
    assert env["threads"] == 1 and env["device"] == "cpu" and env["dtype"] == "float32"
    assert "others_cpu_share" in env and "load_average" in env  # how busy the machine was
    raw = json.loads(out.read_text())
    assert raw["benchmarks"][0]["options"]["timer"] == "perf_counter"


def test_cli_bench_errors_are_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["bench", "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "CUDA is not available" in err
    assert main(["bench", "--device", "cpu", "--models", "nope*"]) == 2
    assert "No model matches 'nope*'" in capsys.readouterr().err
