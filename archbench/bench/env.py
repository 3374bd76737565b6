"""The environment fingerprint recorded with every benchmark run.

A time means little without what produced it: library versions, the CPU and how many threads torch used,
the GPU and its CUDA/cuDNN versions, and the numeric switches that change which kernels run (cuDNN
autotuning, TF32, the autocast dtype, channels-last, ``torch.compile``).

Example:
    >>> info = fingerprint(threads=2, dtype="float32")
    >>> info["threads"], info["dtype"], "torch" in info
    (2, 'float32', True)
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any

import torch

from archbench.bench.timing import usable_cores


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, ``platform.processor()`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _torchvision_version() -> str | None:
    try:
        import torchvision
    except ImportError:
        return None
    return str(torchvision.__version__)


def _cudnn_version() -> int | None:
    try:
        return torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    except (RuntimeError, OSError):  # a CUDA build whose cuDNN library cannot be loaded
        return None


def gpu_info(device: torch.device | None = None) -> dict[str, Any]:
    """Name, compute capability and memory of a CUDA device; ``{"name": None}`` without CUDA."""
    if not torch.cuda.is_available():
        return {"name": None}
    device = device if device is not None and device.type == "cuda" else torch.device("cuda", 0)
    props = torch.cuda.get_device_properties(device)
    return {
        "name": props.name,
        "index": device.index if device.index is not None else 0,
        "capability": f"{props.major}.{props.minor}",
        "memory_bytes": int(props.total_memory),
        "count": torch.cuda.device_count(),
    }


def _busy_cpu_seconds() -> float | None:
    """Machine-wide busy CPU seconds since boot (Linux ``/proc/stat``); None elsewhere."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    except (OSError, ValueError, IndexError):
        return None
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK")


class LoadMeter:
    """How busy the machine was with *other* processes while this one ran (Linux; None elsewhere).

    Other processes' CPU time is the machine's busy CPU time minus this process's own (threads included),
    reported as a share of all cores over the wall time: 0.0 is a quiet machine, 0.5 means others kept
    half the cores busy, which on a small machine disturbs multi-threaded timings badly.

    Example:
        >>> meter = LoadMeter()
        >>> share = meter.others_share()
        >>> share is None or 0.0 <= share <= 1.0
        True
    """

    def __init__(self) -> None:
        self._busy = _busy_cpu_seconds()
        self._own = self._own_seconds()
        self._wall = time.monotonic()

    @staticmethod
    def _own_seconds() -> float:
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    def others_share(self) -> float | None:
        """Share of all cores used by other processes since construction (None where unknown)."""
        busy = _busy_cpu_seconds()
        wall = time.monotonic() - self._wall
        if busy is None or self._busy is None or wall <= 0:
            return None
        others = (busy - self._busy) - (self._own_seconds() - self._own)
        return round(min(1.0, max(0.0, others / (wall * (os.cpu_count() or 1)))), 3)


def fingerprint(
    *,
    threads: int | None = None,
    dtype: str = "float32",
    channels_last: bool = False,
    compile: bool = False,
    device: torch.device | str | None = None,
    load: LoadMeter | None = None,
) -> dict[str, Any]:
    """Everything about this process that can change a benchmark's time, as a JSON-ready dict.

    Args:
        threads: torch's intra-op threads for the run (defaults to the current setting).
        dtype: the autocast dtype (``"float32"`` means no autocast).
        channels_last: whether models and inputs use the channels-last memory format.
        compile: whether models go through ``torch.compile``.
        device: the device selection of the run (``"cpu"``, ``"cuda"``, ``"all"``...).
        load: started when the run began; adds ``others_cpu_share`` (other processes' share of all cores).

    Returns:
        A flat dict: versions, CPU, threads, GPU, CUDA/cuDNN, cudnn.benchmark, TF32 flags, the options, the
        1/5/15-minute load average now and (with ``load``) other processes' share of the cores during the run.
    """
    matmul = torch.backends.cuda.matmul
    return {
        "torch": torch.__version__,
        "torchvision": _torchvision_version(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpu_cores_usable": usable_cores(),
        "threads": threads if threads is not None else torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "device": None if device is None else str(device),
        "cuda_available": torch.cuda.is_available(),
        "gpu": gpu_info(),
        "cuda_version": torch.version.cuda,
        "cudnn_version": _cudnn_version(),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
        "tf32_matmul": bool(matmul.allow_tf32),
        "tf32_cudnn": bool(torch.backends.cudnn.allow_tf32),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "dtype": dtype,
        "channels_last": channels_last,
        "compile": compile,
        "load_average": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "others_cpu_share": load.others_share() if load is not None else None,
    }
