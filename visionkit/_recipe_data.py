"""The data steps the convnet recipes share (private; used by ``convnets``).

``subset`` shuffles a training set once (seeded) and keeps ``limit`` examples,
``holdout`` splits the last fraction off for validation, and ``sample_cats_dogs`` writes
the bundled CIFAR-10 sample's cats and dogs as an image-folder tree.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from . import _validate as V

__all__ = ["holdout", "sample_cats_dogs", "subset"]


@contextlib.contextmanager
def sample_cats_dogs() -> Iterator[Path]:
    """A temporary cats-vs-dogs tree (``train/``, ``test/``) made of the CIFAR-10 sample's cats and dogs."""
    from .data import CIFAR10_CLASSES, load_cifar10, save_image

    (x_train, y_train), (x_test, y_test) = load_cifar10(sample=True)
    with tempfile.TemporaryDirectory(prefix="visionkit-cats-dogs-") as tmp:
        root = Path(tmp)
        for split, xs, ys in (("train", x_train, y_train), ("test", x_test, y_test)):
            for name in ("cat", "dog"):
                label = CIFAR10_CLASSES.index(name)
                for i, img in enumerate(xs[ys[:, 0] == label]):
                    save_image(root / split / name / f"{i:04d}.png", img)
        yield root


def subset(x: np.ndarray, y: np.ndarray, limit: int | None, seed: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Shuffle once (seeded; some sources are sorted by class), then keep ``limit`` examples."""
    order = np.random.default_rng(0 if seed is None else seed).permutation(len(x))
    if limit is not None:
        order = order[:limit]
    return x[order], y[order]


def holdout(x: np.ndarray, y: np.ndarray, fraction: float) -> tuple[tuple[Any, Any], tuple[Any, Any] | None]:
    n_val = round(len(x) * fraction)
    if n_val == 0:
        return (x, y), None
    if n_val >= len(x):
        raise V.fail("validation_split", f"a fraction that leaves training examples (there are {len(x)})", fraction)
    return (x[:-n_val], y[:-n_val]), (x[-n_val:], y[-n_val:])
