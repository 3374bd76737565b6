"""The registry: listing by wildcard, building by name, refusing duplicates, helpful unknown names."""

from __future__ import annotations

import pytest
from torch import nn

import archbench
from archbench.registry import Figure, ModelSpec, register_model, unregister_model


def test_list_by_wildcard() -> None:
    assert archbench.list_models("lenet5*") == [
        "lenet5",
        "lenet5_bn",
        "lenet5_bn_torch",
        "lenet5_classic",
        "lenet5_relu",
    ]
    assert archbench.list_models("*res*") == ["residual_net", "resnet18", "resnet34", "resnet50"]
    assert archbench.list_models("vgg*") == ["vgg11", "vgg16"]
    assert archbench.list_models("nothing*") == []


def test_spec_is_a_frozen_dataclass() -> None:
    spec = archbench.get_spec("mnist_net")
    assert (spec.input_shape, spec.num_classes, spec.flat_features, spec.output) == ((1, 28, 28), 10, 320, "log_probs")
    assert spec.source.startswith("seed 001")
    with pytest.raises(AttributeError):
        spec.flat_features = 1  # type: ignore[misc]


def test_figures_are_checked_and_refer_to_a_form() -> None:
    spec = archbench.get_spec("vgg16")
    torchvision_macs = [f for f in spec.figures if f.quantity == "macs" and f.options.get("variant") == "torchvision"]
    assert torchvision_macs and all(spec.figure_input(f) == (3, 224, 224) for f in torchvision_macs)
    assert Figure("params", 100, "x", rel_tol=0.1).matches(109) and not Figure("params", 100, "x").matches(101)
    with pytest.raises(archbench.ArchbenchError, match="'params' or 'macs'"):
        Figure("flops", 1, "x")


def _tiny_spec(name: str) -> ModelSpec:
    return ModelSpec(name, (1, 4, 4), 10, "test", "a tiny net", 16)


def test_duplicate_names_are_refused() -> None:
    with pytest.raises(archbench.ArchbenchError, match="already registered"):
        register_model(_tiny_spec("lenet5"))(lambda: nn.Identity())


def test_register_build_and_unregister() -> None:
    @register_model(_tiny_spec("tiny_test_net"))
    def tiny() -> nn.Module:
        return nn.Sequential(nn.Flatten(), nn.Linear(16, 10))

    try:
        assert "tiny_test_net" in archbench.list_models()
        assert isinstance(archbench.get_model("tiny_test_net"), nn.Sequential)
    finally:
        unregister_model("tiny_test_net")
    assert "tiny_test_net" not in archbench.list_models()


@pytest.mark.parametrize(
    ("typo", "suggestion"), [("lenet", "lenet5"), ("resnet-18", "resnet18"), ("inception", "inception_net")]
)
def test_unknown_name_lists_closest(typo: str, suggestion: str) -> None:
    with pytest.raises(archbench.UnknownModelError) as info:
        archbench.get_model(typo)
    message = str(info.value)
    assert f"Unknown model {typo!r}" in message and suggestion in message
    with pytest.raises(KeyError):  # also a KeyError, as a lookup failure
        archbench.get_spec(typo)


def test_spec_rejects_unknown_output_kind() -> None:
    with pytest.raises(archbench.ArchbenchError, match="logits"):
        ModelSpec("x", (1, 4, 4), 10, "test", "x", 16, output="probabilities")
