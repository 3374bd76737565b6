"""Measured memory of a training step and an inference forward, from the allocator's own accounting.

- **CUDA**: ``torch.cuda.max_memory_allocated`` after ``torch.cuda.reset_peak_memory_stats``, minus what
  was allocated before the model was copied. It counts the caching allocator's blocks (sizes rounded up to
  512 bytes) and everything allocated through it, cuDNN/cuBLAS workspaces included; not the CUDA context,
  nor memory cached but free.
- **CPU**: ``torch.profiler`` with ``profile_memory=True``. On this torch version it records one
  ``[memory]`` event per allocation and per free of PyTorch's CPU allocator (``c10::CPUAllocator``), with
  the signed byte count, also inside operators (oneDNN's buffers and reorders go through it too). Summing
  the events in time order gives the live bytes at every moment. Everything measured (the copy of the
  model, its optimizer state, the input) is allocated inside the profiled region, so the curve starts from
  zero and nothing is added by hand. It cannot see memory allocated outside that allocator: by ``malloc``
  in third-party code (e.g. OpenMP/BLAS thread buffers), Python objects, or the pages the C library keeps
  after a free (what the process's resident size shows). Frees of memory allocated before profiling began
  have no known size and are ignored (PyTorch prints a warning).

What the CPU numbers show (``archbench memory NAME --batch 32 --measure``, ``reports/memory.md``): between
operators the live bytes equal the prediction's live tensors to within 1 % for every registered network
(in inference they can be lower: ``max_pool2d`` makes and drops its indices inside one operator, and the
prediction counts them). The full peak adds what oneDNN's convolutions copy into channel-padded blocked
layouts inside the kernel; :mod:`archbench.memory.kernels` predicts those copies, and the full peaks then
agree to within 5 % (the rest is per-thread scratch of a weight gradient). With oneDNN off
(``torch.backends.mkldnn.flags(enabled=False)``) the full peak of ``lenet5_relu`` and ``mnist_net`` at batch 32
is the live tensors alone; ``tests/test_memory.py`` checks both.

The step measured is the same steady-state step :func:`archbench.estimate_memory` predicts: a copy of the
model, its optimizer state made by one step on zero gradients, gradients set to ``None``, then forward, loss,
backward and optimizer step; then an eval-mode ``torch.no_grad()`` forward.

Example:
    >>> m = measure_memory("lenet5", (2, 1, 28, 28), optimizer="momentum")
    >>> m.device, m.peak_train > 3 * 246824
    ('cpu', True)
"""

from __future__ import annotations

import contextlib
import copy
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from archbench.memory.estimate import (
    check_optimizer,
    make_optimizer,
    resolve_dtype,
    training_loss,
)
from archbench.errors import ArchbenchError

Shape = tuple[int, ...]
_TRAIN = "archbench::train_step"
_INFERENCE = "archbench::inference"


@dataclass(frozen=True)
class MemoryMeasurement:
    """Measured peak bytes of one training step and one inference forward.

    Attributes:
        input_shape: the input, batch included.
        optimizer: the optimizer of the step.
        device: ``"cpu"`` or ``"cuda"``.
        method: how it was measured (``"profiler"`` or ``"max_memory_allocated"``).
        peak_train: most bytes live during the step (model copy, optimizer state and input included).
        peak_inference: most bytes live during the forward (model copy and input included).
        peak_train_between_ops: CPU only (else ``None``): the most bytes live between operators, leaving out
            what an operator allocates and frees before it returns (oneDNN's reordered copies, scratch space):
            the live tensors, which is what :func:`archbench.estimate_memory` predicts.
        peak_inference_between_ops: the same for the forward.
    """

    input_shape: Shape
    optimizer: str
    device: str
    method: str
    peak_train: int
    peak_inference: int
    peak_train_between_ops: int | None = None
    peak_inference_between_ops: int | None = None


