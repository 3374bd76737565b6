"""archbench's hand-written BatchNorm against nn.BatchNorm1d/2d, an independent d2l reference, and autograd.

Hypothesis draws shapes, hyperparameters and a seed; tensor contents come from a seeded torch generator.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st
from torch import nn

import archbench
from archbench.errors import ArchbenchError, ShapeError
from archbench.layers import batchnorm as bn_impl
from archbench.layers.batchnorm import BatchNorm, batch_norm

TIGHT = {"rtol": 1e-10, "atol": 1e-10}  # float64; float32 uses assert_close's defaults (see `agree`)


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """These tensors are tiny: one thread avoids OpenMP hand-offs, which stall when the cores are shared."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def close(actual: torch.Tensor | None, expected: torch.Tensor | None, dtype: torch.dtype, msg: str = "") -> None:
    """Both None, or close: TIGHT in float64, assert_close's defaults otherwise."""
    if expected is None:
        assert actual is None, msg
        return
    assert actual is not None, msg
    tol = TIGHT if dtype == torch.float64 else {}
    torch.testing.assert_close(actual, expected, **tol, msg=lambda m: f"{msg}: {m}")


def agree(
    actual: torch.Tensor | None, native: torch.Tensor | None, exact: torch.Tensor | None, msg: str,
    **tolerance: float,
) -> None:
    """float64: tight agreement with torch. float32: assert_close (defaults unless ``tolerance`` is given)
    against torch's float32 result; where the two differ by more, the float64 result referees: our error
    must be within that tolerance of it or at most twice torch's float32 error. (Both round; on
    ill-conditioned draws, such as two nearly equal values in a channel, where ∂L/∂x is rounding noise
    scaled by a large 1/σ, torch's float32 result is often the one further from the exact value.)
    """
    if native is None or native.dtype == torch.float64:
        close(actual, native, torch.float64, msg)
        return
    assert actual is not None and exact is not None, msg
    try:
        torch.testing.assert_close(actual, native, **tolerance)
    except AssertionError:
        rtol, atol = tolerance.get("rtol", 1.3e-6), tolerance.get("atol", 1e-5)
        ours_error = (actual.double() - exact).abs()
        torch_error = (native.double() - exact).abs().max()
        bound = torch.clamp(atol + rtol * exact.abs(), min=2 * torch_error)
        worst = (ours_error - bound).max()
        assert worst <= 0, (
            f"{msg}: off the float64 result by {ours_error.max():.3g}; torch's float32 is off by {torch_error:.3g}"
        )


# --------------------------------------------------------------------------------------------------
# Drawing cases and building matched pairs of layers.
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    shape: tuple[int, ...]
    momentum: float | None
    eps: float
    affine: bool
    track: bool
    seed: int
    steps: int

    @property
    def num_dims(self) -> int:
        return len(self.shape)

    @property
    def channels(self) -> int:
        return self.shape[1]


@st.composite
def cases(draw: st.DrawFn, num_dims: tuple[int, ...] = (2, 3, 4), min_n: int = 2) -> Case:
    rank = draw(st.sampled_from(num_dims))
    n = draw(st.integers(min_n, 6))
    c = draw(st.integers(1, 5))
    spatial = tuple(draw(st.integers(1, 5)) for _ in range(rank - 2))
    return Case(
        shape=(n, c, *spatial),
        momentum=draw(st.one_of(st.none(), st.floats(0.0, 1.0))),
        eps=draw(st.sampled_from([1e-5, 1e-3, 0.5])),
        affine=draw(st.booleans()),
        track=draw(st.booleans()),
        seed=draw(st.integers(0, 2**31 - 1)),
        steps=draw(st.integers(1, 3)),
    )


def torch_bn(case: Case, dtype: torch.dtype) -> nn.Module:
    cls = nn.BatchNorm2d if case.num_dims == 4 else nn.BatchNorm1d
    return cls(case.channels, eps=case.eps, momentum=case.momentum, affine=case.affine,
               track_running_stats=case.track, dtype=dtype)


