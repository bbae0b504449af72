"""Neural style transfer (Gatys et al.) with VGG-19 (or another backbone of the presets table).

Repaint a content image in the style of a painting by optimising the pixels of a
generated image ``x`` against::

    L(x) = content_weight * L_content(x) + style_weight * L_style(x) + tv_weight * L_tv(x)

where the content loss compares VGG-19 features of ``x`` with those of the content
image, the style loss compares their Gram matrices with those of the style image(s),
and the total-variation loss keeps neighbouring pixels close.

The textbook loop recomputes the features of the content and style images at every
step, eagerly. Here the targets (content features, style Gram matrices, blended over
several styles) are computed **once**, the loss-and-gradient is compiled with
``tf.function`` for the fixed image shape, and the generated image lives in a
``tf.Variable``, so one step costs about one VGG-19 forward + backward pass on the
generated image (see ``benchmarks/style.py``).

Mixed precision: the VGG-19 extractor and every loss are built with an explicit float32
dtype policy, so style transfer runs in float32 and gives the same result under a
global mixed-precision policy (Gram matrices of VGG activations overflow float16).

Examples
--------
Random VGG-19 weights (``weights=None``) and a few steps, to show the call; real runs
use the default ImageNet weights and hundreds of steps:

>>> from visionkit import data, style
>>> out = style.style_transfer(data.sample_image("photo"), data.sample_image("painting"),
...                            max_dim=64, steps=2, weights=None, progress=False)
>>> out.shape, out.dtype
((43, 64, 3), dtype('uint8'))
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _validate as V
from ._backbones import PRESETS
from ._style_loop import StepCounter, observers_for, progress_bar
from ._style_model import VGG19_LAYER_NAMES, build_extractor, min_side
from ._style_settings import (
    INIT_MODES,
    OPTIMIZERS,
    POOLINGS,
    StyleSettings,
    check_some_layers,
    require_scipy,
    style_settings,
)
from .errors import InvalidArgumentError

__all__ = [
    "INIT_MODES",
    "OPTIMIZERS",
    "POOLINGS",
    "VGG19_CONTENT_LAYERS",
    "VGG19_LAYER_NAMES",
    "VGG19_STYLE_LAYERS",
    "content_loss",
    "gram_matrix",
    "style_extractor",
    "style_loss",
    "style_transfer",
    "total_variation_loss",
]

#: Content layer of Gatys et al. (2016) and of the Keras / TensorFlow examples (from
#: the presets table, [`visionkit.backbones`][visionkit.backbones]).
VGG19_CONTENT_LAYERS: tuple[str, ...] = PRESETS["vgg19"].content_layers
#: Style layers of Gatys et al. (2016): the first convolution of every block.
VGG19_STYLE_LAYERS: tuple[str, ...] = PRESETS["vgg19"].style_layers


# ----------------------------------------------------------------------------- building blocks


def _tf() -> Any:
    import tensorflow as tf

    return tf


def gram_matrix(features: Any) -> Any:
    """Gram matrix of feature maps, normalised by the number of positions.

    ``G[c, d] = sum over i, j of F[i, j, c] * F[i, j, d] / (H * W)``

    Parameters
    ----------
    features : array-like or tf.Tensor
        Feature maps of shape ``(H, W, C)`` or ``(B, H, W, C)``, any float dtype.

    Returns
    -------
    tf.Tensor
        float32, shape ``(C, C)`` or ``(B, C, C)``: symmetric, positive semi-definite,
        the uncentred channel covariance (independent of the image size).

    Examples
    --------
    >>> import numpy as np
    >>> from visionkit.style import gram_matrix
    >>> g = gram_matrix(np.ones((4, 4, 2), np.float32))
    >>> g.numpy().tolist()
    [[1.0, 1.0], [1.0, 1.0]]
    """
    tf = _tf()
    f = tf.cast(tf.convert_to_tensor(features), tf.float32)
    if f.shape.rank not in (3, 4):
        raise V.fail("features", "a tensor of shape (H, W, C) or (B, H, W, C)", f"shape {tuple(f.shape)}")
    shape = tf.shape(f)
    positions = tf.cast(shape[-3] * shape[-2], tf.float32)
    if f.shape.rank == 3:
        flat = tf.reshape(f, (-1, shape[-1]))
        return tf.matmul(flat, flat, transpose_a=True) / positions
    flat = tf.reshape(f, (shape[0], -1, shape[-1]))
    return tf.matmul(flat, flat, transpose_a=True) / positions


def content_loss(features: Any, target: Any) -> Any:
    """Content loss: mean squared difference of feature maps.

    ``L_content = mean((F - P) ** 2)`` over the elements of the feature maps ``F`` (generated image) and ``P``
    (content image).

    Parameters
    ----------
    features, target : array-like or tf.Tensor
        Feature maps of the same shape, e.g. ``(1, H, W, C)``.

    Returns
    -------
    tf.Tensor
        float32 scalar, ``>= 0``; ``0`` exactly when ``features == target``.
    """
    tf = _tf()
    f = tf.cast(features, tf.float32)
    return tf.reduce_mean(tf.square(f - tf.cast(target, tf.float32)))


def style_loss(features: Any, target_gram: Any) -> Any:
    """Style loss of one layer: mean squared difference of Gram matrices.

    ``L_style = mean((G(F) - A) ** 2)`` over the ``C x C`` entries, with ``G`` from
    [`gram_matrix`][visionkit.style.gram_matrix] (normalised by the number of positions, so style and generated
    images may differ in size) and ``A`` the target Gram matrix.

    Parameters
    ----------
    features : array-like or tf.Tensor
        Feature maps of the generated image, ``(H, W, C)`` or ``(B, H, W, C)``.
    target_gram : array-like or tf.Tensor
        Target Gram matrix ``(C, C)`` (or ``(B, C, C)``), e.g. ``gram_matrix`` of the
        style image's features, or a weighted sum of several.

    Returns
    -------
    tf.Tensor
        float32 scalar, ``>= 0``.
    """
    tf = _tf()
    return tf.reduce_mean(tf.square(gram_matrix(features) - tf.cast(target_gram, tf.float32)))


def total_variation_loss(image: Any) -> Any:
    """Total-variation loss: mean squared difference of neighbouring pixels.

    ``L_tv = mean((x[i+1, j] - x[i, j]) ** 2) + mean((x[i, j+1] - x[i, j]) ** 2)``

    Parameters
    ----------
    image : array-like or tf.Tensor
        ``(H, W, C)`` or ``(B, H, W, C)`` with ``H, W >= 2``, in pixel units.

    Returns
    -------
    tf.Tensor
        float32 scalar, ``>= 0``; ``0`` for a constant image.

    Examples
    --------
    >>> import numpy as np
    >>> from visionkit.style import total_variation_loss
    >>> ramp = np.tile(np.arange(4, dtype=np.float32)[None, :, None], (3, 1, 1))
    >>> float(total_variation_loss(ramp))
    1.0
    """
    tf = _tf()
    x = tf.cast(tf.convert_to_tensor(image), tf.float32)
    if x.shape.rank not in (3, 4):
        raise V.fail("image", "a tensor of shape (H, W, C) or (B, H, W, C)", f"shape {tuple(x.shape)}")
    dh = x[..., 1:, :, :] - x[..., :-1, :, :]
    dw = x[..., :, 1:, :] - x[..., :, :-1, :]
    return tf.reduce_mean(tf.square(dh)) + tf.reduce_mean(tf.square(dw))


def style_extractor(
    content_layers: Sequence[str] | None = None,
    style_layers: Sequence[str] | None = None,
    *,
    backbone: str = "vgg19",
    pooling: str = "avg",
    weights: str | os.PathLike[str] | None = "imagenet",
) -> Any:
    """A model returning the feature maps of the content and style layers (VGG-19 by default).

    A new float32 functional model (the loaded backbone is not modified). For VGG
    backbones: the convolutions with their loaded weights, max-pooling replaced by
    average pooling when ``pooling="avg"``, truncated after the deepest requested
    layer. Other backbones: the backbone tapped at the layers, behind a layer mapping
    VGG-preprocessed pixels to its own input.

    Parameters
    ----------
    content_layers, style_layers : sequence of str, optional
        Layer names of the backbone (for VGG-19 see ``VGG19_LAYER_NAMES``); a layer may
        be in both. Default: the backbone's preset in [`visionkit.backbones`][visionkit.backbones].
    backbone : str, default "vgg19"
        A name of [`visionkit.backbones.PRESETS`][visionkit.backbones.PRESETS] (``"vgg16"``, ``"vgg19"``, ...).
    pooling : {"avg", "max"}, default "avg"
        ``"avg"`` replaces max-pooling by average pooling (Gatys et al. report better
        gradient flow); ``"max"`` keeps VGG's. VGG backbones only.
    weights : "imagenet", None or path, default "imagenet"
        ImageNet weights (downloaded and cached by Keras), random weights, or a
        ``.weights.h5`` file of the backbone's convolutional base.

    Returns
    -------
    keras.Model
        Input: float32 ``(B, H, W, 3)`` images preprocessed with
        [`visionkit.preprocess.vgg_preprocess`][visionkit.preprocess.vgg_preprocess] (BGR, mean subtracted), any ``H, W``.
        Output: dict ``{layer_name: (B, h, w, C) float32 features}`` for every
        requested layer (content layers first).

    Raises
    ------
    WeightsUnavailableError
        ImageNet weights cannot be downloaded (offline), or the weights file does not fit.

    Examples
    --------
    >>> from visionkit.style import style_extractor
    >>> from visionkit.backbones import preset
    >>> model = style_extractor(weights=None, backbone="vgg16")
    >>> sorted(model.output) == sorted(preset("vgg16").style_layers + preset("vgg16").content_layers)
    True
    """
    content_layers, style_layers = check_some_layers(content_layers, style_layers, backbone)
    V.one_of("pooling", pooling, POOLINGS)
    return build_extractor(
        tuple(dict.fromkeys(content_layers + style_layers)), backbone=backbone, pooling=pooling, weights=weights
    )


# ----------------------------------------------------------------------------- colour

#: RGB -> YIQ (NTSC). Y is the luminance; I, Q the chroma.
_RGB_TO_YIQ = np.array(
    [[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]],
    dtype=np.float64,
)
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ)


def _to_yiq(rgb: np.ndarray) -> np.ndarray:
    return (rgb.astype(np.float64) @ _RGB_TO_YIQ.T).astype(np.float32)


def _from_yiq(yiq: np.ndarray) -> np.ndarray:
    return (yiq.astype(np.float64) @ _YIQ_TO_RGB.T).astype(np.float32)


def _luminance_image(rgb: np.ndarray, *, match: np.ndarray | None = None) -> np.ndarray:
    """Grey RGB image of ``rgb``'s luminance, optionally matched in mean/std to ``match``."""
    y = _to_yiq(rgb)[..., 0]
    if match is not None:
        ym = _to_yiq(match)[..., 0]
        y = (y - y.mean()) / (y.std() + 1e-6) * ym.std() + ym.mean()
    y = np.clip(y, 0.0, 255.0)
    return np.repeat(y[..., None], 3, axis=-1).astype(np.float32)


