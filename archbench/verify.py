"""The verification checks that the report prints, run through the library itself.

Each function returns :class:`Check` rows (pass/fail, what was measured against what was expected, and the
worst numerical error where one applies). The tests assert the same facts with the same functions.

Example:
    >>> rows = shape_checks(["lenet5", "vgg16"])
    >>> all(r.passed for r in rows)
    True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from archbench.analysis.checks import check_input, check_outputs
from archbench.analysis.summary import trace_shapes
from archbench.layers.blocks import InceptionA, Residual
from archbench.registry import IMAGENET_INPUT, TORCHVISION_FORM, get_model, get_spec, list_models


@dataclass(frozen=True)
class Check:
    """One verified property.

    Attributes:
        area: the report section (``"shapes"``, ``"counts"``, ``"batchnorm"``, ``"torchvision"``, ``"seed bugs"``).
        name: what was checked.
        passed: whether it held.
        measured: what archbench found (as text).
        expected: the independent value it was compared with (as text).
        worst_error: the largest absolute difference, for numerical comparisons.
    """

    area: str
    name: str
    passed: bool
    measured: str
    expected: str
    worst_error: float | None = None


def _shape(shape: tuple[int, ...]) -> str:
    return "×".join(map(str, shape))


def _build(name: str, *, meta: bool = False, **options: object) -> nn.Module:
    """A registered network; on the ``meta`` device (no memory, no initialisation) for counts and shapes."""
    if not meta:
        return get_model(name, **options)
    with torch.device("meta"):
        return get_model(name, **options)


def shape_checks(models: list[str] | None = None) -> list[Check]:
    """Each network's claimed flat features and layer shapes against a traced forward pass (meta device)."""
    rows = []
    for name in models or list_models():
        spec = get_spec(name)
        model = _build(name, meta=True)
        trace = trace_shapes(model, (1, *spec.input_shape))
        flat = [r.output_shape[1] for r in trace if r.type == "Flatten"]
        rows.append(
            Check("shapes", f"{name}: flattened features", flat == [spec.flat_features], str(flat), f"[{spec.flat_features}]")
        )
        sample = spec.facts_input_shape or spec.input_shape
        outputs = {r.name: r.output_shape[1:] for r in trace_shapes(model, (1, *sample))}
        for layer, claimed in spec.layer_shapes.items():
            got = outputs.get(layer, ())
            rows.append(
                Check(
                    "shapes",
                    f"{name}: {layer} output at {_shape(sample)}",
                    tuple(got) == tuple(claimed),
                    _shape(got),
                    _shape(claimed),
                )
            )
        out = trace[-1].output_shape
        rows.append(Check("shapes", f"{name}: output", out == (1, spec.num_classes), _shape(out), f"1×{spec.num_classes}"))
    return rows


def _form(options: Mapping[str, object]) -> str:
    return "torchvision form" if options.get("variant") == "torchvision" else "default form"


def figure_checks(models: list[str] | None = None) -> list[Check]:
    """Each network's :class:`~archbench.registry.Figure` s: parameters and analytic MACs (meta device)."""
    from archbench.analysis.counts import count_macs, count_params

    rows = []
    for name in models or list_models():
        spec = get_spec(name)
        for figure in spec.figures:
            model = _build(name, meta=True, **figure.options)
            if figure.quantity == "params":
                measured, what = count_params(model), "parameters"
            else:
                sample = spec.figure_input(figure)
                measured, what = count_macs(model, (1, *sample)).total, f"MACs at {_shape(sample)}"
            expected = f"{figure.value:,.0f}" + (f" ± {figure.rel_tol:.1%}" if figure.rel_tol else "")
            rows.append(
                Check(
                    "figures",
                    f"{name} ({_form(figure.options)}): {what}, {figure.source}",
                    figure.matches(measured),
                    f"{measured:,}",
                    expected,
                )
            )
    return rows


def block_checks() -> list[Check]:
    """The seeds' block facts: Residual keeps 4×3×6×6, the strided one gives 4×6×3×3, InceptionA gives 88."""
    cases: list[tuple[str, Callable[[], nn.Module], tuple[int, ...], tuple[int, ...]]] = [
        ("Residual(3, 3) on 4×3×6×6", lambda: Residual(3, 3), (4, 3, 6, 6), (4, 3, 6, 6)),
        ("Residual(3, 6, 1×1, stride 2) on 4×3×6×6", lambda: Residual(3, 6, True, 2), (4, 3, 6, 6), (4, 6, 3, 3)),
        ("InceptionA(10) on 1×10×12×12", lambda: InceptionA(10), (1, 10, 12, 12), (1, 88, 12, 12)),
    ]
    rows = []
    for label, build, given, expected in cases:
        with torch.no_grad():
            got = tuple(build()(torch.rand(given)).shape)
        rows.append(Check("shapes", label, got == expected, _shape(got), _shape(expected)))
    return rows


