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
softmax/sigmoid. Compiled ``tf.function`` steps compute, for a whole batch, ``A`` and
``dscore/dA`` (the gradient methods), or the scores of masked inputs and ablated
channels (the perturbation methods, in chunks of bounded size); each method in
[`METHODS`][visionkit.gradcam.METHODS] is one small weighting function:

| method | weighting |
| --- | --- |
| ``"gradcam"`` | channel weights = spatial mean of the gradients (Selvaraju et al., 2017) |
| ``"gradcam++"`` | channel weights = positive gradients weighted by second/third-order terms (Chattopadhay et al., 2018) |
| ``"xgradcam"`` | channel weights = activation-weighted mean of the gradients (Fu et al., 2020) |
| ``"layercam"`` | element-wise ``relu(gradient) * A`` (Jiang et al., 2021) |
| ``"hirescam"`` | element-wise ``gradient * A`` (Draelos & Carin, 2020) |
| ``"gradcam_elementwise"`` | element-wise ``relu(gradient * A)`` |
| ``"eigencam"`` | first principal component of ``A`` (Muhammad & Yeasin, 2020; class-agnostic) |
| ``"eigengradcam"`` | first principal component of ``gradient * A`` |
| ``"scorecam"`` | channel weights = class probability of the image masked by each channel (Wang et al., 2020) |
| ``"ablationcam"`` | channel weights = relative drop of the logit when the channel is zeroed (Desai & Ramaswamy, 2020) |
| ``"fullgrad"`` | input-gradient and bias-gradient maps of every conv/BN layer (Srinivas & Fleuret, 2019) |

Gradient attributions on the input pixels, one map per image:
[`saliency`][visionkit.gradcam.saliency], [`smoothgrad`][visionkit.gradcam.smoothgrad],
[`integrated_gradients`][visionkit.gradcam.integrated_gradients] and
[`guided_grad_cam`][visionkit.gradcam.guided_grad_cam].

The caller's model is never modified.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _validate as V
from ._attribution import guided_grad_cam, integrated_gradients, saliency, smoothgrad
from ._cam_methods import METHODS
from ._images import display, literal, to_uint8

# TensorFlow, Keras and the modules that import them (_layers, _heads, _labels) are
# imported inside the functions, so that reading METHODS (the command line's
# choices) stays cheap.

__all__ = [
    "AUG_SCALES",
    "METHODS",
    "ErrorGallery",
    "candidate_layers",
    "explain_errors",
    "grad_cam",
    "guided_grad_cam",
    "integrated_gradients",
    "overlay",
    "saliency",
    "smoothgrad",
]

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


def _explainer(model: Any, layer: str) -> Any:
    """The cached compiled core for ``model`` at ``layer`` (see ``visionkit._cam_core``)."""
    from . import _cam_core

    return _cam_core.explainer(model, layer)


#: Scales of the zoomed-out copies ``aug_smooth`` adds (with their horizontal flips).
AUG_SCALES: tuple[float, ...] = (1.0, 0.9, 0.8)


