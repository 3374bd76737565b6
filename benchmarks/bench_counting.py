"""How long counting takes at 1×3×224×224, by each method side by side: ResNet-18 and ViT-B/16.

ResNet-18 twice: archbench's in its torchvision configuration (its blocks declare how they compose, so the
analytic counter runs nothing) and torchvision's own (no declaration: one meta-device pass learns the wiring).
Both have 1,814,073,344 conv + linear MACs, the figure torchvision publishes; every method must give that
total (checked after timing).

Example:
    $ pytest benchmarks/bench_counting.py --benchmark-only
"""

from __future__ import annotations

import pytest
import torch

import archbench
from archbench.analysis.counts import METHODS, count_macs

SHAPE = (1, 3, 224, 224)


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return archbench.get_model("resnet18", in_channels=3, num_classes=1000, variant="torchvision")


@pytest.mark.parametrize("method", METHODS)
def test_count_macs_resnet18(benchmark, method: str, model: torch.nn.Module) -> None:
    benchmark.group = "count-macs-resnet18-224"
    result = benchmark(count_macs, model, SHAPE, method)
    benchmark.extra_info.update(method=method, model="resnet18 (torchvision config)", shape=list(SHAPE),
                                threads=torch.get_num_threads(), macs=result.total)  # fmt: skip
    assert result.total == 1_814_073_344


@pytest.mark.parametrize("method", METHODS)
def test_count_macs_torchvision_resnet18(benchmark, method: str) -> None:
    import torchvision

    benchmark.group = "count-macs-torchvision-resnet18-224"
    result = benchmark(count_macs, torchvision.models.resnet18(), SHAPE, method)
    benchmark.extra_info.update(method=method, model="torchvision resnet18", shape=list(SHAPE),
                                threads=torch.get_num_threads(), macs=result.total)  # fmt: skip
    assert result.total == 1_814_073_344


@pytest.fixture(scope="module")
def vit() -> torch.nn.Module:
    import torchvision

    return torchvision.models.vit_b_16().eval()


@pytest.mark.parametrize("method", METHODS)
def test_count_macs_vit_b_16(benchmark, method: str, vit: torch.nn.Module) -> None:
    """Attention: analytic and torch must equal torchvision's published 17.564 GMACs; fvcore must say what it missed."""
    import torchvision

    benchmark.group = "count-macs-vit_b_16-224"
    result = benchmark(count_macs, vit, SHAPE, method)
    benchmark.extra_info.update(method=method, model="torchvision vit_b_16", shape=list(SHAPE),
                                threads=torch.get_num_threads(), macs=result.total, complete=result.complete)  # fmt: skip
    published = torchvision.models.ViT_B_16_Weights.IMAGENET1K_V1.meta["_ops"]
    if method == "fvcore":  # fvcore has no formula for scaled_dot_product_attention: declared, not silent
        assert not result.complete and any("scaled_dot_product" in op for op in result.uncounted)
    else:
        assert result.complete and round(result.total / 1e9, 3) == published
