"""Resumable training checkpoints: one Keras callback (private; public as ``training.Checkpoint``).

[`Checkpoint`][visionkit.training.Checkpoint] does for visionkit what ``keras.callbacks.BackupAndRestore`` does
for Keras, plus what a long run needs on top:

* after every completed epoch, the weights **and optimizer state** go to
  ``epoch-NNNN.weights.h5`` (only the latest is kept) and ``state.json`` records the
  epoch, the best monitored value and the per-epoch history; every file is written to
  a temporary name and renamed into place, and ``state.json`` only after the weights it
  names are complete, so a kill at any instant leaves a consistent checkpoint;
* ``best.keras``: the whole model at its best epoch;
* ``settings.json``: a fingerprint of the run's settings, so a folder is never
  resumed by a different model, input size, number of classes, optimizer or loss
  ([`ResumeMismatchError`][visionkit.errors.ResumeMismatchError] lists what differs);
* a NaN or infinite loss stops training, and [`Checkpoint.restore_last_good`][visionkit.training.Checkpoint.restore_last_good]
  puts the last good weights back.

On its own, passed to ``model.fit``, it resumes in ``on_train_begin`` as
``BackupAndRestore`` does. [`visionkit.training.train`][visionkit.training.train] calls
[`Checkpoint.restore`][visionkit.training.Checkpoint.restore] itself before ``fit`` so that it knows the epoch it resumes
from.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

import keras

from . import _validate as V
from ._io import atomic_save, write_json
from .errors import ResumeMismatchError

__all__ = ["BEST_FILE", "SETTINGS_FILE", "STATE_FILE", "Checkpoint", "fingerprint"]

SETTINGS_FILE = "settings.json"
STATE_FILE = "state.json"
BEST_FILE = "best.keras"
_FORMAT = 1


class Checkpoint(keras.callbacks.Callback):
    """Per-epoch atomic checkpoint of weights and optimizer, best model and NaN guard.

    Parameters
    ----------
    directory : str, os.PathLike or None
        The checkpoint folder (created if missing). ``None`` keeps only the NaN
        guard (nothing is written).
    settings : dict, optional
        The run's fingerprint (see ``fingerprint``): written to
        ``settings.json`` on the first run, compared on every later one.
    monitor : str, default "val_loss"
        The logged value whose lowest epoch is kept as ``best.keras``.
    save_best : bool, default True
        Write ``best.keras`` (``False`` on workers other than the chief).

    Attributes
    ----------
    state : dict
        What ``state.json`` holds: ``epoch``, ``weights``, ``iterations``,
        ``monitor``, ``best`` and ``history``.
    diverged : bool
        The loss became NaN or infinite (training was stopped).
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None,
        *,
        settings: dict[str, Any] | None = None,
        monitor: str = "val_loss",
        save_best: bool = True,
    ) -> None:
        super().__init__()
        self.directory = Path(directory) if directory is not None else None
        self.monitor = monitor
        self.save_best = save_best
        self.state = _prepare(self.directory, settings) if self.directory is not None else {}
        self.history: dict[str, list[float]] = {k: list(v) for k, v in self.state.get("history", {}).items()}
        # a run resumed with (or without) validation data monitors another value
        self.best = self.state.get("best") if self.state.get("monitor") == monitor else None
        self.diverged = False
        self.diverged_epoch = -1
        self._epoch = 0
        self._restored = False

    # ------------------------------------------------------------------ resume

    @property
    def completed_epochs(self) -> int:
        """Epochs the folder holds (0 for a new run)."""
        return int(self.state.get("epoch", 0))

    def restore(self, model: keras.Model) -> int:
        """Load the latest checkpoint into ``model`` (built and compiled); return its epoch."""
        self._restored = True
        if not self.state.get("weights"):
            return 0
        model.load_weights(str(self.directory / self.state["weights"]))  # type: ignore[operator]
        return self.completed_epochs

    def restore_last_good(self, model: keras.Model) -> Path | None:
        """After divergence: load the last completed epoch's weights, if any; return the file."""
        if self.directory is None or not self.state.get("weights"):
            return None
        path = self.directory / self.state["weights"]
        model.load_weights(str(path))
        return path

    def on_train_begin(self, logs: Any = None) -> None:
        if not self._restored:  # used with a plain model.fit, like BackupAndRestore
            epoch = self.restore(self.model)
            if epoch:
                self.model._initial_epoch = epoch  # Keras' own resume hook (BackupAndRestore)

    # ------------------------------------------------------------------ per step / epoch

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        if logs and not _finite(logs.get("loss")):
            self._diverge(self._epoch)

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        logs = dict(logs or {})
        if self.diverged or not all(_finite(v) for k, v in logs.items() if "loss" in k):
            self._diverge(epoch)
            return
        if self.directory is None:
            return
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))
        value = logs.get(self.monitor)
        improved = value is not None and (self.best is None or float(value) < self.best)
        if improved:
            self.best = float(value)
            if self.save_best:
                atomic_save(self.directory / BEST_FILE, self.model.save)
        self._write_state(epoch + 1)

    def _diverge(self, epoch: int) -> None:
        self.diverged = True
        self.diverged_epoch = epoch
        self.model.stop_training = True

    def _write_state(self, epoch: int) -> None:
        assert self.directory is not None
        name = f"epoch-{epoch:04d}.weights.h5"
        atomic_save(self.directory / name, self.model.save_weights)
        old = self.state.get("weights")
        self.state = {
            "epoch": epoch,
            "weights": name,
            "iterations": int(self.model.optimizer.iterations.numpy()),
            "monitor": self.monitor,
            "best": self.best,
            "history": self.history,
        }
        write_json(self.directory / STATE_FILE, self.state)
        if old and old != name:
            with contextlib.suppress(FileNotFoundError):
                (self.directory / old).unlink()


