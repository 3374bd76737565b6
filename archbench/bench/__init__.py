"""Benchmarks: a pytest-benchmark suite (``pytest --benchmark-only`` or ``archbench bench``), its results, compare."""

from archbench.bench.machine import SyncTimer, usable_cores
from archbench.bench.results import EXTRA_INFO_KEYS, BenchResults, BenchRow, load_results

__all__ = ["EXTRA_INFO_KEYS", "BenchResults", "BenchRow", "SyncTimer", "load_results", "usable_cores"]
