"""Is the harness honest? The same step timed by pytest-benchmark (as the suite does) and by ``torch.utils.benchmark``.

For each workload the ``benchmark`` fixture times the suite's own step (:func:`archbench.bench.suite.make_step`,
the synchronising timer from the suite's marker), then ``torch.utils.benchmark.Timer.blocked_autorange``
times the same callable at the same thread count. The ratio of medians (pytest-benchmark /
torch.utils.benchmark) is ``extra_info["ratio_to_torch_timer"]``; near 1.0 means neither adds overhead.
Reported, never asserted (the machine's load moves both).

Example:
    $ pytest benchmarks/bench_crosscheck.py --benchmark-only
"""

from __future__ import annotations

import pytest
import torch
from torch.utils.benchmark import Timer

from archbench.bench.cases import BenchCase, SuiteOptions, enumerate_cases
from archbench.bench.suite import make_step
from archbench.bench.machine import SyncTimer

WORKLOADS = [("lenet5", "forward", 64), ("lenet5", "train_step", 64), ("resnet18", "train_step", 4)]


def _case(model: str, mode: str, batch: int) -> BenchCase:
    cases = enumerate_cases(SuiteOptions(models=(model,), device="cpu", batches=(batch,)))
    return next(c for c in cases if c.model == model and c.mode == mode)


@pytest.mark.benchmark(timer=SyncTimer("cpu"))  # the suite's clock, as its marker sets it
@pytest.mark.parametrize(("model", "mode", "batch"), WORKLOADS, ids=lambda v: str(v))
def test_harness_against_torch_utils_benchmark(benchmark, model: str, mode: str, batch: int) -> None:
    case = _case(model, mode, batch)
    step = make_step(case)
    benchmark.group = "harness vs torch.utils.benchmark"
    benchmark(step)
    measured = Timer("step()", globals={"step": step}, num_threads=torch.get_num_threads()).blocked_autorange(min_run_time=1.0)
    if benchmark.stats is not None:
        ours = benchmark.stats.stats.median
        benchmark.extra_info.update(
            model=model, workload=case.id, threads=torch.get_num_threads(), harness_median_s=ours,
            torch_timer_median_s=measured.median, ratio_to_torch_timer=ours / measured.median,
        )  # fmt: skip
