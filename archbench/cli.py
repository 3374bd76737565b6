"""The ``archbench`` command line; the only module that talks to the terminal.

Every mistake made at the command line (unknown model, bad size) ends with one line on stderr and exit
status 2, never a traceback.

Example:
    $ archbench list
    $ archbench summary lenet5 --input-size 1 28 28 --batch 4
    $ archbench flops resnet18 --method fvcore --input-size 1 224 224
    $ archbench bottleneck --in 192 --mid 16 --out 32 --size 28 --kernel 5
    $ archbench bench --device cpu --models 'lenet*' --batch 1 64 --json reports/bench-cpu.json
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from tabulate import tabulate

from archbench.errors import ArchbenchError


def _fmt_shape(shape: Sequence[int]) -> str:
    return "×".join(str(s) for s in shape)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"sizes must be positive, got {value}")
    return value


def _sizes(text: str) -> tuple[int, ...]:
    """One ``--input-size`` word: ``3``, or several sizes joined by commas or x (``3,64,64``, ``3x64x64``)."""
    parts = [p for p in text.replace("×", ",").replace("x", ",").split(",") if p]
    if not parts:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
    return tuple(_positive(p) for p in parts)


class _Sizes(argparse.Action):
    """Collect ``--input-size`` words into one flat list of sizes."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Sequence[tuple[int, ...]],
                 option_string: str | None = None) -> None:  # fmt: skip
        setattr(namespace, self.dest, [size for word in values for size in word])


def _add_model_arguments(p: argparse.ArgumentParser, *, batch_default: int = 1) -> None:
    """The arguments every command that takes one network shares: REF, --model-arg, --input-size, --batch."""
    p.add_argument("ref", metavar="MODEL", help="a name from `archbench list`, package.module:attr or path/file.py:attr")
    p.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="builder option, a Python literal (repeatable), e.g. num_classes=10")  # fmt: skip
    p.add_argument("--input-size", nargs="+", type=_sizes, action=_Sizes, metavar="D",
                   help="one sample's shape, any rank (e.g. 3 224 224 or 3,224,224, or 7 12 for 7 steps of 12 "
                   "features); required for unregistered networks")  # fmt: skip
    p.add_argument("--batch", type=_positive, default=batch_default, help=f"batch size (default {batch_default})")


def _resolve_cli_model(args: argparse.Namespace) -> tuple[object, tuple[int, ...]]:
    """Build the network named on the command line; returns (resolved model, input shape with batch)."""
    from archbench.refs import is_reference, missing_input_size, parse_model_args, resolve_ref

    options = parse_model_args(args.model_arg)
    if args.input_size is None and is_reference(args.ref):
        raise missing_input_size(args.ref)  # checked before building: an unregistered network needs it
    ref = resolve_ref(args.ref, **options)
    return ref, ref.input_shape(args.input_size, args.batch)


def cmd_list(args: argparse.Namespace) -> int:
    """``archbench list [PATTERN]``: one line per registered network."""
    import torch

    from archbench.registry import get_model, get_spec, list_models

    rows = []
    for name in list_models(args.pattern):
        spec = get_spec(name)
        with torch.device("meta"):  # shapes only: no weights are allocated or initialised
            params = sum(p.numel() for p in get_model(name).parameters())
        rows.append((name, _fmt_shape(spec.input_shape), f"{params:,}", spec.source))
    if not rows:
        raise ArchbenchError(f"No model matches {args.pattern!r}; run `archbench list` to see all names.")
    print(tabulate(rows, headers=("model", "input", "params", "source"), disable_numparse=True))
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    """``archbench summary NAME``: the layer-by-layer table of shapes and parameters."""
    from archbench.analysis.counts import count_params
    from archbench.analysis.summary import trace_shapes

    ref, shape = _resolve_cli_model(args)
    rows = trace_shapes(ref.module, shape)  # one validated forward pass; a misfit names its layer
    table = [
        ("  " * (r.depth - 1) + r.name, r.type, _fmt_shape(r.output_shape), f"{r.params:,}" if r.params else "-")
        for r in rows
        if r.depth <= args.depth and r.type != "Identity"  # placeholders of absent layers (e.g. no norm)
    ]
    about = f", {ref.spec.description}" if ref.spec else ""
    print(f"{ref.label}: input {_fmt_shape(shape)}{about}")
    print(tabulate(table, headers=("layer", "type", "output shape", "params"), disable_numparse=True))
    total = count_params(ref.module)
    print(f"total parameters: {total:,}")
    return 0


