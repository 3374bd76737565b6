"""Forward + backward of archbench's hand-written BatchNorm against ``nn.BatchNorm2d``, side by side.

One training step of a lone BatchNorm layer on a (64, 64, 56, 56) float32 batch (ResNet-18's first stage
at 224×224): forward, then backward of a fixed upstream gradient. Both implementations run in the same
session, in the same pytest-benchmark group, and the ratio of medians (ours / native) is printed at the end
and stored in ``extra_info["ratio_to_native"]`` of the ``ours`` entry. Target: at most 1.5× on CPU.

Run:
    pytest benchmarks/bench_batchnorm.py --benchmark-only
    pytest benchmarks/bench_batchnorm.py --benchmark-only --benchmark-json reports/bench_batchnorm.json
    python benchmarks/bench_batchnorm.py            # interleaved rounds: median, IQR and the ratio
    python benchmarks/bench_batchnorm.py --device cuda --rounds 50

Environment: ``ARCHBENCH_BENCH_THREADS`` (CPU threads, default 2) and ``ARCHBENCH_BENCH_ROUNDS``
(timed rounds per implementation, default 20).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Iterator

import pytest
import torch
from torch import nn

from archbench.layers.batchnorm import BatchNorm

THREADS = int(os.environ.get("ARCHBENCH_BENCH_THREADS", "2"))
ROUNDS = int(os.environ.get("ARCHBENCH_BENCH_ROUNDS", "20"))
WARMUP_ROUNDS = 3
SHAPE = (64, 64, 56, 56)
DTYPE = torch.float32
IMPLS = ("native", "ours")
TARGET_RATIO = 1.5


def make_layer(impl: str, channels: int, device: str, dtype: torch.dtype) -> nn.Module:
    """``nn.BatchNorm2d`` (``"native"``) or archbench's ``BatchNorm`` (``"ours"``), in training mode."""
    if impl == "native":
        return nn.BatchNorm2d(channels, device=device, dtype=dtype)
    if impl == "ours":
        return BatchNorm(channels, num_dims=4, device=device, dtype=dtype)
    raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}.")


def make_step(
    impl: str, shape: tuple[int, ...] = SHAPE, device: str = "cpu", dtype: torch.dtype = DTYPE
) -> tuple[Callable[[], torch.Tensor], nn.Module, torch.Tensor]:
    """A closure that runs one forward + backward (synchronised on CUDA), the layer, and its input."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=gen, dtype=dtype).to(device).requires_grad_()
    grad = torch.randn(shape, generator=gen, dtype=dtype).to(device)
    layer = make_layer(impl, shape[1], device, dtype)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def step() -> torch.Tensor:
        x.grad = None
        layer.zero_grad(set_to_none=True)
        y = layer(x)
        y.backward(grad)
        sync()
        return y

    return step, layer, x


def environment(device: str) -> dict[str, object]:
    info: dict[str, object] = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name()
    return info


# --------------------------------------------------------------------------------------------------
# pytest-benchmark
# --------------------------------------------------------------------------------------------------

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=[pytest.mark.cuda,
                                pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]),
]


@pytest.fixture(autouse=True)
def _threads() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def medians(request: pytest.FixtureRequest) -> Iterator[dict[tuple[str, str], float]]:
    """Collects each run's median; at the end of the module prints ours / native per device."""
    collected: dict[tuple[str, str], float] = {}
    yield collected
    lines = []
    for device in sorted({d for d, _ in collected}):
        native, ours = collected.get((device, "native")), collected.get((device, "ours"))
        if native and ours:
            verdict = "within" if ours / native <= TARGET_RATIO else "above"
            lines.append(
                f"BatchNorm fwd+bwd {SHAPE} {DTYPE} on {device} ({THREADS} threads): ours {ours * 1e3:.1f} ms, "
                f"native {native * 1e3:.1f} ms, ratio {ours / native:.2f}x ({verdict} the {TARGET_RATIO}x target)"
            )
    if lines:
        capture = request.config.pluginmanager.getplugin("capturemanager")
        with capture.global_and_fixture_disabled():
            print("\n" + "\n".join(lines))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("impl", IMPLS)
def test_batchnorm_forward_backward(benchmark, impl: str, device: str, medians: dict) -> None:
    step, layer, x = make_step(impl, SHAPE, device, DTYPE)
    benchmark.group = f"batchnorm-fwd-bwd-{device}"
    benchmark.extra_info.update(
        impl=impl, model="BatchNorm2d" if impl == "native" else "archbench.BatchNorm", mode="train",
        shape=list(SHAPE), batch=SHAPE[0], dtype=str(DTYPE), device=device,
        memory_format="contiguous", **environment(device),
    )
    benchmark.pedantic(step, rounds=ROUNDS, warmup_rounds=WARMUP_ROUNDS, iterations=1)

    if benchmark.stats is not None:  # None under --benchmark-disable
        median = benchmark.stats.stats.median
        medians[(device, impl)] = median
        benchmark.extra_info["images_per_s"] = SHAPE[0] / median
        native = medians.get((device, "native"))
        if impl == "ours" and native:
            benchmark.extra_info["ratio_to_native"] = median / native

    # Output checked after timing: the timed layer still computes what nn.BatchNorm2d computes.
    reference_step, _, _ = make_step("native", SHAPE, device, DTYPE)
    torch.testing.assert_close(step().detach(), reference_step().detach())
    assert x.grad is not None and x.grad.shape == x.shape


# --------------------------------------------------------------------------------------------------
# Stand-alone: interleaved rounds, so a burst of load on a shared machine hits both implementations.
# --------------------------------------------------------------------------------------------------


def _quartiles(samples: list[float]) -> tuple[float, float, float]:
    q1, q2, q3 = statistics.quantiles(samples, n=4)
    return q1, q2, q3


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=THREADS)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--shape", type=int, nargs=4, default=list(SHAPE), metavar=("N", "C", "H", "W"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    steps = {impl: make_step(impl, tuple(args.shape), args.device, DTYPE)[0] for impl in IMPLS}
    times: dict[str, list[float]] = {impl: [] for impl in IMPLS}
    for _ in range(WARMUP_ROUNDS):
        for step in steps.values():
            step()
    for i in range(args.rounds):
        order = IMPLS if i % 2 == 0 else IMPLS[::-1]
        for impl in order:
            start = time.perf_counter()
            steps[impl]()
            times[impl].append(time.perf_counter() - start)
    print(f"BatchNorm forward+backward, shape {tuple(args.shape)}, {DTYPE}, {args.device}, "
          f"{args.threads} threads, {args.rounds} interleaved rounds")
    quartiles = {impl: _quartiles(samples) for impl, samples in times.items()}
    for impl, (q1, q2, q3) in quartiles.items():
        print(f"  {impl:<7} median {q2 * 1e3:8.2f} ms   IQR {q1 * 1e3:8.2f} - {q3 * 1e3:8.2f} ms")
    ratio = quartiles["ours"][1] / quartiles["native"][1]
    print(f"  ratio ours/native (medians): {ratio:.2f}x  (target <= {TARGET_RATIO}x)")


if __name__ == "__main__":
    main()
