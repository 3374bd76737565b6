"""Parameter and MAC counts: three independent counters, closed forms, the seeds' and torchvision's figures.

Every expected number comes from outside archbench's counters: a closed form written here, a figure quoted
by the seeds or the issue, torchvision's metadata, or one of the other two counters (fvcore counts a MAC as
one flop, ``torch.utils.flop_counter`` as two).
"""

from __future__ import annotations

import math

import pytest
import torch
import torchvision
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import archbench
from registered import registered
from archbench.analysis import bottleneck_comparison, count_macs, count_params, dense_layer_cost
from archbench.cli import main
from archbench.errors import ArchbenchError, ShapeError

MODELS = registered()  # the big networks marked slow
METHODS = ("analytic", "fvcore", "torch")


# --- closed forms, written here from the definitions ------------------------------------------------------
def out_size(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """PyTorch's documented Conv/Pool output length: floor((size + 2p - d(k-1) - 1) / s) + 1."""
    return math.floor((size + 2 * padding - dilation * (kernel - 1) - 1) / stride) + 1


def conv_macs(cin: int, cout: int, k: int, out_hw: int, batch: int = 1, groups: int = 1) -> int:
    """N × C_out × H_out × W_out × (C_in / groups) × k × k."""
    return batch * cout * out_hw * out_hw * (cin // groups) * k * k


def conv_params(cin: int, cout: int, k: int, bias: bool = True) -> int:
    return cout * cin * k * k + (cout if bias else 0)


def examples(share: float) -> settings:
    """A share of the active profile's examples (the counters run the model, so the default runs fewer)."""
    return settings(max_examples=max(10, round(settings.default.max_examples * share)))


def counts(model: nn.Module | str, shape: tuple[int, ...] | None = None) -> dict[str, int]:
    """Total MACs by each method."""
    return {m: count_macs(model, shape, m).total for m in METHODS}


# --- every registered network: the three counters agree, and two agree with closed forms -------------------
@pytest.mark.parametrize("name", MODELS)
def test_three_counters_agree_on_every_network(name: str) -> None:
    model, spec = archbench.get_model(name), archbench.get_spec(name)
    results = {m: count_macs(model, (1, *spec.input_shape), m) for m in METHODS}
    assert results["analytic"].total == results["fvcore"].total == results["torch"].total > 0
    assert results["analytic"].meta_fallback == ()  # every layer and block of ours has a rule
    for result in results.values():
        assert result.output_shape == (1, spec.num_classes)
        assert result.params == sum(p.numel() for p in model.parameters())
    # layer by layer, too: each conv/linear call costs the same in all three
    per_layer = {m: {r.name: r.macs for r in res.layers if r.macs} for m, res in results.items()}
    assert per_layer["analytic"] == per_layer["fvcore"] == per_layer["torch"]


def test_lenet5_macs_from_closed_form() -> None:
    """d2l LeNet: conv 1→6 k5 p2 on 28², conv 6→16 k5 on 14², then 400→120→84→10."""
    expected = conv_macs(1, 6, 5, 28) + conv_macs(6, 16, 5, 10) + 400 * 120 + 120 * 84 + 84 * 10
    result = count_macs("lenet5")
    assert result.total == expected == 416_520
    assert result.flops == 2 * expected
    shapes = {r.name: r.output_shape for r in result.layers}
    assert shapes["pool1"] == (1, 6, 14, 14) and shapes["pool2"] == (1, 16, 5, 5) and shapes["flatten"] == (1, 400)


def test_mnist_net_macs_from_closed_form() -> None:
    """PyTorch's MNIST example: conv 1→10 k5 on 28², conv 10→20 k5 on 12², 320→50→10."""
    expected = conv_macs(1, 10, 5, 24) + conv_macs(10, 20, 5, 8) + 320 * 50 + 50 * 10
    assert count_macs("mnist_net").total == expected


def test_inception_block_macs_from_closed_form() -> None:
    """InceptionA(10) at 12×12: four branches that keep the size, concatenated to 88 channels."""
    from archbench.layers import InceptionA

    hw, c = 12, 10
    expected = (
        conv_macs(c, 16, 1, hw)
        + conv_macs(c, 16, 1, hw) + conv_macs(16, 24, 5, hw)
        + conv_macs(c, 16, 1, hw) + conv_macs(16, 24, 3, hw) + conv_macs(24, 24, 3, hw)
        + conv_macs(c, 24, 1, hw)
    )  # fmt: skip
    result = count_macs(InceptionA(c), (1, c, hw, hw))
    assert result.total == expected
    assert result.output_shape == (1, 88, hw, hw)
    assert result.other_ops["concat"] == 88 * hw * hw


# --- hypothesis: random convolutions and linear layers ------------------------------------------------------
@st.composite
def conv_configs(draw: st.DrawFn) -> tuple[nn.Module, tuple[int, ...], int]:
    dims = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 3))
    cin, cout = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    padding = tuple(draw(st.integers(0, 2)) for _ in range(dims))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(dims))
    span = [d * (k - 1) + 1 - 2 * p for k, p, d in zip(kernel, padding, dilation)]
    limit = 9 if dims < 3 else 5
    sizes = tuple(max(s, 1) + draw(st.integers(0, limit)) for s in span)
    batch = draw(st.integers(1, 3))
    conv_cls = (nn.Conv1d, nn.Conv2d, nn.Conv3d)[dims - 1]
    conv = conv_cls(cin, cout, kernel, stride, padding, dilation, groups, bias=draw(st.booleans()))
    out = [out_size(s, k, st_, p, d) for s, k, st_, p, d in zip(sizes, kernel, stride, padding, dilation)]
    expected = batch * cout * math.prod(out) * (cin // groups) * math.prod(kernel)
    return conv, (batch, cin, *sizes), expected


@examples(0.6)
@given(conv_configs())
def test_counters_agree_on_random_convolutions(config: tuple[nn.Module, tuple[int, ...], int]) -> None:
    conv, shape, expected = config
    assert counts(conv, shape) == dict.fromkeys(METHODS, expected)


@examples(0.4)
@given(
    st.lists(st.integers(1, 4), min_size=0, max_size=2),
    st.integers(1, 3),
    st.integers(1, 40),
    st.integers(1, 40),
)
def test_counters_agree_on_random_linear_layers(lead: list[int], batch: int, fin: int, fout: int) -> None:
    shape = (batch, *lead, fin)
    assert counts(nn.Linear(fin, fout), shape) == dict.fromkeys(METHODS, batch * math.prod(lead) * fin * fout)


@examples(0.25)
@given(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4), st.integers(1, 3), st.integers(1, 2), st.integers(2, 6))
def test_counters_agree_on_transposed_convolutions(
    groups: int, cin_g: int, cout_g: int, k: int, s: int, hw: int
) -> None:
    conv = nn.ConvTranspose2d(groups * cin_g, groups * cout_g, k, stride=s, groups=groups)
    expected = groups * cin_g * hw * hw * cout_g * k * k  # every input pixel meets every kernel tap once
    assert counts(conv, (1, groups * cin_g, hw, hw)) == dict.fromkeys(METHODS, expected)


