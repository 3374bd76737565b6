"""The schema of a benchmark's ``extra_info`` and the loader for pytest-benchmark JSON files.

Every network benchmark records exactly these ``extra_info`` keys (reports and other tools read them):

======================  ===========================================================================
``model``               registry name, or ``resnet18(variant=torchvision)`` / ``torchvision.models.resnet18``
``mode``                ``forward`` (eval, inference mode) or ``train_step`` (forward, loss, backward, step)
``device``              ``cpu`` or ``cuda``
``dtype``               autocast dtype: ``float32`` (no autocast), ``bfloat16`` or ``float16``
``batch``               images per call
``input_shape``         one image, ``[C, H, W]``
``threads``             torch intra-op threads (set explicitly)
``params``              parameters of the network
``macs_per_image``      forward conv + linear multiply-accumulates per image
``flops_per_image``     FLOPs of the mode per image: forward 2 × MACs; train_step forward + backward
``images_per_s``        batch / median seconds per call (None for an OOM row)
``gflops_per_s``        flops_per_image × images_per_s / 1e9 (None for an OOM row)
``channels_last``       channels-last memory format (GPU option, recorded on every row)
``compile``             through ``torch.compile`` (GPU option, recorded on every row)
``status``              ``ok``, or ``oom`` when the case ran out of device memory
``peak_memory_bytes``   CUDA rows only: peak allocated memory of a separate untimed call
======================  ===========================================================================

OOM rows cannot be pytest-benchmark entries (they have no timings), so the benchmark plugin writes them to
the JSON's top-level ``"archbench_oom"`` list; :func:`load_results` returns them with the timed rows.
The environment fingerprint is ``machine_info["archbench"]``.

Example:
    >>> results = load_results("reports/bench-cpu.json")  # doctest: +SKIP
    >>> [(r.model, r.mode, r.batch, round(r.images_per_s)) for r in results.rows][:1]  # doctest: +SKIP
    [('inception_net', 'forward', 1, 1015)]
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archbench.errors import ArchbenchError

if TYPE_CHECKING:
    from archbench.bench.cases import BenchCase
    from archbench.bench.work import Work

EXTRA_INFO_KEYS: tuple[str, ...] = (
    "model",
    "mode",
    "device",
    "dtype",
    "batch",
    "input_shape",
    "threads",
    "params",
    "macs_per_image",
    "flops_per_image",
    "images_per_s",
    "gflops_per_s",
    "channels_last",
    "compile",
    "status",
)
CUDA_EXTRA_INFO_KEYS: tuple[str, ...] = ("peak_memory_bytes",)
OOM_KEY = "archbench_oom"
FINGERPRINT_KEY = "archbench"
STATUSES = ("ok", "oom")


def make_extra_info(
    case: BenchCase,
    work: Work,
    threads: int,
    median_s: float | None,
    cuda: bool,
    *,
    peak_memory_bytes: int | None = None,
    status: str = "ok",
) -> dict[str, Any]:
    """The ``extra_info`` of one case (see the module docstring for the keys).

    Args:
        case: what ran.
        work: its parameters, MACs and FLOPs per image.
        threads: torch intra-op threads during the run.
        median_s: median seconds per call; None for an OOM row.
        cuda: add ``peak_memory_bytes`` (CUDA rows).
        peak_memory_bytes: the measured peak (CUDA).
        status: ``"ok"`` or ``"oom"``.
    """
    flops = work.flops_per_image(case.mode)
    images_per_s = case.batch / median_s if median_s else None
    info: dict[str, Any] = {
        "model": case.model,
        "mode": case.mode,
        "device": case.device,
        "dtype": case.dtype,
        "batch": case.batch,
        "input_shape": list(case.input_shape),
        "threads": threads,
        "params": work.params,
        "macs_per_image": work.macs_per_image,
        "flops_per_image": flops,
        "images_per_s": images_per_s,
        "gflops_per_s": flops * images_per_s / 1e9 if images_per_s is not None else None,
        "channels_last": case.channels_last,
        "compile": case.compile,
        "status": status,
    }
    if cuda:
        info["peak_memory_bytes"] = peak_memory_bytes
    return info


@dataclass(frozen=True)
class BenchRow:
    """One network benchmark from a results file.

    Attributes:
        name: pytest-benchmark's name, e.g. ``test_network[lenet5-forward-cpu-b64]``.
        group: its group (network or comparison, and mode).
        extra_info: the keys of :data:`EXTRA_INFO_KEYS` (and ``peak_memory_bytes`` on CUDA).
        median_s: median seconds per call; None for an OOM row.
        stats: pytest-benchmark's statistics (min, max, mean, stddev, median, iqr, rounds...); None for OOM.
    """

    name: str
    group: str | None
    extra_info: Mapping[str, Any]
    median_s: float | None
    stats: Mapping[str, Any] | None = None

    def __getattr__(self, key: str) -> Any:  # row.model, row.batch, row.images_per_s, ...
        info = object.__getattribute__(self, "extra_info")
        if key in info:
            return info[key]
        raise AttributeError(key)


@dataclass(frozen=True)
class BenchResults:
    """A loaded results file: the network rows (timed and OOM), other benchmarks' rows, the environment."""

    path: Path
    environment: Mapping[str, Any]
    machine_info: Mapping[str, Any]
    rows: list[BenchRow]
    other: list[Mapping[str, Any]] = field(default_factory=list)
    datetime: str | None = None

    def select(self, **where: Any) -> list[BenchRow]:
        """Rows whose extra_info matches every ``key=value``, e.g. ``select(model="lenet5", mode="forward")``."""
        return [r for r in self.rows if all(r.extra_info.get(k) == v for k, v in where.items())]


