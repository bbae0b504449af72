"""``visionkit transfer DIR``: transfer learning on a folder of images.

Imported when the parser is built, so it reads its choices and defaults from
TensorFlow-free modules only.
"""

from __future__ import annotations

import argparse

from .._backbones import APPLICATIONS
from .._transfer_defaults import METHODS, RECIPE_DEFAULTS
from ._common import (
    image_size,
    non_negative_int,
    number_in,
    positive_float,
    positive_int,
    weights_arg,
)
from ._recipe import add_training_options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "transfer",
        help="train a classifier on a folder of images with a pretrained base",
        description="Transfer learning on DIR (DIR/<class>/<image>, or DIR/train + DIR/validation (or "
        "DIR/val) + DIR/test) with a keras.applications base. Writes OUTPUT/model.keras, OUTPUT/curves.png "
        "and OUTPUT/metrics.json. --epochs is the total: for fine_tune the first --head-epochs train the "
        "head alone at --head-learning-rate, the rest the unfrozen top of the base at --learning-rate. "
        "features and frozen train the head only, at --head-learning-rate.",
    )
    p.add_argument("directory", metavar="DIR", help="class-per-folder image tree")
    p.add_argument("--base", default="vgg16", choices=sorted(APPLICATIONS), help="backbone (default: vgg16)")
    p.add_argument("--method", default="fine_tune", choices=METHODS,
                   help="features: train on extracted features; frozen: frozen base + augmentation; "
                   "fine_tune: frozen, then unfreeze the top block (default)")
    p.add_argument("--weights", default="imagenet", type=weights_arg, metavar="imagenet|none|PATH",
                   help="base weights: ImageNet (download, cached), none (random) or a weights file")
    p.add_argument("--image-size", default=(150, 150), type=image_size(), metavar="HxW",
                   help="resize images to this (default: 150x150)")
    p.add_argument("--head-epochs", type=non_negative_int, default=10,
                   help="fine_tune: how many of --epochs train the head alone, the base frozen (default: 10)")
    p.add_argument("--head-learning-rate", type=positive_float, default=None,
                   help="learning rate while only the head trains (default: the optimizer's)")
    p.add_argument("--from-layer", default=None, help="fine_tune: first base layer to unfreeze (default: the last block)")
    p.add_argument("--last-n", type=positive_int, default=None,
                   help="fine_tune: unfreeze the last N weighted base layers instead")
    p.add_argument("--validation-split", type=number_in(0, 1, open_high=True), default=0.2,
                   help="held-out fraction when there is no validation folder (default: 0.2)")
    p.add_argument("--test-dir", default=None, help="class-per-folder tree for the test metrics")
    p.add_argument("--no-augment", dest="augment", action="store_false", help="no random augmentation")
    add_training_options(p, defaults=RECIPE_DEFAULTS["train_transfer"], output="transfer-output")
    p.set_defaults(func=run, parser=p)


def run(args: argparse.Namespace) -> int:
    from ..transfer import train_transfer
    from ._common import require_inputs
    from ._recipe import prepare_output, training_options, write_outputs

    require_inputs(("DIR", args.directory, "folder"), ("--test-dir", args.test_dir, "folder"),
                   ("--weights", args.weights, "file"))
    prepare_output(args.output)
    result = train_transfer(
        args.directory, base=args.base, method=args.method, weights=args.weights, image_size=args.image_size,
        head_epochs=args.head_epochs, head_learning_rate=args.head_learning_rate, from_layer=args.from_layer,
        last_n=args.last_n, augment=args.augment_preset or args.augment, validation_split=args.validation_split,
        test_directory=args.test_dir, **training_options(args),
    )
    write_outputs(args.output, result, checkpoint_dir=args.checkpoint_dir)
    return 0
