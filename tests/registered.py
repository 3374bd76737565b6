"""The registered networks as test parameters: the big ones marked ``slow`` (CI runs them with ``pytest -m slow``).

Tests that parametrise over the registry use :func:`registered`, so a new network is tested for free and a
big one does not blow the time budget of plain ``pytest``.
"""

from __future__ import annotations

import functools

import pytest
import torch

import archbench

#: A network above either bound builds or runs for seconds on two cores: its registry-wide tests are ``slow``.
PARAM_LIMIT = 5_000_000
PIXEL_LIMIT = 50_000


@functools.lru_cache(maxsize=None)
def meta_params(name: str) -> int:
    """Parameters of a registered network, counted on the meta device (nothing allocated)."""
    with torch.device("meta"):
        return sum(p.numel() for p in archbench.get_model(name).parameters())


def is_big(name: str, limit: int = PARAM_LIMIT, pixels: int = PIXEL_LIMIT) -> bool:
    """Whether a network has over ``limit`` parameters or over ``pixels`` input values per sample."""
    spec = archbench.get_spec(name)
    per_sample = spec.bench_input_shape or spec.input_shape
    return meta_params(name) > limit or torch.Size(per_sample).numel() > pixels


def registered(limit: int = PARAM_LIMIT, pixels: int = PIXEL_LIMIT) -> list:
    """Every registered network as a pytest parameter; the big ones (see :func:`is_big`) marked ``slow``."""
    return [
        pytest.param(name, marks=pytest.mark.slow) if is_big(name, limit, pixels) else name
        for name in archbench.list_models()
    ]
