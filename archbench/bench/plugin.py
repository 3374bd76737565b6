"""archbench's pytest plugin for the benchmarks: options, collection rules, fingerprint and measured peak.

``pyproject.toml`` loads it for every ``pytest`` run (``-p archbench.bench.plugin``: the ``--archbench-*`` options
must exist before collection), and so does ``archbench bench``. Plain ``pytest`` leaves ``benchmarks/bench_*.py``
out unless benchmarks are asked for; ``--benchmark-only`` deselects the other tests. ``machine_info`` gets the
environment fingerprint (``"archbench"``, beside pytest-benchmark's own ``cpu``) and the peaks (``"archbench_peak"``),
measured before the first benchmark and again after the last; after the run, a table of images/s, GFLOP/s and % of
measured peak.

Example:
    $ pytest --benchmark-only --archbench-models 'lenet*' --benchmark-json out.json
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import torch

from archbench.bench.cases import SuiteOptions
from archbench.bench.machine import PROBE, cpu_info, machine_probe, measure_peak, usable_cores
from archbench.bench.results import ABOVE_PEAK, FINGERPRINT_KEY, PEAK_KEY
from archbench.errors import ArchbenchError

_OPTIONS = pytest.StashKey[SuiteOptions]()
_PEAKS = pytest.StashKey[dict]()
_ROWS = pytest.StashKey[list]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """One ``--archbench-*`` option per :class:`~archbench.bench.cases.SuiteOptions` field."""
    SuiteOptions.add_pytest_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    """Validate the options once (a usage error, before anything runs)."""
    try:
        config.stash[_OPTIONS] = SuiteOptions.from_pytest(config)
    except ArchbenchError as err:
        raise pytest.UsageError(str(err)) from None
    config.stash[_PEAKS], config.stash[_ROWS] = {}, []
    if torch.cuda.is_available():
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest algorithms (recorded)


def _benchmarks_asked(config: pytest.Config) -> bool:
    if config.getoption("benchmark_only", False) or config.getoption("benchmark_enable", False):
        return True
    if getattr(config, "args_source", None) != pytest.Config.ArgsSource.ARGS:  # testpaths: plain `pytest`
        return False
    return any("benchmarks" in Path(str(arg).split("::")[0]).resolve().parts for arg in config.args)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Leave ``bench_*.py`` out of plain ``pytest``."""
    if collection_path.name.startswith("bench_") and collection_path.suffix == ".py" and not _benchmarks_asked(config):
        return True
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under ``--benchmark-only``, deselect the tests that do not use the ``benchmark`` fixture."""
    if config.getoption("benchmark_only", False):
        keep = [i for i in items if "benchmark" in getattr(i, "fixturenames", ())]
        if len(keep) < len(items):
            config.hook.pytest_deselected(items=[i for i in items if i not in keep])
            items[:] = keep


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    """Run a benchmark at ``--archbench-threads`` threads; put the mean of the machine's speed just before and
    after it (:func:`~archbench.bench.machine.machine_probe`) in its ``extra_info``, for the compare."""
    fixture = getattr(item, "funcargs", {}).get("benchmark")
    if fixture is None:
        return (yield)
    params = getattr(getattr(item, "callspec", None), "params", {})
    device = params["case"].device if "case" in params else params.get("device", "cpu")
    previous = torch.get_num_threads()
    torch.set_num_threads(options_of(item.config).threads)
    probe = not fixture.disabled  # --benchmark-disable: a smoke run, no timing to put beside the probes
    try:
        before = machine_probe(device) if probe else 0.0
        result = yield
        if probe:
            fixture.extra_info[PROBE] = round((before + machine_probe(device)) / 2, 1)
        return result
    finally:
        torch.set_num_threads(previous)


def options_of(config: pytest.Config) -> SuiteOptions:
    """The session's :class:`~archbench.bench.cases.SuiteOptions` (validated at configure time)."""
    return config.stash[_OPTIONS]


def peak_for(config: pytest.Config, device: str, dtype: str, threads: int) -> dict[str, Any]:
    """The device's measured peak at ``dtype`` and ``threads`` (on CUDA bfloat16 too), measured before the first
    benchmark that needs it (and again after the run, :func:`pytest_sessionfinish`)."""
    peaks = config.stash[_PEAKS]
    for kind in dict.fromkeys([dtype, *(["bfloat16"] if device == "cuda" else [])]):
        if (device, kind, threads) not in peaks:
            peaks[(device, kind, threads)] = measure_peak(device, kind, threads)
    return peaks[(device, dtype, threads)]


