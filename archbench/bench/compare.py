"""``archbench compare OLD.json NEW.json``: did the change make it slower, at this machine's noise level?

Per benchmark both files have (by test name): the ratio of medians new / old with a 95% bootstrap interval from
the stored rounds (``stats.data``), "slower" or "faster" only when the whole interval lies beyond the noise
band: the widest of ``noise`` (10%), either run's relative IQR, and the scatter of all the ratios about their
median (:func:`spread`). A shared VM slows whole stretches of a run, which no round shows, so the verdict must
hold in two more readings (:data:`READINGS`), each against its own scatter: each ratio scaled by the machine's
speed new / old, probed beside each benchmark (:func:`archbench.bench.machine.machine_probe`), and the ratio of
the fastest rounds, which a slow spell inside a benchmark leaves alone and a real slow-down does not. One ratio
can read 0.9× or 3× on this VM when the truth is 1.5×, so the run is also judged as a whole: the median of all
the ratios, with a bootstrap interval over benchmarks, against ``noise`` in every reading.

Example:
    >>> verdict(ratio_interval([1.0, 1.1, 0.9] * 10, [1.5, 1.65, 1.35] * 10)[1:], noise=0.1)
    'slower'
    >>> verdict(ratio_interval([1.0, 1.1, 0.9] * 10, [1.0, 1.1, 0.9] * 10)[1:], noise=0.1)
    'no change'
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import NamedTuple

import numpy as np

from archbench.bench.machine import PROBE
from archbench.bench.results import read_json
from archbench.errors import ArchbenchError

RESAMPLES = 2000
#: The fewest shared benchmarks whose ratios show the run-to-run scatter (and judge the run as a whole).
MIN_SCATTER = 5
#: The ways each ratio is read; a "slower" or "faster" verdict must hold in every one.
READINGS = MEDIANS, SCALED, FASTEST = "medians", "medians scaled by the machine probe", "fastest rounds"


def ratio_interval(old: Sequence[float], new: Sequence[float], q: float = 50, seed: int = 0) -> tuple[float, float, float]:
    """Ratio of the ``q``-th percentiles new / old (50: the medians; 0: the fastest rounds) and its 95% bootstrap
    interval (rounds resampled with replacement)."""
    rng = np.random.default_rng(seed)
    a, b = np.asarray(old, dtype=float), np.asarray(new, dtype=float)

    def resampled(x: np.ndarray) -> np.ndarray:
        return np.percentile(rng.choice(x, (RESAMPLES, x.size)), q, axis=1)

    low, high = np.percentile(resampled(b) / resampled(a), [2.5, 97.5])
    return float(np.percentile(b, q) / np.percentile(a, q)), float(low), float(high)


def verdict(interval: tuple[float, float], noise: float) -> str:
    """"slower" if the interval lies above 1 + noise, "faster" if below 1 / (1 + noise), else "no change"."""
    low, high = interval
    return "slower" if low > 1 + noise else "faster" if high < 1 / (1 + noise) else "no change"


def _agreed(verdicts: Iterable[str]) -> str:
    said = set(verdicts)
    return said.pop() if len(said) == 1 else "no change"  # the readings disagree: the machine explains it


def spread(ratios: Sequence[float]) -> float:
    """Run-to-run noise from the ratios themselves: ``exp(zσ) - 1``, σ of the log-ratios about their median
    (1.4826 × the median absolute deviation), z two-sided at 5% / n (Bonferroni: with n benchmarks judged at
    once, all n of a same-code pair stay inside it 95% of the time, not each one); 0 for fewer than
    :data:`MIN_SCATTER`.

    Example:
        >>> round(spread([1.0, 1.1, 0.9, 1.05, 0.95, 1.3]), 2)
        0.33
    """
    if len(ratios) < MIN_SCATTER:
        return 0.0
    logs = np.log(np.asarray(ratios, dtype=float))
    z = NormalDist().inv_cdf(1 - 0.05 / (2 * logs.size))
    return float(np.expm1(z * 1.4826 * np.median(np.abs(logs - np.median(logs)))))


@dataclass(frozen=True)
class Comparison:
    """One benchmark in both files, or the run as a whole; ``band``: the widest noise band its verdict had to
    clear (0.45 = ±45%); ``machine``: the machine's speed new / old beside it, where both runs probed it."""

    name: str
    ratio: float
    low: float
    high: float
    verdict: str
    band: float
    old_median: float | None = None
    new_median: float | None = None
    machine: float | None = None


class Compared(NamedTuple):
    """What :func:`compare_runs` returns: the rows, each reading's band, the run as a whole (:data:`MIN_SCATTER` or
    more benchmarks, else ``None``) and the benchmarks only one file has (``{"old": [...], "new": [...]}``)."""

    rows: list[Comparison]
    bands: dict[str, float]
    overall: Comparison | None
    unmatched: dict[str, list[str]]


