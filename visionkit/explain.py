"""Is an explanation faithful? Perturbation metrics for heatmaps, and a method comparison.

A heatmap (Grad-CAM's or any other) claims that some pixels matter more than others
for a class. These metrics test the claim on the model itself, by changing the pixels
in the map's order and watching the class probability:

| metric | what is done to the image | better |
| --- | --- | --- |
| [`deletion`][visionkit.explain.deletion] | the most relevant pixels are replaced by a baseline first, in ``steps`` steps; area under the probability curve | lower |
| [`insertion`][visionkit.explain.insertion] | starting from the baseline (a blurred image), the most relevant pixels are put back first; area under the curve | higher |
| [`road`][visionkit.explain.road] | the most (MoRF) or least (LeRF) relevant ``p%`` of pixels are removed and filled in by noisy linear imputation (Rong et al., 2022) | MoRF lower, LeRF higher |
| [`confidence_change`][visionkit.explain.confidence_change] | the image is multiplied by its map (Chattopadhay et al., 2018): average drop and increase in confidence | drop lower, increase higher |

[`compare_methods`][visionkit.explain.compare_methods] runs one metric over several
methods (CAM variants by name, attribution functions of [`visionkit.gradcam`][visionkit.gradcam]
by name, or your own callables) and a random map, and returns a
[`MethodComparison`][visionkit.explain.MethodComparison] table with a figure.
[`heatmaps`][visionkit.explain.heatmaps] computes one method's maps by name.

Every perturbed image goes through one compiled forward pass, batched across images
and steps; the caller's model, images and maps are never modified. The class
explained is each image's top class unless ``class_index`` says otherwise, and the
probabilities are the model's softmax (or sigmoid) outputs, also for a model that
returns logits.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import _explain_core as core
from . import _validate as V
from .errors import InvalidArgumentError

__all__ = [
    "DEFAULT_METHODS",
    "METRICS",
    "ConfidenceChange",
    "CurveResult",
    "MethodComparison",
    "ROADResult",
    "compare_methods",
    "confidence_change",
    "deletion",
    "heatmaps",
    "insertion",
    "road",
]

#: The metrics [`compare_methods`][visionkit.explain.compare_methods] offers, and which way is better.
METRICS: dict[str, str] = {
    "deletion": "lower",
    "insertion": "higher",
    "road": "lower",
    "road_lerf": "higher",
    "average_drop": "lower",
    "increase_in_confidence": "higher",
}

#: The methods compare_methods uses by default (the CAM variants of visionkit.gradcam).
DEFAULT_METHODS: tuple[str, ...] = ("gradcam", "gradcam++", "layercam", "hirescam")


def _png(figure: Any) -> bytes:
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _prepare(model: Any, images: Any, maps: Any, class_index: Any, batch_size: Any) -> tuple[Any, ...]:
    """Images as a float64 batch, maps at their size, the predictor and the classes."""
    batch_size = V.integer("batch_size", batch_size, minimum=1)
    x, _single = V.model_images(model, images)
    x = x.astype(np.float64)
    m = core.resize_maps(maps, x)
    predict = core.predictor(model, batch_size=batch_size)
    classes = core.class_array(class_index, predict(x))
    return x, m, predict, classes


# ----------------------------------------------------------------------------- deletion / insertion


@dataclass(frozen=True, eq=False)
class CurveResult:
    """A deletion or insertion curve per image, as [`deletion`][visionkit.explain.deletion] returns it.

    Attributes
    ----------
    metric : str
        ``"deletion"`` or ``"insertion"``.
    fractions : numpy.ndarray
        float64 ``(steps + 1,)``: the fraction of pixels removed (deletion) or
        inserted (insertion) at each point, from 0 to 1.
    curves : numpy.ndarray
        float64 ``(N, steps + 1)``: the probability of the explained class at each point.
    auc : numpy.ndarray
        float64 ``(N,)``: the area under each curve (trapezoid rule over
        ``fractions``), in ``[0, 1]``.
    class_index : numpy.ndarray
        int64 ``(N,)``: the class explained in each image.
    """

    metric: str
    fractions: np.ndarray
    curves: np.ndarray
    auc: np.ndarray
    class_index: np.ndarray

    @property
    def mean_auc(self) -> float:
        """The mean area under the curve over the images."""
        return float(self.auc.mean()) if self.auc.size else float("nan")

    def figure(self) -> Any:
        """The curves (thin) and their mean (thick): a matplotlib ``Figure``."""
        from matplotlib.figure import Figure

        fig = Figure(figsize=(4.5, 3.2), layout="constrained")
        ax = fig.subplots()
        for curve in self.curves:
            ax.plot(self.fractions, curve, color="0.7", linewidth=0.8)
        if len(self.curves):
            ax.plot(self.fractions, self.curves.mean(axis=0), color="C0", linewidth=2, label="mean")
        verb = "removed" if self.metric == "deletion" else "inserted"
        ax.set(xlabel=f"fraction of pixels {verb}", ylabel="class probability", ylim=(-0.02, 1.02),
               title=f"{self.metric}: mean AUC {self.mean_auc:.3f}")
        return fig

    def _repr_png_(self) -> bytes:
        return _png(self.figure())


def _curves(model: Any, images: Any, maps: Any, *, metric: str, steps: Any, baseline: Any,
            class_index: Any, batch_size: Any) -> CurveResult:
    steps = V.integer("steps", steps, minimum=1)
    x, m, predict, classes = _prepare(model, images, maps, class_index, batch_size)
    base = core.baseline_images(x, baseline)
    return _curves_of(x, m, predict, classes, metric=metric, steps=steps, base=base, batch_size=batch_size)


def _curves_of(x: np.ndarray, m: np.ndarray, predict: Callable[[np.ndarray], np.ndarray], classes: np.ndarray,
               *, metric: str, steps: int, base: np.ndarray, batch_size: int) -> CurveResult:
    rank = core.ranks(m)
    n, pixels = rank.shape
    counts = np.rint(np.linspace(0, pixels, steps + 1)).astype(np.int64)
    total = n * (steps + 1)
    out = np.empty(total)
    chunk = max(1, int(batch_size))
    for start in range(0, total, chunk):
        i, k = np.divmod(np.arange(start, min(start + chunk, total)), steps + 1)
        changed = (rank[i] < counts[k][:, None]).reshape(len(i), *x.shape[1:3], 1)
        if metric == "deletion":
            batch = np.where(changed, base[i], x[i])
        else:
            batch = np.where(changed, x[i], base[i])
        out[start : start + len(i)] = predict(batch)[np.arange(len(i)), classes[i]]
    curves = out.reshape(n, steps + 1)
    fractions = counts / pixels
    auc = ((curves[:, 1:] + curves[:, :-1]) * np.diff(fractions)).sum(axis=1) / 2.0
    return CurveResult(metric, fractions, curves, auc, classes)


def deletion(
    model: Any,
    images: Any,
    maps: Any,
    *,
    steps: int = 20,
    baseline: Any = "zero",
    class_index: int | Sequence[int] | None = None,
    batch_size: int = 32,
) -> CurveResult:
    """Deletion curve: remove the most relevant pixels first; the probability should fall fast.

    At step ``k`` of ``steps`` the ``round(k / steps * H * W)`` most relevant pixels
    (all channels) are replaced by the baseline and the probability of the explained
    class is recorded (Petsiuk et al., 2018). A faithful map gives a **low** area
    under the curve.

    Parameters
    ----------
    model : keras.Model
        A classifier (softmax, sigmoid or logits head). Not modified.
    images : array-like
        One image ``(H, W, C)`` or a batch ``(N, H, W, C)`` as the model takes them.
    maps : array-like
        ``(N, h, w)`` heatmaps, one per image (higher is more relevant); resized
        (bilinear) to the images. Ties are broken in a fixed pseudo-random order.
    steps : int, default 20
        Number of steps between the intact and the fully replaced image.
    baseline : str, float or array-like, default "zero"
        What removed pixels become: ``"zero"``, ``"blur"`` (a Gaussian blur of the
        image, sigma ``max(H, W) / 8`` pixels), ``"mean"`` (the image's mean colour),
        a number, or an array broadcastable to the images.
    class_index : int, sequence of int or None, default None
        The class to follow: each image's top class, one for all, or one per image.
    batch_size : int, default 32
        Perturbed images per forward pass.

    Returns
    -------
    CurveResult
        ``curves`` ``(N, steps + 1)``, ``auc`` ``(N,)`` and ``figure()``.

    Raises
    ------
    InvalidArgumentError
        A bad image or map shape, ``steps``, ``baseline`` or ``class_index``.

    Examples
    --------
    >>> import numpy as np, keras
    >>> from visionkit.explain import deletion
    >>> model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
    ...                           keras.layers.Dense(2, activation="softmax")])
    >>> x = np.random.default_rng(0).random((3, 8, 8, 1))
    >>> result = deletion(model, x, np.random.default_rng(1).random((3, 8, 8)), steps=4)
    >>> result.curves.shape, result.auc.shape, result.fractions.tolist()
    ((3, 5), (3,), [0.0, 0.25, 0.5, 0.75, 1.0])
    """
    return _curves(model, images, maps, metric="deletion", steps=steps, baseline=baseline,
                   class_index=class_index, batch_size=batch_size)


def insertion(
    model: Any,
    images: Any,
    maps: Any,
    *,
    steps: int = 20,
    baseline: Any = "blur",
    class_index: int | Sequence[int] | None = None,
    batch_size: int = 32,
) -> CurveResult:
    """Insertion curve: reveal the most relevant pixels first; the probability should rise fast.

    Starting from the baseline (a blurred copy by default), the ``round(k / steps *
    H * W)`` most relevant pixels of the image are put back at step ``k`` and the
    probability of the explained class is recorded (Petsiuk et al., 2018). A
    faithful map gives a **high** area under the curve.

    Parameters
    ----------
    model, images, maps, steps, class_index, batch_size
        As in [`deletion`][visionkit.explain.deletion].
    baseline : str, float or array-like, default "blur"
        The image the pixels are revealed on, as in [`deletion`][visionkit.explain.deletion].

    Returns
    -------
    CurveResult
        ``curves`` ``(N, steps + 1)``, ``auc`` ``(N,)`` and ``figure()``.

    Raises
    ------
    InvalidArgumentError
        A bad image or map shape, ``steps``, ``baseline`` or ``class_index``.

    Examples
    --------
    >>> import numpy as np, keras
    >>> from visionkit.explain import insertion
    >>> model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
    ...                           keras.layers.Dense(2, activation="softmax")])
    >>> x = np.random.default_rng(0).random((2, 8, 8, 1))
    >>> result = insertion(model, x, np.ones((2, 8, 8)), steps=2, class_index=1)
    >>> bool(np.allclose(result.curves[:, -1], model.predict(x, verbose=0)[:, 1], atol=1e-5))
    True
    """
    return _curves(model, images, maps, metric="insertion", steps=steps, baseline=baseline,
                   class_index=class_index, batch_size=batch_size)


# ----------------------------------------------------------------------------- ROAD


@dataclass(frozen=True, eq=False)
class ROADResult:
    """The probabilities after ROAD removal, as [`road`][visionkit.explain.road] returns them.

    Attributes
    ----------
    order : str
        ``"morf"`` (most relevant removed first: lower is better) or ``"lerf"``
        (least relevant first: higher is better).
    percentiles : numpy.ndarray
        float64 ``(P,)``: the percentages of pixels removed.
    scores : numpy.ndarray
        float64 ``(N, P)``: the probability of the explained class after removing
        each percentage.
    class_index : numpy.ndarray
        int64 ``(N,)``: the class explained in each image.
    """

    order: str
    percentiles: np.ndarray
    scores: np.ndarray
    class_index: np.ndarray

    @property
    def mean(self) -> float:
        """The mean probability over images and percentiles."""
        return float(self.scores.mean()) if self.scores.size else float("nan")

    def figure(self) -> Any:
        """The mean probability per percentile: a matplotlib ``Figure``."""
        from matplotlib.figure import Figure

        fig = Figure(figsize=(4.5, 3.2), layout="constrained")
        ax = fig.subplots()
        ax.plot(self.percentiles, self.scores.mean(axis=0), marker="o")
        ax.set(xlabel=f"% of pixels removed ({self.order.upper()})", ylabel="class probability",
               ylim=(-0.02, 1.02), title=f"ROAD {self.order.upper()}: mean {self.mean:.3f}")
        return fig

    def _repr_png_(self) -> bytes:
        return _png(self.figure())


def _percentiles(percentiles: Any) -> np.ndarray:
    allowed = "a non-empty sequence of numbers in (0, 100)"
    try:
        p = np.asarray(percentiles, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise V.fail("percentiles", allowed, percentiles) from None
    if isinstance(percentiles, str) or not p.size or not np.all((p > 0) & (p < 100)):
        raise V.fail("percentiles", allowed, percentiles)
    return p


def road(
    model: Any,
    images: Any,
    maps: Any,
    *,
    percentiles: Sequence[float] = (10, 20, 30, 40, 50, 60, 70, 80, 90),
    order: str = "morf",
    noise: float = 0.01,
    class_index: int | Sequence[int] | None = None,
    seed: int = 0,
    batch_size: int = 32,
) -> ROADResult:
    """ROAD: remove pixels by relevance, fill them in without a give-away, measure the class.

    Remove And Debias (Rong et al., 2022): for each percentage ``p`` the ``p%`` most
    (``"morf"``) or least (``"lerf"``) relevant pixels are removed and imputed by
    noisy linear imputation: each removed pixel becomes the weighted mean of its 8
    neighbours (weights 1/6 for edges, 1/12 for corners), all removed pixels solved
    together as one sparse linear system, plus Gaussian noise. Unlike a constant fill
    the imputed image does not reveal the removed shape, so the drop measures the
    information removed. With MoRF a faithful map gives **low** probabilities, with
    LeRF **high** ones.

    Parameters
    ----------
    model, images, maps, class_index, batch_size
        As in [`deletion`][visionkit.explain.deletion].
    percentiles : sequence of float, default (10, 20, ..., 90)
        Percentages of pixels removed, each in ``(0, 100)``.
    order : {"morf", "lerf"}, default "morf"
        Most relevant first, or least relevant first.
    noise : float, default 0.01
        Standard deviation of the noise added to imputed pixels, as a fraction of each
        image's value range (max - min); ``0`` for none.
    seed : int, default 0
        Seed of the noise.

    Returns
    -------
    ROADResult
        ``scores`` ``(N, P)``, ``mean`` and ``figure()``.

    Raises
    ------
    MissingDependencyError
        SciPy is not installed (``pip install scipy``).
    InvalidArgumentError
        A bad image or map shape, ``percentiles``, ``order``, ``noise`` or ``class_index``.

    Examples
    --------
    >>> import numpy as np, keras
    >>> from visionkit.explain import road
    >>> model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
    ...                           keras.layers.Dense(3, activation="softmax")])
    >>> x = np.random.default_rng(0).random((2, 8, 8, 3))
    >>> result = road(model, x, np.random.default_rng(1).random((2, 8, 8)), percentiles=[25, 50])
    >>> result.scores.shape, result.percentiles.tolist()
    ((2, 2), [25.0, 50.0])
    """
    p = _percentiles(percentiles)
    V.one_of("order", order, ("morf", "lerf"))
    noise = V.number("noise", noise, minimum=0.0)
    seed = V.integer("seed", seed, minimum=0)
    core.require_scipy()
    x, m, predict, classes = _prepare(model, images, maps, class_index, batch_size)
    return _road_of(x, m, predict, classes, percentiles=p, order=order, noise=noise, seed=seed)


def _road_of(x: np.ndarray, m: np.ndarray, predict: Callable[[np.ndarray], np.ndarray], classes: np.ndarray,
             *, percentiles: np.ndarray, order: str, noise: float, seed: int) -> ROADResult:
    p = percentiles
    rank = core.ranks(m if order == "morf" else -m)
    pixels = rank.shape[1]
    rng = np.random.default_rng(seed)
    scores = np.empty((len(x), len(p)))
    for i, image in enumerate(x):
        spread = float(image.max() - image.min())
        batch = np.stack([
            core.impute(image, (rank[i] < round(q / 100 * pixels)).reshape(image.shape[:2]),
                        noise=noise * spread, rng=rng)
            for q in p
        ])
        scores[i] = predict(batch)[:, classes[i]]
    return ROADResult(order, p, scores, classes)


# ----------------------------------------------------------------------------- confidence


@dataclass(frozen=True, eq=False)
class ConfidenceChange:
    """What multiplying an image by its map does to the class probability.

    Returned by [`confidence_change`][visionkit.explain.confidence_change]
    (Chattopadhay et al., 2018).

    Attributes
    ----------
    original : numpy.ndarray
        float64 ``(N,)``: the probability ``y`` of the explained class on the image.
    explained : numpy.ndarray
        float64 ``(N,)``: its probability ``o`` on ``image * map``.
    drop : numpy.ndarray
        float64 ``(N,)``: ``max(0, y - o) / y``, in ``[0, 1]``.
    class_index : numpy.ndarray
        int64 ``(N,)``: the class explained in each image.
    """

    original: np.ndarray
    explained: np.ndarray
    drop: np.ndarray
    class_index: np.ndarray

    @property
    def average_drop(self) -> float:
        """The mean of ``drop`` (lower is better; the paper reports it in %)."""
        return float(self.drop.mean()) if self.drop.size else float("nan")

    @property
    def increase_in_confidence(self) -> float:
        """The fraction of images whose probability rose (``o > y``; higher is better)."""
        return float((self.explained > self.original).mean()) if self.drop.size else float("nan")


def _confidence_of(x: np.ndarray, m: np.ndarray, predict: Callable[[np.ndarray], np.ndarray],
                   classes: np.ndarray) -> ConfidenceChange:
    rows = np.arange(len(x))
    y = predict(x)[rows, classes]
    o = predict(x * np.clip(m, 0.0, 1.0)[..., None])[rows, classes]
    drop = np.maximum(0.0, y - o) / np.maximum(y, 1e-12)
    return ConfidenceChange(y, o, np.clip(drop, 0.0, 1.0), classes)


def confidence_change(
    model: Any,
    images: Any,
    maps: Any,
    *,
    class_index: int | Sequence[int] | None = None,
    batch_size: int = 32,
) -> ConfidenceChange:
    """Average drop and increase in confidence when the image is multiplied by its map.

    The "explanation map" ``image * map`` keeps what the map calls relevant and darkens
    the rest (Chattopadhay et al., 2018). Average drop is the mean of ``max(0, y - o) /
    y`` (``y``: the class probability on the image, ``o``: on the explanation map;
    lower is better), increase in confidence the fraction of images with ``o > y``
    (higher is better).

    Parameters
    ----------
    model, images, class_index, batch_size
        As in [`deletion`][visionkit.explain.deletion].
    maps : array-like
        ``(N, h, w)`` heatmaps in ``[0, 1]`` (values outside are clipped), resized to
        the images. The images are multiplied as the model takes them, so "dark" is
        the value 0 of the model's input.

    Returns
    -------
    ConfidenceChange
        ``original``, ``explained``, ``drop`` per image; ``average_drop`` and
        ``increase_in_confidence``.

    Raises
    ------
    InvalidArgumentError
        A bad image or map shape, or ``class_index``.

    Examples
    --------
    >>> import numpy as np, keras
    >>> from visionkit.explain import confidence_change
    >>> model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
    ...                           keras.layers.Dense(2, activation="softmax")])
    >>> x = np.random.default_rng(0).random((4, 8, 8, 1))
    >>> change = confidence_change(model, x, np.ones((4, 8, 8)))  # keeping everything changes nothing
    >>> change.average_drop, change.increase_in_confidence
    (0.0, 0.0)
    """
    x, m, predict, classes = _prepare(model, images, maps, class_index, batch_size)
    return _confidence_of(x, m, predict, classes)


# ----------------------------------------------------------------------------- methods


def _takes_images(fn: Any) -> bool:
    """True for ``f(model, images, ..., class_index=...)``: an attribution function."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    names = list(params)
    return len(names) >= 2 and names[0] == "model" and "class_index" in params