def cmd_flops(args: argparse.Namespace) -> int:
    """``archbench flops NAME``: conv + linear MACs and parameters per layer, from one of three counters."""
    from archbench.analysis.counts import count_macs

    ref, shape = _resolve_cli_model(args)
    if args.method == "all":
        results = [count_macs(ref.module, shape, method) for method in ("analytic", "fvcore", "torch")]
        print(f"{ref.label}: input {_fmt_shape(shape)}, conv+linear MACs by three counters")
        rows = [(r.method, f"{r.total:,}", "yes" if r.complete else f"no: {_uncounted(r)}") for r in results]
        print(tabulate(rows, headers=("counter", "MACs", "complete"), disable_numparse=True))
        if len({r.total for r in results}) > 1:
            incomplete = [r.method for r in results if not r.complete]
            why = f" ({', '.join(incomplete)} incomplete, see the table" if incomplete else ""
            if incomplete and len({r.total for r in results if r.complete}) == 1:
                why += "; the complete counters agree"
            print(f"warning: the counters disagree{why}{')' if why else ''}", file=sys.stderr)
        return 0
    result = count_macs(ref.module, shape, args.method, backward=args.backward)
    table = [
        (
            "  " * r.name.count(".") + r.name,
            r.type + (f" ({r.counted_by})" if r.counted_by in ("meta", "ops") else ""),
            _fmt_shape(r.output_shape),
            f"{r.params:,}" if r.params else "-",
            f"{r.macs:,}" if r.macs else "-",
            f"{r.other_ops:,} {r.other_kind}" if r.other_ops else "-",
        )
        for r in result.layers
        if r.type != "Identity"  # placeholders of absent layers (e.g. no norm)
    ]
    print(f"{ref.label}: input {_fmt_shape(shape)}, {args.method} counter")
    headers = ("layer", "type", "output shape", "params", "MACs", "other ops")
    print(tabulate(table, headers=headers, disable_numparse=True))
    print(f"conv+linear MACs: {result.total:,} (FLOPs = 2 × MACs = {result.flops:,})")
    if result.other_ops:
        others = ", ".join(f"{kind} {ops:,}" for kind, ops in result.other_ops.items())
        source = "fvcore's own counts" if args.method == "fvcore" else "one op per element, pooling per window element"
        print(f"other ops, not in the MACs ({source}): {others}")
    print(f"parameters: {result.params:,}")
    if result.meta_fallback:
        print(f"no counting rule, shapes from a meta-device forward: {', '.join(result.meta_fallback)}")
    if result.backward is not None:
        print(
            f"backward MACs (FlopCounterMode): {result.backward:,}; "
            f"convention 2 × forward: {result.backward_convention:,}"
        )
    if not result.complete:
        print(f"warning: incomplete count, no formula for {_uncounted(result)}", file=sys.stderr)
    return 0


def _uncounted(result: object) -> str:
    """``"aten::lstm ×2, Foo ×1"``: what a :class:`MacCount` could not count."""
    return ", ".join(f"{op} ×{n}" for op, n in result.uncounted.items())


