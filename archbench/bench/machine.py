"""The machine: a clock that waits for the device, its cores, its peak (measured and theoretical), its speed now.

CUDA runs asynchronously, so :class:`SyncTimer` synchronises before every reading (timm's ``cuda_timestamp``);
pytest-benchmark does not, so the suite passes it as ``@pytest.mark.benchmark(timer=...)``. FLOPs = 2 × MACs.
The measured peak is the best of a large matmul (MKL's GEMM on the CPU) and a 3×3 convolution (oneDNN) at the
run's dtype and threads; the theoretical one is FMA lanes × 2 × 2 FMA units × threads × clock on the CPU (from
py-cpuinfo), a data sheet on the GPU.

Example:
    >>> peak = measure_peak("cpu", "float32", threads=1, size=256, repeats=2)
    >>> peak["gflops_per_s"] == max(peak["matmul_gflops_per_s"], peak["conv_gflops_per_s"]) > 0
    True
"""

from __future__ import annotations

import functools
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
#: Dense peak TFLOP/s by GPU name fragment: (float32 without TF32, bfloat16 tensor cores), from the vendor sheets.
GPU_PEAK_TFLOPS = {"H200": (67.0, 989.0), "H100": (67.0, 989.0), "A100": (19.5, 312.0), "L4": (30.3, 121.0),
                   "A10": (31.2, 125.0), "T4": (8.1, 65.0), "V100": (15.7, 125.0)}  # fmt: skip
#: The ``extra_info`` key of :func:`machine_probe`'s reading.
PROBE = "machine_calls_per_s"


class SyncTimer:
    """``time.perf_counter`` that first waits for the device's queued work (CUDA); plain on the CPU.

    Example:
        >>> timer = SyncTimer("cpu")
        >>> timer() <= timer(), timer.__name__
        (True, 'perf_counter')
    """

    def __init__(self, device: torch.device | str) -> None:
        self.device = torch.device(device)
        self.sync = self.device.type == "cuda"
        self.__name__ = f"SyncTimer({self.device})" if self.sync else "perf_counter"  # pytest-benchmark's "timer"

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


def _seconds(step: Callable[[], Any], device: torch.device, repeats: int, pick: Callable = min) -> float:
    """Seconds per call of ``step``: the ``pick`` (best or median) of ``repeats`` timed calls after one untimed."""
    timer = SyncTimer(device)
    step()  # allocation, library initialisation, cuDNN autotuning
    times = []
    for _ in range(repeats):
        start = timer()
        step()
        times.append(timer() - start)
    return pick(times)


def _gflops(step: Callable[[], Any], flops: float, device: torch.device, repeats: int) -> float:
    """GFLOP/s of ``step``, doing ``flops`` a call, from the best of ``repeats`` timed calls."""
    return flops / _seconds(step, device, repeats) / 1e9


