"""The memory section of the report: predicted and measured bytes of every network, and a peak plot.

Example:
    >>> text, png, checks = memory_markdown(["lenet5"], batches=(2, 4), plot_batches=(2, 4))
    >>> text.startswith("# Memory") and png[:4] == b"\\x89PNG", [c.passed for c in checks]
    (True, [True, True])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from archbench.memory.estimate import MemoryEstimate, estimate_memory, format_bytes
from archbench.memory.measure import MemoryMeasurement, measure_memory
from archbench.registry import get_spec, list_models
from archbench.verify import Check
from archbench.report import plots
from archbench.report.tables import integer, shape, table

#: Files this section adds to the report.
MEMORY_FILES = ("memory.md", "memory_peak.png")
OPTIMIZER = "momentum"  # what the benchmark's training step uses: SGD, momentum 0.9
#: Networks whose predicted training peak is above this are not measured (a shared CPU machine).
MEASURE_LIMIT = 4 << 30
#: The issue's bound on the predicted training peak, relative to the measured one.
PEAK_TOLERANCE = 0.10


def _peak_check(name: str, estimate: MemoryEstimate, measured: MemoryMeasurement) -> Check:
    """The predicted training peak within :data:`PEAK_TOLERANCE` of the measured one. Where the estimate says
    it could not see oneDNN's copies (a CPU other than AVX2 or AVX-512), the live tensors between operators (2%)."""
    full = "oneDNN's blocked copies" not in estimate.not_predicted
    predicted = estimate.peak_train if full else estimate.peak_train_between_ops
    actual = measured.peak_train if full else measured.peak_train_between_ops
    tolerance = PEAK_TOLERANCE if full else 0.02
    what = "training peak" if full else "training peak between operators"
    return Check(
        "memory", f"{name} at batch {estimate.input_shape[0]}: predicted {what} within {tolerance:.0%} of measured",
        abs(actual / predicted - 1) <= tolerance, f"{actual:,} B measured", f"{predicted:,} B predicted",
    )  # fmt: skip


def _ratio(measured: int | None, predicted: int) -> str:
    return f"{measured / predicted:.3f}" if measured is not None and predicted else ""


def _cell(value: int | None) -> str:
    return f"{integer(value)} ({format_bytes(value)})" if value is not None else "not measured"


def _network_section(name: str, runs: Sequence[tuple[MemoryEstimate, MemoryMeasurement | None]]) -> str:
    rows = []
    quantities = (
        ("parameters", lambda e, m: (e.params, None)),
        ("buffers", lambda e, m: (e.buffers, None)),
        ("gradients", lambda e, m: (e.grads, None)),
        ("optimizer state", lambda e, m: (e.optimizer_state, None)),
        ("input + targets", lambda e, m: (e.inputs, None)),
        ("saved activations", lambda e, m: (e.activations, None)),
        ("peak, training step", lambda e, m: (e.peak_train, m and m.peak_train)),
        ("peak, training step, between operators",
         lambda e, m: (e.peak_train_between_ops, m and m.peak_train_between_ops)),
        ("peak, inference", lambda e, m: (e.peak_inference, m and m.peak_inference)),
    )
    for label, pick in quantities:
        row = [label]
        for estimate, measured in runs:
            predicted, actual = pick(estimate, measured)
            row += [_cell(predicted), f"{_cell(actual)}, ×{_ratio(actual, predicted)}" if actual is not None else ""]
        rows.append(row)
    headers = ["bytes"]
    for estimate, _ in runs:
        headers += [f"predicted, batch {estimate.input_shape[0]}", "measured, × predicted"]
    first = runs[0][0]
    return (
        f"## {name}\n\nInput N×{shape(first.input_shape[1:])}, {first.dtype}, optimizer {first.optimizer}; "
        f"the training peak falls in the {first.peak_train_phase}.\n\n"
        + table(rows, headers, ["left"] + ["right"] * (len(headers) - 1))
        + f"\n\nNot in the prediction: {first.not_predicted}.\n"
    )


