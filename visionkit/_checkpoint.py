"""Resumable training checkpoints (private; public as ``training.Checkpoint``).

Each job is one Keras callback, as Keras splits ``BackupAndRestore``,
``ModelCheckpoint`` and ``TerminateOnNaN``:

* ``EpochCheckpoint`` (here): resume from verified epoch weights, ``state.json`` and
  ``settings.json``;
* ``_best.BestModel``: ``best.keras``;
* ``_nan_guard.NanGuard``: the NaN stop and the restore of the last finite weights;
* ``_fingerprint.fingerprint``: the settings compared when a folder is opened.

[`visionkit.training.train`][visionkit.training.train] composes them;
[`Checkpoint`][visionkit.training.Checkpoint] is the same composition as one callback,
for a plain ``model.fit``. Together they do for visionkit what
``keras.callbacks.BackupAndRestore`` does for Keras, plus what a long run needs on top:

* after every completed epoch, the weights **and optimizer state** go to
  ``epoch-NNNN.weights.h5`` (the latest two are kept) and ``state.json`` records the
  epoch, the SHA-256 of each kept weights file, the best monitored value and the
  per-epoch history; every file is written to a temporary name and renamed into place,
  and ``state.json`` only after the weights it names are complete, so a kill at any
  instant leaves a consistent checkpoint;
* on resume the weights file is checked against its recorded SHA-256; a damaged or
  missing one falls back to the previous epoch's file (with a ``RuntimeWarning`` naming
  both), and with none to fall back to
  [`ResumeMismatchError`][visionkit.errors.ResumeMismatchError] names the file;
* ``state.json`` may only name plain ``epoch-NNNN.weights.h5`` files inside the folder
  (symlinks resolved): any other name is damage, handled as above, so nothing outside
  the folder is ever read or deleted;
* ``best.keras``: the whole model at its best epoch;
* ``settings.json``: a fingerprint of the run's settings, so a folder is never
  resumed by a different model, input size, number of classes, optimizer or loss
  ([`ResumeMismatchError`][visionkit.errors.ResumeMismatchError] lists what differs), unless
  ``resume="weights"`` asks to continue from the last weights with new settings (the
  settings it replaces are kept as ``settings.previous.json``);
* a NaN or infinite loss stops training, and [`Checkpoint.restore_last_good`][visionkit.training.Checkpoint.restore_last_good]
  puts the last finite weights back: a copy kept in memory (taken before the first
  step and after every finite epoch), so this works without a folder and in the
  first epoch too.

``Checkpoint`` on its own, passed to ``model.fit``, resumes in ``on_train_begin`` as
``BackupAndRestore`` does. [`visionkit.training.train`][visionkit.training.train] calls
[`Checkpoint.restore`][visionkit.training.Checkpoint.restore] itself before ``fit`` so that it knows the epoch it resumes
from.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import warnings
from pathlib import Path
from typing import Any

import keras

from . import _validate as V
from ._best import BestModel, improved
from ._io import atomic_save, write_json
from ._nan_guard import NanGuard, finite
from ._options import RESUME_MODES
from .errors import ResumeMismatchError

__all__ = ["BEST_FILE", "PREVIOUS_SETTINGS_FILE", "RESUME_MODES", "SETTINGS_FILE", "STATE_FILE", "Checkpoint",
           "EpochCheckpoint"]

SETTINGS_FILE = "settings.json"
PREVIOUS_SETTINGS_FILE = "settings.previous.json"
STATE_FILE = "state.json"
BEST_FILE = "best.keras"
#: The only names ``state.json`` may give a weights file: a plain file name in the folder.
_WEIGHTS_NAME = re.compile(r"epoch-[0-9]{4,}\.weights\.h5")
#: Settings a ``resume="weights"`` restart cannot change (the weights must fit the model).
_MODEL_KEYS = ("format", "model", "input_shape", "output_shape", "num_classes")
_WEIGHTS_HINT = ('pass resume="weights" (command line: --resume weights) to continue from its last good '
                 "weights with the new settings")


class EpochCheckpoint(keras.callbacks.Callback):
    """Per-epoch atomic checkpoint of weights and optimizer state, resumed from verified files.

    The resume job alone (``keras.callbacks.BackupAndRestore``'s): ``epoch-NNNN.weights.h5``,
    ``state.json`` and ``settings.json``. [`Checkpoint`][visionkit.training.Checkpoint]
    adds the best model and the NaN guard.

    Parameters
    ----------
    directory, settings, resume
        As for [`Checkpoint`][visionkit.training.Checkpoint] (``directory=None``: nothing is
        written or resumed).
    monitor : str, default "val_loss"
        The logged value whose lowest value so far ``state.json`` records.
    guard : NanGuard, optional
        An epoch in which it saw the loss diverge is not written (without one, an
        epoch whose logged losses are not finite is not).

    Attributes
    ----------
    state : dict
        What ``state.json`` holds (see [`Checkpoint`][visionkit.training.Checkpoint]).
    best : float or None
        The lowest monitored value so far (a resumed run's included).
    restart_epoch : int
        The epoch from which the optimizer state counts (see ``Checkpoint``).
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None,
        *,
        settings: dict[str, Any] | None = None,
        monitor: str = "val_loss",
        resume: str = "auto",
        guard: Any = None,
    ) -> None:
        super().__init__()
        self.resume = V.one_of("resume", resume, RESUME_MODES)
        self.directory = Path(directory) if directory is not None else None
        self.monitor = monitor
        self.guard = guard
        self._saved_settings: dict[str, Any] | None = None
        self.state: dict[str, Any] = {}
        if self.directory is not None:
            self._saved_settings, self.state = _prepare(self.directory, self.resume)
        self.restart_epoch = int((self._saved_settings or {}).get("restart_epoch", 0))
        self.history: dict[str, list[float]] = {k: list(v) for k, v in self.state.get("history", {}).items()}
        # a run resumed with (or without) validation data monitors another value
        self.best = self.state.get("best") if self.state.get("monitor") == monitor else None
        self._restored = False
        if settings is not None:
            self.apply_settings(settings)

    # ------------------------------------------------------------------ settings

    def needs_restart(self, settings: dict[str, Any]) -> bool:
        """Whether ``settings`` differ from the folder's, so that only a weights restart can go on.

        Raises
        ------
        ResumeMismatchError
            The settings differ and ``resume`` is not ``"weights"``, or the model
            itself differs.
        """
        saved = self._saved_settings
        if self.directory is None or saved is None or saved == settings:
            return False
        diffs = [key for key in sorted(set(saved) | set(settings)) if saved.get(key) != settings.get(key)]
        lines = "\n  ".join(f"{k}: checkpoint has {saved.get(k)!r}, this run has {settings.get(k)!r}" for k in diffs)
        if self.resume != "weights":
            raise ResumeMismatchError(
                f"Checkpoint folder '{self.directory}' was written by a run with different settings, so it cannot "
                f"be resumed:\n  {lines}\nUse another `checkpoint_dir`, delete this one to start over, or "
                f"{_WEIGHTS_HINT}."
            )
        if any(key in _MODEL_KEYS for key in diffs):
            raise ResumeMismatchError(
                f'resume="weights" continues from the weights in \'{self.directory}\' with new training settings, '
                f"but it cannot change the model they belong to:\n  {lines}\n"
                "Use another `checkpoint_dir`, or delete this one to start over."
            )
        return True

    def apply_settings(self, settings: dict[str, Any]) -> bool:
        """Compare ``settings`` with the folder's and record them; return whether this is a weights restart.

        A new folder records them in ``settings.json``. Equal settings resume.
        Different ones are refused (see [`needs_restart`][visionkit.training.Checkpoint.needs_restart]) unless
        ``resume="weights"``: then the old settings are kept as
        ``settings.previous.json``, the new ones (with ``restart_epoch``, the epoch
        the restart counts from) replace them, and [`restore`][visionkit.training.Checkpoint.restore] loads
        the model weights only, not the optimizer state.
        """
        if self.directory is None:
            return False
        if self._saved_settings is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            write_json(self.directory / SETTINGS_FILE, settings)
            self._saved_settings = dict(settings)
            return False
        if not self.needs_restart(settings):
            return False
        epoch = self.completed_epochs
        settings = {k: v for k, v in settings.items() if k != "restart_epoch"} | (
            {"restart_epoch": epoch} if epoch else {})
        write_json(self.directory / PREVIOUS_SETTINGS_FILE, self._saved_settings)
        write_json(self.directory / SETTINGS_FILE, settings)
        self._saved_settings = dict(settings)
        self.restart_epoch = epoch
        return True

    # ------------------------------------------------------------------ resume

    @property
    def completed_epochs(self) -> int:
        """Epochs the folder holds (0 for a new run)."""
        return int(self.state.get("epoch", 0))

    def restore(self, model: keras.Model) -> int:
        """Load the latest checkpoint into ``model`` (built and compiled); return its epoch.

        The optimizer state is loaded too, unless the checkpoint was written before a
        ``resume="weights"`` restart (then only the model weights are).
        """
        self._restored = True
        if not self.state.get("weights"):
            return 0
        self._load(model, self.state)
        return self.completed_epochs

    def latest_file(self) -> Path | None:
        """The weights file of the latest completed epoch; ``None`` when there is none."""
        if self.directory is None or not self.state.get("weights"):
            return None
        return self.directory / self.state["weights"]

    def restore_latest(self, model: keras.Model) -> None:
        """Load the latest weights file into ``model`` (after divergence, when no finite copy is in memory)."""
        self._load(model, self.state)

    def _load(self, model: keras.Model, entry: dict[str, Any]) -> None:
        assert self.directory is not None
        path = self.directory / entry["weights"]
        opt = getattr(model, "optimizer", None)
        keep_optimizer = opt is not None and int(entry.get("restart_epoch", 0)) != self.restart_epoch
        kept = [v.numpy() for v in opt.variables] if keep_optimizer else []
        try:
            with warnings.catch_warnings():
                if keep_optimizer:  # another optimizer's variables: not loaded, by design
                    warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
                model.load_weights(str(path))
        except (OSError, ValueError) as exc:  # h5py and Keras' own errors for a bad or foreign file
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ResumeMismatchError(
                f"Cannot load the checkpoint '{path}' ({type(exc).__name__}: {first}). Delete the folder "
                f"'{self.directory}' to start over, or use another `checkpoint_dir`."
            ) from exc
        for variable, value in zip(opt.variables if keep_optimizer else (), kept):
            variable.assign(value)


    # ------------------------------------------------------------------ callbacks

    def on_train_begin(self, logs: Any = None) -> None:
        if not self._restored:  # used with a plain model.fit, like BackupAndRestore
            epoch = self.restore(self.model)
            if epoch:
                self.model._initial_epoch = epoch  # Keras' own resume hook (BackupAndRestore)

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        logs = dict(logs or {})
        if self.directory is None or not self._healthy(logs):
            return
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))
        value = logs.get(self.monitor)
        if improved(self.best, value):
            self.best = float(value)
        self._write_state(epoch + 1)

    def _healthy(self, logs: dict[str, Any]) -> bool:
        if self.guard is not None:
            return not self.guard.diverged
        return all(finite(v) for k, v in logs.items() if "loss" in k)

    def _write_state(self, epoch: int) -> None:
        assert self.directory is not None
        name = f"epoch-{epoch:04d}.weights.h5"
        path = atomic_save(self.directory / name, self.model.save_weights)
        old = self.state
        previous = {k: v for k, v in old.items() if k not in ("previous", "monitor")}
        self.state = {
            "epoch": epoch,
            "weights": name,
            "sha256": _sha256(path),
            "restart_epoch": self.restart_epoch,
            "iterations": int(self.model.optimizer.iterations.numpy()),
            "monitor": self.monitor,
            "best": self.best,
            "history": {k: list(v) for k, v in self.history.items()},
        } | ({"previous": previous} if old.get("weights") and old["weights"] != name else {})
        write_json(self.directory / STATE_FILE, self.state)
        keep = {name, self.state.get("previous", {}).get("weights")}
        for stale in (old.get("weights"), old.get("previous", {}).get("weights")):
            if stale and stale not in keep and _plain_name(stale):  # never a path out of the folder
                with contextlib.suppress(FileNotFoundError):
                    (self.directory / stale).unlink()



