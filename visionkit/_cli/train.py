"""``visionkit train DIR``: the small convnet on a class-per-folder image tree."""

from __future__ import annotations

import argparse

from ..convnets import RECIPE_DEFAULTS
from ._common import image_size, number_in
from ._recipe import add_training_options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train the small convnet on a folder of images (one sub-folder per class)",
        description="Train the cats-vs-dogs-style small convnet on DIR/<class>/<image> (or DIR/train, "
        "DIR/validation, DIR/test trees) and write model.keras, curves.png and metrics.json.",
    )
    p.add_argument("directory", nargs="?", default=None, metavar="DIR", help="the image folder (not with --sample)")
    p.add_argument("--sample", action="store_true", help="a tiny bundled cats-vs-dogs tree (offline)")
    p.add_argument("--image-size", type=image_size(46), default=(150, 150), metavar="HxW", help="resize to this (default: 150x150)")
    p.add_argument("--validation-split", type=number_in(0, 1, open_low=True, open_high=True), default=0.2, help="held-out fraction (default: 0.2)")
    p.add_argument("--test-dir", default=None, help="a class-per-folder tree for the test metrics")
    p.add_argument("--no-augment", dest="augment", action="store_const", const=False, default="light",
                   help="no random augmentation (default: --augment light)")
    add_training_options(p, defaults=RECIPE_DEFAULTS["train_image_folder"], output="visionkit-train")
    p.set_defaults(func=run, parser=p)


def run(args: argparse.Namespace) -> int:
    from ..convnets import train_image_folder
    from ._common import require_inputs
    from ._recipe import prepare_output, training_options, write_outputs

    if (args.directory is None) == (not args.sample):
        args.parser.error("give DIR or --sample (exactly one)")
    require_inputs(("DIR", args.directory, "folder"), ("--test-dir", args.test_dir, "folder"))
    prepare_output(args.output)
    result = train_image_folder(
        args.directory, image_size=args.image_size, validation_split=args.validation_split,
        test_directory=args.test_dir, augment=args.augment_preset or args.augment, sample=args.sample, **training_options(args),
    )
    write_outputs(args.output, result, checkpoint_dir=args.checkpoint_dir)
    return 0
