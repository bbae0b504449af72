"""Image-array helpers shared by the recipes (private).

Generic conversions between what callers pass (one image or a batch, any numeric
dtype and value range) and what models and plots need: ``as_batch`` shapes
images like a model's input, ``display`` and ``to_rgb`` make uint8 RGB for
showing, ``to_uint8`` rounds pixel values. NumPy only: importing this module
does not import TensorFlow.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _validate as V

__all__ = ["as_batch", "check_fits", "display", "literal", "load_image_as", "model_images", "to_rgb", "to_uint8"]


def to_uint8(image: Any) -> np.ndarray:
    """Round pixel values to uint8.

    Parameters
    ----------
    image : array-like
        Any shape; numeric values on the ``[0, 255]`` scale.

    Returns
    -------
    numpy.ndarray
        uint8 array of the same shape: values rounded (half to even) and clipped to
        ``[0, 255]``. NaN becomes 0.

    Examples
    --------
    >>> to_uint8([-3.0, 0.4, 127.5, 300.0])
    array([  0,   0, 128, 255], dtype=uint8)
    """
    x = np.nan_to_num(np.asarray(image, dtype=np.float64), nan=0.0)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def to_rgb(image: Any, *, argument: str = "image") -> np.ndarray:
    """Give an image exactly three channels (the dtype and values are kept).

    Parameters
    ----------
    image : array-like
        ``(H, W)`` or ``(H, W, 1)`` (grey, repeated into three channels), ``(H, W, 3)``
        or ``(H, W, 4)`` (the alpha channel is dropped).
    argument : str, default "image"
        The argument name used in the error message.

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)``, same dtype as ``image``.

    Raises
    ------
    InvalidArgumentError
        Any other shape.

    Examples
    --------
    >>> to_rgb(np.zeros((4, 5), "uint8")).shape
    (4, 5, 3)
    """
    x = np.asarray(image)
    if x.ndim == 3 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim == 2:
        x = np.repeat(x[..., None], 3, axis=-1)
    if x.ndim != 3 or x.shape[-1] not in (3, 4):
        raise V.fail(argument, "an image of shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4)", f"array of shape {np.shape(image)}")
    return x[..., :3]


def display(image: Any, *, argument: str = "image") -> np.ndarray:
    """An image as uint8 RGB for showing, whatever its dtype and value range.

    Parameters
    ----------
    image : array-like
        ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4)``. uint8 is kept as
        it is; floats in ``[0, 1]`` are scaled by 255; other numbers within
        ``[0, 255]`` are kept; anything else is min-max scaled to ``[0, 255]``
        (a constant image outside ``[0, 255]`` becomes black). NaN counts as 0.
    argument : str, default "image"
        The argument name used in the error message.

    Returns
    -------
    numpy.ndarray
        uint8 ``(H, W, 3)``.

    Raises
    ------
    InvalidArgumentError
        An array of another shape.

    Examples
    --------
    >>> display(np.full((2, 2), 0.5, "float32"))[0, 0]
    array([128, 128, 128], dtype=uint8)
    """
    x = np.asarray(image)
    if x.dtype != np.uint8:
        integer = np.issubdtype(x.dtype, np.integer)
        x = np.nan_to_num(x.astype(np.float32))
        lo, hi = (float(x.min()), float(x.max())) if x.size else (0.0, 0.0)
        if lo >= 0.0 and hi <= 1.0 and not integer:
            x = x * 255.0
        elif lo < 0.0 or hi > 255.0:
            x = (x - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(x)
        x = to_uint8(x)
    return to_rgb(x, argument=argument)


def as_batch(model: Any, images: Any, *, argument: str = "images") -> tuple[np.ndarray, bool]:
    """Shape one image or a batch like a model's input.

    Parameters
    ----------
    model : keras.Model
        Its first input's shape ``(batch, *shape)`` decides the rank (images of
        rank 3, ``(H, W, C)``, when it is unknown). Not modified.
    images : array-like
        One image (rank of the model's input without the batch axis) or a batch
        (one more axis); numeric or bool, values untouched. For a one-channel
        image model, ``(H, W)`` (one image) and ``(N, H, W)`` (a batch) are
        accepted too.
    argument : str, default "images"
        The argument name used in error messages.

    Returns
    -------
    batch : numpy.ndarray
        ``(N, *shape)`` with the dtype of ``images`` (a view where possible: do not
        write to it).
    single : bool
        True when ``images`` was one image (then ``N == 1``).

    Raises
    ------
    InvalidArgumentError
        A non-numeric array or one whose rank fits neither one image nor a batch.

    Examples
    --------
    >>> import keras
    >>> m = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten()])
    >>> batch, single = as_batch(m, np.zeros((8, 8)))
    >>> batch.shape, single
    ((1, 8, 8, 1), True)
    """
    x = np.asarray(images)
    if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise V.fail(argument, "a numeric array of shape (H, W, C) or (N, H, W, C)", images)
    shape = tuple(model.inputs[0].shape[1:]) if model.inputs else None
    rank = len(shape) if shape is not None else 3
    channels = shape[-1] if shape else None
    if x.ndim == rank:
        if channels == 1 and rank == 3 and x.shape[-1] != 1:
            return x[..., None], False  # a batch of grayscale images without channel axis
        return x[None], True
    if x.ndim == rank + 1:
        return x, False
    if x.ndim == rank - 1 and channels == 1:
        return x[None, ..., None], True
    raise V.fail(
        argument,
        f"one image of shape {shape} or a batch of shape (N, *{shape}) for model '{model.name}'",
        f"array of shape {x.shape}",
    )


def literal(text: object) -> str:
    """``text`` made safe to draw with matplotlib: drawn as written, never parsed as mathtext.

    Class names and file names are data: ``bill_$5_to_$10`` would otherwise be read as
    a formula (and fail to draw). Escaping ``$`` is all mathtext needs.
    """
    return str(text).replace("$", r"\$")


def check_fits(model: Any, batch: Any, *, argument: str = "images") -> None:
    """Raise unless ``batch`` ``(N, ...)`` is non-empty and fits the model's first input.

    A dimension the model leaves open (``None``) fits any size. The message names
    ``argument``, the shape the model takes and the shape that arrived, instead of the
    error Keras raises from inside the model.

    Examples
    --------
    >>> import keras
    >>> m = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten()], name="m")
    >>> check_fits(m, np.zeros((2, 8, 8, 3)))
    >>> check_fits(m, np.zeros((2, 4, 4, 3)))
    Traceback (most recent call last):
    ...
    visionkit.errors.InvalidArgumentError: Argument `images` must be a non-empty batch of shape (N, 8, 8, 3) for model 'm'. Received: images='array of shape (2, 4, 4, 3)'
    """
    shape = tuple(np.shape(batch))
    want = tuple(model.inputs[0].shape[1:]) if model.inputs else None
    fits = len(shape) >= 1 and shape[0] > 0
    if want is not None:
        fits = fits and len(shape) == len(want) + 1 and all(w is None or int(w) == g for g, w in zip(shape[1:], want))
    if not fits:
        text = "(N, " + ", ".join("None" if w is None else str(w) for w in want) + ")" if want is not None else "(N, ...)"
        raise V.fail(argument, f"a non-empty batch of shape {text} for model '{model.name}'", f"array of shape {shape}")


def load_image_as(source: Any, argument: str) -> np.ndarray:
    """``visionkit.data.load_image(source)``, its argument errors naming ``argument``.

    ``load_image`` names its own parameter (``source``); a recipe's caller passed
    ``content``, ``style`` or ``image``, and that is the name the message should give.
    """
    from .data import load_image
    from .errors import InvalidArgumentError

    try:
        return load_image(source)
    except InvalidArgumentError as exc:
        text = str(exc).replace("Argument `source`", f"Argument `{argument}`").replace("Received: source=", f"Received: {argument}=")
        raise InvalidArgumentError(text) from None


def model_images(model: Any, images: Any, *, argument: str = "images", first: int = 0) -> tuple[Any, bool]:
    """``images`` as a batch the model can take, or an error that says why not.

    The one check every explanation entry point (Grad-CAM and its methods, the
    attributions, the faithfulness metrics, ``interpret``) runs before the model
    sees the images: the model has one output, the images fit its input spec
    (``model.inputs[0].shape``: channels and any fixed height/width) and every value
    is finite. A batch of 0 images is returned as is (callers answer with an empty
    result of the right shape).

    Parameters
    ----------
    model : keras.Model
        Not modified.
    images : array-like
        One image or a batch, as `as_batch` takes them.
    argument : str, default "images"
        The argument name used in error messages.
    first : int, default 0
        The index of ``images[0]`` in the caller's data (for streamed batches), so
        that the error names the caller's image indices.

    Returns
    -------
    batch : numpy.ndarray
        ``(N, *shape)``, values untouched (a view where possible: do not write to it).
    single : bool
        True when ``images`` was one image.

    Raises
    ------
    InvalidArgumentError
        A model with several outputs, images of the wrong shape, channels or size
        (the message gives the model's expected shape and the array's), or images
        with NaN or infinite values (the message names their indices).
    """
    V.one_output(model)
    x, single = as_batch(model, images, argument=argument)
    inputs = getattr(model, "inputs", None)
    if inputs:
        spec = tuple(inputs[0].shape[1:])
        if len(spec) != x.ndim - 1 or any(s is not None and s != d for s, d in zip(spec, x.shape[1:])):
            expected = "(N, " + ", ".join("any" if s is None else str(s) for s in spec) + ")"
            axes = " (height, width, channels)" if len(spec) == 3 else ""
            raise V.fail(argument, f"images of shape {expected}{axes} for model "
                       f"'{model.name}', whose input is {(None, *spec)}", f"array of shape {x.shape}")
    if x.size and np.issubdtype(x.dtype, np.inexact):
        bad = np.flatnonzero(~np.isfinite(x.reshape(len(x), -1)).all(axis=1))
        if bad.size:
            shown = ", ".join(str(first + int(i)) for i in bad[:10]) + (", ..." if bad.size > 10 else "")
            raise V.fail(argument, f"finite (no NaN or infinite values); {bad.size} of {len(x)} images are not: "
                       f"index {shown}", f"array of shape {x.shape} with non-finite values")
    return x, single
