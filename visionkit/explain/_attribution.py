"""Gradient attributions: saliency, SmoothGrad, integrated gradients, guided Grad-CAM
(private; public through [`visionkit.gradcam`][visionkit.gradcam]).

Each takes the gradient of the class score *before* the final softmax/sigmoid (as
[`grad_cam`][visionkit.gradcam.grad_cam]) w.r.t. the input pixels, in compiled,
batched steps on a new graph sharing the model's weights; the caller's model is never
modified. Each returns one map per image, float32 ``(N, H, W)`` in ``[0, 1]``: a
per-pixel reduction over the colour channels (documented per function) divided by the
map's own maximum, so each peak is 1 (all-zero maps stay zero, with a warning). With
``raw=True`` the signed, unnormalised attribution ``(N, H, W, C)`` comes back instead.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import _validate as V
from .._images import model_images
from ._cams import normalise
from ._common import class_array

# TensorFlow is imported inside the functions (the command line imports this module).

__all__ = ["guided_grad_cam", "integrated_gradients", "saliency", "smoothgrad"]


def _prepare(model: Any, images: Any, class_index: Any, raw: Any, batch_size: Any, guided: bool = False) -> tuple[Any, np.ndarray, np.ndarray, int]:
    """(compiled input-gradient core, float32 batch, resolved classes, batch size)."""
    from . import _probe

    if not isinstance(raw, bool):
        raise V.fail("raw", "True or False", raw)
    batch_size = V.integer("batch_size", batch_size, minimum=1)
    if model.inputs and not model.inputs[0].dtype.startswith(("float", "bfloat")):
        raise V.fail("model", f"a model with a floating-point input (gradients w.r.t. pixels); model '{model.name}' takes {model.inputs[0].dtype}", model.name)
    x, _single = model_images(model, images)
    x = np.asarray(x, np.float32)
    classes = class_array(class_index, len(x))
    core = _probe.input_gradients(model, guided=guided)
    _probe.check_classes(classes, core.n_units, core.binary, class_index)
    chosen = np.concatenate([core.classes_of(*_tensors(x[s : s + batch_size], classes[s : s + batch_size]))[1].numpy()
                             for s in range(0, len(x), batch_size)]) if len(x) else classes
    return core, x, chosen.astype(np.int32), batch_size


def _tensors(x: np.ndarray, classes: np.ndarray) -> tuple[Any, Any]:
    import tensorflow as tf

    return tf.convert_to_tensor(x, tf.float32), tf.convert_to_tensor(classes, tf.int32)


def _gradients(core: Any, x: np.ndarray, classes: np.ndarray, batch_size: int) -> np.ndarray:
    out = [core.step(*_tensors(x[s : s + batch_size], classes[s : s + batch_size]))[0].numpy()
           for s in range(0, len(x), batch_size)]
    return np.concatenate(out) if out else np.zeros_like(x)


def _finish(attribution: np.ndarray, raw: bool, reduce: str, name: str) -> np.ndarray:
    if raw:
        return attribution.astype(np.float32)
    maps = np.abs(attribution).max(axis=-1) if reduce == "max" else np.abs(attribution.sum(axis=-1))
    maps, n_zero = normalise(maps)
    if n_zero:
        warnings.warn(f"{n_zero} of {len(maps)} {name} maps are all zero (the class score does not depend on "
                      "the pixels there); they are returned as zeros.", UserWarning, stacklevel=3)
    return maps


def saliency(
    model: Any, images: Any, *, class_index: int | Sequence[int] | None = None, raw: bool = False, batch_size: int = 32
) -> np.ndarray:
    """Vanilla gradient saliency (Simonyan et al., 2014): ``max_c |dS/dx_c|``.

    Parameters
    ----------
    model : keras.Model
        A classifier as for [`grad_cam`][visionkit.gradcam.grad_cam], with a
        floating-point input. Not modified.
    images : array-like
        One image ``(H, W, C)`` or a batch ``(N, H, W, C)`` as the model takes it.
    class_index : int, sequence of int or None, default None
        As in [`grad_cam`][visionkit.gradcam.grad_cam]: None for each image's top class.
    raw : bool, default False
        Return the signed gradients ``dS/dx``, float32 ``(N, H, W, C)``, instead.
    batch_size : int, default 32
        Images per compiled step.

    Returns
    -------
    numpy.ndarray
        float32 ``(N, H, W)`` in ``[0, 1]``: the largest absolute gradient over the
        channels, divided by the map's maximum. ``S`` is the class logit.

    Examples
    --------
    >>> import numpy as np, keras
    >>> from visionkit.gradcam import saliency
    >>> model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(4, 3, activation="relu"),
    ...     keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3, activation="softmax")])
    >>> maps = saliency(model, np.random.rand(2, 16, 16, 3).astype("float32"))
    >>> maps.shape, maps.dtype, float(maps.max())
    ((2, 16, 16), dtype('float32'), 1.0)
    """
    core, x, chosen, batch_size = _prepare(model, images, class_index, raw, batch_size)
    return _finish(_gradients(core, x, chosen, batch_size), raw, "max", "saliency")


def smoothgrad(
    model: Any,
    images: Any,
    *,
    class_index: int | Sequence[int] | None = None,
    noise: float = 0.15,
    samples: int = 25,
    seed: int | None = None,
    raw: bool = False,
    batch_size: int = 32,
) -> np.ndarray:
    """SmoothGrad (Smilkov et al., 2017): saliency averaged over noisy copies.

    ``max_c mean_s |dS/dx_c (x + e_s)|`` with ``e_s ~ N(0, sigma^2)``, ``sigma = noise
    * (max(x) - min(x))`` per image; the class is the one of the clean image.

    Parameters
    ----------
    model, images, class_index
        As in [`saliency`][visionkit.gradcam.saliency].
    noise : float, default 0.15
        The noise's standard deviation as a fraction of each image's value range, > 0.
    samples : int, default 25
        Noisy copies per image.
    seed : int, optional
        Seeds the noise (a local generator: no global state changes).
    raw : bool, default False
        Return the mean signed gradient over the copies, float32 ``(N, H, W, C)``.
    batch_size : int, default 32
        Noisy copies per compiled step (the copies of all images are run together).

    Returns
    -------
    numpy.ndarray
        float32 ``(N, H, W)`` in ``[0, 1]``, each map divided by its maximum.

    Examples
    --------
    >>> import numpy as np, keras
    >>> from visionkit.gradcam import smoothgrad
    >>> model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(4, 3, activation="relu"),
    ...     keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)])
    >>> smoothgrad(model, np.random.rand(2, 16, 16, 3).astype("float32"), samples=8, seed=0).shape
    (2, 16, 16)
    """
    noise = V.number("noise", noise, minimum=0.0, exclusive_minimum=True)
    samples = V.integer("samples", samples, minimum=1)
    seed = V.integer("seed", seed, minimum=0, allow_none=True)
    core, x, chosen, batch_size = _prepare(model, images, class_index, raw, batch_size)
    rng = np.random.default_rng(seed)
    sigma = noise * (x.reshape(len(x), -1).max(axis=1) - x.reshape(len(x), -1).min(axis=1)) if len(x) else np.zeros(0)
    total = np.zeros(x.shape, np.float64)
    owner = np.repeat(np.arange(len(x)), samples)
    for start in range(0, len(owner), batch_size):
        ii = owner[start : start + batch_size]
        noisy = x[ii] + rng.standard_normal(x[ii].shape, dtype=np.float32) * sigma[ii, None, None, None].astype(np.float32)
        g = core.step(*_tensors(noisy, chosen[ii]))[0].numpy().astype(np.float64)
        np.add.at(total, ii, g if raw else np.abs(g))
    mean = total / samples
    if raw:
        return mean.astype(np.float32)
    return _finish(mean, False, "max", "smoothgrad")


def integrated_gradients(
    model: Any,
    images: Any,
    *,
    class_index: int | Sequence[int] | None = None,
    baseline: Any = None,
    steps: int = 32,
    raw: bool = False,
    batch_size: int = 32,
) -> np.ndarray:
    """Integrated gradients (Sundararajan et al., 2017) from a baseline to each image.

    ``IG = (x - x') * (1/m) sum_{k=1..m} dS/dx (x' + k/m (x - x'))`` (the right Riemann
    sum of the paper); ``sum(IG)`` approaches ``S(x) - S(x')`` as ``steps`` grows.

    Parameters
    ----------
    model, images, class_index
        As in [`saliency`][visionkit.gradcam.saliency]; the class is the one of the image.
    baseline : float or array-like, optional
        ``x'``: None for zeros, a number, one image ``(H, W, C)`` or one per image.
    steps : int, default 32
        ``m``, the points on the path; the points of all images run together, in
        steps of ``batch_size``.
    raw : bool, default False
        Return the signed ``IG``, float32 ``(N, H, W, C)``.
    batch_size : int, default 32
        Path points per compiled step.

    Returns
    -------
    numpy.ndarray
        float32 ``(N, H, W)`` in ``[0, 1]``: ``|sum_c IG_c|`` per pixel, divided by
        the map's maximum.

    Examples
    --------
    >>> import numpy as np, keras
    >>> from visionkit.gradcam import integrated_gradients
    >>> model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(4, 3, activation="relu"),
    ...     keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)])
    >>> integrated_gradients(model, np.random.rand(2, 16, 16, 3).astype("float32"), steps=8).shape
    (2, 16, 16)
    """
    steps = V.integer("steps", steps, minimum=1)
    core, x, chosen, batch_size = _prepare(model, images, class_index, raw, batch_size)
    try:
        base = np.broadcast_to(np.asarray(0.0 if baseline is None else baseline, np.float32), x.shape)
    except ValueError:
        raise V.fail("baseline", f"None, a number, or an array broadcastable to the images' shape {x.shape}", baseline) from None
    if not np.isfinite(base).all():
        raise V.fail("baseline", "finite values", baseline)
    owner = np.repeat(np.arange(len(x)), steps)
    alpha = np.tile(np.arange(1, steps + 1, dtype=np.float32) / steps, len(x))
    total = np.zeros(x.shape, np.float64)
    for start in range(0, len(owner), batch_size):
        ii, aa = owner[start : start + batch_size], alpha[start : start + batch_size, None, None, None]
        points = base[ii] + aa * (x[ii] - base[ii])
        np.add.at(total, ii, core.step(*_tensors(points, chosen[ii]))[0].numpy().astype(np.float64))
    attribution = (x - base) * total / steps
    return _finish(attribution, raw, "sum", "integrated_gradients")


def guided_grad_cam(
    model: Any,
    images: Any,
    *,
    class_index: int | Sequence[int] | None = None,
    layer: str | None = None,
    raw: bool = False,
    batch_size: int = 32,
) -> np.ndarray:
    """Guided Grad-CAM (Selvaraju et al., 2017): guided backpropagation times Grad-CAM.

    Guided backpropagation is ``dS/dx`` through ReLUs that pass a gradient only where
    both their input and the gradient are positive. It runs on a new graph in which
    every ReLU (``ReLU`` and ``Activation("relu")`` layers, and ``activation="relu"``
    fused into ``Conv2D``, ``Dense``, ...; nested models included) is followed by a
    ``tf.custom_gradient`` gate; the caller's model is untouched. The result is
    multiplied, pixel by pixel, by the Grad-CAM map of the same class and layer.

    Parameters
    ----------
    model, images, class_index
        As in [`saliency`][visionkit.gradcam.saliency].
    layer : str, optional
        The Grad-CAM layer, as in [`grad_cam`][visionkit.gradcam.grad_cam].
    raw : bool, default False
        Return the signed product ``guided(dS/dx) * cam``, float32 ``(N, H, W, C)``.
    batch_size : int, default 32
        Images per compiled step.

    Returns
    -------
    numpy.ndarray
        float32 ``(N, H, W)`` in ``[0, 1]``: ``max_c |guided_c * cam|`` divided by the
        map's maximum.

    Examples
    --------
    >>> import numpy as np, keras
    >>> from visionkit.gradcam import guided_grad_cam
    >>> model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(4, 3, activation="relu"),
    ...     keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3, activation="softmax")])
    >>> guided_grad_cam(model, np.random.rand(2, 16, 16, 3).astype("float32")).shape
    (2, 16, 16)
    """
    from ._cam import grad_cam

    core, x, chosen, batch_size = _prepare(model, images, class_index, raw, batch_size, guided=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # an all-zero CAM gives an all-zero map, warned below
        cams = grad_cam(model, x, class_index=chosen, layer=layer, batch_size=batch_size) if len(x) else np.zeros(x.shape[:3])
    guided = _gradients(core, x, chosen, batch_size)
    return _finish(guided * cams[..., None], raw, "max", "guided_grad_cam")
