"""``visionkit mnist``: the MNIST convnet recipe."""

from __future__ import annotations

import argparse

from ._common import positive_int
from ._recipe import add_training_options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "mnist", help="train an MNIST convnet (chollet or cookbook design)",
        description="Train an MNIST convnet and write model.keras, curves.png and metrics.json into the "
        "output folder. Data: --data, else VISIONKIT_DATA, the Keras cache or a download; --sample "
        "uses the bundled sample.",
    )
    p.add_argument("--variant", choices=("chollet", "cookbook"), default="chollet", help="model design (default: chollet)")
    p.add_argument("--sample", action="store_true", help="use the bundled sample (offline)")
    p.add_argument("--data", default=None, metavar="PATH", help="an mnist.npz file or a folder holding one")
    p.add_argument("--limit", type=positive_int, default=None, help="train on the first N examples only")
    add_training_options(p, epochs=5, batch_size=64, output="visionkit-mnist")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import time

    from ..convnets import train_mnist
    from ._recipe import write_outputs

    started = time.perf_counter()
    model, history, metrics = train_mnist(
        epochs=args.epochs, variant=args.variant, batch_size=args.batch_size, limit=args.limit,
        sample=args.sample, path=args.data, checkpoint_dir=args.checkpoint_dir, log_dir=args.log_dir,
        strategy=args.strategy, seed=args.seed, progress=not args.quiet, lr_schedule=args.lr_schedule,
    )
    write_outputs(args.output, model, history, metrics,
                  {"recipe": "mnist", "variant": args.variant, "sample": args.sample, "epochs": args.epochs,
                   "batch_size": args.batch_size, "lr_schedule": args.lr_schedule, "strategy": args.strategy}, started=started)
    return 0
