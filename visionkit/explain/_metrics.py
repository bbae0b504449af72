"""Faithfulness metrics of heatmaps: deletion, insertion, ROAD, confidence change
(private; public through [`visionkit.explain`][visionkit.explain]).

Every perturbed image goes through the probe's compiled ``predictor``, batched across
images and steps; the caller's model, images and maps are never modified.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _validate as V
from .._images import model_images
from . import _pixels
from ._common import check_maps, class_array
from ._figures import label, png

__all__ = [
    "ConfidenceChange",
    "CurveResult",
    "ROADResult",
    "classes_of",
    "confidence_change",
    "confidence_of",
    "curves_of",
    "deletion",
    "insertion",
    "road",
    "road_of",
]


def classes_of(class_index: Any, probs: np.ndarray) -> np.ndarray:
    """int64 ``(N,)``: the class of each image, its top class where none is given."""
    chosen = class_array(class_index, len(probs), n_classes=probs.shape[1])
    return np.where(chosen < 0, probs.argmax(axis=1), chosen).astype(np.int64)


def _prepare(model: Any, images: Any, maps: Any, class_index: Any, batch_size: Any) -> tuple[Any, ...]:
    """Images as a float64 batch, maps at their size, the predictor and the classes."""
    batch_size = V.integer("batch_size", batch_size, minimum=1)
    x, _single = model_images(model, images)
    x = x.astype(np.float64)
    m = check_maps(maps, x)
    from ._probe import predictor

    predict = predictor(model, batch_size=batch_size)
    classes = classes_of(class_index, predict(x))
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
        ax.set_ylim(-0.02, 1.02)
        label(ax, xlabel=f"fraction of pixels {verb}", ylabel="class probability",
              title=f"{self.metric}: mean AUC {self.mean_auc:.3f}")
        return fig

    def _repr_png_(self) -> bytes:
        return png(self.figure())


def _curves(model: Any, images: Any, maps: Any, *, metric: str, steps: Any, baseline: Any,
            class_index: Any, batch_size: Any) -> CurveResult:
    steps = V.integer("steps", steps, minimum=1)
    x, m, predict, classes = _prepare(model, images, maps, class_index, batch_size)
    base = _pixels.baseline_images(x, baseline)
    return curves_of(x, m, predict, classes, metric=metric, steps=steps, base=base, batch_size=batch_size)


def curves_of(x: np.ndarray, m: np.ndarray, predict: Callable[[np.ndarray], np.ndarray], classes: np.ndarray,
               *, metric: str, steps: int, base: np.ndarray, batch_size: int) -> CurveResult:
    rank = _pixels.ranks(m)
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
        ax.set_ylim(-0.02, 1.02)
        label(ax, xlabel=f"% of pixels removed ({self.order.upper()})", ylabel="class probability",
              title=f"ROAD {self.order.upper()}: mean {self.mean:.3f}")
        return fig

    def _repr_png_(self) -> bytes:
        return png(self.figure())


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
    _pixels.require_scipy()
    x, m, predict, classes = _prepare(model, images, maps, class_index, batch_size)
    return road_of(x, m, predict, classes, percentiles=p, order=order, noise=noise, seed=seed)


def road_of(x: np.ndarray, m: np.ndarray, predict: Callable[[np.ndarray], np.ndarray], classes: np.ndarray,
             *, percentiles: np.ndarray, order: str, noise: float, seed: int) -> ROADResult:
    p = percentiles
    rank = _pixels.ranks(m if order == "morf" else -m)
    pixels = rank.shape[1]
    rng = np.random.default_rng(seed)
    scores = np.empty((len(x), len(p)))
    for i, image in enumerate(x):
        spread = float(image.max() - image.min())
        batch = np.stack([
            _pixels.impute(image, (rank[i] < round(q / 100 * pixels)).reshape(image.shape[:2]),
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


def confidence_of(x: np.ndarray, m: np.ndarray, predict: Callable[[np.ndarray], np.ndarray],
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
    return confidence_of(x, m, predict, classes)
