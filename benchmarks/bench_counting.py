"""How long counting takes: ``count_macs(resnet18, 1×3×224×224)`` by each method, side by side.

The model is archbench's ResNet-18 in its torchvision configuration (3 channels, 1000 classes, the same
1,814,073,344 conv + linear MACs as ``torchvision.models.resnet18``), built once before timing.

* **warm**: median of repeated calls in one process, after warm-up calls.
* **cold**: the first ``count_macs`` call in a fresh Python process, after ``import archbench`` and building
  the model; this includes whatever that method loads on first use (fvcore and its JIT tracer, the
  ``FlopCounterMode`` dispatch machinery). Median over several fresh processes.

Target: the analytic counter at least 10× faster than fvcore, warm and cold, with identical totals (checked
after timing). The totals are compared, not the timings, by an assertion: timings are reported only.

Run:
    pytest benchmarks/bench_counting.py --benchmark-only
    pytest benchmarks/bench_counting.py --benchmark-only --benchmark-json reports/bench_counting.json
    python benchmarks/bench_counting.py                 # interleaved rounds, cold processes, one table
    python benchmarks/bench_counting.py --model torchvision --rounds 50 --cold 5

Environment: ``ARCHBENCH_BENCH_THREADS`` (CPU threads, default 2), ``ARCHBENCH_BENCH_COLD`` (fresh processes
per method for the cold figure, default 3).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import torch
from torch import nn

from archbench.analysis.counts import METHODS, count_macs

THREADS = int(os.environ.get("ARCHBENCH_BENCH_THREADS", "2"))
COLD_RUNS = int(os.environ.get("ARCHBENCH_BENCH_COLD", "3"))
SHAPE = (1, 3, 224, 224)
TARGET = 10.0  # analytic at least this many times faster than fvcore
ROUNDS = {"analytic": 200, "fvcore": 15, "torch": 15}
WARMUP_ROUNDS = 2

_BUILDERS = {
    "archbench": "archbench.get_model('resnet18', in_channels=3, num_classes=1000, variant='torchvision')",
    "torchvision": "torchvision.models.resnet18()",
}

_COLD_SCRIPT = """
import time, torch
torch.set_num_threads({threads})
import archbench, torchvision
from archbench.analysis.counts import count_macs
model = {builder}
start = time.perf_counter()
total = count_macs(model, {shape}, {method!r}).total
print(time.perf_counter() - start, total)
"""


def make_model(which: str = "archbench") -> nn.Module:
    """ResNet-18 at 1000 classes: archbench's torchvision-compatible variant, or torchvision's own."""
    import archbench
    import torchvision

    return eval(_BUILDERS[which], {"archbench": archbench, "torchvision": torchvision})  # noqa: S307 (fixed text)


def cold_seconds(method: str, which: str = "archbench", runs: int = COLD_RUNS, threads: int = THREADS) -> list[float]:
    """Seconds of the first ``count_macs`` call in each of ``runs`` fresh processes."""
    script = _COLD_SCRIPT.format(threads=threads, builder=_BUILDERS[which], shape=SHAPE, method=method)
    times = []
    for _ in range(runs):
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
        seconds, _total = done.stdout.split()[-2:]
        times.append(float(seconds))
    return times


# --------------------------------------------------------------------------------------------------
# pytest-benchmark
# --------------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _threads() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def model() -> nn.Module:
    return make_model("archbench")


@pytest.fixture(scope="module")
def figures(request: pytest.FixtureRequest) -> Iterator[dict[str, dict[str, float]]]:
    """Collects each method's warm and cold medians; at the end of the module prints the comparison."""
    collected: dict[str, dict[str, float]] = {}
    yield collected
    if "analytic" in collected and "fvcore" in collected:
        capture = request.config.pluginmanager.getplugin("capturemanager")
        with capture.global_and_fixture_disabled():
            print("\n" + _table(collected))


