"""The ``archbench`` command line; the only module that talks to the terminal.

Every mistake made at the command line (unknown model, bad size) ends with one line on stderr and exit
status 2, never a traceback.

Example:
    $ archbench list
    $ archbench summary lenet5 --input-size 1 28 28 --batch 4
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
    from archbench.analysis.checks import check_resolved
    from archbench.analysis.summary import trace_shapes
    from archbench.registry import get_model, get_spec

    spec = get_spec(args.name)
    shape = (args.batch, *(args.input_size or spec.input_shape))
    model = get_model(args.name)
    check_resolved(model, shape, args.name).raise_for_error()
    rows = trace_shapes(model, shape)
    table = [
        ("  " * (r.depth - 1) + r.name, r.type, _fmt_shape(r.output_shape), f"{r.params:,}" if r.params else "-")
        for r in rows
        if r.depth <= args.depth and r.type != "Identity"  # placeholders of absent layers (e.g. no norm)
    ]
    print(f"{args.name}: input {_fmt_shape(shape)}, {spec.description}")
    print(tabulate(table, headers=("layer", "type", "output shape", "params"), disable_numparse=True))
    total = sum(p.numel() for p in model.parameters())
    print(f"total parameters: {total:,}")
    return 0


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
    p.add_argument("name", help="a name from `archbench list`")
    p.add_argument("--input-size", nargs=3, type=_positive, metavar=("C", "H", "W"), help="one sample's shape")
    p.add_argument("--batch", type=_positive, default=1, help="batch size (default 1)")
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