class Checkpoint(EpochCheckpoint):
    """Per-epoch atomic checkpoint of weights and optimizer, best model and NaN guard, as one callback.

    ``EpochCheckpoint`` (resume), ``BestModel`` (``best.keras``) and ``NanGuard``
    (NaN stop, last finite weights) composed, for a plain ``model.fit``;
    [`train`][visionkit.training.train] composes the same three itself.

    Parameters
    ----------
    directory : str, os.PathLike or None
        The checkpoint folder (created if missing). ``None`` keeps only the NaN
        guard (nothing is written).
    settings : dict, optional
        The run's fingerprint: written to ``settings.json`` on the first run,
        compared on every later one (see
        [`apply_settings`][visionkit.training.Checkpoint.apply_settings]).
    monitor : str, default "val_loss"
        The logged value whose lowest epoch is kept as ``best.keras``.
    save_best : bool, default True
        Write ``best.keras`` (``False`` on workers other than the chief).
    resume : {"auto", "weights", "never"}, default "auto"
        ``"auto"``: resume a folder written with the same settings, refuse other
        settings. ``"weights"``: the same, but when the settings differ (not the
        model), continue from the last good checkpoint's model weights with a fresh
        optimizer and the new settings. ``"never"``: refuse a folder that already
        holds a run.

    Attributes
    ----------
    state : dict
        What ``state.json`` holds: ``epoch``, ``weights``, ``sha256``,
        ``restart_epoch``, ``iterations``, ``monitor``, ``best``, ``history`` and
        ``previous`` (the same for the epoch before, whose file is kept too).
    diverged : bool
        The loss became NaN or infinite (training was stopped).
    restart_epoch : int
        The epoch from which the optimizer state counts: 0, or the epoch a
        ``resume="weights"`` restart started from.

    Examples
    --------
    >>> import keras, numpy as np, tempfile
    >>> from visionkit.training import Checkpoint
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile(optimizer="sgd", loss="mse")
    >>> folder = tempfile.mkdtemp()
    >>> x, y = np.ones((8, 2), "float32"), np.ones((8, 1), "float32")
    >>> _ = model.fit(x, y, epochs=2, verbose=0, callbacks=[Checkpoint(folder, monitor="loss")])
    >>> Checkpoint(folder, monitor="loss").completed_epochs
    2
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None,
        *,
        settings: dict[str, Any] | None = None,
        monitor: str = "val_loss",
        save_best: bool = True,
        resume: str = "auto",
    ) -> None:
        super().__init__(directory, settings=settings, monitor=monitor, resume=resume, guard=NanGuard())
        self.save_best = save_best
        self.nan_guard: NanGuard = self.guard
        self.best_model = (BestModel(self.directory / BEST_FILE, monitor=monitor, best=self.best, guard=self.guard)
                           if self.directory is not None and save_best else None)
        self._parts: list[keras.callbacks.Callback] = [self.nan_guard, *([self.best_model] if self.best_model else [])]

    @property
    def diverged(self) -> bool:
        """The loss became NaN or infinite (training was stopped)."""
        return self.nan_guard.diverged

    @property
    def diverged_epoch(self) -> int:
        """The epoch (from 0) in which the loss diverged; -1 if it did not."""
        return self.nan_guard.diverged_epoch

    def restore_last_good(self, model: keras.Model) -> str | None:
        """After divergence: put the last finite weights back; say where they came from.

        Returns
        -------
        str or None
            A description for a message: the in-memory copy of the last finite
            epoch (taken before the first step and after every finite epoch), or
            else the last checkpoint file; ``None`` when there was neither.
        """
        return self.nan_guard.restore_last_good(model, self)

    def set_model(self, model: keras.Model) -> None:
        super().set_model(model)
        for part in self._parts:
            part.set_model(model)

    def set_params(self, params: Any) -> None:
        super().set_params(params)
        for part in self._parts:
            part.set_params(params)

    def on_train_begin(self, logs: Any = None) -> None:
        super().on_train_begin(logs)  # resume first: the guard's copy is of the resumed weights
        for part in self._parts:
            part.on_train_begin(logs)

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        for part in self._parts:
            part.on_epoch_begin(epoch, logs)

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        for part in self._parts:
            part.on_train_batch_end(batch, logs)

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        for part in self._parts:  # the guard first, then best.keras, then the state
            part.on_epoch_end(epoch, logs)
        super().on_epoch_end(epoch, logs)


def _prepare(folder: Path, resume: str) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Return the folder's saved settings (``None`` if none) and its verified state (``{}`` if none)."""
    if folder.exists() and not folder.is_dir():
        raise V.fail("checkpoint_dir", "a folder (it is created if missing)", str(folder))
    settings_file, state_file = folder / SETTINGS_FILE, folder / STATE_FILE
    if resume == "never" and (settings_file.is_file() or state_file.is_file()):
        raise ResumeMismatchError(
            f"Checkpoint folder '{folder}' already holds a run, and resume=\"never\" refuses to continue one. "
            'Use another `checkpoint_dir`, delete this one, or pass resume="auto" to resume it.'
        )
    saved = _read_json(settings_file, folder) if settings_file.is_file() else None
    if not state_file.is_file():
        return saved, {}
    return saved, _verified(folder, _read_json(state_file, folder))