def randomise(module: nn.Module, gen: torch.Generator) -> None:
    """Non-trivial parameters and running statistics, so that every term of the formulas matters."""
    with torch.no_grad():
        for name, tensor in module.state_dict(keep_vars=True).items():
            if name == "running_var":
                tensor.copy_(torch.rand(tensor.shape, generator=gen, dtype=tensor.dtype) + 0.5)
            elif name != "num_batches_tracked":
                tensor.copy_(torch.randn(tensor.shape, generator=gen, dtype=tensor.dtype))


def matched_pair(case: Case, dtype: torch.dtype, convention: str = "torch") -> tuple[nn.Module, BatchNorm]:
    reference = torch_bn(case, dtype)
    randomise(reference, torch.Generator().manual_seed(case.seed))
    ours = BatchNorm(case.channels, num_dims=case.num_dims, momentum=case.momentum, eps=case.eps,
                     affine=case.affine, track_running_stats=case.track, convention=convention, dtype=dtype)
    ours.load_state_dict(reference.state_dict())
    return reference, ours


def sample(shape: tuple[int, ...], gen: torch.Generator, dtype: torch.dtype) -> torch.Tensor:
    scale = torch.rand((), generator=gen, dtype=dtype) * 3 + 0.1
    shift = torch.randn((), generator=gen, dtype=dtype) * 2
    return torch.randn(shape, generator=gen, dtype=dtype) * scale + shift