def _is_network_row(info: object) -> bool:
    return isinstance(info, Mapping) and "model" in info and "macs_per_image" in info


def _check_row(path: Path, name: str, info: Mapping[str, Any], median: float | None) -> None:
    missing = [k for k in EXTRA_INFO_KEYS if k not in info]
    if info.get("device") == "cuda":
        missing += [k for k in CUDA_EXTRA_INFO_KEYS if k not in info]
    if missing:
        raise ArchbenchError(
            f"{path}: benchmark {name!r} lacks extra_info {', '.join(missing)}; the file is damaged or from "
            "another version, so re-run `archbench bench --json PATH`."
        )
    if info["status"] not in STATUSES:
        raise ArchbenchError(f"{path}: benchmark {name!r} has status {info['status']!r}, expected one of {STATUSES}.")
    if info["status"] == "ok":
        batch, rate = info["batch"], info["images_per_s"]
        if median is None or not isinstance(rate, (int, float)) or not isinstance(batch, int) or median <= 0:
            raise ArchbenchError(f"{path}: benchmark {name!r} has no usable median or images_per_s; re-run it.")
        if not math.isclose(rate, batch / median, rel_tol=1e-6):
            raise ArchbenchError(
                f"{path}: benchmark {name!r} records {rate:.6g} images/s but batch / median is "
                f"{batch / median:.6g}; the file was edited or damaged, so re-run it."
            )


def load_results(path: str | Path) -> BenchResults:
    """Read and validate a JSON file written by ``archbench bench --json`` or ``pytest benchmarks/ --benchmark-json``.

    Args:
        path: the file.

    Returns:
        The :class:`BenchResults`.

    Raises:
        ArchbenchError: one sentence, if the file is missing, is not JSON, is not pytest-benchmark output, was
            not written by archbench's benchmarks, or has a network row with missing or inconsistent fields.

    Example:
        >>> results = load_results("reports/bench-cpu.json")  # doctest: +SKIP
        >>> results.environment["threads"]  # doctest: +SKIP
        2
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ArchbenchError(f"Benchmark results {path} do not exist; write them with `archbench bench --json {path}`.") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ArchbenchError(f"Benchmark results {path} cannot be read ({err.__class__.__name__}: {err}).") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ArchbenchError(
            f"Benchmark results {path} are not valid JSON ({err.msg} at line {err.lineno}); re-run `archbench bench --json {path}`."
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list) or not isinstance(
        data.get("machine_info"), dict
    ):
        raise ArchbenchError(
            f"{path} is not a pytest-benchmark results file (it needs a 'benchmarks' list and 'machine_info'); "
            f"write one with `archbench bench --json {path}`."
        )
    environment = data["machine_info"].get(FINGERPRINT_KEY)
    if not isinstance(environment, dict):
        raise ArchbenchError(
            f"{path} was not written by archbench's benchmarks (machine_info has no {FINGERPRINT_KEY!r} fingerprint); "
            f"write it with `archbench bench --json {path}` or `pytest benchmarks/ --benchmark-json {path}`."
        )

    rows: list[BenchRow] = []
    other: list[Mapping[str, Any]] = []
    for entry in data["benchmarks"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("stats"), dict):
            raise ArchbenchError(f"{path}: a benchmark entry has no 'stats'; the file is damaged, so re-run it.")
        name = str(entry.get("name", "?"))
        info = entry.get("extra_info")
        if not _is_network_row(info):
            other.append(entry)
            continue
        median = entry["stats"].get("median")
        _check_row(path, name, info, median)
        rows.append(BenchRow(name, entry.get("group"), dict(info), float(median), dict(entry["stats"])))
    oom = data.get(OOM_KEY, [])
    if not isinstance(oom, list):
        raise ArchbenchError(f"{path}: {OOM_KEY!r} must be a list of rows; the file is damaged, so re-run it.")
    for entry in oom:
        info = entry.get("extra_info") if isinstance(entry, dict) else None
        name = str(entry.get("name", "?")) if isinstance(entry, dict) else "?"
        if not _is_network_row(info) or info.get("status") != "oom":
            raise ArchbenchError(f"{path}: OOM row {name!r} is malformed; the file is damaged, so re-run it.")
        _check_row(path, name, info, None)
        rows.append(BenchRow(name, entry.get("group"), dict(info), None, None))
    return BenchResults(path, environment, data["machine_info"], rows, other, data.get("datetime"))
