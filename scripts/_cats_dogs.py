"""The cat-vs-dog classifier of the real-weights figures and tests (#21).

A real ImageNet VGG16 base, global average pooling and a ridge head fitted in closed form
on CIFAR-10 cats and dogs upsampled to 96 px. ``scripts/real_weights_figures.py`` draws the
docs' CAM figure with it and ``tests/test_real_weights.py`` checks the same model, so the
figure shows what the tests assert. A repo tool, not part of the package.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np

__all__ = ["cat_dog_classifier", "cifar_cats_dogs", "pooled_features", "ridge_accuracy"]


def cifar_cats_dogs(root: Path, split: str, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    """``per_class`` cat (label 0) and dog (label 1) images of a CIFAR-10 split, uint8 (N, 32, 32, 3)."""
    from PIL import Image

    want = {f"cifar10/{split}/cat/": 0, f"cifar10/{split}/dog/": 1}
    images: list[list[np.ndarray]] = [[], []]
    with tarfile.open(root / "cifar10-jpeg.tar.gz") as tar:
        for member in tar:
            label = next((v for k, v in want.items() if member.name.startswith(k)), None)
            if label is None or len(images[label]) >= per_class or not member.isfile():
                if all(len(x) >= per_class for x in images):
                    break
                continue
            data = tar.extractfile(member).read()
            images[label].append(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))
    x = np.concatenate([np.stack(images[0]), np.stack(images[1])])
    y = np.concatenate([np.zeros(len(images[0]), np.int64), np.ones(len(images[1]), np.int64)])
    return x, y


def pooled_features(base, x: np.ndarray, size: int = 96) -> np.ndarray:
    """Global-average-pooled VGG16 features of uint8 images upsampled to ``size``."""
    import tensorflow as tf

    from visionkit.preprocess import vgg_preprocess

    up = tf.image.resize(x.astype(np.float32), (size, size), method="bilinear").numpy()
    maps = base.predict(vgg_preprocess(up), batch_size=64, verbose=0)
    return maps.mean(axis=(1, 2))


def ridge_accuracy(f_train, y_train, f_test, y_test, alpha: float = 1.0) -> float:
    """Test accuracy of a ridge classifier (targets -1/+1) on standardised features."""
    mu, sd = f_train.mean(0), f_train.std(0) + 1e-6
    a, b = (f_train - mu) / sd, (f_test - mu) / sd
    a1 = np.hstack([a, np.ones((len(a), 1))])
    t = 2.0 * y_train - 1.0
    w = np.linalg.solve(a1.T @ a1 + alpha * len(a) * np.eye(a1.shape[1]), a1.T @ t)
    pred = (np.hstack([b, np.ones((len(b), 1))]) @ w) > 0
    return float((pred == y_test.astype(bool)).mean())


def cat_dog_classifier(base, x: np.ndarray, y: np.ndarray, feats: np.ndarray | None = None):
    """``base`` + global average pooling + a ridge head fitted on uint8 cats (0) and dogs (1): logits (cat, dog).

    ``feats``: ``pooled_features(base, x)`` if already computed.
    """
    import keras

    feats = pooled_features(base, x) if feats is None else feats
    mu, sd = feats.mean(0), feats.std(0) + 1e-6
    a1 = np.hstack([(feats - mu) / sd, np.ones((len(feats), 1))])
    w = np.linalg.solve(a1.T @ a1 + len(a1) * np.eye(a1.shape[1]), a1.T @ (2.0 * y - 1.0))
    inputs = keras.Input((None, None, 3))
    dense = keras.layers.Dense(2, name="cat_dog")
    model = keras.Model(inputs, dense(keras.layers.GlobalAveragePooling2D()(base(inputs))), name="cat_dog")
    sign = np.array([-1.0, 1.0])  # cat = -score, dog = +score
    dense.set_weights([((w[:-1] / sd)[:, None] * sign[None]).astype(np.float32),
                       ((w[-1] - (w[:-1] / sd) @ mu) * sign).astype(np.float32)])
    return model
