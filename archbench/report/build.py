"""``archbench report``: verify, count and benchmark, then write the markdown reports.

The report owns a fixed set of files (:data:`REPORT_FILES`) in its folder and replaces them as one unit (the
whole folder is switched atomically, see :mod:`archbench.report.files`); any other file there is kept. Everything but the timings and the environment is deterministic, so two runs
give identical tables of shapes, parameters and MACs.

Example:
    >>> build_report(Path("reports"), [Path("reports/bench-cpu.json")])  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import os
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from archbench.analysis.bottleneck import bottleneck_comparison, dense_layer_cost
from archbench.analysis.counts import count_macs
from archbench.bench.results import ABOVE_PEAK, BenchResults, BenchRow, check_distinct, load_results
from archbench.scale.launch import is_scale_results
from archbench.errors import ArchbenchError
from archbench.registry import ModelSpec, get_model, get_spec, list_models
from archbench.report import plots
from archbench.report.files import check_output_dir, replace_dir, write_bytes
from archbench.report.scale import scale_markdown
from archbench.report.tables import integer, mark, seconds, shape, table
from archbench.verify import Check, all_checks

#: Every file the report writes; any other file in the folder is kept.
REPORT_FILES = (
    "README.md",
    "networks.md",
    "verification.md",
    "bottleneck.md",
    "bottleneck.png",
    "speed.md",
    "speed_batch.png",
    "speed_macs.png",
    "feature_maps.png",
    "memory.md",
    "memory_peak.png",
    "scale.md",
)
#: Where the quick benchmark writes when no ``--bench-json`` is given.
QUICK_BENCH_JSON = "bench-cpu.json"
FEATURE_MAP_NETWORK = "mnist_net"

Log = Callable[[str], None]


def _silent(_message: str) -> None:
    return None


@dataclass(frozen=True)
class Report:
    """What :func:`build_report` wrote and found."""

    out_dir: Path
    files: tuple[Path, ...]
    checks: tuple[Check, ...]
    bench_json: tuple[Path, ...]

    @property
    def failed(self) -> list[Check]:
        """The checks that did not hold."""
        return [c for c in self.checks if not c.passed]


# ------------------------------------------------------------------------------------------------ networks
def _figure_line(spec: ModelSpec) -> str:
    """The network's declared facts, each with its source (checked in the verification report)."""
    facts = []
    for figure in spec.figures:
        form = " (torchvision form)" if figure.options.get("variant") == "torchvision" else ""
        what = "parameters" if figure.quantity == "params" else f"MACs at {shape(spec.figure_input(figure))}"
        tol = f" ± {figure.rel_tol:.1%}" if figure.rel_tol else ""
        facts.append(f"{integer(round(figure.value))}{tol} {what}{form}: {figure.source}")
    if spec.torchvision:
        facts.append(
            f"with `variant=\"torchvision\", in_channels=3, num_classes=1000` it loads `torchvision.models."
            f"{spec.torchvision}`'s state_dict; parameters and MACs equal its weights' published meta"
        )
    return "".join(f"- {fact}\n" for fact in facts)


def networks_markdown() -> str:
    """The table of every network and, per network, its declared facts and layer table (batch 1).

    Counted on the ``meta`` device (no memory, no initialisation), so the table costs little even for VGG-16.
    """
    rows, sections = [], []
    for name in list_models():
        spec = get_spec(name)
        with torch.device("meta"):
            model = get_model(name)
        count = count_macs(model, (1, *spec.input_shape))
        rows.append(
            (
                f"[`{name}`](#{name})",
                shape(spec.input_shape),
                shape(count.output_shape[1:]),
                integer(count.params),
                integer(count.total),
                integer(count.flops),
                integer(spec.flat_features),
                f"`{spec.torchvision}`" if spec.torchvision else "",
                spec.source,
            )
        )
        layer_rows = [
            (r.name, r.type, shape(r.output_shape), integer(r.params) if r.params else "", integer(r.macs) if r.macs else "")
            for r in count.layers
        ]
        sections.append(
            f"### {name}\n\n{spec.description}. Input 1×{shape(spec.input_shape)}; "
            f"{integer(count.params)} parameters; {integer(count.total)} MACs.\n\n"
            + _figure_line(spec)
            + "\n"
            + table(layer_rows, ("layer", "type", "output", "params", "MACs"), ("left", "left", "left", "right", "right"))
        )
    head = (
        "# Networks\n\n"
        "MACs are the multiply-accumulates of convolution and linear layers for one image; FLOPs = 2 × MACs. "
        "BatchNorm, activations, pooling and additions are not in these totals. Counted by archbench's "
        "closed-form counter, which the verification report checks against fvcore and `FlopCounterMode`. "
        "Each network's declared facts (closed forms, papers, torchvision's metadata) are listed in its section "
        "and checked in the verification report.\n\n"
    )
    summary = table(
        rows,
        ("network", "input", "output", "params", "MACs", "FLOPs", "flat features", "torchvision", "source"),
        ("left", "left", "left", "right", "right", "right", "right", "left", "left"),
    )
    return head + summary + "\n\n## Layers\n\n" + "\n\n".join(sections) + "\n\n![feature maps](feature_maps.png)\n"


