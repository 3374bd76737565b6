"""Shared test settings: hypothesis profiles and a fixed, small torch thread count."""

from __future__ import annotations

import os

import pytest
import torch
from hypothesis import HealthCheck, settings

# Torch's first call of an op is slow, so no per-example deadline. CI runs the default profile;
# `HYPOTHESIS_PROFILE=thorough pytest` draws 1,000 examples per property.
settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "thorough", deadline=None, max_examples=1000, suppress_health_check=[HealthCheck.too_slow]
)


def _environment_choice(variable: str, default: str, allowed: tuple[str, ...]) -> str:
    value = os.environ.get(variable, default)
    if value not in allowed:
        raise pytest.UsageError(f"{variable}={value!r} is not one of {', '.join(allowed)}; unset it or pick one.")
    return value


def _environment_threads(variable: str, default: int) -> int:
    value = os.environ.get(variable, str(default))
    if not value.strip().isdigit() or not 1 <= int(value) <= 4096:
        raise pytest.UsageError(f"{variable}={value!r} must be a whole number of threads from 1 to 4096, e.g. 2.")
    return int(value)


def pytest_configure(config: pytest.Config) -> None:
    """Check the environment variables the tests read (a usage error names the allowed values), then apply them."""
    settings.load_profile(_environment_choice("HYPOTHESIS_PROFILE", "default", ("default", "thorough")))
    torch.set_num_threads(_environment_threads("ARCHBENCH_TEST_THREADS", 2))
