"""Does transfer learning help? Offline proof on CIFAR-10 cats vs dogs.

ImageNet weights cannot be had offline, so the benchmark pretrains its own base:

1. a small VGG-style convolutional base is trained on the 8 CIFAR-10 classes that are
   neither cat nor dog, and its weights are saved to a file;
2. cat-vs-dog is then solved with only 2,000 training images (1,000 per class, written
   as a class-per-folder tree and read with ``visionkit.data.image_folder``), the base
   loaded through ``transfer.conv_base(builder, weights=<that file>)``:

   (a) ``convnets.small_convnet`` from scratch (no pretraining),
   (b) feature extraction (``extract_features`` + ``feature_classifier``),
   (c) frozen base + augmentation (``transfer_model``),
   (d) fine-tuning: (c) continued with ``fine_tune`` after unfreezing block 3;

   each scored on the 2,000 cat/dog test images, with its wall time.
3. ``extract_features`` throughput against a naive loop calling ``base.predict`` per
   batch (the classic generator loop), on the same data.

``--real`` runs instead the real ImageNet VGG16 base of ``VISIONKIT_DATA``
(``vgg16_imagenet_notop.weights.h5``) on the same CIFAR-10 cat/dog subset, as in the
book: feature extraction (pooled base features + a dense head), then fine-tuning
(base + head, ``block5`` unfrozen). It prints the book's figures for ITS data beside
them (about 90% and 97% on Kaggle's cats vs dogs, 4,000 images at 150x150 px): the data
differ (CIFAR's 32x32 images upsampled), so the numbers are not comparable.

Run: ``VISIONKIT_DATA=/path/to/data python benchmarks/transfer.py [--quick] [--real]``.
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

import numpy as np
from _machine import describe, tag

CAT, DOG = 3, 5


def small_vgg(input_shape: tuple[int, int, int]):
    """VGG-style base: 3 blocks of two 3×3 convs (32/64/128) with BatchNorm, 2×2 pooling."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Rescaling(1 / 255.0, name="rescale")(inputs)
    for block, filters in enumerate((32, 64, 128), start=1):
        for conv in (1, 2):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"block{block}_conv{conv}")(x)
            x = layers.BatchNormalization(name=f"block{block}_bn{conv}")(x)
            x = layers.Activation("relu", name=f"block{block}_relu{conv}")(x)
        x = layers.MaxPooling2D(2, name=f"block{block}_pool")(x)
    return keras.Model(inputs, x, name="small_vgg")


def write_cats_dogs(root: Path, x: np.ndarray, y: np.ndarray, per_class: int) -> None:
    from visionkit.data import save_image

    for label, name in ((CAT, "cat"), (DOG, "dog")):
        for i, img in enumerate(x[y == label][:per_class]):
            save_image(root / name / f"{i:05d}.png", img)


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small settings (about 5 minutes on 2 busy CPU cores; the default takes about 15)")
    parser.add_argument("--pretrain-images", type=int, default=None)
    parser.add_argument("--pretrain-epochs", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None, help="epochs of (a), (b) and (c)")
    parser.add_argument("--fine-tune-epochs", type=int, default=None)
    parser.add_argument("--figures", default=None, help="also save the lr_find and fine-tuning curves (PNG) here")
    parser.add_argument("--real", action="store_true", help="the real ImageNet VGG16 base instead (see the docstring)")
    parser.add_argument("--per-class", type=int, default=500, help="--real: training images per class (default 500)")
    parser.add_argument("--size", type=int, default=96, help="--real: image side after upsampling (default 96)")
    return parser.parse_args()


