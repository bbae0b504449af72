"""``visionkit transfer DIR``: transfer learning on a folder of images."""

from __future__ import annotations

import argparse
from pathlib import Path

from .._applications import APPLICATIONS
from ._common import add_output, add_progress, image_size, positive_float, positive_int, weights_arg
from ._recipe import STRATEGY_NAMES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "transfer",
        help="train a classifier on a folder of images with a pretrained base",
        description="Transfer learning on DIR (DIR/<class>/<image>, or DIR/train + DIR/test "
        "[+ DIR/validation]) with a keras.applications base. Writes OUTPUT/model.keras, "
        "OUTPUT/curves.png and OUTPUT/metrics.json.",
    )
    p.add_argument("directory", metavar="DIR", help="class-per-folder image tree")
    p.add_argument("--base", default="vgg16", choices=sorted(APPLICATIONS), help="backbone (default: vgg16)")
    p.add_argument("--method", default="fine_tune", choices=("features", "frozen", "fine_tune"),
                   help="features: train on extracted features; frozen: frozen base + augmentation; "
                   "fine_tune: frozen, then unfreeze the top block (default)")
    p.add_argument("--weights", default="imagenet", type=weights_arg, metavar="imagenet|none|PATH",
                   help="base weights: ImageNet (download, cached), none (random) or a weights file")
    p.add_argument("--image-size", default=(150, 150), type=image_size(), metavar="SIZE",
                   help="resize images to SIZE or HEIGHT,WIDTH (default: 150)")
    p.add_argument("--epochs", type=positive_int, default=30, help="training epochs (fine_tune: after unfreezing)")
    p.add_argument("--head-epochs", type=positive_int, default=10, help="fine_tune: epochs with the base frozen")
    p.add_argument("--batch-size", type=positive_int, default=20)
    p.add_argument("--learning-rate", type=positive_float, default=None, help="head learning rate (default: RMSprop's)")
    p.add_argument("--fine-tune-learning-rate", type=positive_float, default=1e-5)
    p.add_argument("--from-layer", default=None, help="first base layer to unfreeze (default: the last block)")
    p.add_argument("--no-augment", action="store_true", help="no random augmentation")
    p.add_argument("--test-dir", default=None, help="class-per-folder tree for the test metrics")
    p.add_argument("--checkpoint-dir", default=None, help="resumable checkpoints here")
    p.add_argument("--strategy", choices=STRATEGY_NAMES, default=None,
                   help="tf.distribute strategy (default: none, a single device)")
    p.add_argument("--seed", type=int, default=0)
    add_output(p, "transfer-output")
    add_progress(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import time

    from ..transfer import train_transfer
    from ._recipe import write_outputs

    started = time.perf_counter()
    out = Path(args.output)
    model, history, metrics = train_transfer(
        args.directory, base=args.base, method=args.method, weights=args.weights,
        image_size=args.image_size, epochs=args.epochs, head_epochs=args.head_epochs,
        batch_size=args.batch_size, learning_rate=args.learning_rate,
        fine_tune_learning_rate=args.fine_tune_learning_rate, from_layer=args.from_layer,
        augment=not args.no_augment, test_directory=args.test_dir,
        checkpoint_dir=args.checkpoint_dir, strategy=args.strategy, seed=args.seed, progress=not args.quiet,
    )
    write_outputs(out, model, history, metrics, {
        "recipe": "transfer", "class_names": list(model.class_names), "base": args.base,
        "method": args.method, "weights": args.weights, "image_size": list(args.image_size),
        "epochs": args.epochs, "head_epochs": args.head_epochs, "batch_size": args.batch_size,
        "strategy": args.strategy,
    }, started=started)
    return 0
