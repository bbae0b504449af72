"""The gallery of a model's most confidently wrong predictions, with their heatmaps
(private; public through [`visionkit.gradcam`][visionkit.gradcam]).

Drawn by the one gallery of ``_figures`` (which ``Interpretation.plot_top_losses``
draws too); the data are read by the one batch iterator and label rule of ``_common``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _validate as V
from .._images import model_images
from ._cam import grad_cam, resolve_layer
from ._cams import METHODS
from ._common import batches, label_ints
from ._common import class_names as names_of
from ._figures import gallery, png

__all__ = ["ErrorGallery", "explain_errors"]


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
        return png(self.figure)


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
    from matplotlib.figure import Figure

    from ._probe import predictor

    k = V.integer("k", k, minimum=1)
    ncols = V.integer("ncols", ncols, minimum=1, allow_none=True)
    V.one_of("method", method, METHODS)
    V.one_output(model)
    layer = resolve_layer(model, layer)
    predict = predictor(model, batch_size=256)
    # keep the k most confident errors while streaming through the data
    best: list[tuple[float, int, np.ndarray, int, int]] = []
    seen, n_classes = 0, 0
    for xb, yb in batches(data, 256):
        xb_model, _ = model_images(model, xb, argument="data", first=seen) if xb.ndim else (xb, False)
        probs = predict(xb_model)  # softmax / sigmoid also for a logits head; one unit: [1 - p, p]
        n_classes = probs.shape[1]
        pred, conf = probs.argmax(axis=1), probs.max(axis=1)
        true = label_ints(yb, n_classes)
        for i in np.flatnonzero(pred != true):
            best.append((float(conf[i]), seen + int(i), xb_model[i], int(true[i]), int(pred[i])))
        best.sort(key=lambda t: -t[0])
        del best[k:]
        seen += len(xb_model)

    if not best:
        fig = Figure(figsize=(4, 1.5))
        fig.text(0.5, 0.5, f"No errors on {seen} images.", ha="center", va="center")
        return ErrorGallery(fig, ())
    names = names_of(class_names, model, n_classes)
    images = np.stack([b[2] for b in best])
    preds = np.array([b[4] for b in best], np.int32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        maps = grad_cam(model, images, class_index=preds, layer=layer, method=method)
    titles = [f"true: {names[true]}\npred: {names[pred]} ({conf:.0%})" for conf, _i, _img, true, pred in best]
    fig = gallery(images, maps, titles, alpha=alpha, ncols=ncols, tile_size=2.4,
                  suptitle=f"{len(best)} most confident errors of {seen} images")
    return ErrorGallery(fig, tuple((b[1], b[3], b[4], b[0]) for b in best))