def _verified(folder: Path, state: dict[str, Any]) -> dict[str, Any]:
    """``state``, or its ``previous`` entry when the current weights file is missing or damaged."""
    problem = _problem(folder, state)
    prev = state.get("previous")
    if problem is None:
        outside = _outside(folder, prev.get("weights")) if isinstance(prev, dict) else None
        if outside is None:
            return state
        warnings.warn(  # only its fallback is damaged: drop it, so nothing it names is ever touched
            f"The previous checkpoint '{folder / str(prev.get('weights'))}' named by '{folder / STATE_FILE}' "
            f"{outside}; it is ignored (nothing outside the folder is read or deleted), and the run resumes "
            f"from '{folder / state['weights']}'.",
            RuntimeWarning,
            stacklevel=2,
        )
        return {k: v for k, v in state.items() if k != "previous"}
    file = folder / str(state.get("weights"))
    prev_problem = _problem(folder, prev) if isinstance(prev, dict) else None
    if isinstance(prev, dict) and prev_problem is None:
        warnings.warn(
            f"The checkpoint '{file}' {problem}; resuming from the previous one, '{folder / prev['weights']}' "
            f"(epoch {prev.get('epoch')}), instead.",
            RuntimeWarning,
            stacklevel=2,
        )
        return {**prev, "monitor": state.get("monitor")}
    extra = (f"; the previous one, '{folder / str(prev.get('weights'))}', {prev_problem}" if isinstance(prev, dict)
             else "; there is no previous checkpoint to fall back to")
    raise ResumeMismatchError(
        f"The checkpoint '{file}' named by '{folder / STATE_FILE}' {problem}{extra}. "
        f"Delete '{folder}' to start over, or use another `checkpoint_dir`."
    )