def _attributions() -> dict[str, Callable[..., Any]]:
    """The attribution functions of visionkit.gradcam, looked up now (by name)."""
    from . import gradcam

    out = {}
    for name in getattr(gradcam, "__all__", ()):
        fn = getattr(gradcam, name, None)
        if name != "grad_cam" and callable(fn) and not isinstance(fn, type) and _takes_images(fn):
            out[name] = fn
    return out


def _method_names() -> list[str]:
    from . import gradcam

    return [*gradcam.METHODS, *_attributions()]


def heatmaps(
    model: Any,
    images: Any,
    *,
    method: str | Callable[..., Any] = "gradcam",
    class_index: int | Sequence[int] | None = None,
    layer: str | None = None,
    batch_size: int = 32,
) -> np.ndarray:
    """One explanation method's heatmaps, the method given by name or as a function.

    Parameters
    ----------
    model : keras.Model
        A classifier. Not modified.
    images : array-like
        One image ``(H, W, C)`` or a batch ``(N, H, W, C)`` as the model takes them.
    method : str or callable, default "gradcam"
        A CAM variant of [`grad_cam`][visionkit.gradcam.grad_cam] (a key of
        [`METHODS`][visionkit.gradcam.METHODS]), the name of an attribution function of
        [`visionkit.gradcam`][visionkit.gradcam] (one taking ``(model, images, *,
        class_index=...)``), or any callable ``f(model, images, class_index=...)``
        returning ``(N, H, W)`` maps. Names are looked up when called.
    class_index : int, sequence of int or None, default None
        The class to explain: each image's top class, one for all, or one per image.
    layer : str, optional
        The layer of a CAM method (also passed to attribution functions taking one).
    batch_size : int, default 32
        Images per step of a CAM method.

    Returns
    -------
    numpy.ndarray
        float32 ``(N, H, W)`` maps at the images' size (what the method returns,
        resized bilinearly when it is smaller).

    Raises
    ------
    InvalidArgumentError
        An unknown method name (the message lists the known ones), or a method that
        returns maps of the wrong shape.

    Examples
    --------
    >>> import numpy as np, keras
    >>> from visionkit.explain import heatmaps
    >>> model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(4, 3),
    ...     keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2, activation="softmax")])
    >>> x = np.random.default_rng(0).random((2, 16, 16, 3), dtype="float32")
    >>> heatmaps(model, x, method="gradcam++").shape
    (2, 16, 16)
    >>> heatmaps(model, x, method=lambda model, images, class_index=None: np.ones((2, 4, 4))).shape
    (2, 16, 16)
    """
    x, _single = V.model_images(model, images)
    name, fn = _method(method)
    if fn is None:
        from .gradcam import grad_cam

        maps = grad_cam(model, x, class_index=class_index, layer=layer, method=name, batch_size=batch_size)
    else:
        kwargs: dict[str, Any] = {"class_index": class_index}
        if layer is not None and _accepts(fn, "layer"):
            kwargs["layer"] = layer
        maps = fn(model, x, **kwargs)
    try:
        return core.resize_maps(maps, x).astype(np.float32)
    except InvalidArgumentError:
        raise V.fail("method", f"a method returning {len(x)} maps (N, H, W); '{name}' returned an array "
                     f"of shape {np.shape(maps)}", method) from None


