"""``visionkit cifar10``: the CIFAR-10 convnet recipe."""

from __future__ import annotations

import argparse

from ..convnets import RECIPE_DEFAULTS
from ._common import number_in, positive_int
from ._recipe import add_training_options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "cifar10", help="train the CIFAR-10 convnet (augmentation and standardisation inside the model)",
        description="Train the CIFAR-10 convnet and write model.keras, curves.png and metrics.json into the "
        "output folder. Data: --data, else VISIONKIT_DATA, the Keras cache or a download; --sample "
        "uses the bundled sample.",
    )
    p.add_argument("--sample", action="store_true", help="use the bundled sample (offline)")
    p.add_argument("--data", default=None, metavar="PATH", help="where CIFAR-10 is (pickles, JPEG tree or archive)")
    p.add_argument("--no-augment", dest="augment", action="store_false", help="no random flips/rotations/shifts")
    p.add_argument("--translation", type=number_in(0, 1), default=0.1,
                   help="largest random shift, a fraction of the image size; 0 for none (default: 0.1)")
    p.add_argument("--rotation", type=number_in(0, 180), default=0.0, metavar="DEG",
                   help="largest random rotation in degrees; the classic recipe is --rotation 25 "
                   "--translation 0 --lr-schedule constant (default: 0)")
    p.add_argument("--limit", type=positive_int, default=None, help="train on the first N examples only")
    add_training_options(p, defaults=RECIPE_DEFAULTS["train_cifar10"], output="visionkit-cifar10")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..convnets import train_cifar10
    from ._common import require_inputs
    from ._recipe import prepare_output, training_options, write_outputs

    require_inputs(("--data", args.data, "any"))
    prepare_output(args.output)
    result = train_cifar10(augment=args.augment, translation=args.translation, rotation=args.rotation,
                           limit=args.limit, sample=args.sample, path=args.data, **training_options(args))
    write_outputs(args.output, result, checkpoint_dir=args.checkpoint_dir)
    return 0