@pytest.mark.parametrize("padding", ["same", "valid"])
def test_string_padding(padding: str) -> None:
    conv = nn.Conv2d(3, 4, 3, padding=padding)
    hw = 8 if padding == "same" else 6
    assert counts(conv, (2, 3, 8, 8)) == dict.fromkeys(METHODS, conv_macs(3, 4, 3, hw, batch=2))


def test_unbatched_convolution_counts_one_sample() -> None:
    conv = nn.Conv2d(3, 4, 3)
    result = count_macs(conv, (3, 8, 8))
    assert result.output_shape == (4, 6, 6)
    assert counts(conv, (3, 8, 8)) == dict.fromkeys(METHODS, conv_macs(3, 4, 3, 6))


# --- torchvision's ResNet-18 -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def torchvision_resnet18() -> nn.Module:
    return torchvision.models.resnet18()


@pytest.fixture(scope="module")
def our_resnet18() -> nn.Module:
    """archbench's ResNet-18 in its torchvision-compatible configuration."""
    return archbench.get_model("resnet18", in_channels=3, num_classes=1000, variant="torchvision")


def test_resnet18_macs_match_torchvision_metadata(our_resnet18: nn.Module) -> None:
    """torchvision publishes 1.814 "GFLOPS" for ResNet-18 at 224×224; they are conv + linear MACs."""
    ops = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["_ops"]  # metadata in code, no download
    result = count_macs(our_resnet18, (1, 3, 224, 224))
    assert round(result.total / 1e9, 3) == ops
    assert result.total == 1_814_073_344  # the fvcore measurement of torchvision's model
    assert result.params == 11_689_512


