"""Clocks, devices and threads: what every benchmark shares.

CUDA kernels run asynchronously, so a host clock read right after a launch measures the launch, not the
work. :class:`SyncTimer` synchronises the device before every reading (timm's ``cuda_timestamp``);
pytest-benchmark does not, so the suite hands it over with ``@pytest.mark.benchmark(timer=SyncTimer(device))``.

Example:
    >>> timer = SyncTimer("cpu")
    >>> timer() <= timer(), timer.__name__
    (True, 'perf_counter')
"""

from __future__ import annotations

import os
import time

import torch

from archbench.errors import ArchbenchError

DEVICE_CHOICES: tuple[str, ...] = ("cpu", "cuda", "auto")


def resolve_device(name: str) -> torch.device:
    """``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` (CUDA when present) as a :class:`torch.device`.

    Raises:
        ArchbenchError: for an unknown name, or CUDA on a machine without it.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    if name == "auto":
        return torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ArchbenchError(f"Unknown device {name!r}; use one of {', '.join(DEVICE_CHOICES)}.") from None
    if device.type not in ("cpu", "cuda"):
        raise ArchbenchError(f"Device {name!r} is not supported; use one of {', '.join(DEVICE_CHOICES)}.")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ArchbenchError(f"Device {name!r} was asked for but CUDA is not available on this machine; use cpu or auto.")
    return device


class SyncTimer:
    """``time.perf_counter`` that first waits for the device's queued work (CUDA); plain on the CPU."""

    def __init__(self, device: torch.device | str) -> None:
        self.device = torch.device(device)
        self.sync = self.device.type == "cuda"
        # pytest-benchmark records the timer by name in its JSON ("options.timer").
        self.__name__ = f"SyncTimer({self.device})" if self.sync else "perf_counter"

    def __call__(self) -> float:
        if self.sync:
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def __repr__(self) -> str:
        return self.__name__


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS, Windows
        return os.cpu_count() or 1


def set_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads explicitly (default: every usable core) and return the count.

    Example:
        >>> previous = torch.get_num_threads()
        >>> set_threads(1), set_threads(previous) == previous
        (1, True)
    """
    threads = usable_cores() if threads is None else threads
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ArchbenchError(f"The thread count must be a whole number of at least 1, got {threads!r}.")
    torch.set_num_threads(threads)
    return torch.get_num_threads()
