"""Activation, filter-pattern and image-grid plots (private; public through
[`visionkit.visualize`][visionkit.visualize])."""

from __future__ import annotations

import math
import os
import weakref
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from . import _validate as V
from ._images import as_batch, check_fits, display, literal, to_rgb

# Keras and _layers (which imports it) are imported inside the functions: the command
# line reads these functions' defaults without loading TensorFlow.

__all__ = ["activations", "filter_grid", "filter_pattern", "filter_patterns", "image_grid", "plot_activations"]

# model -> {tuple of layer names: tapped model}
_TAPS: weakref.WeakKeyDictionary[Any, dict[Any, Any]] = weakref.WeakKeyDictionary()


def _cached(model: Any, key: Any, build: Any) -> Any:
    try:
        per_model = _TAPS.setdefault(model, {})
    except TypeError:  # not weak-referenceable
        return build()
    if key not in per_model:
        per_model[key] = build()
    return per_model[key]


def _is_conv_or_pool(layer: Any) -> bool:
    import keras

    from . import _layers

    kinds = (
        keras.layers.Conv2D,
        keras.layers.SeparableConv2D,
        keras.layers.DepthwiseConv2D,
        keras.layers.Conv2DTranspose,
        keras.layers.MaxPooling2D,
        keras.layers.AveragePooling2D,
    )
    return isinstance(layer, kinds) and _layers.output_rank(layer) == 4


def activations(model: Any, image: Any, *, layers: Sequence[str] | None = None) -> OrderedDict[str, np.ndarray]:
    """The outputs of a model's intermediate layers for one image (or a batch).

    Parameters
    ----------
    model : keras.Model
        A functional or ``Sequential`` model, nested models included. Not modified.
    image : array-like
        One image ``(H, W, C)`` or a batch ``(N, H, W, C)``, as the model expects it.
    layers : sequence of str, optional
        Layer names (``"outer/inner"`` for nested layers). Default: every 2-D
        convolution and pooling layer, nested ones included, in graph order.

    Returns
    -------
    collections.OrderedDict
        Layer name → float32 activations, ``(h, w, channels)`` for one image
        (``(N, h, w, channels)`` for a batch), in the order of ``layers``.

    Examples
    --------
    >>> import numpy as np, keras
    >>> from visionkit.visualize import activations
    >>> model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(8, 3, name="conv"),
    ...     keras.layers.MaxPooling2D(name="pool"), keras.layers.Flatten(), keras.layers.Dense(10)])
    >>> acts = activations(model, np.zeros((28, 28, 1), "float32"))
    >>> {name: a.shape for name, a in acts.items()}
    {'conv': (26, 26, 8), 'pool': (13, 13, 8)}
    """
    import tensorflow as tf

    from . import _layers

    if layers is None:
        names = _layers.candidates(model, _is_conv_or_pool)
        if not names:
            raise V.fail("layers", f"given: model '{model.name}' has no 2-D convolution or pooling layer", layers)
    else:
        if isinstance(layers, str) or not all(isinstance(n, str) for n in layers) or not layers:
            raise V.fail("layers", "a non-empty sequence of layer names", layers)
        names = list(dict.fromkeys(layers))
        for n in names:
            _layers.get_layer(model, n, argument="layers")
    x, single = as_batch(model, image, argument="image")
    check_fits(model, x, argument="image")
    tapped = _cached(model, ("acts", *names), lambda: _layers.tap(model, names, include_output=False))
    out = tapped(tf.convert_to_tensor(x, dtype=model.inputs[0].dtype), training=False)
    result: OrderedDict[str, np.ndarray] = OrderedDict()
    for n in names:
        a = np.asarray(out[n], dtype=np.float32)
        result[n] = a[0] if single else a
    return result


def _standardise_tile(channel: np.ndarray) -> np.ndarray:
    """One channel as uint8 for display: mean 0, std 64, centred at 128; constant → 0."""
    c = np.nan_to_num(channel.astype(np.float32))
    std = float(c.std())
    if not std > 1e-12:
        return np.zeros(c.shape, np.uint8)
    c = (c - c.mean()) / std * 64.0 + 128.0
    return np.clip(c, 0, 255).astype(np.uint8)


def _mosaic(tiles: Sequence[np.ndarray], ncols: int, margin: int = 1, fill: int = 0) -> np.ndarray:
    h, w = tiles[0].shape[:2]
    rows = math.ceil(len(tiles) / ncols)
    extra = tiles[0].shape[2:]
    grid = np.full((rows * h + (rows - 1) * margin, ncols * w + (ncols - 1) * margin, *extra), fill, np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, ncols)
        grid[r * (h + margin) : r * (h + margin) + h, c * (w + margin) : c * (w + margin) + w] = t
    return grid


