"""Grad-CAM: where a convnet looks when it predicts a class.

:func:`grad_cam` computes class-activation heatmaps for any Keras classifier
(functional, ``Sequential``, a pretrained base nested inside either, models loaded from
``.keras`` files, softmax or sigmoid heads) in one compiled, batched pass;
:func:`overlay` paints a heatmap over its image; :func:`explain_errors` draws the
gallery of a model's most confidently wrong predictions with their heatmaps.

How it works: a new functional graph (built once per model and layer, then cached)
re-runs the model's own layers, sharing their weights, and returns the chosen layer's
activations ``A`` together with the class scores taken *before* the final
softmax/sigmoid. One ``tf.function`` step computes ``A`` and ``dscore/dA`` for a whole
batch; the CAM variants in :data:`METHODS` differ only in how they weigh them:

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
from typing import Any

import numpy as np

from . import _layers
from . import _validate as V

__all__ = ["METHODS", "candidate_layers", "explain_errors", "grad_cam", "overlay"]

#: The CAM variants :func:`grad_cam` offers, with a one-line description each.
METHODS: dict[str, str] = {
    "gradcam": "channel weights = spatial mean of the gradients",
    "gradcam++": "channel weights = positive gradients with higher-order weights",
    "layercam": "element-wise relu(gradient) * activation",
    "hirescam": "element-wise gradient * activation",
}

_EPS = 1e-7

# model -> {layer name: _Explainer}; weak keys so a dropped model frees its graphs.
_CACHE: weakref.WeakKeyDictionary[Any, dict[str, _Explainer]] = weakref.WeakKeyDictionary()


# ----------------------------------------------------------------------------- layers


def _is_4d(layer: Any) -> bool:
    import keras

    return (
        not isinstance(layer, (keras.Model, keras.layers.InputLayer))
        and _layers.output_rank(layer) == 4
    )


def candidate_layers(model: Any) -> list[str]:
    """Names of the layers Grad-CAM can use: every layer with a 4-D output.

    Nested layers are named ``"outer/inner"``; the list is in graph order, so its last
    element is the default layer of :func:`grad_cam`.

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
        raise V.fail(
            "layer",
            f"the name of a layer of model '{model.name}' with a 4-D output; valid names: {_layers._short(names)}",
            layer,
        )
    return layer


def _final_layer(model: Any, prefix: str = "") -> tuple[str, Any] | None:
    """The (qualified name, layer) producing the model's single output, nested-aware."""
    import keras

    outputs = model.outputs
    if not outputs or len(outputs) != 1:
        return None
    history = getattr(outputs[0], "_keras_history", None)
    op = history[0] if history else None
    if op is None and isinstance(model, keras.Sequential) and model.layers:
        op = model.layers[-1]
    if op is None or getattr(op, "name", None) is None:
        return None
    name = f"{prefix}{op.name}"
    if isinstance(op, keras.Model) and _layers._is_graph_model(op):
        return _final_layer(op, prefix=f"{name}/") or (name, op)
    return name, op


def _activation_name(fn: Any) -> str | None:
    import keras

    if fn is None:
        return None
    try:
        name = keras.activations.serialize(fn)
    except (ValueError, TypeError):
        return getattr(fn, "__name__", None)
    if isinstance(name, dict):
        name = name.get("config", {}).get("name", name.get("class_name"))
    return name if isinstance(name, str) else None


def _logit_substitute(layer: Any) -> tuple[Callable[..., Any] | None, str]:
    """A callable computing ``layer`` without its final softmax/sigmoid, and the head kind.

    The callable uses the layer's own variables (shared, not copied), so later training
    of the caller's model is seen by cached graphs.
    """
    import keras

    if isinstance(layer, keras.layers.Softmax):
        return (lambda x, *a, **k: x), "softmax"
    if isinstance(layer, keras.layers.Activation):
        act = _activation_name(layer.activation)
        if act in ("softmax", "sigmoid"):
            return (lambda x, *a, **k: x), act
        return None, "other"
    if isinstance(layer, keras.layers.Dense):
        act = _activation_name(layer.activation)
        if act in ("softmax", "sigmoid"):
            return _PreActivation(layer), act
        return None, "linear" if act == "linear" else "other"
    act = _activation_name(getattr(layer, "activation", None))
    return None, act if act in ("softmax", "sigmoid") else "other"


