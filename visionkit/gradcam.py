"""Grad-CAM: where a convnet looks when it predicts a class.

[`grad_cam`][visionkit.gradcam.grad_cam] computes class-activation heatmaps for any Keras classifier
(functional, ``Sequential``, a pretrained base nested inside either, models loaded from
``.keras`` files, softmax or sigmoid heads) in one compiled, batched pass;
[`overlay`][visionkit.gradcam.overlay] paints a heatmap over its image; [`explain_errors`][visionkit.gradcam.explain_errors] draws the
gallery of a model's most confidently wrong predictions with their heatmaps (an
[`ErrorGallery`][visionkit.gradcam.ErrorGallery]).

How it works: a new functional graph (built once per model and layer, then cached)
re-runs the model's own layers, sharing their weights, and returns the chosen layer's
activations ``A`` together with the class scores taken *before* the final
softmax/sigmoid. One ``tf.function`` step computes ``A`` and ``dscore/dA`` for a whole
batch; the CAM variants in [`METHODS`][visionkit.gradcam.METHODS] differ only in how they weigh them:

| method | weighting |
| --- | --- |
| ``"gradcam"`` | channel weights = spatial mean of the gradients (Selvaraju et al., 2017) |
| ``"gradcam++"`` | channel weights = positive gradients weighted by second/third-order terms (Chattopadhay et al., 2018) |
| ``"layercam"`` | element-wise ``relu(gradient) * A`` (Jiang et al., 2021) |
| ``"hirescam"`` | element-wise ``gradient * A`` (Draelos & Carin, 2020) |

The caller's model is never modified.
"""

from __future__ import annotations

import math
import warnings
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _validate as V
from ._images import as_batch, display, to_uint8

# TensorFlow, Keras and the modules that import them (_layers, _heads, _labels) are
# imported inside the functions, so that reading METHODS (the command line's
# choices) stays cheap.

__all__ = ["METHODS", "ErrorGallery", "candidate_layers", "explain_errors", "grad_cam", "overlay"]

_EPS = 1e-7

# ----------------------------------------------------------------------------- weightings
#
# A CAM method is one function: float64 activations and gradients of the class score,
# both ``(N, h, w, C)``, to the raw weighted maps ``(N, h, w)`` (before the final ReLU
# and normalisation). The first line of its docstring describes it in METHODS.


