"""Training data as batched ``tf.data`` datasets, checked against the model (private; used by ``training``).

``as_dataset`` takes what [`visionkit.training.train`][visionkit.training.train] accepts (an ``(x, y)``
pair of arrays or a batched ``tf.data.Dataset``), checks the inputs' shape and the
labels against the model's head (``_label_checks``) and returns a batched dataset.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from . import _validate as V
from ._label_checks import check_labels, guard_labels, label_kind
from .errors import InvalidArgumentError

if TYPE_CHECKING:  # pragma: no cover
    import keras
    import tensorflow as tf

__all__ = ["as_dataset", "is_arrays", "replay_epochs", "shape_fits", "shape_text"]


def is_arrays(data: Any) -> bool:
    return isinstance(data, (tuple, list)) and len(data) == 2


def as_dataset(
    model: keras.Model, data: Any, name: str, *, batch_size: int, shuffle: bool, seed: int | None, loss: Any = None
) -> tuple[tf.data.Dataset, dict[str, Any]]:
    """Return a batched dataset of ``data`` and what its labels look like.

    The labels (all of them for arrays, the first batch of a dataset) are checked
    against the model's head for the loss ``loss`` (``None``: the default loss).
    """
    import tensorflow as tf

    from .data import from_arrays

    want = tuple(model.inputs[0].shape[1:])
    if isinstance(data, tf.data.Dataset):
        spec = data.element_spec
        if not isinstance(spec, tuple) or len(spec) < 2:
            raise V.fail(name, "a dataset of (inputs, labels) pairs", f"dataset with element_spec {spec}")
        x_shape = tuple(spec[0].shape)
        if len(x_shape) < 1 or not shape_fits(x_shape[1:], want):
            raise V.fail(name, f"a batched dataset whose inputs have shape (batch, {shape_text(want)})", f"dataset of inputs {x_shape}")
        if int(data.cardinality()) == 0:  # Keras would "train" zero steps and say nothing
            raise V.fail(name, "a non-empty dataset", "a dataset of 0 batches")
        y_shape = tuple(spec[1].shape)
        info = {"label_shape": y_shape[1:], "source": "dataset", "input_shape": x_shape[1:]}
        return guard_labels(model, data, label_kind(model, loss, info["label_shape"]), name), info
    if not is_arrays(data):
        raise V.fail(name, "an (x, y) tuple of arrays or a tf.data.Dataset", type(data).__name__)
    x, y = np.asarray(data[0]), np.asarray(data[1])
    if x.ndim == len(want) and len(want) >= 2 and want[-1] == 1 and shape_fits((*x.shape[1:], 1), want):
        x = x[..., None]  # (N, H, W) grayscale for an (H, W, 1) model
    if x.ndim < 1 or not shape_fits(x.shape[1:], want):
        raise V.fail(name, f"inputs of shape (N, {shape_text(want)}) for model '{model.name}'", f"x of shape {x.shape}")
    if len(x) == 0:
        raise V.fail(name, f"at least one example (x of shape (N, {shape_text(want)}) with N >= 1)", f"x of shape {x.shape}")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise V.fail(name, "numeric inputs", f"x of dtype {x.dtype}")
    if len(y) != len(x):
        raise InvalidArgumentError(
            f"Argument `{name}` has {len(x)} inputs but {len(y)} labels; they must match. "
            f"Received: x of shape {x.shape}, y of shape {y.shape}"
        )
    check_labels(model, y, label_kind(model, loss, tuple(y.shape[1:])), name)
    ds = from_arrays(x, y, batch_size=batch_size, shuffle=shuffle, seed=seed)
    return ds, {"label_shape": tuple(y.shape[1:]), "source": "arrays", "input_shape": tuple(x.shape[1:])}



def replay_epochs(ds: tf.data.Dataset, epochs: int) -> None:
    """Draw ``epochs`` epochs of ``ds`` as ``model.fit`` does, and drop them: what a resumed run does for the epochs it skips.

    The random state of the shuffle (drawn each time an iterator is made) and of the
    seeded augmentation layers (drawn as batches are made) lives in the pipeline, not in
    the checkpoint. Drawing the skipped epochs (the pipeline only, no training step) moves
    it to where the interrupted run left it, so the resumed run sees the same batches as a
    run never interrupted. Keras' epoch iterator makes its next iterator at the end of each
    full epoch when the number of batches is known, and then a fresh one as the next epoch
    begins: one unused iterator an epoch, made here too (an iterator that is never read
    draws its shuffle seed and nothing else). ``tests/test_tricks.py`` checks the
    equality, so a Keras that iterates otherwise fails there.
    """
    known = int(ds.cardinality()) >= 0
    for _ in range(epochs):
        for _ in ds:
            pass
        if known:
            iter(ds)


def shape_fits(got: tuple[Any, ...], want: tuple[Any, ...]) -> bool:
    return len(got) == len(want) and all(w is None or g is None or int(g) == int(w) for g, w in zip(got, want))


def shape_text(shape: tuple[Any, ...]) -> str:
    return ", ".join("None" if s is None else str(s) for s in shape)