def cmd_bottleneck(args: argparse.Namespace) -> int:
    """``archbench bottleneck``: a k×k convolution against a 1×1 reduction followed by it (seed 002)."""
    from archbench.analysis.bottleneck import bottleneck_comparison

    c = bottleneck_comparison(
        args.in_channels, args.mid, args.out, size=args.size, kernel=args.kernel, batch=args.batch, method=args.method
    )
    k, size = f"{c.kernel}×{c.kernel}", f"{c.size}×{c.size}"
    rows = [
        (f"{k} conv {c.in_channels}→{c.out_channels}", f"{c.direct_macs:,}", f"{c.direct_params:,}"),
        (
            f"1×1 conv {c.in_channels}→{c.mid_channels}, then {k} conv {c.mid_channels}→{c.out_channels}",
            f"{c.bottleneck_macs:,} = {c.reduce_macs:,} + {c.bottleneck_macs - c.reduce_macs:,}",
            f"{c.bottleneck_params:,}",
        ),
        ("ratio (direct / bottleneck)", f"{c.mac_ratio:.2f}×", f"{c.param_ratio:.2f}×"),
    ]
    shapes = f"{c.batch}×{c.in_channels}×{size} -> {c.batch}×{c.out_channels}×{size}"
    print(f"1×1 bottleneck: {shapes}, {c.method} counter")
    print(tabulate(rows, headers=("design", "MACs", "params"), disable_numparse=True))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """``archbench bench``: ``pytest.main`` over the benchmark suite; extra ``--benchmark-*`` options pass through."""
    from archbench.bench import load_results
    from archbench.bench.runner import run_benchmarks

    passthrough = list(args.pytest_args or [])
    if passthrough[:1] == ["--"]:
        passthrough = passthrough[1:]
    code = run_benchmarks(
        models=tuple(args.models), input_size=tuple(args.input_size) if args.input_size else None,
        device=args.device, batches=tuple(args.batch) if args.batch else None, sweep=args.sweep, dtype=args.dtype,
        channels_last=args.channels_last, compile=args.compile, **({"threads": args.threads} if args.threads else {}),
        max_time=args.max_time, min_rounds=args.min_rounds, json_path=args.json, extra_args=passthrough,
    )  # fmt: skip
    if args.json and code == 0:
        print(f"archbench: wrote {len(load_results(args.json).rows)} network rows to {args.json}")
    return code


def _percent(text: str) -> float:
    """``"5%"`` or ``"0.05"`` → 0.05."""
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 10:
        raise argparse.ArgumentTypeError(f"expected a percentage such as 5% or 0.05, got {text!r}")
    return value


def cmd_compare(args: argparse.Namespace) -> int:
    """``archbench compare OLD NEW``: ratio of medians with a bootstrap interval and a verdict per benchmark."""
    from archbench.bench.compare import MIN_SCATTER, compare_runs, fails, markdown

    rows, bands, whole, unmatched = compare_runs(args.old, args.new, noise=args.noise)
    for side, path in (("old", args.old), ("new", args.new)):
        if unmatched[side]:
            count = len(unmatched[side])
            print(f"Not compared: {count} benchmark{'s' * (count != 1)} only in {path} ({', '.join(unmatched[side])}).")
    if whole is not None:
        print(f"{whole.name}: new / old {whole.ratio:.3f} (median of the ratios, 95% CI "
              f"{whole.low:.3f}–{whole.high:.3f}), {whole.verdict} against ±{whole.band:.0%} in every reading.")
    else:
        print(f"Only {len(rows)} benchmark{'s' * (len(rows) != 1)} in common: fewer than {MIN_SCATTER} cannot show how far "
              f"a rerun of the same code moves, so each verdict holds against only the ±{args.noise:.0%} floor and the "
              "rounds' spread, and a shared machine can move one benchmark further; compare more benchmarks or widen --noise.")
    print("Noise bands of single benchmarks (changes within them are noise; a verdict must hold in every reading): "
          + "; ".join(f"{way} ±{band:.0%}" for way, band in bands.items()) + ".\n")
    print(markdown(rows))
    slow = fails([*rows, *([whole] if whole else [])], args.fail_on) if args.fail_on is not None else []
    for row in slow:
        print(f"archbench: {row.name} is slower by {row.ratio - 1:.0%} (interval {row.low:.3f}–{row.high:.3f})", file=sys.stderr)
    return 1 if slow else 0


