"""Harness honesty checks, reported rather than asserted (the numbers depend on the machine's load).

1. **Our median vs ``torch.utils.benchmark``.** The same workload is timed by the harness (pytest-benchmark's
   own ``BenchmarkFixture.pedantic`` with our :class:`~archbench.bench.timing.SyncTimer`, exactly as in the
   suite) and by ``torch.utils.benchmark.Timer.blocked_autorange`` at the same thread count, alternating
   A, B, A, B so that load drift hits both. ``Timer`` cannot keep ``zero_grad`` out of its statement, so for a
   training step its statement is ``zero_grad; step`` and the cost of ``zero_grad`` alone is reported too.
   Target: within 5%.
2. **Our resnet18 vs torchvision's** at the same input: single calls alternate (ours, theirs, ours, ...) after
   warming both; the ratio of medians is reported with each side's interquartile range. Target: within 3%.

Run (about two minutes on two cores)::

    python -m archbench.bench.crosscheck --threads 2

Example:
    >>> from archbench.bench.crosscheck import timer_agreement  # doctest: +SKIP
    >>> timer_agreement(case_for("lenet5", "train_step", 64), threads=2).ratio  # doctest: +SKIP
    1.01
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace

import torch

from archbench.bench.cases import RESNET_OURS, RESNET_TORCHVISION, BenchCase, SuiteOptions, enumerate_cases
from archbench.bench.env import LoadMeter
from archbench.bench.harness import Workload, prepare
from archbench.bench.timing import SyncTimer, make_backend, resolve_device, set_threads, warm_up


def case_for(model: str, mode: str, batch: int, device: str = "cpu") -> BenchCase:
    """The suite's case for ``model`` (or a resnet18 pair label) in ``mode`` at ``batch``.

    Example:
        >>> case_for("lenet5", "forward", 8).id
        'lenet5-forward-cpu-b8'
    """
    pattern = "resnet18" if model in (RESNET_OURS, RESNET_TORCHVISION) else model
    cases = enumerate_cases(SuiteOptions(devices=(device,), models=pattern, batches=(batch,)))
    return next(c for c in cases if c.model == model and c.mode == mode)


def _quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    q1, q2, q3 = statistics.quantiles(values, n=4)
    return q1, q2, q3


@dataclass(frozen=True)
class Agreement:
    """Medians (seconds per call) of one workload by our harness and by ``torch.utils.benchmark``."""

    case: str
    threads: int
    ours: list[float]
    torch_timer: list[float]
    zero_grad: float | None

    @property
    def ratio(self) -> float:
        """Median of our medians over the median of torch's."""
        return statistics.median(self.ours) / statistics.median(self.torch_timer)


def _pytest_benchmark_median(workload: Workload, timer: SyncTimer, rounds: int) -> float:
    """Time with pytest-benchmark's own fixture in pedantic mode, as the suite does; return its median."""
    from pytest_benchmark.fixture import BenchmarkFixture
    from pytest_benchmark.utils import NameWrapper

    stats: list = []
    logger = SimpleNamespace(debug=lambda *a, **k: None, warning=lambda *a, **k: None, info=lambda *a, **k: None)
    fixture = BenchmarkFixture(
        SimpleNamespace(name="crosscheck", nodeid="crosscheck"), disable_gc=False, timer=NameWrapper(timer),
        min_rounds=1, min_time=5e-6, max_time=1.0, precision=None, confidence=None, warmup=False,
        warmup_iterations=0, calibration_precision=10, add_stats=stats.append, logger=logger, warner=None,
        disabled=False, cprofile=False, cprofile_loops=None, cprofile_dump=None,
    )
    fixture.pedantic(workload.step, setup=workload.setup, rounds=rounds, warmup_rounds=0)
    return float(fixture.stats.stats.median)


