"""Forward and training-step timings of every registered network (and the two comparisons).

The benchmark itself lives in :mod:`archbench.bench.suite`, inside the package, so that the installed
``archbench bench`` command runs exactly these; this module collects it for ``pytest benchmarks/``.

Example:
    $ pytest benchmarks/bench_forward_backward.py --benchmark-only --archbench-models 'lenet*'
"""

from archbench.bench.suite import *  # noqa: F403  (pytest_generate_tests, test_network)
