"""Timing pieces every benchmark shares: device selection, a synchronising clock, threads, warm-up.

CUDA kernels run asynchronously, so a host clock read right after a launch measures the launch, not the
work. :class:`SyncTimer` synchronises the device before *every* clock read; pytest-benchmark does not, so
the benchmarks hand it over with ``@pytest.mark.benchmark(timer=SyncTimer(device))``. On the CPU the same
timer is plain :func:`time.perf_counter`.

A :class:`Backend` bundles what the harness needs from a device (where tensors go, how to synchronise, the
peak-memory counters), so tests can exercise the CUDA code path on a CPU-only machine with a fake backend.

Example:
    >>> backend = make_backend(resolve_device("auto"))
    >>> timer = SyncTimer(backend.device)
    >>> start = timer(); end = timer(); end >= start
    True
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from archbench.errors import ArchbenchError

DEVICE_CHOICES: tuple[str, ...] = ("cpu", "cuda", "auto")


def resolve_device(name: str) -> torch.device:
    """Turn ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` into a :class:`torch.device`.

    ``"auto"`` picks the first CUDA device when one is present and the CPU otherwise.

    Args:
        name: the device name.

    Returns:
        The device.

    Raises:
        ArchbenchError: for an unknown name, or a CUDA device on a machine without CUDA.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    if name == "auto":
        return torch.device("cuda:0") if torch.cuda.is_available() else torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ArchbenchError(f"Unknown device {name!r}; use one of {', '.join(DEVICE_CHOICES)}.") from None
    if device.type not in ("cpu", "cuda"):
        raise ArchbenchError(f"Device {name!r} is not supported; use one of {', '.join(DEVICE_CHOICES)}.")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ArchbenchError(
                f"Device {name!r} was asked for but CUDA is not available on this machine; use --device cpu or auto."
            )
        index = 0 if device.index is None else device.index
        if index >= torch.cuda.device_count():
            raise ArchbenchError(
                f"Device {name!r} does not exist: this machine has {torch.cuda.device_count()} CUDA device(s)."
            )
        device = torch.device("cuda", index)
    return device


class SyncTimer:
    """A clock that waits for the device to finish its queued work before it reads the time.

    Args:
        device: the device whose work is timed; the CPU needs no synchronisation.
        synchronize: what to call before each reading; defaults to ``torch.cuda.synchronize(device)``
            for a CUDA device (looked up at call time) and nothing for the CPU.

    Example:
        >>> calls = []
        >>> timer = SyncTimer("cuda", synchronize=lambda: calls.append(1))
        >>> _ = timer(); len(calls)
        1
    """

    def __init__(self, device: torch.device | str, synchronize: Callable[[], None] | None = None) -> None:
        self.device = torch.device(device)
        if synchronize is None and self.device.type == "cuda":
            synchronize = self._cuda_synchronize
        self._synchronize = synchronize
        # pytest-benchmark records the timer by name in its JSON ("options.timer").
        self.__name__ = f"SyncTimer({self.device})" if synchronize else "perf_counter"

    def _cuda_synchronize(self) -> None:
        torch.cuda.synchronize(self.device)

    def __call__(self) -> float:
        if self._synchronize is not None:
            self._synchronize()
        return time.perf_counter()

    def __repr__(self) -> str:
        return self.__name__


@dataclass(frozen=True)
class Backend:
    """What the harness needs from a device.

    Attributes:
        name: ``"cpu"`` or ``"cuda"``: what the results are recorded under.
        device: where models and tensors are placed.
        synchronize: waits for queued device work (a no-op on the CPU).
        reset_peak_memory: resets the allocator's peak counter; None where there is none (CPU).
        peak_memory_bytes: the allocator's peak since the last reset; None where there is none.
        release_memory: frees cached blocks after an out-of-memory error.
    """

    name: str
    device: torch.device
    synchronize: Callable[[], None] = field(default=lambda: None)
    reset_peak_memory: Callable[[], None] | None = None
    peak_memory_bytes: Callable[[], int] | None = None
    release_memory: Callable[[], None] = field(default=lambda: None)

    @property
    def measures_memory(self) -> bool:
        """True where the device has a peak-memory counter (CUDA)."""
        return self.peak_memory_bytes is not None

    def timer(self) -> SyncTimer:
        """A :class:`SyncTimer` that synchronises with this backend."""
        return SyncTimer(self.device, synchronize=self.synchronize)


def make_backend(device: torch.device | str) -> Backend:
    """The :class:`Backend` of a real device; CUDA functions are looked up when called.

    Example:
        >>> make_backend("cpu").measures_memory
        False
    """
    device = torch.device(device)
    if device.type == "cpu":
        return Backend("cpu", device)
    if device.type != "cuda":
        raise ArchbenchError(f"Device {str(device)!r} is not supported; use one of {', '.join(DEVICE_CHOICES)}.")

    def release() -> None:
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()

    return Backend(
        "cuda",
        device,
        synchronize=lambda: torch.cuda.synchronize(device),
        reset_peak_memory=lambda: torch.cuda.reset_peak_memory_stats(device),
        peak_memory_bytes=lambda: int(torch.cuda.max_memory_allocated(device)),
        release_memory=release,
    )


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS, Windows
        return os.cpu_count() or 1


def set_threads(threads: int | None = None) -> int:
    """Set torch's intra-op thread count explicitly and return it.

    Args:
        threads: the count; None means every usable core.

    Raises:
        ArchbenchError: for a count below 1.

    Example:
        >>> set_threads(1)
        1
    """
    threads = usable_cores() if threads is None else threads
    if threads < 1:
        raise ArchbenchError(f"The thread count must be at least 1, got {threads}; pass e.g. --threads 2.")
    torch.set_num_threads(threads)
    return torch.get_num_threads()


def warm_up(
    step: Callable[[], object],
    timer: Callable[[], float],
    *,
    setup: Callable[[], object] | None = None,
    min_calls: int = 3,
    min_seconds: float = 0.25,
    max_calls: int = 1000,
) -> float:
    """Run ``step`` at its exact input until warm; return the median seconds per call after the first.

    The first call (lazy initialisation, cuDNN autotuning, ``torch.compile``) is excluded from both the
    estimate and ``min_seconds``. ``setup`` runs before each call, outside the clock, as in the timed rounds.

    Args:
        step: the timed work.
        timer: a clock that synchronises (:class:`SyncTimer`).
        setup: untimed per-call preparation (e.g. ``optimizer.zero_grad``).
        min_calls: calls after the first, at least.
        min_seconds: seconds of calls after the first, at least.
        max_calls: calls after the first, at most.

    Returns:
        The median duration of the calls after the first, in seconds.

    Example:
        >>> warm_up(lambda: sum(range(100)), time.perf_counter, min_seconds=0.0) > 0
        True
    """
    if setup is not None:
        setup()
    step()
    durations: list[float] = []
    while len(durations) < max_calls and (len(durations) < min_calls or sum(durations) < min_seconds):
        if setup is not None:
            setup()
        start = timer()
        step()
        durations.append(timer() - start)
    return statistics.median(durations) if durations else 0.0


def choose_rounds(seconds_per_call: float, max_time: float, min_rounds: int, max_rounds: int) -> int:
    """How many timed rounds fit in ``max_time``, clamped to ``[min_rounds, max_rounds]``.

    Example:
        >>> choose_rounds(0.01, 1.0, 5, 1000), choose_rounds(2.0, 1.0, 5, 1000)
        (100, 5)
    """
    wanted = math.ceil(max_time / seconds_per_call) if seconds_per_call > 0 else max_rounds
    return max(min_rounds, min(max_rounds, wanted))


def measure_peak_memory(
    step: Callable[[], object], backend: Backend, setup: Callable[[], object] | None = None
) -> int | None:
    """Peak allocated device memory of one untimed call of ``step``, in bytes (None on the CPU).

    Example:
        >>> measure_peak_memory(lambda: None, make_backend("cpu")) is None
        True
    """
    if not backend.measures_memory:
        return None
    if setup is not None:
        setup()
    backend.synchronize()
    assert backend.reset_peak_memory is not None and backend.peak_memory_bytes is not None
    backend.reset_peak_memory()
    step()
    backend.synchronize()
    return backend.peak_memory_bytes()