def _pre_activation_class() -> type:
    import keras

    class PreActivationDense(keras.layers.Layer):
        """``dense`` without its activation, reading ``dense``'s own variables."""

        def __init__(self, dense: Any) -> None:
            super().__init__(name=f"{dense.name}_logits", dtype=dense.dtype_policy)
            self._dense_ref = [dense]  # a list keeps Keras from tracking it as a sub-layer

        def call(self, inputs: Any) -> Any:
            dense = self._dense_ref[0]
            x = keras.ops.matmul(inputs, dense.kernel)
            if dense.bias is not None:
                x = keras.ops.add(x, dense.bias)
            return x

        def compute_output_shape(self, input_shape: Any) -> Any:
            return (*tuple(input_shape)[:-1], self._dense_ref[0].units)

    return PreActivationDense


_PRE_ACTIVATION: type | None = None


def _PreActivation(dense: Any) -> Any:
    global _PRE_ACTIVATION
    if _PRE_ACTIVATION is None:
        _PRE_ACTIVATION = _pre_activation_class()
    return _PRE_ACTIVATION(dense)


# ----------------------------------------------------------------------------- core


class _Explainer:
    """The tapped graph and compiled gradient step for one (model, layer)."""

    def __init__(self, model: Any, layer: str) -> None:
        import tensorflow as tf

        final = _final_layer(model)
        substitute, head = _logit_substitute(final[1]) if final else (None, "other")
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
    """Combine activations and gradients ``(N, h, w, C)`` into raw maps ``(N, h, w)``."""
    acts = acts.astype(np.float64)
    grads = grads.astype(np.float64)
    if method == "gradcam":
        weights = grads.mean(axis=(1, 2), keepdims=True)
        cam = (weights * acts).sum(axis=-1)
    elif method == "gradcam++":
        g2 = grads**2
        g3 = g2 * grads
        sum_a = acts.sum(axis=(1, 2), keepdims=True)
        denom = 2.0 * g2 + sum_a * g3
        alpha = np.where(grads != 0.0, g2 / np.where(denom != 0.0, denom, _EPS), 0.0)
        weights = (alpha * np.maximum(grads, 0.0)).sum(axis=(1, 2), keepdims=True)
        cam = (weights * acts).sum(axis=-1)
    elif method == "layercam":
        cam = (np.maximum(grads, 0.0) * acts).sum(axis=-1)
    else:  # hirescam
        cam = (grads * acts).sum(axis=-1)
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


def _as_batch(model: Any, images: Any, argument: str = "images") -> tuple[np.ndarray, bool]:
    """Return ``(batch, single)`` with the batch shaped like the model's input."""
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
        Default: the last layer with a 4-D output (see :func:`candidate_layers`).
    method : str, default "gradcam"
        One of :data:`METHODS`: ``"gradcam"``, ``"gradcam++"``, ``"layercam"``,
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
    x, _single = _as_batch(model, images)
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