def plot_activations(acts: Mapping[str, Any], *, images_per_row: int = 16, cmap: str = "viridis") -> OrderedDict[str, Any]:
    """Every channel of every layer as a tile: one Figure per layer.

    Parameters
    ----------
    acts : mapping of str to array
        As returned by [`activations`][visionkit.visualize.activations]: ``(h, w, channels)`` arrays (for a batch,
        the first image is shown).
    images_per_row : int, default 16
        Tiles per row.
    cmap : str, default "viridis"
        Matplotlib colormap.

    Returns
    -------
    collections.OrderedDict
        Layer name → ``matplotlib.figure.Figure``. Each tile is standardised for
        display (mean 0, standard deviation scaled to 64, centred at 128, clipped to
        uint8); constant ("dead") channels are shown blank, never as NaN.

    Examples
    --------
    >>> import numpy as np
    >>> from visionkit.visualize import plot_activations
    >>> figs = plot_activations({"conv": np.random.default_rng(0).random((26, 26, 8))}, images_per_row=4)
    >>> list(figs), figs["conv"].axes[0].images[0].get_array().shape
    (['conv'], (53, 107))
    """
    from matplotlib.figure import Figure

    images_per_row = V.integer("images_per_row", images_per_row, minimum=1)
    if not isinstance(acts, Mapping) or not acts:
        raise V.fail("acts", "a non-empty mapping of layer name to activation array (from `activations`)", acts)
    figures: OrderedDict[str, Any] = OrderedDict()
    for name, value in acts.items():
        a = np.asarray(value)
        if a.ndim == 4:
            a = a[0]
        if a.ndim != 3:
            raise V.fail("acts", "arrays of shape (h, w, channels) or (N, h, w, channels)", f"{name!r}: shape {np.shape(value)}")
        tiles = [_standardise_tile(a[..., i]) for i in range(a.shape[-1])]
        cols = min(images_per_row, len(tiles))
        grid = _mosaic(tiles, cols, margin=max(1, a.shape[0] // 16))
        scale = 1.0 / max(a.shape[0], 1)
        width = max(4.0, min(20.0, cols * a.shape[1] * scale * 1.0))
        height = max(1.5, width * grid.shape[0] / grid.shape[1]) + 0.4
        fig = Figure(figsize=(width, height), layout="constrained")
        ax = fig.add_subplot()
        ax.imshow(grid, cmap=cmap, vmin=0, vmax=255, aspect="equal", interpolation="nearest")
        ax.set_title(f"{literal(name)}  {a.shape[0]}×{a.shape[1]}×{a.shape[2]}", fontsize=10)
        ax.axis("off")
        figures[name] = fig
    return figures


def _input_spec(model: Any, size: int | None) -> tuple[int, int, int]:
    shape = tuple(model.inputs[0].shape[1:]) if model.inputs else ()
    if len(shape) != 3:
        raise V.fail("model", "a model taking images (batch, height, width, channels)", getattr(model, "name", model))
    h, w, c = shape
    if size is None:
        return (h or 150), (w or 150), c
    if (h is not None and h != size) or (w is not None and w != size):
        raise V.fail("size", f"None or {h} (model '{model.name}' takes {h}×{w} images)", size)
    return size, size, c


class _Ascent:
    """A compiled gradient ascent maximising one filter per image of a batch."""

    def __init__(self, model: Any, layer: str) -> None:
        import tensorflow as tf

        from . import _layers

        extractor = _layers.tap(model, [layer], include_output=False, name=f"{model.name}_filters")

        spec = model.inputs[0]
        signature = [
            tf.TensorSpec((None, *spec.shape[1:]), spec.dtype),
            tf.TensorSpec((None,), tf.int32),
            tf.TensorSpec((), tf.int32),
            tf.TensorSpec((), spec.dtype),
        ]

        @tf.function(input_signature=signature)
        def ascend(img: Any, filters: Any, steps: Any, step: Any) -> tuple[Any, Any, Any]:
            def objective(x: Any) -> Any:
                a = tf.cast(extractor(x, training=False)[layer], tf.float32)
                # mean activation of each image's own filter, borders excluded
                h, w = tf.shape(a)[1], tf.shape(a)[2]
                bh, bw = tf.minimum(2, (h - 1) // 2), tf.minimum(2, (w - 1) // 2)
                a = a[:, bh : h - bh, bw : w - bw, :]
                a = tf.gather(a, filters, axis=3, batch_dims=1)
                return tf.reduce_mean(a, axis=[1, 2])

            start = objective(img)
            for _ in tf.range(steps):
                with tf.GradientTape() as tape:
                    tape.watch(img)
                    loss = tf.reduce_sum(objective(img))
                g = tape.gradient(loss, img)
                g = g / (tf.sqrt(tf.reduce_mean(tf.square(g), axis=[1, 2, 3], keepdims=True)) + 1e-5)
                img = img + step * g
            return img, start, objective(img)

        self.ascend = ascend


def _gradient_ascent(
    model: Any,
    layer: str,
    filters: Sequence[int],
    *,
    size: int | None,
    steps: int,
    step_size: float,
    seed: int | None,
    value_range: tuple[float, float],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run the ascent; return (images in the model's input space, start and end activations)."""
    import tensorflow as tf

    h, w, c = _input_spec(model, size)
    lo, hi = value_range
    rng = np.random.default_rng(seed)
    noise = rng.uniform(-0.5, 0.5, size=(len(filters), h, w, c)).astype(np.float32)
    start = lo + (hi - lo) * (0.5 + 0.08 * noise)  # a noisy grey image
    ascent = _cached(model, ("ascent", layer), lambda: _Ascent(model, layer))
    img, a0, a1 = ascent.ascend(
        tf.constant(start, dtype=model.inputs[0].dtype),
        tf.constant(np.asarray(filters, np.int32)),
        tf.constant(steps, tf.int32),
        tf.constant(step_size * (hi - lo) / 255.0, model.inputs[0].dtype),
    )
    return np.asarray(img, np.float32), np.asarray(a0), np.asarray(a1)


def _deprocess(x: np.ndarray) -> np.ndarray:
    """A pattern as uint8 RGB: standardised, std 0.1 around 0.5, clipped."""
    x = np.nan_to_num(x.astype(np.float32))
    x = x - x.mean()
    x = x / (x.std() + 1e-5) * 0.1 + 0.5
    return to_rgb((np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8))


def _check_filters(model: Any, layer: str, filters: Sequence[int], argument: str) -> int:
    from . import _layers

    lyr = _layers.get_layer(model, layer)
    if _layers.output_rank(lyr) != 4:
        names = _layers.candidates(model, lambda ly: _layers.output_rank(ly) == 4 and not hasattr(ly, "layers"))
        valid = f"valid names: {_layers.short_list(names)}" if names else f"model '{model.name}' has none"
        raise V.fail("layer", f"a layer with a 4-D output (batch, height, width, filters); {valid}", layer)
    n = int(lyr.output.shape[-1])
    bad = [f for f in filters if not 0 <= f < n]
    if bad:
        raise V.fail(argument, f"filter indices in [0, {n - 1}] (layer '{layer}' has {n} filters)", bad[0] if len(bad) == 1 else bad)
    return n


def filter_pattern(
    model: Any,
    layer: str,
    filter_index: int,
    *,
    size: int | None = None,
    steps: int = 40,
    step_size: float = 1.0,
    seed: int | None = None,
    value_range: tuple[float, float] = (0.0, 255.0),
) -> np.ndarray:
    """The input pattern a convolution filter responds to most, by gradient ascent.

    Starting from a noisy grey image, ``steps`` compiled gradient-ascent steps
    increase the filter's mean activation (borders excluded), each step moving along
    the gradient divided by its root mean square (L2-normalised).

    Parameters
    ----------
    model : keras.Model
        A functional or ``Sequential`` model (nested layers addressable). Not modified.
    layer : str
        Layer name, ``"outer/inner"`` for a nested one; its output must be 4-D.
    filter_index : int
        The channel of ``layer`` to maximise.
    size : int, optional
        Side of the square image. Default: the model's input size, or 150 when the
        model takes any size. A model with a fixed input size accepts only that size.
    steps : int, default 40
        Gradient-ascent steps.
    step_size : float, default 1.0
        Step length in units of 1/255 of ``value_range``.
    seed : int, optional
        Seed of the starting noise (reproducible patterns).
    value_range : (float, float), default (0, 255)
        Range of the model's input values; the start image is mid-grey in it.

    Returns
    -------
    numpy.ndarray
        uint8 RGB ``(size, size, 3)``: the pattern standardised for display.

    Examples
    --------
    >>> import keras
    >>> from visionkit.visualize import filter_pattern
    >>> model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 3, name="conv")])
    >>> img = filter_pattern(model, "conv", 0, steps=5, seed=0)
    >>> img.shape, img.dtype
    ((32, 32, 3), dtype('uint8'))
    """
    filter_index = V.integer("filter_index", filter_index, minimum=0)
    steps, step_size, size = _check_ascent(steps, step_size, size, value_range)
    _check_filters(model, layer, [filter_index], "filter_index")
    img, _, _ = _gradient_ascent(
        model, layer, [filter_index], size=size, steps=steps, step_size=step_size, seed=seed, value_range=value_range
    )
    return _deprocess(img[0])


def _check_ascent(steps: Any, step_size: Any, size: Any, value_range: Any) -> tuple[int, float, int | None]:
    steps = V.integer("steps", steps, minimum=0)
    step_size = V.number("step_size", step_size, minimum=0.0, exclusive_minimum=True)
    size = V.integer("size", size, minimum=8, allow_none=True)
    if (
        not isinstance(value_range, (tuple, list))
        or len(value_range) != 2
        or not all(isinstance(v, (int, float)) for v in value_range)
        or not value_range[0] < value_range[1]
    ):
        raise V.fail("value_range", "a (low, high) pair of numbers with low < high", value_range)
    return steps, step_size, size


def filter_grid(
    model: Any,
    layer: str,
    *,
    filters: int | Sequence[int] = 64,
    size: int | None = 64,
    margin: int = 5,
    steps: int = 40,
    step_size: float = 1.0,
    seed: int | None = 0,
    value_range: tuple[float, float] = (0.0, 255.0),
    batch_size: int = 16,
    progress: bool = True,
) -> np.ndarray:
    """The patterns of many filters of a layer as one mosaic (8×8 for 64 filters).

    The patterns are computed ``batch_size`` at a time in one compiled gradient
    ascent (each image of the batch maximises its own filter).

    Parameters
    ----------
    model : keras.Model
        Not modified.
    layer : str
        Layer name with a 4-D output.
    filters : int or sequence of int, default 64
        The first ``filters`` filters (fewer if the layer has fewer), or explicit indices.
    size : int, optional, default 64
        Side of each pattern; None for the model's input size (as in [`filter_pattern`][visionkit.visualize.filter_pattern]).
    margin : int, default 5
        Black pixels between tiles.
    steps, step_size, seed, value_range
        As in [`filter_pattern`][visionkit.visualize.filter_pattern].
    batch_size : int, default 16
        Patterns optimised together.
    progress : bool, default True
        Show a progress bar.

    Returns
    -------
    numpy.ndarray
        uint8 RGB mosaic with ``ceil(sqrt(n))`` columns.

    Examples
    --------
    >>> import keras
    >>> from visionkit.visualize import filter_grid
    >>> model = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(4, 3, name="conv")])
    >>> grid = filter_grid(model, "conv", filters=4, size=16, steps=3, margin=2, progress=False)
    >>> grid.shape  # 2 x 2 tiles of 16 pixels, 2 pixels apart
    (34, 34, 3)
    """
    from tqdm.auto import tqdm

    steps, step_size, size = _check_ascent(steps, step_size, size, value_range)
    margin = V.integer("margin", margin, minimum=0)
    batch_size = V.integer("batch_size", batch_size, minimum=1)
    if size is not None and model.inputs and tuple(model.inputs[0].shape[1:3]) != (None, None):
        fixed = tuple(model.inputs[0].shape[1:3])
        if fixed != (size, size):
            size = None  # the model takes one size only: use it
    n_filters = _check_filters(model, layer, [], "filters")
    if isinstance(filters, (int, np.integer)) and not isinstance(filters, bool):
        V.integer("filters", filters, minimum=1)
        indices = list(range(min(int(filters), n_filters)))
    elif isinstance(filters, Sequence) and filters and all(isinstance(f, (int, np.integer)) for f in filters):
        indices = [int(f) for f in filters]
        _check_filters(model, layer, indices, "filters")
    else:
        raise V.fail("filters", "a positive int or a non-empty sequence of filter indices", filters)
    tiles: list[np.ndarray] = []
    bar = tqdm(total=len(indices), desc=f"filters of {layer}", unit="filter", disable=not progress)
    for start in range(0, len(indices), batch_size):
        chunk = indices[start : start + batch_size]
        imgs, _, _ = _gradient_ascent(
            model, layer, chunk, size=size, steps=steps, step_size=step_size,
            seed=None if seed is None else seed + start, value_range=value_range,
        )
        tiles.extend(_deprocess(im) for im in imgs)
        bar.update(len(chunk))
    bar.close()
    return _mosaic(tiles, math.ceil(math.sqrt(len(tiles))), margin=margin)


def filter_patterns(
    backbone: str = "vgg16",
    *,
    weights: str | os.PathLike[str] | None = "imagenet",
    layers: Sequence[str] | None = None,
    filters: int | Sequence[int] = 16,
    size: int = 64,
    margin: int = 3,
    steps: int = 40,
    step_size: float = 1.0,
    seed: int | None = 0,
    batch_size: int = 16,
    progress: bool = True,
) -> OrderedDict[str, np.ndarray]:
    """Filter-pattern mosaics of a ``keras.applications`` backbone, layer by layer.

    Builds ``backbone`` (a name of [`visionkit.backbones.PRESETS`][visionkit.backbones.PRESETS]) with
    ``weights`` and runs [`filter_grid`][visionkit.visualize.filter_grid] on each of ``layers`` (default: the
    preset's ``filter_layers``, ``block1_conv1`` ... ``block5_conv1`` for VGG), in the
    backbone's own input space (its preset's ``input_range``).

    Parameters
    ----------
    backbone : str, default "vgg16"
        A backbone name (``"vgg16"``, ``"resnet50"``, ...).
    weights : "imagenet", None or path, default "imagenet"
        ImageNet weights, random weights (None) or a weights file of the base.
    layers : sequence of str, optional
        Layer names; default the preset's filter layers.
    filters, size, margin, steps, step_size, seed, batch_size, progress
        As in [`filter_grid`][visionkit.visualize.filter_grid] (``size`` at least the backbone's ``min_size``).

    Returns
    -------
    collections.OrderedDict of str -> numpy.ndarray
        Layer name -> uint8 RGB mosaic, in the order of ``layers``.

    Examples
    --------
    >>> from visionkit.visualize import filter_patterns
    >>> grids = filter_patterns("vgg16", weights=None, layers=["block1_conv1"], filters=4, size=32,
    ...                         steps=2, progress=False)
    >>> [grid.shape for grid in grids.values()]  # 2 x 2 tiles of 32 pixels, 3 pixels apart
    [(67, 67, 3)]
    """
    from ._backbones import preset

    record = preset(backbone)
    size = V.integer("size", size, minimum=record.min_size)
    if layers is None:
        layers = record.filter_layers
    elif isinstance(layers, str) or not isinstance(layers, Sequence) or not layers:
        raise V.fail("layers", "None or a non-empty sequence of layer names", layers)
    model = record.build(weights=weights, include_top=False, input_shape=(None, None, 3), float32=True)
    return OrderedDict(
        (name, filter_grid(model, name, filters=filters, size=size, margin=margin, steps=steps, step_size=step_size,
                           seed=seed, value_range=record.input_range, batch_size=batch_size, progress=progress))
        for name in layers
    )


def image_grid(
    images: Any,
    *,
    ncols: int | None = None,
    titles: Sequence[str] | None = None,
    tile_size: float = 2.0,
) -> Any:
    """Show images side by side.

    Parameters
    ----------
    images : array-like or sequence of arrays
        ``(N, H, W[, C])`` or a list of ``(H, W[, C])`` images of any sizes; uint8, or
        floats in ``[0, 255]`` or ``[0, 1]`` (other ranges are min-max scaled).
    ncols : int, optional
        Columns; default ``ceil(sqrt(N))``.
    titles : sequence of str, optional
        One title per image, drawn as written (a `$` is not read as mathtext).
    tile_size : float, default 2.0
        Inches per tile.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from visionkit.visualize import image_grid
    >>> fig = image_grid(np.zeros((6, 28, 28), "uint8"), ncols=3, titles=list("abcdef"))
    >>> len(fig.axes), fig.axes[0].get_title()
    (6, 'a')
    """
    from matplotlib.figure import Figure

    items = list(images) if not isinstance(images, np.ndarray) or images.ndim >= 3 else None
    if not items:
        raise V.fail("images", "a non-empty batch or list of images", images if items is None else "[]")
    n = len(items)
    ncols = V.integer("ncols", ncols, minimum=1, allow_none=True) or math.ceil(math.sqrt(n))
    ncols = min(ncols, n)
    if titles is not None and (isinstance(titles, str) or len(titles) != n):
        raise V.fail("titles", f"a sequence of {n} titles (one per image)", titles)
    tile_size = V.number("tile_size", tile_size, minimum=0.0, exclusive_minimum=True)
    rows = math.ceil(n / ncols)
    fig = Figure(figsize=(tile_size * ncols, (tile_size + (0.3 if titles else 0.0)) * rows), layout="constrained")
    axes = fig.subplots(rows, ncols, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, (ax, img) in enumerate(zip(axes.flat, items)):
        ax.imshow(display(img, argument="images"), interpolation="nearest" if max(np.shape(img)[:2]) < 64 else "antialiased")
        if titles is not None:
            ax.set_title(literal(titles[i]), fontsize=9)  # data, drawn literally (no mathtext)
    return fig
