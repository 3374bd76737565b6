"""``archbench bench``: ``pytest.main`` over :mod:`archbench.bench.suite`, its JSON written as a unit.

The JSON path is checked before anything runs; pytest-benchmark writes into a temporary file beside it
(:func:`archbench.report.files.replace_file`) that replaces the target only after a complete, valid run.

Example:
    >>> pytest_arguments(SuiteOptions(models=("lenet5",), device="cpu", threads=2), max_time=0.5)[-4:]
    ['--benchmark-max-time=0.5', '--archbench-models=lenet5', '--archbench-device=cpu', '--archbench-threads=2']
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import torch

import archbench.bench.suite
from archbench.bench.cases import SuiteOptions, enumerate_cases
from archbench.bench.results import load_results
from archbench.errors import ArchbenchError


class _Failed(Exception):
    """A benchmark failed: the previous JSON stays as it was."""


def pytest_arguments(options: SuiteOptions, *, max_time: float | None = None, min_rounds: int | None = None,
                     json_path: str | Path | None = None) -> list[str]:  # fmt: skip
    """The ``pytest`` command line that runs the suite with these options."""
    args = [archbench.bench.suite.__file__, "-p", "archbench.bench.plugin", "-p", "no:cacheprovider", "--benchmark-only",
            "-W", "ignore::pytest.PytestAssertRewriteWarning"]  # the plugin is imported already, as it is here
    args += [f"--benchmark-json={json_path}"] if json_path is not None else []
    args += [f"--benchmark-max-time={max_time}"] if max_time is not None else []
    args += [f"--benchmark-min-rounds={min_rounds}"] if min_rounds is not None else []
    return args + options.pytest_args()


def run_benchmarks(*, json_path: str | Path | None = None, max_time: float | None = None, min_rounds: int | None = None,
                   extra_args: Sequence[str] = (), **options: Any) -> int:  # fmt: skip
    """Validate, run the suite in this process and (if asked) write its JSON atomically; return 0 or 1.

    Args:
        json_path: where the JSON goes (replaced only after a complete run; kept as it was if a benchmark fails).
        max_time: ``--benchmark-max-time`` (seconds of rounds per benchmark).
        min_rounds: ``--benchmark-min-rounds``.
        extra_args: further pytest arguments, e.g. ``["-k", "forward", "--benchmark-warmup=on"]``.
        options: :class:`~archbench.bench.cases.SuiteOptions` fields (``models``, ``device``, ``batches``...).

    Raises:
        ArchbenchError: for a bad option or path, CUDA asked for but absent, or nothing selected.
    """
    from archbench.report.files import replace_file

    suite = SuiteOptions(**options)
    if suite.device == "cuda" and not torch.cuda.is_available():
        raise ArchbenchError("--device cuda was asked for but CUDA is not available on this machine; use cpu or auto.")
    enumerate_cases(suite)  # a model that matches nothing fails here, in one line
    output = replace_file(json_path) if json_path is not None else contextlib.nullcontext()  # path checked on entry
    with contextlib.suppress(_Failed), output as tmp:
        code = pytest.main([*pytest_arguments(suite, max_time=max_time, min_rounds=min_rounds, json_path=tmp), *extra_args])
        if code == pytest.ExitCode.INTERRUPTED:
            raise KeyboardInterrupt
        if code in (pytest.ExitCode.NO_TESTS_COLLECTED, pytest.ExitCode.USAGE_ERROR):
            raise ArchbenchError(f"pytest selected no benchmark or rejected the options (exit {int(code)}); see its message above.")
        if code != pytest.ExitCode.OK:
            raise _Failed
        if tmp is not None and tmp.stat().st_size == 0:
            raise ArchbenchError(f"No benchmark ran, so {json_path} was left as it was.")
        if tmp is not None:
            load_results(tmp)  # never replace a good file with a bad one
    return 0 if code == pytest.ExitCode.OK else 1