def _problem(folder: Path, entry: dict[str, Any]) -> str | None:
    """Why the weights file of a state entry cannot be resumed from, or ``None``."""
    name = entry.get("weights")
    if not isinstance(name, str) or not name:
        return "is not named"
    outside = _outside(folder, name)
    if outside is not None:
        return outside
    file = folder / name
    if not file.is_file():
        return "is missing"
    digest = entry.get("sha256")
    if digest is not None and _sha256(file) != digest:  # no digest: written by an older visionkit
        return "is damaged (its SHA-256 differs from the one recorded when it was written)"
    return None


def _plain_name(name: Any) -> bool:
    """Whether ``name`` is a weights file name as ``Checkpoint`` writes them (no folder, no ``..``)."""
    return isinstance(name, str) and _WEIGHTS_NAME.fullmatch(name) is not None


def _outside(folder: Path, name: Any) -> str | None:
    """Why ``name``, read from ``state.json``, is not a weights file inside ``folder``; ``None`` if it is."""
    if not _plain_name(name):
        return "is not a weights file name of the form epoch-NNNN.weights.h5 inside the checkpoint folder"
    if (folder / name).resolve().parent != folder.resolve():
        return "is a link to a file outside the checkpoint folder"
    return None


def _sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with open(file, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _read_json(file: Path, folder: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(file.read_text()))
    except (OSError, ValueError, TypeError) as exc:
        raise ResumeMismatchError(
            f"Cannot read '{file}' ({exc}). Delete the folder '{folder}' or use another one."
        ) from None