def forward_backward(
    module: nn.Module, x: torch.Tensor, grad: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Output and the gradients of input, weight and bias for the upstream gradient ``grad``."""
    module.zero_grad(set_to_none=True)
    x = x.detach().clone().requires_grad_(True)
    y = module(x)
    y.backward(grad)
    weight, bias = getattr(module, "weight", None), getattr(module, "bias", None)
    return (y.detach(), x.grad,
            None if weight is None else weight.grad, None if bias is None else bias.grad)


def assert_same_step(
    reference: nn.Module, ours: nn.Module, x: torch.Tensor, grad: torch.Tensor, what: str,
    exact: nn.Module | None = None,
) -> None:
    """One forward and backward of both layers; ``exact`` (a float64 copy of ``reference``) referees float32."""
    expected = forward_backward(reference, x, grad)
    actual = forward_backward(ours, x, grad)
    truth = forward_backward(exact, x.double(), grad.double()) if exact is not None else expected
    for name, a, e, t in zip(("output", "grad input", "grad weight", "grad bias"), actual, expected, truth):
        agree(a, e, t, f"{what}: {name}")


def assert_same_buffers(reference: nn.Module, ours: nn.Module, exact: nn.Module | None = None) -> None:
    exact = reference if exact is None else exact
    agree(ours.running_mean, reference.running_mean, exact.running_mean, "running_mean")
    agree(ours.running_var, reference.running_var, exact.running_var, "running_var")
    if reference.num_batches_tracked is not None:
        assert torch.equal(ours.num_batches_tracked, reference.num_batches_tracked)
    else:
        assert ours.num_batches_tracked is None


# --------------------------------------------------------------------------------------------------
# The torch convention reproduces nn.BatchNorm1d/2d.
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@given(case=cases())
def test_torch_convention_matches_nn_batchnorm(case: Case, dtype: torch.dtype) -> None:
    reference, ours = matched_pair(case, dtype)
    exact = copy.deepcopy(reference).double() if dtype == torch.float32 else None
    gen = torch.Generator().manual_seed(case.seed + 1)
    for step in range(case.steps):
        x, grad = sample(case.shape, gen, dtype), torch.randn(case.shape, generator=gen, dtype=dtype)
        assert_same_step(reference, ours, x, grad, f"training step {step}", exact)
    assert_same_buffers(reference, ours, exact)
    for module in (reference, ours, exact):
        if module is not None:
            module.eval()
    x, grad = sample(case.shape, gen, dtype), torch.randn(case.shape, generator=gen, dtype=dtype)
    assert_same_step(reference, ours, x, grad, "eval", exact)
    assert_same_buffers(reference, ours, exact)  # evaluation leaves the statistics alone


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("shape", [(8, 16, 14, 14), (4, 3, 2, 2), (16, 32, 7, 1), (2, 4, 32, 32)])
def test_larger_inputs_match_nn_batchnorm2d(shape: tuple[int, ...], memory_format: torch.memory_format) -> None:
    """Shapes that take the grouped reductions (norms; batched dots from 1024 values a group) and the generic ones, in float32.

    Outputs, input gradients and running statistics meet assert_close's defaults. The weight and bias
    gradients are cancelling sums over N·H·W values whose float32 rounding (ours and torch's alike, about
    2e-5 on values near 10 here) exceeds the defaults, so they get rtol 1e-5, atol 1e-4.
    """
    case = Case(shape, momentum=0.1, eps=1e-5, affine=True, track=True, seed=7, steps=2)
    reference, ours = matched_pair(case, torch.float32)
    exact = copy.deepcopy(reference).double()
    gen = torch.Generator().manual_seed(3)
    names = ("output", "grad input", "grad weight", "grad bias")
    for step in range(case.steps):
        x = sample(shape, gen, torch.float32).contiguous(memory_format=memory_format)
        grad = torch.randn(shape, generator=gen)
        expected = forward_backward(reference, x, grad)
        actual = forward_backward(ours, x, grad)
        truth = forward_backward(exact, x.double(), grad.double())
        for i, (a, e, t) in enumerate(zip(actual, expected, truth)):
            tolerance = {"rtol": 1e-5, "atol": 1e-4} if i >= 2 else {}
            agree(a, e, t, f"step {step}: {names[i]}", **tolerance)
    assert_same_buffers(reference, ours, exact)


def test_both_reduction_paths_are_exercised() -> None:
    long_groups = torch.zeros(2, 3, 4, 4)  # 16 values per (sample, channel)
    assert bn_impl._grouped(long_groups, 16) is not None
    assert bn_impl._grouped(long_groups, 17) is None
    assert bn_impl._grouped(long_groups.contiguous(memory_format=torch.channels_last), 1) is None


def test_large_offset_is_not_cancelled_in_float32() -> None:
    """Two-pass statistics: a mean 10⁴ standard deviations from zero still normalises accurately.

    (The input is rounded to float32 first, so the float64 run sees exactly the same values.)
    """
    gen = torch.Generator().manual_seed(0)
    x = (torch.randn(8, 4, 6, 6, generator=gen, dtype=torch.float64) + 1e4).float().double()
    grad = torch.randn(x.shape, generator=gen, dtype=torch.float64)
    case = Case(tuple(x.shape), 0.1, 1e-5, True, True, seed=1, steps=1)
    exact, _ = matched_pair(case, torch.float64)
    ours = BatchNorm(4).float()
    ours.load_state_dict(exact.state_dict())
    expected = forward_backward(exact, x, grad)
    actual = forward_backward(ours, x.float(), grad.float())
    for a, e in zip(actual, expected):
        torch.testing.assert_close(a, e.float(), rtol=1e-5, atol=1e-5)


def test_an_offset_first_eighth_of_the_batch_keeps_the_statistics_exact() -> None:
    """A few samples far from the rest: the two-pass statistics stay exact (float64) and accurate (float32)."""
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(16, 3, 4, 4, generator=gen, dtype=torch.float64)
    x[:2] += 1e3  # the first eighth of the batch sits 1000 units above the rest
    x = x.float().double()  # representable in float32, so both precisions see the same values
    grad = torch.randn(x.shape, generator=gen, dtype=torch.float64)
    case = Case(tuple(x.shape), 0.1, 1e-5, True, True, seed=3, steps=1)
    reference, ours = matched_pair(case, torch.float64)
    ours32 = copy.deepcopy(ours).float()
    expected = forward_backward(reference, x, grad)
    for name, a, e in zip(("output", "grad input", "grad weight", "grad bias"), forward_backward(ours, x, grad),
                          expected):
        close(a, e, torch.float64, name)
    assert_same_buffers(reference, ours)
    actual32 = forward_backward(ours32, x.float(), grad.float())
    for a, e in zip(actual32, expected):
        torch.testing.assert_close(a, e.float(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("min_values", "offset"), [(0, float("inf")), (1 << 20, 4.0)], ids=["uncentred", "centred"])
@pytest.mark.parametrize("shape", [(4, 3), (3, 2, 4, 4), (4, 3, 2, 2)])
def test_both_backward_forms_match_torch(shape: tuple[int, ...], min_values: int, offset: float, monkeypatch) -> None:
    """The CPU backward uses x uncentred for large inputs with |μ| ≤ 4σ and x − s otherwise; force each form."""
    monkeypatch.setattr(bn_impl, "_MIN_VALUES_UNCENTRED", min_values)
    monkeypatch.setattr(bn_impl, "_MAX_UNCENTRED_OFFSET", offset)
    case = Case(shape, 0.1, 1e-5, True, True, seed=4, steps=2)
    reference, ours = matched_pair(case, torch.float64)
    gen = torch.Generator().manual_seed(6)
    for step in range(case.steps):
        x, grad = sample(shape, gen, torch.float64), torch.randn(shape, generator=gen, dtype=torch.float64)
        assert_same_step(reference, ours, x, grad, f"step {step}")


# --------------------------------------------------------------------------------------------------
# The hand-derived backward pass.
# --------------------------------------------------------------------------------------------------


def functional(training: bool, with_stats: bool, channels: int) -> Callable[..., torch.Tensor]:
    """batch_norm with fixed running statistics (they are constants, not inputs, for gradcheck)."""
    gen = torch.Generator().manual_seed(5)
    mean = torch.randn(channels, generator=gen, dtype=torch.float64)
    var = torch.rand(channels, generator=gen, dtype=torch.float64) + 0.5

    def fn(x: torch.Tensor, gamma: torch.Tensor | None, beta: torch.Tensor | None) -> torch.Tensor:
        stats = (mean.clone(), var.clone()) if with_stats else (None, None)
        return batch_norm(x, gamma, beta, *stats, training=training, momentum=0.1, eps=1e-3)

    return fn


GRAD_CASES = [
    pytest.param(shape, training, with_stats, affine, id=f"{shape}-{mode}-{'affine' if affine else 'plain'}")
    for shape in [(4, 3), (3, 2, 5), (2, 3, 3, 3)]
    for training, with_stats, mode in [(True, True, "train"), (False, True, "eval"), (False, False, "nostats")]
    for affine in (True, False)
]


def grad_inputs(shape: tuple[int, ...], affine: bool) -> tuple[torch.Tensor | None, ...]:
    gen = torch.Generator().manual_seed(11)
    x = torch.randn(shape, generator=gen, dtype=torch.float64).requires_grad_()
    if not affine:
        return x, None, None
    gamma = (torch.rand(shape[1], generator=gen, dtype=torch.float64) + 0.5).requires_grad_()
    beta = torch.randn(shape[1], generator=gen, dtype=torch.float64).requires_grad_()
    return x, gamma, beta


@pytest.mark.parametrize(("shape", "training", "with_stats", "affine"), GRAD_CASES)
def test_gradcheck_and_gradgradcheck(
    shape: tuple[int, ...], training: bool, with_stats: bool, affine: bool
) -> None:
    fn = functional(training, with_stats, shape[1])
    inputs = grad_inputs(shape, affine)
    assert torch.autograd.gradcheck(fn, inputs)
    assert torch.autograd.gradgradcheck(fn, inputs)


@pytest.mark.parametrize("training", [True, False], ids=["batch-stats", "running-stats"])
@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 4, 4), (3, 2, 5, 5)])
def test_fast_and_differentiable_backward_agree(shape: tuple[int, ...], training: bool) -> None:
    """The first-order backward (no graph) and the double-backward formulas give the same gradients."""
    fn = functional(training, True, shape[1])
    x, gamma, beta = grad_inputs(shape, affine=True)
    grad = torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    fast = torch.autograd.grad(fn(x, gamma, beta), (x, gamma, beta), grad)
    graph = torch.autograd.grad(fn(x, gamma, beta), (x, gamma, beta), grad, create_graph=True)
    for a, e in zip(graph, fast):
        torch.testing.assert_close(a, e, **TIGHT)
    assert graph[0].requires_grad and graph[1].requires_grad  # ∂L/∂β = Σg depends on g alone


def test_gradient_only_for_weight_and_bias() -> None:
    """needs_input_grad is honoured: a frozen input still gets weight and bias gradients right."""
    case = Case((4, 3, 5, 5), 0.1, 1e-5, True, True, seed=3, steps=1)
    reference, ours = matched_pair(case, torch.float64)
    x = sample(case.shape, torch.Generator().manual_seed(4), torch.float64)
    for module in (reference, ours):
        module(x).square().sum().backward()
    torch.testing.assert_close(ours.weight.grad, reference.weight.grad, **TIGHT)
    torch.testing.assert_close(ours.bias.grad, reference.bias.grad, **TIGHT)


# --------------------------------------------------------------------------------------------------
# state_dict interchange and module behaviour.
# --------------------------------------------------------------------------------------------------


STATE_CASES = [
    pytest.param(rank, affine, track, id=f"{rank}d-affine={affine}-track={track}")
    for rank in (2, 4)
    for affine in (True, False)
    for track in (True, False)
]


@pytest.mark.parametrize(("rank", "affine", "track"), STATE_CASES)
def test_state_dict_interchange(rank: int, affine: bool, track: bool) -> None:
    shape = (6, 4) if rank == 2 else (4, 4, 3, 3)
    case = Case(shape, momentum=None, eps=1e-5, affine=affine, track=track, seed=9, steps=3)
    gen = torch.Generator().manual_seed(10)
    batches = [sample(shape, gen, torch.float32) for _ in range(case.steps + 1)]

    # torch → ours
    theirs = torch_bn(case, torch.float32)
    randomise(theirs, gen)
    for x in batches[:-1]:
        theirs(x)
    ours = BatchNorm(4, num_dims=rank, momentum=None, affine=affine, track_running_stats=track)
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    ours.load_state_dict(theirs.state_dict())
    theirs.eval(), ours.eval()
    torch.testing.assert_close(ours(batches[-1]), theirs(batches[-1]))

    # ours → torch
    ours.train()
    for x in batches[:-1]:
        ours(x)
    back = torch_bn(case, torch.float32)
    back.load_state_dict(ours.state_dict())
    for name, tensor in ours.state_dict().items():
        assert back.state_dict()[name].dtype == tensor.dtype, name
    back.eval(), ours.eval()
    torch.testing.assert_close(back(batches[-1]), ours(batches[-1]))


def test_checkpoint_without_num_batches_tracked_loads_with_zero() -> None:
    state = nn.BatchNorm2d(3).state_dict()
    del state["num_batches_tracked"]
    state._metadata[""]["version"] = 1  # written before the counter existed
    ours = BatchNorm(3)
    ours.num_batches_tracked.fill_(5)
    ours.load_state_dict(state)
    assert int(ours.num_batches_tracked) == 0


def test_buffers_and_parameters_follow_torch() -> None:
    ours = BatchNorm(6)
    assert [n for n, _ in ours.named_parameters()] == ["weight", "bias"]
    assert [n for n, _ in ours.named_buffers()] == ["running_mean", "running_var", "num_batches_tracked"]
    assert ours.num_batches_tracked.dtype == torch.long
    moved = ours.to(torch.float64)
    assert moved.running_mean.dtype == moved.weight.dtype == torch.float64
    assert moved.num_batches_tracked.dtype == torch.long
    plain = BatchNorm(6, affine=False, track_running_stats=False)
    assert list(plain.parameters()) == [] and plain.state_dict() == {}
    assert plain.weight is None and plain.running_mean is None
    assert "convention='torch'" in repr(ours)


def test_default_momentum_per_convention() -> None:
    assert BatchNorm(3).momentum == nn.BatchNorm2d(3).momentum == 0.1
    assert BatchNorm(3, convention="d2l").momentum == 0.9
    assert BatchNorm(3, momentum=None, convention="d2l").momentum is None


@pytest.mark.parametrize("convention", ["torch", "d2l"])
def test_momentum_none_is_the_cumulative_average(convention: str) -> None:
    ours = BatchNorm(3, num_dims=2, momentum=None, convention=convention, dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    batches = [sample((5, 3), gen, torch.float64) for _ in range(4)]
    for x in batches:
        ours(x)
    torch.testing.assert_close(ours.running_mean, torch.stack([b.mean(0) for b in batches]).mean(0), **TIGHT)
    unbiased = convention == "torch"
    expected_var = torch.stack([b.var(0, unbiased=unbiased) for b in batches]).mean(0)
    torch.testing.assert_close(ours.running_var, expected_var, **TIGHT)
    assert int(ours.num_batches_tracked) == 4


def test_train_and_eval_follow_module_training() -> None:
    ours = BatchNorm(2, num_dims=2, dtype=torch.float64)
    x = sample((6, 2), torch.Generator().manual_seed(1), torch.float64)
    train_out = ours(x)
    stats = (ours.running_mean.clone(), ours.running_var.clone())
    ours.eval()
    eval_out = ours(x)
    assert not torch.allclose(train_out, eval_out)
    torch.testing.assert_close(eval_out, (x - stats[0]) / torch.sqrt(stats[1] + ours.eps), **TIGHT)
    assert torch.equal(ours.running_mean, stats[0]) and int(ours.num_batches_tracked) == 1


# --------------------------------------------------------------------------------------------------
# The d2l convention, against an independent reference written from the formulas.
# --------------------------------------------------------------------------------------------------


def d2l_reference(
    x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, stats: list[torch.Tensor],
    *, training: bool, momentum: float, eps: float,
) -> torch.Tensor:
    """The textbook form: biased variance everywhere, ``momentum`` weights the old running value."""
    dims = [d for d in range(x.dim()) if d != 1]
    view = [1, -1] + [1] * (x.dim() - 2)
    if training:
        mu = x.mean(dim=dims)
        sigma2 = ((x - mu.view(view)) ** 2).mean(dim=dims)
        stats[0] = momentum * stats[0] + (1 - momentum) * mu.detach()
        stats[1] = momentum * stats[1] + (1 - momentum) * sigma2.detach()
    else:
        mu, sigma2 = stats
    x_hat = (x - mu.view(view)) / torch.sqrt(sigma2.view(view) + eps)
    return gamma.view(view) * x_hat + beta.view(view)


@given(case=cases())
def test_d2l_convention_matches_reference(case: Case) -> None:
    momentum = 0.9 if case.momentum is None else case.momentum
    dtype = torch.float64
    ours = BatchNorm(case.channels, num_dims=case.num_dims, momentum=momentum, eps=case.eps,
                     convention="d2l", dtype=dtype)
    gen = torch.Generator().manual_seed(case.seed)
    randomise(ours, gen)
    gamma = ours.weight.detach().clone().requires_grad_()
    beta = ours.bias.detach().clone().requires_grad_()
    stats = [ours.running_mean.clone(), ours.running_var.clone()]
    for training in [True] * case.steps + [False]:
        ours.train(training)
        x, grad = sample(case.shape, gen, dtype), torch.randn(case.shape, generator=gen, dtype=dtype)
        gamma.grad = beta.grad = None
        xr = x.clone().requires_grad_()
        expected = d2l_reference(xr, gamma, beta, stats, training=training, momentum=momentum, eps=case.eps)
        expected.backward(grad)
        actual = forward_backward(ours, x, grad)
        for name, a, e in zip(("output", "grad input", "grad weight", "grad bias"), actual,
                              (expected, xr.grad, gamma.grad, beta.grad)):
            torch.testing.assert_close(a, e.detach(), **TIGHT, msg=lambda m, n=name: f"{n}: {m}")
        torch.testing.assert_close(ours.running_mean, stats[0], **TIGHT)
        torch.testing.assert_close(ours.running_var, stats[1], **TIGHT)


@given(case=cases(num_dims=(2, 4)))
def test_documented_difference_between_conventions(case: Case) -> None:
    """From running_var = 1, torch's update exceeds d2l's by m·σ²/(n − 1) (n values per channel)."""
    m = 0.1 if case.momentum is None else case.momentum
    x = sample(case.shape, torch.Generator().manual_seed(case.seed), torch.float64)
    torch_style = BatchNorm(case.channels, num_dims=case.num_dims, momentum=m, dtype=torch.float64)
    d2l_style = BatchNorm(case.channels, num_dims=case.num_dims, momentum=1 - m, convention="d2l",
                          dtype=torch.float64)
    torch_style(x), d2l_style(x)
    dims = [d for d in range(x.dim()) if d != 1]
    n = x.numel() // case.channels
    sigma2 = x.var(dim=dims, unbiased=False)
    torch.testing.assert_close(torch_style.running_mean, d2l_style.running_mean, **TIGHT)
    torch.testing.assert_close(d2l_style.running_var, (1 - m) + m * sigma2, **TIGHT)
    torch.testing.assert_close(torch_style.running_var - d2l_style.running_var, m * sigma2 / (n - 1), **TIGHT)


# --------------------------------------------------------------------------------------------------
# Memory format, errors, networks.
# --------------------------------------------------------------------------------------------------


@given(case=cases(num_dims=(4,), min_n=1))
def test_channels_last_gives_the_same_result(case: Case) -> None:
    assume(case.shape[0] * case.shape[2] * case.shape[3] >= 2)  # one value per channel: see the error tests
    reference, ours = matched_pair(case, torch.float64)
    gen = torch.Generator().manual_seed(case.seed)
    x = sample(case.shape, gen, torch.float64)
    grad = torch.randn(case.shape, generator=gen, dtype=torch.float64)
    contiguous = forward_backward(ours, x, grad)
    ours.load_state_dict(reference.state_dict())
    x_cl, grad_cl = (t.contiguous(memory_format=torch.channels_last) for t in (x, grad))
    channels_last = forward_backward(ours, x_cl, grad_cl)
    native = forward_backward(reference, x_cl, grad_cl)
    for a, b, e in zip(channels_last, contiguous, native):
        close(a, b, torch.float64, "channels_last vs contiguous")
        close(a, e, torch.float64, "channels_last vs nn.BatchNorm2d")
    cl = torch.channels_last
    assert channels_last[0].is_contiguous(memory_format=cl) == native[0].is_contiguous(memory_format=cl)


def message(exc: pytest.ExceptionInfo[BaseException]) -> str:
    text = str(exc.value)
    assert text.count(". ") == 0 and text.endswith("."), f"not one sentence: {text!r}"
    return text


@pytest.mark.parametrize(
    ("build", "x", "fragments"),
    [
        (lambda: BatchNorm(6, num_dims=4), torch.zeros(2, 6), ["4-dimensional", "(2, 6)", "num_dims=2"]),
        (lambda: BatchNorm(120, num_dims=2), torch.zeros(2, 120, 3, 3), ["2-dimensional", "num_dims=4"]),
        (lambda: BatchNorm(6), torch.zeros(2, 5, 4, 4), ["6 channels", "got 5", "(2, 5, 4, 4)"]),
        (lambda: BatchNorm(120, num_dims=2), torch.zeros(1, 120), ["training", "at least 2", "has 1", "eval"]),
        (lambda: BatchNorm(6), torch.zeros(1, 6, 1, 1), ["at least 2 values per channel", "(1, 6, 1, 1)"]),
        (lambda: BatchNorm(4, num_dims=2, track_running_stats=False).eval(), torch.zeros(1, 4),
         ["without running statistics", "track_running_stats=True"]),
    ],
    ids=["ndim-2-for-4", "ndim-4-for-2", "channels", "one-value-fc", "one-value-conv", "one-value-no-stats"],
)
def test_input_errors_say_what_and_how_to_fix(build, x: torch.Tensor, fragments: list[str]) -> None:
    with pytest.raises(ShapeError) as exc:
        build()(x)
    text = message(exc)
    for fragment in fragments:
        assert fragment in text


def test_single_value_batch_raises_in_torch_too_and_works_in_eval() -> None:
    with pytest.raises(ValueError):
        nn.BatchNorm1d(3)(torch.zeros(1, 3))
    with pytest.raises(ValueError):  # ShapeError is a ValueError, so torch-style handlers still catch it
        BatchNorm(3, num_dims=2)(torch.zeros(1, 3))
    assert BatchNorm(3, num_dims=2).eval()(torch.zeros(1, 3)).shape == (1, 3)


@pytest.mark.parametrize(
    ("kwargs", "fragments"),
    [
        ({"convention": "pytorch"}, ["'torch'", "'d2l'", "'pytorch'"]),
        ({"num_dims": 5}, ["num_dims", "got 5"]),
        ({"momentum": 1.5}, ["[0, 1]", "1.5"]),
    ],
    ids=["convention", "num-dims", "momentum"],
)
def test_construction_errors(kwargs: dict[str, object], fragments: list[str]) -> None:
    with pytest.raises(ShapeError) as exc:
        BatchNorm(3, **kwargs)
    text = message(exc)
    assert isinstance(exc.value, ArchbenchError)
    for fragment in fragments:
        assert fragment in text


def test_functional_argument_errors() -> None:
    x = torch.zeros(4, 3)
    with pytest.raises(ShapeError, match=r"gamma must have shape \(3,\)"):
        batch_norm(x, torch.ones(4), None, None, None, training=True, momentum=0.1)
    with pytest.raises(ShapeError, match="together"):
        batch_norm(x, None, None, torch.zeros(3), None, training=True, momentum=0.1)
    with pytest.raises(ShapeError, match="channels in dimension 1"):
        batch_norm(torch.zeros(3), None, None, None, None, training=True, momentum=0.1)
    with pytest.raises(ShapeError, match="num_batches_tracked"):
        batch_norm(x, None, None, torch.zeros(3), torch.ones(3), training=True, momentum=None)


def _lenet_pair() -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    ours, theirs = archbench.get_model("lenet5_bn"), archbench.get_model("lenet5_bn_torch")
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    theirs.load_state_dict(ours.state_dict())
    return ours, theirs


def _lenet_step(model: nn.Module, x: torch.Tensor, grad: torch.Tensor) -> list[torch.Tensor]:
    """The output, every parameter's gradient and every buffer after one forward and backward."""
    model.zero_grad(set_to_none=True)
    y = model(x)
    y.backward(grad)
    return [y.detach(), *(p.grad for p in model.parameters()), *model.buffers()]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
def test_lenet5_bn_matches_lenet5_bn_torch(dtype: torch.dtype) -> None:
    """Same outputs, gradients and running statistics in training (two steps) and evaluation.

    In float32 the float64 run of torch's network referees differences beyond the defaults (see ``agree``).
    """
    ours, theirs = (model.to(dtype) for model in _lenet_pair())
    exact = copy.deepcopy(theirs).double()
    names = ["output", *(f"grad {n}" for n, _ in ours.named_parameters()), *(n for n, _ in ours.named_buffers())]
    gen = torch.Generator().manual_seed(1)
    for training in (True, True, False):
        for model in (ours, theirs, exact):
            model.train(training)
        x = torch.randn(8, 1, 28, 28, generator=gen, dtype=dtype)
        grad = torch.randn(8, 10, generator=gen, dtype=dtype)
        truth = _lenet_step(exact, x.double(), grad.double())
        for name, a, e, t in zip(names, _lenet_step(ours, x, grad), _lenet_step(theirs, x, grad), truth):
            if a.is_floating_point():
                agree(a, e, t if dtype == torch.float32 else e, f"{name} (training={training})")
            else:
                assert torch.equal(a, e), name


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("shape", [(8, 16, 14, 14), (32, 120)])
def test_cuda_matches_nn_batchnorm(shape: tuple[int, ...]) -> None:
    case = Case(shape, momentum=0.1, eps=1e-5, affine=True, track=True, seed=0, steps=2)
    reference, ours = matched_pair(case, torch.float64)
    reference.cuda(), ours.cuda()
    gen = torch.Generator().manual_seed(0)
    for training in (True, True, False):
        reference.train(training), ours.train(training)
        x, grad = (torch.randn(shape, generator=gen, dtype=torch.float64).cuda() for _ in range(2))
        assert_same_step(reference, ours, x, grad, f"cuda training={training}")
    assert_same_buffers(reference, ours)