def _plot(series: dict[str, list[tuple[int, int, int | None]]]) -> bytes:
    """Predicted (line) and measured (crosses) training peak against batch size, one colour per network."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for index, (name, points) in enumerate(sorted(series.items())):
        colour = f"C{index % 10}"
        points = sorted(points)
        ax.plot([b for b, _, _ in points], [p / 2**20 for _, p, _ in points], color=colour, marker="o", label=name)
        measured = [(b, m / 2**20) for b, _, m in points if m is not None]
        if measured:
            ax.plot(*zip(*measured), color=colour, marker="x", markersize=9, linestyle="none")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch size")
    ax.set_ylabel("peak bytes of a training step (MiB)")
    ax.set_title("Training-step peak: predicted (lines) and measured on the CPU (crosses)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return plots._png(fig)


def memory_markdown(
    models: Sequence[str] | None = None,
    *,
    batches: tuple[int, int] = (2, 32),
    plot_batches: Sequence[int] = (8,),
    measure: bool = True,
    log: Callable[[str], None] = lambda _message: None,
) -> tuple[str, bytes, list[Check]]:
    """``memory.md``, ``memory_peak.png`` and a check per measured run (:func:`_peak_check`): per network,
    the totals at two batch sizes, predicted and measured.

    Args:
        models: registered names (default: every one); each at its quick-benchmark input size.
        batches: the two batch sizes of each network's table.
        plot_batches: further batch sizes the plot predicts (only the table's are measured).
        measure: measure on the CPU at the table's batch sizes (not where the predicted training peak is
            above :data:`MEASURE_LIMIT`, read at each call: set it to 0 to measure nothing).
        log: receives one line per network.
    """
    names = list(models) if models is not None else list_models()
    sections, summary, series, checks = [], [], {}, []
    for name in names:
        spec = get_spec(name)
        per_sample = spec.bench_input_shape or spec.input_shape
        log(f"memory of {name}")
        runs = {}
        for batch in sorted({*batches, *plot_batches}):
            estimate = estimate_memory(name, (batch, *per_sample), optimizer=OPTIMIZER)
            measured = None
            if measure and batch in batches and estimate.peak_train <= MEASURE_LIMIT:
                measured = measure_memory(name, (batch, *per_sample), optimizer=OPTIMIZER)
                checks.append(_peak_check(name, estimate, measured))
            runs[batch] = (estimate, measured)
            series.setdefault(name, []).append((batch, estimate.peak_train, measured and measured.peak_train))
        sections.append(_network_section(name, [runs[b] for b in batches]))
        estimate, measured = runs[batches[-1]]
        summary.append(
            (
                f"[`{name}`](#{name})",
                shape(estimate.input_shape),
                format_bytes(estimate.params),
                format_bytes(estimate.activations),
                format_bytes(estimate.peak_train),
                format_bytes(measured.peak_train) if measured else "not measured",
                _ratio(measured and measured.peak_train, estimate.peak_train),
                _ratio(measured and measured.peak_train_between_ops, estimate.peak_train_between_ops),
            )
        )
    head = (
        "# Memory\n\n"
        "Bytes of one steady-state training step (SGD with momentum 0.9: the optimizer state exists, gradients "
        "were set to `None`) and of one inference forward, predicted by `archbench.estimate_memory` on the meta "
        "device (no arithmetic) and measured by `archbench.measure_memory` on a real step on the CPU, from the "
        "allocator's own events (`torch.profiler`, `profile_memory=True`). Each storage counts once; peaks "
        "include parameters, buffers, optimizer state and the input.\n\n"
        "The predicted peak adds, at each oneDNN convolution, the blocked copies its kernel makes and frees "
        "inside (channels padded to the CPU's block; `archbench.memory.kernels` gives the sequence traced on "
        "this CPU); *measured / predicted* compares the full peaks, and each estimate names what it still "
        "leaves out. *Between operators* samples the live bytes only outside operators (and at their ends), "
        "measured and predicted alike: the live tensors alone, with no kernel's inside memory.\n\n"
        + ("" if measure else "Not measured in this build (`build_report` was given no benchmark runner); "
           "`archbench report` measures.\n\n")
        + f"Reproduce one row with `archbench memory NAME --batch {batches[-1]} --optimizer {OPTIMIZER} --measure`.\n\n"
        f"## At batch {batches[-1]}\n\n"
        + table(
            summary,
            ("network", "input", "parameters", "saved activations", "peak train, predicted", "measured",
             "measured / predicted", "between operators, measured / predicted"),
            ("left", "left", "right", "right", "right", "right", "right", "right"),
        )  # fmt: skip
        + "\n\n![training peak against batch size](memory_peak.png)\n\n"
    )
    return head + "\n".join(sections), _plot(series), checks