def timer_agreement(case: BenchCase, *, threads: int, repeats: int = 5, seconds: float = 2.0) -> Agreement:
    """Alternate our harness and ``Timer.blocked_autorange`` on one workload, ``repeats`` times each.

    Args:
        case: the workload.
        threads: torch intra-op threads for both.
        repeats: measurements per side.
        seconds: timed seconds per measurement (both sides).
    """
    from torch.utils.benchmark import Timer

    set_threads(threads)
    backend = make_backend(resolve_device(case.device))
    timer = backend.timer()
    workload = prepare(case, backend)
    ours: list[float] = []
    theirs: list[float] = []
    zero_grad: float | None = None
    with workload.context():
        per_call = warm_up(workload.step, timer, setup=workload.setup, min_seconds=0.5)
        rounds = max(5, int(seconds / max(per_call, 1e-9)))
        setup = workload.setup or (lambda: None)
        step = workload.step
        stmt = "setup(); step()" if workload.setup else "step()"
        torch_timer = Timer(stmt, globals={"setup": setup, "step": step}, num_threads=threads)
        for _ in range(repeats):
            ours.append(_pytest_benchmark_median(workload, timer, rounds))
            theirs.append(torch_timer.blocked_autorange(min_run_time=seconds).median)
        if workload.setup is not None:
            zero_grad = Timer("setup()", globals={"setup": setup}, num_threads=threads).blocked_autorange(
                min_run_time=0.2
            ).median
    return Agreement(case.id, threads, ours, theirs, zero_grad)


@dataclass(frozen=True)
class PairRatio:
    """Single-call times of two workloads, alternated; ``ratio`` = median(a) / median(b)."""

    a: str
    b: str
    threads: int
    times_a: list[float]
    times_b: list[float]

    @property
    def ratio(self) -> float:
        """Median of a over median of b."""
        return statistics.median(self.times_a) / statistics.median(self.times_b)


def interleaved_ratio(a: BenchCase, b: BenchCase, *, threads: int, rounds: int = 40) -> PairRatio:
    """Warm both workloads, then time single calls alternately (a, b, b, a, a, b, ...) for ``rounds`` each.

    The order flips every pair so neither side always runs right after the other.
    """
    set_threads(threads)
    backend = make_backend(resolve_device(a.device))
    timer = backend.timer()
    workloads = [prepare(a, backend), prepare(b, backend)]
    times: list[list[float]] = [[], []]
    for w in workloads:
        with w.context():
            warm_up(w.step, timer, setup=w.setup, min_seconds=1.0)
    for i in range(rounds):
        order = (0, 1) if i % 2 == 0 else (1, 0)
        for k in order:
            w = workloads[k]
            with w.context():
                if w.setup is not None:
                    w.setup()
                start = timer()
                w.step()
                times[k].append(timer() - start)
    return PairRatio(a.id, b.id, threads, times[0], times[1])


def _ms(values: Sequence[float]) -> str:
    q1, q2, q3 = _quartiles(values)
    return f"{q2 * 1e3:.2f} ms (IQR {q1 * 1e3:.2f}–{q3 * 1e3:.2f})"


def main(argv: Sequence[str] | None = None) -> int:
    """Print both checks (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m archbench.bench.crosscheck", description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5, help="measurements per side for the timer check")
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per measurement for the timer check")
    parser.add_argument("--pair-rounds", type=int, default=40, help="single calls per side for the resnet18 ratio")
    parser.add_argument("--pair-batch", type=int, default=16)
    parser.add_argument("--skip", choices=("timer", "pair"), action="append", default=[])
    args = parser.parse_args(argv)
    load = LoadMeter()

    if "timer" not in args.skip:
        for case in (case_for("lenet5", "train_step", 64), case_for("resnet18", "forward", 8)):
            r = timer_agreement(case, threads=args.threads, repeats=args.repeats, seconds=args.seconds)
            print(f"{r.case} ({r.threads} threads): ours {_ms(r.ours)} | torch.utils.benchmark {_ms(r.torch_timer)}"
                  f" | ratio {r.ratio:.3f}" + (f" | zero_grad alone {r.zero_grad * 1e6:.1f} us" if r.zero_grad else ""))
            print(f"  ours:  {[round(t * 1e3, 3) for t in r.ours]} ms")
            print(f"  torch: {[round(t * 1e3, 3) for t in r.torch_timer]} ms", flush=True)
    if "pair" not in args.skip:
        ours = case_for(RESNET_OURS, "train_step", args.pair_batch)
        theirs = case_for(RESNET_TORCHVISION, "train_step", args.pair_batch)
        p = interleaved_ratio(ours, theirs, threads=args.threads, rounds=args.pair_rounds)
        print(f"{p.a} {_ms(p.times_a)} vs {p.b} {_ms(p.times_b)} ({p.threads} threads, {len(p.times_a)} calls "
              f"each, alternated): ratio ours/torchvision {p.ratio:.4f}")
    share = load.others_share()
    print(f"other processes used {share:.0%} of the machine's cores meanwhile" if share is not None else "")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
