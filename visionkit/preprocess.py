"""Preprocessing shared by the recipes: augmentation, VGG (Caffe) pixel scaling,
featurewise standardisation.

Examples
--------
>>> import numpy as np
>>> from visionkit.preprocess import vgg_preprocess, vgg_deprocess
>>> img = np.random.default_rng(0).integers(0, 256, (4, 4, 3)).astype("uint8")
>>> bool((vgg_deprocess(vgg_preprocess(img)) == img).all())
True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from . import _validate as V

if TYPE_CHECKING:  # pragma: no cover
    import keras

__all__ = [
    "IMAGENET_MEAN_RGB",
    "augmentation",
    "standardization",
    "vgg_deprocess",
    "vgg_preprocess",
]

#: ImageNet channel means in RGB order, as subtracted by Caffe-style VGG preprocessing.
IMAGENET_MEAN_RGB: tuple[float, float, float] = (123.68, 116.779, 103.939)


def augmentation(
    *,
    flip: str | None = "horizontal",
    rotation: float = 40.0,
    zoom: float = 0.2,
    translation: float = 0.2,
    contrast: float | None = None,
    seed: int | None = None,
    name: str = "augmentation",
) -> keras.Sequential:
    """Random image augmentation as a ``keras.Sequential`` of preprocessing layers.

    The layers act only in training (``training=True``); at inference they pass
    images through unchanged, so the block can sit inside a model and run on the
    accelerator. The defaults are the classic cats-vs-dogs recipe's.

    Parameters
    ----------
    flip : {"horizontal", "vertical", "horizontal_and_vertical", None}
        Random flips; ``None`` for none.
    rotation : float, default 40.0
        Maximum rotation in **degrees** (either way); 0 disables.
    zoom : float, default 0.2
        Maximum zoom in or out, as a fraction of the size; 0 disables.
    translation : float, default 0.2
        Maximum shift, as a fraction of height and width; 0 disables.
    contrast : float, optional
        Maximum contrast change factor; ``None`` or 0 disables.
    seed : int, optional
        Seed of the random layers.
    name : str, default "augmentation"
        Name of the returned model.

    Returns
    -------
    keras.Sequential
        Maps ``(batch, H, W, C)`` float images to the same shape; values keep their
        range (``[0, 255]`` in, ``[0, 255]`` out).

    Examples
    --------
    >>> from visionkit.preprocess import augmentation
    >>> aug = augmentation(rotation=25, zoom=0, translation=0, seed=0)
    >>> [type(layer).__name__ for layer in aug.layers]
    ['RandomFlip', 'RandomRotation']
    """
    V.one_of("flip", flip, ("horizontal", "vertical", "horizontal_and_vertical", None))
    rotation = V.number("rotation", rotation, minimum=0.0, maximum=180.0)
    zoom = V.number("zoom", zoom, minimum=0.0, maximum=1.0, exclusive_maximum=True)
    translation = V.number("translation", translation, minimum=0.0, maximum=1.0)
    contrast = V.number("contrast", contrast, minimum=0.0, allow_none=True)
    seed = V.integer("seed", seed, allow_none=True)
    import keras

    layers: list[Any] = []
    if flip is not None:
        layers.append(keras.layers.RandomFlip(flip, seed=seed))
    if rotation:
        layers.append(keras.layers.RandomRotation(rotation / 360.0, fill_mode="nearest", seed=seed))
    if translation:
        layers.append(keras.layers.RandomTranslation(translation, translation, fill_mode="nearest", seed=seed))
    if zoom:
        layers.append(keras.layers.RandomZoom(zoom, fill_mode="nearest", seed=seed))
    if contrast:
        layers.append(keras.layers.RandomContrast(contrast, value_range=(0, 255), seed=seed))
    return keras.Sequential(layers, name=name)


def _is_tensor(x: Any) -> bool:
    return not isinstance(x, (np.ndarray, np.generic, list, tuple, int, float))


def vgg_preprocess(images: Any) -> Any:
    """Caffe-style VGG preprocessing: RGB → BGR, then subtract the ImageNet means.

    ``x[..., ::-1] - (103.939, 116.779, 123.68)``: what ``keras.applications.vgg16``
    and ``vgg19`` weights expect.

    Parameters
    ----------
    images : numpy.ndarray or tf.Tensor
        RGB, shape ``(..., 3)``, values in ``[0, 255]``.

    Returns
    -------
    numpy.ndarray or tf.Tensor
        float32 BGR, same shape, roughly in ``[-124, 152]``. A numpy array in gives a
        numpy array out; a tensor gives a tensor.
    """
    if _is_tensor(images):
        import tensorflow as tf

        x = tf.cast(images, tf.float32)
        return x[..., ::-1] - tf.constant(IMAGENET_MEAN_RGB[::-1], tf.float32)
    x = np.asarray(images, dtype=np.float32)
    if x.shape[-1:] != (3,):
        raise V.fail("images", "an RGB array of shape (..., 3)", f"array of shape {x.shape}")
    return x[..., ::-1] - np.asarray(IMAGENET_MEAN_RGB[::-1], np.float32)


def vgg_deprocess(x: Any) -> np.ndarray:
    """Invert [`vgg_preprocess`][visionkit.preprocess.vgg_preprocess] and return uint8 RGB.

    Parameters
    ----------
    x : numpy.ndarray or tf.Tensor
        BGR, mean-subtracted, shape ``(..., 3)``.

    Returns
    -------
    numpy.ndarray
        uint8 RGB, same shape: means added back, channels reversed, rounded and
        clipped to ``[0, 255]``.
    """
    arr = np.asarray(x.numpy() if hasattr(x, "numpy") else x, dtype=np.float32)
    if arr.shape[-1:] != (3,):
        raise V.fail("x", "a BGR array of shape (..., 3)", f"array of shape {arr.shape}")
    rgb = (arr + np.asarray(IMAGENET_MEAN_RGB[::-1], np.float32))[..., ::-1]
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def standardization(data: Any, *, axis: int | None = -1) -> keras.layers.Normalization:
    """A Keras ``Normalization`` layer adapted to ``data`` (featurewise z-score).

    Parameters
    ----------
    data : numpy.ndarray or tf.data.Dataset
        Training images ``(N, H, W, C)`` (any numeric dtype), or a dataset of images
        or of ``(images, labels)`` pairs.
    axis : int or None, default -1
        Axis that keeps separate statistics (``-1``: one mean/variance per channel);
        ``None`` for a single scalar mean and variance.

    Returns
    -------
    keras.layers.Normalization
        Maps ``x`` to ``(x - mean) / sqrt(var)`` (float32), computed on ``data``.

    Examples
    --------
    >>> import numpy as np
    >>> from visionkit.preprocess import standardization
    >>> layer = standardization(np.random.default_rng(0).random((100, 8, 8, 3)) * 255)
    >>> layer(np.full((1, 8, 8, 3), 127.5, np.float32)).shape
    TensorShape([1, 8, 8, 3])
    """
    import keras
    import tensorflow as tf

    if isinstance(data, tf.data.Dataset):
        spec = data.element_spec
        ds = data.map(lambda *e: tf.cast(e[0], tf.float32)) if isinstance(spec, tuple) else data.map(lambda e: tf.cast(e, tf.float32))
        layer = keras.layers.Normalization(axis=axis, name="standardization")
        layer.adapt(ds)
        return layer
    arr = np.asarray(data)
    if arr.ndim < 2 or len(arr) == 0 or not np.issubdtype(arr.dtype, np.number):
        raise V.fail("data", "a non-empty numeric array of images (N, H, W, C) or a tf.data.Dataset", f"array of shape {arr.shape}")
    if axis is not None:
        axis = V.integer("axis", axis, minimum=-(arr.ndim - 1), maximum=arr.ndim - 1)
    # Exact float64 statistics in chunks: no float32 copy of the whole array.
    keep = None if axis is None else axis % arr.ndim
    reduce_axes = tuple(i for i in range(arr.ndim) if i != keep)
    total = 0.0
    sums = sq = 0.0
    for start in range(0, len(arr), 4096):
        chunk = arr[start : start + 4096].astype(np.float64)
        sums = sums + chunk.sum(axis=reduce_axes)
        sq = sq + np.square(chunk).sum(axis=reduce_axes)
        total += chunk.size / (1 if keep is None else arr.shape[keep])
    mean = np.asarray(sums) / total
    variance = np.maximum(np.asarray(sq) / total - mean**2, 0.0)
    return keras.layers.Normalization(
        axis=axis, mean=mean.astype(np.float32), variance=variance.astype(np.float32), name="standardization"
    )
