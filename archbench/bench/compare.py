"""``archbench compare OLD.json NEW.json``: did the change make it slower, at this machine's noise level?

Per benchmark in both files (by test name): the ratio of medians new / old with a 95% bootstrap interval from
the stored rounds (``stats.data``); "slower" or "faster" only when the whole interval lies beyond the noise
band: the largest of ``noise`` (10%), either run's relative IQR, the measured peak's drift, and the scatter of
all ratios about their median, corrected for judging many benchmarks at once (:func:`spread`; a shared VM
slows whole stretches of a run, which no round shows). The verdict must also hold with each ratio scaled by
the machine probes' new / old (:func:`archbench.bench.machine.machine_probe`), each reading against its own
scatter: a machine slow for a few seconds is not a slow-down, and a real one on an equally fast machine still is.

One benchmark's ratio can be 0.9× or 3× on this VM when the truth is 1.5×, so the run is also judged as a
whole (:class:`Overall`): the median of all the ratios, with a bootstrap interval over benchmarks, against
``noise`` in every reading. Two runs of the same code measured 0.96–1.04 that way; a real 1.5× of every
network 1.47–1.50.

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
from statistics import NormalDist
from typing import NamedTuple

import numpy as np

from archbench.bench.machine import PROBES
from archbench.bench.results import PEAK_KEY, read_json
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
    return "slower" if low > 1 + noise else "faster" if high < 1 / (1 + noise) else "no change"


def spread(ratios: Sequence[float]) -> float:
    """Run-to-run noise from the ratios themselves: ``exp(zσ) - 1``, σ of the log-ratios about their median
    (1.4826 × the median absolute deviation), z two-sided at 5% / n (Bonferroni: with n benchmarks judged at
    once, all n of a same-code pair stay inside it 95% of the time, not each one); 0 for fewer than five.

    Example:
        >>> round(spread([1.0, 1.1, 0.9, 1.05, 0.95, 1.3]), 2)
        0.33
    """
    if len(ratios) < 5:
        return 0.0
    logs = np.log(np.asarray(ratios, dtype=float))
    z = NormalDist().inv_cdf(1 - 0.05 / (2 * logs.size))
    return float(np.expm1(z * 1.4826 * np.median(np.abs(logs - np.median(logs)))))


@dataclass(frozen=True)
class Comparison:
    """One benchmark in both files; ``band``: the widest noise band its verdict had to clear (0.45 = ±45%);
    ``machine``: the machine's speed new / old per probe both runs have."""

    name: str
    old_median: float
    new_median: float
    ratio: float
    low: float
    high: float
    verdict: str
    band: float
    machine: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Overall:
    """Every shared benchmark together: the median of their ratios new / old (``count`` of them), its 95%
    bootstrap interval over benchmarks, and a verdict against ``band`` that must hold in every reading."""

    ratio: float
    low: float
    high: float
    verdict: str
    band: float
    count: int


class Compared(NamedTuple):
    """What :func:`compare_runs` returns: the rows, each reading's band, the run as a whole (five or more
    benchmarks, else ``None``), and the benchmarks ``unmatched`` in the other file (``{"old": [...], "new": [...]}``),
    which nothing above includes."""

    rows: list[Comparison]
    bands: dict[str, float]
    overall: Overall | None
    unmatched: dict[str, list[str]]


def _median_interval(ratios: Sequence[float], seed: int = 0) -> tuple[float, float, float]:
    """Median of ``ratios`` and its 95% bootstrap interval (benchmarks resampled with replacement)."""
    logs = np.log(np.asarray(ratios, dtype=float))
    boots = np.median(np.random.default_rng(seed).choice(logs, (RESAMPLES, logs.size)), axis=1)
    return float(np.exp(np.median(logs))), *map(float, np.exp(np.percentile(boots, [2.5, 97.5])))


