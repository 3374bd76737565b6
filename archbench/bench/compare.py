"""``archbench compare OLD.json NEW.json``: did the change make it slower, at this machine's noise level?

Per benchmark in both files: the ratio of medians new / old with a 95% bootstrap interval from the stored
rounds (``--benchmark-json`` keeps every round in ``stats.data``), and "slower" or "faster" only when the
whole interval lies beyond the noise band, else "no change". The band is the largest of:

- ``noise`` (10%: two runs of the same code on a shared machine drift that much even with tight rounds);
- each run's own relative interquartile range;
- how much the measured peak moved between the runs (same device, dtype and threads; unscaled reading only);
- with five or more benchmarks in common, how much their ratios scatter about their median
  (:func:`spread`): whole stretches of one run can be 30% slower on a shared VM, which no round shows,
  while a slow-down of one benchmark among many, or of all of them, still stands out.

Each benchmark also records the machine's speed around its timing (:func:`archbench.bench.peak.machine_probe`:
a matmul's GFLOP/s and a chain of small operators' calls/s); for each probe both runs have, a verdict must
also hold with the time scaled by the machine's speed, against a band from the scaled ratios' own scatter
(not the peak's drift, which the probe already accounts for). So a machine slow for a few seconds is not a
slow-down, and a real one on an equally fast machine still is.

Example:
    >>> verdict(ratio_interval([1.0, 1.1, 0.9] * 10, [1.5, 1.65, 1.35] * 10)[1:], noise=0.1)
    'slower'
    >>> verdict(ratio_interval([1.0, 1.1, 0.9] * 10, [1.0, 1.1, 0.9] * 10)[1:], noise=0.1)
    'no change'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from archbench.bench.peak import PROBES
from archbench.bench.results import read_json
from archbench.errors import ArchbenchError

RESAMPLES = 2000
#: The ways a ratio is read (:func:`compare_runs`): as measured, and scaled by each machine probe.
WAYS = {"unscaled": "unscaled", PROBES[0]: "scaled by the matmul probe", PROBES[1]: "scaled by the small-operator probe"}


def ratio_interval(old: Sequence[float], new: Sequence[float], seed: int = 0) -> tuple[float, float, float]:
    """Ratio of medians new / old and its 95% bootstrap interval (rounds resampled with replacement)."""
    rng = np.random.default_rng(seed)
    a, b = np.asarray(old, dtype=float), np.asarray(new, dtype=float)
    ratios = np.median(rng.choice(b, (RESAMPLES, b.size)), axis=1) / np.median(rng.choice(a, (RESAMPLES, a.size)), axis=1)
    low, high = np.percentile(ratios, [2.5, 97.5])
    return float(np.median(b) / np.median(a)), float(low), float(high)


def verdict(interval: tuple[float, float], noise: float) -> str:
    """"slower" if the interval lies above 1 + noise, "faster" if below 1 / (1 + noise), else "no change"."""
    low, high = interval
    if low > 1 + noise:
        return "slower"
    if high < 1 / (1 + noise):
        return "faster"
    return "no change"


@dataclass(frozen=True)
class Comparison:
    """One benchmark in both files."""

    name: str
    old_median: float
    new_median: float
    ratio: float
    low: float
    high: float
    verdict: str
    machine: dict[str, float] = field(default_factory=dict)  # the machine's speed new / old per probe both runs have


def _name(entry: dict) -> str:
    """A benchmark's key: its test name, the same whether ``archbench bench`` (the installed suite) or
    ``pytest --benchmark-only`` (``benchmarks/``) ran it; the file path in ``fullname`` differs."""
    return entry.get("name") if isinstance(entry.get("name"), str) else entry["fullname"]


def _rounds(path: Path, data: dict) -> dict[str, list[float]]:
    out = {}
    for entry in data["benchmarks"]:
        rounds, name = entry["stats"].get("data"), _name(entry)
        if not isinstance(rounds, list) or not rounds or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in rounds
        ):
            raise ArchbenchError(f"{path}: benchmark {name!r} has no stored rounds (stats.data); write it with --benchmark-json.")
        if name in out:
            raise ArchbenchError(f"{path}: two benchmarks in different files are named {name!r}; compare runs of one file.")
        out[name] = rounds
    return out


def _probes(data: dict) -> dict[str, dict[str, float]]:
    """Each benchmark's machine probes (``machine_*_per_s``), where recorded as positive numbers."""
    out = {}
    for entry in data["benchmarks"]:
        info = entry.get("extra_info") or {}
        values = {k: float(info[k]) for k in PROBES if isinstance(info.get(k), (int, float)) and not isinstance(info[k], bool) and info[k] > 0}
        out[_name(entry)] = values
    return out


def _relative_iqr(rounds: Sequence[float]) -> float:
    q1, q2, q3 = np.percentile(rounds, [25, 50, 75])
    return float((q3 - q1) / q2)