def test_resnet18_macs_match_torchvision_model_counted_by_fvcore_and_torch(
    our_resnet18: nn.Module, torchvision_resnet18: nn.Module
) -> None:
    shape = (1, 3, 224, 224)
    analytic = count_macs(our_resnet18, shape).total
    fvcore = count_macs(torchvision_resnet18, shape, "fvcore")
    torch_count = count_macs(torchvision_resnet18, shape, "torch")
    assert analytic == fvcore.total == torch_count.total
    # fvcore's own grand total also counts BatchNorm and pooling (the issue quotes 1,819,065,856)
    assert fvcore.total + sum(fvcore.other_ops.values()) == 1_819_065_856
    # torchvision's classes declare no composition: the analytic counter learns how their forward wires the
    # layers from one meta-device pass, and counts every conv and linear by its closed form (nothing executes)
    theirs = count_macs(torchvision_resnet18, shape)
    assert theirs.total == analytic and theirs.meta_fallback == ("ResNet",)
    assert {r.counted_by for r in theirs.layers if r.macs} == {"meta"}
    assert [r.output_shape for r in theirs.layers if r.type == "Linear"] == [(1, 1000)]


def test_torchvision_bottleneck_block_is_counted_by_its_layers_rules() -> None:
    """torchvision's Bottleneck: 1×1 to the width, strided 3×3, 1×1 to 4× planes, projected shortcut."""
    from torchvision.models.resnet import Bottleneck

    down = nn.Sequential(nn.Conv2d(32, 64, 1, stride=2, bias=False), nn.BatchNorm2d(64))
    block = Bottleneck(32, 16, stride=2, downsample=down)
    result = count_macs(block, (2, 32, 8, 8))
    expected = (
        conv_macs(32, 16, 1, 8, batch=2) + conv_macs(16, 16, 3, 4, batch=2)
        + conv_macs(16, 64, 1, 4, batch=2) + conv_macs(32, 64, 1, 4, batch=2)
    )  # fmt: skip
    assert result.meta_fallback == ("Bottleneck",) and result.output_shape == (2, 64, 4, 4)
    assert result.total == expected == count_macs(block, (2, 32, 8, 8), "torch").total
    assert {r.counted_by for r in result.layers if r.macs} == {"meta"}


# --- shape-independent sanity ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
def test_macs_scale_linearly_with_batch_and_params_do_not(name: str) -> None:
    model, sample = archbench.get_model(name), archbench.get_spec(name).input_shape
    one, five = count_macs(model, (1, *sample)), count_macs(model, (5, *sample))
    assert five.total == 5 * one.total
    assert five.other_ops == {k: 5 * v for k, v in one.other_ops.items()}
    assert five.params == one.params == count_params(model)


def test_batch_linearity_holds_for_the_executing_counters_too() -> None:
    for method in ("fvcore", "torch"):
        one = count_macs("residual_net", (1, 1, 28, 28), method).total
        assert count_macs("residual_net", (3, 1, 28, 28), method).total == 3 * one


def test_analytic_counter_never_runs_the_network() -> None:
    model = archbench.get_model("resnet18")

    def refuse(*_: object) -> None:
        raise AssertionError("the analytic counter ran a module")

    for module in model.modules():
        module.register_forward_pre_hook(refuse)
    result = count_macs(model, (2, 1, 224, 224))
    assert result.output_shape == (2, 10) and result.meta_fallback == ()
    assert {r.counted_by for r in result.layers} == {"rule"}


# --- other ops: labelled, per element, not in .total --------------------------------------------------------
def test_other_ops_follow_the_per_element_convention() -> None:
    model = nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.MaxPool2d(2), nn.AdaptiveAvgPool2d((3, 2))
    )
    result = count_macs(model, (1, 1, 10, 11))  # conv -> 2×8×9; pool -> 2×4×4; adaptive -> 2×3×2
    conv_out = 2 * 8 * 9

    def windows(n_in: int, n_out: int) -> int:  # PyTorch's adaptive windows [floor(i·in/out), ceil((i+1)·in/out))
        return sum(math.ceil((i + 1) * n_in / n_out) - math.floor(i * n_in / n_out) for i in range(n_out))

    assert result.total == conv_macs(1, 2, 3, 1) * 8 * 9
    assert result.other_ops == {
        "batchnorm": 2 * conv_out,
        "activation": conv_out,
        "pooling": 2 * 4 * 4 * (2 * 2) + 2 * windows(4, 3) * windows(4, 2),
    }


