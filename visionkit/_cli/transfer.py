"""``visionkit transfer DIR``: transfer learning on a folder of images."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from .._applications import APPLICATIONS
from ._common import add_output, add_progress, positive_float, positive_int, weights_arg
from ._recipe import STRATEGY_NAMES


def _size(text: str) -> tuple[int, int]:
    try:
        parts = [int(p) for p in text.lower().replace("x", ",").split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected SIZE or HEIGHT,WIDTH, got {text!r}") from None
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"expected SIZE or HEIGHT,WIDTH, got {text!r}")
    return parts[0], parts[1]


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
    p.add_argument("--image-size", default=(150, 150), type=_size, metavar="SIZE",
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
    from .._io import save_figure, write_json
    from ..transfer import train_transfer
    from ..visualize import plot_history

    out = Path(args.output)
    model, history, metrics = train_transfer(
        args.directory, base=args.base, method=args.method, weights=args.weights,
        image_size=args.image_size, epochs=args.epochs, head_epochs=args.head_epochs,
        batch_size=args.batch_size, learning_rate=args.learning_rate,
        fine_tune_learning_rate=args.fine_tune_learning_rate, from_layer=args.from_layer,
        augment=not args.no_augment, test_directory=args.test_dir,
        checkpoint_dir=args.checkpoint_dir, strategy=args.strategy, seed=args.seed, progress=not args.quiet,
    )
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".model.{os.getpid()}.keras"
    try:
        model.save(tmp)
        os.replace(tmp, out / "model.keras")
    finally:
        if tmp.exists():
            tmp.unlink()
    fig = plot_history(history)
    save_figure(fig, out / "curves.png")
    write_json(out / "metrics.json", {
        "test": metrics,
        "class_names": list(model.class_names),
        "base": args.base,
        "method": args.method,
        "weights": args.weights,
        "image_size": list(args.image_size),
        "history": {k: [float(v) for v in vals] for k, vals in history.history.items()},
    })
    summary = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
    print(f"test: {summary}")
    print(f"wrote {out / 'model.keras'}, {out / 'curves.png'}, {out / 'metrics.json'}")
    return 0
