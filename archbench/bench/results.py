"""The ``extra_info`` every network benchmark records (:data:`FIELDS`), and the validating reader of its JSON.

Besides :data:`FIELDS`, a row may have ``uncounted`` (operators with no FLOP formula: non-empty, the FLOPs are a
lower bound), ``pct_of_peak`` (of the run's measured peak: the better of the readings before and after the run),
``peak_memory`` and ``machine_calls_per_s`` (:func:`archbench.bench.machine.machine_probe`). The run's environment
is ``machine_info["archbench"]`` and its measured peaks ``machine_info["archbench_peak"]``.

Example:
    >>> load_results("missing.json")
    Traceback (most recent call last):
    ...
    archbench.errors.ArchbenchError: Benchmark results missing.json do not exist; write them with `archbench bench --json missing.json`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archbench.errors import ArchbenchError

_INT, _NUM, _STR, _BOOL, _SHAPE = "a whole number", "a number", "a string", "true or false", "a list of positive whole numbers"
#: The extra_info of every network row: what each must be, and what it is.
FIELDS = {
    "model": (_STR, "a model reference, or resnet18(variant=torchvision) / torchvision.models.resnet18"),
    "mode": (_STR, "forward (eval, inference mode) or train_step (forward, loss, backward, SGD step)"),
    "device": (_STR, "cpu or cuda"),
    "dtype": (_STR, "the autocast dtype (float32: no autocast)"),
    "batch": (_INT, "images per call"),
    "input_shape": (_SHAPE, "one image's shape"),
    "threads": (_INT, "torch intra-op threads (set explicitly)"),
    "params": (_INT, "parameters"),
    "macs_per_image": (_INT, "forward MACs (conv, linear, matmul, attention, recurrent cells)"),
    "flops_per_image": (_INT, "FLOPs of the mode: forward 2 × MACs; train_step forward + backward"),
    "images_per_s": (_NUM, "batch / median seconds per call"),
    "gflops_per_s": (_NUM, "flops_per_image × images_per_s / 1e9"),
    "channels_last": (_BOOL, "channels-last model and input"),
    "compile": (_BOOL, "torch.compile'd"),
    "status": ("ok", "ok: a benchmark that fails writes no row"),
}
EXTRA_INFO_KEYS: tuple[str, ...] = tuple(FIELDS)
FINGERPRINT_KEY, PEAK_KEY = "archbench", "archbench_peak"
#: What a row above 100% of the measured peak means; said beside it in the tables.
ABOVE_PEAK = ("faster than the measured peak, so both peak measurements ran during a slow spell or the kernels do "
              "fewer FLOPs than the convention counts (Winograd, FFT): not a fraction of what the machine can do")
#: Larger files are refused before they are parsed (a 500-benchmark run with all rounds is a few MB).
MAX_BYTES = 64 * 1024 * 1024


def _is(value: object, kind: str) -> bool:
    """Whether ``value`` is of ``kind`` (as in :data:`FIELDS`; ``bool`` is not a number here)."""
    if kind == _BOOL:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind == _INT:
        return isinstance(value, int)
    if kind == _NUM:
        return isinstance(value, (int, float)) and math.isfinite(value)
    if kind == _SHAPE:
        return isinstance(value, list) and all(_is(v, _INT) and v > 0 for v in value)
    if kind == _STR:
        return isinstance(value, str)
    return value == kind  # a literal, such as status "ok"


@dataclass(frozen=True)
class BenchRow:
    """One network benchmark: pytest-benchmark's name, its extra_info (as attributes too), median and statistics."""

    name: str
    extra_info: Mapping[str, Any]
    median_s: float
    stats: Mapping[str, Any] = field(default_factory=dict)

    def __getattr__(self, key: str) -> Any:  # row.model, row.batch, row.images_per_s, ...
        info = object.__getattribute__(self, "extra_info")
        if key in info:
            return info[key]
        raise AttributeError(key)


@dataclass(frozen=True)
class BenchResults:
    """A loaded results file: network rows, other benchmarks' entries, the environment and measured peaks."""

    path: Path
    environment: Mapping[str, Any]
    machine_info: Mapping[str, Any]
    rows: list[BenchRow]
    other: list[Mapping[str, Any]] = field(default_factory=list)

    @property
    def peaks(self) -> list[Mapping[str, Any]]:
        """The measured peaks of the run (one per device, dtype and thread count)."""
        return list(self.machine_info.get(PEAK_KEY) or [])


