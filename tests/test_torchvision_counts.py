"""Every torchvision classification model: analytic MACs and parameters equal torchvision's published metadata.

The expected numbers are torchvision's (``weights.meta["_ops"]`` in GMACs, ``meta["num_params"]``), read
offline; the models are built on the meta device (shapes only, no memory, no weights).
"""

from __future__ import annotations

import pytest
import torch

torchvision = pytest.importorskip("torchvision")

from archbench.analysis import count_macs, count_params  # noqa: E402


def _weights(name: str) -> object:
    return list(torchvision.models.get_model_weights(name))[0]


#: Models over 2 GMACs take a second or more each to build and count, even on the meta device: CI runs them (`-m slow`).
MODELS = [
    pytest.param(name, marks=pytest.mark.slow) if _weights(name).meta["_ops"] > 2 else name
    for name in torchvision.models.list_models(module=torchvision.models)
]
#: Constructor options that give the published variant (GoogLeNet's metadata excludes its auxiliary heads).
OPTIONS = {"googlenet": {"aux_logits": False, "init_weights": False}}


@pytest.fixture
def meta_friendly_regnet(monkeypatch: pytest.MonkeyPatch) -> None:
    """RegNet computes its stage widths with tensors and reads them back: do that part on the CPU."""
    from torchvision.models.regnet import BlockParams

    original = BlockParams.from_init_params.__func__

    def on_cpu(cls: type, *args: object, **kwargs: object) -> object:
        with torch.device("cpu"):
            return original(cls, *args, **kwargs)

    monkeypatch.setattr(BlockParams, "from_init_params", classmethod(on_cpu))


def _crop_size(weights: object) -> int:
    size = weights.transforms.keywords.get("crop_size", 224)
    return size[0] if isinstance(size, (tuple, list)) else size


@pytest.mark.parametrize("name", MODELS)
def test_analytic_count_matches_torchvision_metadata(name: str, meta_friendly_regnet: None) -> None:
    weights = _weights(name)
    size = _crop_size(weights)
    options = dict(OPTIONS.get(name, {}))
    if name.startswith("vit_"):
        options["image_size"] = size
    with torch.device("meta"):
        model = torchvision.models.get_model(name, weights=None, **options)
    result = count_macs(model, (1, 3, size, size))
    assert result.complete, result.uncounted
    assert round(result.total / 1e9, 3) == pytest.approx(weights.meta["_ops"], abs=5e-4)
    assert count_params(model) == weights.meta["num_params"]
