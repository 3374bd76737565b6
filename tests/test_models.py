"""Every registered network, against facts computed here from closed forms and the seeds."""

from __future__ import annotations

import pytest
import torch

import archbench
from archbench.analysis import trace_shapes

MODELS = archbench.list_models()


# --- closed-form parameter counts, written from the architecture descriptions (DESIGN.md, seeds) ---
def conv(cin: int, cout: int, k: int, bias: bool = True) -> int:
    return cout * cin * k * k + (cout if bias else 0)


def linear(fin: int, fout: int) -> int:
    return fin * fout + fout


def bn(c: int) -> int:
    return 2 * c  # weight and bias; running statistics are buffers


def inception_a(c: int) -> int:
    one_by_one = conv(c, 16, 1)
    five = conv(c, 16, 1) + conv(16, 24, 5)
    three = conv(c, 16, 1) + conv(16, 24, 3) + conv(24, 24, 3)
    pool = conv(c, 24, 1)
    return one_by_one + five + three + pool


def basic_block(cin: int, cout: int, project: bool, bias: bool, shortcut_bn: bool) -> int:
    total = conv(cin, cout, 3, bias) + bn(cout) + conv(cout, cout, 3, bias) + bn(cout)
    if project:
        total += conv(cin, cout, 1, bias) + (bn(cout) if shortcut_bn else 0)
    return total


def resnet18_params(cin: int, classes: int, bias: bool, shortcut_bn: bool) -> int:
    total = conv(cin, 64, 7, bias) + bn(64)
    widths = [64, 64, 128, 256, 512]
    for stage in range(1, 5):
        cin_s, cout = widths[stage - 1], widths[stage]
        total += basic_block(cin_s, cout, stage > 1, bias, shortcut_bn) + basic_block(cout, cout, False, bias, shortcut_bn)
    return total + linear(512, classes)


LENET_HEAD_400 = linear(400, 120) + linear(120, 84) + linear(84, 10)
LENET_HEAD_256 = linear(256, 120) + linear(120, 84) + linear(84, 10)
LENET_CONVS = conv(1, 6, 5) + conv(6, 16, 5)
LENET_BNS = bn(6) + bn(16) + bn(120) + bn(84)

EXPECTED_PARAMS = {
    "lenet5": LENET_CONVS + LENET_HEAD_400,
    "lenet5_classic": LENET_CONVS + LENET_HEAD_400,
    "lenet5_relu": LENET_CONVS + LENET_HEAD_256,
    "lenet5_bn": LENET_CONVS + LENET_HEAD_256 + LENET_BNS,
    "lenet5_bn_torch": LENET_CONVS + LENET_HEAD_256 + LENET_BNS,
    "mnist_net": conv(1, 10, 5) + conv(10, 20, 5) + linear(320, 50) + linear(50, 10),
    "inception_net": conv(1, 10, 5) + inception_a(10) + conv(88, 20, 5) + inception_a(20) + linear(1408, 10),
    "residual_net": conv(1, 16, 5) + 2 * conv(16, 16, 3) + conv(16, 32, 5) + 2 * conv(32, 32, 3) + linear(512, 10),
    "resnet18": resnet18_params(1, 10, bias=True, shortcut_bn=False),
}

# The seeds' own figures (DESIGN.md table): flattened features of each network.
SEED_FLAT_FEATURES = {
    "lenet5": 16 * 5 * 5,
    "lenet5_classic": 16 * 5 * 5,
    "lenet5_relu": 16 * 4 * 4,
    "lenet5_bn": 16 * 4 * 4,
    "lenet5_bn_torch": 16 * 4 * 4,
    "mnist_net": 20 * 4 * 4,
    "inception_net": 88 * 4 * 4,
    "residual_net": 32 * 4 * 4,
    "resnet18": 512,
}


def test_registry_holds_exactly_the_seed_networks() -> None:
    assert MODELS == sorted(EXPECTED_PARAMS)


@pytest.mark.parametrize("name", MODELS)
def test_forward_gives_batch_by_classes(name: str) -> None:
    spec = archbench.get_spec(name)
    model = archbench.get_model(name).eval()
    for sample in (spec.input_shape, *spec.other_input_shapes):
        with torch.no_grad():
            out = model(torch.randn(3, *sample))
        assert out.shape == (3, spec.num_classes) == (3, 10)
        assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", MODELS)
