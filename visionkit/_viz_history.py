"""Training-curve plots (private; public through [`visionkit.visualize`][visionkit.visualize])."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from . import _validate as V

__all__ = ["plot_history"]

_SKIP = ("learning_rate", "lr")


def plot_history(history: Any, *, metrics: Sequence[str] | None = None) -> Any:
    """Plot training and validation curves per epoch, one axes per metric.

    Parameters
    ----------
    history : keras.callbacks.History or mapping
        What ``model.fit`` or [`visionkit.training.train`][visionkit.training.train] returned, or its
        ``history`` dict (``{"loss": [...], "val_loss": [...], ...}``).
    metrics : sequence of str, optional
        Metric names without the ``val_`` prefix, in the order to draw them;
        default: every metric recorded (``loss`` first), except the learning rate.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per metric, side by side; in each a ``"training"`` line and, when
        recorded, a ``"validation"`` line, against the epoch number (from 1). NaN
        values (a diverged epoch) leave a gap. ``plt.show()`` is not called.

    Raises
    ------
    InvalidArgumentError
        ``history`` holds no epochs, or a requested metric was not recorded (the
        message lists those that were).

    Examples
    --------
    >>> from visionkit.visualize import plot_history
    >>> fig = plot_history({"loss": [0.9, 0.5], "val_loss": [1.0, 0.7],
    ...                     "accuracy": [0.7, 0.8], "val_accuracy": [0.6, 0.75]})
    >>> [ax.get_title() for ax in fig.axes]
    ['loss', 'accuracy']
    """
    data = getattr(history, "history", history)
    if not isinstance(data, Mapping):
        raise V.fail("history", "a keras History or a dict of per-epoch lists", type(history).__name__)
    series = {str(k): [float(v) for v in vals] for k, vals in data.items() if isinstance(vals, Sequence) and len(vals)}
    if not series:
        raise V.fail("history", "a history with at least one epoch recorded", dict(data))
    available = [k for k in series if not k.startswith("val_") and k not in _SKIP]
    available += [k[4:] for k in series if k.startswith("val_") and k[4:] not in available]
    available = [k for k in available if k == "loss"] + [k for k in available if k != "loss"]
    if metrics is None:
        chosen = available
    else:
        if isinstance(metrics, str) or not isinstance(metrics, Sequence) or not metrics:
            raise V.fail("metrics", f"a non-empty list of metric names from {available}", metrics)
        for m in metrics:
            if m not in available:
                raise V.fail("metrics", f"names of recorded metrics, from {available}", metrics)
        chosen = list(metrics)
    from matplotlib.figure import Figure

    epoch0 = 1
    epochs_attr = getattr(history, "epoch", None)
    if epochs_attr:
        epoch0 = int(epochs_attr[0]) + 1
    fig = Figure(figsize=(4.2 * len(chosen), 3.4), layout="constrained")
    axes = fig.subplots(1, len(chosen), squeeze=False)[0]
    for ax, name in zip(axes, chosen):
        for key, label, style in ((name, "training", "o-"), (f"val_{name}", "validation", "s--")):
            if key in series:
                values = [v if math.isfinite(v) else float("nan") for v in series[key]]
                ax.plot(range(epoch0, epoch0 + len(values)), values, style, label=label, markersize=3)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(True, alpha=0.3)
        ax.legend()
        ax.xaxis.get_major_locator().set_params(integer=True)
    return fig