def feature_maps_png(network: str = FEATURE_MAP_NETWORK, digit: int = 7, seed: int = 0) -> bytes:
    """Activation maps of the first two conv layers of ``network`` for a synthetic digit."""
    torch.manual_seed(seed)
    model = get_model(network)
    image = plots.synthetic_digit(digit, size=get_spec(network).input_shape[-1])
    activations = plots.first_conv_activations(model, image)
    title = f"{network}: first two conv layers on a synthetic '{digit}' (random initialisation, seed {seed})"
    return plots.feature_maps_png(image, activations, title)


# ------------------------------------------------------------------------------------------- verification
def verification_markdown(checks: Sequence[Check]) -> str:
    """Each check with pass/fail, the measured and expected values and the worst error."""
    by_area: dict[str, list[Check]] = defaultdict(list)
    for check in checks:
        by_area[check.area].append(check)
    passed = sum(c.passed for c in checks)
    parts = [
        "# Verification\n",
        f"{passed} of {len(checks)} checks pass. Each runs through the library functions the test suite uses "
        "(`archbench.verify`); expected values come from closed forms, the seeds, torchvision or a second counter; "
        "memory checks hold the prediction against the allocator's own events on a real step.\n",
    ]
    for area, rows in by_area.items():
        worst = [c.worst_error for c in rows if c.worst_error is not None]
        note = f" Worst error: {max(worst):.1e}." if worst else ""
        parts.append(f"## {area}\n\n{sum(c.passed for c in rows)} of {len(rows)} pass.{note}\n")
        parts.append(
            table(
                ((c.name, mark(c.passed), c.measured, c.expected) for c in rows),
                ("check", "result", "measured", "expected"),
            )
            + "\n"
        )
    return "\n".join(parts)


# --------------------------------------------------------------------------------------------- bottleneck
def bottleneck_markdown() -> tuple[str, bytes]:
    """The 1×1 bottleneck figures (seed 002) and the dense-layer argument (seed 003), with a bar chart."""
    demo = bottleneck_comparison()
    dense = dense_layer_cost()
    rows = [
        ("5×5 conv 192→32", integer(demo.direct_macs), integer(demo.direct_params)),
        ("1×1 conv 192→16, then 5×5 16→32", integer(demo.bottleneck_macs), integer(demo.bottleneck_params)),
        ("  of which the 1×1 reduction", integer(demo.reduce_macs), ""),
        ("ratio", f"{demo.mac_ratio:.2f}×", f"{demo.param_ratio:.2f}×"),
    ]
    text = (
        "# The 1×1 bottleneck\n\n"
        "Seed 002: on a 28×28 map with 192 channels, a 5×5 convolution to 32 channels costs 120,422,400 "
        "multiply-accumulates; reducing to 16 channels with a 1×1 convolution first brings it to 12,443,648. "
        "Counted here by the analytic counter (batch 1; both designs keep 28×28 with padding 2):\n\n"
        + table(rows, ("design", "MACs", "params"), ("left", "right", "right"))
        + "\n\n![bottleneck](bottleneck.png)\n\n"
        "Try other channel numbers with `archbench bottleneck --in 192 --mid 16 --out 32 --size 28 --kernel 5`.\n\n"
        "## Why convolutions at all\n\n"
        f"Seed 003: a fully connected layer from a {shape(dense.image_shape)} image to {dense.out_features} "
        f"outputs holds {integer(dense.weights)} weights ({integer(dense.params)} with biases) and costs "
        f"{integer(dense.macs)} MACs per image; its parameters take {dense.float32_bytes / 1e9:.2f} GB in float32.\n"
    )
    png = plots.bar_chart_png(
        {"5×5 direct": demo.direct_macs, "1×1 then 5×5": demo.bottleneck_macs},
        "multiply-accumulates",
        f"192→32 on 28×28: {demo.mac_ratio:.2f}× fewer MACs with the 1×1 bottleneck",
    )
    return text, png


