"""The verification report's checks, run as tests: one test per check group, so the report and the suite agree.

Every expected value lives beside its network (``ModelSpec.figures``, ``layer_shapes``, ``torchvision``) or in
:mod:`archbench.verify` (the BatchNorm and seed-bug checks); nothing is repeated here. A new network brings
its facts once and is tested and reported automatically.
"""

from __future__ import annotations

import pytest
from torch import nn

from archbench.registry import Figure, ModelSpec, register_model, unregister_model
from archbench.verify import CheckCase, check_cases, figure_checks


def _param(case: CheckCase) -> object:
    return pytest.param(case, id=case.id, marks=[pytest.mark.slow] if case.slow else [])


@pytest.mark.parametrize("case", [_param(c) for c in check_cases()])
def test_check(case: CheckCase) -> None:
    rows = case.run()
    assert rows, f"{case.id} produced no checks"
    failed = [f"{r.name}: measured {r.measured}, expected {r.expected}" for r in rows if not r.passed]
    assert not failed, "\n".join(failed)


def test_every_network_declares_its_facts() -> None:
    """A network without a closed-form parameter count or stage shapes would pass its checks vacuously."""
    ids = {c.id for c in check_cases()}
    for case_id in ids:
        if case_id.startswith("shapes["):
            assert f"figures[{case_id[7:-1]}]" in ids


def test_a_false_figure_fails() -> None:
    spec = ModelSpec(
        "wrong_figures", (1, 4, 4), 10, "test", "claims too many parameters", 16,
        figures=(Figure("params", 171, "wrong on purpose"), Figure("macs", 100, "off by 60%", rel_tol=0.5)),
    )  # fmt: skip

    @register_model(spec)
    def wrong() -> nn.Module:
        return nn.Sequential(nn.Flatten(), nn.Linear(16, 10))  # 170 parameters, 160 MACs

    try:
        rows = figure_checks(["wrong_figures"])
    finally:
        unregister_model("wrong_figures")
    assert [(r.passed, r.measured) for r in rows] == [(False, "170"), (False, "160")]