def cmd_report(args: argparse.Namespace) -> int:
    """``archbench report``: verify, count, benchmark and write the markdown reports."""
    import contextlib
    import io
    import tempfile
    from pathlib import Path

    from archbench.bench.runner import run_benchmarks
    from archbench.report.build import build_report
    from archbench.report.files import check_output_dir

    check_output_dir(args.out)  # before anything runs (build_report checks again under its lock)

    def log(message: str) -> None:
        if not args.quiet:
            print(f"[report] {message}", file=sys.stderr, flush=True)

    def quick_bench(path: Path) -> None:
        # pytest-benchmark's own tables go to stderr (or nowhere with --quiet); stdout stays for the summary.
        # pytest-benchmark creates its storage folder (./.benchmarks) whatever the options: keep it out of sight.
        sink = io.StringIO() if args.quiet else sys.stderr
        path.parent.mkdir(parents=True, exist_ok=True)  # run_benchmarks refuses a missing folder
        with contextlib.redirect_stdout(sink), tempfile.TemporaryDirectory() as storage:
            code = run_benchmarks(device="cpu", max_time=args.bench_time, min_rounds=3, json_path=path,
                                  extra_args=["-q", "--benchmark-quiet", f"--benchmark-storage=file://{storage}"])  # fmt: skip
        if code == 2:  # pytest's INTERRUPTED: it caught the Ctrl-C (or SIGTERM) itself
            raise KeyboardInterrupt
        if code != 0:
            raise ArchbenchError(f"The quick benchmark failed (pytest exit {code}); run `archbench bench` to see why.")

    if any(not p.strip() for p in args.bench_json):
        raise ArchbenchError("--bench-json got an empty file name; give the JSON files that --benchmark-json wrote.")
    report = build_report(Path(args.out), [Path(p) for p in args.bench_json], log=log, run_quick_bench=quick_bench)
    failed = report.failed
    print(f"archbench: report in {report.out_dir}/ ({len(report.files)} files); "
          f"{len(report.checks) - len(failed)} checks passed, {len(failed)} failed")  # fmt: skip
    for check in failed:
        print(f"  FAILED {check.area}: {check.name}: measured {check.measured}, expected {check.expected}")
    return 1 if failed else 0


