"""One worker of a two-process MultiWorkerMirroredStrategy run (used by test_scaling).

Usage: TF_CONFIG=... python multi_worker.py EPOCHS CHECKPOINT_DIR RESULT_JSON [DIE_AFTER_EPOCH]
"""

from __future__ import annotations

import json
import os
import signal
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

from visionkit import device
from visionkit._distributed import weights_fingerprint
from visionkit.training import evaluate, train


class DieAfter(keras.callbacks.Callback):
    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epoch:
            os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    epochs, ckpt, result = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    die = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    strategy = device.strategy("multi_worker")
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 6, 6, 1)).astype("float32")
    y = (x.mean(axis=(1, 2, 3)) > 0).astype("int32")
    with strategy.scope():
        model = keras.Sequential([
            keras.Input((6, 6, 1)),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(2, activation="softmax"),
        ])
    history = train(
        model, (x, y), validation_data=(x[:64], y[:64]), epochs=epochs, batch_size=32,
        learning_rate=1e-2, checkpoint_dir=ckpt, strategy=strategy, seed=0, progress=False,
        callbacks=[DieAfter(die)] if die else None,
    )
    metrics = evaluate(model, (x[:64], y[:64]))
    with open(result, "w") as fh:
        json.dump({"weights": weights_fingerprint(model), "epochs": history.epoch, "loss": history.history["loss"],
                   "test": metrics,
                   "iterations": int(model.optimizer.iterations.numpy()) if model.optimizer else None}, fh)


if __name__ == "__main__":
    main()
