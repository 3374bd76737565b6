"""Data loading on small IDX files written here, and a training run on the synthetic set."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch

import archbench
from archbench.data import load_dataset, make_loaders, synthetic_dataset
from archbench.registry import loss_for
from archbench.train import FitConfig, fit


def write_idx(path: Path, array: np.ndarray) -> None:
    """IDX format: two zero bytes, type 0x08 (unsigned byte), the rank, big-endian int32 sizes, then data."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def make_fake_mnist(root: Path, folder: str, n_train: int = 12, n_test: int = 6) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    raw = root / folder / "raw"
    images = rng.integers(0, 256, size=(n_train, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n_train, dtype=np.uint8)
    write_idx(raw / "train-images-idx3-ubyte", images)
    write_idx(raw / "train-labels-idx1-ubyte", labels)
    write_idx(raw / "t10k-images-idx3-ubyte", rng.integers(0, 256, size=(n_test, 28, 28), dtype=np.uint8))
    write_idx(raw / "t10k-labels-idx1-ubyte", rng.integers(0, 10, size=n_test, dtype=np.uint8))
    return images, labels


@pytest.mark.parametrize(("name", "folder"), [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_torchvision_reads_our_idx_files(tmp_path: Path, name: str, folder: str) -> None:
    images, labels = make_fake_mnist(tmp_path, folder)
    train = load_dataset(name, tmp_path, train=True)
    test = load_dataset(name, tmp_path, train=False)
    assert (len(train), len(test)) == (12, 6)
    image, label = train[3]
    mean, std = archbench.data.DATASETS[name]
    assert image.shape == (1, 28, 28) and label == int(labels[3])
    expected = (torch.from_numpy(images[3]).float() / 255 - mean) / std
    torch.testing.assert_close(image[0], expected)


def test_resize_for_networks_with_larger_inputs(tmp_path: Path) -> None:
    make_fake_mnist(tmp_path, "FashionMNIST")
    train_loader, _ = make_loaders("fashion-mnist", root=tmp_path, batch_size=4, resize=96)
    assert next(iter(train_loader))[0].shape == (4, 1, 96, 96)


def test_missing_dataset_says_where_and_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(archbench.ArchbenchError, match=r"not in .*MNIST.raw.*--download"):
        load_dataset("mnist", tmp_path, train=True)
    with pytest.raises(archbench.ArchbenchError, match="Unknown dataset 'cifar'"):
        load_dataset("cifar", tmp_path, train=True)


def test_synthetic_splits_share_templates_not_samples() -> None:
    a, b = synthetic_dataset(64, seed=0), synthetic_dataset(64, seed=1)
    assert a.tensors[0].shape == (64, 1, 28, 28)
    assert not torch.equal(a.tensors[0], b.tensors[0])


def test_loss_follows_the_output_kind() -> None:
    assert isinstance(loss_for("logits"), torch.nn.CrossEntropyLoss)
    assert isinstance(loss_for("log_probs"), torch.nn.NLLLoss)


def test_training_learns_the_synthetic_set() -> None:
    torch.manual_seed(0)
    train, test = make_loaders("synthetic", batch_size=32, synthetic_size=256)
    model = archbench.get_model("mnist_net")
    history = fit(model, train, test, FitConfig(epochs=3, lr=0.05, output="log_probs"))
    assert history[-1].train_loss < history[0].train_loss
    assert history[-1].test_accuracy > 0.3  # chance is 0.1


def test_train_command(capsys: pytest.CaptureFixture[str]) -> None:
    from archbench.cli import main

    assert main(["train", "mnist_net", "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert "loss for log_probs" in out and "epoch 1:" in out
