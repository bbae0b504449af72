"""``visionkit train DIR``: the small convnet on a class-per-folder image tree."""

from __future__ import annotations

import argparse

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
    p.add_argument("--no-augment", dest="augment", action="store_false", help="no random augmentation")
    add_training_options(p, epochs=30, batch_size=32, output="visionkit-train")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import time

    from ..convnets import train_image_folder
    from ._recipe import write_outputs

    if (args.directory is None) == (not args.sample):
        import sys

        print("visionkit train: error: give DIR or --sample (exactly one)", file=sys.stderr)
        return 2
    started = time.perf_counter()
    model, history, metrics = train_image_folder(
        args.directory, image_size=args.image_size, epochs=args.epochs, batch_size=args.batch_size,
        validation_split=args.validation_split, test_directory=args.test_dir, augment=args.augment,
        sample=args.sample, checkpoint_dir=args.checkpoint_dir, log_dir=args.log_dir,
        strategy=args.strategy, seed=args.seed, progress=not args.quiet, lr_schedule=args.lr_schedule,
    )
    write_outputs(args.output, model, history, metrics,
                  {"recipe": "image_folder", "directory": args.directory, "sample": args.sample,
                   "image_size": list(args.image_size), "classes": list(model.class_names),
                   "epochs": args.epochs, "batch_size": args.batch_size, "lr_schedule": args.lr_schedule, "strategy": args.strategy},
                  started=started)
    return 0
