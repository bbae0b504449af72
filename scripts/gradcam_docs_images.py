"""Make the pictures of docs/gradcam.md (docs/img/gradcam_*.png) with visionkit itself.

Trains two small convnets (bright squares vs noise; the bundled MNIST sample), then
writes: the squares localisation, MNIST heatmaps, the error gallery, activation
grids and a filter grid. Takes about a minute on 2 CPU cores.

    python scripts/gradcam_docs_images.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from visionkit import data, gradcam, visualize  # noqa: E402
from visionkit._io import atomic_path, save_figure  # noqa: E402

OUT = ROOT / "docs" / "img"


def save_png(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="png", optimize=True)


def squares(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.uniform(0, 90, size=(n, 48, 48, 1)).astype("float32")
    y = (np.arange(n) % 2).astype("int64")
    for i in np.flatnonzero(y):
        r, c = rng.integers(0, 48 - 10, size=2)
        x[i, r : r + 10, c : c + 10] = 255.0
    return x, y


def main() -> None:
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    # 1. bright squares vs noise: the heatmap must find the square
    x, y = squares(800, rng)
    sq = keras.Sequential([
        keras.Input((48, 48, 1)), keras.layers.Rescaling(1 / 255),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu"), keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(16, 3, padding="same", activation="relu"), keras.layers.GlobalMaxPooling2D(),
        keras.layers.Dense(2, activation="softmax"),
    ])
    sq.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    sq.fit(x, y, epochs=4, batch_size=32, verbose=0)
    xt, yt = squares(16, np.random.default_rng(1))
    pos = xt[yt == 1][:6]
    maps = gradcam.grad_cam(sq, pos, class_index=1)
    tiles = list(pos) + [gradcam.overlay(im, m) for im, m in zip(pos, maps)]
    fig = visualize.image_grid(tiles, ncols=6, tile_size=1.3)
    save_figure(fig, OUT / "gradcam_squares.png", dpi=80)

    # 2. an MNIST convnet on the bundled sample
    (x_train, y_train), (x_test, y_test) = data.load_mnist(sample=True)
    model = keras.Sequential([
        keras.Input((28, 28, 1)), keras.layers.Rescaling(1 / 255),
        keras.layers.Conv2D(32, 3, activation="relu", name="conv1"),
        keras.layers.MaxPooling2D(name="pool1"),
        keras.layers.Conv2D(64, 3, activation="relu", name="conv2"),
        keras.layers.Conv2D(64, 3, activation="relu", name="conv3"),
        keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10, activation="softmax"),
    ], name="mnist_cnn")
    model.compile(optimizer=keras.optimizers.Adam(0.003), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train[..., None], y_train, epochs=8, batch_size=64, verbose=0)
    acc = model.evaluate(x_test[..., None], y_test, verbose=0)[1]
    print(f"MNIST sample test accuracy: {acc:.3f}")
    sel = x_test[:8]
    titles = []
    tiles = []
    for method in ("gradcam", "gradcam++", "layercam"):
        maps = gradcam.grad_cam(model, sel, method=method)
        tiles += [gradcam.overlay(im, m, alpha=0.5) for im, m in zip(sel, maps)]
        titles += [method] + [""] * 7
    fig = visualize.image_grid([np.stack([s] * 3, -1) for s in sel] + tiles, ncols=8, tile_size=1.1,
                               titles=["image"] + [""] * 7 + titles)
    save_figure(fig, OUT / "gradcam_mnist.png", dpi=80)
    gallery = gradcam.explain_errors(model, (x_test[..., None], y_test), k=8, ncols=4)
    save_figure(gallery.figure, OUT / "gradcam_errors.png", dpi=70)
    acts = visualize.activations(model, x_test[0], layers=["conv1", "conv3"])
    figs = visualize.plot_activations(acts, images_per_row=16)
    save_figure(figs["conv1"], OUT / "gradcam_activations.png", dpi=70)
    grid = visualize.filter_grid(model, "conv3", filters=64, margin=2, steps=40, progress=False)
    save_png(OUT / "gradcam_filters.png", np.asarray(Image.fromarray(grid).resize((grid.shape[1] * 2, grid.shape[0] * 2), Image.NEAREST)))
    for p in sorted(OUT.glob("gradcam_*.png")):
        print(p.relative_to(ROOT), f"{p.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
