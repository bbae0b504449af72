"""Interpretation of a trained classifier: predictions kept once, views computed from
them (private; public through [`visionkit.interpret`][visionkit.interpret]).

The data are read by the one batch iterator and label rule of ``_common``, the
probabilities come from the probe's compiled ``predictor`` and ``plot_top_losses``
draws the one gallery of ``_figures``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import _validate as V
from .._images import model_images
from ._common import batches, label_ints, markdown
from ._common import class_names as names_of
from ._figures import gallery, label

__all__ = ["ClassificationReport", "Interpretation", "TopLosses", "interpret"]

_EPS = 1e-7


@dataclass(frozen=True, eq=False)
class TopLosses:
    """The examples with the highest loss, as [`Interpretation.top_losses`][visionkit.interpret.Interpretation.top_losses] returns them.

    Attributes
    ----------
    indices : numpy.ndarray
        int64 ``(k,)``: positions of the examples in the data, highest loss first.
    losses : numpy.ndarray
        float64 ``(k,)``: their cross-entropy losses.
    true, predicted : numpy.ndarray
        int64 ``(k,)``: their true and predicted classes.
    confidence : numpy.ndarray
        float64 ``(k,)``: the probability given to the predicted class.
    class_names : tuple of str
        The names of the classes.
    """

    indices: np.ndarray
    losses: np.ndarray
    true: np.ndarray
    predicted: np.ndarray
    confidence: np.ndarray
    class_names: tuple[str, ...] = field(repr=False)

    def __len__(self) -> int:
        return len(self.indices)

    def to_rows(self) -> list[dict[str, Any]]:
        """One JSON-able dict per example: index, loss, true, predicted (names), confidence."""
        return [
            {"index": int(i), "loss": float(loss), "true": self.class_names[t],
             "predicted": self.class_names[p], "confidence": float(c)}
            for i, loss, t, p, c in zip(self.indices, self.losses, self.true, self.predicted, self.confidence)
        ]


@dataclass(frozen=True, eq=False)
class ClassificationReport:
    """Precision, recall, F1 and support per class, as [`Interpretation.classification_report`][visionkit.interpret.Interpretation.classification_report] returns them.

    Attributes
    ----------
    rows : list of dict
        One row per class, then ``"macro avg"`` and ``"weighted avg"``: ``class``
        (str), ``precision``, ``recall``, ``f1`` (floats in ``[0, 1]``; 0 where
        undefined) and ``support`` (int: examples of the class).
    accuracy : float
        The fraction of correct predictions.
    """

    rows: list[dict[str, Any]]
    accuracy: float

    def to_markdown(self) -> str:
        """The table in Markdown, followed by the accuracy."""
        table = markdown(self.rows, ["class", "precision", "recall", "f1", "support"], digits=3)
        return f"{table}\n\naccuracy: {self.accuracy:.3f}"

    def __str__(self) -> str:
        return self.to_markdown()

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict: ``rows`` and ``accuracy``."""
        return {"rows": [dict(r) for r in self.rows], "accuracy": self.accuracy}


