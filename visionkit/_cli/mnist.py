"""``visionkit mnist``: the MNIST convnet recipe."""

from __future__ import annotations

import argparse

from ..convnets import MNIST_VARIANTS, RECIPE_DEFAULTS
from ._common import positive_int
from ._recipe import add_training_options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "mnist", help="train an MNIST convnet (chollet or cookbook design)",
        description="Train an MNIST convnet and write model.keras, curves.png and metrics.json into the "
        "output folder. Data: --data, else VISIONKIT_DATA, the Keras cache or a download; --sample "
        "uses the bundled sample.",
    )
    p.add_argument("--variant", choices=MNIST_VARIANTS, default=MNIST_VARIANTS[0], help=f"model design (default: {MNIST_VARIANTS[0]})")
    p.add_argument("--sample", action="store_true", help="use the bundled sample (offline)")
    p.add_argument("--data", default=None, metavar="PATH", help="an mnist.npz file or a folder holding one")
    p.add_argument("--limit", type=positive_int, default=None, help="train on the first N examples only")
    add_training_options(p, defaults=RECIPE_DEFAULTS["train_mnist"], output="visionkit-mnist")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..convnets import train_mnist
    from ._common import require_inputs
    from ._recipe import prepare_output, training_options, write_outputs

    require_inputs(("--data", args.data, "any"))
    prepare_output(args.output)
    result = train_mnist(variant=args.variant, limit=args.limit, sample=args.sample, path=args.data,
                         **training_options(args))
    write_outputs(args.output, result, checkpoint_dir=args.checkpoint_dir)
    return 0
