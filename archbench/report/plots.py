"""PNG plots for the reports (matplotlib, Agg backend: no display needed).

Each function returns the PNG as bytes so the caller decides where and how (atomically) to write it.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from torch import nn  # noqa: E402


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def synthetic_digit(digit: int = 7, size: int = 28) -> torch.Tensor:
    """A digit-like grey image drawn offline with matplotlib's bundled font (no dataset needed).

    Args:
        digit: the character 0-9 to draw.
        size: height and width in pixels.

    Returns:
        A (1, 1, size, size) float tensor in [0, 1], white strokes on black, like MNIST.

    Example:
        >>> synthetic_digit(3).shape
        torch.Size([1, 1, 28, 28])
    """
    fig = Figure(figsize=(1, 1), dpi=size)
    fig.patch.set_facecolor("black")
    fig.text(0.5, 0.5, str(digit), color="white", fontsize=54, ha="center", va="center", weight="bold")
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba(), dtype=np.float32)  # (size, size, 4)
    grey = rgba[..., :3].mean(axis=2) / 255.0
    return torch.from_numpy(grey.copy()).reshape(1, 1, size, size)  # (H, W) -> (1, 1, H, W)


def first_conv_activations(model: nn.Module, image: torch.Tensor, count: int = 2) -> list[tuple[str, torch.Tensor]]:
    """Outputs of the first ``count`` convolution layers (in call order) for one image.

    Args:
        model: the network (put in eval mode for the pass; the mode is restored).
        image: a (1, C, H, W) input.
        count: how many convolution layers to capture.

    Returns:
        ``(layer name, (C_out, H, W) activation)`` pairs.
    """
    captured: list[tuple[str, torch.Tensor]] = []
    handles = []
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):

            def hook(_m: nn.Module, _a: tuple, out: torch.Tensor, name: str = name) -> None:
                if len(captured) < count:
                    captured.append((name, out.detach()[0].cpu()))

            handles.append(module.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(image)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return captured


def feature_maps_png(image: torch.Tensor, activations: Sequence[tuple[str, torch.Tensor]], title: str) -> bytes:
    """A grid: the input, then one row of channel tiles per captured layer."""
    columns = max(int(a.shape[0]) for _, a in activations)
    fig, axes = plt.subplots(len(activations) + 1, columns, figsize=(columns * 0.9, (len(activations) + 1) * 1.1))
    axes = np.atleast_2d(axes)
    for ax in axes.flat:
        ax.axis("off")
    axes[0, 0].imshow(image[0, 0].cpu().numpy(), cmap="gray")
    axes[0, 0].set_title("input", fontsize=7)
    for row, (name, act) in enumerate(activations, start=1):
        for channel in range(act.shape[0]):
            axes[row, channel].imshow(act[channel].numpy(), cmap="viridis")
        axes[row, 0].set_title(f"{name} ({act.shape[0]}×{act.shape[1]}×{act.shape[2]})", fontsize=7, loc="left")
    fig.suptitle(title, fontsize=9)
    return _png(fig)


def bar_chart_png(values: Mapping[str, float], ylabel: str, title: str) -> bytes:
    """A labelled bar chart (e.g. MACs with and without the 1×1 bottleneck)."""
    fig, ax = plt.subplots(figsize=(5, 3.2))
    bars = ax.bar(list(values), list(values.values()), color=["#c44e52", "#4c72b0", "#55a868", "#8172b2"][: len(values)])
    ax.bar_label(bars, labels=[f"{v:,.0f}" for v in values.values()], fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.margins(y=0.15)
    return _png(fig)


def line_plot_png(
    series: Mapping[str, Sequence[tuple[float, float]]],
    xlabel: str,
    ylabel: str,
    title: str,
    *,
    log: bool = True,
    lines: bool = True,
) -> bytes:
    """One line (or scatter) per series of (x, y) points, log-log by default."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for label, points in sorted(series.items()):
        xs, ys = zip(*sorted(points)) if points else ((), ())
        ax.plot(xs, ys, marker="o", linestyle="-" if lines else "none", label=label)
        if not lines:
            for x, y in zip(xs, ys):
                ax.annotate(label, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    if log:
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    if lines:
        ax.legend(fontsize=7)
    return _png(fig)
