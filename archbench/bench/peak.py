"""The machine's peak: measured once per run (best of large matmuls and a large convolution) and theoretical.

FLOPs = 2 × multiply-accumulates, as everywhere in archbench. On the CPU ``torch.mm`` goes to MKL's GEMM and
convolutions to oneDNN, and either can be the faster, so the measured peak is the best of both at the run's
dtype and threads; a network's GFLOP/s divided by it is "% of measured peak". The theoretical peak is FMA
lanes × 2 × FMA units (assumed 2) × threads × clock on the CPU, a data sheet on the GPU; its basis names the
clock (cpufreq's maximum, else what ``/proc/cpuinfo`` reports: in a VM the base clock, not the boost, so a
measured peak above it is said to be so).

Example:
    >>> peak = measure_peak("cpu", "float32", threads=1, size=256, repeats=2)
    >>> peak["gflops_per_s"] == max(peak["matmul_gflops_per_s"], peak["conv_gflops_per_s"]) > 0
    True
"""

from __future__ import annotations

import contextlib
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from archbench.bench.cases import DTYPES
from archbench.bench.timing import SyncTimer

#: Dense peak TFLOP/s by GPU name fragment: (float32 without TF32, bfloat16 tensor cores), from the vendor sheets.
GPU_PEAK_TFLOPS = {"H200": (67.0, 989.0), "H100": (67.0, 989.0), "A100": (19.5, 312.0), "L4": (30.3, 121.0),
                   "A10": (31.2, 125.0), "T4": (8.1, 65.0), "V100": (15.7, 125.0)}  # fmt: skip


def _gflops(step: Callable[[], Any], flops: float, device: torch.device, repeats: int, pick: Callable = min) -> float:
    """GFLOP/s of ``step`` from the ``pick`` (best or median) of ``repeats`` timed calls after one untimed."""
    timer = SyncTimer(device)
    step()  # first call: allocation, library initialisation, cuDNN autotuning
    times = []
    for _ in range(repeats):
        start = timer()
        step()
        times.append(timer() - start)
    return flops / pick(times) / 1e9


def measure_peak(device: str, dtype: str, threads: int, size: int = 2048, repeats: int = 5) -> dict[str, Any]:
    """Best GFLOP/s of ``size``² matmuls and of a 3×3 convolution of similar work, at ``dtype`` and ``threads``.

    Returns:
        ``{"device", "dtype", "threads", "matmul_gflops_per_s", "conv_gflops_per_s", "gflops_per_s",
        "theoretical_gflops_per_s", "theoretical_basis"}``.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    dev, dt = torch.device(device), DTYPES[dtype]
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
    return {
        "device": device, "dtype": dtype, "threads": threads,
        "matmul_gflops_per_s": round(matmul, 2), "conv_gflops_per_s": round(conv, 2),
        "gflops_per_s": round(max(matmul, conv), 2), "theoretical_gflops_per_s": theory, "theoretical_basis": basis,
    }  # fmt: skip


#: What :func:`machine_probe` measures, as ``extra_info`` keys: throughput and per-call latency.
PROBES = ("machine_gflops_per_s", "machine_calls_per_s")


def machine_probe(device: str, size: int = 512, repeats: int = 5, calls: int = 60) -> dict[str, float]:
    """How fast the machine runs at this moment, in two ways that a shared VM's slow spells affect differently.

    ``machine_gflops_per_s``: a ``size``² float32 matmul (median of ``repeats``), throughput-bound.
    ``machine_calls_per_s``: a fixed LeNet-sized chain of small operators (conv, ReLU, pool, linear) at
    batch 1 (median of ``calls``), bound by per-call latency like the small benchmarks; on this VM whole
    seconds of those ran 1.5× slower while the matmul ran as fast as ever. Taken beside each benchmark, so
    that :mod:`archbench.bench.compare` can tell a machine that slowed down from code that did.

    Example:
        >>> sorted(machine_probe("cpu", size=64, repeats=3, calls=3)) == sorted(PROBES)
        True
    """
    dev = torch.device(device)
    a = torch.ones(size, size, device=dev)
    gen = torch.Generator().manual_seed(0)
    x, w, fc = (torch.randn(shape, generator=gen).to(dev) for shape in ((1, 1, 28, 28), (6, 1, 5, 5), (10, 1176)))

    def small() -> torch.Tensor:
        with torch.inference_mode():
            y = torch.nn.functional.max_pool2d(torch.relu(torch.nn.functional.conv2d(x, w, padding=2)), 2)
            return torch.nn.functional.linear(y.flatten(1), fc)  # 6×14×14 = 1176 features

    calls_per_s = _gflops(small, 1e9, dev, calls, statistics.median)  # "1e9 FLOPs" a call: GFLOP/s = calls/s
    return {PROBES[0]: round(_gflops(lambda: torch.mm(a, a), 2.0 * size**3, dev, repeats, statistics.median), 2),
            PROBES[1]: round(calls_per_s, 1)}  # fmt: skip


def cpuinfo() -> dict[str, Any]:
    """The first CPU's ``model`` name, ``vendor``, ``family``, vector ``flags``, clock in ``mhz`` and its source."""
    import platform

    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())  # the first processor's
    except OSError:
        pass
    mhz, clock = None, "unknown clock"
    with contextlib.suppress(KeyError, ValueError):
        mhz, clock = float(fields["cpu MHz"]), "the clock /proc/cpuinfo reports (a VM's base clock; boost unknown)"
    with contextlib.suppress(OSError, ValueError):
        mhz, clock = int(Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").read_text()) / 1000, "cpufreq's maximum clock"
    model = fields.get("model name") or platform.processor() or platform.machine()
    return {"model": model, "vendor": fields.get("vendor_id"), "family": fields.get("cpu family"),
            "flags": set(fields.get("flags", "").split()), "mhz": mhz, "clock": clock}  # fmt: skip


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
    cpu = cpuinfo()
    flags, mhz = cpu["flags"], cpu["mhz"]
    lanes = 16 if "avx512f" in flags else 8 if {"avx2", "fma"} <= flags else 4 if "sse2" in flags else 0
    if not lanes or mhz is None:
        return None, "CPU vector width or clock unknown"
    width = ""
    if lanes == 16 and (cpu["vendor"], cpu["family"]) == ("AuthenticAMD", "25"):
        lanes, width = 8, " (Zen 4 runs AVX-512 as two 256-bit halves)"
    peak = round(lanes * 2 * 2 * threads * mhz / 1000, 1)  # lanes × 2 FLOPs per FMA × 2 FMA units × cores × GHz
    clock = f"{mhz / 1000:.2f} GHz, {cpu['clock']}"
    return peak, f"{lanes} float32 lanes{width} × 2 (FMA) × 2 FMA units × {threads} threads × {clock}"
