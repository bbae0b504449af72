"""Make the figure and the tables of docs/explanations-methods.md with visionkit itself.

Trains a small convnet to tell images with a bright square from noise (the evidence
is known: the square), then explains 32 held-out positives with every CAM method and
every gradient attribution, and scores them with deletion, insertion and ROAD. Writes
``docs/img/explain_methods.png`` and prints the markdown tables for the page.

    python scripts/explain_docs_images.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import numpy as np  # noqa: E402

from visionkit import explain, gradcam  # noqa: E402
from visionkit._io import save_figure  # noqa: E402

OUT = ROOT / "docs" / "img"
ATTRIBUTIONS = ("saliency", "smoothgrad", "integrated_gradients", "guided_grad_cam")


def squares(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Noise images, every other one with a bright 10×10 square; also the squares' boxes."""
    x = rng.uniform(0, 90, size=(n, 48, 48, 1)).astype("float32")
    y = (np.arange(n) % 2).astype("int64")
    boxes = np.zeros((n, 2), "int64")
    for i in np.flatnonzero(y):
        r, c = rng.integers(0, 48 - 10, size=2)
        x[i, r : r + 10, c : c + 10] = 255.0
        boxes[i] = r, c
    return x, y, boxes


def main() -> None:
    keras.utils.set_random_seed(0)
    x, y, _ = squares(1200, np.random.default_rng(0))
    model = keras.Sequential([
        keras.Input((48, 48, 1)), keras.layers.Rescaling(1 / 255),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1"), keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv2"),
        keras.layers.GlobalMaxPooling2D(), keras.layers.Dense(2, activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, epochs=4, batch_size=32, verbose=0)
    xt, yt, boxes = squares(64, np.random.default_rng(1))
    acc = float(np.mean(model.predict(xt, verbose=0).argmax(1) == yt))
    pos, box = xt[yt == 1], boxes[yt == 1]
    methods = [*gradcam.METHODS, *ATTRIBUTIONS]
    print(f"model: test accuracy {acc:.3f} on {len(xt)} images; explaining {len(pos)} positives\n")

    hits = {}
    for name in methods:
        maps = explain.heatmaps(model, pos, method=name, class_index=1)
        peaks = [np.unravel_index(np.argmax(m), m.shape) for m in maps]
        hits[name] = np.mean([r <= p[0] < r + 10 and c <= p[1] < c + 10 for p, (r, c) in zip(peaks, box)])
    tables = {}
    for metric in ("deletion", "insertion", "road"):
        comparison = explain.compare_methods(model, pos, methods=methods, metric=metric, class_index=1)
        tables[metric] = comparison
        print(f"### {metric}\n\n{comparison.to_markdown()}\n")
    fig = tables["road"].figure(n_images=4)
    save_figure(fig, OUT / "explain_methods.png", dpi=70)
    print("| method | peak inside the square |\n| --- | --- |")
    for name in methods:
        print(f"| `{name}` | {hits[name]:.0%} |")
    print(f"\nwrote {OUT / 'explain_methods.png'}")


if __name__ == "__main__":
    main()