def grad_cam(
    model: Any,
    images: Any,
    *,
    class_index: int | Sequence[int] | None = None,
    layer: str | None = None,
    method: str = "gradcam",
    upsample: bool = True,
    batch_size: int = 32,
    aug_smooth: bool = False,
    eigen_smooth: bool = False,
    scorecam_channels: int | None = None,
    perturbation_batch_size: int = 128,
) -> np.ndarray:
    """Class-activation heatmaps: which parts of each image drove the class score.

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
        ``"fullgrad"`` uses every biased layer and the input; ``layer`` then only sets
        the resolution of ``upsample=False``.
    method : str, default "gradcam"
        One of [`METHODS`][visionkit.gradcam.METHODS]: ``"gradcam"``, ``"gradcam++"``,
        ``"xgradcam"``, ``"layercam"``, ``"hirescam"``, ``"gradcam_elementwise"``,
        ``"eigencam"``, ``"eigengradcam"``, ``"scorecam"``, ``"ablationcam"``,
        ``"fullgrad"`` (see ``docs/explanations-methods.md``).
    upsample : bool, default True
        Resize the maps (bilinear) to the images' height and width.
    batch_size : int, default 32
        Images per compiled step.
    aug_smooth : bool, default False
        Average the maps of the image, its horizontal flip and zoomed-out copies
        (scales [`AUG_SCALES`][visionkit.gradcam.AUG_SCALES], centred on the image's
        mean colour), each mapped back to the original frame; the class is the one of
        the original image. Six times the work.
    eigen_smooth : bool, default False
        Reduce the weighted activations by their first principal component instead
        of their sum over channels (less noisy maps). Not for ``"fullgrad"``.
    scorecam_channels : int, optional
        ``"scorecam"`` only: keep the ``N`` channels of largest spatial standard
        deviation per image (Faster Score-CAM); default all channels.
    perturbation_batch_size : int, default 128
        ``"scorecam"`` and ``"ablationcam"``: forward passes (one per image and
        channel) per compiled step; bounds the memory they take.

    Returns
    -------
    numpy.ndarray
        float32 ``(N, H, W)`` heatmaps in ``[0, 1]`` (``(N, h, w)`` at the layer's
        resolution with ``upsample=False``); ``N = 1`` for a single image. Each map
        is scaled by its own maximum (after upsampling), so its peak is 1. No images
        give ``(0, H, W)`` (``(0, h, w)``).

    Warns
    -----
    UserWarning
        When some maps have no positive value (nothing supports the class); those
        maps are all zeros, never NaN.

    Raises
    ------
    InvalidArgumentError
        An unknown layer or one without a 4-D output (the message lists the valid
        names), a bad method, option or class index; images the model cannot take
        (channels or size other than ``model.inputs[0].shape``) or with NaN/infinite
        values (the message names them); a model with several outputs; ``"fullgrad"`` on
        a model whose biased layers it cannot read (the message names the layer).

    Notes
    -----
    The gradient is taken on the class score *before* the final softmax/sigmoid when
    the model's last layer is a ``Dense`` with that activation or a separate
    ``Activation``/``Softmax`` layer: a new graph sharing the model's weights reads
    the logits, the model itself is untouched. The graph and its compiled steps are
    cached per model and layer. Score-CAM weighs channels by the class probability
    (softmax, or sigmoid for one unit) of the masked image; Ablation-CAM by the drop
    of the logit.

    Examples
    --------
    >>> import numpy as np, keras
    >>> from visionkit.gradcam import grad_cam
    >>> model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 3),
    ...     keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3, activation="softmax")])
    >>> x = np.random.rand(2, 32, 32, 3).astype("float32")
    >>> maps = grad_cam(model, x)
    >>> maps.shape, maps.dtype
    ((2, 32, 32), dtype('float32'))
    >>> grad_cam(model, x, method="scorecam", scorecam_channels=2).shape
    (2, 32, 32)
    """
    from ._cam_methods import TABLE, class_array, normalise

    V.one_of("method", method, METHODS)
    batch_size = V.integer("batch_size", batch_size, minimum=1)
    perturbation_batch_size = V.integer("perturbation_batch_size", perturbation_batch_size, minimum=1)
    scorecam_channels = V.integer("scorecam_channels", scorecam_channels, minimum=1, allow_none=True)
    for name, value in (("upsample", upsample), ("aug_smooth", aug_smooth), ("eigen_smooth", eigen_smooth)):
        if not isinstance(value, bool):
            raise V.fail(name, "True or False", value)
    if eigen_smooth and method == "fullgrad":
        raise V.fail("eigen_smooth", "False for method='fullgrad' (its terms come from several layers)", eigen_smooth)
    if scorecam_channels is not None and method != "scorecam":
        raise V.fail("scorecam_channels", "None unless method='scorecam'", scorecam_channels)
    x, _single = V.model_images(model, images)
    layer = _resolve_layer(model, layer)
    classes = class_array(class_index, len(x))
    explainer = _explainer(model, layer)
    from ._cam_core import check_classes, resize_maps

    check_classes(classes, explainer.n_units, explainer.binary, class_index)
    size = tuple(x.shape[1:3]) if upsample else _layer_size(explainer, x)
    if not len(x):  # no images: no maps, of the size they would have
        return np.zeros((0, *size), np.float32)
    options = {"layer": layer, "method": TABLE[method], "name": method, "batch_size": batch_size,
               "eigen": eigen_smooth, "channels": scorecam_channels, "chunk": perturbation_batch_size}
    if aug_smooth:
        maps = _augmented(model, x, classes, options)
    else:
        maps = _raw(model, x, classes, **options)
    maps, n_zero = normalise(resize_maps(maps, size))
    if n_zero:
        warnings.warn(
            f"{n_zero} of {len(maps)} {method} maps have no positive value for layer '{layer}' "
            "(nothing in the image supports the class there); they are returned as zeros.",
            UserWarning,
            stacklevel=2,
        )
    return maps