def _gradcam(activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """channel weights = spatial mean of the gradients

    Selvaraju et al., 2017: ``sum_c mean_hw(dS/dA_c) * A_c``.
    """
    weights = gradients.mean(axis=(1, 2), keepdims=True)
    return (weights * activations).sum(axis=-1)


def _gradcam_plus_plus(activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """channel weights = positive gradients with higher-order weights

    Chattopadhay et al., 2018: ``alpha = g^2 / (2 g^2 + sum_hw(A) g^3)`` (0 where the
    gradient is 0), channel weights ``sum_hw(alpha * relu(g))``.
    """
    g2 = gradients**2
    g3 = g2 * gradients
    sum_a = activations.sum(axis=(1, 2), keepdims=True)
    denom = 2.0 * g2 + sum_a * g3
    alpha = np.where(gradients != 0.0, g2 / np.where(denom != 0.0, denom, _EPS), 0.0)
    weights = (alpha * np.maximum(gradients, 0.0)).sum(axis=(1, 2), keepdims=True)
    return (weights * activations).sum(axis=-1)


def _layercam(activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """element-wise relu(gradient) * activation

    Jiang et al., 2021: ``sum_c relu(dS/dA_c) * A_c``, position by position.
    """
    return (np.maximum(gradients, 0.0) * activations).sum(axis=-1)


def _hirescam(activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """element-wise gradient * activation

    Draelos & Carin, 2020: ``sum_c dS/dA_c * A_c``, position by position.
    """
    return (gradients * activations).sum(axis=-1)


#: method name -> weighting function; a new CAM method is one function and one entry.
_WEIGHTINGS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "gradcam": _gradcam,
    "gradcam++": _gradcam_plus_plus,
    "layercam": _layercam,
    "hirescam": _hirescam,
}

#: The CAM variants [`grad_cam`][visionkit.gradcam.grad_cam] offers, with a one-line description each.
METHODS: dict[str, str] = {name: (fn.__doc__ or "").strip().splitlines()[0] for name, fn in _WEIGHTINGS.items()}

# model -> {layer name: _Explainer}; weak keys so a dropped model frees its graphs.
_CACHE: weakref.WeakKeyDictionary[Any, dict[str, _Explainer]] = weakref.WeakKeyDictionary()


# ----------------------------------------------------------------------------- layers


def _is_4d(layer: Any) -> bool:
    import keras

    from . import _layers

    return (
        not isinstance(layer, (keras.Model, keras.layers.InputLayer))
        and _layers.output_rank(layer) == 4
    )


def candidate_layers(model: Any) -> list[str]:
    """Names of the layers Grad-CAM can use: every layer with a 4-D output.

    Nested layers are named ``"outer/inner"``; the list is in graph order, so its last
    element is the default layer of [`grad_cam`][visionkit.gradcam.grad_cam].

    Parameters
    ----------
    model : keras.Model
        A functional or ``Sequential`` model.

    Returns
    -------
    list of str

    Examples
    --------
    >>> import keras
    >>> from visionkit.gradcam import candidate_layers
    >>> m = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3, name="c"),
    ...                       keras.layers.Flatten(), keras.layers.Dense(2)])
    >>> candidate_layers(m)
    ['c']
    """
    from . import _layers

    return _layers.candidates(model, _is_4d)


def _resolve_layer(model: Any, layer: str | None) -> str:
    names = candidate_layers(model)
    if layer is None:
        if not names:
            raise V.fail(
                "layer",
                f"given: model '{model.name}' has no layer with a 4-D output (batch, height, width, channels)",
                layer,
            )
        return names[-1]
    if not isinstance(layer, str) or layer not in names:
        from . import _layers

        raise V.fail(
            "layer",
            f"the name of a layer of model '{model.name}' with a 4-D output; valid names: {_layers._short(names)}",
            layer,
        )
    return layer


# ----------------------------------------------------------------------------- core


class _Explainer:
    """The tapped graph and compiled gradient step for one (model, layer)."""

    def __init__(self, model: Any, layer: str) -> None:
        import tensorflow as tf

        from . import _heads, _layers

        final = _heads.final_layer(model)
        head = _heads.head_kind(final[1]) if final else "other"
        substitute = _heads.logits_substitute(final[1]) if final else None
        target = final[0] if final else None

        def replace(name: str, lyr: Any) -> Any:
            return substitute if substitute is not None and name == target else None

        self.layer = layer
        self.head = head
        self.pre_activation = substitute is not None
        self.graph = _layers.tap(model, [layer], replace=replace, name=f"{model.name}_gradcam")
        graph = self.graph

        n_units = int(np.prod(graph.output["output"].shape[1:]))
        binary = n_units == 1 and head in ("sigmoid", "linear")
        threshold = 0.0 if (self.pre_activation or head == "linear") else 0.5

        spec = model.inputs[0]
        signature = [tf.TensorSpec((None, *spec.shape[1:]), spec.dtype), tf.TensorSpec((None,), tf.int32)]

        @tf.function(input_signature=signature)
        def step(x: Any, classes: Any) -> tuple[Any, Any, Any]:
            with tf.GradientTape() as tape:
                out = graph(x, training=False)
                acts = out[layer]
                scores = tf.reshape(tf.cast(out["output"], tf.float32), [-1, n_units])
                if binary:
                    # one sigmoid unit: class 1 is the unit's score, class 0 its negation
                    top = tf.cast(scores[:, 0] > threshold, tf.int32)
                    chosen = tf.where(classes < 0, top, classes)
                    score = tf.where(chosen > 0, scores[:, 0], -scores[:, 0])
                else:
                    top = tf.argmax(scores, axis=1, output_type=tf.int32)
                    chosen = tf.where(classes < 0, top, classes)
                    score = tf.gather(scores, chosen, axis=1, batch_dims=1)
                total = tf.reduce_sum(score)
            grads = tape.gradient(total, acts)
            return tf.cast(acts, tf.float32), tf.cast(grads, tf.float32), chosen

        self.step = step
        self.n_units = n_units
        self.binary = binary


def _explainer(model: Any, layer: str) -> _Explainer:
    try:
        per_model = _CACHE.setdefault(model, {})
    except TypeError:  # not weak-referenceable: build every time
        return _Explainer(model, layer)
    if layer not in per_model:
        per_model[layer] = _Explainer(model, layer)
    return per_model[layer]


def _weigh(acts: np.ndarray, grads: np.ndarray, method: str) -> np.ndarray:
    """Combine activations and gradients ``(N, h, w, C)`` into maps ``(N, h, w)`` >= 0."""
    cam = _WEIGHTINGS[method](acts.astype(np.float64), grads.astype(np.float64))
    return np.maximum(cam, 0.0)


def _normalise(cams: np.ndarray) -> tuple[np.ndarray, int]:
    """Scale each map to ``[0, 1]`` by its maximum; all-zero maps stay zero."""
    cams = np.nan_to_num(cams, nan=0.0, posinf=0.0, neginf=0.0)
    peak = cams.reshape(len(cams), -1).max(axis=1) if cams.size else np.zeros(len(cams))
    ok = np.isfinite(peak) & (peak > 0)
    out = np.zeros(cams.shape, dtype=np.float32)
    out[ok] = cams[ok] / peak[ok, None, None]
    return np.clip(out, 0.0, 1.0), int((~ok).sum())


def _resize_maps(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import tensorflow as tf

    if maps.shape[1:3] == tuple(size):
        return maps
    out = tf.image.resize(maps[..., None], size, method="bilinear").numpy()[..., 0]
    return np.maximum(out, 0.0)


def _class_array(class_index: Any, n: int) -> np.ndarray:
    if class_index is None:
        return np.full(n, -1, np.int32)
    if isinstance(class_index, (int, np.integer)) and not isinstance(class_index, bool):
        V.integer("class_index", class_index, minimum=0)
        return np.full(n, int(class_index), np.int32)
    arr = np.asarray(class_index)
    if arr.ndim != 1 or len(arr) != n or not np.issubdtype(arr.dtype, np.integer) or (arr < 0).any():
        raise V.fail(
            "class_index",
            f"None, a non-negative int, or {n} non-negative ints (one per image)",
            class_index,
        )
    return arr.astype(np.int32)


def grad_cam(
    model: Any,
    images: Any,
    *,
    class_index: int | Sequence[int] | None = None,
    layer: str | None = None,
    method: str = "gradcam",
    upsample: bool = True,
    batch_size: int = 32,
) -> np.ndarray:
    """Grad-CAM heatmaps: which parts of each image drove the class score.

    Parameters
    ----------
    model : keras.Model
        A functional or ``Sequential`` classifier, possibly with nested models (for
        example a pretrained base inside a ``Sequential``), with one output: softmax
        scores, sigmoid score(s) or logits. Not modified.
    images : array-like
        One image ``(H, W, C)`` or a batch ``(N, H, W, C)``, numeric, exactly as the
        model expects them (raw or preprocessed). For a one-channel model ``(H, W)``
        and ``(N, H, W)`` are accepted too.
    class_index : int, sequence of int or None, default None
        The class to explain: None for each image's top class, one int for all
        images, or one int per image. For a single-unit sigmoid head, class 1 is the
        unit and class 0 its complement.
    layer : str, optional
        The layer whose activations are weighed, ``"outer/inner"`` for a nested one.
        Default: the last layer with a 4-D output (see [`candidate_layers`][visionkit.gradcam.candidate_layers]).
    method : str, default "gradcam"
        One of [`METHODS`][visionkit.gradcam.METHODS]: ``"gradcam"``, ``"gradcam++"``, ``"layercam"``,
        ``"hirescam"``.
    upsample : bool, default True
        Resize the maps (bilinear) to the images' height and width.
    batch_size : int, default 32
        Images per compiled gradient step.

    Returns
    -------
    numpy.ndarray
        float32 ``(N, H, W)`` heatmaps in ``[0, 1]`` (``(N, h, w)`` at the layer's
        resolution with ``upsample=False``); ``N = 1`` for a single image. Each map
        is scaled by its own maximum (after upsampling), so its peak is 1.

    Warns
    -----
    UserWarning
        When some maps have no positive value (nothing supports the class); those
        maps are all zeros, never NaN.

    Raises
    ------
    InvalidArgumentError
        An unknown layer or one without a 4-D output (the message lists the valid
        names), a bad method, class index or image shape.

    Notes
    -----
    The gradient is taken on the class score *before* the final softmax/sigmoid when
    the model's last layer is a ``Dense`` with that activation or a separate
    ``Activation``/``Softmax`` layer: a new graph sharing the model's weights reads
    the logits, the model itself is untouched. The graph and its compiled step are
    cached per model and layer.

    Examples
    --------
    >>> import numpy as np, keras
    >>> from visionkit.gradcam import grad_cam
    >>> model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 3),
    ...     keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3, activation="softmax")])
    >>> maps = grad_cam(model, np.random.rand(2, 32, 32, 3).astype("float32"))
    >>> maps.shape, maps.dtype
    ((2, 32, 32), dtype('float32'))
    """
    V.one_of("method", method, METHODS)
    batch_size = V.integer("batch_size", batch_size, minimum=1)
    if not isinstance(upsample, bool):
        raise V.fail("upsample", "True or False", upsample)
    layer = _resolve_layer(model, layer)
    x, _single = as_batch(model, images)
    classes = _class_array(class_index, len(x))
    explainer = _explainer(model, layer)
    n_classes = 2 if explainer.binary else explainer.n_units
    if classes.size and classes.max() >= n_classes:
        raise V.fail("class_index", f"a class index below {n_classes} (the model's number of classes)", class_index)
    maps = _cams(model, x, classes, layer=layer, method=method, batch_size=batch_size)
    if upsample:
        maps = _resize_maps(maps, x.shape[1:3])
    maps, n_zero = _normalise(maps)
    if n_zero:
        warnings.warn(
            f"{n_zero} of {len(maps)} Grad-CAM maps have no positive value for layer '{layer}' "
            "(nothing in the image supports the class there); they are returned as zeros.",
            UserWarning,
            stacklevel=2,
        )
    return maps


def _cams(
    model: Any, x: np.ndarray, classes: np.ndarray, *, layer: str, method: str, batch_size: int
) -> np.ndarray:
    import tensorflow as tf

    explainer = _explainer(model, layer)
    dtype = model.inputs[0].dtype if model.inputs else "float32"
    out = []
    for start in range(0, len(x), batch_size):
        xb = tf.convert_to_tensor(x[start : start + batch_size], dtype=dtype)
        cb = tf.convert_to_tensor(classes[start : start + batch_size])
        acts, grads, _chosen = explainer.step(xb, cb)
        out.append(_weigh(acts.numpy(), grads.numpy(), method))
    if not out:
        return np.zeros((0, 0, 0), np.float32)
    return np.concatenate(out, axis=0)


# ----------------------------------------------------------------------------- pictures


def overlay(image: Any, heatmap: Any, *, alpha: float = 0.4, colormap: str = "jet") -> np.ndarray:
    """Paint a heatmap over an image.

    Parameters
    ----------
    image : array-like
        ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)``; uint8, or floats in ``[0, 255]``
        or ``[0, 1]`` (other ranges are min-max scaled for display).
    heatmap : array-like
        ``(h, w)`` values in ``[0, 1]`` (as returned by [`grad_cam`][visionkit.gradcam.grad_cam]); resized
        (bilinear) to the image.
    alpha : float, default 0.4
        Weight of the coloured heatmap, in ``[0, 1]``.
    colormap : str, default "jet"
        A matplotlib colormap name.

    Returns
    -------
    numpy.ndarray
        uint8 RGB image ``(H, W, 3)``: ``(1 - alpha) * image + alpha * colour``.

    Examples
    --------
    >>> import numpy as np
    >>> from visionkit.gradcam import overlay
    >>> overlay(np.zeros((64, 64, 3), "uint8"), np.eye(8)).shape
    (64, 64, 3)
    """
    import matplotlib

    alpha = V.number("alpha", alpha, minimum=0.0, maximum=1.0)
    try:
        cmap = matplotlib.colormaps[colormap]
    except (KeyError, TypeError, ValueError):
        raise V.fail("colormap", "a matplotlib colormap name such as 'jet', 'viridis' or 'inferno'", colormap) from None
    base = display(image).astype(np.float32)
    heat = np.asarray(heatmap, dtype=np.float32)
    if heat.ndim == 3 and heat.shape[0] == 1:
        heat = heat[0]
    if heat.ndim != 2:
        raise V.fail("heatmap", "a 2-D array (h, w)", f"array of shape {heat.shape}")
    heat = np.clip(np.nan_to_num(heat), 0.0, 1.0)
    if heat.shape != base.shape[:2]:
        from PIL import Image

        resized = Image.fromarray(heat, mode="F").resize((base.shape[1], base.shape[0]), Image.BILINEAR)
        heat = np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)
    colour = cmap(heat)[..., :3].astype(np.float32) * 255.0
    return to_uint8((1.0 - alpha) * base + alpha * colour)


def _iter_data(data: Any) -> Iterable[tuple[np.ndarray, np.ndarray]]:
    if isinstance(data, tuple) and len(data) == 2:
        x, y = np.asarray(data[0]), np.asarray(data[1])
        if len(x) != len(y):
            raise V.fail("data", "an (images, labels) pair of equal length", f"{len(x)} images, {len(y)} labels")
        for start in range(0, len(x), 256):
            yield x[start : start + 256], y[start : start + 256]
        return
    try:
        import tensorflow as tf

        if isinstance(data, tf.data.Dataset):
            for batch in data:
                if not isinstance(batch, (tuple, list)) or len(batch) < 2:
                    raise V.fail("data", "a tf.data.Dataset of (images, labels) batches", data)
                yield np.asarray(batch[0]), np.asarray(batch[1])
            return
    except ImportError:  # pragma: no cover
        pass
    raise V.fail("data", "an (images, labels) tuple of arrays or a tf.data.Dataset of (images, labels) batches", data)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _labels_of(y: np.ndarray, n_out: int) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        return y.argmax(axis=1).astype(np.int64)
    return np.rint(y.reshape(len(y))).astype(np.int64)


@dataclass(frozen=True)
class ErrorGallery:
    """The most confidently wrong predictions of a model, drawn with their heatmaps.

    Returned by [`explain_errors`][visionkit.gradcam.explain_errors]. In a notebook it shows as its figure.

    Attributes
    ----------
    figure : matplotlib.figure.Figure
        The gallery: one tile per error (the image with the Grad-CAM overlay of the
        predicted class, true and predicted names, confidence), or a short message
        when the model made no error. Save it with ``figure.savefig(path)``.
    errors : tuple of (int, int, int, float)
        One ``(index, true, predicted, confidence)`` per tile, most confident
        first: ``index`` counts images in the order of the data, ``true`` and
        ``predicted`` are class indices, ``confidence`` (in ``[0, 1]``) is the
        probability given to the predicted class. Empty when there was no error.
    """

    figure: Any
    errors: tuple[tuple[int, int, int, float], ...]

    def _repr_png_(self) -> bytes:
        """The figure as PNG bytes (IPython's rich display)."""
        import io

        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png")
        return buffer.getvalue()


def explain_errors(
    model: Any,
    data: Any,
    *,
    k: int = 9,
    class_names: Sequence[str] | Mapping[int, str] | None = None,
    layer: str | None = None,
    method: str = "gradcam",
    alpha: float = 0.4,
    ncols: int | None = None,
) -> ErrorGallery:
    """A gallery of the ``k`` most confidently wrong predictions, with their heatmaps.

    Each tile shows an image with the Grad-CAM overlay for the *predicted* (wrong)
    class, its true and predicted labels and the confidence.

    Parameters
    ----------
    model : keras.Model
        A classifier (softmax, sigmoid or logits head; the confidence of a logits
        head is its softmax, or sigmoid for one unit). Not modified.
    data : tuple or tf.data.Dataset
        ``(images, labels)`` arrays, or a dataset of ``(images, labels)`` batches;
        images ``(N, H, W, C)`` as the model expects them, labels integers ``(N,)``
        or one-hot rows ``(N, classes)``. Read once, in batches.
    k : int, default 9
        Number of errors shown (at most).
    class_names : sequence or mapping of str, optional
        Names for the labels. Default: the class names the model carries (a
        ``ClassNames`` layer at its end, kept when it is saved), else the indices.
    layer, method
        As in [`grad_cam`][visionkit.gradcam.grad_cam].
    alpha : float, default 0.4
        Heatmap opacity, in ``[0, 1]``.
    ncols : int, optional
        Columns of the gallery; default ``ceil(sqrt(k))``.

    Returns
    -------
    ErrorGallery
        ``figure`` (a matplotlib ``Figure``; a short message if the model made no
        error) and ``errors``, one ``(index, true, predicted, confidence)`` per tile.

    Raises
    ------
    InvalidArgumentError
        Bad ``k``, ``ncols``, ``method`` or ``layer``, or ``data`` that is not
        ``(images, labels)`` of equal length.

    Examples
    --------
    >>> import numpy as np, keras
    >>> from visionkit.gradcam import explain_errors
    >>> model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(4, 3),
    ...     keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2, activation="softmax")])
    >>> x = np.random.default_rng(0).random((8, 16, 16, 3), dtype="float32")
    >>> wrong = 1 - model.predict(x, verbose=0).argmax(axis=1)  # every prediction is an error
    >>> gallery = explain_errors(model, (x, wrong), k=4, class_names=["cat", "dog"])
    >>> len(gallery.errors), gallery.figure.axes[0].get_title().splitlines()[0][:5]
    (4, 'true:')
    """
    import tensorflow as tf
    from matplotlib.figure import Figure

    from . import _labels

    k = V.integer("k", k, minimum=1)
    ncols = V.integer("ncols", ncols, minimum=1, allow_none=True)
    V.one_of("method", method, METHODS)
    layer = _resolve_layer(model, layer)
    if class_names is None:
        class_names = _labels.class_names(model)
    logits = _explainer(model, layer).head == "linear"
    # keep the k most confident errors while streaming through the data
    best: list[tuple[float, int, np.ndarray, int, int]] = []
    seen = 0
    for xb, yb in _iter_data(data):
        xb_model, _ = as_batch(model, xb, argument="data") if xb.ndim else (xb, False)
        probs = np.asarray(model(tf.convert_to_tensor(xb_model, dtype=model.inputs[0].dtype), training=False), np.float32)
        probs = probs.reshape(len(probs), -1)
        if logits:  # a model returning logits: confidences from softmax / sigmoid
            probs = 1.0 / (1.0 + np.exp(-probs)) if probs.shape[1] == 1 else _softmax(probs)
        if probs.shape[1] == 1:
            p1 = probs[:, 0]
            pred = (p1 > 0.5).astype(np.int64)
            conf = np.where(pred == 1, p1, 1.0 - p1)
        else:
            pred = probs.argmax(axis=1)
            conf = probs.max(axis=1)
        true = _labels_of(yb, probs.shape[1])
        for i in np.flatnonzero(pred != true):
            best.append((float(conf[i]), seen + int(i), xb_model[i], int(true[i]), int(pred[i])))
        best.sort(key=lambda t: -t[0])
        del best[k:]
        seen += len(xb_model)

    if not best:
        fig = Figure(figsize=(4, 1.5))
        fig.text(0.5, 0.5, f"No errors on {seen} images.", ha="center", va="center")
        return ErrorGallery(fig, ())
    images = np.stack([b[2] for b in best])
    preds = np.array([b[4] for b in best], np.int32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        maps = grad_cam(model, images, class_index=preds, layer=layer, method=method)
    n = len(best)
    cols = ncols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(2.4 * cols, 2.7 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (conf, _idx, img, true, pred), heat in zip(axes.flat, best, maps):
        ax.imshow(overlay(img, heat, alpha=alpha))
        ax.set_title(f"true: {_class_name(class_names, true)}\npred: {_class_name(class_names, pred)} ({conf:.0%})", fontsize=9)
    fig.suptitle(f"{n} most confident errors of {seen} images")
    return ErrorGallery(fig, tuple((b[1], b[3], b[4], b[0]) for b in best))


def _class_name(class_names: Sequence[str] | Mapping[int, str] | None, c: int) -> str:
    """The name of class ``c``, or ``str(c)`` when there is none."""
    if class_names is None:
        return str(c)
    try:
        return str(class_names[c])
    except (IndexError, KeyError):
        return str(c)