def machine_drift(old: dict, new: dict) -> float:
    """How much the measured peak moved between two runs (0.5 = one run's machine was 1.5× faster), or 0."""
    def peaks(data: dict) -> dict:
        entries = data["machine_info"].get("archbench_peak")
        entries = entries if isinstance(entries, list) else []
        return {(p.get("device"), p.get("dtype"), p.get("threads")): p.get("gflops_per_s") for p in entries if isinstance(p, dict)}

    drift = 0.0
    a, b = peaks(old), peaks(new)
    for key in a.keys() & b.keys():
        x, y = a[key], b[key]
        if isinstance(x, (int, float)) and isinstance(y, (int, float)) and x > 0 and y > 0:
            drift = max(drift, max(x / y, y / x) - 1)
    return drift


def spread(ratios: Sequence[float]) -> float:
    """Run-to-run noise from the ratios themselves: ``exp(2σ) - 1``, σ of the log-ratios about their median
    (1.4826 × the median absolute deviation); 0 for fewer than five ratios.

    Example:
        >>> round(spread([1.0, 1.1, 0.9, 1.05, 0.95, 1.3]), 2)
        0.24
    """
    if len(ratios) < 5:
        return 0.0
    logs = np.log(np.asarray(ratios, dtype=float))
    return float(np.expm1(2 * 1.4826 * np.median(np.abs(logs - np.median(logs)))))


def compare_runs(old: str | Path, new: str | Path, noise: float = 0.1) -> tuple[list[Comparison], dict[str, float]]:
    """Compare every benchmark the two files share (see the module docstring).

    Returns:
        The rows, and the noise band of each way of reading the ratios: ``"unscaled"``, and scaled by each
        machine probe both runs have (each band from those ratios' own scatter; the peak's drift only
        unscaled, since a probe already accounts for the machine's speed). A verdict of "slower" or
        "faster" must hold in every way its benchmark can be read.

    Raises:
        ArchbenchError: for a bad file or two files with no benchmark in common.
    """
    old_data, new_data = read_json(old), read_json(new)
    old_rounds, new_rounds = _rounds(Path(old), old_data), _rounds(Path(new), new_data)
    common = [name for name in old_rounds if name in new_rounds]
    if not common:
        raise ArchbenchError(f"{old} and {new} have no benchmark in common; compare two runs of the same selection.")
    intervals = {name: ratio_interval(old_rounds[name], new_rounds[name]) for name in common}
    old_probes, new_probes = _probes(old_data), _probes(new_data)
    factors = {"unscaled": {name: 1.0 for name in common}}  # how each way scales each benchmark's ratio
    for key in PROBES:
        scale = {n: new_probes[n][key] / old_probes[n][key] for n in common if key in old_probes[n] and key in new_probes[n]}
        if scale:
            factors[key] = scale
    bands = {way: max(noise, spread([intervals[n][0] * f for n, f in scale.items()])) for way, scale in factors.items()}
    bands["unscaled"] = max(bands["unscaled"], machine_drift(old_data, new_data))
    out = []
    for name, (ratio, low, high) in intervals.items():
        a, b = old_rounds[name], new_rounds[name]
        iqr = max(_relative_iqr(a), _relative_iqr(b))
        said = {verdict((low * f[name], high * f[name]), max(bands[way], iqr)) for way, f in factors.items() if name in f}
        machine = {way: f[name] for way, f in factors.items() if way != "unscaled" and name in f}
        # the machine's own speed explains the difference when the ways disagree
        out.append(Comparison(name, float(np.median(a)), float(np.median(b)), ratio, low, high,
                              said.pop() if len(said) == 1 else "no change", machine))  # fmt: skip
    return out, bands


def compare_files(old: str | Path, new: str | Path, noise: float = 0.1) -> list[Comparison]:
    """The rows of :func:`compare_runs`."""
    return compare_runs(old, new, noise)[0]


def markdown(rows: Sequence[Comparison]) -> str:
    """The comparison as a markdown table."""
    from tabulate import tabulate

    def speed(r: Comparison) -> str:
        return " / ".join(f"{r.machine[k]:.2f}" if k in r.machine else "-" for k in PROBES)

    table = [(f"`{r.name.split('::')[-1]}`", f"{r.old_median * 1e3:.3f} ms", f"{r.new_median * 1e3:.3f} ms",
              f"{r.ratio:.3f}", f"{r.low:.3f}–{r.high:.3f}", speed(r), r.verdict) for r in rows]  # fmt: skip
    headers = ("benchmark", "old median", "new median", "new / old", "95% CI", "machine new / old (matmul / small ops)",
               "verdict")  # fmt: skip
    return tabulate(table, headers=headers, tablefmt="github", disable_numparse=True)


def fails(rows: Sequence[Comparison], threshold: float) -> list[Comparison]:
    """Rows significantly slower (verdict "slower") by more than ``threshold`` (0.05 = 5%) at the interval's low end."""
    return [r for r in rows if r.verdict == "slower" and r.low > 1 + threshold]
