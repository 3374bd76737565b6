"""Training and evaluation: a plain SGD loop whose loss follows what the network outputs.

The loss comes from the network's :class:`~archbench.registry.ModelSpec`: ``CrossEntropyLoss`` for logits,
``NLLLoss`` for log-probabilities, so the seeds' softmax-into-CrossEntropyLoss mistake cannot happen here.

Example:
    >>> import archbench
    >>> from archbench.data import make_loaders
    >>> train, test = make_loaders("synthetic", batch_size=64, synthetic_size=256)
    >>> history = fit(archbench.get_model("lenet5_relu"), train, test, FitConfig(epochs=1, lr=0.05))
    >>> len(history)
    1
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader

from archbench.errors import ArchbenchError, OptionTypeError, TrainingError
from archbench.layers.batchnorm import BatchNorm
from archbench.registry import loss_for


@dataclass(frozen=True)
class FitConfig:
    """Training hyperparameters (the seeds use SGD with lr 0.01-0.9 and momentum 0-0.9)."""

    epochs: int = 1
    lr: float = 0.01
    momentum: float = 0.9
    device: str = "cpu"
    output: str = "logits"

    def __post_init__(self) -> None:
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int):
            raise OptionTypeError(f"epochs must be a whole number, got {self.epochs!r}.")
        if self.epochs < 1:
            raise ArchbenchError(f"epochs must be at least 1, got {self.epochs}.")
        largest = torch.finfo(torch.float32).max  # SGD multiplies float32 gradients by lr
        for name, low, high in (("lr", 0.0, largest), ("momentum", 0.0, 1.0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise OptionTypeError(f"{name} must be a number, got {value!r}.")
            if not math.isfinite(value) or not low <= value < high or (name == "lr" and value == 0):
                allowed = "a number above 0 and below 3.4e38, e.g. 0.01" if name == "lr" else "a number in [0, 1), e.g. 0.9"
                raise ArchbenchError(f"{name} must be {allowed}, got {value!r}.")
        if self.output not in ("logits", "log_probs"):
            raise ArchbenchError(f"output must be 'logits' or 'log_probs', got {self.output!r}.")
        try:
            device = torch.device(self.device)
        except (RuntimeError, TypeError):
            raise ArchbenchError(f"device must be a torch device such as 'cpu' or 'cuda', got {self.device!r}.") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ArchbenchError(f"device {self.device!r} asks for CUDA, which this machine does not have; use 'cpu'.")


@dataclass(frozen=True)
class EpochResult:
    """Mean training loss, training and test accuracy and wall time of one epoch."""

    epoch: int
    train_loss: float
    train_accuracy: float
    test_accuracy: float
    seconds: float


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, device: str = "cpu") -> float:
    """Accuracy of ``model`` on ``loader`` in eval mode (the mode is restored)."""
    was_training = model.training
    model.eval()
    correct = total = 0
    for images, labels in loader:
        predictions = model(images.to(device)).argmax(dim=1)
        correct += int((predictions == labels.to(device)).sum())
        total += labels.numel()
    model.train(was_training)
    return correct / max(total, 1)


def fit(
    model: nn.Module,
    train_loader: DataLoader,
    test_loader: DataLoader,
    config: FitConfig = FitConfig(),
    on_epoch: Callable[[EpochResult], None] | None = None,
) -> list[EpochResult]:
    """Train with SGD and report each epoch.

    Args:
        model: the network.
        train_loader: training batches.
        test_loader: evaluation batches.
        config: hyperparameters and the output kind that picks the loss.
        on_epoch: called with each :class:`EpochResult` (e.g. to print progress).

    Returns:
        One :class:`EpochResult` per epoch.

    Raises:
        OptionTypeError: for a model that is not an ``nn.Module`` or a config that is not a :class:`FitConfig`.
        TrainingError: up front, for a network with batch normalisation and a loader of one image per batch;
            during training, as soon as the loss is NaN or infinite (one sentence with the epoch and batch),
            or for a loader that gives no batches.
    """
    if not isinstance(model, nn.Module):
        raise OptionTypeError(f"fit needs an nn.Module to train, got {type(model).__name__}.")
    if not isinstance(config, FitConfig):
        raise OptionTypeError(f"fit needs a FitConfig, got {type(config).__name__}.")
    _check_batchnorm_batches(model, train_loader)
    model.to(config.device)
    criterion = loss_for(config.output)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
    history = []
    for epoch in range(1, config.epochs + 1):
        start, loss_sum, correct, seen = time.perf_counter(), 0.0, 0, 0
        model.train()
        for batch, (images, labels) in enumerate(train_loader, start=1):
            images, labels = images.to(config.device), labels.to(config.device)
            optimizer.zero_grad(set_to_none=True)
            outputs = model(images)
            loss = criterion(outputs, labels)
            value = float(loss.detach())
            if not math.isfinite(value):
                raise TrainingError(
                    f"The training loss became {value} at epoch {epoch}, batch {batch} "
                    f"(lr {config.lr}, momentum {config.momentum}); lower the learning rate."
                )
            loss.backward()
            optimizer.step()
            loss_sum += value * labels.numel()
            correct += int((outputs.argmax(dim=1) == labels).sum())
            seen += labels.numel()
        if seen == 0:
            raise TrainingError("The training loader gave no batches; give it at least one image.")
        result = EpochResult(
            epoch=epoch,
            train_loss=loss_sum / max(seen, 1),
            train_accuracy=correct / max(seen, 1),
            test_accuracy=evaluate(model, test_loader, config.device),
            seconds=time.perf_counter() - start,
        )
        history.append(result)
        if on_epoch is not None:
            on_epoch(result)
    return history


def _check_batchnorm_batches(model: nn.Module, loader: DataLoader) -> None:
    """Batch normalisation in training mode needs at least two images per batch: say so before training."""
    kinds = (nn.modules.batchnorm._BatchNorm, BatchNorm)
    has_batchnorm = any(isinstance(m, kinds) for m in model.modules())
    if has_batchnorm and getattr(loader, "batch_size", None) == 1:
        raise TrainingError(
            "The network has batch normalisation, which cannot normalise a batch of one image in training mode; "
            "use a batch size of at least 2."
        )