@pytest.mark.parametrize("method", METHODS)
def test_count_macs_resnet18(benchmark, method: str, model: nn.Module, figures: dict) -> None:
    benchmark.group = "count-macs-resnet18-224"
    benchmark.extra_info.update(
        method=method, model="resnet18 (torchvision config)", shape=list(SHAPE), batch=SHAPE[0],
        device="cpu", dtype="float32", threads=THREADS, params=sum(p.numel() for p in model.parameters()),
    )  # fmt: skip
    result = benchmark.pedantic(
        count_macs, args=(model, SHAPE, method), rounds=ROUNDS[method], warmup_rounds=WARMUP_ROUNDS, iterations=1
    )
    cold = cold_seconds(method)
    benchmark.extra_info.update(macs=result.total, cold_s=statistics.median(cold), cold_runs=cold)
    if benchmark.stats is not None:  # None under --benchmark-disable
        figures[method] = {"warm": benchmark.stats.stats.median, "cold": statistics.median(cold), "macs": result.total}
        if method == "fvcore" and "analytic" in figures:
            benchmark.extra_info["fvcore_over_analytic_warm"] = figures["fvcore"]["warm"] / figures["analytic"]["warm"]
            benchmark.extra_info["fvcore_over_analytic_cold"] = figures["fvcore"]["cold"] / figures["analytic"]["cold"]

    # Output checked after timing: every method gives torchvision's conv + linear MACs.
    assert result.total == 1_814_073_344


# --------------------------------------------------------------------------------------------------
# Stand-alone: interleaved rounds, so a burst of load on a shared machine hits every method alike.
# --------------------------------------------------------------------------------------------------


def _table(figures: dict[str, dict[str, float]], threads: int = THREADS) -> str:
    fv = figures["fvcore"]
    lines = [
        f"count_macs(resnet18, {'×'.join(map(str, SHAPE))}) on CPU, {threads} threads "
        f"(warm: median in-process; cold: first call in a fresh process, median)",
        f"  {'method':<9}{'MACs':>16}{'warm':>12}{'cold':>12}   fvcore / method (warm, cold)",
    ]
    for method, f in figures.items():
        lines.append(
            f"  {method:<9}{int(f['macs']):>16,}{f['warm'] * 1e3:>9.2f} ms{f['cold'] * 1e3:>9.1f} ms"
            f"   {fv['warm'] / f['warm']:7.1f}×, {fv['cold'] / f['cold']:7.1f}×"
        )
    a = figures.get("analytic")
    if a:
        ok = fv["warm"] / a["warm"] >= TARGET and fv["cold"] / a["cold"] >= TARGET
        lines.append(f"  analytic vs fvcore: {'meets' if ok else 'misses'} the {TARGET:.0f}× target (warm and cold)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=sorted(_BUILDERS), default="archbench")
    parser.add_argument("--threads", type=int, default=THREADS)
    parser.add_argument("--rounds", type=int, default=30, help="interleaved warm rounds")
    parser.add_argument("--cold", type=int, default=COLD_RUNS, help="fresh processes per method")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = make_model(args.model)
    times: dict[str, list[float]] = {m: [] for m in METHODS}
    totals = {m: count_macs(model, SHAPE, m).total for m in METHODS}  # warm-up
    for i in range(args.rounds):
        for method in METHODS if i % 2 == 0 else METHODS[::-1]:
            start = time.perf_counter()
            count_macs(model, SHAPE, method)
            times[method].append(time.perf_counter() - start)
    figures = {
        m: {
            "warm": statistics.median(times[m]),
            "cold": statistics.median(cold_seconds(m, args.model, args.cold, args.threads)),
            "macs": totals[m],
        }
        for m in METHODS
    }
    print(f"model: {args.model} resnet18; {args.rounds} interleaved warm rounds, {args.cold} cold processes per method")
    print(_table(figures, args.threads))
    assert len(set(totals.values())) == 1, f"the counters disagree: {totals}"


if __name__ == "__main__":
    main()
