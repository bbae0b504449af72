"""DeepDream: amplify what a network's layers see, at any image size.

[`deep_dream`][visionkit.dream.deep_dream] runs gradient *ascent* on the pixels of an image so that the
activations of chosen layers grow. It works from the smallest scale up (octaves),
re-injects between octaves the detail lost by downscaling, and computes the gradient
tile by tile (``tile_size``) on a randomly rolled copy of the image, so memory depends
on the tile size, not on the image size, and tile seams do not show.

Building blocks: [`dream_model`][visionkit.dream.dream_model] (a model returning the chosen layers' outputs),
[`dream_loss`][visionkit.dream.dream_loss] (the weighted activation energy), the layer presets
[`INCEPTION_V3_LAYERS`][visionkit.dream.INCEPTION_V3_LAYERS], [`VGG16_LAYERS`][visionkit.dream.VGG16_LAYERS], [`VGG19_LAYERS`][visionkit.dream.VGG19_LAYERS] and a zoom
video generator [`dream_frames`][visionkit.dream.dream_frames].

Mixed precision: the default model (InceptionV3, or the ``backbone`` named) is always built in ``float32``, whatever
the global dtype policy, and the loss is computed in ``float32``. A model of your own
whose compute dtype is not ``float32`` (for example built under ``mixed_float16``) is
refused with [`InvalidArgumentError`][visionkit.errors.InvalidArgumentError]: float16 input gradients
underflow and the dream silently fades.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _validate as V
from ._backbones import PRESETS, find_preset, preset
from .errors import InvalidArgumentError

__all__ = [
    "INCEPTION_V3_LAYERS",
    "LAYER_PRESETS",
    "VGG16_LAYERS",
    "VGG19_LAYERS",
    "deep_dream",
    "dream_frames",
    "dream_loss",
    "dream_model",
]

INCEPTION_V3_LAYERS: dict[str, float] = PRESETS["inception_v3"].dream_weights
"""Default layers of [`deep_dream`][visionkit.dream.deep_dream] (InceptionV3 base), name -> weight."""

VGG16_LAYERS: dict[str, float] = PRESETS["vgg16"].dream_weights
"""Layers for a VGG16 base (``keras.applications.VGG16``), name -> weight."""

VGG19_LAYERS: dict[str, float] = PRESETS["vgg19"].dream_weights
"""Layers for a VGG19 base (``keras.applications.VGG19``), name -> weight."""

LAYER_PRESETS: dict[str, dict[str, float]] = {name: b.dream_weights for name, b in PRESETS.items()}
"""Dream layers by backbone name, from [`visionkit.backbones`][visionkit.backbones] (used when ``layers=None``)."""

_MIN_TILE = 32


# ----------------------------------------------------------------------- building blocks


def _layer_weights(layers: Any, *, argument: str = "layers") -> dict[str, float]:
    """Normalise ``layers`` (str, list of str, or dict name -> weight) to a dict."""
    if isinstance(layers, str):
        layers = [layers]
    if isinstance(layers, Mapping):
        out: dict[str, float] = {}
        for name, weight in layers.items():
            if not isinstance(name, str) or not name:
                raise V.fail(argument, "a dict of layer name -> weight, or a list of layer names", layers)
            out[name] = V.number(f"{argument}[{name!r}]", weight)
    elif isinstance(layers, Sequence) and not isinstance(layers, (bytes, bytearray)):
        if not all(isinstance(n, str) and n for n in layers):
            raise V.fail(argument, "a dict of layer name -> weight, or a list of layer names", layers)
        out = dict.fromkeys(layers, 1.0)
    else:
        raise V.fail(argument, "a dict of layer name -> weight, a list of layer names or a name", layers)
    if not out:
        raise V.fail(argument, "at least one layer", layers)
    return out


def _check_float32(model: Any) -> None:
    import keras

    from ._layers import iter_layers

    def compute_dtype(layer: Any) -> str | None:
        policy = getattr(layer, "dtype_policy", None)
        return getattr(policy, "compute_dtype", None)

    for name, layer in iter_layers(model):
        if isinstance(layer, (keras.layers.InputLayer, keras.Model)):
            continue  # their policies do not change what their layers compute
        dtype = compute_dtype(layer)
        if dtype is not None and dtype != "float32":
            raise InvalidArgumentError(
                f"DeepDream needs a float32 model, but layer '{name}' of model '{model.name}' "
                f"computes in {dtype} (dtype policy {layer.dtype_policy.name!r}): float16 input "
                "gradients underflow and the dream fades. Build the model under the 'float32' "
                "dtype policy (keras.config.set_dtype_policy('float32') before building it) or "
                "use the default model (model=None), which is always float32. "
                f"Received: model={model.name!r}"
            )


def dream_model(model: Any, layers: Any) -> Any:
    """A new model returning the outputs of the dream layers of ``model``.

    Parameters
    ----------
    model : keras.Model
        A functional or Sequential float32 model, possibly with nested models. It is
        not modified; the new model shares its weights.
    layers : dict, list of str or str
        Layer names (``"outer/inner"`` for a layer of a nested model), as a dict
        name -> weight, a list, or a single name. Only the names are used here.

    Returns
    -------
    keras.Model
        Takes the same input as ``model`` and returns a dict ``{layer_name: tensor}``.

    Raises
    ------
    InvalidArgumentError
        An unknown layer name (the message lists the valid names), or a model whose
        compute dtype is not float32 (mixed precision).

    Examples
    --------
    >>> import keras
    >>> from visionkit.dream import dream_model, VGG16_LAYERS
    >>> base = keras.applications.VGG16(weights=None, include_top=False)
    >>> sorted(dream_model(base, VGG16_LAYERS).output) == sorted(VGG16_LAYERS)
    True
    """
    from ._layers import get_layer, tap

    names = list(_layer_weights(layers))
    for n in names:  # the message names `layers`, the argument the caller passed
        get_layer(model, n, argument="layers")
    _check_float32(model)
    return tap(model, names, include_output=False, name=f"{model.name}_dream")


def dream_loss(
    activations: Mapping[str, Any],
    layer_weights: Mapping[str, float] | None = None,
    *,
    guide: Mapping[str, Any] | None = None,
) -> Any:
    """The DeepDream objective: weighted mean squared activation of each layer.

    ``loss = sum_l weight_l * mean(activation_l ** 2)``, computed in float32. With a
    ``guide``, each layer's term is instead the mean projection of its activation
    vectors on the guide direction: ``mean_positions(activation_l . g_l / |g_l|)``.

    Parameters
    ----------
    activations : dict of str -> tensor
        Layer outputs, as returned by a [`dream_model`][visionkit.dream.dream_model] (any shape, any float dtype).
    layer_weights : dict of str -> float, optional
        Weight of each layer; missing layers weigh 1. Default: every layer weighs 1.
    guide : dict of str -> array, optional
        Per layer, a direction in channel space (shape ``(channels,)``), for example the
        mean activation of a guide image (see ``guide`` in [`deep_dream`][visionkit.dream.deep_dream]). Layers
        missing from it use the plain objective.

    Returns
    -------
    tf.Tensor
        A float32 scalar, >= 0 when every weight is >= 0.

    Examples
    --------
    >>> import numpy as np
    >>> from visionkit.dream import dream_loss
    >>> float(dream_loss({"a": np.ones((1, 2, 2, 3), "float32")}, {"a": 2.0}))
    2.0
    """
    import tensorflow as tf

    if not isinstance(activations, Mapping) or not activations:
        raise V.fail("activations", "a non-empty dict of layer name -> tensor", activations)
    weights = dict(layer_weights or {})
    total = tf.constant(0.0, tf.float32)
    for name, act in activations.items():
        act = tf.cast(act, tf.float32)
        if guide is not None and name in guide:
            direction = tf.cast(tf.reshape(guide[name], [-1]), tf.float32)
            direction = direction / (tf.norm(direction) + 1e-12)
            term = tf.reduce_mean(tf.reduce_sum(act * direction, axis=-1))
        else:
            term = tf.reduce_mean(tf.square(act))
        total += float(weights.get(name, 1.0)) * term
    return total


# --------------------------------------------------------------------------- internals


def _default_model(weights: Any, backbone: str = "inception_v3") -> Any:
    """The ``backbone`` base (a preset name), built (or copied) in float32 whatever the global policy."""
    return preset(backbone).build(weights=weights, include_top=False, input_shape=(None, None, 3), float32=True)


class _Dreamer:
    """Holds the compiled per-tile gradient of one feature model (built once)."""

    def __init__(self, features: Any, layer_weights: dict[str, float], preprocess: Callable[[Any], Any] | None):
        import tensorflow as tf

        self.features = features
        self.layer_weights = layer_weights
        self.preprocess = preprocess
        self.guide: dict[str, Any] | None = None

        def tile_gradient(tile: Any) -> tuple[Any, Any]:
            with tf.GradientTape() as tape:
                tape.watch(tile)
                x = tile[tf.newaxis]
                if preprocess is not None:
                    x = preprocess(x)
                loss = dream_loss(features(x, training=False), layer_weights, guide=self.guide)
            return loss, tape.gradient(loss, tile)

        # None spatial dims: one trace serves every tile size and every octave.
        self.tile_gradient = tf.function(
            tile_gradient, input_signature=[tf.TensorSpec([None, None, 3], tf.float32)], reduce_retracing=True
        )

    def set_guide(self, guide: Any, tile_size: int) -> None:
        """Use the mean activation of each layer on ``guide`` as the dream direction.

        Must be called before the first gradient (the directions are traced in).
        """
        import tensorflow as tf

        g = _as_image(guide, "guide")
        h, w = g.shape[:2]
        if max(h, w) > tile_size:
            s = tile_size / max(h, w)
            g = _resize(g, (max(1, round(h * s)), max(1, round(w * s))))
        if not _fits(self.features, g.shape[:2]):
            raise V.fail("guide", f"an image large enough for model '{self.features.name}'",
                         f"image of size {h}x{w} (used at {g.shape[0]}x{g.shape[1]})")
        x = tf.constant(g)[tf.newaxis]
        if self.preprocess is not None:
            x = self.preprocess(x)
        feats = self.features(x, training=False)
        self.guide = {
            name: tf.constant(tf.reduce_mean(tf.cast(a, tf.float32), axis=tuple(range(len(a.shape) - 1))))
            for name, a in feats.items()
        }

    def gradient(self, image: np.ndarray, *, tile_size: int, shift: tuple[int, int] = (0, 0)) -> tuple[float, np.ndarray]:
        """Loss and (un-normalised) gradient of ``image`` (H, W, 3) float32 in [0, 255].

        The image is rolled by ``shift``, split into near-equal tiles no larger than
        ``tile_size``, each tile's gradient computed on its own (its loss weighted by its
        share of the area) and the gradient rolled back. With one tile and no shift this
        is the gradient of the loss of the whole image.
        """
        import tensorflow as tf

        h, w = image.shape[:2]
        dy, dx = shift
        rolled = np.roll(image, (dy, dx), axis=(0, 1)) if (dy or dx) else image
        grad = np.zeros_like(rolled)
        loss = 0.0
        ys = _splits(h, tile_size)
        xs = _splits(w, tile_size)
        for y0, y1 in itertools.pairwise(ys):
            for x0, x1 in itertools.pairwise(xs):
                share = (y1 - y0) * (x1 - x0) / (h * w)
                tile = tf.convert_to_tensor(rolled[y0:y1, x0:x1])
                try:
                    tile_loss, tile_grad = self.tile_gradient(tile)
                except (tf.errors.InvalidArgumentError, ValueError) as exc:
                    raise InvalidArgumentError(
                        f"The model cannot process a {y1 - y0}x{x1 - x0} tile ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0][:200]}). The image at the smallest octave or a tile "
                        "is too small for it: use fewer `octaves`, a smaller `octave_scale`, a larger "
                        f"`tile_size` or a larger image. Received: image of size {h}x{w}"
                    ) from None
                loss += share * float(tile_loss)
                grad[y0:y1, x0:x1] = share * tile_grad.numpy()
        if dy or dx:
            grad = np.roll(grad, (-dy, -dx), axis=(0, 1))
        return loss, grad

    def ascend(self, image: np.ndarray, settings: _DreamSettings, *, rng: np.random.Generator, bar: Any) -> np.ndarray:
        """``settings.steps`` steps of gradient ascent on ``image`` (modified in place and returned)."""
        scale = settings.step_size * 127.5  # step_size is in units of half the pixel range
        jitter = settings.jitter
        for _ in range(settings.steps):
            shift = (int(rng.integers(-jitter, jitter + 1)), int(rng.integers(-jitter, jitter + 1))) if jitter else (0, 0)
            loss, grad = self.gradient(image, tile_size=settings.tile_size, shift=shift)
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4g}")
            if not math.isfinite(loss):
                from .errors import NonFiniteLossError

                raise NonFiniteLossError(f"The dream loss became {loss}.", last_finite=_to_uint8(image))
            if settings.max_loss is not None and loss > settings.max_loss:
                break
            std = float(grad.std(dtype=np.float64))
            if std > 0.0:  # normalise: the step size does not depend on the gradient's scale
                image += (scale / std) * grad
                np.clip(image, 0.0, 255.0, out=image)
        return image


def _splits(n: int, tile: int) -> list[int]:
    """Edges of ceil(n / tile) near-equal pieces of ``range(n)``."""
    count = max(1, math.ceil(n / tile))
    return [round(i * n / count) for i in range(count + 1)]


def _resize(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    import tensorflow as tf

    if tuple(image.shape[:2]) == tuple(shape):
        return image.copy()
    out = tf.image.resize(image, shape, method="bilinear", antialias=True)
    return np.array(out, dtype=np.float32)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _as_image(image: Any, argument: str = "image") -> np.ndarray:
    from ._images import load_image_as

    if hasattr(image, "numpy") and not isinstance(image, np.ndarray):
        image = image.numpy()
    if isinstance(image, np.ndarray) and image.ndim == 4 and image.shape[0] == 1:
        image = image[0]
    return np.array(load_image_as(image, argument), dtype=np.float32, copy=True)


def _make_dreamer(model: Any, weights: Any, layers: Any, preprocess: Any, backbone: str | None = None) -> _Dreamer:
    if model is None:
        record = preset("inception_v3" if backbone is None else backbone)
        if layers is None:
            layers = record.dream_weights
        model = _default_model(weights, record.name)
        if preprocess == "default":
            preprocess = record.preprocess_input()
    else:
        if weights != "imagenet":
            raise V.fail("weights", "left at 'imagenet' when `model` is given (it applies to the default model only)", weights)
        if backbone is not None:
            raise V.fail("backbone", "None when `model` is given (it names the default model only)", backbone)
        if not hasattr(model, "layers") or not hasattr(model, "inputs"):
            raise V.fail("model", "a functional or Sequential keras.Model or None", type(model).__name__)
        if layers is None:
            record = find_preset(model)
            if record is None:
                raise V.fail(
                    "layers",
                    f"given for a model other than the backbones of visionkit.backbones ({sorted(PRESETS)}): "
                    "a dict name -> weight or a list",
                    layers,
                )
            layers = record.dream_weights
        if preprocess == "default":
            preprocess = None
    if preprocess is not None and not callable(preprocess):
        raise V.fail("preprocess", "a callable, None or 'default'", preprocess)
    layer_weights = _layer_weights(layers)
    return _Dreamer(dream_model(model, layer_weights), layer_weights, preprocess)


def _octave_shapes(h: int, w: int, octaves: int, octave_scale: float) -> list[tuple[int, int]]:
    shapes = []
    for i in range(octaves - 1, -1, -1):
        s = octave_scale**i
        shapes.append((max(1, round(h / s)), max(1, round(w / s))))
    return shapes


@dataclass(frozen=True)
class _DreamSettings:
    """The options shared by [`deep_dream`][visionkit.dream.deep_dream] and [`dream_frames`][visionkit.dream.dream_frames], validated.

    ``jitter`` is resolved (the tile size when it was ``None``).
    """

    octaves: int
    octave_scale: float
    steps: int
    step_size: float
    max_loss: float | None
    tile_size: int
    jitter: int
    seed: int | np.random.Generator | None
    progress: bool

    def rng(self) -> np.random.Generator:
        """The generator of the random shifts (``seed`` itself when it is one)."""
        return self.seed if isinstance(self.seed, np.random.Generator) else np.random.default_rng(self.seed)


def _dream_settings(
    *,
    octaves: Any,
    octave_scale: Any,
    steps: Any,
    step_size: Any,
    max_loss: Any,
    tile_size: Any,
    jitter: Any,
    seed: Any,
    progress: Any,
) -> _DreamSettings:
    """Validate the options shared by the dream functions."""
    tile_size = V.integer("tile_size", tile_size, minimum=_MIN_TILE)
    jitter = V.integer("jitter", jitter, minimum=0, allow_none=True)
    if seed is not None and not isinstance(seed, np.random.Generator):
        seed = V.integer("seed", seed, minimum=0)
    return _DreamSettings(
        octaves=V.integer("octaves", octaves, minimum=1),
        octave_scale=V.number("octave_scale", octave_scale, minimum=1.0, exclusive_minimum=True),
        steps=V.integer("steps", steps, minimum=0),
        step_size=V.number("step_size", step_size, minimum=0.0, exclusive_minimum=True),
        max_loss=V.number("max_loss", max_loss, allow_none=True),
        tile_size=tile_size,
        jitter=tile_size if jitter is None else jitter,
        seed=seed,
        progress=bool(progress),
    )


def _fits(features: Any, shape: tuple[int, int]) -> bool:
    """Whether ``features`` maps a ``(1, *shape, 3)`` input to non-empty outputs (shape inference only)."""
    import keras

    try:
        out = features.compute_output_spec(keras.KerasTensor((1, *shape, 3)))
    except (ValueError, TypeError):
        return False
    outs = out.values() if isinstance(out, dict) else out if isinstance(out, (list, tuple)) else [out]
    return all(d is None or d > 0 for o in outs for d in o.shape)


def _check_tiles(dreamer: _Dreamer, shape: tuple[int, int], settings: _DreamSettings) -> None:
    """Refuse, before any step, an image whose smallest octave or tile the model cannot process.

    Checked by Keras' shape inference (no computation): a too-small input can crash the
    whole process in the convolution kernels instead of raising.
    """
    h, w = shape
    for oh, ow in _octave_shapes(h, w, settings.octaves, settings.octave_scale):
        th = min(np.diff(_splits(oh, settings.tile_size)))
        tw = min(np.diff(_splits(ow, settings.tile_size)))
        if _fits(dreamer.features, (int(th), int(tw))):
            continue
        low, high = 1, 4096  # the smallest square side the model takes, when there is one below 4096
        if _fits(dreamer.features, (high, high)):
            while low < high:
                mid = (low + high) // 2
                low, high = (low, mid) if _fits(dreamer.features, (mid, mid)) else (mid + 1, high)
        need = f"at least {low}x{low} pixels" if low < 4096 else "a larger input"
        fixed = tuple(dreamer.features.inputs[0].shape[1:3])
        if any(d is not None for d in fixed):
            need = (f"inputs of exactly {fixed[0]}x{fixed[1]} pixels (its input size is fixed; build it on "
                    "keras.Input((None, None, 3)) to dream at any size)")
        raise InvalidArgumentError(
            f"Argument `image` must be large enough for model '{dreamer.features.name}' at every octave and "
            f"tile: its layers need {need}, but the image is too small: its smallest octave is {oh}x{ow} pixels and smallest "
            f"tile {th}x{tw}. Use fewer `octaves`, a smaller `octave_scale`, a larger `tile_size` or a larger "
            f"image. Received: image of size {h}x{w}, octaves={settings.octaves}, "
            f"octave_scale={settings.octave_scale}, tile_size={settings.tile_size}"
        )


def _prepare(
    image: Any, settings: _DreamSettings, *, model: Any, weights: Any, layers: Any, preprocess: Any, guide: Any = None,
    backbone: str | None = None,
) -> tuple[np.ndarray, _Dreamer, np.random.Generator]:
    """The float32 image, the dreamer (with its guide) and the random generator of a run."""
    base = _as_image(image)
    dreamer = _make_dreamer(model, weights, layers, preprocess, backbone)
    _check_tiles(dreamer, base.shape[:2], settings)
    if guide is not None:
        dreamer.set_guide(guide, settings.tile_size)
    return base, dreamer, settings.rng()


@contextmanager
def _progress_bar(total: int, progress: bool, desc: str) -> Iterator[Any]:
    """A tqdm bar (disabled by ``progress=False``), closed on exit."""
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, unit="step", leave=False, disable=not progress)
    try:
        yield bar
    finally:
        bar.close()


def _octave(
    dreamer: _Dreamer,
    image: np.ndarray | None,
    original: np.ndarray,
    previous_original: np.ndarray | None,
    settings: _DreamSettings,
    *,
    rng: np.random.Generator,
    bar: Any,
) -> np.ndarray:
    """One octave: ``image`` brought to the size of ``original`` (the input at this
    octave), the detail lost by downscaling re-injected, then gradient ascent.

    ``image`` and ``previous_original`` are ``None`` at the first (smallest) octave.
    """
    if image is None or previous_original is None:
        image = original.copy()
    else:
        # The original at this scale minus the original at the previous scale, upsampled.
        shape = original.shape[:2]
        image = _resize(image, shape) + (original - _resize(previous_original, shape))
        np.clip(image, 0.0, 255.0, out=image)
    return dreamer.ascend(image, settings, rng=rng, bar=bar)


def _dream(
    dreamer: _Dreamer, base: np.ndarray, settings: _DreamSettings, *, rng: np.random.Generator, bar: Any
) -> np.ndarray:
    """Dream on ``base`` (float32 ``(H, W, 3)``, not modified) octave by octave, smallest first."""
    h, w = base.shape[:2]
    image: np.ndarray | None = None
    previous: np.ndarray | None = None
    for shape in _octave_shapes(h, w, settings.octaves, settings.octave_scale):
        original = _resize(base, shape)
        image = _octave(dreamer, image, original, previous, settings, rng=rng, bar=bar)
        previous = original
    assert image is not None
    return image


# ------------------------------------------------------------------------------ public


def deep_dream(
    image: Any,
    *,
    model: Any = None,
    backbone: str | None = None,
    weights: str | os.PathLike[str] | None = "imagenet",
    layers: Mapping[str, float] | Sequence[str] | str | None = None,
    octaves: int = 3,
    octave_scale: float = 1.4,
    steps: int = 20,
    step_size: float = 0.01,
    max_loss: float | None = None,
    tile_size: int = 512,
    jitter: int | None = None,
    seed: int | None = None,
    preprocess: Callable[[Any], Any] | str | None = "default",
    guide: Any = None,
    progress: bool = True,
) -> np.ndarray:
    """Dream on ``image``: gradient ascent on its pixels to amplify layer activations.

    Parameters
    ----------
    image : array-like, path, bytes or PIL image
        ``(H, W, 3)`` (or anything [`visionkit.data.load_image`][visionkit.data.load_image] reads); uint8 or
        floats in ``[0, 255]``. Not modified.
    model : keras.Model, optional
        A functional or Sequential float32 model (nested models allowed). Default: the
        base of ``backbone``, always built in float32.
    backbone : str, optional
        The default model when ``model`` is None: a name of
        [`visionkit.backbones.PRESETS`][visionkit.backbones.PRESETS] (``"vgg16"``, ...), whose dream layers,
        weights and preprocessing are the defaults. Default: ``"inception_v3"``.
    weights : "imagenet", None or path, default "imagenet"
        Weights of the default model: ImageNet (downloaded once, a clear
        [`WeightsUnavailableError`][visionkit.errors.WeightsUnavailableError] offline), random (None), or a
        weights file. Must stay ``"imagenet"`` when ``model`` is given.
    layers : dict, list of str or str, optional
        Layers to amplify: name -> weight, or names (weight 1); ``"outer/inner"`` for a
        layer inside a nested model. Default: the dream layers of the backbone (or of
        ``model`` when its name is a known backbone's) in [`visionkit.backbones`][visionkit.backbones].
    octaves : int, default 3
        Number of scales, processed from the smallest (``1 / octave_scale ** (octaves - 1)``)
        up to the full size; between them the detail lost by downscaling is re-injected.
    octave_scale : float, default 1.4
        Size ratio between successive octaves (> 1).
    steps : int, default 20
        Gradient-ascent steps per octave.
    step_size : float, default 0.01
        Step in units of half the pixel range (the ``[-1, 1]`` scale of the original
        recipes): each step moves pixels by ``step_size * 127.5`` grey levels times the
        gradient divided by its standard deviation.
    max_loss : float, optional
        Stop an octave early once the dream loss exceeds it.
    tile_size : int, default 512
        The gradient is computed tile by tile on tiles no larger than this (>= 32); the
        memory used depends on it, not on the image size.
    jitter : int, optional
        The image is rolled by a random shift in ``[-jitter, jitter]`` pixels (each
        axis) before every step, so tile seams move and do not show. Default: the tile
        size; 0 disables the roll.
    seed : int, optional
        Seed of the random shifts: the same seed gives the same output.
    preprocess : callable, None or "default"
        Maps a float32 batch ``(1, h, w, 3)`` in ``[0, 255]`` to the model's input
        (TensorFlow ops). ``"default"``: the backbone's ``preprocess_input`` for the default
        model, none (pixels in ``[0, 255]``) for a model of your own.
    guide : array-like, path or PIL image, optional
        A guide image: instead of amplifying whatever the layers see, push each layer's
        activations towards the guide's mean activation (its direction in channel
        space), so the dream grows the guide's features. Downscaled to ``tile_size``.
    progress : bool, default True
        Show a tqdm progress bar.

    Returns
    -------
    numpy.ndarray
        uint8 array of shape ``(H, W, 3)``, the input's size.

    Raises
    ------
    InvalidArgumentError
        A bad argument, an unknown layer (the message lists the valid names), a
        non-float32 model, or an image too small for the model at the smallest octave.
    WeightsUnavailableError
        The ImageNet weights cannot be downloaded (offline) or the weights file is bad.

    Examples
    --------
    Random InceptionV3 weights (``weights=None``), a small image and few steps, to show
    the call; real dreams use the ImageNet weights and the defaults:

    >>> from visionkit.data import sample_image
    >>> from visionkit.dream import deep_dream
    >>> img = sample_image("photo", max_dim=128)
    >>> out = deep_dream(img, weights=None, octaves=2, steps=2, seed=0, progress=False)
    >>> out.shape == img.shape, out.dtype
    (True, dtype('uint8'))
    """
    settings = _dream_settings(
        octaves=octaves, octave_scale=octave_scale, steps=steps, step_size=step_size, max_loss=max_loss,
        tile_size=tile_size, jitter=jitter, seed=seed, progress=progress,
    )
    base, dreamer, rng = _prepare(
        image, settings, model=model, weights=weights, layers=layers, preprocess=preprocess, guide=guide,
        backbone=backbone,
    )
    with _progress_bar(settings.octaves * settings.steps, settings.progress, "dream") as bar:
        return _to_uint8(_dream(dreamer, base, settings, rng=rng, bar=bar))


def dream_frames(
    image: Any,
    n: int,
    *,
    zoom: float = 1.05,
    model: Any = None,
    backbone: str | None = None,
    weights: str | os.PathLike[str] | None = "imagenet",
    layers: Mapping[str, float] | Sequence[str] | str | None = None,
    octaves: int = 1,
    octave_scale: float = 1.4,
    steps: int = 5,
    step_size: float = 0.01,
    max_loss: float | None = None,
    tile_size: int = 512,
    jitter: int | None = None,
    seed: int | None = None,
    preprocess: Callable[[Any], Any] | str | None = "default",
    progress: bool = True,
) -> Iterator[np.ndarray]:
    """Yield ``n`` frames of an endless-zoom dream video.

    Each frame dreams on the previous one (a few steps, see [`deep_dream`][visionkit.dream.deep_dream] for the
    options), then zooms into its centre by ``zoom`` for the next. The model and its
    compiled gradient are built once for all frames.

    Parameters
    ----------
    image : array-like, path, bytes or PIL image
        The first frame's input, ``(H, W, 3)`` in ``[0, 255]``.
    n : int
        Number of frames (>= 1).
    zoom : float, default 1.05
        Zoom factor between frames (>= 1; 1 means no zoom).

    Yields
    ------
    numpy.ndarray
        uint8 frames of shape ``(H, W, 3)``.

    Examples
    --------
    Random weights and one step per frame, to show the call (save each frame with
    [`visionkit.data.save_image`][visionkit.data.save_image] to make a video):

    >>> from visionkit.data import sample_image
    >>> from visionkit.dream import dream_frames
    >>> frames = list(dream_frames(sample_image("photo", max_dim=96), 2, weights=None, steps=1, progress=False))
    >>> len(frames), frames[0].shape, frames[0].dtype
    (2, (64, 96, 3), dtype('uint8'))
    """
    n = V.integer("n", n, minimum=1)
    zoom = V.number("zoom", zoom, minimum=1.0)
    settings = _dream_settings(
        octaves=octaves, octave_scale=octave_scale, steps=steps, step_size=step_size, max_loss=max_loss,
        tile_size=tile_size, jitter=jitter, seed=seed, progress=progress,
    )
    frame, dreamer, rng = _prepare(
        image, settings, model=model, weights=weights, layers=layers, preprocess=preprocess, backbone=backbone
    )
    total = n * settings.octaves * settings.steps
    with _progress_bar(total, settings.progress, "dream frames") as bar:
        for i in range(n):
            if i and zoom > 1.0:
                frame = _zoom(frame, zoom)
            frame = _dream(dreamer, frame, settings, rng=rng, bar=bar)
            yield _to_uint8(frame)


def _zoom(frame: np.ndarray, zoom: float) -> np.ndarray:
    """The centre ``1 / zoom`` of ``frame``, resized back to the frame's size."""
    h, w = frame.shape[:2]
    ch, cw = max(1, round(h / zoom)), max(1, round(w / zoom))
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    return _resize(frame[y0:y0 + ch, x0:x0 + cw], (h, w))
