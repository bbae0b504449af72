"""TensorBoard logs and ``metrics.csv`` of a run (private; used by ``training``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras

__all__ = ["EpochScalars", "log_callbacks", "tensorboard"]


def log_callbacks(log_dir: Path, *, resumed: bool) -> list[Any]:
    """TensorBoard logs and Keras' own ``CSVLogger``.

    ``CSVLogger`` appends on a resumed run so the rows of earlier epochs stay (it
    writes one line per epoch and flushes it, so a crash loses at most the line being
    written), and starts a new file otherwise.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    return [
        tensorboard(log_dir),
        keras.callbacks.CSVLogger(str(log_dir / "metrics.csv"), append=resumed),
    ]



def tensorboard(log_dir: Path) -> Any:
    """Keras' TensorBoard callback, or epoch scalars written with core TF ops without it.

    TensorFlow 2.21 no longer installs the ``tensorboard`` package, and Keras'
    ``TensorBoard`` callback fails without it (``TBNotInstalledError`` from
    ``tf.summary.scalar``; ``tests/training/test_train.py`` runs without it). The
    fallback writes the same per-epoch scalars in TensorBoard's layout with core ops
    only, so ``log_dir`` works either way.
    """
    import importlib.util

    if importlib.util.find_spec("tensorboard") is not None:
        return keras.callbacks.TensorBoard(log_dir=str(log_dir))
    return EpochScalars(log_dir)


class EpochScalars(keras.callbacks.Callback):
    """Per-epoch scalars in TensorBoard's layout (``train/``, ``validation/``)."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = folder
        self.writers: dict[str, Any] = {}

    def _writer(self, name: str) -> Any:
        import tensorflow as tf

        if name not in self.writers:
            self.writers[name] = tf.summary.create_file_writer(str(self.folder / name))
        return self.writers[name]

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        import tensorflow as tf
        from tensorflow.core.framework import summary_pb2

        meta = summary_pb2.SummaryMetadata()
        meta.plugin_data.plugin_name = "scalars"
        for key, value in (logs or {}).items():
            run, tag = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
            with self._writer(run).as_default():
                tf.summary.write(f"epoch_{tag}", tf.constant(float(value), tf.float32),
                                 step=epoch, metadata=meta)
        for writer in self.writers.values():
            writer.flush()

    def on_train_end(self, logs: Any = None) -> None:
        for writer in self.writers.values():
            writer.close()
        self.writers = {}