# -------------------------------------------------------------------------------------------------- speed
def _spread(row: BenchRow) -> str:
    stats = row.stats or {}
    iqr = stats.get("iqr")
    return f"±{seconds(iqr / 2)} (IQR/2), {stats.get('rounds', '?')} rounds" if iqr is not None else ""


def _speed_rows(rows: Sequence[BenchRow]) -> list[tuple[str, ...]]:
    out = []
    for r in sorted(rows, key=lambda r: (str(r.model), int(r.batch))):
        pct, low = r.extra_info.get("pct_of_peak"), "≥ " * bool(r.extra_info.get("uncounted"))  # a lower bound says so
        out.append((f"`{r.model}`", str(r.batch), seconds(r.median_s), _spread(r), f"{r.images_per_s:,.0f}",
                    f"{low}{r.gflops_per_s:.2f}", f"{low}{pct:.1f}%" if isinstance(pct, (int, float)) else ""))  # fmt: skip
    return out


def _peak_rows(results: Sequence[BenchResults]) -> list[tuple[str, ...]]:
    out = []
    for result in results:
        for p in result.peaks:
            theory, readings = p.get("theoretical_gflops_per_s"), p.get("readings_gflops_per_s") or []
            out.append((str(p.get("device")), str(p.get("dtype")), str(p.get("threads")), f"{p.get('matmul_gflops_per_s', 0):.1f}",
                        f"{p.get('conv_gflops_per_s', 0):.1f}", " / ".join(f"{r:.1f}" for r in readings),
                        f"{p.get('gflops_per_s', 0):.1f}", f"{theory:.1f}" if theory else "unknown"))  # fmt: skip
    return out


def _ratio_rows(rows: Sequence[BenchRow], ours: str, theirs: str) -> list[tuple[str, ...]]:
    """Median time of ``ours`` over ``theirs`` for each (device, dtype, mode, batch) both have."""
    index = {(r.device, r.dtype, r.mode, r.batch, r.model): r for r in rows if r.status == "ok"}
    out = []
    for (device, dtype, mode, batch, model), mine in sorted(index.items(), key=lambda kv: str(kv[0])):
        other = index.get((device, dtype, mode, batch, theirs))
        if model == ours and other is not None:
            out.append(
                (device, dtype, mode, str(batch), seconds(mine.median_s), seconds(other.median_s),
                 f"{mine.median_s / other.median_s:.3f}")
            )  # fmt: skip
    return out


def _other_ratio_sections(results: Sequence[BenchResults]) -> list[str]:
    """The interleaved BatchNorm pair, the timer cross-check and the counter comparison, when the JSON has them."""
    parts = []
    entries = [(e.get("extra_info") or {}, e.get("stats") or {}) for result in results for e in result.other]
    batchnorm = [(str(i.get("device")), "×".join(map(str, i.get("shape", []))), seconds(i["ours_median_s"]),
                  seconds(i["native_median_s"]), f"{i['ratio_to_native']:.2f}×") for i, _ in entries if "ratio_to_native" in i]  # fmt: skip
    if batchnorm:
        parts.append("### Hand-written BatchNorm vs torch's (forward + backward, rounds interleaved A, B, A, B)\n\n"
                     + table(batchnorm, ("device", "shape", "ours", "native", "ours / native")) + "\n")  # fmt: skip
    cross = [(str(i.get("workload")), seconds(i["harness_median_s"]), seconds(i["torch_timer_median_s"]),
              f"{i['ratio_to_torch_timer']:.3f}") for i, _ in entries if "ratio_to_torch_timer" in i]  # fmt: skip
    if cross:
        parts.append("### The harness against `torch.utils.benchmark` (same step, same threads)\n\n"
                     + table(cross, ("workload", "pytest-benchmark", "torch.utils.benchmark", "ratio")) + "\n")  # fmt: skip
    counting = {i["method"]: (s["median"], i.get("macs")) for i, s in entries if "method" in i and "median" in s}
    if counting:
        base = counting.get("analytic", (None,))[0]
        rows = [(m, seconds(t), integer(macs) if macs else "", f"{t / base:.1f}×" if base else "") for m, (t, macs) in counting.items()]
        parts.append("### Counting MACs of ResNet-18 at 1×3×224×224\n\n"
                     + table(rows, ("method", "median", "conv+linear MACs", "time / analytic")) + "\n")  # fmt: skip
    return parts


