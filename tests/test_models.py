"""Every registered network builds and runs; options are checked. Its facts are tested in test_verify.py.

Big networks are built once per session and on the ``meta`` device wherever only shapes and counts matter.
"""

from __future__ import annotations

import pytest
import torch

import archbench
from archbench.analysis import trace_shapes
from archbench.layers import Bottleneck, DenseBlock, Inception
from archbench.verify import _is_heavy

MODELS = archbench.list_models()


@pytest.mark.parametrize("name", [n for n in MODELS if not _is_heavy(n)])
def test_forward_gives_batch_by_classes(name: str) -> None:
    """The big networks run for real in test_verify.py's ``outputs`` and ``torchvision`` checks instead."""
    spec = archbench.get_spec(name)
    model = archbench.get_model(name).eval()
    for sample in (spec.input_shape, *spec.other_input_shapes):
        with torch.no_grad():
            out = model(torch.randn(2, *sample))
        assert out.shape == (2, spec.num_classes)
        assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", MODELS)
def test_trace_visits_every_parameter_once(name: str) -> None:
    with torch.device("meta"):
        model = archbench.get_model(name)
    rows = trace_shapes(model, (1, *archbench.get_spec(name).input_shape))
    seen = {r.name: r.own_params for r in rows}
    assert sum(seen.values()) == sum(p.numel() for p in model.parameters())


def test_model_options_are_passed_and_checked() -> None:
    assert archbench.get_model("lenet5", num_classes=7)(torch.zeros(1, 1, 28, 28)).shape == (1, 7)
    with pytest.raises(archbench.ArchbenchError, match="takes no option 'classes'.*num_classes"):
        archbench.get_model("lenet5", classes=7)
    with pytest.raises(archbench.ArchbenchError, match="GoogLeNet variant must be 'd2l' or 'torchvision'"):
        archbench.get_model("googlenet", variant="keras")


@pytest.mark.parametrize("name", ["resnet34", "resnet50", "densenet121"])
def test_torchvision_form_is_the_default_of_the_imagenet_networks(name: str) -> None:
    spec = archbench.get_spec(name)
    assert (spec.input_shape, spec.num_classes, spec.torchvision) == ((3, 224, 224), 1000, name)


def test_blocks_keep_or_change_shapes_as_documented() -> None:
    x = torch.zeros(1, 64, 8, 8)
    assert Bottleneck(64, 16)(x).shape == (1, 64, 8, 8)  # 4 × 16 = 64: identity shortcut
    assert Bottleneck(64, 32, use_1x1conv=True, stride=2)(x).shape == (1, 128, 4, 4)
    with pytest.raises(ValueError, match="use_1x1conv=True"):
        Bottleneck(64, 32)
    assert Inception(64, 8, (4, 8), (4, 8), 8)(x).shape == (1, 8 + 8 + 8 + 8, 8, 8)
    assert DenseBlock(3, 64, 5, bottleneck=20)(x).shape == (1, 64 + 3 * 5, 8, 8)
