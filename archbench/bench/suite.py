"""The network benchmarks as a pytest module: one test per case of :func:`~archbench.bench.cases.enumerate_cases`.

In the package, so that an installed ``archbench bench`` runs it; ``benchmarks/bench_networks.py`` collects it for
``pytest --benchmark-only``. Each case is pytest-benchmark's plain fixture (its calibration and ``--benchmark-*``
options apply) over one step at the case's exact input, timed by a :class:`~archbench.bench.machine.SyncTimer`:
``forward`` in eval mode under ``torch.inference_mode``, or a training step (``zero_grad(set_to_none=True)``,
forward, the loss of the model's output kind, backward, SGD step).

Example:
    $ pytest --benchmark-only -k "lenet5-forward"
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import pytest
import torch

from archbench.bench.cases import BenchCase, build_model, enumerate_cases, work_of
from archbench.bench.machine import DTYPES, SyncTimer
from archbench.bench.plugin import options_of, peak_for, record_row
from archbench.memory.measure import peak_memory_during
from archbench.errors import ArchbenchError
from archbench.registry import loss_for

__all__ = ["pytest_generate_tests", "test_network"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise ``case`` over every case the session's options select."""
    if "case" not in metafunc.fixturenames:
        return
    try:
        cases = enumerate_cases(options_of(metafunc.config))
    except ArchbenchError as err:
        raise pytest.UsageError(str(err)) from None
    params = []
    for case in cases:
        marks = [pytest.mark.benchmark(group=case.group, timer=SyncTimer(case.device))]
        if case.skip:
            marks.append(pytest.mark.skip(reason=case.skip))
        params.append(pytest.param(case, id=case.id, marks=marks))
    metafunc.parametrize("case", params)


def make_step(case: BenchCase) -> Callable[[], torch.Tensor]:
    """The timed call of ``case``: a fixed random batch on the device, the network in the case's mode."""
    device, dtype = torch.device(case.device), DTYPES[case.dtype]
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(case.batch, *case.input_shape, generator=generator).to(device)
    model = build_model(case.model).to(device)
    if case.channels_last:
        x, model = x.contiguous(memory_format=torch.channels_last), model.to(memory_format=torch.channels_last)
    if case.compile:
        torch._dynamo.reset()  # instances of one class would otherwise share dynamo's recompile budget
    run: Any = torch.compile(model) if case.compile else model

    def autocast() -> contextlib.AbstractContextManager[Any]:
        return contextlib.nullcontext() if dtype == torch.float32 else torch.autocast(device.type, dtype=dtype)

    if case.mode == "forward":
        model.eval()

        def forward() -> torch.Tensor:
            with torch.inference_mode(), autocast():
                return run(x)

        return forward
    model.train()
    with torch.no_grad(), autocast():
        classes = run(x).shape[-1]
    y = torch.randint(0, classes, (case.batch,), generator=generator).to(device)
    loss_fn, optimizer = loss_for(case.output), torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)

    def train_step() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        with autocast():
            loss = loss_fn(run(x), y)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        return loss.detach()

    return train_step


def test_network(benchmark: Any, case: BenchCase, request: pytest.FixtureRequest) -> None:
    """Time one network in one mode on one device at one batch size."""
    threads = torch.get_num_threads()  # as the plugin set it for this benchmark (--archbench-threads)
    peak_for(request.config, case.device, case.dtype, threads)  # measured before the first timing, not during one
    step = make_step(case)
    try:
        result = benchmark(step)
    except torch.OutOfMemoryError as err:
        pytest.skip(f"out of memory at batch {case.batch} on {case.device}: {str(err).splitlines()[0]}")
    if not bool(torch.isfinite(result.float()).all()):
        raise ArchbenchError(f"{case.id}: the output is not finite, so its time is of NaN arithmetic; check the network.")
    if benchmark.stats is None:  # --benchmark-disable: ran once as a smoke test
        return
    work = work_of(case.model, case.input_shape, case.mode)
    peak_memory = peak_memory_during(step, case.device)  # one extra, untimed call: bytes allocated above those live
    images_per_s = case.batch / benchmark.stats.stats.median
    gflops = work["flops_per_image"] * images_per_s / 1e9
    benchmark.extra_info.update(
        model=case.model, mode=case.mode, device=case.device, dtype=case.dtype, batch=case.batch,
        input_shape=list(case.input_shape), threads=threads, **work, images_per_s=images_per_s, gflops_per_s=gflops,
        channels_last=case.channels_last, compile=case.compile, status="ok",
        peak_memory=peak_memory,
    )  # fmt: skip
    record_row(request.config, case.id, benchmark.extra_info)
