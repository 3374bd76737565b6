"""archbench's hand-written BatchNorm against torch's, forward + backward, interleaved A, B, A, B.

One training step of a lone BatchNorm layer at the shapes ``lenet5_bn`` feeds its four BatchNorm layers at
batch 64 and at ResNet-18's first stage (64×64×56×56). Each round times ours and native back to back, in
alternating order, with the synchronising clock, so a burst of load on a shared machine hits both; the
ratio of medians (ours / native) is ``extra_info["ratio_to_native"]`` (stretch target ≤ 1.5×). The
outputs are compared after timing.

Example:
    $ pytest benchmarks/bench_batchnorm.py --benchmark-only
"""

from __future__ import annotations

import statistics

import pytest
import torch
from torch import nn

from archbench.bench.machine import SyncTimer
from archbench.layers.batchnorm import BatchNorm

SHAPES = [(64, 6, 24, 24), (64, 16, 8, 8), (64, 120), (64, 84), (64, 64, 56, 56)]
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"))]
ROUND_SECONDS = 1.0  # timed rounds per shape, about


def make_step(impl: str, shape: tuple[int, ...], device: str):  # noqa: ANN201
    """One forward + backward of ``nn.BatchNorm1d/2d`` (``"native"``) or archbench's ``BatchNorm`` (``"ours"``)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=gen).to(device).requires_grad_()
    grad = torch.randn(shape, generator=gen).to(device)
    native = nn.BatchNorm2d if len(shape) == 4 else nn.BatchNorm1d
    layer = (native(shape[1]) if impl == "native" else BatchNorm(shape[1], num_dims=len(shape))).to(device)

    def step() -> torch.Tensor:
        x.grad = None
        layer.zero_grad(set_to_none=True)
        y = layer(x)
        y.backward(grad)
        return y

    return step


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_batchnorm_ours_vs_native(benchmark, shape: tuple[int, ...], device: str) -> None:
    steps = {impl: make_step(impl, shape, device) for impl in ("ours", "native")}
    timer = SyncTimer(device)
    times: dict[str, list[float]] = {"ours": [], "native": []}

    def pair() -> None:
        order = ("ours", "native") if len(times["ours"]) % 2 == 0 else ("native", "ours")
        for impl in order:
            start = timer()
            steps[impl]()
            times[impl].append(timer() - start)

    pair()
    rounds = max(10, min(300, int(ROUND_SECONDS / (times["ours"][0] + times["native"][0]))))
    times = {"ours": [], "native": []}
    benchmark.group = f"batchnorm ours vs native, forward + backward, {device}"
    benchmark.pedantic(pair, rounds=rounds, warmup_rounds=2)
    ours, native = (statistics.median(times[impl]) for impl in ("ours", "native"))
    benchmark.extra_info.update(
        shape=list(shape), device=device, dtype="float32", threads=torch.get_num_threads(), rounds=rounds,
        ours_median_s=ours, native_median_s=native, ratio_to_native=ours / native,
    )  # fmt: skip
    torch.testing.assert_close(steps["ours"]().detach(), steps["native"]().detach(), rtol=1e-4, atol=1e-4)
