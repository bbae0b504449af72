"""``tf.data`` pipelines: the decode-orient-convert-resize map of image folders, and `from_arrays`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import _validate as V
from ..errors import InvalidArgumentError

if TYPE_CHECKING:  # pragma: no cover
    import tensorflow as tf

#: Channels of each ``color_mode`` of [`image_folder`][visionkit.data.image_folder].
COLOR_CHANNELS = {"grayscale": 1, "rgb": 3, "rgba": 4}


def files_dataset(
    files: list[str],
    labels: list[int],
    orientations: list[int],
    class_names: list[str] | None,
    *,
    shuffle: bool,
    seed: int | None,
    batch_size: int | None,
    label_mode: str | None,
    color_mode: str,
    image_size: tuple[int, int],
    crop_to_aspect_ratio: bool,
    pad_to_aspect_ratio: bool,
) -> tf.data.Dataset:
    """Decode, orient, convert and resize ``files`` into a batched, prefetched dataset.

    The options are [`image_folder`][visionkit.data.image_folder]'s, already checked.
    """
    import tensorflow as tf

    num_classes = len(class_names or ())
    oriented = any(o != 1 for o in orientations)  # the orientation ops only where a file needs them
    ds = tf.data.Dataset.from_tensor_slices(
        (files, np.asarray(labels, np.int32), np.asarray(orientations, np.int32))
    )
    if shuffle:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)

    def load(path: tf.Tensor, label: tf.Tensor, orientation: tf.Tensor) -> Any:
        img = tf.io.decode_image(tf.io.read_file(path), channels=0, expand_animations=False, dtype=tf.uint8)
        img = _tf_color(tf.cast(img, tf.float32), color_mode)
        if oriented:
            img = _tf_orient(img, orientation)
        img = _tf_fit(img, image_size, crop=crop_to_aspect_ratio, pad=pad_to_aspect_ratio)
        img.set_shape((*image_size, COLOR_CHANNELS[color_mode]))
        if label_mode is None:
            return img
        if label_mode == "categorical":
            label = tf.one_hot(label, num_classes)
        elif label_mode == "binary":
            label = tf.expand_dims(tf.cast(label, tf.float32), -1)
        return img, label

    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if batch_size is not None:
        ds = ds.batch(batch_size)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    ds.class_names = None if class_names is None else list(class_names)
    ds.file_paths = list(files)
    return ds


def _tf_color(img: tf.Tensor, color_mode: str) -> tf.Tensor:
    """A decoded float image (1 to 4 channels) in ``color_mode``, as ``load_image`` converts.

    Alpha (LA, RGBA) is composited on white for ``"rgb"`` and ``"grayscale"``; gray is
    repeated to RGB; ``"rgba"`` keeps the alpha (255 where there is none).
    """
    import tensorflow as tf

    has_alpha = tf.shape(img)[-1] % 2 == 0
    color = tf.cond(has_alpha, lambda: img[..., :-1], lambda: img)
    alpha = tf.cond(has_alpha, lambda: img[..., -1:], lambda: tf.fill(tf.shape(img[..., :1]), 255.0))
    if color_mode == "rgba":
        return tf.concat([tf.tile(color, [1, 1, 3 // tf.shape(color)[-1]]), alpha], axis=-1)
    color = color * (alpha / 255.0) + 255.0 * (1.0 - alpha / 255.0)
    if color_mode == "rgb":
        return tf.tile(color, [1, 1, 3 // tf.shape(color)[-1]])
    luma = tf.constant([0.299, 0.587, 0.114])  # ITU-R 601-2, as PIL's convert("L")
    return tf.cond(
        tf.shape(color)[-1] == 3,
        lambda: tf.clip_by_value(tf.reduce_sum(color * luma, axis=-1, keepdims=True), 0.0, 255.0),
        lambda: color,
    )


def _tf_orient(img: tf.Tensor, orientation: tf.Tensor) -> tf.Tensor:
    """Apply an EXIF orientation (1 to 8) as PIL's ``ImageOps.exif_transpose`` does."""
    import tensorflow as tf

    def transverse() -> tf.Tensor:
        return tf.image.rot90(tf.image.transpose(img), 2)

    return tf.switch_case(orientation - 1, [
        lambda: img,
        lambda: tf.image.flip_left_right(img),
        lambda: tf.image.rot90(img, 2),
        lambda: tf.image.flip_up_down(img),
        lambda: tf.image.transpose(img),
        lambda: tf.image.rot90(img, 3),
        transverse,
        lambda: tf.image.rot90(img, 1),
    ])


