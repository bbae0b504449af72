"""Keras callbacks the training tests share (a test helper, not a test file)."""

from __future__ import annotations

import keras


class Crash(keras.callbacks.Callback):
    """Raise at the start of epoch ``at_epoch``: a crash mid-run."""

    def __init__(self, at_epoch: int) -> None:
        super().__init__()
        self.at_epoch = at_epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at_epoch:
            raise RuntimeError("simulated crash")


class RateRecorder(keras.callbacks.Callback):
    """The learning rate of every training step."""

    def __init__(self) -> None:
        super().__init__()
        self.rates: list[float] = []

    def on_train_batch_begin(self, batch, logs=None):
        self.rates.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))