def seed_bug_checks() -> list[Check]:
    """The seeds' bugs rebuilt: each must be caught."""
    typo = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.Sigmoid(), nn.AvgPool2d(2, 2),
        nn.Conv2d(6, 16, 5), nn.Sigmoid(), nn.AvgPool2d(2, 2), nn.Flatten(),
        nn.Linear(1655, 120), nn.Sigmoid(), nn.Linear(120, 84), nn.Sigmoid(), nn.Linear(84, 10),
    )  # fmt: skip
    found = check_input(typo, (1, 1, 28, 28))
    softmax_net = nn.Sequential(get_model("lenet5_relu"), nn.Softmax(dim=1))
    flagged = check_outputs(softmax_net, "cross_entropy", (4, 1, 28, 28))
    return [
        Check(
            "seed bugs",
            "seed 000: Linear(1655, 120) after 16×5×5 features",
            not found.ok and found.expected == 1655 and found.actual == 400,
            found.message or "not caught",
            "caught: expects 1655, receives 400",
        ),
        Check(
            "seed bugs",
            "seed 003: softmax output trained with CrossEntropyLoss",
            not flagged.ok and flagged.kind == "probabilities",
            flagged.message or "not flagged",
            "flagged: outputs are probabilities",
        ),
    ]


def output_checks(models: list[str] | None = None) -> list[Check]:
    """Each network emits what its loss expects (logits for CrossEntropyLoss, log-probabilities for NLLLoss)."""
    rows = []
    for name in models or list_models():
        spec = get_spec(name)
        loss = "cross_entropy" if spec.output == "logits" else "nll"
        result = check_outputs(get_model(name), loss, (2, *(spec.bench_input_shape or spec.input_shape)))
        rows.append(Check("seed bugs", f"{name}: outputs suit its loss", result.ok, result.kind, spec.output))
    return rows