def _accepts(fn: Any, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _method(method: Any) -> tuple[str, Callable[..., Any] | None]:
    """``(name, function)``; the function is None for a CAM variant of grad_cam."""
    from . import gradcam

    if callable(method) and not isinstance(method, str):
        return getattr(method, "__name__", type(method).__name__), method
    if isinstance(method, str):
        if method in gradcam.METHODS:
            return method, None
        found = _attributions().get(method)
        if found is not None:
            return method, found
    raise V.fail("method", f"a callable or one of {_method_names()}", method)


# ----------------------------------------------------------------------------- comparison


@dataclass(frozen=True, eq=False)
class MethodComparison:
    """Several explanation methods scored by one faithfulness metric.

    Returned by [`compare_methods`][visionkit.explain.compare_methods]; shows as a
    Markdown table in a notebook and as text with ``print``.

    Attributes
    ----------
    metric : str
        The metric, a key of [`METRICS`][visionkit.explain.METRICS].
    better : str
        ``"lower"`` or ``"higher"``: which scores are better for this metric.
    rows : list of dict
        One row per method, best first: ``method`` (str), ``score`` (the mean over the
        images), ``std`` (their standard deviation), ``rank`` (1 = most faithful) and
        ``images`` (their number).
    scores : dict of str to numpy.ndarray
        Each method's float64 ``(N,)`` per-image scores.
    maps : dict of str to numpy.ndarray
        Each method's float32 ``(N, H, W)`` maps.
    images : numpy.ndarray
        The ``(N, H, W, C)`` images, as the model takes them.
    class_index : numpy.ndarray
        int64 ``(N,)``: the class explained in each image.
    """

    metric: str
    better: str
    rows: list[dict[str, Any]]
    scores: dict[str, np.ndarray] = field(repr=False)
    maps: dict[str, np.ndarray] = field(repr=False)
    images: np.ndarray = field(repr=False)
    class_index: np.ndarray = field(repr=False)

    def to_markdown(self) -> str:
        """The table in Markdown, with a line saying which way is better."""
        n = len(self.class_index)
        head = f"**{self.metric}** over {n} image{'s' if n != 1 else ''} ({self.better} is better)\n\n"
        return head + core.markdown(self.rows, ["rank", "method", "score", "std"])

    def __str__(self) -> str:
        return self.to_markdown()

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able summary: metric, better, rows and the per-image scores."""
        return {
            "metric": self.metric,
            "better": self.better,
            "rows": [dict(r) for r in self.rows],
            "scores": {k: v.tolist() for k, v in self.scores.items()},
            "class_index": self.class_index.tolist(),
        }

    def figure(self, *, n_images: int = 4, alpha: float = 0.5) -> Any:
        """The maps side by side (one row per method, best first) and the scores.

        Parameters
        ----------
        n_images : int, default 4
            The first images shown (at most ``N``).
        alpha : float, default 0.5
            Heatmap opacity, in ``[0, 1]``.

        Returns
        -------
        matplotlib.figure.Figure
        """
        from matplotlib.figure import Figure

        from .gradcam import overlay

        n = min(V.integer("n_images", n_images, minimum=1), len(self.images))
        alpha = V.number("alpha", alpha, minimum=0.0, maximum=1.0)
        names = [r["method"] for r in self.rows]
        fig = Figure(figsize=(1.8 * n + 3.2, 1.8 * len(names) + 0.4), layout="constrained")
        grid = fig.add_gridspec(len(names), n + 2)
        for r, name in enumerate(names):
            for c in range(n):
                ax = fig.add_subplot(grid[r, c])
                ax.imshow(overlay(self.images[c], self.maps[name][c], alpha=alpha))
                ax.set_xticks([])
                ax.set_yticks([])
                if c == 0:
                    ax.set_ylabel(name)
        bars = fig.add_subplot(grid[:, n:])
        bars.barh(range(len(names)), [r["score"] for r in self.rows],
                  xerr=[r["std"] for r in self.rows], color="C0", alpha=0.8)
        bars.set_yticks(range(len(names)), names)
        bars.invert_yaxis()
        bars.set_xlabel(f"{self.metric} ({self.better} is better)")
        return fig


def _named_methods(methods: Any) -> list[tuple[str, Any]]:
    allowed = "a non-empty sequence of method names or callables, or a mapping of names to them"
    if isinstance(methods, Mapping):
        items = [(str(k), v) for k, v in methods.items()]
    elif isinstance(methods, (str, bytes)) or not isinstance(methods, Sequence):
        raise V.fail("methods", allowed, methods)
    else:
        items = [(m if isinstance(m, str) else getattr(m, "__name__", repr(m)), m) for m in methods]
    if not items:
        raise V.fail("methods", allowed, methods)
    for _name, m in items:
        if not callable(m) and not isinstance(m, str):
            raise V.fail("methods", allowed, methods)
        if isinstance(m, str):
            _method(m)  # an unknown name fails here, before any work
    names = [n for n, _ in items]
    if len(set(names)) != len(names) or "random" in names:
        raise V.fail("methods", "methods with distinct names, none called 'random'", names)
    return items


def _score(metric: str, x: np.ndarray, m: np.ndarray, predict: Callable[[np.ndarray], np.ndarray],
           classes: np.ndarray, *, steps: int, batch_size: int, seed: int) -> np.ndarray:
    """Per-image scores of one metric."""
    if metric in ("deletion", "insertion"):
        base = core.baseline_images(x, "zero" if metric == "deletion" else "blur")
        return _curves_of(x, m, predict, classes, metric=metric, steps=steps, base=base, batch_size=batch_size).auc
    if metric in ("road", "road_lerf"):
        p = np.arange(10.0, 100.0, 10.0)
        order = "morf" if metric == "road" else "lerf"
        return _road_of(x, m, predict, classes, percentiles=p, order=order, noise=0.01, seed=seed).scores.mean(axis=1)
    change = _confidence_of(x, m, predict, classes)
    return change.drop if metric == "average_drop" else (change.explained > change.original).astype(np.float64)


def _mean(scores: np.ndarray) -> float:
    """The mean score, NaN (without a warning) for no images."""
    return float(scores.mean()) if scores.size else float("nan")


def compare_methods(
    model: Any,
    images: Any,
    *,
    methods: Sequence[str | Callable[..., Any]] | Mapping[str, Any] = DEFAULT_METHODS,
    metric: str = "deletion",
    class_index: int | Sequence[int] | None = None,
    layer: str | None = None,
    random_baseline: bool = True,
    steps: int = 20,
    seed: int = 0,
    batch_size: int = 32,
) -> MethodComparison:
    """Which explanation is most faithful to this model? One metric over several methods.

    Each method explains the same class of each image (its top class unless
    ``class_index`` says otherwise); its maps are scored by ``metric`` and the methods
    ranked. A uniformly random map is scored too (``random_baseline``): a method that
    does not beat it tells you little about this model.

    Parameters
    ----------
    model : keras.Model
        A classifier. Not modified.
    images : array-like
        One image ``(H, W, C)`` or a batch ``(N, H, W, C)`` as the model takes them.
    methods : sequence or mapping, default ("gradcam", "gradcam++", "layercam", "hirescam")
        Method names or callables as in [`heatmaps`][visionkit.explain.heatmaps]; a
        mapping names its callables.
    metric : str, default "deletion"
        A key of [`METRICS`][visionkit.explain.METRICS]: ``"deletion"`` (AUC, zero
        baseline), ``"insertion"`` (AUC, blurred baseline), ``"road"`` (mean MoRF
        probability over 10%, ..., 90%), ``"road_lerf"``, ``"average_drop"``, or
        ``"increase_in_confidence"`` (per image 1 if the confidence rose, else 0).
    class_index : int, sequence of int or None, default None
        The class explained: each image's top class, one for all, or one per image.
    layer : str, optional
        The layer of the CAM methods.
    random_baseline : bool, default True
        Also score a uniformly random map (row ``"random"``).
    steps : int, default 20
        Steps of the deletion and insertion curves.
    seed : int, default 0
        Seed of the random map and of ROAD's noise.
    batch_size : int, default 32
        Images per forward pass.

    Returns
    -------
    MethodComparison
        ``rows`` (best first), ``to_markdown()``, ``figure()``, the maps and
        per-image scores.

    Raises
    ------
    InvalidArgumentError
        An unknown metric or method name, methods with the same name, a bad image
        shape or ``class_index``.
    MissingDependencyError
        A ROAD metric without SciPy.

    Examples
    --------
    >>> import numpy as np, keras
    >>> from visionkit.explain import compare_methods
    >>> model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(4, 3),
    ...     keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2, activation="softmax")])
    >>> x = np.random.default_rng(0).random((2, 16, 16, 3), dtype="float32")
    >>> table = compare_methods(model, x, methods=["gradcam", "layercam"], steps=4)
    >>> sorted(r["method"] for r in table.rows), table.better
    (['gradcam', 'layercam', 'random'], 'lower')
    >>> print(table.to_markdown().splitlines()[2])
    | rank | method | score | std |
    """
    V.one_of("metric", metric, METRICS)
    named = _named_methods(methods)
    random_baseline = V.boolean("random_baseline", random_baseline)
    steps = V.integer("steps", steps, minimum=1)
    seed = V.integer("seed", seed, minimum=0)
    batch_size = V.integer("batch_size", batch_size, minimum=1)
    if metric.startswith("road"):
        core.require_scipy()
    x, _single = V.model_images(model, images)
    x = x.astype(np.float64)
    predict = core.predictor(model, batch_size=batch_size)
    classes = core.class_array(class_index, predict(x))
    maps = {name: heatmaps(model, x, method=m, class_index=classes, layer=layer, batch_size=batch_size)
            for name, m in named}
    if random_baseline:
        maps["random"] = np.random.default_rng(seed).random((len(x), *x.shape[1:3]), dtype=np.float32)
    scores = {name: _score(metric, x, m.astype(np.float64), predict, classes, steps=steps,
                           batch_size=batch_size, seed=seed) for name, m in maps.items()}
    sign = 1.0 if METRICS[metric] == "lower" else -1.0
    order = sorted(scores, key=lambda k: (sign * _mean(scores[k]), k))
    rows = [{"rank": i + 1, "method": k, "score": _mean(scores[k]), "std": float(scores[k].std()) if len(x) else float("nan"),
             "images": len(x)} for i, k in enumerate(order)]
    return MethodComparison(metric, METRICS[metric], rows, scores, maps, x, classes)
