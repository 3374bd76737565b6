"""The machine's peak: measured once per run (best of large matmuls and a large convolution) and theoretical.

Convention: FLOPs = 2 × multiply-accumulates, as everywhere in archbench. The measured peak is the best of a
few large ``torch.mm`` calls and a large 3×3 convolution at the run's dtype and thread count, because on the
CPU the two go through different libraries (MKL/OpenBLAS GEMM for ``mm``, oneDNN for convolutions) and
either can be the faster one; a network's GFLOP/s divided by this is "% of measured peak". The theoretical
peak is FMA lanes × 2 × FMA units (assumed 2) × threads × clock for the CPU, and a table for known GPUs.
Its ``theoretical_basis`` says which clock: cpufreq's maximum where the OS exposes it, else the clock
``/proc/cpuinfo`` reports, which in a virtual machine is the base clock, not the boost. A measured peak
above the theoretical one means the cores ran faster than that clock, and the basis says so (on this
project's 2-core AMD EPYC VM, 2.45 GHz reported: 156.5 GFLOP/s, while runs measured 158 to 181).

Example:
    >>> peak = measure_peak("cpu", "float32", threads=1, size=256, repeats=2)
    >>> peak["gflops_per_s"] == max(peak["matmul_gflops_per_s"], peak["conv_gflops_per_s"]) > 0
    True
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from archbench.bench.cases import DTYPES
from archbench.bench.timing import SyncTimer

#: Dense peak TFLOP/s by GPU name fragment: (float32 without TF32, bfloat16 tensor cores), from the vendor sheets.
GPU_PEAK_TFLOPS = {"H200": (67.0, 989.0), "H100": (67.0, 989.0), "A100": (19.5, 312.0), "L4": (30.3, 121.0),
                   "A10": (31.2, 125.0), "T4": (8.1, 65.0), "V100": (15.7, 125.0)}  # fmt: skip


def _best_gflops(step: Any, flops: float, timer: SyncTimer, repeats: int) -> float:
    step()  # first call: allocation, library initialisation, cuDNN autotuning
    best = float("inf")
    for _ in range(repeats):
        start = timer()
        step()
        best = min(best, timer() - start)
    return flops / best / 1e9


def measure_peak(device: str, dtype: str, threads: int, size: int = 2048, repeats: int = 5) -> dict[str, Any]:
    """Best GFLOP/s of ``size``² matmuls and of a 3×3 convolution of similar work, at ``dtype`` and ``threads``.

    Returns:
        ``{"device", "dtype", "threads", "matmul_gflops_per_s", "conv_gflops_per_s", "gflops_per_s",
        "theoretical_gflops_per_s", "theoretical_basis"}``.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    dev, dt = torch.device(device), DTYPES[dtype]
    timer = SyncTimer(dev)
    try:
        gen = torch.Generator().manual_seed(0)
        a, b = (torch.randn(size, size, generator=gen).to(dev, dt) for _ in range(2))
        matmul = _best_gflops(lambda: torch.mm(a, b), 2.0 * size**3, timer, repeats)
        channels, side = max(16, size // 8), max(8, size // 64)
        x = torch.randn(8, channels, side, side, generator=gen).to(dev, dt)
        w = torch.randn(channels, channels, 3, 3, generator=gen).to(dev, dt)
        conv_flops = 2.0 * 8 * channels * channels * 9 * side * side
        with torch.inference_mode():
            conv = _best_gflops(lambda: torch.nn.functional.conv2d(x, w, padding=1), conv_flops, timer, repeats)
    finally:
        torch.set_num_threads(previous)
    theory, basis = theoretical_peak(device, dtype, threads)
    if theory is not None and max(matmul, conv) > theory:
        basis += f"; the measured peak is {max(matmul, conv) / theory:.2f}× that, so the cores ran at least that much faster"
    return {
        "device": device, "dtype": dtype, "threads": threads,
        "matmul_gflops_per_s": round(matmul, 2), "conv_gflops_per_s": round(conv, 2),
        "gflops_per_s": round(max(matmul, conv), 2), "theoretical_gflops_per_s": theory, "theoretical_basis": basis,
    }  # fmt: skip


def machine_probe(device: str, size: int = 512, repeats: int = 5) -> float:
    """GFLOP/s of a ``size``² float32 matmul (median of ``repeats``): how fast the machine runs at this moment.

    Taken beside each benchmark (threads as set for it), so that :mod:`archbench.bench.compare` can tell a
    machine that slowed down for a while (a busy neighbour on a shared VM) from code that did.

    Example:
        >>> machine_probe("cpu", size=64, repeats=3) > 0
        True
    """
    dev = torch.device(device)
    a = torch.ones(size, size, device=dev)
    timer = SyncTimer(dev)
    torch.mm(a, a)
    times = []
    for _ in range(repeats):
        start = timer()
        torch.mm(a, a)
        times.append(timer() - start)
    return 2.0 * size**3 / sorted(times)[repeats // 2] / 1e9


def _cpuinfo() -> tuple[set[str], float | None, str]:
    """The CPU's flags, its clock in MHz and where the clock comes from."""
    flags: set[str] = set()
    mhz, source = None, "unknown clock"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "flags" and not flags:
                flags = set(value.split())
            elif key.strip() == "cpu MHz" and mhz is None:
                mhz, source = float(value), "the clock /proc/cpuinfo reports (a VM's base clock; boost unknown)"
        max_khz = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
        if max_khz.exists():
            mhz, source = int(max_khz.read_text()) / 1000, "cpufreq's maximum clock"
    except (OSError, ValueError):
        pass
    return flags, mhz, source


def cpu_model() -> str:
    """The CPU's marketing name (``model name`` in /proc/cpuinfo), else what :mod:`platform` knows."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


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
                low = dtype in ("bfloat16", "float16")
                return 1000 * (bf16 if low else fp32), f"{fragment} data sheet, dense {dtype}"
        return None, f"no data sheet for {name or 'this GPU'}"
    if dtype != "float32":
        return None, f"no theoretical peak for {dtype} on the CPU"
    flags, mhz, source = _cpuinfo()
    lanes = 16 if "avx512f" in flags else 8 if {"avx2", "fma"} <= flags else 4 if "sse2" in flags else 0
    if not lanes or mhz is None:
        return None, "CPU vector width or clock unknown"
    peak = round(lanes * 2 * 2 * threads * mhz / 1000, 1)  # lanes × 2 FLOPs per FMA × 2 FMA units × cores × GHz
    clock = f"{mhz / 1000:.2f} GHz, {source}"
    return peak, f"{lanes} float32 lanes × 2 (FMA) × 2 FMA units × {threads} threads × {clock}"