def _layer_size(explainer: Any, x: np.ndarray) -> tuple[int, int]:
    """The (height, width) of the explainer's layer for images like ``x``.

    Read from the graph when it is fixed, else (a fully convolutional model) from one
    forward pass of a blank image of ``x``'s size.
    """
    import tensorflow as tf

    static = tuple(explainer.graph.output[explainer.layer].shape[1:3])
    if None not in static:
        return static
    blank = tf.zeros((1, *x.shape[1:]), explainer.dtype)
    acts = explainer.forward(blank, tf.constant([-1], tf.int32))[0]
    return tuple(int(d) for d in acts.shape[1:3])


def _batches(x: np.ndarray, classes: np.ndarray, batch_size: int, dtype: Any) -> Iterable[tuple[Any, Any]]:
    import tensorflow as tf

    for start in range(0, len(x), batch_size):
        yield (tf.convert_to_tensor(x[start : start + batch_size], dtype=dtype),
               tf.convert_to_tensor(classes[start : start + batch_size], tf.int32))


def _raw(model: Any, x: np.ndarray, classes: np.ndarray, *, layer: str, method: Any, name: str, batch_size: int,
         eigen: bool, channels: int | None, chunk: int) -> np.ndarray:
    """Raw maps ``(N, h, w)`` >= 0 at the layer's resolution (the input's for fullgrad)."""
    from . import _cam_perturb
    from ._cam_methods import reduce

    if method.kind == "fullgrad":
        from ._cam_fullgrad import fullgrad_maps

        return fullgrad_maps(model, np.asarray(x, np.float32), classes, batch_size=batch_size)
    ex = _explainer(model, layer)
    out = []
    for xb, cb in _batches(x, classes, batch_size, ex.dtype):
        if method.kind == "gradient":
            acts, grads, _chosen = ex.gradients(xb, cb)
            acts, second = acts.numpy().astype(np.float64), grads.numpy().astype(np.float64)
        else:
            acts, scores, _probs, chosen = ex.forward(xb, cb)
            acts, xn, chosen = acts.numpy().astype(np.float64), xb.numpy(), chosen.numpy()
            if name == "scorecam":
                keep = _cam_perturb.top_channels(acts, channels)
                second = _cam_perturb.score_weights(ex, xn, acts, chosen, keep=keep, chunk=chunk)
            else:
                second = _cam_perturb.ablation_weights(ex, xn, scores.numpy(), chosen, chunk=chunk)
        weighted = method.weigh(acts, second)
        out.append(np.maximum(reduce(weighted, eigen=eigen or method.eigen), 0.0))
    if not out:
        return np.zeros((0, 0, 0), np.float32)
    return np.concatenate(out, axis=0)


def _augmented(model: Any, x: np.ndarray, classes: np.ndarray, options: dict[str, Any]) -> np.ndarray:
    """``aug_smooth``: the mean of the (normalised) maps of flipped and zoomed-out copies."""
    import tensorflow as tf

    from ._cam_core import resize_maps
    from ._cam_methods import normalise

    ex = _explainer(model, options["layer"])
    chosen = np.concatenate([ex.forward(xb, cb)[3].numpy() for xb, cb in _batches(x, classes, options["batch_size"], ex.dtype)])
    n, height, width = x.shape[:3]
    total = np.zeros((n, height, width), np.float64)
    for scale in AUG_SCALES:
        h, w = max(1, round(height * scale)), max(1, round(width * scale))
        top, left = (height - h) // 2, (width - w) // 2
        xf = np.asarray(x, np.float32)
        if (h, w) != (height, width):
            small = tf.image.resize(xf, (h, w), method="bilinear").numpy()
            xf = np.broadcast_to(xf.mean(axis=(1, 2), keepdims=True), xf.shape).copy()
            xf[:, top : top + h, left : left + w] = small
        for flip in (False, True):
            xa = xf[:, :, ::-1] if flip else xf
            maps = resize_maps(_raw(model, xa.astype(x.dtype), chosen, **options), (height, width))
            maps = maps[:, :, ::-1] if flip else maps
            maps = maps[:, top : top + h, left : left + w]
            total += normalise(resize_maps(np.ascontiguousarray(maps), (height, width)))[0]
    return total / (2 * len(AUG_SCALES))


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
    V.one_output(model)
    layer = _resolve_layer(model, layer)
    if class_names is None:
        class_names = _labels.class_names(model)
    logits = _explainer(model, layer).head == "linear"
    # keep the k most confident errors while streaming through the data
    best: list[tuple[float, int, np.ndarray, int, int]] = []
    seen = 0
    for xb, yb in _iter_data(data):
        xb_model, _ = V.model_images(model, xb, argument="data", first=seen) if xb.ndim else (xb, False)
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
        ax.set_title(literal(f"true: {_class_name(class_names, true)}\npred: {_class_name(class_names, pred)} ({conf:.0%})"),
                     fontsize=9)
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
