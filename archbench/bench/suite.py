"""The network benchmarks as a pytest module: one test per case of :func:`~archbench.bench.cases.enumerate_cases`.

It lives in the package so that an installed ``archbench bench`` can run it; ``benchmarks/bench_forward_backward.py``
re-exports it for ``pytest benchmarks/ --benchmark-only``. Each case gets pytest-benchmark's marker with its
group (network or comparison, and mode) and a :class:`~archbench.bench.timing.SyncTimer` for its device;
CUDA cases are skipped, with the reason, on a machine without CUDA.

Example:
    $ pytest benchmarks/bench_forward_backward.py --benchmark-only -k "lenet5-forward"
"""

from __future__ import annotations

from typing import Any

import pytest

from archbench.bench.cases import BenchCase, enumerate_cases
from archbench.bench.harness import run_case
from archbench.bench.plugin import options_from_config, record_oom
from archbench.bench.timing import SyncTimer
from archbench.errors import ArchbenchError

__all__ = ["pytest_generate_tests", "test_network"]

NO_CUDA = "CUDA is not available on this machine (torch.cuda.is_available() is False)"


def _param(case: BenchCase) -> object:
    import torch

    marks = [pytest.mark.benchmark(group=case.group, timer=SyncTimer(case.device))]
    if case.device == "cuda":
        marks.append(pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA))
    if case.skip:
        marks.append(pytest.mark.skip(reason=case.skip))
    return pytest.param(case, id=case.id, marks=marks)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise ``case`` over every case the session's options select."""
    if "case" not in metafunc.fixturenames:
        return
    try:
        cases = enumerate_cases(options_from_config(metafunc.config))
    except ArchbenchError as err:
        raise pytest.UsageError(str(err)) from None
    metafunc.parametrize("case", [_param(c) for c in cases])


def test_network(benchmark: Any, case: BenchCase, request: pytest.FixtureRequest) -> None:
    """Time one network in one mode on one device at one batch size; see :mod:`archbench.bench.harness`."""
    outcome = run_case(benchmark, case, options_from_config(request.config))
    if outcome.status == "oom":
        record_oom(
            request.config,
            {"name": request.node.name, "fullname": request.node.nodeid, "group": case.group,
             "extra_info": outcome.extra_info, "error": outcome.error},
        )
        benchmark.skipped = True  # the row is recorded; no "fixture not used" warning
        pytest.skip(outcome.error or "out of memory")
