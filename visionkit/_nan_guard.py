"""The NaN guard of a training run: one Keras callback (private; used by ``training``).

``NanGuard`` does what ``keras.callbacks.TerminateOnNaN``
does (stop at the first batch whose loss is NaN or infinite) and puts the last finite
weights back afterwards: it keeps a copy of the model's weights and optimizer variables
in memory, taken before the first step and after every finite epoch, so this works
without a checkpoint folder and in the first epoch too.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np

__all__ = ["NanGuard", "finite"]


def finite(value: Any) -> bool:
    """Whether a logged value is a finite number (a value that is no number counts as finite)."""
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return True


class NanGuard(keras.callbacks.Callback):
    """Stop training at a NaN or infinite loss; keep the last finite weights to put back.

    Attributes
    ----------
    diverged : bool
        The loss (or a weight) became NaN or infinite: training was stopped.
    diverged_epoch : int
        The epoch (from 0) in which it happened; -1 if it did not.

    Examples
    --------
    >>> import keras, numpy as np
    >>> from visionkit._nan_guard import NanGuard
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile(optimizer=keras.optimizers.SGD(1e30), loss="mse")
    >>> guard = NanGuard()
    >>> x, y = np.ones((8, 2), "float32"), np.full((8, 1), 1e30, "float32")
    >>> _ = model.fit(x, y, epochs=3, batch_size=4, verbose=0, callbacks=[guard])
    >>> guard.diverged, guard.restore_last_good(model)
    (True, 'the in-memory copy of the weights before training')
    """

    def __init__(self) -> None:
        super().__init__()
        self.diverged = False
        self.diverged_epoch = -1
        self._epoch = 0
        self._snapshot: tuple[int, list[Any], list[Any]] | None = None

    def on_train_begin(self, logs: Any = None) -> None:
        self._snapshot = None  # taken when the first epoch begins (after any resume)

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self._epoch = epoch
        if self._snapshot is None:
            self._take_snapshot(epoch)

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        if logs and not finite(logs.get("loss")):
            self._diverge(self._epoch)

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        healthy = all(finite(v) for k, v in dict(logs or {}).items() if "loss" in k)
        if self.diverged or not healthy or not self._take_snapshot(epoch + 1):
            self._diverge(epoch)

    def restore_last_good(self, model: keras.Model, checkpoint: Any = None) -> str | None:
        """After divergence: put the last finite weights back; say where they came from.

        Parameters
        ----------
        model : keras.Model
            The model to restore (built and compiled).
        checkpoint : EpochCheckpoint, optional
            The run's checkpoint folder: without an in-memory copy, its latest
            weights file is loaded instead; with one, the message says when the
            two hold the same epoch.

        Returns
        -------
        str or None
            A description for a message: the in-memory copy of the last finite
            epoch, or else the last checkpoint file; ``None`` when there was neither.
        """
        file = checkpoint.latest_file() if checkpoint is not None else None
        where = f"'{file}'" if file is not None else None
        if self._snapshot is not None:
            epoch, weights, opt_values = self._snapshot
            model.set_weights(weights)
            opt = getattr(model, "optimizer", None)
            if opt is not None and len(opt.variables) == len(opt_values):
                for variable, value in zip(opt.variables, opt_values):
                    variable.assign(value)
            when = f"after epoch {epoch}" if epoch else "before training"
            also = f", the same as {where}" if where and checkpoint.completed_epochs == epoch else ""
            return f"the in-memory copy of the weights {when}{also}"
        if where is None:
            return None
        checkpoint.restore_latest(model)
        return f"the checkpoint file {where}"

    def _take_snapshot(self, epoch: int) -> bool:
        """Keep a copy of the model's weights and optimizer variables if they are all finite."""
        weights = self.model.get_weights()
        if not all(np.isfinite(w).all() for w in weights if np.issubdtype(np.asarray(w).dtype, np.inexact)):
            return False
        opt = getattr(self.model, "optimizer", None)
        self._snapshot = (epoch, weights, [v.numpy() for v in opt.variables] if opt is not None else [])
        return True

    def _diverge(self, epoch: int) -> None:
        self.diverged = True
        self.diverged_epoch = epoch
        self.model.stop_training = True
