"""Shared test settings: hypothesis profiles and a fixed, small torch thread count."""

from __future__ import annotations

import os

import torch
from hypothesis import HealthCheck, settings

# Torch's first call of an op is slow, so no per-example deadline. CI runs the default profile;
# `HYPOTHESIS_PROFILE=thorough pytest` draws 1,000 examples per property.
settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "thorough", deadline=None, max_examples=1000, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

torch.set_num_threads(int(os.environ.get("ARCHBENCH_TEST_THREADS", "2")))
