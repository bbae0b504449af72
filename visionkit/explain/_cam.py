"""Class-activation maps: the one run of every CAM method (private; public through
[`visionkit.gradcam`][visionkit.gradcam]).

``grad_cam`` checks its arguments, then runs the images through the probe of the
model and layer (``_probe.probe``) in batches; for each batch the method's function
in ``_cams.TABLE`` asks a ``Batch`` for what it needs (gradients, a forward pass,
perturbation weights or FullGrad's terms) and returns weighted activations, reduced
here to maps. TensorFlow and Keras are imported inside the functions, so that reading
``METHODS`` (the command line's choices) stays cheap.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from .. import _validate as V
from .._images import model_images
from ._cams import METHODS, TABLE, normalise, reduce
from ._common import class_array, resize_maps

__all__ = ["AUG_SCALES", "Batch", "candidate_layers", "grad_cam", "preset_layer", "resolve_layer"]

# ----------------------------------------------------------------------------- layers


def _is_4d(layer: Any) -> bool:
    import keras

    from .. import _layers

    return (
        not isinstance(layer, (keras.Model, keras.layers.InputLayer))
        and _layers.output_rank(layer) == 4
    )


def candidate_layers(model: Any) -> list[str]:
    """Names of the layers Grad-CAM can use: every layer with a 4-D output.

    Nested layers are named ``"outer/inner"``; the list is in graph order, so its last
    element is the default layer of [`grad_cam`][visionkit.gradcam.grad_cam] (unless the model is, or
    holds, a backbone of [`visionkit.backbones`][visionkit.backbones], whose ``cam_layer`` is the default).

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
    from .. import _layers

    return _layers.candidates(model, _is_4d)


def preset_layer(model: Any, names: list[str]) -> str | None:
    """The Grad-CAM layer of the presets table for ``model`` or its last nested known backbone.

    ``model`` itself a known backbone gives its ``cam_layer``; a model holding one (a
    transfer model: backbone + head) gives ``"backbone/cam_layer"``. None when no
    known backbone is found or its layer is not among ``names``.
    """
    from .._backbones import find_preset

    record = find_preset(model)
    if record is not None:
        return record.cam_layer if record.cam_layer in names else None
    found = None
    for sub in getattr(model, "layers", []):
        record = find_preset(sub) if hasattr(sub, "layers") else None
        if record is not None and f"{sub.name}/{record.cam_layer}" in names:
            found = f"{sub.name}/{record.cam_layer}"
    return found


def resolve_layer(model: Any, layer: str | None) -> str:
    """``layer``, checked against the model's 4-D layers; None gives the backbone's preset or the last of them."""
    names = candidate_layers(model)
    if layer is None:
        if not names:
            raise V.fail(
                "layer",
                f"given: model '{model.name}' has no layer with a 4-D output (batch, height, width, channels)",
                layer,
            )
        return preset_layer(model, names) or names[-1]
    if not isinstance(layer, str) or layer not in names:
        from .. import _layers

        raise V.fail(
            "layer",
            f"the name of a layer of model '{model.name}' with a 4-D output; valid names: {_layers.short_list(names)}",
            layer,
        )
    return layer


# ----------------------------------------------------------------------------- core


def _probe(model: Any, layer: str) -> Any:
    """The cached compiled core for ``model`` at ``layer`` (see ``_probe.probe``)."""
    from ._probe import probe

    return probe(model, layer)


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
        Default: for a known backbone (or a model holding one, such as a transfer
        model), its ``cam_layer`` in [`visionkit.backbones`][visionkit.backbones] (``"vgg16/block5_conv3"``);
        otherwise the last layer with a 4-D output (see [`candidate_layers`][visionkit.gradcam.candidate_layers]).
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
    V.one_of("method", method, METHODS)
    batch_size = V.integer("batch_size", batch_size, minimum=1)
    perturbation_batch_size = V.integer("perturbation_batch_size", perturbation_batch_size, minimum=1)
    scorecam_channels = V.integer("scorecam_channels", scorecam_channels, minimum=1, allow_none=True)
    for name, value in (("upsample", upsample), ("aug_smooth", aug_smooth), ("eigen_smooth", eigen_smooth)):
        if not isinstance(value, bool):
            raise V.fail(name, "True or False", value)
    entry = TABLE[method]
    if eigen_smooth and not entry.eigen_smooth:
        raise V.fail("eigen_smooth", f"False for method='{method}' (its terms come from several layers)", eigen_smooth)
    if scorecam_channels is not None and "scorecam_channels" not in entry.options:
        takers = " or ".join(f"method='{n}'" for n, m in TABLE.items() if "scorecam_channels" in m.options)
        raise V.fail("scorecam_channels", f"None unless {takers}", scorecam_channels)
    x, _single = model_images(model, images)
    layer = resolve_layer(model, layer)
    classes = class_array(class_index, len(x))
    probe = _probe(model, layer)
    from ._probe import check_classes

    check_classes(classes, probe.n_units, probe.binary, class_index)
    size = tuple(x.shape[1:3]) if upsample else _layer_size(probe, x)
    if not len(x):  # no images: no maps, of the size they would have
        return np.zeros((0, *size), np.float32)
    options = {"layer": layer, "method": entry, "batch_size": batch_size,
               "eigen": eigen_smooth, "channels": scorecam_channels, "chunk": perturbation_batch_size}
    if aug_smooth:
        maps = _augmented(model, x, classes, options)
    else:
        maps = _raw(model, x, classes, **options)
    maps, n_zero = normalise(_resized(maps, size))
    if n_zero:
        warnings.warn(
            f"{n_zero} of {len(maps)} {method} maps have no positive value for layer '{layer}' "
            "(nothing in the image supports the class there); they are returned as zeros.",
            UserWarning,
            stacklevel=2,
        )
    return maps