def _positive(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def _runs(path: Path, data: dict) -> dict[str, tuple[list[float], dict[str, float]]]:
    """Each benchmark's rounds and machine probes, by test name."""
    out = {}
    for entry in data["benchmarks"]:
        rounds, info = entry["stats"].get("data"), entry.get("extra_info") or {}
        name = entry["name"] if isinstance(entry.get("name"), str) else entry["fullname"]
        if not isinstance(rounds, list) or not rounds or not all(map(_positive, rounds)):
            raise ArchbenchError(f"{path}: benchmark {name!r} has no stored rounds (stats.data); write it with --benchmark-json.")
        if name in out:
            raise ArchbenchError(f"{path}: two benchmarks in different files are named {name!r}; compare runs of one file.")
        out[name] = (rounds, {k: float(info[k]) for k in PROBES if _positive(info.get(k))})
    return out


def machine_drift(old: dict, new: dict) -> float:
    """How much the measured peak moved between two runs (0.5 = one run's machine was 1.5× faster), or 0."""
    def peaks(data: dict) -> dict:
        entries = data["machine_info"].get(PEAK_KEY)
        return {(p.get("device"), p.get("dtype"), p.get("threads")): p.get("gflops_per_s")
                for p in (entries if isinstance(entries, list) else []) if isinstance(p, dict)}  # fmt: skip

    a, b = peaks(old), peaks(new)
    return max([max(a[k] / b[k], b[k] / a[k]) - 1 for k in a.keys() & b.keys() if _positive(a[k]) and _positive(b[k])], default=0.0)


def _relative_iqr(rounds: Sequence[float]) -> float:
    q1, q2, q3 = np.percentile(rounds, [25, 50, 75])
    return float((q3 - q1) / q2)


def compare_runs(old: str | Path, new: str | Path, noise: float = 0.1) -> Compared:
    """Compare every benchmark the two files share (see the module docstring).

    Returns:
        The rows; the noise band of each way of reading the ratios (:data:`WAYS`): ``"unscaled"`` (widened by
        the peak's drift), and scaled by each probe both runs have ("slower" or "faster" must hold in every
        way); the run as a whole, against ``noise`` (widened by the drift when unscaled); and the benchmarks
        only one file has.

    Raises:
        ArchbenchError: for a bad file or two files with no benchmark in common.
    """
    old_data, new_data = read_json(old), read_json(new)
    before, after = _runs(Path(old), old_data), _runs(Path(new), new_data)
    common = [name for name in before if name in after]
    if not common:
        raise ArchbenchError(f"{old} and {new} have no benchmark in common; compare two runs of the same selection.")
    intervals = {name: ratio_interval(before[name][0], after[name][0]) for name in common}
    factors = {"unscaled": {name: 1.0 for name in common}}  # how each way scales each benchmark's ratio
    for key in PROBES:
        scale = {n: after[n][1][key] / before[n][1][key] for n in common if key in before[n][1] and key in after[n][1]}
        factors.update({key: scale} if scale else {})
    scaled = {way: [intervals[n][0] * f for n, f in scale.items()] for way, scale in factors.items()}  # each way's ratios
    bands = {way: max(noise, spread(ratios)) for way, ratios in scaled.items()}
    drift = machine_drift(old_data, new_data)
    bands["unscaled"] = max(bands["unscaled"], drift)
    out = []
    for name, (ratio, low, high) in intervals.items():
        a, b = before[name][0], after[name][0]
        iqr = max(_relative_iqr(a), _relative_iqr(b))
        ways = [way for way, f in factors.items() if name in f]
        said = {verdict((low * factors[way][name], high * factors[way][name]), max(bands[way], iqr)) for way in ways}
        machine = {way: f[name] for way, f in factors.items() if way != "unscaled" and name in f}
        # where the ways disagree, the machine's own speed explains the difference
        out.append(Comparison(name, float(np.median(a)), float(np.median(b)), ratio, low, high,
                              said.pop() if len(said) == 1 else "no change", max(max(bands[w] for w in ways), iqr), machine))  # fmt: skip
    whole = None
    if len(common) >= 5:
        readings = {way: (_median_interval(ratios), max(noise, drift * (way == "unscaled"))) for way, ratios in scaled.items()}
        said = {verdict(interval[1:], band) for interval, band in readings.values()}
        (ratio, low, high), _ = readings["unscaled"]
        whole = Overall(ratio, low, high, said.pop() if len(said) == 1 else "no change",
                        max(band for _, band in readings.values()), len(common))  # fmt: skip
    unmatched = {"old": [n for n in before if n not in after], "new": [n for n in after if n not in before]}
    return Compared(out, bands, whole, unmatched)


def markdown(rows: Sequence[Comparison]) -> str:
    """The comparison as a markdown table."""
    from tabulate import tabulate

    table = [(f"`{r.name.split('::')[-1]}`", f"{r.old_median * 1e3:.3f} ms", f"{r.new_median * 1e3:.3f} ms", f"{r.ratio:.3f}",
              f"{r.low:.3f}–{r.high:.3f}", " / ".join(f"{r.machine[k]:.2f}" if k in r.machine else "-" for k in PROBES),
              f"±{r.band:.0%}", r.verdict) for r in rows]  # fmt: skip
    headers = ("benchmark", "old median", "new median", "new / old", "95% CI", "machine new / old (matmul / small ops)",
               "noise band", "verdict")  # fmt: skip
    return tabulate(table, headers=headers, tablefmt="github", disable_numparse=True)


def fails(rows: Sequence[Comparison | Overall], threshold: float) -> list[Comparison | Overall]:
    """Rows (or the run as a whole) significantly slower by more than ``threshold`` (0.05 = 5%) at the interval's
    low end."""
    return [r for r in rows if r.verdict == "slower" and r.low > 1 + threshold]