def _median_interval(ratios: Sequence[float], seed: int = 0) -> tuple[float, float, float]:
    """Median of ``ratios`` and its 95% bootstrap interval (benchmarks resampled with replacement)."""
    logs = np.log(np.asarray(ratios, dtype=float))
    boots = np.median(np.random.default_rng(seed).choice(logs, (RESAMPLES, logs.size)), axis=1)
    return float(np.exp(np.median(logs))), *map(float, np.exp(np.percentile(boots, [2.5, 97.5])))


def _positive(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def _runs(path: str | Path) -> dict[str, tuple[list[float], float | None]]:
    """Each benchmark's rounds and machine probe, by test name."""
    out = {}
    for entry in read_json(path)["benchmarks"]:
        rounds, probe = entry["stats"].get("data"), (entry.get("extra_info") or {}).get(PROBE)
        name = entry["name"] if isinstance(entry.get("name"), str) else entry["fullname"]
        if not isinstance(rounds, list) or not rounds or not all(map(_positive, rounds)):
            raise ArchbenchError(f"{path}: benchmark {name!r} has no stored rounds (stats.data); write it with --benchmark-json.")
        if name in out:
            raise ArchbenchError(f"{path}: two benchmarks in different files are named {name!r}; compare runs of one file.")
        out[name] = (rounds, float(probe) if _positive(probe) else None)
    return out


def _relative_iqr(rounds: Sequence[float]) -> float:
    q1, q2, q3 = np.percentile(rounds, [25, 50, 75])
    return float((q3 - q1) / q2)


def compare_runs(old: str | Path, new: str | Path, noise: float = 0.1) -> Compared:
    """Compare every benchmark the two files share (see the module docstring).

    Returns:
        The rows; the noise band of each of the :data:`READINGS` (:data:`SCALED` only where both runs probed
        the machine); the run as a whole; the benchmarks only one file has.

    Raises:
        ArchbenchError: for a bad file or two files with no benchmark in common.
    """
    before, after = _runs(old), _runs(new)
    common = [name for name in before if name in after]
    if not common:
        raise ArchbenchError(f"{old} and {new} have no benchmark in common; compare two runs of the same selection.")
    medians = {name: ratio_interval(before[name][0], after[name][0]) for name in common}
    speed = {n: after[n][1] / before[n][1] for n in common if before[n][1] and after[n][1]}  # type: ignore[operator]
    readings = {  # each benchmark's ratio and interval, read three ways
        MEDIANS: medians,
        SCALED: {n: tuple(v * speed[n] for v in medians[n]) for n in speed},
        FASTEST: {name: ratio_interval(before[name][0], after[name][0], q=0) for name in common},
    }
    readings = {way: reading for way, reading in readings.items() if reading}
    bands = {way: max(noise, spread([r[0] for r in reading.values()])) for way, reading in readings.items()}
    rows = []
    for name, (ratio, low, high) in medians.items():
        a, b = before[name][0], after[name][0]
        iqr, ways = max(_relative_iqr(a), _relative_iqr(b)), [way for way in readings if name in readings[way]]
        said = _agreed(verdict(readings[w][name][1:], max(bands[w], iqr)) for w in ways)
        rows.append(Comparison(name, ratio, low, high, said, max(iqr, *(bands[w] for w in ways)),
                               float(np.median(a)), float(np.median(b)), speed.get(name)))  # fmt: skip
    whole = None
    if len(common) >= MIN_SCATTER:
        judged = {way: _median_interval([r[0] for r in reading.values()]) for way, reading in readings.items()}
        said = _agreed(verdict(interval[1:], noise) for interval in judged.values())
        whole = Comparison(f"whole run ({len(common)} benchmarks)", *judged[MEDIANS], said, noise)
    unmatched = {"old": [n for n in before if n not in after], "new": [n for n in after if n not in before]}
    return Compared(rows, bands, whole, unmatched)


def markdown(rows: Sequence[Comparison]) -> str:
    """The comparison as a markdown table."""
    from tabulate import tabulate

    table = [(f"`{r.name.split('::')[-1]}`", f"{r.old_median * 1e3:.3f} ms", f"{r.new_median * 1e3:.3f} ms", f"{r.ratio:.3f}",
              f"{r.low:.3f}–{r.high:.3f}", "-" if r.machine is None else f"{r.machine:.2f}", f"±{r.band:.0%}", r.verdict)
             for r in rows]  # fmt: skip
    headers = ("benchmark", "old median", "new median", "new / old", "95% CI", "machine new / old", "noise band", "verdict")
    return tabulate(table, headers=headers, tablefmt="github", disable_numparse=True)


def fails(rows: Sequence[Comparison], threshold: float) -> list[Comparison]:
    """Rows (or the run as a whole) significantly slower by more than ``threshold`` (0.05 = 5%) at the interval's
    low end."""
    return [r for r in rows if r.verdict == "slower" and r.low > 1 + threshold]
