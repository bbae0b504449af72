"""Automatic precision against float32 on the other recipes: accuracy and time, printed.

Each recipe runs twice with the same seed and data, ``precision="float32"`` and
``precision="auto"`` (``device.auto_precision()``: ``mixed_bfloat16`` on a CPU with
AVX512-BF16 or AMX), one after the other, as a user calls it:

* ``mnist``: ``convnets.train_mnist`` (the book's convnet, RMSprop, batch 64) on all
  60,000 MNIST training images (10 % held out), scored on the 10,000 test images;
* ``cifar10``: ``convnets.train_cifar10`` (the classic recipe: Adam, cosine rate,
  flips and shifts, batch 64), scored on the 10,000 test images;
* ``folder``: ``convnets.train_image_folder`` on CIFAR-10 cats vs dogs written as a
  class-per-folder tree (1,000 images per class, 64×64), scored on 2,000 test images;
* ``features``: ``transfer.train_transfer(method="features")`` on the same folders (32×32),
  with the small VGG-style base of ``benchmarks/transfer.py`` pretrained (float32, untimed)
  on the 8 CIFAR-10 classes that are neither cat nor dog: no ImageNet weights offline,
  and a random base gives chance accuracy at either precision.

The accuracy of a few epochs is what is compared, not the recipe's best: the question is
whether the precision changes it beyond the noise of the run. ``--epochs`` scales all
recipes' epochs; ``--quick`` uses small subsets. Times are whole calls (data loading,
building, training, evaluation); the folders are read once, untimed, before the first
call so that neither precision pays for a cold disk cache; ``--order`` says which
precision goes first.

Run: ``VISIONKIT_DATA=/path/to/data python benchmarks/precision.py [--quick] [--only mnist,cifar10]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/transfer.py's helpers


TASKS = ("mnist", "cifar10", "folder", "features")


def pretrained_base(folder: Path, x, y, xt, yt, quick: bool):
    """(builder, weights file) of benchmarks/transfer.py's small VGG, pretrained on 8 classes."""
    from transfer import pretrain, small_vgg

    weights = pretrain(folder.parent, x, y, xt, yt, 8000 if quick else 16000, 2 if quick else 3)
    return small_vgg, weights


def recipes(args: argparse.Namespace, folder: Path, base: tuple) -> dict:
    """name -> (call taking precision, training images per epoch, epochs)."""
    from visionkit import convnets, transfer

    scale = args.epochs
    n_mnist = 6000 if args.quick else 54000
    n_cifar = 5000 if args.quick else 45000
    common = {"seed": 0, "progress": False}
    return {
        "mnist": (lambda p: convnets.train_mnist(epochs=scale, limit=n_mnist + n_mnist // 9, precision=p, **common),
                  n_mnist, scale),
        "cifar10": (lambda p: convnets.train_cifar10(epochs=2 * scale, limit=n_cifar + n_cifar // 9, precision=p,
                                                     **common), n_cifar, 2 * scale),
        "folder": (lambda p: convnets.train_image_folder(folder, image_size=64, epochs=4 * scale,
                                                         precision=p, **common), 1600, 4 * scale),
        "features": (lambda p: transfer.train_transfer(folder, method="features", base=base[0], weights=base[1],
                                                       image_size=32, epochs=4 * scale, precision=p, **common),
                     1600, 4 * scale),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small subsets (a few minutes)")
    parser.add_argument("--only", default=",".join(TASKS), help=f"comma-separated tasks from {TASKS}")
    parser.add_argument("--epochs", type=int, default=1, help="epoch scale: mnist N, cifar10 2N, folder and features 4N")
    parser.add_argument("--order", choices=("float32-first", "auto-first"), default="float32-first")
    args = parser.parse_args()
    only = [t.strip() for t in args.only.split(",") if t.strip()]
    unknown = sorted(set(only) - set(TASKS))
    if unknown:
        parser.error(f"unknown tasks {unknown}; expected some of {TASKS}")
    if not os.environ.get("VISIONKIT_DATA"):
        print("Set VISIONKIT_DATA to the folder of local datasets (see docs/offline-data.md).")
        return 2

    import keras
    from _machine import describe, tag
    from transfer import write_cats_dogs

    from visionkit.data import folder_splits, load_cifar10

    precisions = ["float32", "auto"] if args.order == "float32-first" else ["auto", "float32"]
    print(f"{describe()}, load {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="visionkit-precision-bench-") as tmp:
        folder = Path(tmp) / "cats_dogs"
        if {"folder", "features"} & set(only):
            (x, y), (xt, yt) = load_cifar10()
            write_cats_dogs(folder / "train", x, y[:, 0], 1000)
            write_cats_dogs(folder / "test", xt, yt[:, 0], 1000)
            folder_splits(folder, image_size=64)  # warm the disk cache, untimed
        base = pretrained_base(folder, x, y[:, 0], xt, yt[:, 0], args.quick) if "features" in only else None
        table = recipes(args, folder, base)
        print(f"{'recipe':<9} {'precision':<15} {'epochs':>6} {'test acc':>8} {'wall s':>7} {'img/s':>7}  load")
        for name in only:
            call, n, epochs = table[name]
            for precision in precisions:
                keras.utils.set_random_seed(0)
                start = time.perf_counter()
                result = call(precision)
                wall = time.perf_counter() - start
                acc = result.metrics["accuracy"]
                print(f"{name:<9} {result.settings['precision']:<15} {epochs:>6} {acc:8.4f} {wall:7.1f} "
                      f"{n * epochs / wall:9.0f}  {os.getloadavg()[0]:.2f}  {tag(result.settings['precision'])}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
