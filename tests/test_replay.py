"""The meta-device pass runs each kind of block once and replays it: the count must not change, ever."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from archbench.analysis import count_macs


class Repeat(nn.Module):
    """A linear layer applied ``times`` times: same parameters, different work."""

    def __init__(self, width: int, times: int) -> None:
        super().__init__()
        self.fc, self.times = nn.Linear(width, width), times

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(self.times):
            x = x @ self.fc.weight.T
        return x


class Scaled(nn.Module):
    """Work steered by a plain tensor attribute (its value, not its shape): never replayed."""

    def __init__(self, width: int, steps: int) -> None:
        super().__init__()
        self.fc, self.steps = nn.Linear(width, width), torch.tensor(steps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(int(self.steps)):
            x = self.fc(x)
        return x


class Stack(nn.Module):
    def __init__(self, *blocks: nn.Module) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x


W = 6


@pytest.mark.parametrize("times", [(1, 1, 1), (1, 2, 3), (3, 1, 3, 1)])
def test_same_parameters_different_attributes_are_counted_apart(times: tuple[int, ...]) -> None:
    model = Stack(*(Repeat(W, t) for t in times))
    for method in ("analytic", "torch"):
        assert count_macs(model, (2, W), method).total == sum(times) * 2 * W * W


def test_a_block_steered_by_a_tensor_attribute_is_never_replayed() -> None:
    model = Stack(Scaled(W, 1), Scaled(W, 3))  # equal shapes everywhere; only the tensor's value differs
    assert count_macs(model, (2, W)).total == 4 * 2 * W * W == count_macs(model, (2, W), "torch").total


def test_replayed_rows_carry_their_own_names_and_shapes() -> None:
    model = Stack(*(nn.Sequential(Repeat(W, 1), nn.ReLU()) for _ in range(4)))
    rows = count_macs(model, (3, W)).layers
    assert [r.name for r in rows if r.type == "Repeat"] == [f"blocks.{i}.0" for i in range(4)]
    assert all(r.output_shape == (3, W) for r in rows)
    assert sum(r.macs for r in rows) == 4 * 3 * W * W


def test_a_different_input_shape_is_not_replayed() -> None:
    class Grow(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = Repeat(W, 1), Repeat(W, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.a(x)
            return self.b(torch.cat([y, y]))  # twice the rows

    assert count_macs(Grow(), (2, W)).total == 2 * W * W + 4 * W * W


def test_a_subclass_with_its_own_forward_loses_its_parents_composition() -> None:
    from archbench.layers.blocks import Residual

    class Twice(Residual):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return super().forward(super().forward(x))

    block = Twice(4, 4)
    result = count_macs(block, (1, 4, 6, 6))
    assert result.meta_fallback == ("Twice",)
    once = count_macs(Residual(4, 4), (1, 4, 6, 6)).total
    assert result.total == 2 * once == count_macs(block, (1, 4, 6, 6), "torch").total


def test_transformer_blocks_are_replayed_exactly() -> None:
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
    model = nn.TransformerEncoder(layer, num_layers=3, enable_nested_tensor=False)
    analytic, torch_count = count_macs(model, (2, 5, 8)), count_macs(model, (2, 5, 8), "torch")
    per_layer = 2 * (3 * 5 * 8 * 8 + 2 * 5 * 5 * 8 + 5 * 8 * 8 + 2 * 5 * 8 * 16)  # batch 2, L 5, E 8, FF 16
    assert analytic.total == torch_count.total == 3 * per_layer
    assert analytic.complete


def test_a_call_steered_by_a_real_tensor_argument_is_never_replayed() -> None:
    class Steered(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(W, W)

        def forward(self, x: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
            for _ in range(int(times)):
                x = x @ self.fc.weight.T
            return x

    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = Steered(), Steered()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.b(self.a(x, torch.tensor(1)), torch.tensor(3))  # same shapes, different values

    assert count_macs(Twice(), (2, W)).total == 4 * 2 * W * W == count_macs(Twice(), (2, W), "torch").total