def speed_markdown(results: Sequence[BenchResults], out_dir: Path) -> tuple[str, bytes | None, bytes | None]:
    """Speed tables per device and mode, the ratio tables, and the two plots (None when there is no data)."""
    check_distinct(results)
    rows = [r for result in results for r in result.rows]
    sources = ", ".join(f"`{_relative(result.path, out_dir)}`" for result in results)
    parts = [
        "# Speed\n",
        f"From {sources}. Median time per call with its spread (half the interquartile range), images/s = "
        "batch / median, GFLOP/s = FLOPs per image × images/s (forward: 2 × MACs; train step: forward + "
        "backward FLOPs from `FlopCounterMode`), % of peak = GFLOP/s over the run's measured peak (best of large "
        "matmuls and a large 3×3 convolution at the same dtype and threads, measured before and after the run, the "
        "better kept; theoretical = FMA lanes × 2 × 2 FMA units × threads × clock, with the clock's source below the "
        "table). Only these timings change from run to run; the networks, counts and verification tables do not.\n",
    ]
    peaks = _peak_rows(results)
    if peaks:
        bases = sorted({f"- {p.get('device')} {p.get('dtype')}, {p.get('threads')} threads: {p['theoretical_basis']}."
                        for r in results for p in r.peaks if p.get("theoretical_basis")})  # fmt: skip
        parts.append("## Measured peak\n\n" + table(peaks, ("device", "dtype", "threads", "matmul GFLOP/s", "conv GFLOP/s",
                                                             "before / after", "peak GFLOP/s", "theoretical")) + "\n")  # fmt: skip
        if bases:
            parts.append("Theoretical peak:\n\n" + "\n".join(bases) + "\n")
    groups: dict[tuple[str, str, str], list[BenchRow]] = defaultdict(list)
    for r in rows:
        groups[(r.device, r.dtype, r.mode)].append(r)
    for (device, dtype, mode), group in sorted(groups.items()):
        threads = sorted({r.threads for r in group})
        parts.append(f"## {mode} on {device} ({dtype}, {', '.join(map(str, threads))} threads)\n")
        parts.append(table(_speed_rows(group), ("network", "batch", "median", "spread", "images/s", "GFLOP/s", "% of peak")) + "\n")
        for r in sorted({r.model: r for r in group if r.extra_info.get("uncounted")}.values(), key=lambda r: str(r.model)):
            parts.append(f"≥: `{r.model}` has operators with no FLOP formula ({', '.join(sorted(r.uncounted))}), "
                         "so its GFLOP/s is a lower bound.\n")  # fmt: skip
        for r in (r for r in group if (r.extra_info.get("pct_of_peak") or 0) > 100):
            parts.append(f"Above 100%: `{r.model}` at batch {r.batch}, {r.pct_of_peak:.1f}% of peak, ran {ABOVE_PEAK}.\n")
    comparisons = [
        ("Hand-written BatchNorm network vs torch's (`lenet5_bn` / `lenet5_bn_torch`)", "lenet5_bn", "lenet5_bn_torch"),
        ("Our ResNet-18 vs torchvision's (same weights layout, 3×224×224)", "resnet18(variant=torchvision)",
         "torchvision.models.resnet18"),
    ]  # fmt: skip
    ratio_parts = []
    for title, ours, theirs in comparisons:
        ratio = _ratio_rows(rows, ours, theirs)
        if ratio:
            ratio_parts.append(
                f"### {title}\n\n"
                + table(ratio, ("device", "dtype", "mode", "batch", "ours", "theirs", "ours / theirs"))
                + "\n"
            )
    ratio_parts += _other_ratio_sections(results)
    if ratio_parts:
        parts.append("## Side-by-side ratios (same run)\n")
        parts += ratio_parts
    batch_series: dict[str, list[tuple[float, float]]] = defaultdict(list)
    macs_series: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for r in rows:
        if r.status == "ok" and r.mode == "forward":
            key = f"{r.model} ({r.device})"
            batch_series[key].append((r.batch, r.images_per_s))
            macs_series[key].append((r.macs_per_image * r.batch, r.median_s))
    batch_png = macs_png = None
    if batch_series:
        batch_png = plots.line_plot_png(batch_series, "batch size", "images / s", "Forward throughput against batch size")
        macs_png = plots.line_plot_png(macs_series, "MACs per call (batch × MACs per image)", "median seconds per call",
                                       "Forward time against work")  # fmt: skip
        parts.append("## Plots\n\n![images/s against batch](speed_batch.png)\n\n![time against MACs](speed_macs.png)\n")
    return "\n".join(parts), batch_png, macs_png


