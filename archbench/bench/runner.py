"""``archbench bench``: run the benchmark suite through pytest-benchmark and write its JSON.

The suite is :mod:`archbench.bench.suite`, inside the package, so an installed ``archbench`` finds it without
the source checkout; the options travel as ``--archbench-*`` pytest options of :mod:`archbench.bench.plugin`,
which is exactly what ``pytest benchmarks/ --benchmark-only`` uses.

Example:
    >>> run_benchmarks(device="cpu", models="lenet5", batches=(8,), json_path="out.json")  # doctest: +SKIP
    0
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from archbench.bench.cases import SuiteOptions, devices_for, enumerate_cases
from archbench.bench.timing import resolve_device, usable_cores
from archbench.errors import ArchbenchError


def suite_path() -> Path:
    """The file of :mod:`archbench.bench.suite` (what pytest collects)."""
    spec = importlib.util.find_spec("archbench.bench.suite")
    if spec is None or spec.origin is None:  # pragma: no cover - a broken installation
        raise ArchbenchError("The benchmark suite archbench.bench.suite is missing; reinstall archbench.")
    return Path(spec.origin)


def pytest_arguments(
    *,
    device: str = "auto",
    models: str = "*",
    batches: Sequence[int] | None = None,
    sweep: bool = False,
    dtype: str = "float32",
    channels_last: bool = False,
    compile: bool = False,
    threads: int | None = None,
    max_time: float = 1.0,
    min_rounds: int = 5,
    json_path: str | Path | None = None,
) -> list[str]:
    """The ``pytest`` command line that runs the suite with these options.

    Example:
        >>> pytest_arguments(device="cpu", models="lenet5")[-4:]
        ['--archbench-device=cpu', '--archbench-models=lenet5', '--archbench-max-time=1.0', '--archbench-min-rounds=5']
    """
    args = [str(suite_path()), "-p", "archbench.bench.plugin", "-p", "no:cacheprovider", "--benchmark-only"]
    if json_path is not None:
        args.append(f"--benchmark-json={json_path}")
    args += [f"--archbench-device={device}", f"--archbench-models={models}"]
    args += [f"--archbench-max-time={max_time}", f"--archbench-min-rounds={min_rounds}"]
    if batches:
        args.append("--archbench-batch=" + ",".join(str(b) for b in batches))
    if sweep:
        args.append("--archbench-sweep")
    if dtype != "float32":
        args.append(f"--archbench-dtype={dtype}")
    if channels_last:
        args.append("--archbench-channels-last")
    if compile:
        args.append("--archbench-compile")
    if threads is not None:
        args.append(f"--archbench-threads={threads}")
    return args


def run_benchmarks(
    *,
    device: str = "auto",
    models: str = "*",
    batches: Sequence[int] | None = None,
    sweep: bool = False,
    dtype: str = "float32",
    channels_last: bool = False,
    compile: bool = False,
    threads: int | None = None,
    max_time: float = 1.0,
    min_rounds: int = 5,
    json_path: str | Path | None = None,
    extra_args: Sequence[str] = (),
) -> int:
    """Validate the options, run the suite in this process with ``pytest.main`` and return its exit status.

    Args:
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        models: wildcard over registered networks.
        batches: batch sizes; None for the quick default (or the sweep).
        sweep: the wider batch sweep.
        dtype: autocast dtype.
        channels_last: channels-last models and inputs.
        compile: ``torch.compile`` the networks.
        threads: torch intra-op threads (default every usable core).
        max_time: seconds of timed rounds per benchmark.
        min_rounds: timed rounds, at least.
        json_path: where pytest-benchmark writes its JSON (folders are created).
        extra_args: further pytest arguments (e.g. ``["-k", "forward"]``).

    Returns:
        0 if every benchmark ran (or was skipped with a reason), 1 if one failed.

    Raises:
        ArchbenchError: for CUDA on a machine without it, a pattern that matches no network, or bad sizes.
    """
    if device == "cuda":
        resolve_device("cuda")
    options = SuiteOptions(
        devices=devices_for(device),
        models=models,
        batches=tuple(batches) if batches else None,
        sweep=sweep,
        dtype=dtype,
        channels_last=channels_last,
        compile=compile,
        threads=usable_cores() if threads is None else threads,
        max_time=max_time,
        min_rounds=min_rounds,
    )
    enumerate_cases(options)  # raises for a pattern that matches nothing
    if json_path is not None:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)

    import pytest

    args = pytest_arguments(
        device=device, models=models, batches=batches, sweep=sweep, dtype=dtype, channels_last=channels_last,
        compile=compile, threads=threads, max_time=max_time, min_rounds=min_rounds, json_path=json_path,
    )
    code = pytest.main([*args, *extra_args])
    if code == pytest.ExitCode.NO_TESTS_COLLECTED:
        raise ArchbenchError(f"No benchmark was selected (models {models!r}, extra arguments {list(extra_args)}).")
    if code == pytest.ExitCode.USAGE_ERROR:
        raise ArchbenchError("pytest rejected the benchmark options; see its message above.")
    if code == pytest.ExitCode.INTERRUPTED:
        raise KeyboardInterrupt
    return 0 if code == pytest.ExitCode.OK else 1
