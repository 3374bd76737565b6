"""A real slow-down of the network benchmarks, to see what ``archbench compare`` can see on this machine.

Loaded as a pytest plugin, it makes every timed step of the networks that ``SLOW_MODELS`` matches (fnmatch
patterns, comma-separated; default ``*``) take 1.5 times as long: after each call it spins for half the time
the call took, so the machine's own noise stays in. It lives outside the test paths, so no ``pytest`` run
imports it unasked.

Example:
    $ pytest --benchmark-only --benchmark-json=a.json
    $ PYTHONPATH=tools SLOW_MODELS='*' pytest -p slowdown --benchmark-only --benchmark-json=d.json
    $ archbench compare a.json d.json --fail-on 5%
"""

from __future__ import annotations

import fnmatch
import os
import time
from collections.abc import Callable

import torch

import archbench.bench.suite as suite
from archbench.bench.cases import BenchCase

PATTERNS = os.environ.get("SLOW_MODELS", "*").split(",")
_make_step = suite.make_step


def slowed(case: BenchCase) -> Callable[[], torch.Tensor]:
    """The suite's step of ``case``, 1.5 times as long if its model matches ``SLOW_MODELS``."""
    step = _make_step(case)
    if not any(fnmatch.fnmatchcase(case.model, pattern) for pattern in PATTERNS):
        return step

    def run() -> torch.Tensor:
        start = time.perf_counter()
        out = step()
        now = time.perf_counter()
        end = now + 0.5 * (now - start)
        while time.perf_counter() < end:
            pass
        return out

    return run


suite.make_step = slowed  # test_network looks make_step up in its module at every call