def record_row(config: pytest.Config, name: str, info: dict[str, Any]) -> None:
    """Keep a network row for the summary table printed after the run."""
    config.stash[_ROWS].append((name, info))


@pytest.hookimpl(wrapper=True, tryfirst=True)  # before pytest-benchmark's own wrapper writes the JSON
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> Any:
    """Measure each peak again after the run (unless interrupted), keep the better reading and put every row's %
    of peak in its ``extra_info``: a slow spell during the first measurement alone put networks at 152% of it."""
    peaks, rows = session.config.stash.get(_PEAKS, {}), session.config.stash.get(_ROWS, [])
    if rows and exitstatus != pytest.ExitCode.INTERRUPTED:
        for key, first in list(peaks.items()):
            again = measure_peak(*key)
            peaks[key] = {**max(first, again, key=lambda p: p["gflops_per_s"]),
                          "readings_gflops_per_s": [first["gflops_per_s"], again["gflops_per_s"]]}  # fmt: skip
    for _, info in rows:
        peak = peaks[(info["device"], info["dtype"], info["threads"])]["gflops_per_s"]
        info["pct_of_peak"] = round(100 * info["gflops_per_s"] / peak, 1)
    return (yield)


def fingerprint(options: SuiteOptions) -> dict[str, Any]:
    """Versions, CPU, threads, GPU and the switches that change which kernels run, as a JSON-ready dict."""
    import torchvision

    cuda = torch.cuda.is_available()
    return {
        "torch": torch.__version__, "torchvision": torchvision.__version__, "cpu_model": cpu_info().get("brand_raw"),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(), "cpu_cores_usable": usable_cores(),
        "threads": options.threads, "device": options.device,
        "gpu": torch.cuda.get_device_name() if cuda else None, "cuda_version": torch.version.cuda,
        "cudnn_version": torch.backends.cudnn.version() if cuda else None,
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark), "tf32_matmul": bool(torch.backends.cuda.matmul.allow_tf32),
        "dtype": options.dtype, "channels_last": options.channels_last, "compile": options.compile,
        "load_average": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    }  # fmt: skip


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict[str, Any]) -> None:
    """Add the fingerprint and the peaks measured during the run."""
    machine_info[FINGERPRINT_KEY] = fingerprint(options_of(config))
    machine_info[PEAK_KEY] = list(config.stash[_PEAKS].values())


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """images/s, GFLOP/s and % of measured peak of each network benchmark (pytest-benchmark's table has times)."""
    rows = config.stash.get(_ROWS, [])
    if not rows:
        return
    from tabulate import tabulate

    low = "≥ "  # a count with uncounted operators is a lower bound, and says so
    table = [(name, f"{i['images_per_s']:,.1f}", f"{low * bool(i['uncounted'])}{i['gflops_per_s']:.2f}",
              f"{low * bool(i['uncounted'])}{i['pct_of_peak']:.1f}%") for name, i in rows]  # fmt: skip
    terminalreporter.write_sep("-", "archbench: throughput against the measured peak")
    terminalreporter.write_line(tabulate(table, headers=("benchmark", "images/s", "GFLOP/s", "% of peak"), disable_numparse=True))
    for name, info in rows:
        if info["uncounted"]:
            terminalreporter.write_line(f"{name}: FLOPs are a lower bound, not counted: {', '.join(sorted(info['uncounted']))}")
        if info["pct_of_peak"] > 100:
            terminalreporter.write_line(f"{name}: {info['pct_of_peak']:.1f}% of peak: {ABOVE_PEAK}")
    for peak in config.stash[_PEAKS].values():
        readings = peak.get("readings_gflops_per_s")
        taken = f"; the better of {readings[0]:.1f} before and {readings[1]:.1f} after the run" if readings else ""
        terminalreporter.write_line(
            f"peak {peak['device']} {peak['dtype']} {peak['threads']} threads: {peak['gflops_per_s']:.1f} GFLOP/s measured "
            f"(matmul {peak['matmul_gflops_per_s']:.1f}, conv {peak['conv_gflops_per_s']:.1f}{taken}); theoretical "
            f"{peak['theoretical_gflops_per_s'] or 'unknown'} ({peak['theoretical_basis']})"
        )