def test_parameter_count_matches_closed_form(name: str) -> None:
    model = archbench.get_model(name)
    assert sum(p.numel() for p in model.parameters()) == EXPECTED_PARAMS[name]


@pytest.mark.parametrize("name", MODELS)
def test_flat_features_claim_holds(name: str) -> None:
    spec = archbench.get_spec(name)
    assert spec.flat_features == SEED_FLAT_FEATURES[name]
    rows = trace_shapes(name, (2, *spec.input_shape))
    flattened = [r for r in rows if r.type == "Flatten"]
    assert [r.output_shape for r in flattened] == [(2, spec.flat_features)]
    first_linear = next(r for r in rows if r.type == "Linear")
    assert first_linear.input_shape == (2, spec.flat_features)


@pytest.mark.parametrize("name", MODELS)
def test_claimed_layer_shapes_hold(name: str) -> None:
    spec = archbench.get_spec(name)
    sample = spec.facts_input_shape or spec.input_shape
    outputs = {r.name: r.output_shape for r in trace_shapes(name, (1, *sample))}
    for layer, shape in spec.layer_shapes.items():
        assert outputs[layer] == (1, *shape), layer


@pytest.mark.parametrize("name", MODELS)
def test_trace_visits_every_parameter_once(name: str) -> None:
    model = archbench.get_model(name)
    rows = trace_shapes(model, (1, *archbench.get_spec(name).input_shape))
    seen = {r.name: r.own_params for r in rows}
    assert sum(seen.values()) == sum(p.numel() for p in model.parameters())


def test_inception_blocks_output_88_channels() -> None:
    rows = trace_shapes("inception_net")
    blocks = [r for r in rows if r.type == "InceptionA"]
    assert [r.output_shape[1] for r in blocks] == [16 + 24 + 24 + 24] * 2


def test_lenet5_seed_shapes() -> None:
    """Seed 000: 1×28×28 → 6×28×28 → 6×14×14 → 16×10×10 → 16×5×5 → 400."""
    rows = {r.name: r.output_shape for r in trace_shapes("lenet5", (1, 1, 28, 28))}
    assert rows["conv1"] == (1, 6, 28, 28)
    assert rows["pool1"] == (1, 6, 14, 14)
    assert rows["conv2"] == (1, 16, 10, 10)
    assert rows["pool2"] == (1, 16, 5, 5)
    assert rows["flatten"] == (1, 400)


def test_resnet18_seed_shapes_at_224() -> None:
    """Seed 004's printed shapes for a 1×1×224×224 input."""
    rows = {r.name: r.output_shape for r in trace_shapes("resnet18", (1, 1, 224, 224))}
    expected = [(64, 56, 56), (64, 56, 56), (128, 28, 28), (256, 14, 14), (512, 7, 7), (512, 1, 1)]
    got = [rows[k][1:] for k in ("maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool")]
    assert got == expected
    assert rows["fc"] == (1, 10)


def test_resnet18_torchvision_variant_matches_torchvision() -> None:
    torchvision = pytest.importorskip("torchvision")
    ours = archbench.get_model("resnet18", in_channels=3, num_classes=1000, variant="torchvision")
    theirs = torchvision.models.resnet18()  # random init: nothing is downloaded
    our_state, their_state = ours.state_dict(), theirs.state_dict()
    assert list(our_state) == list(their_state)
    assert all(our_state[k].shape == their_state[k].shape for k in our_state)
    total = sum(p.numel() for p in ours.parameters())
    assert total == sum(p.numel() for p in theirs.parameters()) == 11_689_512
    assert total == resnet18_params(3, 1000, bias=False, shortcut_bn=True)
    ours.load_state_dict(their_state)
    ours.eval(), theirs.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x))


def test_model_options_are_passed_and_checked() -> None:
    assert archbench.get_model("lenet5", num_classes=7)(torch.zeros(1, 1, 28, 28)).shape == (1, 7)
    with pytest.raises(archbench.ArchbenchError, match="takes no option 'classes'.*num_classes"):
        archbench.get_model("lenet5", classes=7)
