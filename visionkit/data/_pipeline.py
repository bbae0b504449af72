"""``tf.data`` pipelines: the decode-orient-convert-resize map of image folders, and `from_arrays`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import _validate as V
from ..errors import InvalidArgumentError
from . import _readguard as RG

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
    on_error: str = "raise",
    cache: str | None = None,
    jpeg_only: bool = False,
) -> tf.data.Dataset:
    """Decode, orient, convert and resize ``files`` into a batched, prefetched dataset.

    The options are [`image_folder`][visionkit.data.image_folder]'s, already checked;
    ``cache`` is ``None``, ``""`` (memory) or a file prefix for ``tf.data``'s cache. Files
    that fail to decode are handled by the read-time guard (``on_error``). ``jpeg_only``
    (every header said JPEG) builds the JPEG path alone (a smaller graph, built faster).
    """
    import tensorflow as tf

    n = len(files)
    decode = image_decoder(
        color_mode=color_mode, image_size=image_size, crop=crop_to_aspect_ratio, pad=pad_to_aspect_ratio,
        oriented=any(o != 1 for o in orientations),  # the orientation ops only where a file needs them
        jpeg_only=jpeg_only,
    )
    encode = label_encoder(label_mode, len(class_names or ()))
    paths = tf.constant(files)
    label_table = tf.constant(np.asarray(labels, np.int32))
    orient_table = tf.constant(np.asarray(orientations, np.int32))

    def load(idx: tf.Tensor) -> tuple[Any, ...]:
        img = decode(tf.io.read_file(tf.gather(paths, idx)), tf.gather(orient_table, idx))
        return (img,) if label_mode is None else (img, encode(tf.gather(label_table, idx)))

    def strip(*element: Any) -> Any:
        return element[0] if len(element) == 1 else tuple(element)

    if cache is None:
        guard = RG.ReadGuard(files, on_error=on_error, shuffle=shuffle, seed=seed, batch_size=batch_size or 1)
        ds = RG.guarded_epochs(guard, load, batch_size=batch_size, strip=strip)
    else:  # decode once in a fixed (seeded) order, cache, then shuffle the decoded images
        guard = RG.ReadGuard(files, on_error=on_error, shuffle=False, seed=seed, batch_size=1)
        if shuffle:
            guard.fixed = np.random.default_rng(seed).permutation(n).astype(np.int64)
        ds = RG.guarded_epochs(guard, load, batch_size=None, strip=strip).cache(cache)
        if shuffle:
            ds = ds.shuffle(n if cache == "" else min(n, CACHE_SHUFFLE_BUFFER), seed=seed, reshuffle_each_iteration=True)
        if batch_size is not None:
            ds = ds.batch(batch_size)
    ds = ds.apply(tf.data.experimental.assert_cardinality(-(-n // batch_size) if batch_size else n))
    ds = ds.prefetch(tf.data.AUTOTUNE)
    ds.class_names = None if class_names is None else list(class_names)
    ds.file_paths = list(files)
    return ds


#: Shuffle buffer (images) after a file cache: the files were already permuted once before caching.
CACHE_SHUFFLE_BUFFER = 10_000


def image_decoder(
    *, color_mode: str, image_size: tuple[int, int], crop: bool, pad: bool, oriented: bool, jpeg_only: bool = False,
) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
    """``decode(raw_bytes, orientation) -> float32 (h, w, channels)``: decode, convert, orient, resize.

    JPEGs read in ``"rgb"`` take the short path (``decode_jpeg`` straight to 3 channels,
    oriented while still ``uint8``); other files are decoded with ``decode_image`` and
    converted as ``load_image`` converts (alpha composited on white, gray repeated).
    ``jpeg_only`` leaves the other path out (a file that is not a JPEG then fails to
    decode, and the read-time guard names it).
    """
    import tensorflow as tf

    channels = COLOR_CHANNELS[color_mode]

    def finish(img: tf.Tensor, orientation: tf.Tensor) -> tf.Tensor:
        if oriented:
            img = _tf_orient(img, orientation)
        if crop or pad:  # Keras' smart_resize keeps the input dtype: resize floats
            img = tf.cast(img, tf.float32)
        img = tf.cast(_tf_fit(img, image_size, crop=crop, pad=pad), tf.float32)
        img.set_shape((*image_size, channels))
        return img

    def general(raw: tf.Tensor, orientation: tf.Tensor) -> tf.Tensor:
        img = tf.io.decode_image(raw, channels=0, expand_animations=False, dtype=tf.uint8)
        return finish(_tf_color(tf.cast(img, tf.float32), color_mode), orientation)

    def decode(raw: tf.Tensor, orientation: tf.Tensor) -> tf.Tensor:
        if color_mode != "rgb":
            return general(raw, orientation)
        if jpeg_only:
            return finish(tf.io.decode_jpeg(raw, channels=3), orientation)
        return tf.cond(
            tf.io.is_jpeg(raw),
            lambda: finish(tf.io.decode_jpeg(raw, channels=3), orientation),
            lambda: general(raw, orientation),
        )

    return decode


def label_encoder(label_mode: str | None, num_classes: int) -> Callable[[tf.Tensor], tf.Tensor]:
    """``encode(int32 label)`` as ``label_mode`` asks: the int, one-hot float32, or float32 ``(1,)``."""
    import tensorflow as tf

    def encode(label: tf.Tensor) -> tf.Tensor:
        if label_mode == "categorical":
            return tf.one_hot(label, num_classes)
        if label_mode == "binary":
            return tf.expand_dims(tf.cast(label, tf.float32), -1)
        return label

    return encode


def _tf_color(img: tf.Tensor, color_mode: str) -> tf.Tensor:
    """A decoded float image (1 to 4 channels) in ``color_mode``, as ``load_image`` converts.

    Alpha (LA, RGBA) is composited on white for ``"rgb"`` and ``"grayscale"``; gray is
    repeated to RGB; ``"rgba"`` keeps the alpha (255 where there is none).
    """
    import tensorflow as tf

    if color_mode == "rgb":  # the common case, RGB files, costs nothing
        return tf.cond(tf.shape(img)[-1] == 3, lambda: img, lambda: _tf_color_general(img, color_mode))
    return _tf_color_general(img, color_mode)


def _tf_color_general(img: tf.Tensor, color_mode: str) -> tf.Tensor:
    """``_tf_color`` for any number of channels."""
    import tensorflow as tf

    channels = tf.shape(img)[-1]
    has_alpha = channels % 2 == 0  # without branches (cheaper to build than tf.cond): LA, RGBA
    color = img[..., : channels - tf.cast(has_alpha, tf.int32)]
    alpha = tf.where(has_alpha, img[..., -1:], 255.0)
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
