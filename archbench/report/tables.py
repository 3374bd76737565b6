"""Markdown building blocks for the reports (GitHub-flavoured tables via tabulate)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from tabulate import tabulate


def table(rows: Iterable[Sequence[object]], headers: Sequence[str], align: Sequence[str] | None = None) -> str:
    """A GitHub markdown table; cells are printed as given (no number re-formatting).

    Example:
        >>> print(table([("lenet5", "61,706")], ("model", "params")))
        | model   | params   |
        |---------|----------|
        | lenet5  | 61,706   |
    """
    return tabulate(list(rows), headers=list(headers), tablefmt="github", disable_numparse=True, colalign=align)


def integer(value: int) -> str:
    """``1234567`` → ``"1,234,567"``."""
    return f"{value:,}"


def shape(dims: Sequence[int]) -> str:
    """``(1, 16, 5, 5)`` → ``"1×16×5×5"``."""
    return "×".join(str(d) for d in dims)


def mark(passed: bool) -> str:
    """A pass/fail cell."""
    return "pass" if passed else "**FAIL**"


def seconds(value: float) -> str:
    """A duration with a unit that keeps three significant digits."""
    if value >= 1:
        return f"{value:.3g} s"
    if value >= 1e-3:
        return f"{value * 1e3:.3g} ms"
    return f"{value * 1e6:.3g} µs"
