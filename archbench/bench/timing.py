"""The clock every benchmark shares, and the cores a run may use.

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
