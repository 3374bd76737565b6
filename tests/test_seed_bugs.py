"""The seeds' bugs, rebuilt here, must be caught by the checks (and our networks must pass them)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import archbench
from registered import registered
from archbench.analysis import check_input, check_outputs, output_kind


def seed000_lenet_with_typo() -> nn.Sequential:
    """Seed 000's LeNet as printed: its first linear layer claims 1655 inputs where 16×5×5 = 400 arrive."""
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.Sigmoid(), nn.AvgPool2d(2, 2),
        nn.Conv2d(6, 16, 5), nn.Sigmoid(), nn.AvgPool2d(2, 2),
        nn.Flatten(),
        nn.Linear(1655, 120), nn.Sigmoid(), nn.Linear(120, 84), nn.Sigmoid(), nn.Linear(84, 10),
    )  # fmt: skip


def test_1655_typo_is_caught_and_named() -> None:
    result = check_input(seed000_lenet_with_typo(), (1, 1, 28, 28))
    assert not result.ok
    assert (result.layer, result.layer_type, result.expected, result.actual) == ("7", "Linear", 1655, 400)
    assert "expects 1655 input features but receives 400" in result.message
    assert "in_features=400" in result.message
    with pytest.raises(archbench.ShapeError, match="1655"):
        archbench.trace_shapes(seed000_lenet_with_typo(), (1, 1, 28, 28))


class Seed003LeNet(nn.Module):
    """Seed 003's LeNet: a stale ``view(-1, 16*5*5)`` comment aside, it ends in softmax."""

    def __init__(self, flat: int = 16 * 4 * 4) -> None:
        super().__init__()
        self.body = archbench.get_model("lenet5_relu")
        self.softmax = nn.Softmax(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.softmax(self.body(x))


def test_softmax_before_cross_entropy_is_flagged() -> None:
    result = check_outputs(Seed003LeNet(), nn.CrossEntropyLoss(), (4, 1, 28, 28))
    assert not result.ok and result.kind == "probabilities"
    assert "remove the final softmax" in result.message


class ViewReshape(nn.Module):
    """The stale ``x.view(-1, 400)`` applied to 16×4×4 maps: with batch 25, 6400 values become 16 rows of 400."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 16, 5), nn.MaxPool2d(2), nn.Conv2d(16, 16, 5), nn.MaxPool2d(2))
        self.fc = nn.Linear(400, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).view(-1, 400))


def test_batch_mixing_reshape_is_caught() -> None:
    assert check_input(ViewReshape(), (1, 1, 28, 28)).ok is False  # 256 values cannot fill a row of 400
    result = check_input(ViewReshape(), (25, 1, 28, 28))
    assert not result.ok and (result.expected, result.actual) == (25, 16)
    assert "mixes samples" in result.message


@pytest.mark.parametrize("name", registered())
def test_registered_networks_emit_what_their_loss_expects(name: str) -> None:
    spec = archbench.get_spec(name)
    loss = "cross_entropy" if spec.output == "logits" else "nll"
    result = check_outputs(name, loss)
    assert result.ok and result.kind == spec.output, result.message


def test_logits_fed_to_nll_are_flagged() -> None:
    result = check_outputs("lenet5", "nll")
    assert not result.ok and "NLLLoss expects log-probabilities" in result.message


def test_output_kind_classifies() -> None:
    logits = torch.randn(8, 10)
    assert output_kind(logits) == "logits"
    assert output_kind(torch.softmax(logits, 1)) == "probabilities"
    assert output_kind(torch.log_softmax(logits, 1)) == "log_probs"


@pytest.mark.parametrize(
    ("shape", "fragment"),
    [
        ((1, 3, 28, 28), "Layer 'conv1' (Conv2d) expects 1 input channels but receives 3"),
        ((1, 1, 20, 20), "Layer 'fc1' (Linear) expects 400 input features but receives 144"),
        ((1, 1, 6, 6), "Layer 'conv2' (Conv2d) expects spatial size at least 5×5 but receives 3×3"),
        ((1, 28, 28), "add the batch dimension"),
    ],
)
def test_wrong_inputs_name_the_layer(shape: tuple[int, ...], fragment: str) -> None:
    result = check_input("lenet5", shape)
    assert not result.ok
    assert fragment in result.message
    assert "lenet5 takes N×1×28×28" in result.message or "add the batch" in result.message