def torchvision_checks(models: list[str] | None = None, seed: int = 0) -> list[Check]:
    """Each network with a torchvision counterpart, built with :data:`~archbench.registry.TORCHVISION_FORM`.

    Its ``state_dict`` keys and shapes equal torchvision's, torchvision's ``state_dict`` loads strictly, the
    outputs on 2×3×64×64 (eval mode) agree, and the parameters and analytic MACs at 3×224×224 equal the
    weights' published ``meta["num_params"]`` and ``meta["_ops"]`` (GMACs to three decimals).
    """
    import torchvision

    from archbench.analysis.counts import count_macs, count_params

    rows = []
    for name in models or list_models():
        tv_name = get_spec(name).torchvision
        if tv_name is None:
            continue
        ours = _build(name, meta=True, **TORCHVISION_FORM).eval()
        keys_and_shapes = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
        meta = torchvision.models.get_model_weights(tv_name).DEFAULT.meta
        params = count_params(ours)
        macs = count_macs(ours, (1, *IMAGENET_INPUT)).total
        with torch.device("meta"):
            theirs = torchvision.models.get_model(tv_name, **_TORCHVISION_OPTIONS.get(tv_name, {})).eval()
        _random_state(theirs.to_empty(device="cpu"), seed)
        same = keys_and_shapes == {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
        same = same and list(keys_and_shapes) == list(theirs.state_dict())
        ours.load_state_dict(theirs.state_dict(), strict=True, assign=True)  # meta tensors replaced by theirs
        x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            expected_out = theirs(x)
            error = float((ours(x) - expected_out).abs().max())
        tolerance = 1e-5 * max(1.0, float(expected_out.abs().max()))
        gmacs = round(macs / 1e9, 3)
        rows += [
            Check("torchvision", f"{name}: state_dict keys and shapes = torchvision.models.{tv_name}, strict load",
                  same, "identical" if same else "differ", "identical"),
            Check("torchvision", f"{name}: parameters = {tv_name} weights meta num_params",
                  params == meta["num_params"], f"{params:,}", f"{meta['num_params']:,}"),
            Check("torchvision", f"{name}: analytic MACs at 3×224×224 = meta _ops (GMACs)",
                  gmacs == meta["_ops"], f"{macs:,} ({gmacs})", f"{meta['_ops']}"),
            Check("torchvision", f"{name}: outputs on 2×3×64×64 = torchvision's, same weights",
                  error <= tolerance, f"max |Δ| {error:.2e}", f"≤ {tolerance:.1e}", error),
        ]  # fmt: skip
    return rows


def _random_state(model: nn.Module, seed: int) -> None:
    """Seeded random parameters and plausible BatchNorm statistics, filled in place (cheaper than ``reset``).

    Weights are uniform in ±1/√fan_in (PyTorch's default scale), so activations neither vanish nor explode.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict(keep_vars=True).items():
            leaf = name.rsplit(".", 1)[-1]
            if leaf == "running_var":
                tensor.uniform_(0.5, 1.5, generator=generator)
            elif leaf == "num_batches_tracked":
                tensor.zero_()
            elif tensor.dim() > 1:
                bound = tensor[0].numel() ** -0.5
                tensor.uniform_(-bound, bound, generator=generator)
            elif leaf == "weight":  # a BatchNorm's scale
                tensor.uniform_(0.5, 1.5, generator=generator)
            else:  # biases, BatchNorm shifts and running means
                tensor.uniform_(-0.1, 0.1, generator=generator)


#: Options of torchvision builders for the form we match (GoogLeNet: the published weights drop the aux heads).
_TORCHVISION_OPTIONS: dict[str, dict[str, object]] = {"googlenet": {"aux_logits": False, "init_weights": False}}


def counter_checks(models: list[str] | None = None) -> list[Check]:
    """Conv + linear MACs: the analytic counter against fvcore and ``FlopCounterMode`` / 2, per network.

    At the network's quick-benchmark input where it has one (a smaller valid input: fvcore runs the network).
    """
    from archbench.analysis.counts import count_macs

    rows = []
    for name in models or list_models():
        spec = get_spec(name)
        shape = (1, *(spec.bench_input_shape or spec.input_shape))
        meta_model = _build(name, meta=True)
        analytic = count_macs(meta_model, shape).total
        flop_counter = count_macs(meta_model, shape, method="torch").total
        fvcore = count_macs(get_model(name), shape, method="fvcore").total
        rows.append(
            Check(
                "counts",
                f"{name}: analytic = fvcore = FlopCounterMode/2 at {_shape(shape[1:])}",
                analytic == fvcore == flop_counter,
                f"{analytic:,}",
                f"fvcore {fvcore:,}; torch {flop_counter:,}",
            )
        )
    return rows


def _max_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.detach() - b.detach()).abs().max())


def batchnorm_checks(seed: int = 0, steps: int = 3) -> list[Check]:
    """Our BatchNorm against ``nn.BatchNorm1d/2d`` (torch convention) and the d2l formulas, in float64.

    Several training steps, then eval: outputs, running statistics, ``num_batches_tracked`` and the
    gradients of input, weight and bias. The worst absolute error over all of them is reported.
    """
    from archbench.layers.batchnorm import BatchNorm

    generator = torch.Generator().manual_seed(seed)
    rows = []
    for shape, native_cls in (((16, 6), nn.BatchNorm1d), ((8, 4, 5, 5), nn.BatchNorm2d)):
        channels = shape[1]
        ours = BatchNorm(channels, num_dims=len(shape), dtype=torch.float64)
        native = native_cls(channels, dtype=torch.float64)
        with torch.no_grad():
            native.weight.copy_(torch.rand(channels, generator=generator, dtype=torch.float64) + 0.5)
            native.bias.copy_(torch.randn(channels, generator=generator, dtype=torch.float64))
        ours.load_state_dict(native.state_dict())
        worst = 0.0
        for _ in range(steps):
            x = (3 * torch.randn(shape, generator=generator, dtype=torch.float64) + 1).requires_grad_()
            x2 = x.detach().clone().requires_grad_()
            grad = torch.randn(shape, generator=generator, dtype=torch.float64)
            y_ours, y_native = ours(x), native(x2)
            y_ours.backward(grad), y_native.backward(grad)
            worst = max(worst, _max_error(y_ours, y_native), _max_error(x.grad, x2.grad))
            worst = max(worst, _max_error(ours.weight.grad, native.weight.grad), _max_error(ours.bias.grad, native.bias.grad))
            ours.zero_grad(), native.zero_grad()
        for buffer in ("running_mean", "running_var", "num_batches_tracked"):
            worst = max(worst, _max_error(getattr(ours, buffer).double(), getattr(native, buffer).double()))
        ours.eval(), native.eval()
        x = torch.randn(shape, generator=generator, dtype=torch.float64)
        worst = max(worst, _max_error(ours(x), native(x)))
        label = f"BatchNorm({channels}) vs nn.{native_cls.__name__} on {_shape(shape)}, {steps} steps + eval, float64"
        rows.append(Check("batchnorm", label, worst <= 1e-10, f"max |Δ| {worst:.1e}", "≤ 1e-10", worst))

    # d2l convention against its formulas: momentum 0.9 keeps the old value, biased variance throughout.
    shape = (8, 3, 4, 4)
    ours = BatchNorm(3, num_dims=4, convention="d2l", dtype=torch.float64)
    mean_ref, var_ref = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    worst = 0.0
    for _ in range(steps):
        x = torch.randn(shape, generator=generator, dtype=torch.float64) * 2 + 0.5
        mu = x.mean(dim=(0, 2, 3))
        var = ((x - mu[None, :, None, None]) ** 2).mean(dim=(0, 2, 3))
        expected = (x - mu[None, :, None, None]) / torch.sqrt(var[None, :, None, None] + 1e-5)
        worst = max(worst, _max_error(ours(x), expected))
        mean_ref, var_ref = 0.9 * mean_ref + 0.1 * mu, 0.9 * var_ref + 0.1 * var
    worst = max(worst, _max_error(ours.running_mean, mean_ref), _max_error(ours.running_var, var_ref))
    rows.append(
        Check("batchnorm", f"d2l convention vs its formulas on {_shape(shape)}, {steps} steps, float64",
              worst <= 1e-10, f"max |Δ| {worst:.1e}", "≤ 1e-10", worst)  # fmt: skip
    )

    # The two LeNets with BatchNorm compute the same function once parameters are copied.
    torch.manual_seed(seed)
    ours_net, torch_net = get_model("lenet5_bn").double(), get_model("lenet5_bn_torch").double()
    ours_net.load_state_dict(torch_net.state_dict())
    x = torch.randn(8, 1, 28, 28, generator=generator, dtype=torch.float64)
    worst = max(_max_error(ours_net(x), torch_net(x)), _max_error(ours_net.eval()(x), torch_net.eval()(x)))
    rows.append(
        Check("batchnorm", "lenet5_bn vs lenet5_bn_torch outputs (train and eval), float64",
              worst <= 1e-10, f"max |Δ| {worst:.1e}", "≤ 1e-10", worst)  # fmt: skip
    )
    return rows


@dataclass(frozen=True)
class CheckCase:
    """A named group of checks, run on demand: the tests parametrise over these, the report runs them all.

    Attributes:
        id: a test id, e.g. ``"figures[vgg16]"``.
        run: computes the group's :class:`Check` rows.
        slow: takes seconds (a large network run for real); the tests mark it ``slow``.
    """

    id: str
    run: Callable[[], list[Check]]
    slow: bool = False


#: Per-network check families, in report order, and whether they run the network for real.
_PER_NETWORK: tuple[tuple[str, Callable[[list[str]], list[Check]], bool], ...] = (
    ("shapes", shape_checks, False),
    ("figures", figure_checks, False),
    ("counts", counter_checks, True),
    ("torchvision", torchvision_checks, True),
    ("outputs", output_checks, True),
)
#: Parameters above which building and running a network for real takes about a second or more.
SLOW_PARAMS = 30_000_000


def _is_heavy(name: str) -> bool:
    """Declared, not measured: a network with a quick-benchmark input (it is large) or many parameters."""
    spec = get_spec(name)
    params = [f.value for f in spec.figures if f.quantity == "params" and not f.options]
    return spec.bench_input_shape is not None or any(p > SLOW_PARAMS for p in params)


def check_cases(models: list[str] | None = None) -> list[CheckCase]:
    """Every check of the report as lazily run groups, in report order.

    Example:
        >>> [c.id for c in check_cases(["lenet5"])][:3]
        ['shapes[lenet5]', 'blocks', 'figures[lenet5]']
    """
    names = models or list_models()
    heavy = {name: _is_heavy(name) for name in names}
    cases = []
    for family, function, runs in _PER_NETWORK:
        for name in names:
            spec = get_spec(name)
            if (family == "figures" and not spec.figures) or (family == "torchvision" and not spec.torchvision):
                continue
            cases.append(CheckCase(f"{family}[{name}]", partial(function, [name]), slow=runs and heavy[name]))
        if family == "shapes":
            cases.append(CheckCase("blocks", block_checks))
        if family == "counts":
            cases.append(CheckCase("batchnorm", batchnorm_checks))
    cases.append(CheckCase("seed bugs", seed_bug_checks))
    return cases


def all_checks(models: list[str] | None = None) -> list[Check]:
    """Every check of the report, in report order."""
    return [row for case in check_cases(models) for row in case.run()]
