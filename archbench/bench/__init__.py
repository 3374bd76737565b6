"""Benchmark support: synchronised timers, device selection, the environment fingerprint, results files.

The network benchmarks themselves are a pytest-benchmark suite (:mod:`archbench.bench.suite`), run by
``pytest benchmarks/ --benchmark-only`` or ``archbench bench``; :func:`load_results` reads the JSON they write.

Example:
    >>> from archbench.bench import SyncTimer, resolve_device
    >>> timer = SyncTimer(resolve_device("cpu"))
    >>> timer() <= timer()
    True
"""

from archbench.bench.env import fingerprint
from archbench.bench.results import EXTRA_INFO_KEYS, BenchResults, BenchRow, load_results
from archbench.bench.timing import (
    Backend,
    SyncTimer,
    choose_rounds,
    make_backend,
    measure_peak_memory,
    resolve_device,
    set_threads,
    warm_up,
)

__all__ = [
    "EXTRA_INFO_KEYS",
    "Backend",
    "BenchResults",
    "BenchRow",
    "SyncTimer",
    "choose_rounds",
    "fingerprint",
    "load_results",
    "make_backend",
    "measure_peak_memory",
    "resolve_device",
    "set_threads",
    "warm_up",
]