def _display(image: Any) -> np.ndarray:
    """An image as uint8 RGB for display: [0, 255] or [0, 1] kept, anything else min-max scaled."""
    x = np.asarray(image)
    if x.ndim == 3 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.dtype == np.uint8:
        out = x
    else:
        x = np.nan_to_num(x.astype(np.float32))
        lo, hi = float(x.min()) if x.size else 0.0, float(x.max()) if x.size else 0.0
        if lo >= 0.0 and hi <= 1.0 and not np.issubdtype(np.asarray(image).dtype, np.integer):
            x = x * 255.0
        elif lo < 0.0 or hi > 255.0:
            x = (x - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(x)
        out = np.clip(np.round(x), 0, 255).astype(np.uint8)
    if out.ndim == 2:
        out = np.repeat(out[..., None], 3, axis=-1)
    if out.ndim != 3 or out.shape[-1] not in (3, 4):
        raise V.fail("image", "an image of shape (H, W), (H, W, 1) or (H, W, 3)", f"array of shape {np.shape(image)}")
    return out[..., :3]


def overlay(image: Any, heatmap: Any, *, alpha: float = 0.4, colormap: str = "jet") -> np.ndarray:
    """Paint a heatmap over an image.

    Parameters
    ----------
    image : array-like
        ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)``; uint8, or floats in ``[0, 255]``
        or ``[0, 1]`` (other ranges are min-max scaled for display).
    heatmap : array-like
        ``(h, w)`` values in ``[0, 1]`` (as returned by :func:`grad_cam`); resized
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
    base = _display(image).astype(np.float32)
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
    out = (1.0 - alpha) * base + alpha * colour
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


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


def _labels(y: np.ndarray, n_out: int) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        return y.argmax(axis=1).astype(np.int64)
    return np.rint(y.reshape(len(y))).astype(np.int64)


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
) -> Any:
    """A gallery of the ``k`` most confidently wrong predictions, with their heatmaps.

    Each tile shows an image with the Grad-CAM overlay for the *predicted* (wrong)
    class, its true and predicted labels and the confidence.

    Parameters
    ----------
    model : keras.Model
        A classifier (softmax, sigmoid or logits head; the confidence of a logits
        head is its softmax, or sigmoid for one unit).
    data : tuple or tf.data.Dataset
        ``(images, labels)`` arrays, or a dataset of ``(images, labels)`` batches.
        Labels are integers or one-hot rows. Read once, in batches.
    k : int, default 9
        Number of errors shown.
    class_names : sequence or mapping of str, optional
        Names for the labels.
    layer, method
        As in :func:`grad_cam`.
    alpha : float, default 0.4
        Heatmap opacity.
    ncols : int, optional
        Columns of the gallery; default ``ceil(sqrt(k))``.

    Returns
    -------
    matplotlib.figure.Figure
        The gallery (a short message if the model made no error). The figure's
        ``errors`` attribute lists ``(index, true, predicted, confidence)`` per tile,
        the index counting images in ``data`` order.

    Examples
    --------
    >>> fig = explain_errors(model, (x_test, y_test), k=9,
    ...                      class_names=visionkit.data.CIFAR10_CLASSES)  # doctest: +SKIP
    >>> fig.savefig("errors.png")  # doctest: +SKIP
    """
    import tensorflow as tf
    from matplotlib.figure import Figure

    k = V.integer("k", k, minimum=1)
    ncols = V.integer("ncols", ncols, minimum=1, allow_none=True)
    V.one_of("method", method, METHODS)
    layer = _resolve_layer(model, layer)
    logits = _explainer(model, layer).head == "linear"
    # keep the k most confident errors while streaming through the data
    best: list[tuple[float, int, np.ndarray, int, int]] = []
    seen = 0
    for xb, yb in _iter_data(data):
        xb_model, _ = _as_batch(model, xb) if xb.ndim else (xb, False)
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
        true = _labels(yb, probs.shape[1])
        for i in np.flatnonzero(pred != true):
            best.append((float(conf[i]), seen + int(i), xb_model[i], int(true[i]), int(pred[i])))
        best.sort(key=lambda t: -t[0])
        del best[k:]
        seen += len(xb_model)

    def name(c: int) -> str:
        if class_names is None:
            return str(c)
        try:
            return str(class_names[c])
        except (IndexError, KeyError):
            return str(c)

    if not best:
        fig = Figure(figsize=(4, 1.5))
        fig.text(0.5, 0.5, f"No errors on {seen} images.", ha="center", va="center")
        fig.errors = []
        return fig
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
        ax.set_title(f"true: {name(true)}\npred: {name(pred)} ({conf:.0%})", fontsize=9)
    fig.suptitle(f"{n} most confident errors of {seen} images")
    fig.errors = [(b[1], b[3], b[4], b[0]) for b in best]
    return fig