def _tf_fit(img: tf.Tensor, image_size: tuple[int, int], *, crop: bool, pad: bool) -> tf.Tensor:
    """Resize to ``image_size`` (bilinear): distorted, centre-cropped or padded, as Keras.

    The three calls ``keras.utils.image_dataset_from_directory`` makes: Keras' own
    ``smart_resize`` for the centre crop, ``tf.image.resize_with_pad`` for the padding.
    """
    import keras
    import tensorflow as tf

    if pad:
        return tf.image.resize_with_pad(img, image_size[0], image_size[1], method="bilinear")
    if crop:
        return keras.preprocessing.image.smart_resize(img, image_size, interpolation="bilinear")
    return tf.image.resize(img, image_size, method="bilinear")


def from_arrays(
    x: Any,
    y: Any = None,
    *,
    batch_size: int = 32,
    shuffle: bool = True,
    seed: int | None = None,
    augment: Callable[..., Any] | None = None,
    cache: bool = True,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Wrap arrays in a batched, prefetched ``tf.data.Dataset``.

    Parameters
    ----------
    x : array-like
        Inputs, shape ``(N, ...)``; cast to float32 per batch (values unchanged).
    y : array-like, optional
        Targets, shape ``(N, ...)``; ``None`` for inputs only.
    batch_size : int, default 32
        Batch size. The last batch is smaller unless ``drop_remainder``.
    shuffle : bool, default True
        Reshuffle every epoch (with ``seed``).
    seed : int, optional
        Shuffle seed.
    augment : callable, optional
        Applied to each batch of inputs as ``augment(x, training=True)`` (a Keras layer
        or model such as [`visionkit.preprocess.augmentation`][visionkit.preprocess.augmentation]) or ``augment(x)``.
    cache : bool, default True
        Cache the unbatched examples in memory after the first epoch.
    drop_remainder : bool, default False
        Drop the last partial batch.

    Returns
    -------
    tf.data.Dataset
        Yields ``(x_batch, y_batch)``, or ``x_batch`` when ``y`` is None.

    Examples
    --------
    >>> from visionkit.data import from_arrays, load_mnist
    >>> (x, y), _ = load_mnist(sample=True)
    >>> ds = from_arrays(x[..., None], y, batch_size=64, seed=0)
    >>> images, labels = next(iter(ds))
    >>> images.shape, images.dtype.name, labels.shape
    (TensorShape([64, 28, 28, 1]), 'float32', TensorShape([64]))
    """
    import tensorflow as tf

    batch_size = V.integer("batch_size", batch_size, minimum=1)
    x = np.asarray(x)
    if x.ndim < 1 or len(x) == 0:
        raise V.fail("x", "a non-empty array of shape (N, ...)", f"array of shape {x.shape}")
    if y is not None:
        y = np.asarray(y)
        if len(y) != len(x):
            raise InvalidArgumentError(
                f"Arguments `x` and `y` must have the same length. Received: len(x)={len(x)}, len(y)={len(y)}"
            )
    if augment is not None and not callable(augment):
        raise V.fail("augment", "a callable (e.g. a Keras layer) or None", augment)
    ds = tf.data.Dataset.from_tensor_slices((x, y) if y is not None else x)
    if cache:
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)

    def prepare(*batch: Any) -> Any:
        xb = tf.cast(batch[0], tf.float32)
        if augment is not None:
            xb = _call_augment(augment, xb)
        return (xb, *batch[1:]) if len(batch) > 1 else xb

    ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def _call_augment(augment: Callable[..., Any], xb: Any) -> Any:
    try:
        return augment(xb, training=True)
    except TypeError:
        return augment(xb)
