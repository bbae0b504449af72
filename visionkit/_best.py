"""The best model of a training run: one Keras callback (private; used by ``training``).

``BestModel`` does what
``keras.callbacks.ModelCheckpoint(save_best_only=True)`` does, with the file written
atomically (a temporary name renamed into place, through ``_io.atomic_save``), so a
kill while saving never leaves a truncated ``best.keras``, and with the best value of
an interrupted run carried over when it resumes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import keras

from ._io import atomic_save
from ._nan_guard import finite

__all__ = ["BestModel", "improved"]


def improved(best: float | None, value: Any) -> bool:
    """Whether ``value`` (a logged value, ``None`` if absent) is lower than ``best`` (``None``: none yet)."""
    return value is not None and finite(value) and (best is None or float(value) < best)


class BestModel(keras.callbacks.Callback):
    """Save the whole model whenever the monitored value reaches a new low.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.keras`` file (``best.keras`` in a checkpoint folder).
    monitor : str, default "val_loss"
        The logged value whose lowest epoch is kept.
    best : float, optional
        The lowest value so far (a resumed run's); ``None`` starts afresh.
    guard : NanGuard, optional
        An epoch in which it saw the loss diverge is never saved.

    Examples
    --------
    >>> import keras, numpy as np, os, tempfile
    >>> from visionkit._best import BestModel
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile(optimizer="sgd", loss="mse")
    >>> path = os.path.join(tempfile.mkdtemp(), "best.keras")
    >>> best = BestModel(path, monitor="loss")
    >>> _ = model.fit(np.ones((8, 2)), np.ones((8, 1)), epochs=2, verbose=0, callbacks=[best])
    >>> os.path.isfile(path), best.best is not None
    (True, True)
    """

    def __init__(self, path: str | os.PathLike[str], *, monitor: str = "val_loss", best: float | None = None,
                 guard: Any = None) -> None:
        super().__init__()
        self.path = Path(path)
        self.monitor = monitor
        self.best = best
        self.guard = guard

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if self.guard is not None and self.guard.diverged:
            return
        value = dict(logs or {}).get(self.monitor)
        if improved(self.best, value):
            self.best = float(value)
            atomic_save(self.path, self.model.save)