def check_device(device: str) -> str:
    """``device`` if it is ``"cpu"``, or ``"cuda"`` with a CUDA device present.

    Raises:
        ArchbenchError: for another name, or ``"cuda"`` without a CUDA device.
    """
    if device not in ("cpu", "cuda"):
        raise ArchbenchError(f"Unknown device {device!r}; use cpu or cuda.")
    if device == "cuda" and not torch.cuda.is_available():
        raise ArchbenchError("No CUDA device is available to measure on; use --device cpu.")
    return device


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _steps(model: nn.Module, shape: Shape, optimizer: str, kind: str, device: str, dtype: torch.dtype,
           mark: Callable[[str], object]) -> None:  # fmt: skip
    """Copy the model, warm the optimizer state, then one marked training step and one marked forward."""
    work = copy.deepcopy(model).to(device=device, dtype=dtype)
    x = torch.zeros(shape, device=device, dtype=dtype)
    trainable = [p for p in work.parameters() if p.requires_grad]
    opt = make_optimizer(optimizer, trainable, foreach=device == "cuda") if trainable else None
    if opt is not None:
        for p in trainable:
            p.grad = torch.zeros_like(p)
        opt.step()
        opt.zero_grad(set_to_none=True)
    work.train()
    with mark(_TRAIN):
        loss = training_loss(work(x), kind)
        if loss.requires_grad:
            loss.backward()
        if opt is not None:
            opt.step()
        _sync(device)
    del loss
    if opt is not None:
        opt.zero_grad(set_to_none=True)
    del opt
    work.eval()
    with mark(_INFERENCE), torch.no_grad():
        out = work(x)
        _sync(device)
    del out


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Keep the profiler's native start/stop lines (kineto's ``USDT: … profiler_start``) off the terminal.

    They are written to file descriptor 2 by C++ code, so ``sys.stderr`` cannot catch them; Python exceptions
    still propagate (and are printed by whoever handles them, after the descriptor is restored).
    """
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _profiled_peaks(run: Callable[[Callable[[str], object]], None]) -> dict[str, tuple[int, int]]:
    """Run ``run(mark)`` under the CPU profiler; per ``mark(name)`` region, the most live bytes at any event
    and the most live bytes between operators (sampled outside every outermost ``aten::`` op and at its end,
    so allocations an operator frees before it returns are not in it)."""
    from torch.profiler import ProfilerActivity, profile, record_function

    with _native_stderr_silenced(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        run(record_function)
    events = prof.profiler.kineto_results.events()
    # One timeline: memory events (+/- bytes) and the ends of the outermost aten ops (0, a sample point).
    timeline = [(e.start_ns(), 0, e.nbytes(), False) for e in events if e.name() == "[memory]" and e.device_type().name == "CPU"]
    ops = sorted((e.start_ns(), e.end_ns()) for e in events if e.name().startswith("aten::"))
    outer_end = -1
    outer: list[tuple[int, int]] = []
    for start, end in ops:
        if start >= outer_end:  # not nested in the previous outermost op
            outer.append((start, end))
            outer_end = end
    timeline += [(end, 1, 0, True) for _, end in outer]
    timeline.sort()
    inside = [False] * len(timeline)
    j = 0
    for i, (when, _, _, _) in enumerate(timeline):  # is each memory event inside an outermost op?
        while j < len(outer) and outer[j][1] < when:
            j += 1
        inside[i] = j < len(outer) and outer[j][0] <= when < outer[j][1]
    regions = {e.name(): (e.start_ns(), e.end_ns()) for e in events if e.name() in (_TRAIN, _INFERENCE)}
    peaks = {}
    for name, (start, end) in regions.items():
        level, peak, between = 0, -1, -1
        for (when, _, nbytes, boundary), in_op in zip(timeline, inside):
            if when > end:
                break
            if when >= start and peak < 0:
                peak = between = level  # what was live when the region began
            level += nbytes
            if when >= start:
                peak = max(peak, level)
                if boundary or not in_op:
                    between = max(between, level)
        peaks[name] = (level, level) if peak < 0 else (peak, between)
    return peaks


def _cuda_peaks(run: Callable[[Callable[[str], object]], None]) -> dict[str, tuple[int, None]]:
    import contextlib

    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    peaks: dict[str, tuple[int, None]] = {}

    @contextlib.contextmanager
    def mark(name: str):  # noqa: ANN202
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        yield
        torch.cuda.synchronize()
        peaks[name] = (torch.cuda.max_memory_allocated() - before, None)

    run(mark)
    return peaks


def measure_memory(
    model_or_ref: nn.Module | str,
    input_shape: Sequence[int] | None = None,
    *,
    optimizer: str = "sgd",
    device: str = "cpu",
    dtype: str | torch.dtype | None = None,
) -> MemoryMeasurement:
    """Measure the peak bytes of a real training step and inference forward (see the module docstring).

    Args:
        model_or_ref: a module, a registered name, ``package.module:attr`` or ``path/file.py:attr``; a module
            is copied, so its weights do not change.
        input_shape: the shape handed to ``forward``, batch included (default: the registered input, batch 1).
        optimizer: ``"sgd"``, ``"momentum"`` or ``"adam"``.
        device: ``"cpu"`` (profiler) or ``"cuda"`` (``max_memory_allocated``).
        dtype: parameters and input in this floating dtype (default: the model's own).

    Raises:
        ArchbenchError: an unknown optimizer, dtype or device, or CUDA absent.
        ShapeError: an input the network does not take (checked on the meta device before any real work).
    """
    from archbench.memory.estimate import resolve_for_memory, shape_fits

    check_optimizer(optimizer)
    check_device(device)
    model, shape, kind, name = resolve_for_memory(model_or_ref, input_shape)
    dt = resolve_dtype(dtype, model)
    shape_fits(model, shape, name)

    def run(mark: Callable[[str], object]) -> None:
        _steps(model, shape, optimizer, kind, device, dt, mark)

    if device == "cuda":
        peaks, method = _cuda_peaks(run), "max_memory_allocated"
    else:
        peaks, method = _profiled_peaks(run), "profiler"
    (train, train_between), (inference, inference_between) = peaks[_TRAIN], peaks[_INFERENCE]
    return MemoryMeasurement(shape, optimizer, device, method, train, inference, train_between, inference_between)


def peak_memory_during(fn: Callable[[], object], device: str = "cpu") -> int | None:
    """Most bytes allocated above the level at the call's start while ``fn()`` runs.

    CUDA: ``max_memory_allocated`` after a reset, minus ``memory_allocated`` before. CPU: the profiler's
    memory events (see the module docstring); this slows ``fn`` down, so call it on one extra, untimed call.
    Returns ``None`` for another device.

    Example:
        >>> peak_memory_during(lambda: torch.zeros(1000) + 1) >= 4000
        True
    """
    if device == "cuda":
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - before
    if device != "cpu":
        return None

    def run(mark: Callable[[str], object]) -> None:
        with mark(_TRAIN):
            fn()

    return _profiled_peaks(run)[_TRAIN][0]
