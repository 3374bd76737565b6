"""How much work one image costs a network: parameters, forward MACs, and the FLOPs of each mode.

Conventions (DESIGN.md): MACs are the multiply-accumulates of convolutions and linear layers only;
FLOPs = 2 × MACs. The ``forward`` mode does the forward FLOPs; ``train_step`` does forward + backward
(about 3× forward: the backward computes input and weight gradients, except the input gradient of the
first layer, which nothing needs).

Example:
    >>> import archbench
    >>> w = model_work(archbench.get_model("lenet5"), (1, 28, 28))
    >>> w.params, w.flops_per_image("forward") == 2 * w.macs_per_image
    (61706, True)
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

MODES: tuple[str, ...] = ("forward", "train_step")


@dataclass(frozen=True)
class Work:
    """The work of one image through a network.

    Attributes:
        params: trainable and frozen parameters.
        macs_per_image: forward conv + linear multiply-accumulates.
        train_flops_per_image: forward + backward conv + linear FLOPs of one training image.
    """

    params: int
    macs_per_image: int
    train_flops_per_image: int

    def flops_per_image(self, mode: str) -> int:
        """FLOPs of one image in ``mode``: 2 × MACs for ``forward``, forward + backward for ``train_step``."""
        if mode == "forward":
            return 2 * self.macs_per_image
        if mode == "train_step":
            return self.train_flops_per_image
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}.")


def model_work(model: nn.Module, input_shape: tuple[int, ...]) -> Work:
    """Parameters, forward MACs and training FLOPs per image of ``model`` at one sample's ``input_shape``.

    Forward MACs come from the analytic counter; the backward MACs from ``FlopCounterMode`` over one
    forward and backward pass at batch 1 (in eval mode, so a BatchNorm over features works at batch 1;
    conv and linear work does not depend on the mode). The model's gradients are left untouched.

    Args:
        model: the network (on the CPU, float32).
        input_shape: one sample, (C, H, W).
    """
    from archbench.analysis.counts import count_macs, count_params

    counted = count_macs(model, (1, *input_shape), method="analytic", backward=True)
    assert counted.backward is not None
    return Work(
        params=count_params(model),
        macs_per_image=counted.total,
        train_flops_per_image=2 * (counted.total + counted.backward),
    )
