"""``archbench bench``: ``pytest.main`` over :mod:`archbench.bench.suite`, its JSON written as a unit.

The JSON path is checked before anything runs (its folder exists and is writable, it is not a folder);
pytest-benchmark writes into a temporary file beside it, which replaces the target only after a complete,
valid run, so an interrupted or failed run never clobbers a previous result.

Example:
    >>> pytest_arguments(SuiteOptions(models=("lenet5",), device="cpu", threads=2), max_time=0.5)[-4:]
    ['--benchmark-max-time=0.5', '--archbench-models=lenet5', '--archbench-device=cpu', '--archbench-threads=2']
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from archbench.bench.cases import SuiteOptions, enumerate_cases
from archbench.bench.results import load_results
from archbench.bench.timing import resolve_device
from archbench.errors import ArchbenchError


def suite_path() -> Path:
    """The file of :mod:`archbench.bench.suite` (what pytest collects)."""
    spec = importlib.util.find_spec("archbench.bench.suite")
    assert spec is not None and spec.origin is not None
    return Path(spec.origin)


def check_output_path(path: str | Path) -> Path:
    """Refuse, before any work, a JSON path whose folder is missing or read-only, or that is a folder.

    Example:
        >>> check_output_path("/no/such/folder/out.json")
        Traceback (most recent call last):
        ...
        archbench.errors.ArchbenchError: The folder of /no/such/folder/out.json does not exist; create it first or choose another path.
    """
    path = Path(path)
    if path.is_dir():
        raise ArchbenchError(f"{path} is a folder; give a file path for the JSON, e.g. {path / 'bench.json'}.")
    if not path.parent.is_dir():
        raise ArchbenchError(f"The folder of {path} does not exist; create it first or choose another path.")
    try:
        with tempfile.TemporaryFile(dir=path.parent):
            pass
    except OSError:
        raise ArchbenchError(f"Cannot write into {path.parent}; choose a writable folder for the JSON.") from None
    return path


def pytest_arguments(options: SuiteOptions, *, max_time: float | None = None, min_rounds: int | None = None,
                     json_path: str | Path | None = None) -> list[str]:  # fmt: skip
    """The ``pytest`` command line that runs the suite with these options."""
    args = [str(suite_path()), "-p", "archbench.bench.plugin", "-p", "no:cacheprovider", "--benchmark-only"]
    args += [f"--benchmark-json={json_path}"] if json_path is not None else []
    args += [f"--benchmark-max-time={max_time}"] if max_time is not None else []
    args += [f"--benchmark-min-rounds={min_rounds}"] if min_rounds is not None else []
    return args + options.pytest_args()


def run_benchmarks(*, json_path: str | Path | None = None, max_time: float | None = None, min_rounds: int | None = None,
                   extra_args: Sequence[str] = (), **options: Any) -> int:  # fmt: skip
    """Validate, run the suite in this process and (if asked) write its JSON atomically; return 0 or 1.

    Args:
        json_path: where the JSON goes (replaced only after a complete run).
        max_time: ``--benchmark-max-time`` (seconds of rounds per benchmark).
        min_rounds: ``--benchmark-min-rounds``.
        extra_args: further pytest arguments, e.g. ``["-k", "forward", "--benchmark-warmup=on"]``.
        options: :class:`~archbench.bench.cases.SuiteOptions` fields (``models``, ``device``, ``batches``...).

    Raises:
        ArchbenchError: for a bad option or path, CUDA asked for but absent, or nothing selected.
    """
    suite = SuiteOptions(**options)
    if suite.device == "cuda":
        resolve_device("cuda")
    enumerate_cases(suite)  # a model that matches nothing fails here, in one line
    target = check_output_path(json_path) if json_path is not None else None
    tmp = None
    if target is not None:
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        tmp = Path(name)
    import pytest

    from archbench.report.files import write_bytes

    try:
        code = pytest.main([*pytest_arguments(suite, max_time=max_time, min_rounds=min_rounds, json_path=tmp), *extra_args])
        if code == pytest.ExitCode.INTERRUPTED:
            raise KeyboardInterrupt
        if code in (pytest.ExitCode.NO_TESTS_COLLECTED, pytest.ExitCode.USAGE_ERROR):
            raise ArchbenchError(f"pytest selected no benchmark or rejected the options (exit {int(code)}); see its message above.")
        if code == pytest.ExitCode.OK and tmp is not None and target is not None:
            if tmp.stat().st_size == 0:
                raise ArchbenchError(f"No benchmark ran, so {target} was left as it was.")
            load_results(tmp)  # never replace a good file with a bad one
            write_bytes(target, tmp.read_bytes())
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
    return 0 if code == pytest.ExitCode.OK else 1
