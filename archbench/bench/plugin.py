"""The pytest plugin of the benchmarks: ``--archbench-*`` options, the environment fingerprint, OOM rows.

``benchmarks/conftest.py`` re-exports these hooks (``from archbench.bench.plugin import *``), and
``archbench bench`` loads the module with ``-p archbench.bench.plugin``, so both routes share one definition.

Options (all optional)::

    --archbench-device all|auto|cpu|cuda   devices (default all: cpu, and cuda skipped with a reason if absent)
    --archbench-models PATTERN             registered networks by wildcard (default *)
    --archbench-batch 1,16,64              batch sizes (default: the quick set; see archbench.bench.cases)
    --archbench-sweep                      the wider batch sweep
    --archbench-dtype float32|bfloat16|float16   autocast dtype (default float32, no autocast)
    --archbench-channels-last              channels-last models and inputs
    --archbench-compile                    models through torch.compile
    --archbench-threads N                  torch intra-op threads (default: every usable core)
    --archbench-max-time S                 seconds of timed rounds per benchmark (default 1.0)
    --archbench-min-rounds N               timed rounds, at least (default 5)
    --archbench-warmup S                   warm-up seconds at the exact shape (default 0.25)

Example:
    $ pytest benchmarks/ --benchmark-only --archbench-models 'lenet*' --benchmark-json out.json
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from archbench.bench.cases import DEVICE_SELECTIONS, DTYPES, SuiteOptions, devices_for, parse_batches
from archbench.bench.env import LoadMeter, fingerprint
from archbench.bench.results import FINGERPRINT_KEY, OOM_KEY
from archbench.bench.timing import usable_cores
from archbench.errors import ArchbenchError

__all__ = [
    "archbench_options",
    "pytest_addoption",
    "pytest_benchmark_update_json",
    "pytest_benchmark_update_machine_info",
    "pytest_configure",
]

_OPTIONS = pytest.StashKey[SuiteOptions]()
_OOM_ROWS = pytest.StashKey[list[dict[str, Any]]]()
_LOAD = pytest.StashKey[LoadMeter]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the ``--archbench-*`` options."""
    group = parser.getgroup("archbench", "archbench network benchmarks")
    group.addoption("--archbench-device", choices=DEVICE_SELECTIONS, default="all",
                    help="all (cpu, and cuda when present), auto (cuda if present, else cpu), cpu or cuda")
    group.addoption("--archbench-models", default="*", metavar="PATTERN", help="networks by wildcard (default *)")
    group.addoption("--archbench-batch", default=None, metavar="N,N,...", help="batch sizes (default: quick set)")
    group.addoption("--archbench-sweep", action="store_true", help="the wider batch-size sweep")
    group.addoption("--archbench-dtype", choices=tuple(DTYPES), default="float32", help="autocast dtype")
    group.addoption("--archbench-channels-last", action="store_true", help="channels-last memory format")
    group.addoption("--archbench-compile", action="store_true", help="torch.compile the networks")
    group.addoption("--archbench-threads", type=int, default=None, metavar="N",
                    help="torch intra-op threads (default: every usable core)")
    group.addoption("--archbench-max-time", type=float, default=1.0, metavar="S",
                    help="seconds of timed rounds per benchmark (default 1.0)")
    group.addoption("--archbench-min-rounds", type=int, default=5, metavar="N", help="timed rounds, at least")
    group.addoption("--archbench-warmup", type=float, default=0.25, metavar="S", help="warm-up seconds, at least")


def options_from_config(config: pytest.Config) -> SuiteOptions:
    """The session's :class:`~archbench.bench.cases.SuiteOptions` (parsed once, at configure time)."""
    try:
        return config.stash[_OPTIONS]
    except KeyError:
        raise pytest.UsageError(
            "archbench's benchmark options are not registered; run through `archbench bench`, "
            "`pytest benchmarks/` or `pytest -p archbench.bench.plugin`."
        ) from None


def pytest_configure(config: pytest.Config) -> None:
    """Parse and validate the options; turn on cuDNN autotuning where CUDA is present (recorded)."""
    batch = config.getoption("archbench_batch")
    threads = config.getoption("archbench_threads")
    try:
        options = SuiteOptions(
            devices=devices_for(config.getoption("archbench_device")),
            models=config.getoption("archbench_models"),
            batches=parse_batches(batch) if batch else None,
            sweep=config.getoption("archbench_sweep"),
            dtype=config.getoption("archbench_dtype"),
            channels_last=config.getoption("archbench_channels_last"),
            compile=config.getoption("archbench_compile"),
            threads=usable_cores() if threads is None else threads,
            max_time=config.getoption("archbench_max_time"),
            min_rounds=config.getoption("archbench_min_rounds"),
            warmup_seconds=config.getoption("archbench_warmup"),
        )
    except ArchbenchError as err:
        raise pytest.UsageError(str(err)) from None
    config.stash[_OPTIONS] = options
    config.stash[_OOM_ROWS] = []
    config.stash[_LOAD] = LoadMeter()
    if torch.cuda.is_available():
        # Fixed shapes after a warm-up at the exact shape: let cuDNN pick its fastest algorithms.
        torch.backends.cudnn.benchmark = True


def record_oom(config: pytest.Config, row: dict[str, Any]) -> None:
    """Keep an out-of-memory row for the JSON's ``archbench_oom`` list."""
    config.stash[_OOM_ROWS].append(row)


@pytest.fixture(scope="session")
def archbench_options(pytestconfig: pytest.Config) -> SuiteOptions:
    """The session's benchmark options."""
    return options_from_config(pytestconfig)


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict[str, Any]) -> None:
    """Add the environment fingerprint under ``machine_info["archbench"]`` (with the machine's load during the run)."""
    options = config.stash.get(_OPTIONS, None)
    if options is None:
        machine_info[FINGERPRINT_KEY] = fingerprint()
        return
    machine_info[FINGERPRINT_KEY] = fingerprint(
        threads=options.threads,
        dtype=options.dtype,
        channels_last=options.channels_last,
        compile=options.compile,
        device=config.getoption("archbench_device"),
        load=config.stash.get(_LOAD, None),
    )


def pytest_benchmark_update_json(config: pytest.Config, benchmarks: list[Any], output_json: dict[str, Any]) -> None:
    """Write the out-of-memory rows, which have no timings, to the top-level ``archbench_oom`` list."""
    output_json[OOM_KEY] = list(config.stash.get(_OOM_ROWS, []))
