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


def _add_model_arguments(p: argparse.ArgumentParser, *, batch_default: int = 1) -> None:
    """The arguments every command that takes one network shares: REF, --model-arg, --input-size, --batch."""
    p.add_argument("ref", metavar="MODEL", help="a name from `archbench list`, package.module:attr or path/file.py:attr")
    p.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="builder option, a Python literal (repeatable), e.g. num_classes=10")  # fmt: skip
    p.add_argument("--input-size", nargs="+", type=_positive, metavar="D",
                   help="one sample's shape, any rank (e.g. 3 224 224, or 7 12 for 7 steps of 12 features); "
                   "required for unregistered networks")  # fmt: skip
    p.add_argument("--batch", type=_positive, default=batch_default, help=f"batch size (default {batch_default})")


def _resolve_cli_model(args: argparse.Namespace) -> tuple[object, tuple[int, ...]]:
    """Build the network named on the command line; returns (resolved model, input shape with batch)."""
    from archbench.refs import parse_model_args, resolve_ref

    options = parse_model_args(args.model_arg)
    if args.input_size is None and ":" in args.ref:
        # Checked before building: an unregistered network needs its input size.
        from archbench.refs import ModelRefError

        raise ModelRefError(
            f"{args.ref!r} is not a registered network, so its input size is unknown; "
            "give one sample's shape with --input-size, e.g. --input-size 3 224 224."
        )
    ref = resolve_ref(args.ref, **options)
    return ref, ref.input_shape(args.input_size, args.batch)


def cmd_list(args: argparse.Namespace) -> int:
    """``archbench list [PATTERN]``: one line per registered network."""
    from archbench.registry import get_model, get_spec, list_models

    rows = []
    for name in list_models(args.pattern):
        spec = get_spec(name)
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
            print("warning: the counters disagree", file=sys.stderr)
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
    """``archbench bench``: time every network's forward pass and training step with pytest-benchmark."""
    from archbench.bench import load_results
    from archbench.bench.runner import run_benchmarks

    code = run_benchmarks(
        device=args.device,
        models=args.models,
        batches=args.batch,
        sweep=args.sweep,
        dtype=args.dtype,
        channels_last=args.channels_last,
        compile=args.compile,
        threads=args.threads,
        max_time=args.max_time,
        min_rounds=args.min_rounds,
        json_path=args.json,
    )
    if args.json and code == 0:
        results = load_results(args.json)
        oom = sum(r.status == "oom" for r in results.rows)
        share = results.environment.get("others_cpu_share")
        load = f"; other processes used {share:.0%} of the cores meanwhile" if share is not None else ""
        print(f"archbench: wrote {len(results.rows)} network rows ({oom} out of memory) to {args.json}{load}")
    return code


def cmd_report(args: argparse.Namespace) -> int:
    """``archbench report``: verify, count, benchmark and write the markdown reports."""
    import contextlib
    import io
    from pathlib import Path

    from archbench.bench.runner import run_benchmarks
    from archbench.report.build import build_report

    def log(message: str) -> None:
        if not args.quiet:
            print(f"[report] {message}", file=sys.stderr, flush=True)

    def quick_bench(path: Path) -> None:
        # pytest-benchmark's own tables go to stderr (or nowhere with --quiet); stdout stays for the summary.
        sink = io.StringIO() if args.quiet else sys.stderr
        with contextlib.redirect_stdout(sink):
            code = run_benchmarks(device="cpu", max_time=args.bench_time, min_rounds=3, json_path=path,
                                  extra_args=["-q"])  # fmt: skip
        if code != 0:
            raise ArchbenchError(f"The quick benchmark failed (pytest exit {code}); run `archbench bench` to see why.")

    report = build_report(Path(args.out), [Path(p) for p in args.bench_json], log=log, run_quick_bench=quick_bench)
    failed = report.failed
    print(f"archbench: report in {report.out_dir}/ ({len(report.files)} files); "
          f"{len(report.checks) - len(failed)} checks passed, {len(failed)} failed")  # fmt: skip
    for check in failed:
        print(f"  FAILED {check.area}: {check.name}: measured {check.measured}, expected {check.expected}")
    return 1 if failed else 0


def cmd_train(args: argparse.Namespace) -> int:
    """``archbench train NAME``: SGD on MNIST, Fashion-MNIST or the synthetic set, one line per epoch."""
    from archbench.data import make_loaders
    from archbench.registry import get_model, get_spec
    from archbench.train import FitConfig, fit

    spec = get_spec(args.name)
    size = spec.input_shape[-1]
    train, test = make_loaders(
        args.data, root=args.root, batch_size=args.batch, download=args.download, resize=None if size == 28 else size
    )
    config = FitConfig(epochs=args.epochs, lr=args.lr, momentum=args.momentum, output=spec.output)
    print(f"training {args.name} on {args.data} ({len(train.dataset):,} images), loss for {spec.output}")

    def report(r: object) -> None:
        print(
            f"epoch {r.epoch}: loss {r.train_loss:.4f}, train acc {r.train_accuracy:.3f}, "
            f"test acc {r.test_accuracy:.3f}, {r.seconds:.1f} s",
            flush=True,
        )

    torch_seed(args.seed)
    fit(get_model(args.name), train, test, config, on_epoch=report)
    return 0


def torch_seed(seed: int) -> None:
    """Seed torch's global generator (weight initialisation, dropout)."""
    import torch

    torch.manual_seed(seed)


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr (no usage dump), exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-command per job."""
    parser = _Parser(prog="archbench", description="Verify and benchmark classic CNNs.")
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
    p.add_argument("--seed", type=int, default=0)
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
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), default="auto", help="default auto: cuda if present")
    p.add_argument("--models", default="*", metavar="PATTERN", help="networks by wildcard (default *)")
    p.add_argument("--batch", nargs="+", type=_positive, metavar="N", help="batch sizes (default: a quick set)")
    p.add_argument("--sweep", action="store_true", help="the wider batch-size sweep")
    p.add_argument("--json", metavar="PATH", help="write pytest-benchmark's JSON (with extra_info) here")
    p.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default="float32", help="autocast dtype")
    p.add_argument("--channels-last", action="store_true", help="channels-last models and inputs")
    p.add_argument("--compile", action="store_true", help="torch.compile the networks")
    p.add_argument("--threads", type=_positive, help="torch intra-op threads (default: every usable core)")
    p.add_argument("--max-time", type=_rate, default=1.0, help="seconds of timed rounds per benchmark (1.0)")
    p.add_argument("--min-rounds", type=_positive, default=5, help="timed rounds, at least (5)")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("report", help="verify, count and benchmark, then write the markdown reports")
    p.add_argument("--out", default="reports", metavar="DIR", help="report folder (default reports/)")
    p.add_argument("--bench-json", nargs="+", default=[], metavar="PATH",
                   help="benchmark JSON files to report (default: run a quick CPU benchmark)")
    p.add_argument("--bench-time", type=_rate, default=0.3, help="seconds per quick benchmark (0.3)")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.set_defaults(func=cmd_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ArchbenchError as err:
        print(f"archbench: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("archbench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
