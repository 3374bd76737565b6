"""One rule table: the same rule validates ``check_input``, walks ``count_macs``, and names no network class."""

from __future__ import annotations

import ast
import inspect

import pytest
import torch
from torch import nn

import archbench
from archbench.analysis import check_input, count_macs, rules
from archbench.errors import ShapeError


@pytest.mark.parametrize(
    ("layer", "shape", "phrase"),
    [
        (nn.Linear(1655, 120), (1, 400), "expects 1655 input features but receives 400"),  # seed 000's bug
        (nn.Conv2d(3, 8, 5), (1, 1, 28, 28), "expects 3 input channels but receives 1"),
        (nn.Conv2d(1, 8, 5), (1, 1, 3, 3), "expects spatial size at least 5×5 but receives 3×3"),
        (nn.BatchNorm2d(6), (1, 4, 8, 8), "expects 6 channels in dimension 1"),
        (nn.MaxPool2d(4), (1, 1, 2, 2), "expects a window that fits but receives spatial size 2×2"),
    ],
)
def test_check_input_and_count_macs_say_the_same_thing(layer: nn.Module, shape: tuple, phrase: str) -> None:
    model = nn.Sequential(nn.Identity(), layer)
    checked = check_input(model, shape)
    assert not checked.ok and phrase in checked.message and "Layer '1'" in checked.message
    with pytest.raises(ShapeError, match="Layer '1'") as counted:
        count_macs(model, shape)
    assert phrase in str(counted.value)


def test_a_subclass_keeping_forward_keeps_the_composition_and_one_changing_it_loses_it() -> None:
    from archbench.layers.blocks import Residual

    class Same(Residual):
        pass

    class Changed(Residual):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    assert rules.rule_for(Same)[0] == "block" and rules.rule_for(Changed) == (None, None)


def test_every_declared_composition_exists() -> None:
    import archbench.layers.blocks
    import archbench.models

    declared = {
        cls.composition
        for module in (archbench.layers.blocks, *(m for _, m in inspect.getmembers(archbench.models, inspect.ismodule)))
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if "composition" in vars(cls)
    }
    assert declared and declared <= set(rules.COMPOSITIONS)


def test_the_rules_name_no_network_class() -> None:
    tree = ast.parse(inspect.getsource(rules))
    strings = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    imports = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert not [s for s in strings if "archbench.models" in s or "torchvision" in s or "archbench.layers" in s]
    assert not [m for m in imports if m.startswith(("archbench.models", "archbench.layers", "torchvision"))]


@pytest.mark.parametrize("name", ["lenet5", "residual_net", "inception_net"])
def test_registered_networks_are_counted_by_rules_alone(name: str) -> None:
    result = count_macs(name)
    assert result.meta_fallback == () and {r.counted_by for r in result.layers} == {"rule"}
    shape = (1, *archbench.get_spec(name).input_shape)
    assert result.total == count_macs(archbench.get_model(name), shape, "torch").total


class _Attend(nn.Module):
    """Cross-attention: ``query`` of length L attends to a source of length S made from the same input."""

    def __init__(self, attention: nn.MultiheadAttention, source: int, batched: bool = True) -> None:
        super().__init__()
        self.attention, self.source, self.batched = attention, source, batched
        self.key = nn.Linear(8, attention.kdim)
        self.value = nn.Linear(8, attention.vdim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (N, L, 8) batch-first, (L, N, 8), or (L, 8)
        dim = 1 if (self.attention.batch_first and self.batched) else 0
        src = x.narrow(dim, 0, 1).expand(*x.shape[:dim], self.source, *x.shape[dim + 1 :])
        return self.attention(x, key=self.key(src), value=self.value(src), need_weights=False)[0]


@pytest.mark.parametrize(
    ("options", "shape", "batched"),
    [
        ({"batch_first": True}, (2, 5, 8), True),
        ({}, (5, 2, 8), True),
        ({}, (5, 8), False),
        ({"kdim": 6, "vdim": 3, "batch_first": True}, (2, 5, 8), True),
        ({"add_bias_kv": True, "add_zero_attn": True}, (5, 2, 8), True),
    ],
)
def test_attention_has_a_closed_form_and_torch_agrees(options: dict, shape: tuple, batched: bool) -> None:
    e, source = 8, 7
    attention = nn.MultiheadAttention(e, 2, **options)
    model = _Attend(attention, source, batched)
    if options.get("batch_first"):
        n, length = shape[0], shape[1]
    else:
        n, length = (shape[1], shape[0]) if batched else (1, shape[0])
    kdim, vdim = options.get("kdim", e), options.get("vdim", e)
    attended = source + options.get("add_bias_kv", False) + options.get("add_zero_attn", False)
    expected = (
        n * source * 8 * kdim + n * source * 8 * vdim  # the key and value Linear layers of the test module
        + n * length * e * e + n * source * kdim * e + n * source * vdim * e + n * length * e * e  # projections
        + 2 * n * length * attended * e  # q·kᵀ and a·v over all heads
    )  # fmt: skip
    analytic = count_macs(model, shape)
    assert analytic.complete and analytic.total == expected == count_macs(model, shape, "torch").total
    row = next(r for r in analytic.layers if r.name == "attention")
    assert row.counted_by == "meta" and row.output_shape == shape  # closed form, not the operator formulas