def pretrain(tmp_path: Path, x_train, y_train, x_test, y_test, n_pre: int, pre_epochs: int) -> Path:
    """Train ``small_vgg`` on the 8 non-cat/dog classes; return its weights file."""
    import keras

    from visionkit.preprocess import augmentation
    from visionkit.training import evaluate, train

    # the JPEG tree is stored class by class: sample the 8 classes at random
    keep = np.flatnonzero((y_train != CAT) & (y_train != DOG))
    keep = np.random.default_rng(0).permutation(keep)[:n_pre]
    xp, yp = x_train[keep], y_train[keep]
    remap = {c: i for i, c in enumerate(sorted(set(range(10)) - {CAT, DOG}))}
    yp = np.array([remap[int(c)] for c in yp], np.int32)
    base = small_vgg((32, 32, 3))
    inputs = keras.Input((32, 32, 3))
    x = augmentation(rotation=0, zoom=0, translation=0.1, seed=0)(inputs)
    x = base(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.3)(x)
    pre_model = keras.Model(inputs, keras.layers.Dense(8, activation="softmax")(x))
    _, t_pre = timed(lambda: train(pre_model, (xp, yp), epochs=pre_epochs, batch_size=64,
                                   optimizer="adam", seed=0, progress=False))
    keep_t = (y_test != CAT) & (y_test != DOG)
    yt8 = np.array([remap[int(c)] for c in y_test[keep_t]], np.int32)
    pre_acc = evaluate(pre_model, (x_test[keep_t], yt8))["accuracy"]
    weights_file = tmp_path / "small_vgg_8classes.weights.h5"
    base.save_weights(str(weights_file))
    print(f"\npretraining on 8 non-cat/dog classes: {len(xp)} images, {pre_epochs} epochs, "
          f"{t_pre:.0f} s; 8-class test accuracy {pre_acc:.3f}; saved {weights_file.name} {tag()}")
    return weights_file


def compare_methods(tmp_path: Path, weights_file: Path, train32, test32, *, epochs: int, ft_epochs: int,
                    batch: int, figures: str | None) -> list[tuple[str, float, float]]:
    """(a)-(d): test accuracy and wall time of each method."""
    from visionkit import transfer
    from visionkit.convnets import small_convnet
    from visionkit.data import image_folder
    from visionkit.preprocess import augmentation
    from visionkit.training import evaluate, train

    def load_base():
        return transfer.conv_base(small_vgg, weights=weights_file, input_shape=(32, 32, 3))

    def run_a():
        train64 = image_folder(tmp_path / "train", image_size=64, batch_size=batch, label_mode="binary", seed=0)
        test64 = image_folder(tmp_path / "test", image_size=64, batch_size=batch, label_mode="binary", shuffle=False)
        model = small_convnet((64, 64, 3), seed=0)
        train(model, train64, epochs=epochs, progress=False)
        return evaluate(model, test64)["accuracy"]

    def run_b():
        b = load_base()
        f_train, l_train = transfer.extract_features(b, train32, progress=False)
        f_test, l_test = transfer.extract_features(b, test32, progress=False)
        clf = transfer.feature_classifier(f_train.shape[1:], hidden=256, dropout=0.5)
        train(clf, (f_train, l_train), epochs=epochs, batch_size=batch, seed=0, progress=False)
        return evaluate(clf, (f_test, l_test))["accuracy"]

    aug = augmentation(rotation=15, zoom=0.1, translation=0.1, seed=0)
    model_c = transfer.transfer_model(load_base(), hidden=256, dropout=0.5, augmentation=aug)
    if figures:
        from visionkit._io import save_figure

        lr = transfer.lr_find(model_c, train32, min_lr=1e-6, max_lr=1.0, steps=60, progress=False)
        save_figure(lr.plot(), Path(figures) / "transfer_lr_find.png", dpi=80)
        print(f"lr_find suggests {lr.suggestion:.2g} for the head (RMSprop); the runs use 1e-3")
    curves: dict[str, list[float]] = {}

    def run_c():
        h = train(model_c, train32, validation_data=test32 if figures else None, epochs=epochs, progress=False)
        curves.update({k: list(v) for k, v in h.history.items()})
        return evaluate(model_c, test32)["accuracy"]

    def run_d():  # (c) continued after unfreezing block 3: no head phase, ft_epochs in all
        _, h, _ = transfer.fine_tune(model_c, train32, validation_data=test32 if figures else None,
                                     head_epochs=0, epochs=ft_epochs, from_layer="block3_conv1",
                                     learning_rate=1e-4, progress=False)
        for k, v in h.history.items():
            curves.setdefault(k, []).extend(v)
        return evaluate(model_c, test32)["accuracy"]

    results = []
    t_c = 0.0
    for name, run in (("(a) small_convnet from scratch (64x64 upsampled)", run_a),
                      ("(b) feature extraction + dense classifier", run_b),
                      ("(c) frozen base + augmentation", run_c),
                      (f"(d) fine-tuning = (c) + {ft_epochs} epochs, block3 unfrozen", run_d)):
        acc, t = timed(run)
        t_c = t if run is run_c else t_c
        results.append((name, acc, t + (t_c if run is run_d else 0.0)))
        print(f"{name}: {acc:.3f} in {results[-1][2]:.0f} s {tag()}", flush=True)
    if figures:
        save_curves(curves, epochs, figures)
    return results


