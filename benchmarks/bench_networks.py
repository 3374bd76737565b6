"""Forward and training-step timings of every registered network and the two side-by-side pairs.

The benchmark lives in :mod:`archbench.bench.suite` so that the installed ``archbench bench`` runs exactly it.

Example:
    $ pytest --benchmark-only --archbench-models 'lenet*'
"""

from archbench.bench.suite import *  # noqa: F403  (pytest_generate_tests, test_network)
