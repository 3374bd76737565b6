"""Benchmarks: a pytest-benchmark suite (``pytest --benchmark-only`` or ``archbench bench``), its results, compare.

Example:
    >>> from archbench.bench import SyncTimer
    >>> SyncTimer("cpu")() > 0
    True
"""

from archbench.bench.results import EXTRA_INFO_KEYS, BenchResults, BenchRow, load_results
from archbench.bench.timing import SyncTimer, usable_cores

__all__ = ["EXTRA_INFO_KEYS", "BenchResults", "BenchRow", "SyncTimer", "load_results", "usable_cores"]