def _resized(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Maps resized to ``size`` (bilinear), negative values clipped to 0."""
    out = resize_maps(maps, size)
    return out if out is maps else np.maximum(out, 0.0)


def _layer_size(probe: Any, x: np.ndarray) -> tuple[int, int]:
    """The (height, width) of the probe's layer for images like ``x``.

    Read from the graph when it is fixed, else (a fully convolutional model) from one
    forward pass of a blank image of ``x``'s size.
    """
    import tensorflow as tf

    static = tuple(probe.graph.output[probe.layer].shape[1:3])
    if None not in static:
        return static
    blank = tf.zeros((1, *x.shape[1:]), probe.dtype)
    acts = probe.forward(blank, tf.constant([-1], tf.int32))[0]
    return tuple(int(d) for d in acts.shape[1:3])


def _batches(x: np.ndarray, classes: np.ndarray, batch_size: int, dtype: Any) -> Iterable[tuple[Any, Any]]:
    import tensorflow as tf

    for start in range(0, len(x), batch_size):
        yield (tf.convert_to_tensor(x[start : start + batch_size], dtype=dtype),
               tf.convert_to_tensor(classes[start : start + batch_size], tf.int32))


class Batch:
    """One batch of images and classes, and what a CAM method may ask about it.

    Each request runs the compiled step it needs once (results are kept for the
    batch): ``gradients()`` gives float64 ``(A, dS/dA)``, ``forward()`` float64 ``A``
    and the class scores; ``score_weights(A)`` and ``ablation_weights(scores)``
    per-channel weights ``(N, C)`` of the perturbation methods; ``fullgrad()`` the raw
    FullGrad maps ``(N, H, W)`` at the input resolution.
    """

    def __init__(self, model: Any, probe: Any, xb: Any, cb: Any, *, batch_size: int, channels: int | None,
                 chunk: int) -> None:
        self.model, self.probe, self.xb, self.cb = model, probe, xb, cb
        self.batch_size, self.channels, self.chunk = batch_size, channels, chunk
        self._done: dict[str, Any] = {}

    def _once(self, key: str, compute: Any) -> Any:
        if key not in self._done:
            self._done[key] = compute()
        return self._done[key]

    def gradients(self) -> tuple[np.ndarray, np.ndarray]:
        def run() -> tuple[np.ndarray, np.ndarray]:
            acts, grads, _chosen = self.probe.gradients(self.xb, self.cb)
            return acts.numpy().astype(np.float64), grads.numpy().astype(np.float64)

        return self._once("gradients", run)

    def forward(self) -> tuple[np.ndarray, np.ndarray]:
        def run() -> tuple[np.ndarray, np.ndarray]:
            acts, scores, _probs, chosen = self.probe.forward(self.xb, self.cb)
            self._done["chosen"] = chosen.numpy()
            return acts.numpy().astype(np.float64), scores.numpy()

        return self._once("forward", run)

    def score_weights(self, acts: np.ndarray) -> np.ndarray:
        from ._perturb import score_weights, top_channels

        self.forward()
        keep = top_channels(acts, self.channels)
        return score_weights(self.probe, self.xb.numpy(), acts, self._done["chosen"], keep=keep, chunk=self.chunk)

    def ablation_weights(self, scores: np.ndarray) -> np.ndarray:
        from ._perturb import ablation_weights

        self.forward()
        return ablation_weights(self.probe, self.xb.numpy(), scores, self._done["chosen"], chunk=self.chunk)

    def fullgrad(self) -> np.ndarray:
        from ._fullgrad import fullgrad_maps

        x = np.asarray(self.xb.numpy(), np.float32)
        return fullgrad_maps(self.model, x, self.cb.numpy(), batch_size=self.batch_size)


def _raw(model: Any, x: np.ndarray, classes: np.ndarray, *, layer: str, method: Any, batch_size: int,
         eigen: bool, channels: int | None, chunk: int) -> np.ndarray:
    """Raw maps ``(N, h, w)`` >= 0 at the layer's resolution (the input's for fullgrad)."""
    probe = _probe(model, layer)
    out = []
    for xb, cb in _batches(x, classes, batch_size, probe.dtype):
        batch = Batch(model, probe, xb, cb, batch_size=batch_size, channels=channels, chunk=chunk)
        weighted = method.weigh(batch)
        out.append(np.maximum(reduce(weighted, eigen=eigen or method.eigen), 0.0))
    if not out:
        return np.zeros((0, 0, 0), np.float32)
    return np.concatenate(out, axis=0)


def _augmented(model: Any, x: np.ndarray, classes: np.ndarray, options: dict[str, Any]) -> np.ndarray:
    """``aug_smooth``: the mean of the (normalised) maps of flipped and zoomed-out copies."""
    import tensorflow as tf

    probe = _probe(model, options["layer"])
    chosen = np.concatenate([probe.forward(xb, cb)[3].numpy()
                             for xb, cb in _batches(x, classes, options["batch_size"], probe.dtype)])
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
            maps = _resized(_raw(model, xa.astype(x.dtype), chosen, **options), (height, width))
            maps = maps[:, :, ::-1] if flip else maps
            maps = maps[:, top : top + h, left : left + w]
            total += normalise(_resized(np.ascontiguousarray(maps), (height, width)))[0]
    return total / (2 * len(AUG_SCALES))