def cmd_memory(args: argparse.Namespace) -> int:
    """``archbench memory NAME``: predicted (and with ``--measure`` measured) bytes of a training step."""
    from archbench.memory.estimate import estimate_memory, format_bytes
    from archbench.memory.measure import check_device, measure_memory

    if args.measure:
        check_device(args.device)  # before any work: CUDA absent is one line
    ref, shape = _resolve_cli_model(args)
    est = estimate_memory(ref, shape, optimizer=args.optimizer, device=args.device)
    print(f"{ref.label}: input {_fmt_shape(shape)}, optimizer {args.optimizer}, {est.dtype}")
    layers = [
        ("  " * layer.name.count(".") + (layer.name or "(model)"), layer.type, format_bytes(layer.output_bytes),
         format_bytes(layer.saved_bytes) if layer.saved_bytes else "-")
        for layer in est.layers if layer.type != "Identity"
    ]  # fmt: skip
    print(tabulate(layers, headers=("layer", "type", "output", "saved for backward"), disable_numparse=True))
    measured = measure_memory(ref, shape, optimizer=args.optimizer, device=args.device) if args.measure else None

    def row(label: str, predicted: int, actual: int | None = None) -> tuple[str, ...]:
        cells = (label, f"{predicted:,}", format_bytes(predicted))
        if measured is None:
            return cells
        if actual is None:
            return (*cells, "", "")
        return (*cells, f"{actual:,}", f"{actual / predicted:.3f}" if predicted else "-")

    totals = [
        row("parameters", est.params),
        row("buffers", est.buffers),
        row("gradients", est.grads),
        row("optimizer state", est.optimizer_state),
        row("input + targets", est.inputs),
        row("saved activations", est.activations),
        row(f"peak, training step (in {est.peak_train_phase})", est.peak_train, measured and measured.peak_train),
        row("peak, inference forward", est.peak_inference, measured and measured.peak_inference),
    ]
    if measured is None or measured.peak_train_between_ops is not None:  # the live tensors alone, kernels left out
        between = measured and measured.peak_train_between_ops
        totals.append(row("peak, training step, between operators", est.peak_train_between_ops, between))
        between = measured and measured.peak_inference_between_ops
        totals.append(row("peak, inference, between operators", est.peak_inference_between_ops, between))
    headers = ("bytes", "predicted", "")
    if measured is not None:
        headers = (*headers, f"measured ({measured.device}, {measured.method})", "measured / predicted")
    print(tabulate(totals, headers=headers, disable_numparse=True, colalign=("left", "right", "right", "right", "right")))
    print(f"not in the prediction: {est.not_predicted}.")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """``archbench train NAME``: SGD on MNIST, Fashion-MNIST or the synthetic set, one line per epoch."""
    from archbench.data import make_loaders
    from archbench.registry import get_model, get_spec
    from archbench.train import FitConfig, fit

    spec = get_spec(args.name)
    size = spec.input_shape[-1]
    config = FitConfig(epochs=args.epochs, lr=args.lr, momentum=args.momentum, output=spec.output)  # checked first
    train, test = make_loaders(args.data, root=args.root, batch_size=args.batch, download=args.download,
                               resize=None if size == 28 else size, image_size=size)  # fmt: skip
    dropped = ", the last batch of one image dropped each epoch" if train.drop_last else ""
    print(f"training {args.name} on {args.data} ({len(train.dataset):,} images{dropped}), loss for {spec.output}")

    def report(r: object) -> None:
        print(
            f"epoch {r.epoch}: loss {r.train_loss:.4f}, train acc {r.train_accuracy:.3f}, "
            f"test acc {r.test_accuracy:.3f}, {r.seconds:.1f} s",
            flush=True,
        )

    torch_seed(args.seed)
    fit(get_model(args.name), train, test, config, on_epoch=report)
    return 0


def cmd_scale(args: argparse.Namespace) -> int:
    """``archbench scale MODEL``: DDP training through torchrun per world size, and DDP's gradients checked."""
    from archbench.analysis.summary import trace_shapes
    from archbench.scale.launch import ScaleConfig, ScaleFailure, run_scale
    from archbench.refs import parse_model_args
    from archbench.report.scale import gradient_verdict, scale_table

    resolved, shape = _resolve_cli_model(args)
    trace_shapes(resolved.module, (2, *shape[1:]))  # the input fits, checked here rather than in every rank
    config = ScaleConfig(
        args.ref, parse_model_args(args.model_arg), tuple(shape[1:]), batch=args.batch,
        nproc_per_node=args.nproc_per_node, nnodes=args.nnodes, node_rank=args.node_rank,
        rdzv_endpoint=args.rdzv_endpoint, device=args.device, steps=args.steps, warmup=args.warmup,
        threads=args.threads, timeout=args.timeout, time_limit=args.time_limit,
    )  # fmt: skip

    def log(message: str) -> None:
        print(f"[scale] {message}", file=sys.stderr, flush=True)

    try:
        doc = run_scale(config, args.json, log=log)
    except ScaleFailure as err:
        print(f"archbench: scale failed: {err}", file=sys.stderr)
        return 1
    print(scale_table(doc))
    if args.json:
        print(f"archbench: wrote {len(doc['benchmarks'])} world sizes to {args.json}")
    return 0 if gradient_verdict(doc["archbench_scale"]["gradient_check"])[0] else 1


