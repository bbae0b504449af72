"""Training tricks on and off in the folder recipe, beside a plain Keras baseline (issue #22).

Trains ``convnets.train_image_folder`` on a class-balanced subset of the CIFAR-10 JPEG
tree (``cifar10-jpeg.tar.gz`` of the shared data, extracted first) with each trick of the
shared options on and off, and the same model with ``keras.utils.image_dataset_from_directory``
+ ``model.fit`` (the plain Keras baseline), on the same budget of epochs. Every row
prints the test accuracy, the wall time, the machine's CPU features and precision, and
the load average (the machine may be shared: compare rows of one run, which are
interleaved in the order given).

    python benchmarks/tricks.py --root /tmp/cifar10 --train 4000 --test 2000 --epochs 6
    python benchmarks/tricks.py --rows keras,today,new,light --out results.jsonl

``--root`` is a folder with ``train/<class>/*.jpg`` and ``test/<class>/*.jpg`` (the
extracted archive's ``cifar10`` folder). The ``--transfer`` row trains
``transfer.train_transfer`` on the cat and dog classes with the VGG16 base
(``--vgg16`` weights file).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras
from _machine import describe, tag

from visionkit import convnets

#: The former defaults of ``train_image_folder`` (before #22): the rows of single tricks start from them.
FORMER: dict[str, object] = {"optimizer": "rmsprop", "learning_rate": 1e-4, "lr_schedule": "constant",
                             "label_smoothing": 0.0, "augment": True}

#: The folder-recipe rows: options over ``FORMER``, except the ``new*`` rows, over the recipe's
#: current defaults (Adam 1e-3, one-cycle, label smoothing 0.1, ``augment="light"``).
ROWS: dict[str, dict[str, object]] = {
    "today": {},
    "ema": {"ema": 0.99},
    "tta": {"tta": True},
    "smooth": {"label_smoothing": 0.1},
    "one_cycle": {"lr_schedule": "one_cycle", "learning_rate": 1e-3, "optimizer": "adam"},
    "adam": {"optimizer": "adam", "learning_rate": 1e-3},
    "flip": {"augment": "flip"},
    "light": {"augment": "light"},
    "randaugment": {"augment": "randaugment"},
    "mixup": {"augment": "mixup"},
    "cutmix": {"augment": "cutmix"},
    "new": {},
    "new_tta": {"tta": True},
    "new_ema": {"tta": True, "ema": 0.99},
    # for the transfer rows (a head-only method takes no base learning_rate)
    "tricks": {"augment": "light", "label_smoothing": 0.1, "tta": True},
}


def subset_tree(root: Path, out: Path, train: int, test: int) -> Path:
    """A tree of symbolic links: ``train`` and ``test`` images spread evenly over the classes."""
    for split, total in (("train", train), ("test", test)):
        classes = sorted(p.name for p in (root / split).iterdir() if p.is_dir())
        for name in classes:
            dest = out / split / name
            if dest.is_dir():
                continue
            dest.mkdir(parents=True)
            for f in sorted((root / split / name).iterdir())[: total // len(classes)]:
                (dest / f.name).symlink_to(f.resolve())
    return out


def keras_row(tree: Path, args: argparse.Namespace) -> dict[str, float]:
    """``image_dataset_from_directory`` + the recipe's model (``small_convnet``) + ``fit``."""
    size = (args.size, args.size)
    train, val = keras.utils.image_dataset_from_directory(
        tree / "train", image_size=size, batch_size=32, validation_split=0.2, subset="both", seed=args.seed)
    test = keras.utils.image_dataset_from_directory(tree / "test", image_size=size, batch_size=32, shuffle=False)
    model = convnets.small_convnet((*size, 3), num_classes=len(train.class_names), seed=args.seed)
    model.compile(optimizer=keras.optimizers.RMSprop(1e-4), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(train, validation_data=val, epochs=args.epochs, verbose=0)
    return {k: float(v) for k, v in model.evaluate(test, verbose=0, return_dict=True).items()}


def recipe_row(tree: Path, options: dict[str, object], args: argparse.Namespace) -> dict[str, float]:
    result = convnets.train_image_folder(tree, image_size=args.size, epochs=args.epochs, seed=args.seed,
                                         progress=False, **options)
    return dict(result.metrics)


def transfer_row(tree: Path, args: argparse.Namespace, options: dict[str, object]) -> dict[str, float]:
    from visionkit import transfer

    pets = tree.parent / "catdog"
    for split in ("train", "test"):
        for name in ("cat", "dog"):
            dest = pets / split / name
            if not dest.exists():
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.symlink_to((tree / split / name).resolve())
    result = transfer.train_transfer(pets, weights=args.vgg16, method="frozen", image_size=64, epochs=args.epochs,
                                     seed=args.seed, progress=False, **options)
    return dict(result.metrics)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=Path("/tmp/tricks_data/cifar10"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/tricks_subset"))
    parser.add_argument("--train", type=int, default=4000)
    parser.add_argument("--test", type=int, default=2000)
    parser.add_argument("--size", type=int, default=48, help="image side (small_convnet needs >= 46)")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rows", default="keras," + ",".join(r for r in ROWS if r != "tricks") + ",keras")
    parser.add_argument("--vgg16", default="/work/shared/data/vgg16_imagenet_notop.weights.h5")
    parser.add_argument("--out", type=Path, default=None, help="append each row as a JSON line here")
    args = parser.parse_args()
    tree = subset_tree(args.root, args.work / f"{args.train}-{args.test}", args.train, args.test)
    print(describe(), flush=True)
    print(f"{args.train} train images (80 % trained on, 20 % validation), {args.test} test images, "
          f"{args.size} px, {args.epochs} epochs, batch 32", flush=True)
    for row in args.rows.split(","):
        keras.backend.clear_session()
        load = os.getloadavg()[0]
        started = time.perf_counter()
        if row == "keras":
            metrics = keras_row(tree, args)
        elif row.startswith("transfer"):
            metrics = transfer_row(tree, args, {} if row == "transfer" else ROWS[row.split("-", 1)[1]])
        else:
            metrics = recipe_row(tree, ROWS[row] if row.startswith("new") else {**FORMER, **ROWS[row]}, args)
        seconds = time.perf_counter() - started
        record = {"row": row, "options": ROWS.get(row.split("-", 1)[-1], {}), "accuracy": round(metrics["accuracy"], 4),
                  "accuracy_no_tta": metrics.get("accuracy_no_tta"), "seconds": round(seconds, 1),
                  "load": round(load, 2), "machine": tag()}
        print(json.dumps(record), flush=True)
        if args.out is not None:
            with open(args.out, "a") as fh:
                fh.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
