"""Explanation methods by name, and their comparison by one faithfulness metric
(private; public through [`visionkit.explain`][visionkit.explain]).

``heatmaps`` computes one method's maps: a CAM variant of ``_cams.TABLE``, an
attribution function of ``_attribution`` by name, or any callable;
``compare_methods`` scores several methods and a random map with one metric of ``_metrics``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import _validate as V
from .._images import model_images
from ..errors import InvalidArgumentError
from . import _attribution, _pixels
from ._cams import METHODS
from ._common import check_maps, markdown
from ._figures import label, overlay
from ._metrics import classes_of, confidence_of, curves_of, road_of

__all__ = ["DEFAULT_METHODS", "METRICS", "MethodComparison", "compare_methods", "heatmaps"]

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


#: The attribution functions by name (each takes ``(model, images, *, class_index=...)``). A
#: function of the caller's own is passed as a callable or in a mapping, never found by name.
_ATTRIBUTIONS: dict[str, Callable[..., Any]] = {name: getattr(_attribution, name) for name in _attribution.__all__}


def _method_names() -> list[str]:
    return [*METHODS, *_ATTRIBUTIONS]


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
        returning ``(N, H, W)`` maps.
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
    x, _single = model_images(model, images)
    name, fn = _method(method)
    if fn is None:
        from ._cam import grad_cam

        maps = grad_cam(model, x, class_index=class_index, layer=layer, method=name, batch_size=batch_size)
    else:
        kwargs: dict[str, Any] = {"class_index": class_index}
        if layer is not None and _accepts(fn, "layer"):
            kwargs["layer"] = layer
        maps = fn(model, x, **kwargs)
    try:
        return check_maps(maps, x).astype(np.float32)
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
    if callable(method) and not isinstance(method, str):
        return getattr(method, "__name__", type(method).__name__), method
    if isinstance(method, str):
        if method in METHODS:
            return method, None
        found = _ATTRIBUTIONS.get(method)
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
        return head + markdown(self.rows, ["rank", "method", "score", "std"])

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
                    label(ax, ylabel=name)
        bars = fig.add_subplot(grid[:, n:])
        bars.barh(range(len(names)), [r["score"] for r in self.rows],
                  xerr=[r["std"] for r in self.rows], color="C0", alpha=0.8)
        label(bars, yticks=(range(len(names)), names))
        bars.invert_yaxis()
        label(bars, xlabel=f"{self.metric} ({self.better} is better)")
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
        base = _pixels.baseline_images(x, "zero" if metric == "deletion" else "blur")
        return curves_of(x, m, predict, classes, metric=metric, steps=steps, base=base, batch_size=batch_size).auc
    if metric in ("road", "road_lerf"):
        p = np.arange(10.0, 100.0, 10.0)
        order = "morf" if metric == "road" else "lerf"
        return road_of(x, m, predict, classes, percentiles=p, order=order, noise=0.01, seed=seed).scores.mean(axis=1)
    change = confidence_of(x, m, predict, classes)
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
        _pixels.require_scipy()
    x, _single = model_images(model, images)
    x = x.astype(np.float64)
    from ._probe import predictor

    predict = predictor(model, batch_size=batch_size)
    classes = classes_of(class_index, predict(x))
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