def read_json(path: str | Path) -> dict[str, Any]:
    """A pytest-benchmark JSON file as a dict whose ``benchmarks`` each have numeric ``stats`` (one-line errors)."""
    if not isinstance(path, (str, Path)) or not str(path).strip():
        raise ArchbenchError(f"A benchmark JSON path must be a file name, got {path!r}; give the file --benchmark-json wrote.")
    path, rerun = Path(path), f"re-run `archbench bench --json {path}`"
    if path.is_dir():
        raise ArchbenchError(f"Benchmark results {path} is a folder; give the JSON file inside it.")
    try:
        if path.stat().st_size > MAX_BYTES:
            raise ArchbenchError(f"Benchmark results {path} are larger than {MAX_BYTES // 2**20} MiB; {rerun}.")
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArchbenchError(f"Benchmark results {path} do not exist; write them with `archbench bench --json {path}`.") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ArchbenchError(f"Benchmark results {path} cannot be read ({err.__class__.__name__}: {err}).") from None
    except (json.JSONDecodeError, RecursionError) as err:
        raise ArchbenchError(f"Benchmark results {path} are not valid JSON ({err}); {rerun}.") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list) or not isinstance(data.get("machine_info"), dict):
        raise ArchbenchError(f"{path} is not a pytest-benchmark results file (it needs a 'benchmarks' list and 'machine_info'); {rerun}.")
    names = set()
    for entry in data["benchmarks"]:
        stats = entry.get("stats") if isinstance(entry, dict) else None
        name = entry.get("fullname", entry.get("name")) if isinstance(entry, dict) else None
        if not isinstance(name, str) or not isinstance(stats, dict):
            raise ArchbenchError(f"{path}: a benchmark entry has no name or no 'stats'; the file is damaged, so {rerun}.")
        for key in ("median", *(k for k in ("iqr", "min", "max", "mean") if k in stats)):
            value = stats.get(key)
            if not _is(value, _NUM) or value < 0 or (key == "median" and value == 0):
                raise ArchbenchError(f"{path}: benchmark {name!r} has stats.{key} {value!r}, not a positive number; {rerun}.")
        if "rounds" in stats and (not _is(stats["rounds"], _INT) or stats["rounds"] < 1):
            raise ArchbenchError(f"{path}: benchmark {name!r} has stats.rounds {stats['rounds']!r}; {rerun}.")
        if name in names:
            raise ArchbenchError(f"{path}: benchmark {name!r} appears twice; the file is damaged, so {rerun}.")
        names.add(name)
    return data


def _check_row(path: Path, name: str, info: Mapping[str, Any], median: float) -> None:
    missing = [k for k in EXTRA_INFO_KEYS if k not in info]
    if missing:
        raise ArchbenchError(f"{path}: benchmark {name!r} lacks extra_info {', '.join(missing)}; re-run `archbench bench --json {path}`.")
    for key, (kind, _) in FIELDS.items():
        least = 1 if key in ("batch", "threads") else 0  # whole numbers are counts; a call has an image and a thread
        if not _is(info[key], kind) or (kind == _INT and info[key] < least):
            expected = f"{kind} of at least {least}" if kind == _INT else kind
            raise ArchbenchError(f"{path}: benchmark {name!r} has {key} {info[key]!r}, expected {expected}; the file is damaged.")
    if not math.isclose(info["images_per_s"], info["batch"] / median, rel_tol=1e-6):
        raise ArchbenchError(
            f"{path}: benchmark {name!r} records {info['images_per_s']:.6g} images/s but batch / median is "
            f"{info['batch'] / median:.6g}; the file was edited or damaged, so re-run it."
        )


def load_results(path: str | Path) -> BenchResults:
    """Read and validate a JSON file from ``archbench bench --json`` or ``pytest --benchmark-only --benchmark-json``.

    Raises:
        ArchbenchError: one sentence, for a missing, oversized, invalid or foreign file, or a row with missing or
            mistyped fields.
    """
    path = Path(path)
    data = read_json(path)
    environment = data["machine_info"].get(FINGERPRINT_KEY)
    if not isinstance(environment, dict):
        raise ArchbenchError(
            f"{path} was not written by archbench's benchmarks (machine_info has no {FINGERPRINT_KEY!r} fingerprint); "
            f"write it with `archbench bench --json {path}` or `pytest --benchmark-only --benchmark-json {path}`."
        )
    rows, other = [], []
    for entry in data["benchmarks"]:
        info = entry.get("extra_info")
        if not (isinstance(info, dict) and "model" in info and "macs_per_image" in info):
            other.append(entry)
            continue
        _check_row(path, entry["name"], info, entry["stats"]["median"])
        rows.append(BenchRow(entry["name"], dict(info), float(entry["stats"]["median"]), entry["stats"]))
    return BenchResults(path, environment, data["machine_info"], rows, other)


def check_distinct(results: Sequence[BenchResults]) -> None:
    """Refuse the same benchmark in two files (the same file given twice would list every row twice)."""
    seen: dict[str, Path] = {}
    for result in results:
        for entry in [*(r.name for r in result.rows), *(str(e.get("name")) for e in result.other)]:
            key = f"{entry} {result.environment.get('device')} {result.environment.get('threads')}"
            if key in seen and seen[key] == result.path:
                raise ArchbenchError(f"{result.path} was given twice; give each benchmark file once.")
            if key in seen:
                raise ArchbenchError(f"Benchmark {entry!r} is in both {seen[key]} and {result.path}; give each run once.")
            seen[key] = result.path