def save_curves(curves: dict[str, list[float]], epochs: int, figures: str) -> None:
    from visionkit._io import save_figure
    from visionkit.visualize import plot_history

    fig = plot_history(curves)
    for ax in fig.axes:
        ax.axvline(epochs + 0.5, color="0.5", ls="--", lw=1)
        ax.text(epochs + 0.6, ax.get_ylim()[1], "unfreeze block3", va="top", fontsize=8, color="0.4")
    fig.suptitle("frozen base + augmentation, then fine-tuning (validation = cat/dog test set)", fontsize=9)
    save_figure(fig, Path(figures) / "transfer_fine_tune.png", dpi=80)


def throughput(weights_file: Path, tmp_path: Path, test32, *, batch: int, quick: bool) -> None:
    """``extract_features`` against a naive ``base.predict`` loop, on the same data."""
    from visionkit import transfer
    from visionkit.data import image_folder

    def naive(b, ds):
        feats, labels = [], []
        for xb, yb in ds:
            feats.append(b.predict(xb, verbose=0))
            labels.append(yb.numpy())
        return np.concatenate(feats), np.concatenate(labels)

    print("\nfeature extraction throughput (same data, batch 32, after one warm-up pass each):")
    small = transfer.conv_base(small_vgg, weights=weights_file, input_shape=(32, 32, 3))
    cases = [("small_vgg 32x32", small, test32, len(test32.file_paths))]
    if not quick:
        n_big = 512
        big = image_folder(tmp_path / "test", image_size=64, batch_size=batch, label_mode="binary",
                           shuffle=False).take(n_big // batch)
        vgg = transfer.conv_base("vgg16", weights=None, input_shape=(64, 64, 3))
        cases.append(("VGG16 (random weights) 64x64", vgg, big, n_big))
    print(f"{'base':<30} {'extract_features img/s':>22} {'naive predict loop img/s':>25} {'speed-up':>9}")
    for name, b, ds, n in cases:
        transfer.extract_features(b, ds, progress=False)
        naive(b, ds)
        (f1, l1), t1 = timed(lambda b=b, ds=ds: transfer.extract_features(b, ds, progress=False))
        (f2, l2), t2 = timed(lambda b=b, ds=ds: naive(b, ds))
        assert np.allclose(f1, f2, atol=1e-4) and np.array_equal(l1, l2)
        print(f"{name:<30} {n / t1:22.0f} {n / t2:25.0f} {t2 / t1:8.2f}x  {tag()}")


def real_vgg16(args: argparse.Namespace) -> int:
    """Feature extraction and fine-tuning with the real ImageNet VGG16 base (``--real``)."""
    import keras
    import tensorflow as tf

    from visionkit import device
    from visionkit.backbones import preset
    from visionkit.data import load_cifar10
    from visionkit.preprocess import vgg_preprocess
    from visionkit.transfer import unfreeze

    weights = Path(os.environ["VISIONKIT_DATA"]) / "vgg16_imagenet_notop.weights.h5"
    if not weights.is_file():
        print(f"{weights} is missing")
        return 2
    keras.utils.set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = load_cifar10()
    y_train, y_test = y_train[:, 0], y_test[:, 0]

    def subset(x, y, n):
        idx = np.concatenate([np.flatnonzero(y == CAT)[:n], np.flatnonzero(y == DOG)[:n]])
        up = tf.image.resize(x[idx].astype("float32"), (args.size, args.size)).numpy()
        return vgg_preprocess(up), (y[idx] == DOG).astype("float32")

    xtr, ytr = subset(x_train, y_train, args.per_class)
    xte, yte = subset(x_test, y_test, max(args.per_class // 2, 100))
    epochs = args.epochs or 10
    ft_epochs = args.fine_tune_epochs or 2
    info = device.info()
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, CPU threads: {os.cpu_count()}, "
          f"CPU features: {info.get('cpu_features', '?')}, precision: float32")
    print(f"data: CIFAR-10 cats vs dogs, {len(xtr)} train / {len(xte)} test images, 32x32 upsampled to "
          f"{args.size}x{args.size}; base: real ImageNet VGG16 ({weights.name})")
    record = preset("vgg16")
    base = record.build(weights=weights, input_shape=(args.size, args.size, 3))
    t0 = time.perf_counter()
    ftr = base.predict(xtr, batch_size=32, verbose=0)
    fte = base.predict(xte, batch_size=32, verbose=0)
    head = keras.Sequential([keras.Input(ftr.shape[1:]), keras.layers.GlobalAveragePooling2D(),
                             keras.layers.Dense(256, activation="relu"), keras.layers.Dropout(0.5),
                             keras.layers.Dense(1, activation="sigmoid")])
    head.compile(keras.optimizers.RMSprop(1e-4), "binary_crossentropy", metrics=["accuracy"])
    head.fit(ftr, ytr, epochs=epochs, batch_size=32, verbose=0)
    acc_features = head.evaluate(fte, yte, verbose=0)[1]
    t_features = time.perf_counter() - t0
    model = keras.Sequential([keras.Input((args.size, args.size, 3)), base, head])
    model = unfreeze(model, from_layer=f"{base.name}/{record.fine_tune_from}")
    model.compile(keras.optimizers.RMSprop(1e-5), "binary_crossentropy", metrics=["accuracy"])
    t0 = time.perf_counter()
    model.fit(xtr, ytr, epochs=ft_epochs, batch_size=32, verbose=0)
    acc_fine = model.evaluate(xte, yte, verbose=0)[1]
    t_fine = time.perf_counter() - t0
    print(f"\n{'method':<44} {'this run':>9} {'wall s':>7}   book (Kaggle cats vs dogs, 150x150, other data)")
    print(f"{'feature extraction (frozen VGG16 + head)':<44} {acc_features:9.3f} {t_features:7.0f}   about 0.90")
    print(f"{'fine-tuning (+ block5 unfrozen, ' + str(ft_epochs) + ' epochs)':<44} {acc_fine:9.3f} {t_fine:7.0f}   about 0.97")
    print("The data differ: CIFAR-10's 32x32 photos upsampled, fewer images; the numbers are not comparable.")
    return 0


def main() -> int:
    args = parse_args()
    if not os.environ.get("VISIONKIT_DATA"):
        print("Set VISIONKIT_DATA to the folder holding cifar10-jpeg.tar.gz (see docs/offline-data.md).")
        return 2
    if args.real:
        return real_vgg16(args)

    import keras

    from visionkit.data import image_folder, load_cifar10

    quick = args.quick
    n_pre = args.pretrain_images or (8_000 if quick else 24_000)
    pre_epochs = args.pretrain_epochs or 3
    epochs = args.epochs or (8 if quick else 10)
    ft_epochs = args.fine_tune_epochs or (4 if quick else 6)
    per_class = 1_000
    batch = 32
    keras.utils.set_random_seed(0)

    (x_train, y_train), (x_test, y_test) = load_cifar10()
    y_train, y_test = y_train[:, 0], y_test[:, 0]
    print(describe())
    print(f"settings: {'quick' if quick else 'full'}; pretrain {n_pre} images x {pre_epochs} epochs; "
          f"(a)-(c) {epochs} epochs, (d) +{ft_epochs} fine-tuning epochs; batch {batch}")

    with tempfile.TemporaryDirectory(prefix="visionkit-transfer-bench-") as tmp:
        tmp_path = Path(tmp)
        weights_file = pretrain(tmp_path, x_train, y_train, x_test, y_test, n_pre, pre_epochs)
        write_cats_dogs(tmp_path / "train", x_train, y_train, per_class)
        write_cats_dogs(tmp_path / "test", x_test, y_test, per_class)
        train32 = image_folder(tmp_path / "train", image_size=32, batch_size=batch, label_mode="binary", seed=0)
        test32 = image_folder(tmp_path / "test", image_size=32, batch_size=batch, label_mode="binary", shuffle=False)
        print(f"cat/dog: {len(train32.file_paths)} train images, {len(test32.file_paths)} test images (32x32)\n")
        results = compare_methods(tmp_path, weights_file, train32, test32, epochs=epochs, ft_epochs=ft_epochs,
                                  batch=batch, figures=args.figures)
        print("\nmethod                                                   test acc   wall s")
        for name, acc, t in results:
            print(f"{name:<56} {acc:8.3f} {t:8.0f}  {tag()}")
        throughput(weights_file, tmp_path, test32, batch=batch, quick=quick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