def measure_peak(device: str, dtype: str, threads: int, size: int = 2048, repeats: int = 5) -> dict[str, Any]:
    """Best GFLOP/s of ``size``² matmuls and of a 3×3 convolution of similar work, at ``dtype`` and ``threads``.

    Returns:
        ``device``, ``dtype``, ``threads``, ``matmul_gflops_per_s``, ``conv_gflops_per_s``, ``gflops_per_s`` (the
        better), ``theoretical_gflops_per_s`` (or ``None``) and ``theoretical_basis``.
    """
    previous, dev, dt = torch.get_num_threads(), torch.device(device), DTYPES[dtype]
    torch.set_num_threads(threads)
    try:
        gen = torch.Generator().manual_seed(0)
        a, b = (torch.randn(size, size, generator=gen).to(dev, dt) for _ in range(2))
        matmul = _gflops(lambda: torch.mm(a, b), 2.0 * size**3, dev, repeats)
        channels, side = max(16, size // 8), max(8, size // 64)
        x = torch.randn(8, channels, side, side, generator=gen).to(dev, dt)
        w = torch.randn(channels, channels, 3, 3, generator=gen).to(dev, dt)
        with torch.inference_mode():
            conv_flops = 2.0 * 8 * channels * channels * 9 * side * side
            conv = _gflops(lambda: torch.nn.functional.conv2d(x, w, padding=1), conv_flops, dev, repeats)
    finally:
        torch.set_num_threads(previous)
    theory, basis = theoretical_peak(device, dtype, threads)
    if theory is not None and max(matmul, conv) > theory:
        basis += f"; the measured peak is {max(matmul, conv) / theory:.2f}× that, so the cores ran at least that much faster"
    return {"device": device, "dtype": dtype, "threads": threads, "matmul_gflops_per_s": round(matmul, 2),
            "conv_gflops_per_s": round(conv, 2), "gflops_per_s": round(max(matmul, conv), 2),
            "theoretical_gflops_per_s": theory, "theoretical_basis": basis}  # fmt: skip


def machine_probe(device: str, calls: int = 60) -> float:
    """How fast the machine runs now: calls/s of a LeNet-sized chain of small operators at batch 1 (median of
    ``calls``), which a shared VM's slow spells hit as hard as a batch-1 benchmark. Taken beside each benchmark,
    as ``extra_info[PROBE]``, for :mod:`archbench.bench.compare`.

    Example:
        >>> machine_probe("cpu", calls=3) > 0
        True
    """
    dev, gen = torch.device(device), torch.Generator().manual_seed(0)
    x, w, fc = (torch.randn(shape, generator=gen).to(dev) for shape in ((1, 1, 28, 28), (6, 1, 5, 5), (10, 1176)))

    def small() -> torch.Tensor:
        with torch.inference_mode():
            y = torch.nn.functional.max_pool2d(torch.relu(torch.nn.functional.conv2d(x, w, padding=2)), 2)
            return torch.nn.functional.linear(y.flatten(1), fc)  # 6×14×14 = 1176 features

    return round(1 / _seconds(small, dev, calls, statistics.median), 1)


@functools.lru_cache(maxsize=1)
def cpu_info() -> dict[str, Any]:
    """py-cpuinfo's description of the CPU, the one pytest-benchmark records as ``machine_info["cpu"]`` (cached)."""
    import cpuinfo

    return cpuinfo.get_cpu_info()


def theoretical_peak(device: str, dtype: str, threads: int) -> tuple[float | None, str]:
    """GFLOP/s the hardware could do at most where known (else ``None``), and how it was computed.

    Example:
        >>> theoretical_peak("cpu", "float16", 2)
        (None, 'no theoretical peak for float16 on the CPU')
    """
    if device == "cuda":
        name = torch.cuda.get_device_name() if torch.cuda.is_available() else ""
        for fragment, (fp32, bf16) in GPU_PEAK_TFLOPS.items():
            if fragment in name:
                return 1000 * (bf16 if dtype in ("bfloat16", "float16") else fp32), f"{fragment} data sheet, dense {dtype}"
        return None, f"no data sheet for {name or 'this GPU'}"
    if dtype != "float32":
        return None, f"no theoretical peak for {dtype} on the CPU"
    cpu = cpu_info()
    flags, hz, width = set(cpu.get("flags", ())), (cpu.get("hz_advertised") or (0,))[0], ""
    lanes = 16 if "avx512f" in flags else 8 if {"avx2", "fma"} <= flags else 4 if "sse2" in flags else 0
    if not lanes or not hz:
        return None, "CPU vector width or clock unknown"
    if lanes == 16 and (cpu.get("vendor_id_raw"), cpu.get("family")) == ("AuthenticAMD", 25):
        lanes, width = 8, " (Zen 4 runs AVX-512 as two 256-bit halves)"
    peak = round(lanes * 2 * 2 * threads * hz / 1e9, 1)  # lanes × 2 FLOPs per FMA × 2 FMA units × cores × GHz
    return peak, (f"{lanes} float32 lanes{width} × 2 (FMA) × 2 FMA units × {threads} threads × {hz / 1e9:.2f} GHz, "
                  "the advertised clock (in a VM the base clock; boost unknown)")