def test_residual_adds_are_tallied_apart() -> None:
    from archbench.layers import Residual

    block = Residual(3, 6, use_1x1conv=True, stride=2)
    result = count_macs(block, (4, 3, 6, 6))
    assert result.output_shape == (4, 6, 3, 3)
    assert result.other_ops["add"] == 4 * 6 * 3 * 3
    expected = conv_macs(3, 6, 3, 3, batch=4) + conv_macs(6, 6, 3, 3, batch=4) + conv_macs(3, 6, 1, 3, batch=4)
    assert result.total == expected == count_macs(block, (4, 3, 6, 6), "torch").total


@pytest.mark.parametrize("name", ["lenet5_bn", "lenet5_bn_torch"])
def test_batchnorm_layers_have_a_rule(name: str) -> None:
    result = count_macs(name)
    assert result.meta_fallback == ()
    norms = [r for r in result.layers if r.name.startswith("norm")]
    assert [r.other_kind for r in norms] == ["batchnorm"] * 4
    assert [r.other_ops for r in norms] == [2 * 6 * 24 * 24, 2 * 16 * 8 * 8, 2 * 120, 2 * 84]


# --- a module without a rule falls back to the meta device, and says so --------------------------------------
class Doubler(nn.Module):
    """A custom block: no rule, so its children's shapes come from a meta-device forward."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 2 * self.act(self.conv(x))


class Scale(nn.Module):
    """A custom leaf without a rule."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 3 * x


def test_module_without_a_rule_falls_back_to_meta_and_is_named() -> None:
    model = nn.Sequential(nn.Conv2d(1, 3, 3), Doubler(), Scale(), nn.Flatten(), nn.Linear(4 * 4 * 4, 5))
    result = count_macs(model, (2, 1, 8, 8))
    assert result.meta_fallback == ("1", "2")
    by_name = {r.name: r for r in result.layers}
    assert by_name["1.conv"].counted_by == "meta" and by_name["1.conv"].output_shape == (2, 4, 4, 4)
    assert by_name["0"].counted_by == by_name["4"].counted_by == "rule"
    expected = conv_macs(1, 3, 3, 6, batch=2) + conv_macs(3, 4, 3, 4, batch=2) + 2 * 64 * 5
    assert result.total == expected == count_macs(model, (2, 1, 8, 8), "fvcore").total
    assert all(p.device.type == "cpu" for p in model.parameters())  # the model itself never left the CPU


# --- backward ----------------------------------------------------------------------------------------------
def test_backward_is_about_twice_the_forward() -> None:
    """Input and weight gradients cost one forward each; the first conv needs no input gradient."""
    model = archbench.get_model("lenet5_bn_torch")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = count_macs(model, (4, 1, 28, 28), backward=True)
    first_conv = conv_macs(1, 6, 5, 24, batch=4)
    assert result.backward == 2 * result.total - first_conv
    assert result.backward_convention == 2 * result.total
    assert count_macs(model, (4, 1, 28, 28), "torch", backward=True).backward == result.backward
    assert all(p.grad is None for p in model.parameters()) and model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # running stats untouched


# --- the seeds' cost arguments -----------------------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_bottleneck_seed_figures(method: str) -> None:
    c = bottleneck_comparison(192, 16, 32, size=28, kernel=5, method=method)
    assert c.direct_macs == 120_422_400 == conv_macs(192, 32, 5, 28)
    assert c.bottleneck_macs == 12_443_648 == conv_macs(192, 16, 1, 28) + conv_macs(16, 32, 5, 28)
    assert c.reduce_macs == conv_macs(192, 16, 1, 28)
    assert round(c.mac_ratio, 2) == 9.68
    assert c.direct_params == conv_params(192, 32, 5)
    assert c.bottleneck_params == conv_params(192, 16, 1) + conv_params(16, 32, 5)


@examples(0.2)
@given(st.integers(1, 64), st.integers(1, 16), st.integers(1, 64), st.integers(1, 16), st.sampled_from([1, 3, 5, 7]))
def test_bottleneck_for_any_channels(cin: int, mid: int, cout: int, size: int, kernel: int) -> None:
    c = bottleneck_comparison(cin, mid, cout, size=size, kernel=kernel)
    assert c.direct_macs == conv_macs(cin, cout, kernel, size)
    assert c.bottleneck_macs == conv_macs(cin, mid, 1, size) + conv_macs(mid, cout, kernel, size)
    assert c.bottleneck_params == conv_params(cin, mid, 1) + conv_params(mid, cout, kernel)