def torch_seed(seed: int) -> None:
    """Seed torch's global generator (weight initialisation, dropout)."""
    import torch

    torch.manual_seed(seed)


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text!r}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not -(2**63) <= value < 2**64:
        raise argparse.ArgumentTypeError(f"must be between -2**63 and 2**64 - 1 (torch.manual_seed), got {value}")
    return value


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr (no usage dump), exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-command per job."""
    from archbench import __version__

    parser = _Parser(prog="archbench", description="Verify and benchmark classic CNNs.")
    parser.add_argument("--version", action="version", version=f"archbench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("list", help="list the registered networks")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style wildcard, e.g. 'lenet*'")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("summary", help="layer-by-layer shapes and parameters of a network")
    _add_model_arguments(p)
    p.add_argument("--depth", type=_positive, default=99, help="show modules down to this nesting depth")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("train", help="train a network (MNIST, Fashion-MNIST or a synthetic set)")
    p.add_argument("name", help="a name from `archbench list`")
    p.add_argument("--data", choices=("synthetic", "mnist", "fashion-mnist"), default="synthetic")
    p.add_argument("--root", default="data", help="folder with MNIST/raw or FashionMNIST/raw (default ./data)")
    p.add_argument("--download", action="store_true", help="download the dataset if missing (needs a network)")
    p.add_argument("--epochs", type=_positive, default=1)
    p.add_argument("--batch", type=_positive, default=64)
    p.add_argument("--lr", type=_rate, default=0.01)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--seed", type=_seed, default=0)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("flops", help="conv + linear MACs and parameters per layer (analytic, fvcore or torch)")
    _add_model_arguments(p)
    p.add_argument(
        "--method", choices=("analytic", "fvcore", "torch", "all"), default="analytic", help="counter (all: compare)"
    )
    p.add_argument("--backward", action="store_true", help="also count the backward pass (FlopCounterMode)")
    p.set_defaults(func=cmd_flops)

    p = sub.add_parser("bottleneck", help="MACs and parameters of a k×k conv with and without a 1×1 bottleneck")
    p.add_argument("--in", dest="in_channels", type=_positive, default=192, help="input channels (192)")
    p.add_argument("--mid", type=_positive, default=16, help="channels after the 1×1 reduction (16)")
    p.add_argument("--out", type=_positive, default=32, help="output channels (32)")
    p.add_argument("--size", type=_positive, default=28, help="input height and width (28)")
    p.add_argument("--kernel", type=_positive, default=5, help="odd kernel size of the large conv (5)")
    p.add_argument("--batch", type=_positive, default=1, help="batch size (1)")
    p.add_argument(
        "--method", choices=("analytic", "fvcore", "torch", "all"), default="analytic", help="counter (all: compare)"
    )
    p.set_defaults(func=cmd_bottleneck)

    p = sub.add_parser("bench", help="time forward passes and training steps of the networks (pytest-benchmark)")
    p.add_argument("--models", nargs="+", default=["*"], metavar="MODEL",
                   help="model references or wildcards over registered names (default *)")
    p.add_argument("--input-size", nargs="+", type=_sizes, action=_Sizes, metavar="N",
                   help="per-sample shape for unregistered models, e.g. 3 32 32 or 3,32,32")  # fmt: skip
    p.add_argument("--device", choices=("cpu", "cuda", "auto", "all"), default="auto", help="default auto: cuda if present")
    p.add_argument("--batch", nargs="+", type=_positive, metavar="N", help="batch sizes (default: 1 and one by MACs)")
    p.add_argument("--sweep", action="store_true", help="the wider batch-size sweep")
    p.add_argument("--json", metavar="PATH", help="write pytest-benchmark's JSON here (replaced only after a full run)")
    p.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default="float32", help="autocast dtype")
    p.add_argument("--channels-last", action="store_true", help="channels-last models and inputs")
    p.add_argument("--compile", action="store_true", help="torch.compile the networks")
    p.add_argument("--threads", type=_positive, help="torch intra-op threads (default: every usable core)")
    p.add_argument("--max-time", type=_rate, help="--benchmark-max-time: seconds of rounds per benchmark (1.0)")
    p.add_argument("--min-rounds", type=_positive, help="--benchmark-min-rounds (5)")
    p.add_argument("pytest_args", nargs=argparse.REMAINDER, help="after --: more pytest options, e.g. -k forward")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("memory", help="bytes of parameters, gradients, optimizer state, activations and peaks")
    _add_model_arguments(p)
    p.add_argument("--optimizer", choices=("sgd", "momentum", "adam"), default="sgd", help="optimizer (sgd)")
    p.add_argument("--measure", action="store_true", help="also measure a real step (CPU profiler or CUDA)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="device to predict for (its optimizer kernels) and measure on (cpu)")
    p.set_defaults(func=cmd_memory)

    p = sub.add_parser("compare", help="did it get slower? ratio of medians of two benchmark JSON files, with a verdict")
    p.add_argument("old", help="the earlier --benchmark-json file")
    p.add_argument("new", help="the later --benchmark-json file")
    p.add_argument("--noise", type=_percent, default=0.1, help="noise band of the verdict (default 10%%)")
    p.add_argument("--fail-on", type=_percent, metavar="PCT", help="exit 1 if a benchmark is significantly slower by more than PCT")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("report", help="verify, count and benchmark, then write the markdown reports")
    p.add_argument("--out", default="reports", metavar="DIR", help="report folder (default reports/)")
    p.add_argument("--bench-json", nargs="+", default=[], metavar="PATH",
                   help="benchmark JSON files to report (default: run a quick CPU benchmark)")
    p.add_argument("--bench-time", type=_rate, default=0.3, help="seconds per quick benchmark (0.3)")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("scale", help="data-parallel training (DDP through torchrun): images/s per world size, gradients checked")
    _add_model_arguments(p, batch_default=32)
    p._option_string_actions["--batch"].help = "images per rank per step (default 32)"
    p.add_argument("--nproc-per-node", type=int, default=1, metavar="N", help="ranks on this node (1)")
    p.add_argument("--nnodes", type=int, default=1, metavar="M", help="nodes (1)")
    p.add_argument("--node-rank", type=int, default=0, metavar="R", help="this node's rank; rank 0 hosts the rendezvous")
    p.add_argument("--rdzv-endpoint", metavar="HOST:PORT", help="node rank 0's address and a free port (several nodes)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="cpu (gloo) or cuda (NCCL, a GPU per rank)")
    p.add_argument("--steps", type=_positive, default=10, help="timed steps per world size (10)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first (2)")
    p.add_argument("--threads", type=_positive, help="torch threads per rank (default: cores / ranks per node)")
    p.add_argument("--timeout", type=_rate, default=60.0, help="seconds for the rendezvous and each collective (60)")
    p.add_argument("--time-limit", type=_rate, default=1800.0, help="seconds for the whole run, then it is stopped")
    p.add_argument("--json", metavar="PATH", help="write the results (pytest-benchmark schema) here")
    p.set_defaults(func=cmd_scale)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    Every failure is one line on stderr: a mistake (:class:`ArchbenchError`, exit 2), Ctrl-C (exit 130),
    SIGTERM (exit 143; raised as an interrupt so clean-ups run), a file-system error (exit 1).
    """
    from archbench.report.files import Terminated, terminate_as_interrupt

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with terminate_as_interrupt():
            return args.func(args)
    except ArchbenchError as err:
        print(f"archbench: error: {err}", file=sys.stderr)
        return 2
    except Terminated:
        print("archbench: terminated", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("archbench: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `archbench list | head -1`: the reader left; end quietly as other tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as err:
        where = f" ({err.filename})" if err.filename else ""
        print(f"archbench: error: {err.strerror or err}{where}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
