"""MNIST, Fashion-MNIST (through torchvision) and a synthetic stand-in with the same shapes.

The real sets are read from IDX files under ``root`` (``root/MNIST/raw/train-images-idx3-ubyte`` and so on,
torchvision's layout); ``download=True`` fetches them for users with a network. Nothing is fetched by default.

Example:
    >>> train, test = make_loaders("synthetic", batch_size=64)
    >>> next(iter(train))[0].shape
    torch.Size([64, 1, 28, 28])
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from archbench.errors import ArchbenchError

# Per-set normalisation (mean, std) of the training images, the figures torchvision's examples use.
DATASETS = {
    "mnist": (0.1307, 0.3081),
    "fashion-mnist": (0.2860, 0.3530),
    "synthetic": (0.0, 1.0),
}


def synthetic_dataset(
    size: int = 512, image_size: int = 28, num_classes: int = 10, seed: int = 0, template_seed: int = 1234
) -> TensorDataset:
    """A learnable random set: each class is a fixed random template plus noise.

    Args:
        size: number of samples.
        image_size: H = W.
        num_classes: number of labels.
        seed: draws the labels and the noise.
        template_seed: draws the class templates (keep it equal for a training and a test split).

    Returns:
        A ``TensorDataset`` of (1, H, W) float images and int64 labels.
    """
    templates = torch.randn(num_classes, 1, image_size, image_size, generator=torch.Generator().manual_seed(template_seed))
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(num_classes, (size,), generator=generator)
    images = templates[labels] + 0.5 * torch.randn(size, 1, image_size, image_size, generator=generator)
    return TensorDataset(images, labels)


def load_dataset(name: str, root: str | Path, *, train: bool, download: bool = False, resize: int | None = None) -> Dataset:
    """One split of MNIST or Fashion-MNIST as torchvision reads it, normalised.

    Args:
        name: ``"mnist"`` or ``"fashion-mnist"``.
        root: folder holding ``MNIST/raw`` or ``FashionMNIST/raw``.
        train: the training split (else the test split).
        download: fetch the files if missing (needs a network).
        resize: resize images to this size (the seeds train ResNet-18 at 96).

    Raises:
        ArchbenchError: if the name is unknown or the files are missing.
    """
    from torchvision import datasets, transforms

    classes = {"mnist": datasets.MNIST, "fashion-mnist": datasets.FashionMNIST}
    if name not in classes:
        raise ArchbenchError(f"Unknown dataset {name!r}; choose one of {', '.join(DATASETS)}.")
    steps = [transforms.Resize(resize)] if resize else []
    steps += [transforms.ToTensor(), transforms.Normalize(*((m,) for m in DATASETS[name]))]
    try:
        return classes[name](str(root), train=train, download=download, transform=transforms.Compose(steps))
    except RuntimeError as err:
        folder = Path(root) / classes[name].__name__ / "raw"
        raise ArchbenchError(
            f"The {name} files are not in {folder} ({err}); put the four IDX files there or pass --download "
            "(needs a network)."
        ) from None


def make_loaders(
    name: str,
    *,
    root: str | Path = "data",
    batch_size: int = 64,
    download: bool = False,
    resize: int | None = None,
    synthetic_size: int = 512,
    seed: int = 0,
) -> tuple[DataLoader, DataLoader]:
    """Training and test loaders for a dataset name from :data:`DATASETS`.

    Example:
        >>> train, test = make_loaders("synthetic", batch_size=32, synthetic_size=64)
        >>> len(train.dataset), len(test.dataset)
        (64, 64)
    """
    if name == "synthetic":
        size = resize or 28
        train_set = synthetic_dataset(synthetic_size, size, seed=seed)
        test_set = synthetic_dataset(synthetic_size, size, seed=seed + 1)  # same templates, new samples
    else:
        train_set = load_dataset(name, root, train=True, download=download, resize=resize)
        test_set = load_dataset(name, root, train=False, download=download, resize=resize)
    generator = torch.Generator().manual_seed(seed)
    return (
        DataLoader(train_set, batch_size=batch_size, shuffle=True, generator=generator),
        DataLoader(test_set, batch_size=batch_size),
    )

