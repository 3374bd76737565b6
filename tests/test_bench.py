"""The benchmark suite: options, cases, the synchronising timer, results validation, compare, atomic JSON.

Timings are never asserted; one subprocess runs a tiny benchmark through `pytest --benchmark-only` from the
repository root to check collection, the measured peak in the JSON and the extra_info the report reads.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from archbench.bench import EXTRA_INFO_KEYS, SyncTimer, load_results
from archbench.bench import runner
from archbench.bench.cases import RESNET_OURS, RESNET_TORCHVISION, SuiteOptions, enumerate_cases, work_of
from archbench.bench.compare import FASTEST, MEDIANS, SCALED, compare_runs
from archbench.bench.machine import PROBE, measure_peak
from archbench.bench.plugin import _benchmarks_asked
from archbench.bench.results import check_distinct
from archbench.bench.suite import make_step
from archbench.cli import main
from archbench.errors import ArchbenchError

REPO = Path(__file__).resolve().parents[1]


def test_sync_timer_synchronises_cuda_before_each_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[float] = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: seen.append(time.perf_counter()))
    timer = SyncTimer("cuda:0")
    first, second = timer(), timer()
    assert len(seen) == 2 and seen[0] <= first <= seen[1] <= second
    assert SyncTimer("cpu").__name__ == "perf_counter" and len(seen) == 2


def _config(options: SuiteOptions, **benchmark: object) -> SimpleNamespace:
    """A pytest config stand-in whose getoption answers what `options.pytest_args()` would set."""
    values = {f"archbench_{k}": None for k in SuiteOptions.__dataclass_fields__}
    for arg in options.pytest_args():
        flag, _, value = arg.partition("=")
        values[flag[2:].replace("-", "_")] = value or True
    values.update(benchmark)
    return SimpleNamespace(getoption=lambda name, default=None: values.get(name, default), args=[])


def test_options_are_defined_once_and_round_trip_through_pytest() -> None:
    options = SuiteOptions(models=("lenet*", "resnet18"), batches=(2, 8), sweep=True, threads=3, device="cpu",
                           input_size=(1, 28, 28), dtype="bfloat16")  # fmt: skip
    assert SuiteOptions.from_pytest(_config(options)) == options
    with pytest.raises(ArchbenchError, match="dtype"):
        SuiteOptions(dtype="float64")
    with pytest.raises(ArchbenchError, match="thread count"):
        SuiteOptions(threads=0)


def test_cases_take_references_wildcards_and_the_pairs() -> None:
    cases = enumerate_cases(SuiteOptions(models=("lenet5_bn*",), device="cpu"))
    models = [c.model for c in cases if c.mode == "forward" and c.batch == 1]
    assert models == ["lenet5_bn", "lenet5_bn_torch"]  # the pair alternates
    skipped = [c for c in cases if c.skip]
    assert {(c.mode, c.batch) for c in skipped} == {("train_step", 1)}  # BatchNorm1d has no variance at batch 1
    pair = {c.model for c in enumerate_cases(SuiteOptions(models=("resnet1?",), device="cpu", batches=(1,)))}
    assert {RESNET_OURS, RESNET_TORCHVISION} <= pair
    ref = enumerate_cases(SuiteOptions(models=("torchvision.models:mobilenet_v3_small",), device="cpu", input_size=(3, 64, 64)))
    assert ref[0].input_shape == (3, 64, 64) and ref[0].output == "logits"
    with pytest.raises(ArchbenchError, match="--input-size"):
        enumerate_cases(SuiteOptions(models=("torchvision.models:mobilenet_v3_small",)))
    with pytest.raises(ArchbenchError, match="No model matches"):
        enumerate_cases(SuiteOptions(models=("nothing*",)))


def test_quick_batch_follows_macs_per_image() -> None:
    small = enumerate_cases(SuiteOptions(models=("lenet5",), device="cpu"))
    big = enumerate_cases(SuiteOptions(models=("resnet1?",), device="cpu"))
    assert {c.batch for c in small} == {1, 64}
    pair = {c.batch for c in big if c.model == RESNET_OURS}
    macs = work_of(RESNET_OURS, (3, 224, 224), "forward")["macs_per_image"]
    assert macs == 1_814_073_344  # torchvision's published 1.814 GFLOPs (MACs) for resnet18
    assert pair == {1, 4}  # 8e9 MACs per call / 1.8e9 per image → 4 images


def test_flops_of_an_operator_without_a_formula_are_a_declared_lower_bound(tmp_path: Path) -> None:
    from archbench.report.build import _speed_rows
    from archbench.bench.results import BenchRow

    (tmp_path / "odd.py").write_text(
        "import torch\nfrom torch import nn\n\n"
        "class Odd(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.conv, self.centres = nn.Conv2d(1, 4, 3, padding=1), nn.Parameter(torch.zeros(10, 256))\n\n"
        "    def forward(self, x):\n"
        "        return -torch.cdist(self.conv(x).flatten(1), self.centres)  # distances: no MAC formula\n"
    )
    work = work_of(f"{tmp_path / 'odd.py'}:Odd", (1, 8, 8), "forward")
    assert work["macs_per_image"] == 4 * 9 * 8 * 8 and work["flops_per_image"] == 2 * 4 * 9 * 8 * 8  # the conv alone
    assert work["uncounted"] == {"_cdist_forward": 1}
    info = {"model": "odd", "batch": 1, "images_per_s": 1.0, "gflops_per_s": 1e-6, "pct_of_peak": 0.0, **work}
    (row,) = _speed_rows([BenchRow("odd", info, 1.0)])
    assert row[5].startswith("≥ ") and row[6].startswith("≥ ")  # the report says the number is a lower bound
    assert work_of("lenet5", (1, 28, 28), "forward")["uncounted"] == {}


def test_training_step_loss_follows_the_output_kind() -> None:
    from archbench.bench.cases import BenchCase

    case = BenchCase("mnist_net", "train_step", "cpu", 4, (1, 28, 28), "log_probs")
    loss = make_step(case)()
    assert loss.ndim == 0 and torch.isfinite(loss)


def test_measured_peak_is_the_best_of_matmul_and_conv() -> None:
    peak = measure_peak("cpu", "float32", threads=1, size=128, repeats=1)
    assert peak["gflops_per_s"] == max(peak["matmul_gflops_per_s"], peak["conv_gflops_per_s"]) > 0
    assert (peak["device"], peak["dtype"], peak["threads"]) == ("cpu", "float32", 1)


def test_the_peak_is_measured_again_after_the_run_and_the_better_reading_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """Seen here: the first measurement ran in a slow spell (115 GFLOP/s for 220), putting a network at 152%."""
    from archbench.bench import plugin

    def peak(gflops: float) -> dict[str, object]:
        return {"device": "cpu", "dtype": "float32", "threads": 2, "gflops_per_s": gflops}

    monkeypatch.setattr(plugin, "measure_peak", lambda device, dtype, threads: peak(200.0))
    info = {"device": "cpu", "dtype": "float32", "threads": 2, "gflops_per_s": 150.0}
    stash = {plugin._PEAKS: {("cpu", "float32", 2): peak(100.0)}, plugin._ROWS: [("b", info)]}
    for exitstatus, kept, pct in ((pytest.ExitCode.INTERRUPTED, 100.0, 150.0), (pytest.ExitCode.OK, 200.0, 75.0)):
        hook = plugin.pytest_sessionfinish(SimpleNamespace(config=SimpleNamespace(stash=stash)), exitstatus)
        next(hook)  # the part before pytest-benchmark writes its JSON
        assert stash[plugin._PEAKS][("cpu", "float32", 2)]["gflops_per_s"] == kept and info["pct_of_peak"] == pct
    assert stash[plugin._PEAKS][("cpu", "float32", 2)]["readings_gflops_per_s"] == [100.0, 200.0]
    monkeypatch.setattr(plugin, "measure_peak", lambda device, dtype, threads: peak(50.0))  # a spell after the run
    next(plugin.pytest_sessionfinish(SimpleNamespace(config=SimpleNamespace(stash=stash)), pytest.ExitCode.OK))
    assert stash[plugin._PEAKS][("cpu", "float32", 2)]["gflops_per_s"] == 200.0 and info["pct_of_peak"] == 75.0


def test_theoretical_peak_is_lanes_fma_units_threads_and_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    from archbench.bench import machine as peak_module

    cpu = {"vendor_id_raw": "AuthenticAMD", "family": 23, "flags": ["avx2", "fma"], "hz_advertised": (2_445_404_000, 0)}
    monkeypatch.setattr(peak_module, "cpu_info", lambda: cpu)  # py-cpuinfo's keys, as pytest-benchmark records them
    theory, basis = peak_module.theoretical_peak("cpu", "float32", 2)
    assert theory == round(8 * 2 * 2 * 2 * 2.445404, 1)  # AVX2: 8 float32 lanes, FMA = 2 FLOPs, 2 FMA units
    assert "2.45 GHz, the advertised clock" in basis
    cpu.update(vendor_id_raw="GenuineIntel", family=6, flags=["avx512f", "avx2", "fma"], hz_advertised=(3_000_000_000, 0))
    assert peak_module.theoretical_peak("cpu", "float32", 1)[0] == 16 * 2 * 2 * 3.0
    cpu.update(vendor_id_raw="AuthenticAMD", family=25)  # Zen 4: AVX-512 on 256-bit units, so 8 lanes per FMA
    assert peak_module.theoretical_peak("cpu", "float32", 1)[0] == 8 * 2 * 2 * 3.0
    cpu.update(hz_advertised=(0, 0))
    assert peak_module.theoretical_peak("cpu", "float32", 1) == (None, "CPU vector width or clock unknown")
    # A measured peak above the theoretical one says the clock was higher than the one used.
    monkeypatch.setattr(peak_module, "theoretical_peak", lambda *_: (1e-3, "tiny"))
    assert "ran at least" in measure_peak("cpu", "float32", threads=1, size=64, repeats=1)["theoretical_basis"]


def test_plain_pytest_leaves_benchmarks_out() -> None:
    assert not _benchmarks_asked(_config(SuiteOptions()))
    assert _benchmarks_asked(_config(SuiteOptions(), benchmark_only=True))


@pytest.mark.slow
def test_pytest_benchmark_only_from_the_root_collects_and_records_the_peak(tmp_path: Path) -> None:
    out = tmp_path / "b.json"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--benchmark-only", "-q", "-k", "test_network and forward",
         "--ignore=tests",  # testpaths still brings benchmarks/ in; skipping tests/ only saves collection time
         "--archbench-models=lenet5_relu", "--archbench-batches=2", "--archbench-device=cpu", "--archbench-threads=1",
         "--benchmark-max-time=0.01", "--benchmark-min-rounds=3", f"--benchmark-json={out}"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "1 passed" in done.stdout and "deselected" in done.stdout  # the correctness tests are deselected
    results = load_results(out)
    (row,) = results.rows
    assert set(EXTRA_INFO_KEYS) <= set(row.extra_info) and row.batch == 2 and row.threads == 1
    (peak,) = results.peaks
    assert (peak["device"], peak["dtype"], peak["threads"]) == ("cpu", "float32", 1) and peak["gflops_per_s"] > 0
    assert row.pct_of_peak == pytest.approx(100 * row.gflops_per_s / peak["gflops_per_s"], abs=0.05)
    assert len(peak["readings_gflops_per_s"]) == 2 and peak["gflops_per_s"] == max(peak["readings_gflops_per_s"])
    assert len(json.loads(out.read_text())["benchmarks"][0]["stats"]["data"]) >= 3  # rounds kept for compare


# --- compare ------------------------------------------------------------------------------------------


def _run_file(path: Path, rounds: dict[str, list[float]], probes: dict[str, float] | None = None) -> Path:
    """A results file; ``probes``: each benchmark's machine probe (small-operator calls/s)."""
    benchmarks = [{"name": n, "fullname": f"bench.py::{n}", "stats": {"median": sorted(r)[len(r) // 2], "data": r},
                   "extra_info": {PROBE: probes[n]} if probes else {}} for n, r in rounds.items()]  # fmt: skip
    path.write_text(json.dumps({"machine_info": {}, "benchmarks": benchmarks}))
    return path


def test_compare_matches_benchmarks_by_test_name_across_the_two_routes(tmp_path: Path) -> None:
    """``archbench bench`` runs the installed suite, ``pytest --benchmark-only`` runs benchmarks/: other paths."""
    old = _run_file(tmp_path / "old.json", {"test_network[lenet5-forward-cpu-b1]": [1.0, 1.1, 1.0]})
    data = json.loads(old.read_text())
    data["benchmarks"][0]["fullname"] = "archbench/bench/suite.py::test_network[lenet5-forward-cpu-b1]"
    (tmp_path / "new.json").write_text(json.dumps(data))
    assert [r.verdict for r in compare_runs(old, tmp_path / "new.json")[0]] == ["no change"]


def test_compare_names_the_benchmarks_only_one_file_has(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = _run_file(tmp_path / "old.json", {"x": [1.0, 1.1], "y": [1.0, 1.1]})
    new = _run_file(tmp_path / "new.json", {"y": [1.0, 1.1], "z": [1.0, 1.1]})
    result = compare_runs(old, new)
    assert [r.name for r in result.rows] == ["y"] and result.unmatched == {"old": ["x"], "new": ["z"]}
    assert main(["compare", str(old), str(new)]) == 0
    out = capsys.readouterr().out
    assert f"1 benchmark only in {old} (x)" in out and f"1 benchmark only in {new} (z)" in out


def test_compare_says_when_too_few_benchmarks_show_the_scatter(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Four benchmarks cannot show how far a rerun of the same code moves them; the output says so. Five can."""
    for count, judged in ((4, False), (5, True)):
        rounds = {f"b{i}": [1.0, 1.1, 1.0] for i in range(count)}
        old, new = (_run_file(tmp_path / f"{side}{count}.json", rounds) for side in ("old", "new"))
        assert main(["compare", str(old), str(new)]) == 0
        out = capsys.readouterr().out
        assert ("Only 4 benchmarks in common: fewer than 5 cannot show" in out) is not judged
        assert (f"whole run ({count} benchmarks)" in out) is judged


def test_compare_verdicts_on_known_rounds(tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(0)

    def noisy(median: float, spread: float, n: int = 40) -> list[float]:
        return (median * (1 + spread * torch.rand(n, generator=gen))).tolist()

    base = noisy(0.01, 0.05)
    old = _run_file(tmp_path / "old.json", {"same": base, "slow": base, "noisy": noisy(0.01, 0.5)})
    new = _run_file(tmp_path / "new.json", {"same": base, "slow": [1.5 * t for t in base], "noisy": noisy(0.01, 0.5)})
    rows = {r.name.split("::")[-1]: r for r in compare_runs(old, new)[0]}
    assert {n: r.verdict for n, r in rows.items()} == {"same": "no change", "slow": "slower", "noisy": "no change"}
    # each row names the band it was judged against: the 10% floor, or its rounds' own interquartile spread
    assert rows["same"].band == pytest.approx(0.1) and rows["noisy"].band > 0.2
    assert main(["compare", str(old), str(new)]) == 0
    assert main(["compare", str(old), str(new), "--fail-on", "5%"]) == 1
    assert main(["compare", str(new), str(old), "--fail-on", "5%"]) == 0  # faster is not a failure
    # the same 1.5x while the machine ran at half its speed: the machine, not the code
    old = _run_file(tmp_path / "old.json", {"slow": base}, probes={"slow": 4000.0})
    new = _run_file(tmp_path / "new.json", {"slow": [1.5 * t for t in base]}, probes={"slow": 2000.0})
    assert [(r.verdict, r.machine) for r in compare_runs(old, new)[0]] == [("no change", 0.5)]


def test_compare_sees_run_to_run_scatter_and_still_flags_a_real_slowdown(tmp_path: Path) -> None:
    """A shared VM runs whole stretches of one run up to 30% slower, with tight rounds inside each benchmark."""
    gen = torch.Generator().manual_seed(1)
    names = [f"b{i}" for i in range(12)]
    base = {n: (0.01 * (1 + 0.03 * torch.rand(50, generator=gen))).tolist() for n in names}

    def shifted(spread: float, slow: set[str] = frozenset()) -> dict[str, list[float]]:
        shifts = 1 + spread * (2 * torch.rand(len(names), generator=gen) - 1)
        return {n: [t * float(k) * (1.5 if n in slow else 1.0) for t in base[n]] for n, k in zip(names, shifts)}

    old = _run_file(tmp_path / "old.json", base)
    same = _run_file(tmp_path / "same.json", shifted(0.3))  # the same code, a noisy machine
    assert {r.verdict for r in compare_runs(old, same)[0]} == {"no change"}
    slower = _run_file(tmp_path / "slower.json", shifted(0.05, slow={"b3", "b7"}))  # a real 1.5x in two of them
    verdicts = {r.name.split("::")[-1]: r.verdict for r in compare_runs(old, slower)[0]}
    assert {n for n, v in verdicts.items() if v == "slower"} == {"b3", "b7"}
    assert {v for n, v in verdicts.items() if n not in ("b3", "b7")} == {"no change"}
    everything = _run_file(tmp_path / "everything.json", shifted(0.05, slow=set(names)))  # all 1.5x: still seen
    rows, _, whole, _ = compare_runs(old, everything)
    assert {r.verdict for r in rows} == {"slower"} and whole.verdict == "slower"
    assert whole.name == "whole run (12 benchmarks)"
    assert compare_runs(old, same).overall.verdict == "no change"


def test_compare_of_many_benchmarks_keeps_every_same_code_row_and_still_sees_the_whole_run(tmp_path: Path) -> None:
    """95 benchmarks, each run shifted by log-normal noise of σ = 0.15 (this VM's, measured): a 2σ band leaves
    5 same-code rows of these outside it; the band widened for 95 verdicts at once leaves none, and a
    1.5× slow-down of every benchmark is seen in the run as a whole even where single rows cannot show it."""
    gen = torch.Generator().manual_seed(5)
    names = [f"b{i}" for i in range(95)]
    base = {n: (0.01 * (1 + 0.03 * torch.rand(30, generator=gen))).tolist() for n in names}

    def run(path: str, factor: float) -> Path:
        shifts = torch.exp(0.15 * torch.randn(len(names), generator=gen))
        return _run_file(tmp_path / path, {n: [t * factor * float(k) for t in base[n]] for n, k in zip(names, shifts)})

    old = run("old.json", 1.0)
    rows, bands, whole, _ = compare_runs(old, run("same.json", 1.0))
    assert {r.verdict for r in rows} == {"no change"} and whole.verdict == "no change"
    rows, bands, whole, _ = compare_runs(old, run("slower.json", 1.5))
    assert whole.verdict == "slower" and whole.low > 1.3 and bands[MEDIANS] > 0.5  # rows alone could not tell


def test_compare_tells_a_machine_that_slowed_down_from_code_that_did(tmp_path: Path) -> None:
    """Seen on this VM: the last benchmarks of a run 1.6-2.2× slower, the same code; their probes show it."""
    gen = torch.Generator().manual_seed(2)
    names = [f"b{i}" for i in range(8)]
    base = {n: (0.01 * (1 + 0.03 * torch.rand(40, generator=gen))).tolist() for n in names}
    late = set(names[5:])  # the machine ran at 0.6× speed while these were timed
    old = _run_file(tmp_path / "old.json", base, probes={n: 100.0 for n in names})
    slow_machine = {n: [t / (0.6 if n in late else 1.0) for t in base[n]] for n in names}
    new = _run_file(tmp_path / "new.json", slow_machine, probes={n: 60.0 if n in late else 100.0 for n in names})
    rows = compare_runs(old, new)[0]
    assert {r.verdict for r in rows} == {"no change"}
    speed = {r.name.split("::")[-1]: round(r.machine, 2) for r in rows}
    assert {n: s for n, s in speed.items() if s != 1.0} == {n: 0.6 for n in late}
    # Without the probes the same files read as a slow-down of those three...
    unprobed = _run_file(tmp_path / "unprobed.json", slow_machine)
    assert {r.name.split("::")[-1] for r in compare_runs(old, unprobed)[0] if r.verdict == "slower"} == late
    # ...and a real 1.5× on a machine that ran as fast as before is still flagged.
    slower_code = {n: [t * (1.5 if n == "b1" else 1.0) for t in base[n]] for n in names}
    real = _run_file(tmp_path / "real.json", slower_code, probes={n: 100.0 for n in names})
    assert [r.name.split("::")[-1] for r in compare_runs(old, real)[0] if r.verdict == "slower"] == ["b1"]


def test_compare_on_a_machine_twice_as_slow_still_flags_a_real_slowdown(tmp_path: Path) -> None:
    """Every probe halved: read through the probes, the one real 1.5× stands out; unscaled, all of them look slower."""
    gen = torch.Generator().manual_seed(4)
    names = [f"b{i}" for i in range(8)]
    base = {n: (0.01 * (1 + 0.03 * torch.rand(40, generator=gen))).tolist() for n in names}
    old = _run_file(tmp_path / "old.json", base, probes={n: 100.0 for n in names})
    slow = {n: [t * 2 * (1.5 if n == "b4" else 1.0) for t in base[n]] for n in names}
    rows, bands, whole, _ = compare_runs(old, _run_file(tmp_path / "new.json", slow, probes={n: 50.0 for n in names}))
    assert {r.name.split("::")[-1]: r.verdict for r in rows if r.verdict != "no change"} == {"b4": "slower"}
    assert whole.verdict == "no change"  # the whole run: the machine, not the code
    assert set(bands) == {MEDIANS, SCALED, FASTEST}
    unprobed = compare_runs(old, _run_file(tmp_path / "unprobed.json", slow))
    assert {r.verdict for r in unprobed.rows} == {"slower"} and unprobed.overall.verdict == "slower"


def test_compare_sees_a_slow_spell_of_small_calls(tmp_path: Path) -> None:
    """Seen on this VM: one batch-1 benchmark 1.9× slower in a rerun of the same code, while a large matmul ran as
    fast as ever; the chain of small operators probed beside it ran slower by as much."""
    gen = torch.Generator().manual_seed(3)
    names = [f"b{i}" for i in range(8)]
    base = {n: (0.001 * (1 + 0.03 * torch.rand(40, generator=gen))).tolist() for n in names}
    old = _run_file(tmp_path / "old.json", base, probes={n: 4000.0 for n in names})
    spell = {n: [t * (1.9 if n == "b2" else 1.0) for t in base[n]] for n in names}
    new = _run_file(tmp_path / "new.json", spell, probes={n: 2100.0 if n == "b2" else 4000.0 for n in names})
    assert {r.verdict for r in compare_runs(old, new)[0]} == {"no change"}
    unseen = _run_file(tmp_path / "unseen.json", spell, probes={n: 4000.0 for n in names})
    assert [r.name.split("::")[-1] for r in compare_runs(old, unseen)[0] if r.verdict == "slower"] == ["b2"]


def test_compare_sees_a_slow_spell_inside_one_benchmark(tmp_path: Path) -> None:
    """Seen on this VM: a rerun of the same code where 72 of one benchmark's 79 rounds ran more than 1.5× slower,
    with the probes before and after it almost unmoved; its fastest round ran as fast as before."""
    gen = torch.Generator().manual_seed(6)
    names = [f"b{i}" for i in range(8)]
    base = {n: (0.002 * (1 + 0.03 * torch.rand(80, generator=gen))).tolist() for n in names}
    flat = {n: 4000.0 for n in names}
    old = _run_file(tmp_path / "old.json", base, probes=flat)
    spell = {n: [t * (2.6 if n == "b5" and i < 70 else 1.0) for i, t in enumerate(base[n])] for n in names}
    rows = {r.name.split("::")[-1]: r for r in compare_runs(old, _run_file(tmp_path / "new.json", spell, probes=flat)).rows}
    assert rows["b5"].ratio == pytest.approx(2.6, rel=0.05) and {r.verdict for r in rows.values()} == {"no change"}
    real = {n: [t * (1.5 if n == "b5" else 1.0) for t in base[n]] for n in names}  # every round: a real slow-down
    rows = compare_runs(old, _run_file(tmp_path / "real.json", real, probes=flat)).rows
    assert [r.name.split("::")[-1] for r in rows if r.verdict == "slower"] == ["b5"]


def test_compare_refuses_bad_or_mismatched_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _run_file(tmp_path / "a.json", {"x": [1.0, 1.1]})
    b = _run_file(tmp_path / "b.json", {"y": [1.0, 1.1]})
    no_rounds = tmp_path / "c.json"
    no_rounds.write_text(json.dumps({"machine_info": {}, "benchmarks": [{"name": "x", "stats": {"median": 1.0}}]}))
    twice = tmp_path / "d.json"
    entry = {"name": "x", "stats": {"median": 1.0, "data": [1.0, 1.1]}}
    twice.write_text(json.dumps({"machine_info": {}, "benchmarks": [{**entry, "fullname": f"{f}::x"} for f in "ab"]}))
    for args in ([a, b], [a, no_rounds], [a, tmp_path / "missing.json"], [a, twice]):
        assert main(["compare", *map(str, args)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err


# --- results validation and the atomic JSON ----------------------------------------------------------


def _network_json(path: Path, median: object = 0.002, **stats: object) -> Path:
    info = {"model": "lenet5", "mode": "forward", "device": "cpu", "dtype": "float32", "batch": 4,
            "input_shape": [1, 28, 28], "threads": 2, "params": 61_706, "macs_per_image": 416_520,
            "flops_per_image": 833_040, "images_per_s": 2000.0, "gflops_per_s": 1.66, "channels_last": False,
            "compile": False, "status": "ok"}  # fmt: skip
    entry = {"name": "test_network[lenet5-forward-cpu-b4]", "stats": {"median": median, **stats}, "extra_info": info}
    path.write_text(json.dumps({"machine_info": {"archbench": {"threads": 2}}, "benchmarks": [entry]}))
    return path


@pytest.mark.parametrize(
    ("median", "stats", "message"),
    [("0.002", {}, "not a positive number"), (None, {}, "not a positive number"), (0.002, {"rounds": "5"}, "rounds")],
)
def test_results_with_mistyped_stats_get_one_sentence(tmp_path: Path, median: object, stats: dict, message: str) -> None:
    with pytest.raises(ArchbenchError, match=message):
        load_results(_network_json(tmp_path / "r.json", median, **stats))


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [("batch", 0, "batch 0, expected a whole number of at least 1"), ("threads", True, "expected a whole number"),
     ("params", -1, "params -1, expected a whole number of at least 0"), ("model", 3, "expected a string"),
     ("status", "failed", "status 'failed', expected ok"), ("channels_last", 0, "expected true or false"),
     ("input_shape", [1, 0, 28], "expected a list of positive whole numbers"), ("gflops_per_s", "1.66", "expected a number")],
)  # fmt: skip
def test_results_with_a_mistyped_row_get_one_sentence(tmp_path: Path, key: str, value: object, message: str) -> None:
    path = _network_json(tmp_path / "r.json")
    load_results(path)  # as written, valid
    data = json.loads(path.read_text())
    data["benchmarks"][0]["extra_info"][key] = value
    path.write_text(json.dumps(data))
    with pytest.raises(ArchbenchError, match=re.escape(message)):
        load_results(path)


def test_results_size_bound_and_the_same_file_twice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _network_json(tmp_path / "r.json")
    results = load_results(path)
    with pytest.raises(ArchbenchError, match="given twice"):
        check_distinct([results, load_results(path)])
    copy = tmp_path / "copy.json"
    copy.write_bytes(path.read_bytes())
    with pytest.raises(ArchbenchError, match="in both"):
        check_distinct([results, load_results(copy)])
    monkeypatch.setattr("archbench.bench.results.MAX_BYTES", 10)
    with pytest.raises(ArchbenchError, match="larger than"):
        load_results(path)


def test_bench_json_path_is_checked_before_running(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for bad in (tmp_path / "missing" / "b.json", tmp_path):
        assert main(["bench", "--models", "lenet5", "--device", "cpu", "--json", str(bad)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err


def test_an_interrupted_run_keeps_the_previous_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    previous = _network_json(tmp_path / "prev.json")
    before = previous.read_bytes()

    def interrupted(args: list[str]) -> int:
        Path(next(a for a in args if a.startswith("--benchmark-json="))[17:]).write_text('{"partial": ')
        return pytest.ExitCode.INTERRUPTED

    monkeypatch.setattr(pytest, "main", interrupted)
    with pytest.raises(KeyboardInterrupt):
        runner.run_benchmarks(models=("lenet5",), device="cpu", json_path=previous)
    assert previous.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["prev.json"]
