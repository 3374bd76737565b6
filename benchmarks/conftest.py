"""Shared configuration of the benchmarks: archbench's pytest plugin (options, fingerprint, OOM rows).

Run them with ``pytest benchmarks/ --benchmark-only``; ``pytest --help`` lists the ``--archbench-*`` options.
The hooks live in :mod:`archbench.bench.plugin` so that ``archbench bench`` (an installed command) uses the
same ones.
"""

from archbench.bench.plugin import *  # noqa: F403  (pytest hooks and fixtures)
