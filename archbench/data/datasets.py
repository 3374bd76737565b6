"""MNIST, Fashion-MNIST (through torchvision) and a synthetic stand-in with the same shapes.

The real sets are read from IDX files under ``root`` (``root/MNIST/raw/train-images-idx3-ubyte`` and so on,
torchvision's layout); ``download=True`` fetches them for users with a network. Nothing is fetched by default.

Example:
    >>> train, test = make_loaders("synthetic", batch_size=64)
    >>> next(iter(train))[0].shape
    torch.Size([64, 1, 28, 28])
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from archbench.errors import ArchbenchError, DataFileError, OptionTypeError

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


#: IDX magic numbers: two zero bytes, the element type (0x08, unsigned byte) and the rank.
_IDX_MAGIC = {"images": 0x00000803, "labels": 0x00000801}
_NUM_CLASSES = 10  # both MNIST and Fashion-MNIST


def _split_files(folder: Path, train: bool) -> tuple[Path, Path]:
    prefix = "train" if train else "t10k"
    return folder / f"{prefix}-images-idx3-ubyte", folder / f"{prefix}-labels-idx1-ubyte"


def _read_idx_header(path: Path, kind: str) -> tuple[tuple[int, ...], int]:
    """The dimensions an IDX file declares and its size in bytes, after checking the magic and the size."""
    rank = _IDX_MAGIC[kind] & 0xFF
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            header = handle.read(4 + 4 * rank)
    except IsADirectoryError:
        raise DataFileError(f"{path} is a folder, not an IDX {kind} file; put the IDX file there.") from None
    except OSError as err:
        raise DataFileError(f"{path} cannot be read ({err.strerror or err}).") from None
    if len(header) < 4:
        raise DataFileError(f"{path} is truncated: {size} bytes, not even the 4-byte IDX magic number.")
    magic = int.from_bytes(header[:4], "big")
    if magic != _IDX_MAGIC[kind]:
        raise DataFileError(
            f"{path} is not an IDX {kind} file: magic number 0x{magic:08x}, expected 0x{_IDX_MAGIC[kind]:08x} "
            f"(unsigned bytes, {rank} dimension{'s' if rank > 1 else ''}); replace it with the original file."
        )
    if len(header) < 4 + 4 * rank:
        raise DataFileError(f"{path} is truncated: {size} bytes, its header alone needs {4 + 4 * rank}.")
    dims = tuple(int.from_bytes(header[4 + 4 * i : 8 + 4 * i], "big") for i in range(rank))
    expected = 4 + 4 * rank + math.prod(dims)
    if size < expected:
        raise DataFileError(
            f"{path} is truncated: {size:,} bytes, but its header ({'×'.join(map(str, dims))}) needs {expected:,}; "
            "download or copy it again."
        )
    if size > expected:
        raise DataFileError(
            f"{path} has {size - expected:,} bytes more than its header ({'×'.join(map(str, dims))}) declares; "
            "replace it with the original file."
        )
    if dims[0] == 0:
        raise DataFileError(f"{path} holds no {kind}; replace it with a file that has some.")
    return dims, size


def check_idx_files(folder: str | Path, *, train: bool, image_size: int | None = None) -> int:
    """Check one split's pair of IDX files before torchvision reads them.

    Args:
        folder: the ``raw`` folder holding ``train-images-idx3-ubyte`` and the three others.
        train: check the training pair (else the ``t10k`` test pair).
        image_size: the H = W the images must have (None: any).

    Returns:
        The number of images.

    Raises:
        DataFileError: naming the file and what is wrong: missing, a folder, truncated or too long, a wrong
            magic number, no images, image and label counts that differ, images of the wrong size, or a
            label outside 0-9.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        ...         _ = (Path(tmp) / name).write_bytes(bytes(4))
        ...     check_idx_files(tmp, train=True)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        archbench.errors.DataFileError: .../train-images-idx3-ubyte is not an IDX images file: magic number 0x00000000, ...
    """
    folder = Path(folder)
    images_path, labels_path = _split_files(folder, train)
    missing = [p.name for p in (images_path, labels_path) if not p.exists()]
    if missing:
        raise DataFileError(
            f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not in {folder}; put the four "
            "uncompressed IDX files there or pass --download (needs a network)."
        )
    (count, height, width), _ = _read_idx_header(images_path, "images")
    (labels,), _ = _read_idx_header(labels_path, "labels")
    if labels != count:
        raise DataFileError(
            f"{images_path} holds {count:,} images but {labels_path} holds {labels:,} labels; "
            "use the pair of files that belong together."
        )
    if image_size is not None and (height, width) != (image_size, image_size):
        raise DataFileError(
            f"{images_path} holds {height}×{width} images but the network takes {image_size}×{image_size}; "
            "use files with images of that size."
        )
    values = labels_path.read_bytes()[8:]
    worst = max(values)
    if worst >= _NUM_CLASSES:
        raise DataFileError(
            f"{labels_path} has label {worst} at position {values.index(worst):,}; labels must be 0-"
            f"{_NUM_CLASSES - 1}, so the file is damaged or not a label file."
        )
    return count


def load_dataset(
    name: str,
    root: str | Path,
    *,
    train: bool,
    download: bool = False,
    resize: int | None = None,
    image_size: int | None = None,
) -> Dataset:
    """One split of MNIST or Fashion-MNIST as torchvision reads it, normalised, after checking its files.

    Args:
        name: ``"mnist"`` or ``"fashion-mnist"``.
        root: folder holding ``MNIST/raw`` or ``FashionMNIST/raw``.
        train: the training split (else the test split).
        download: fetch the files if missing (needs a network).
        resize: resize images to this size (the seeds train ResNet-18 at 96).
        image_size: without ``resize``, the H = W the network takes; files with other sizes are refused.

    Raises:
        ArchbenchError: if the name is unknown; :class:`~archbench.errors.DataFileError` if the files are
            missing or damaged (see :func:`check_idx_files`).
    """
    from torchvision import datasets, transforms

    classes = {"mnist": datasets.MNIST, "fashion-mnist": datasets.FashionMNIST}
    if name not in classes:
        raise ArchbenchError(f"Unknown dataset {name!r}; choose one of {', '.join(DATASETS)}.")
    if not isinstance(root, (str, os.PathLike)):
        raise OptionTypeError(f"root must be a folder path, got {root!r}.")
    if Path(root).exists() and not Path(root).is_dir():
        raise DataFileError(f"The data folder {root} is a file; give the folder that holds {classes[name].__name__}/raw.")
    folder = Path(root) / classes[name].__name__ / "raw"
    steps = [transforms.Resize(resize)] if resize else []
    steps += [transforms.ToTensor(), transforms.Normalize(*((m,) for m in DATASETS[name]))]
    if download:
        try:
            classes[name](str(root), train=train, download=True)
        except (RuntimeError, OSError) as err:
            raise DataFileError(f"Downloading {name} into {folder} failed ({err}); put the four IDX files there.") from None
    check_idx_files(folder, train=train, image_size=None if resize else image_size)
    return classes[name](str(root), train=train, download=False, transform=transforms.Compose(steps))


def _check_count(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise OptionTypeError(f"{name} must be a whole number, got {value!r} of type {type(value).__name__}.")
    if value < 1:
        raise ArchbenchError(f"{name} must be at least 1, got {value}.")


def make_loaders(
    name: str,
    *,
    root: str | Path = "data",
    batch_size: int = 64,
    download: bool = False,
    resize: int | None = None,
    image_size: int | None = None,
    synthetic_size: int = 512,
    seed: int = 0,
) -> tuple[DataLoader, DataLoader]:
    """Training and test loaders for a dataset name from :data:`DATASETS`.

    A last training batch of a single image is dropped (BatchNorm cannot normalise one image in training
    mode); any other last batch is kept.

    Args:
        name: a key of :data:`DATASETS`.
        root: folder with ``MNIST/raw`` or ``FashionMNIST/raw``.
        batch_size: images per batch.
        download: fetch the real sets if missing.
        resize: resize the real sets' images to this size; also the synthetic images' size.
        image_size: without ``resize``, the H = W the network takes (files with other sizes are refused).
        synthetic_size: images per synthetic split.
        seed: shuffling and the synthetic draw.

    Example:
        >>> train, test = make_loaders("synthetic", batch_size=32, synthetic_size=64)
        >>> len(train.dataset), len(test.dataset)
        (64, 64)
        >>> len(make_loaders("synthetic", batch_size=7, synthetic_size=64)[0])  # 9 batches of 7, one image dropped
        9
    """
    if name not in DATASETS:
        raise ArchbenchError(f"Unknown dataset {name!r}; choose one of {', '.join(DATASETS)}.")
    _check_count("batch_size", batch_size)
    _check_count("synthetic_size", synthetic_size)
    for option, value in (("resize", resize), ("image_size", image_size)):
        if value is not None:
            _check_count(option, value)
    if name == "synthetic":
        size = resize or image_size or 28
        train_set = synthetic_dataset(synthetic_size, size, seed=seed)
        test_set = synthetic_dataset(synthetic_size, size, seed=seed + 1)  # same templates, new samples
    else:
        train_set = load_dataset(name, root, train=True, download=download, resize=resize, image_size=image_size)
        test_set = load_dataset(name, root, train=False, download=download, resize=resize, image_size=image_size)
    if len(train_set) < 2:
        raise DataFileError(f"The {name} training set has {len(train_set)} image; training needs at least 2.")
    generator = torch.Generator().manual_seed(seed)
    return (
        DataLoader(train_set, batch_size=batch_size, shuffle=True, generator=generator,
                   drop_last=len(train_set) % batch_size == 1),
        DataLoader(test_set, batch_size=batch_size),
    )  # fmt: skip