def _relative(path: Path, base: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path(base).resolve()))
    except ValueError:
        return str(path)


# -------------------------------------------------------------------------------------------------- index
def _headline(results: Sequence[BenchResults]) -> list[str]:
    lines = []
    for model, mode in (("lenet5", "forward"), ("resnet18", "train_step")):
        rows = [r for result in results for r in result.rows if (r.model, r.mode, r.status) == (model, mode, "ok")]
        for device in sorted({r.device for r in rows}):
            best = max((r for r in rows if r.device == device), key=lambda r: r.images_per_s)
            lines.append(
                f"- `{model}` {mode} on {device}: {best.images_per_s:,.0f} images/s at batch {best.batch} "
                f"({best.gflops_per_s:.2f} GFLOP/s)"
            )
    return lines


def index_markdown(checks: Sequence[Check], results: Sequence[BenchResults], environment: dict[str, Any]) -> str:
    """``README.md`` of the report: index, environment fingerprint and a one-screen summary."""
    failed = [c for c in checks if not c.passed]
    env_rows = [(k, str(v)) for k, v in environment.items() if k != "gpu"]
    gpu = environment.get("gpu")
    if gpu:
        env_rows.append(("gpu", str(gpu)))
    summary = [
        f"- Networks verified: {len(list_models())} ({', '.join(f'`{n}`' for n in list_models())})",
        f"- Checks: {len(checks) - len(failed)} passed, {len(failed)} failed"
        + (f" ({'; '.join(c.name for c in failed)})" if failed else ""),
        *_headline(results),
    ]
    return (
        "# archbench report\n\n"
        "Generated by `archbench report`. Everything but the timings and the environment is deterministic.\n\n"
        "## Summary\n\n" + "\n".join(summary) + "\n\n"
        "## Contents\n\n"
        "- [Networks](networks.md): every network's input, output, parameters, MACs and layer table, and the "
        "feature maps of the MNIST net\n"
        "- [Verification](verification.md): shapes, counts, BatchNorm and torchvision equivalence, seed bugs\n"
        "- [The 1×1 bottleneck](bottleneck.md)\n"
        "- [Speed](speed.md): forward and train-step timings, ratios and plots\n"
        "- [Memory](memory.md): bytes of parameters, gradients, optimizer state, activations and peaks\n\n"
        "## Environment\n\n" + table(env_rows, ("key", "value")) + "\n"
    )


# -------------------------------------------------------------------------------------------------- build
def build_report(
    out_dir: Path = Path("reports"),
    bench_json: Sequence[Path] = (),
    *,
    log: Log = _silent,
    run_quick_bench: Callable[[Path], None] | None = None,
) -> Report:
    """Verify, count and (if no results are given) benchmark, then replace the report folder as one unit.

    The new report is built in a staging folder beside ``out_dir`` and switched in atomically at the end
    (:func:`archbench.report.files.replace_dir`): a reader of ``out_dir`` sees the complete old report or the
    complete new one, whatever the moment of an interrupt, and an interrupted run leaves nothing behind.
    Files in ``out_dir`` that are not report files (:data:`REPORT_FILES`, and ``bench-cpu.json`` when the
    quick benchmark runs) are kept.

    Args:
        out_dir: the report folder (created if missing; its parent must exist).
        bench_json: benchmark JSON files (e.g. one CPU and one GPU run); when empty, ``run_quick_bench`` writes
            ``bench-cpu.json`` into the new report first (the previous one stays until the switch).
        log: receives one line per step (the CLI prints them on stderr).
        run_quick_bench: runs a quick CPU benchmark into the given path; required when ``bench_json`` is empty.

    Returns:
        The :class:`Report`.

    Raises:
        ArchbenchError: for a missing, corrupt, foreign or repeated JSON file, or an output folder that cannot
            be written or is being written by another run (all before any work).
    """
    out_dir = Path(out_dir)
    _check_report_folder(check_output_dir(out_dir), out_dir)
    paths = [Path(p) for p in bench_json]
    seen: dict[str, Path] = {}
    for path in paths:
        key = os.path.realpath(path)
        if key in seen:
            raise ArchbenchError(f"--bench-json lists {path} twice (as {seen[key]} and {path}); give each file once.")
        seen[key] = path
    results = [load_results(p) for p in paths]  # validate everything before writing anything
    if not paths and run_quick_bench is None:
        raise ArchbenchError("build_report needs bench_json files or a run_quick_bench function.")
    owned = REPORT_FILES if paths else (*REPORT_FILES, QUICK_BENCH_JSON)
    with replace_dir(out_dir, owned) as staging:
        if not paths:
            assert run_quick_bench is not None
            log(f"no --bench-json given: running a quick CPU benchmark for {out_dir / QUICK_BENCH_JSON}")
            run_quick_bench(staging / QUICK_BENCH_JSON)
            paths = [out_dir / QUICK_BENCH_JSON]
            results = [dataclasses.replace(load_results(staging / QUICK_BENCH_JSON), path=paths[0])]
        files, checks = _report_files(results, out_dir, log, measure_memory=run_quick_bench is not None)
        written = []
        for name, content in files.items():
            if content is not None:
                data = content.encode("utf-8") if isinstance(content, str) else content
                write_bytes(staging / name, data)
                written.append(out_dir / name)
    log(f"wrote {len(written)} files to {out_dir}")
    return Report(out_dir, tuple(written), tuple(checks), tuple(paths))


