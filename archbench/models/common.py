"""What the model families share: the variant check and the d2l / torchvision fully connected head."""

from __future__ import annotations

from torch import nn

from archbench.errors import ArchbenchError

VARIANTS = ("d2l", "torchvision")


def check_variant(family: str, variant: str) -> None:
    """Refuse a variant other than ``"d2l"`` or ``"torchvision"`` in one sentence.

    Example:
        >>> check_variant("VGG", "keras")
        Traceback (most recent call last):
        ...
        archbench.errors.ArchbenchError: VGG variant must be 'd2l' or 'torchvision', got 'keras'.
    """
    if variant not in VARIANTS:
        raise ArchbenchError(f"{family} variant must be 'd2l' or 'torchvision', got {variant!r}.")


def mlp_head(features: int, hidden: int, num_classes: int, dropout: float, *, dropout_first: bool = False) -> nn.Sequential:
    """Two hidden fully connected layers with ReLU and dropout, then the classifier (AlexNet, VGG).

    ``dropout_first`` puts each dropout before its linear layer (torchvision's AlexNet); otherwise it follows
    the ReLU (d2l, and torchvision's VGG). Indices match torchvision's ``classifier`` in both orders.

    Example:
        >>> [type(m).__name__ for m in mlp_head(16, 8, 2, 0.5, dropout_first=True)][:2]
        ['Dropout', 'Linear']
    """
    layers: list[nn.Module] = []
    for fin in (features, hidden):
        block = [nn.Linear(fin, hidden), nn.ReLU(inplace=True)]
        layers += [nn.Dropout(dropout), *block] if dropout_first else [*block, nn.Dropout(dropout)]
    return nn.Sequential(*layers, nn.Linear(hidden, num_classes))
