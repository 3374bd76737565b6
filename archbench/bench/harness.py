"""Run one :class:`~archbench.bench.cases.BenchCase` through a pytest-benchmark fixture.

The steps, in order, all at the case's exact input shape:

1. build the network and a fixed random batch on the device (channels-last and ``torch.compile`` if asked);
2. warm up (a first untimed call, then at least ``warmup_seconds``) with a synchronising clock;
3. on CUDA, measure the peak memory of one more untimed call;
4. time ``rounds`` calls with ``benchmark.pedantic``; ``optimizer.zero_grad(set_to_none=True)`` runs as
   pedantic's ``setup``, outside the timed region;
5. check the last output is finite, then fill ``benchmark.extra_info`` (:func:`~archbench.bench.results.make_extra_info`).

``forward`` runs in eval mode under ``torch.inference_mode``; ``train_step`` is forward, loss, backward and an
SGD step (with a ``GradScaler`` under float16 autocast). A CUDA out-of-memory error at any step is caught:
the case comes back with status ``"oom"`` and the session goes on.

Example:
    >>> from archbench.bench.cases import enumerate_cases
    >>> case = enumerate_cases(SuiteOptions(devices=("cpu",), models="lenet5", batches=(8,)))[0]
    >>> outcome = run_case(benchmark, case, SuiteOptions())  # doctest: +SKIP
    >>> outcome.extra_info["images_per_s"] > 0  # doctest: +SKIP
    True
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn

from archbench.bench.cases import DTYPES, BenchCase, SuiteOptions, build_model, work_of
from archbench.bench.results import make_extra_info
from archbench.bench.timing import (
    Backend,
    choose_rounds,
    make_backend,
    measure_peak_memory,
    resolve_device,
    set_threads,
    warm_up,
)
from archbench.errors import ArchbenchError


class BenchmarkFixture(Protocol):
    """What the harness uses of pytest-benchmark's ``benchmark`` fixture."""

    extra_info: dict[str, Any]
    stats: Any

    def pedantic(self, target: Callable[..., Any], **kwargs: Any) -> Any: ...


@dataclass
class Workload:
    """A prepared case: the timed ``step``, its untimed ``setup`` and the context both run in."""

    model: nn.Module
    step: Callable[[], torch.Tensor]
    setup: Callable[[], None] | None
    inference: bool

    @contextlib.contextmanager
    def context(self) -> Iterator[None]:
        """``torch.inference_mode`` for the forward mode; nothing for a training step."""
        with torch.inference_mode() if self.inference else contextlib.nullcontext():
            yield


@dataclass(frozen=True)
class Outcome:
    """What happened to a case: ``status`` ``"ok"`` or ``"oom"``, its extra_info, and the error if any."""

    status: str
    extra_info: dict[str, Any]
    error: str | None = None


def _loss_for(output: str) -> nn.Module:
    from archbench.train import loss_for

    return loss_for(output)


def prepare(case: BenchCase, backend: Backend) -> Workload:
    """Build the network, a fixed random batch and the step function of ``case`` on ``backend``."""
    device = backend.device
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(case.batch, *case.input_shape, generator=generator).to(device)
    model = build_model(case.model).to(device)
    if case.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
        model = model.to(memory_format=torch.channels_last)
    if case.compile:
        # Every case compiles a fresh instance; without a reset, instances of one class share dynamo's
        # recompile budget and later cases would silently fall back to eager.
        torch._dynamo.reset()
    runnable: nn.Module = torch.compile(model) if case.compile else model
    dtype = DTYPES[case.dtype]

    def autocast() -> contextlib.AbstractContextManager[Any]:
        if dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=dtype)

    if case.mode == "forward":
        model.eval()

        def forward() -> torch.Tensor:
            with autocast():
                return runnable(x)

        return Workload(model, forward, None, inference=True)

    if case.mode != "train_step":
        raise ArchbenchError(f"Unknown benchmark mode {case.mode!r}; use 'forward' or 'train_step'.")
    model.train()
    y = torch.randint(0, case.num_classes, (case.batch,), generator=generator).to(device)
    loss_fn = _loss_for(case.output)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    scaler = torch.amp.GradScaler(device.type) if dtype == torch.float16 else None

    def train_step() -> torch.Tensor:
        with autocast():
            loss = loss_fn(runnable(x), y)
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        return loss.detach()

    def zero_grad() -> None:
        optimizer.zero_grad(set_to_none=True)

    return Workload(model, train_step, zero_grad, inference=False)


def median_seconds(benchmark: BenchmarkFixture) -> float:
    """The median seconds per call that pytest-benchmark measured (one call per round)."""
    return float(benchmark.stats.stats.median)


def run_case(
    benchmark: BenchmarkFixture, case: BenchCase, options: SuiteOptions, backend: Backend | None = None
) -> Outcome:
    """Warm up, measure peak memory (CUDA), time and record one case; see the module docstring.

    Args:
        benchmark: pytest-benchmark's fixture (its ``timer`` should be a :class:`~archbench.bench.timing.SyncTimer`).
        case: what to run.
        options: the session's budget (rounds, warm-up, threads).
        backend: the device; defaults to the real one named by ``case.device``.

    Returns:
        The :class:`Outcome`; ``benchmark.extra_info`` holds the same dict.

    Raises:
        ArchbenchError: if the output is not finite after timing (the time of NaN arithmetic means nothing).
    """
    backend = backend if backend is not None else make_backend(resolve_device(case.device))
    threads = set_threads(options.threads)
    work = work_of(case.model, case.input_shape)
    clock = backend.timer()
    oom: str | None = None
    try:
        workload = prepare(case, backend)
        with workload.context():
            per_call = warm_up(workload.step, clock, setup=workload.setup, min_seconds=options.warmup_seconds)
            peak = measure_peak_memory(workload.step, backend, workload.setup)
            rounds = choose_rounds(per_call, options.max_time, options.min_rounds, options.max_rounds)
            result = benchmark.pedantic(workload.step, setup=workload.setup, rounds=rounds, warmup_rounds=0)
    except torch.OutOfMemoryError as err:
        oom = (str(err).strip() or "out of memory").splitlines()[0]
    if oom is not None:
        # Outside the except block, so the traceback's frames (and their tensors) are gone.
        workload = None
        gc.collect()
        backend.release_memory()
        info = make_extra_info(case, work, threads, None, backend.measures_memory, status="oom")
        benchmark.extra_info.update(info)
        return Outcome("oom", info, f"out of memory at batch {case.batch} on {case.device}: {oom}")
    if not bool(torch.isfinite(result.float()).all()):
        raise ArchbenchError(
            f"{case.id}: the output is not finite after timing, so the time is of NaN/inf arithmetic; "
            "check the network's initialisation or lower the learning rate."
        )
    median = median_seconds(benchmark)
    info = make_extra_info(case, work, threads, median, backend.measures_memory, peak_memory_bytes=peak)
    benchmark.extra_info.update(info)
    return Outcome("ok", info)