def _check_report_folder(folder: Path, given: Path) -> None:
    """Refuse a folder with subfolders and no report in it (a home or project folder, not a report's)."""
    if not folder.is_dir():
        return
    entries = list(folder.iterdir())
    if any(e.name in REPORT_FILES for e in entries):
        return
    subfolders = [e.name for e in entries if e.is_dir()]
    if subfolders:
        raise ArchbenchError(
            f"--out {given} holds folders ({', '.join(sorted(subfolders)[:3])}) and no report; the report replaces "
            "its folder as a whole, so give an empty folder, a new one or an earlier report's."
        )


def _report_files(
    results: Sequence[BenchResults], out_dir: Path, log: Log, *, measure_memory: bool
) -> tuple[dict[str, str | bytes | None], list[Check]]:
    """The content of every report file (None: nothing to draw) and the checks behind them.

    ``measure_memory``: also measure each network's peak memory (a benchmark runner was given), else predict only.
    """
    log("verifying shapes, counts, BatchNorm, torchvision equivalence and seed bugs")
    checks = all_checks()
    log("counting parameters and MACs of every network")
    networks = networks_markdown()
    log("drawing feature maps, the bottleneck chart and the speed plots")
    feature_maps = feature_maps_png()
    bottleneck_text, bottleneck_png = bottleneck_markdown()
    speed_text, batch_png, macs_png = speed_markdown(results, out_dir)
    # pytest-benchmark's own machine_info has the Python and the OS; archbench's fingerprint adds the rest
    info = results[0].machine_info if results else {}
    environment = {k: info[k] for k in ("python_version", "system", "release") if info.get(k)}
    environment.update(results[0].environment if results else {})
    from archbench.report.memory import memory_markdown

    memory_text, memory_png, memory_checks = memory_markdown(log=log, measure=measure_memory)
    checks = [*checks, *memory_checks]
    scale_docs = _scale_docs(results)
    files = {
        "README.md": index_markdown(checks, results, environment),
        "networks.md": networks,
        "verification.md": verification_markdown(checks),
        "bottleneck.md": bottleneck_text,
        "bottleneck.png": bottleneck_png,
        "speed.md": speed_text,
        "speed_batch.png": batch_png,
        "speed_macs.png": macs_png,
        "feature_maps.png": feature_maps,
        "memory.md": memory_text,
        "memory_peak.png": memory_png,
        "scale.md": "\n\n".join(scale_markdown(doc) for doc in scale_docs) + "\n" if scale_docs else None,
    }
    return files, checks


def _scale_docs(results: Sequence[BenchResults]) -> list[dict[str, Any]]:
    """The ``--bench-json`` files written by ``archbench scale`` (they feed the scaling section), each read once."""
    import json

    docs = []
    for result in results:
        try:
            data = json.loads(Path(result.path).read_text(encoding="utf-8"))
        except (OSError, ValueError, TypeError):
            continue  # load_results already read and validated it; a file gone since is not a scale file
        if is_scale_results(data):
            docs.append(data)
    return docs