# ----------------------------------------------------------------------------- the recipe


def _load(source: Any, argument: str) -> np.ndarray:
    from ._images import load_image_as

    if hasattr(source, "numpy") and not isinstance(source, np.ndarray):
        source = np.asarray(source.numpy())
    return load_image_as(source, argument)


@dataclass(frozen=True)
class _Sources:
    """The loaded images of a run, at full resolution, as float RGB ``(H, W, 3)``.

    With ``preserve_color`` ``content`` and ``styles`` are luminance-only (grey RGB) and
    ``colour`` is the original content, whose chroma is put back at the end.
    """

    content: np.ndarray
    colour: np.ndarray
    styles: tuple[np.ndarray, ...]


def _load_sources(content: Any, styles: Sequence[Any], *, preserve_color: bool) -> _Sources:
    content_rgb = _load(content, "content")
    style_rgbs = tuple(_load(s, "style" if len(styles) == 1 else f"style[{i}]") for i, s in enumerate(styles))
    if not preserve_color:
        return _Sources(content_rgb, content_rgb, style_rgbs)
    return _Sources(
        _luminance_image(content_rgb),
        content_rgb,
        tuple(_luminance_image(s, match=content_rgb) for s in style_rgbs),
    )


def style_transfer(
    content: Any,
    style: Any,
    *,
    max_dim: int = 512,
    backbone: str = "vgg19",
    content_layers: Sequence[str] | None = None,
    style_layers: Sequence[str] | None = None,
    style_layer_weights: Sequence[float] | None = None,
    content_weight: float = 1e4,
    style_weight: float = 1e-2,
    tv_weight: float = 1e2,
    steps: int = 1000,
    optimizer: str = "adam",
    learning_rate: float = 5.0,
    init: str | float = "content",
    pooling: str = "avg",
    preserve_color: bool = False,
    style_scale: float = 1.0,
    style_blend_weights: Sequence[float] | None = None,
    scales: Sequence[int] | None = None,
    weights: str | os.PathLike[str] | None = "imagenet",
    seed: int | None = None,
    callback: Callable[[int, np.ndarray, dict[str, float]], Any] | None = None,
    save_every: int | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> np.ndarray:
    """Repaint ``content`` in the style of ``style`` (Gatys et al., 2016).

    Minimises ``content_weight * L_content + style_weight * L_style + tv_weight * L_tv``
    over the pixels of the generated image, where ``L_content`` is the mean of
    [`content_loss`][visionkit.style.content_loss] over ``content_layers``, ``L_style`` the
    ``style_layer_weights``-weighted mean of [`style_loss`][visionkit.style.style_loss] over ``style_layers``
    (against the style images' Gram matrices, blended by ``style_blend_weights``) and
    ``L_tv`` is [`total_variation_loss`][visionkit.style.total_variation_loss], all on VGG-preprocessed pixels. The
    targets are computed once; each step is one compiled VGG-19 forward + backward.

    Parameters
    ----------
    content : path, bytes, PIL image or array
        Anything [`visionkit.data.load_image`][visionkit.data.load_image] takes (grayscale and RGBA included).
    style : same as ``content``, or a list of them
        The style image(s). Sizes and aspect ratios may differ from the content's: each
        is rescaled (keeping its aspect ratio) so its longer side is ``style_scale``
        times the generated image's longer side.
    max_dim : int, default 512
        Longer side of the generated image; the content is scaled to it (up or down).
    backbone : str, default "vgg19"
        The feature network: a name of [`visionkit.backbones.PRESETS`][visionkit.backbones.PRESETS]
        (``"vgg19"``, ``"vgg16"``, ...). VGG backbones are rebuilt with average pooling;
        the others are used as built (``pooling`` does not apply).
    content_layers, style_layers : sequence of str, optional
        Layer names of the backbone; default its preset (for VGG-19
        ``VGG19_CONTENT_LAYERS`` and ``VGG19_STYLE_LAYERS``).
        ``content_layers=()`` synthesises texture only.
    style_layer_weights : sequence of float, optional
        One non-negative weight per style layer (normalised to sum 1); default equal.
    content_weight, style_weight, tv_weight : float, default 1e4, 1e-2, 1e2
        Weights of the three losses (the content/style balance of the TensorFlow
        style-transfer tutorial, whose losses are the same means).
    steps : int, default 1000
        Optimisation steps (L-BFGS iterations for ``"lbfgs"``), per scale.
    optimizer : {"adam", "lbfgs"}, default "adam"
        Adam on the pixels (clipped to the valid range), or L-BFGS-B from scipy with
        the pixel range as box constraints (needs ``pip install 'visionkit[lbfgs]'``);
        L-BFGS reaches a given loss in far fewer steps.
    learning_rate : float, default 5.0
        Adam's step size in pixel units (``[0, 255]``); ignored by L-BFGS (line search).
        Adam is Keras' update with ``beta_1=0.99`` and ``epsilon=0.1 / 255``: the
        TensorFlow tutorial's ``Adam(0.02, beta_1=0.99, epsilon=0.1)`` for images in
        ``[0, 1]``, rescaled to pixels (5.0 is about ``0.02 * 255``).
    init : "content", "noise" or float, default "content"
        Start from the content image, from uniform noise, or from
        ``ratio * noise + (1 - ratio) * content`` (``0.6`` in the classic recipe).
        The noise is uniform in ``[-20, 20]`` around the ImageNet mean colour.
    pooling : {"avg", "max"}, default "avg"
        Average pooling in VGG instead of max-pooling (the paper's choice) or not (VGG backbones only).
    preserve_color : bool, default False
        Keep the content's colours: transfer on luminance only (YIQ; the style's
        luminance matched in mean and standard deviation to the content's), then put
        the content's chroma (I, Q) back.
    style_scale : float, default 1.0
        Size of the style image relative to the generated image (smaller: finer
        brush strokes).
    style_blend_weights : sequence of float, optional
        With several styles, one non-negative weight per style (normalised); the target
        Gram matrices are blended with them. Default: equal.
    scales : sequence of int, optional
        Coarse-to-fine schedule, e.g. ``(256, 512)``: optimise ``steps`` steps at each
        size in turn, upsampling the result to start the next; overrides ``max_dim``.
    weights : "imagenet", None or path, default "imagenet"
        Backbone weights (see [`style_extractor`][visionkit.style.style_extractor]): ``"imagenet"``, None or a
        weights file (e.g. a VGG16 base with ``backbone="vgg16"``). ``None`` (random) gives textures,
        not paintings; it is for tests and timing.
    seed : int, optional
        Seed of the initial noise.
    callback : callable, optional
        ``callback(step, image, losses)`` after every step with the step number (from
        1, counting across scales), the current uint8 ``(H, W, 3)`` image and a dict of
        float losses (``"total"``, ``"content"``, ``"style"``, ``"tv"``, unweighted
        except ``"total"``). Returning ``True`` stops the run.
    save_every : int, optional
        Write the current image to ``output_dir/step_NNNNN.png`` (atomically) every
        ``save_every`` steps and at the last step.
    output_dir : path, optional
        Folder for ``save_every`` (required with it).
    progress : bool, default True
        Show a tqdm progress bar with the losses.

    Returns
    -------
    numpy.ndarray
        uint8 RGB ``(H, W, 3)``: the content's shape scaled so its longer side is
        ``max_dim`` (or the last of ``scales``).

    Raises
    ------
    NonFiniteLossError
        The loss or its gradient became NaN/Inf; ``error.last_finite`` is the last
        finite image (uint8). Nothing non-finite is ever written.
    WeightsUnavailableError
        ImageNet weights cannot be downloaded (offline) or the file does not fit.
    ImageReadError
        A content or style file cannot be read.
    ImportError
        ``optimizer="lbfgs"`` without scipy installed.

    Examples
    --------
    >>> from visionkit import data
    >>> from visionkit.style import style_transfer
    >>> out = style_transfer(data.sample_image("photo"), data.sample_image("painting"),
    ...                      max_dim=48, steps=2, weights=None, progress=False)
    >>> out.shape, out.dtype
    ((32, 48, 3), dtype('uint8'))
    """
    styles = list(style) if isinstance(style, (list, tuple)) else [style]
    if not styles:
        raise V.fail("style", "an image or a non-empty list of images", style)
    settings = style_settings(
        n_styles=len(styles),
        max_dim=max_dim,
        backbone=backbone,
        content_layers=content_layers,
        style_layers=style_layers,
        style_layer_weights=style_layer_weights,
        content_weight=content_weight,
        style_weight=style_weight,
        tv_weight=tv_weight,
        steps=steps,
        optimizer=optimizer,
        learning_rate=learning_rate,
        init=init,
        pooling=pooling,
        preserve_color=preserve_color,
        style_scale=style_scale,
        style_blend_weights=style_blend_weights,
        scales=scales,
        weights=weights,
        seed=seed,
        callback=callback,
        save_every=save_every,
        output_dir=output_dir,
        progress=progress,
    )
    if settings.optimizer == "lbfgs":
        require_scipy()  # fail before loading images and VGG-19
    return _run(_load_sources(content, styles, preserve_color=settings.preserve_color), settings)


def _run(sources: _Sources, settings: StyleSettings) -> np.ndarray:
    """Optimise at every size of ``settings.sizes`` in turn; the uint8 RGB result."""
    from .preprocess import vgg_deprocess

    extractor = build_extractor(
        settings.layers, backbone=settings.backbone, pooling=settings.pooling, weights=settings.weights
    )
    rng = np.random.default_rng(settings.seed)
    previous: np.ndarray | None = None  # last scale's result, before colour restoration
    result: np.ndarray | None = None
    with progress_bar(settings) as bar:
        steps = StepCounter(observers_for(settings, bar))
        for size in settings.sizes:
            x, finish = _run_scale(extractor, sources, size, previous, settings, rng=rng, steps=steps)
            previous = vgg_deprocess(x).astype(np.float32)
            result = finish(x)
            if steps.stopped:
                break
    assert result is not None
    return result


def _run_scale(
    extractor: Any,
    sources: _Sources,
    size: int,
    previous: np.ndarray | None,
    settings: StyleSettings,
    *,
    rng: np.random.Generator,
    steps: StepCounter,
) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """One scale: targets at ``size``, start image, optimisation.

    Returns the optimised preprocessed image ``(h, w, 3)`` and the function mapping
    such an image to the uint8 RGB result (with the content's chroma if asked).
    """
    from ._style_optim import run_adam, run_lbfgs
    from .data import load_image

    c_rgb = load_image(sources.content, max_dim=size)
    h, w = c_rgb.shape[:2]
    _check_size("content", (h, w), settings.content_layers, "max_dim` or `scales", settings.backbone)
    style_dim = max(16, round(max(h, w) * settings.style_scale))
    s_rgbs = [load_image(s, max_dim=style_dim) for s in sources.styles]
    for i, s_rgb in enumerate(s_rgbs):
        what = f"style[{i}]" if len(s_rgbs) > 1 else "style"
        _check_size(what, s_rgb.shape[:2], settings.style_layers, "style_scale", settings.backbone)
    chroma = _to_yiq(load_image(sources.colour, size=(h, w))) if settings.preserve_color else None
    finish = _finisher(chroma)
    loss_fn = _make_loss(
        extractor,
        *_targets(extractor, c_rgb, s_rgbs, settings),
        dict(zip(settings.style_layers, settings.style_layer_weights)),
        content_weight=settings.content_weight,
        style_weight=settings.style_weight,
        tv_weight=settings.tv_weight,
    )
    low, high = _pixel_box()
    x0 = _start_image(c_rgb, previous, settings.noise_ratio, rng, low, high)
    report = steps.reporter(finish)
    if settings.optimizer == "adam":
        x = run_adam(
            loss_fn, x0, low, high, steps=settings.steps, learning_rate=settings.learning_rate,
            report=report, to_image=finish,
        )
    else:
        x = run_lbfgs(loss_fn, x0, low, high, steps=settings.steps, report=report, to_image=finish)
    return x, finish


def _targets(
    extractor: Any, c_rgb: np.ndarray, s_rgbs: Sequence[np.ndarray], settings: StyleSettings
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Content features and blended style Gram matrices, computed once per scale."""
    import tensorflow as tf

    from .preprocess import vgg_preprocess

    c_feats = extractor(tf.constant(vgg_preprocess(c_rgb)[None]))
    content_targets = {n: tf.constant(c_feats[n]) for n in settings.content_layers}
    del c_feats
    grams: dict[str, Any] = {n: 0.0 for n in settings.style_layers}
    for blend_w, s_rgb in zip(settings.style_blend_weights, s_rgbs):
        s_feats = extractor(tf.constant(vgg_preprocess(s_rgb)[None]))
        for n in settings.style_layers:
            grams[n] = grams[n] + float(blend_w) * gram_matrix(s_feats[n])
        del s_feats
    return content_targets, {n: tf.constant(g) for n, g in grams.items()}


def _pixel_box() -> tuple[np.ndarray, np.ndarray]:
    """The valid range ``(low, high)`` per channel of VGG-preprocessed (BGR) pixels."""
    from .preprocess import IMAGENET_MEAN_RGB

    mean_bgr = np.asarray(IMAGENET_MEAN_RGB[::-1], np.float32)
    return -mean_bgr, 255.0 - mean_bgr


def _start_image(
    c_rgb: np.ndarray,
    previous: np.ndarray | None,
    noise_ratio: float,
    rng: np.random.Generator,
    low: np.ndarray,
    high: np.ndarray,
) -> np.ndarray:
    """The preprocessed start image: the previous scale's result upsampled, or the content with noise."""
    from .data import load_image
    from .preprocess import vgg_preprocess

    if previous is not None:
        x0 = vgg_preprocess(load_image(previous, size=c_rgb.shape[:2]))
    else:
        x0 = vgg_preprocess(c_rgb)
        if noise_ratio > 0:
            noise = rng.uniform(-20.0, 20.0, x0.shape).astype(np.float32)
            x0 = noise_ratio * noise + (1.0 - noise_ratio) * x0
    return np.clip(x0, low, high).astype(np.float32)


def _finisher(chroma: np.ndarray | None) -> Callable[[np.ndarray], np.ndarray]:
    """The map from a preprocessed image to uint8 RGB, putting ``chroma`` (YIQ) back if given."""
    from .preprocess import vgg_deprocess

    def finish(x: np.ndarray) -> np.ndarray:
        rgb = vgg_deprocess(x)
        if chroma is not None:
            yiq = chroma.copy()
            yiq[..., 0] = _to_yiq(rgb)[..., 0]
            rgb = np.clip(np.rint(_from_yiq(yiq)), 0, 255).astype(np.uint8)
        return rgb

    return finish


def _check_size(what: str, shape: tuple[int, int], layers: Sequence[str], argument: str, backbone: str) -> None:
    """Raise if an image is too small to reach the deepest layer with a non-empty map."""
    if not layers:
        return
    need, deepest = min_side(backbone, layers)
    if min(shape) < need:
        raise InvalidArgumentError(
            f"The {what} image is {shape[0]}x{shape[1]} pixels after scaling; layer "
            f"'{deepest}' of {backbone} needs at least {need} pixels on the shorter side. "
            f"Raise `{argument}` or use shallower layers."
        )


def _make_loss(
    extractor: Any,
    content_targets: dict[str, Any],
    style_targets: dict[str, Any],
    layer_weights: dict[str, float],
    *,
    content_weight: float,
    style_weight: float,
    tv_weight: float,
) -> Callable[[Any], tuple[Any, dict[str, Any]]]:
    """The total loss of a preprocessed ``(H, W, 3)`` image against fixed targets."""
    import tensorflow as tf

    def loss_fn(x: Any) -> tuple[Any, dict[str, Any]]:
        feats = extractor(x[None])
        zero = tf.constant(0.0, tf.float32)
        c_loss = (
            tf.add_n([content_loss(feats[n], t) for n, t in content_targets.items()]) / len(content_targets)
            if content_targets
            else zero
        )
        s_loss = (
            tf.add_n([layer_weights[n] * style_loss(feats[n], t) for n, t in style_targets.items()])
            if style_targets
            else zero
        )
        tv = total_variation_loss(x)
        total = content_weight * c_loss + style_weight * s_loss + tv_weight * tv
        return total, {"content": c_loss, "style": s_loss, "tv": tv}

    return loss_fn
