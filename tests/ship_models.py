"""Tiny trained classifiers and image folders shared by the tests of issue #23 (not a test file)."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from visionkit import training

NAMES = ["red", "green", "blue"]


def colour_images(n: int, *, size: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (n, size, size, 3) noisy images whose brightest channel is the class; labels (n,)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = rng.normal(100, 40, (n, size, size, 3))
    x[np.arange(n), :, :, y] += rng.uniform(20, 70, (n, 1, 1))
    return np.clip(x, 0, 255).astype(np.uint8), y


def tiny_model(head: str = "softmax", *, steps: int = 60, seed: int = 0) -> keras.Model:
    """A few conv layers on 16x16 RGB pixels in [0, 255], trained briefly; carries NAMES."""
    keras.utils.set_random_seed(seed)
    units = 1 if head == "sigmoid" else 3
    activation = {"softmax": "softmax", "logits": None, "sigmoid": "sigmoid"}[head]
    inputs = keras.Input((16, 16, 3), name="image")
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(8, 3, activation="relu")(x)
    x = keras.layers.Conv2D(8, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(units, activation=activation, name="head")(x)
    model = keras.Model(inputs, outputs)
    xs, ys = colour_images(256, seed=seed)
    if head == "sigmoid":
        ys = (ys == 1).astype("float32")
        loss = "binary_crossentropy"
    else:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=head == "logits")
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss=loss)
    model.fit(xs.astype("float32"), ys, batch_size=64, epochs=max(1, steps // 4), verbose=0)
    names = ["other", "green"] if head == "sigmoid" else NAMES
    return training.with_class_names(model, names)


def image_folder(root: Path, n: int = 12, *, size: int = 20) -> Path:
    """A folder of class sub-folders of PNGs (size x size, not the model's size)."""
    from visionkit.data import save_image

    x, y = colour_images(n, size=size, seed=1)
    for i, (img, label) in enumerate(zip(x, y)):
        save_image(root / NAMES[label] / f"img{i:02d}.png", img)
    return root