@dataclass(frozen=True, eq=False)
class Interpretation:
    """A classifier's predictions on a dataset, and the views computed from them.

    Returned by [`interpret`][visionkit.interpret.interpret].

    Attributes
    ----------
    model : keras.Model
        The model (used again only for heatmaps; never modified).
    probabilities : numpy.ndarray
        float64 ``(N, K)`` class probabilities (``K = 2`` for a one-unit sigmoid head).
    labels : numpy.ndarray
        int64 ``(N,)`` true classes.
    losses : numpy.ndarray
        float64 ``(N,)`` cross-entropy of the true class, ``-log p[true]``.
    class_names : tuple of str
        ``K`` names.
    kept_indices : numpy.ndarray
        int64 ``(M,)``: the examples whose images were kept (the ``keep`` highest
        losses), highest loss first.
    kept_images : numpy.ndarray
        ``(M, H, W, C)`` their images, as the model takes them.
    """

    model: Any = field(repr=False)
    probabilities: np.ndarray = field(repr=False)
    labels: np.ndarray = field(repr=False)
    losses: np.ndarray = field(repr=False)
    class_names: tuple[str, ...]
    kept_indices: np.ndarray = field(repr=False)
    kept_images: np.ndarray = field(repr=False)

    @property
    def predictions(self) -> np.ndarray:
        """int64 ``(N,)``: the predicted classes (the most probable)."""
        return self.probabilities.argmax(axis=1).astype(np.int64)

    @property
    def accuracy(self) -> float:
        """The fraction of correct predictions."""
        return float((self.predictions == self.labels).mean()) if len(self.labels) else float("nan")

    def confusion_matrix(self, *, normalize: str | None = None) -> np.ndarray:
        """Counts of (true, predicted) pairs: rows are true classes, columns predictions.

        Parameters
        ----------
        normalize : {None, "true", "pred", "all"}, default None
            None: int64 counts; ``"true"``: each row sums to 1 (recall on the
            diagonal); ``"pred"``: each column sums to 1 (precision on the diagonal);
            ``"all"``: the whole matrix sums to 1. Empty rows or columns stay 0.

        Returns
        -------
        numpy.ndarray
            ``(K, K)``, int64 counts or float64 fractions.
        """
        V.one_of("normalize", normalize, (None, "true", "pred", "all"))
        k = len(self.class_names)
        cm = np.zeros((k, k), np.int64)
        np.add.at(cm, (self.labels, self.predictions), 1)
        if normalize is None:
            return cm
        axis = {"true": 1, "pred": 0, "all": None}[normalize]
        total = cm.sum(axis=axis, keepdims=axis is not None).astype(np.float64)
        return np.divide(cm, total, out=np.zeros((k, k)), where=total > 0)

    def plot_confusion_matrix(self, *, normalize: str | None = None, cmap: str = "Blues") -> Any:
        """The confusion matrix as a matplotlib ``Figure`` (values written in the cells up to 30 classes).

        Parameters
        ----------
        normalize : {None, "true", "pred", "all"}, default None
            As in ``confusion_matrix``.
        cmap : str, default "Blues"
            A matplotlib colormap name.

        Returns
        -------
        matplotlib.figure.Figure
        """
        from matplotlib.figure import Figure

        cm = self.confusion_matrix(normalize=normalize)
        k = len(self.class_names)
        size = min(12.0, 2.5 + 0.45 * k)
        fig = Figure(figsize=(size + 1.0, size), layout="constrained")
        ax = fig.subplots()
        image = ax.imshow(cm, cmap=cmap, vmin=0)
        fig.colorbar(image, ax=ax, shrink=0.8)
        label(ax, xticks=(range(k), self.class_names, {"rotation": 45 if k > 4 else 0, "ha": "right" if k > 4 else "center"}),
              yticks=(range(k), self.class_names))
        label(ax, xlabel="predicted", ylabel="true",
              title=f"confusion matrix ({len(self.labels)} examples, accuracy {self.accuracy:.3f})")
        if k <= 30:
            high = cm.max() / 2 if cm.size else 0
            for (r, c), v in np.ndenumerate(cm):
                ax.text(c, r, f"{v:.2f}" if normalize else str(v), ha="center", va="center", fontsize=8,
                        color="white" if v > high else "black")
        return fig

    def most_confused(self, *, min_count: int = 1) -> list[tuple[str, str, int]]:
        """The (true, predicted) pairs of different classes, most frequent first.

        Parameters
        ----------
        min_count : int, default 1
            Leave out pairs seen fewer times.

        Returns
        -------
        list of (str, str, int)
            ``(true name, predicted name, count)``, by count then names.
        """
        min_count = V.integer("min_count", min_count, minimum=1)
        cm = self.confusion_matrix()
        pairs = [(self.class_names[t], self.class_names[p], int(cm[t, p]))
                 for t, p in zip(*np.nonzero(cm)) if t != p and cm[t, p] >= min_count]
        return sorted(pairs, key=lambda item: (-item[2], item[0], item[1]))

    def top_losses(self, k: int = 9) -> TopLosses:
        """The ``k`` examples with the highest loss (fewer when there are fewer examples).

        Parameters
        ----------
        k : int, default 9
            How many.

        Returns
        -------
        TopLosses
        """
        k = V.integer("k", k, minimum=1)
        order = np.argsort(-self.losses, kind="stable")[:k]
        preds = self.predictions[order]
        return TopLosses(order.astype(np.int64), self.losses[order], self.labels[order], preds,
                         self.probabilities[order, preds], self.class_names)

    def plot_top_losses(
        self,
        k: int = 9,
        *,
        heatmaps: bool | None = None,
        method: Any = "gradcam",
        layer: str | None = None,
        alpha: float = 0.4,
        ncols: int | None = None,
    ) -> Any:
        """The ``k`` highest-loss images, with the heatmap of the predicted class.

        Each tile is titled with the true and predicted class, the confidence and
        the loss.

        Parameters
        ----------
        k : int, default 9
            How many; at most the ``keep`` images kept by [`interpret`][visionkit.interpret.interpret].
        heatmaps : bool, optional
            Paint heatmaps (default: when the model has a layer with a 4-D output).
        method, layer
            The explanation method and layer, as in [`explain.heatmaps`][visionkit.explain.heatmaps].
        alpha : float, default 0.4
            Heatmap opacity, in ``[0, 1]``.
        ncols : int, optional
            Columns; default ``ceil(sqrt(k))``.

        Returns
        -------
        matplotlib.figure.Figure

        Raises
        ------
        InvalidArgumentError
            ``k`` above the number of kept images (pass a larger ``keep``).
        """
        from ._cam import candidate_layers
        from ._compare import heatmaps as explain_maps

        k = V.integer("k", k, minimum=1)
        alpha = V.number("alpha", alpha, minimum=0.0, maximum=1.0)
        top = self.top_losses(k)
        where = {int(i): j for j, i in enumerate(self.kept_indices)}
        if any(int(i) not in where for i in top.indices):
            raise V.fail("k", f"at most {len(self.kept_indices)} (the images kept; pass interpret(..., keep={k}))", k)
        images = self.kept_images[[where[int(i)] for i in top.indices]]
        if heatmaps is None:
            heatmaps = bool(candidate_layers(self.model))
        maps = None
        if V.boolean("heatmaps", heatmaps):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # all-zero maps are drawn as they are
                maps = explain_maps(self.model, images, method=method, class_index=top.predicted, layer=layer)
        names = self.class_names
        titles = [f"true: {names[t]}\npred: {names[p]} ({c:.0%})\nloss {loss:.2f}"
                  for t, p, c, loss in zip(top.true, top.predicted, top.confidence, top.losses)]
        return gallery(images, maps, titles, alpha=alpha, ncols=ncols,
                       suptitle=f"{len(top)} highest losses of {len(self.labels)} examples")

    def classification_report(self) -> ClassificationReport:
        """Precision, recall, F1 and support per class, with macro and weighted averages.

        Returns
        -------
        ClassificationReport
        """
        cm = self.confusion_matrix().astype(np.float64)
        hits = np.diag(cm)
        predicted, support = cm.sum(axis=0), cm.sum(axis=1)
        precision = np.divide(hits, predicted, out=np.zeros_like(hits), where=predicted > 0)
        recall = np.divide(hits, support, out=np.zeros_like(hits), where=support > 0)
        denom = precision + recall
        f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(hits), where=denom > 0)
        rows = [{"class": name, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                for name, p, r, f, s in zip(self.class_names, precision, recall, f1, support)]
        total = support.sum()
        weights = support / total if total else np.zeros_like(support)
        for avg, w in (("macro avg", np.full(len(support), 1 / len(support))), ("weighted avg", weights)):
            rows.append({"class": avg, "precision": float(precision @ w), "recall": float(recall @ w),
                         "f1": float(f1 @ w), "support": int(total)})
        return ClassificationReport(rows, self.accuracy)


def interpret(
    model: Any,
    data: Any,
    *,
    class_names: Sequence[str] | Mapping[int, str] | None = None,
    batch_size: int = 32,
    keep: int = 25,
) -> Interpretation:
    """Predict once over the data and keep what the views need.

    Parameters
    ----------
    model : keras.Model
        A classifier: softmax, sigmoid (one unit: two classes) or logits head. Not
        modified.
    data : tuple or tf.data.Dataset
        ``(images, labels)`` arrays, or a dataset of ``(images, labels)`` batches
        (read once, in order); images ``(N, H, W, C)`` as the model takes them,
        labels integers ``(N,)``, one-hot rows ``(N, K)`` or ``(N, 1)`` 0/1 floats.
    class_names : sequence or mapping of str, optional
        One name per class. Default: the names the model carries, else
        ``"0"``, ``"1"``, ...
    batch_size : int, default 32
        Images per forward pass (for arrays; a dataset keeps its own batches).
    keep : int, default 25
        How many of the highest-loss images are kept for ``plot_top_losses``.

    Returns
    -------
    Interpretation
        The probabilities, labels and losses, with the views.

    Raises
    ------
    InvalidArgumentError
        ``data`` that is not ``(images, labels)`` of equal length, labels outside the
        model's classes, wrong ``class_names``.

    Examples
    --------
    >>> import numpy as np, keras
    >>> from visionkit.interpret import interpret
    >>> model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
    ...                           keras.layers.Dense(3, activation="softmax")])
    >>> x = np.random.default_rng(0).random((20, 8, 8, 1), dtype="float32")
    >>> y = np.arange(20) % 3
    >>> result = interpret(model, (x, y), class_names=["a", "b", "c"])
    >>> result.confusion_matrix().sum(), result.probabilities.shape
    (np.int64(20), (20, 3))
    >>> [row["class"] for row in result.classification_report().rows][-2:]
    ['macro avg', 'weighted avg']
    """
    batch_size = V.integer("batch_size", batch_size, minimum=1)
    keep = V.integer("keep", keep, minimum=0)
    from ._probe import predictor

    predict = predictor(model, batch_size=batch_size)
    probs, labels, losses = [], [], []
    kept_loss, kept_idx, kept_img = np.zeros(0), np.zeros(0, np.int64), None
    seen = 0
    for xb, yb in batches(data, batch_size):
        xb, _single = model_images(model, xb, argument="data", first=seen)
        pb = predict(xb)
        lb = label_ints(yb, pb.shape[1])
        if len(lb) != len(xb):
            raise V.fail("data", "batches of as many labels as images", f"{len(xb)} images, {len(lb)} labels")
        loss = -np.log(np.maximum(pb[np.arange(len(lb)), lb], _EPS))
        probs.append(pb)
        labels.append(lb)
        losses.append(loss)
        if keep:
            imgs = np.array(xb) if kept_img is None else np.concatenate([kept_img, xb])
            all_loss = np.concatenate([kept_loss, loss])
            best = np.argsort(-all_loss, kind="stable")[:keep]
            kept_loss, kept_img = all_loss[best], imgs[best]
            kept_idx = np.concatenate([kept_idx, seen + np.arange(len(xb))])[best]
        seen += len(xb)
    if not probs:
        raise V.fail("data", "at least one example", data)
    probabilities = np.concatenate(probs)
    names = names_of(class_names, model, probabilities.shape[1])
    if kept_img is None:
        kept_img = np.zeros((0, *xb.shape[1:]))
    return Interpretation(model, probabilities, np.concatenate(labels), np.concatenate(losses), names,
                          kept_idx, kept_img)