def test_bottleneck_refuses_an_even_kernel() -> None:
    with pytest.raises(ArchbenchError, match="kernel must be odd"):
        bottleneck_comparison(kernel=4)


@pytest.mark.parametrize("method", METHODS)
def test_dense_layer_on_a_megapixel_image(method: str) -> None:
    """The seeds: 1000×1000×3 → 256 is 768M weights, about 3 GB in float32 (built on meta: nothing allocated)."""
    cost = dense_layer_cost((3, 1000, 1000), 256, method=method)
    assert cost.weights == 3 * 1000 * 1000 * 256 == 768_000_000
    assert cost.params == 768_000_000 + 256
    assert cost.macs == cost.weights
    assert round(cost.float32_bytes / 1e9) == 3


# --- count_params and errors -------------------------------------------------------------------------------
def test_count_params_takes_a_name_or_a_module_and_counts_shared_weights_once() -> None:
    assert count_params("lenet5") == conv_params(1, 6, 5) + conv_params(6, 16, 5) + 48_120 + 10_164 + 850
    shared = nn.Linear(4, 4)
    assert count_params(nn.Sequential(shared, nn.ReLU(), shared)) == 20
    with pytest.raises(ArchbenchError, match="lazy"):
        count_params(nn.LazyLinear(3))


def test_unknown_method_is_one_sentence() -> None:
    with pytest.raises(ArchbenchError, match="Unknown counting method 'flops'; use one of analytic, fvcore, torch"):
        count_macs("lenet5", method="flops")


@pytest.mark.parametrize("method", METHODS)
def test_input_that_does_not_fit_names_the_layer(method: str) -> None:
    with pytest.raises(ShapeError, match=r"Layer 'fc1' \(Linear\) expects 400 input features but receives 576"):
        count_macs("lenet5", (1, 1, 32, 32), method)


def test_fvcore_is_silent(capfd: pytest.CaptureFixture[str], recwarn: pytest.WarningsRecorder) -> None:
    count_macs("inception_net", method="fvcore")
    out, err = capfd.readouterr()
    assert out == err == ""
    assert len(recwarn) == 0


# --- command line ------------------------------------------------------------------------------------------
def test_cli_flops_prints_the_table_and_totals(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["flops", "lenet5", "--batch", "2"]) == 0
    out = capsys.readouterr().out
    assert f"{2 * conv_macs(1, 6, 5, 28):,}" in out and "2×16×5×5" in out
    assert f"conv+linear MACs: {2 * 416_520:,} (FLOPs = 2 × MACs = {4 * 416_520:,})" in out
    assert "activation" in out and "pooling" in out and "parameters: 61,706" in out


@pytest.mark.parametrize("method", ["fvcore", "torch"])
def test_cli_flops_other_methods(method: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["flops", "mnist_net", "--method", method, "--backward"]) == 0
    out = capsys.readouterr().out
    assert f"{method} counter" in out and "conv+linear MACs: 480,500" in out and "backward MACs" in out


def test_cli_bottleneck_seed_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bottleneck", "--in", "192", "--mid", "16", "--out", "32", "--size", "28", "--kernel", "5"]) == 0
    out = capsys.readouterr().out
    assert "120,422,400" in out and "12,443,648" in out and "9.68×" in out
    assert f"{conv_params(192, 32, 5):,}" in out and f"{conv_params(192, 16, 1) + conv_params(16, 32, 5):,}" in out


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["flops", "lenet5", "--input-size", "1", "20", "20"], "expects 400 input features but receives 144"),
        (["flops", "lenet5", "--method", "ptflops"], "invalid choice"),
        (["flops", "lenot5"], "Unknown model 'lenot5'"),
        (["bottleneck", "--kernel", "4"], "kernel must be odd"),
        (["bottleneck", "--in", "0"], "sizes must be positive"),
    ],
)
def test_cli_errors_are_one_line(argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        status = main(argv)
    except SystemExit as exit_:
        status = exit_.code
    err = capsys.readouterr().err
    assert status == 2
    assert fragment in err and len(err.strip().splitlines()) == 1
