"""``visionkit demo``: train the MNIST convnet on the bundled sample, offline."""

from __future__ import annotations

import argparse

from ._common import add_output, add_progress, positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="train the MNIST convnet on the bundled sample, offline",
        description="Train the classic MNIST convnet for a few epochs on the small MNIST sample shipped "
        "inside the package (no network, no data), print the test accuracy and write the model "
        "(model.keras), the training curves (curves.png) and the metrics (metrics.json).",
    )
    p.add_argument("--epochs", type=positive_int, default=2, help="epochs (default: 2)")
    add_output(p, "visionkit-demo")
    add_progress(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..convnets import train_mnist
    from ._recipe import prepare_output, write_outputs

    prepare_output(args.output)
    print(f"visionkit demo: training the MNIST convnet on the bundled sample for {args.epochs} epoch(s)")
    # Adam: on the 4,500 training digits of the sample it is steadier than the book's RMSprop.
    result = train_mnist(sample=True, epochs=args.epochs, optimizer="adam", progress=not args.quiet, seed=0)
    write_outputs(args.output, result)
    return 0