# ----------------------------------------------------------------------------- fingerprint


def fingerprint(
    model: keras.Model,
    optimizer: keras.optimizers.Optimizer,
    *,
    loss: Any,
    metrics: Any,
    label_shape: tuple[Any, ...],
    batch_size: int | None,
    lr_schedule: str | None = None,
) -> dict[str, Any]:
    """The settings a checkpoint folder must be resumed with (JSON-able)."""
    arch = _architecture(model)
    digest = hashlib.sha256(json.dumps(arch, sort_keys=True, default=str).encode()).hexdigest()[:16]
    opt_config = {k: v for k, v in _strip_names(optimizer.get_config()).items() if k != "name"}
    lr = opt_config.get("learning_rate")
    if isinstance(lr, dict):  # a schedule: show its class and starting rate
        lr = f"{lr.get('class_name')}({lr.get('config', {}).get('initial_learning_rate')})"
        if lr_schedule is not None:  # visionkit's own schedule: described by the "lr_schedule" entry
            opt_config.pop("learning_rate")
    output = tuple(model.outputs[0].shape[1:]) if model.outputs else ()
    return {
        "format": _FORMAT,
        "model": f"{model.count_params():,} parameters in {len(arch)} layers, architecture {digest}",
        "input_shape": _fmt(tuple(model.inputs[0].shape[1:])),
        "output_shape": _fmt(output),
        "num_classes": int(output[-1]) if output and output[-1] is not None and output[-1] > 1 else 2,
        "label_shape": _fmt(tuple(label_shape)),
        "optimizer": f"{type(optimizer).__name__}(learning_rate={lr})",
        "optimizer_config": json.dumps(opt_config, sort_keys=True, default=str),
        "loss": str(loss),
        "metrics": [m if isinstance(m, str) else type(m).__name__ for m in (metrics or ())],
        "batch_size": batch_size,
    } | ({} if lr_schedule is None else {"lr_schedule": lr_schedule})


def _architecture(model: Any) -> list[dict[str, Any]]:
    """Layer classes and configs (without the auto-generated names), nested models flattened."""
    out: list[dict[str, Any]] = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            out.append({"class": type(layer).__name__, "layers": _architecture(layer)})
            continue
        try:
            config = layer.get_config()
        except (NotImplementedError, TypeError):
            config = {}
        out.append({"class": type(layer).__name__, "config": _strip_names(config),
                    "weights": [list(w.shape) for w in layer.weights], "trainable": bool(layer.trainable)})
    return out


def _strip_names(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _strip_names(v) for k, v in obj.items() if k not in ("name", "build_config")}
    if isinstance(obj, (list, tuple)):
        return [_strip_names(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return repr(obj)


def _fmt(shape: tuple[Any, ...]) -> str:
    return ", ".join("None" if s is None else str(s) for s in shape)


def _prepare(folder: Path, settings: dict[str, Any] | None) -> dict[str, Any]:
    """Check or write the fingerprint; return the saved state to resume from (``{}`` if none)."""
    if folder.exists() and not folder.is_dir():
        raise V.fail("checkpoint_dir", "a folder (it is created if missing)", str(folder))
    settings_file = folder / SETTINGS_FILE
    if settings is not None:
        if settings_file.is_file():
            _compare(folder, _read_json(settings_file, folder), settings)
        else:
            write_json(settings_file, settings)
    state_file = folder / STATE_FILE
    if not state_file.is_file():
        return {}
    state = _read_json(state_file, folder)
    if not (folder / state.get("weights", "")).is_file():
        raise ResumeMismatchError(
            f"'{state_file}' names the weights file '{state.get('weights')}', which is missing. "
            f"Delete '{folder}' to start over."
        )
    return state


def _read_json(file: Path, folder: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(file.read_text()))
    except (OSError, ValueError, TypeError) as exc:
        raise ResumeMismatchError(
            f"Cannot read '{file}' ({exc}). Delete the folder '{folder}' or use another one."
        ) from None


def _compare(folder: Path, saved: dict[str, Any], settings: dict[str, Any]) -> None:
    diffs = [
        f"{key}: checkpoint has {saved.get(key)!r}, this run has {settings.get(key)!r}"
        for key in sorted(set(saved) | set(settings))
        if saved.get(key) != settings.get(key)
    ]
    if diffs:
        raise ResumeMismatchError(
            f"Checkpoint folder '{folder}' was written by a run with different settings, so it cannot be "
            "resumed:\n  " + "\n  ".join(diffs) + "\nUse another `checkpoint_dir`, or delete this one to start over."
        )


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return True
