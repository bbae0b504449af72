"""The training spine shared by every recipe: options, loop, result.

* [`TrainOptions`][visionkit.training.TrainOptions]: the training options every recipe takes, with the same
  names, meanings and checks (``epochs``, ``batch_size``, ``optimizer``,
  ``learning_rate``, ``lr_schedule``, ``callbacks``, ``checkpoint_dir``, ``resume``,
  ``log_dir``, ``strategy``, ``precision``, ``seed``, ``progress``). The recipes take them as
  keyword arguments and forward them here.
* [`train`][visionkit.training.train]: ``keras.Model.fit`` with what a long run needs: arrays or
  ``tf.data`` datasets; a default loss chosen from the model's output; resumable
  checkpoints ([`Checkpoint`][visionkit.training.Checkpoint]) with a settings fingerprint and verified
  weights files; a NaN stop that restores the last finite weights; labels checked
  against the model's head; TensorBoard logs and ``metrics.csv``.
* [`TrainResult`][visionkit.training.TrainResult]: what every recipe returns; it unpacks as
  ``model, history, metrics`` and carries the class names, the settings and the
  output paths; [`TrainResult.save`][visionkit.training.TrainResult.save] writes ``model.keras``, ``curves.png`` and
  ``metrics.json``.
* [`run_recipe`][visionkit.training.run_recipe]: build a model under the strategy and precision, train it,
  evaluate it, return a [`TrainResult`][visionkit.training.TrainResult]: the recipes are made of it.
* Class names that travel with the model: [`class_names`][visionkit.training.class_names],
  [`with_class_names`][visionkit.training.with_class_names], [`ClassNames`][visionkit.training.ClassNames], and [`load_model`][visionkit.training.load_model].

Files in ``checkpoint_dir``
---------------------------
``settings.json``
    The fingerprint of the run's settings, checked on resume.
``settings.previous.json``
    The settings a ``resume="weights"`` restart replaced (only after one).
``state.json``
    The number of completed epochs, the name and SHA-256 of the weights file that
    holds them, the same for the epoch before (``previous``), the best monitored
    value so far and the per-epoch history.
``epoch-NNNN.weights.h5``
    Model and optimizer variables after epoch ``NNNN`` (the latest two are kept: a
    damaged or missing latest file falls back to the one before, with a warning).
``best.keras``
    The whole model at its best epoch (lowest ``val_loss``, or ``loss`` without
    validation data); ``keras.models.load_model`` reads it.
``lock.json``
    Present while a run trains into the folder: who holds it (pid, host, start
    time). A second run on the folder stops at once with
    [`CheckpointLockedError`][visionkit.errors.CheckpointLockedError]; the lock of a killed run is
    recognised as stale and taken over (with a ``RuntimeWarning``).

Every file is written to a temporary name and renamed into place, and
``state.json`` is replaced only after the weights it names are complete: a kill at
any instant leaves a consistent checkpoint.

Examples
--------
>>> from visionkit import convnets, data, training
>>> (x, y), (x_test, y_test) = data.load_mnist(sample=True)
>>> model = convnets.mnist_convnet()
>>> history = training.train(model, (x[:256], y[:256]), epochs=1, progress=False)
>>> sorted(training.evaluate(model, (x_test[:64], y_test[:64])))
['accuracy', 'loss']
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras

from . import _registered  # noqa: F401  (registers visionkit's layers for keras.models.load_model)
from . import _validate as V
from ._best import BestModel
from ._checkpoint import BEST_FILE, Checkpoint, EpochCheckpoint
from ._datasets import as_dataset, is_arrays, replay_epochs
from ._fingerprint import fingerprint
from ._heads import is_logits
from ._io import atomic_save, save_figure, write_json
from ._label_checks import reraise_label_errors
from ._labels import ClassNames, class_names, with_class_names
from ._labels import class_names as carried_class_names
from ._lock import RunLock
from ._logs import log_callbacks
from ._losses import default_loss_for, make_optimizer, resolve_loss, steps_per_epoch
from ._nan_guard import NanGuard
from ._options import (
    AUGMENT_PRESETS,
    LR_SCHEDULES,
    OPTIMIZERS,
    TRAINING_OPTIONS,
    TrainOptions,
    TrainOptionsKwargs,
)
from ._tricks import MIXING_PRESETS, OneCycle, augment_batches, flip_average
from .device import (
    precision_scope,
    strategy_scope,
)
from .errors import DataNotFoundError, InvalidArgumentError

if TYPE_CHECKING:  # pragma: no cover
    from typing_extensions import Unpack

__all__ = [
    "AUGMENT_PRESETS",
    "LR_SCHEDULES",
    "MAX_MODEL_BYTES",
    "MAX_MODEL_COMPRESSION_RATIO",
    "MAX_MODEL_CONFIG_BYTES",
    "OPTIMIZERS",
    "TRAINING_OPTIONS",
    "Checkpoint",
    "ClassNames",
    "OneCycle",
    "TrainOptions",
    "TrainOptionsKwargs",
    "TrainResult",
    "class_names",
    "default_loss",
    "evaluate",
    "load_model",
    "run_recipe",
    "train",
    "with_class_names",
]

#: Largest JSON member (``config.json``, ``metadata.json``) of a ``.keras`` file that
#: [`load_model`][visionkit.training.load_model] opens, uncompressed: 16 MiB (real configurations take well under 1 MiB).
MAX_MODEL_CONFIG_BYTES: int = 16 * 2**20

#: Largest total uncompressed size of a ``.keras`` file's members that [`load_model`][visionkit.training.load_model] opens: 16 GiB.
MAX_MODEL_BYTES: int = 16 * 2**30

#: Largest compression ratio of a ``.keras`` member over 1 MiB (uncompressed / compressed size): 100.
#: Weights hardly compress; a member that inflates more is a zip bomb.
MAX_MODEL_COMPRESSION_RATIO: int = 100

# ----------------------------------------------------------------------------- result


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What every training recipe returns; unpacks as ``model, history, metrics``.

    Attributes
    ----------
    model : keras.Model
        The trained model. When the recipe knows the class names, the model carries
        them ([`class_names`][visionkit.training.class_names]), also through ``model.save`` and
        ``keras.models.load_model``.
    history : keras.callbacks.History
        ``history.history[name]``: one value per epoch of the whole run (resumed
        epochs and both fine-tuning phases included).
    metrics : dict of str to float
        The held-out evaluation: the test set for the recipes (or the validation
        split when there is no test set), e.g. ``{"loss": 0.03, "accuracy": 0.99}``;
        empty when there is nothing to evaluate on.
    class_names : tuple of str or None
        The names of the model's classes, in label order.
    settings : dict
        The resolved settings of the run (training options and recipe options),
        JSON-able: what ``metrics.json`` records.
    paths : dict of str to pathlib.Path
        Files and folders the run wrote: ``checkpoint_dir`` and ``log_dir`` when
        given, and ``model``, ``curves`` and ``metrics`` after ``save``.
    seconds : float
        Wall time of the run.

    Examples
    --------
    >>> import numpy as np
    >>> from visionkit.convnets import train_mnist
    >>> model, history, metrics = train_mnist(sample=True, epochs=1, limit=256, progress=False)
    >>> result = train_mnist(sample=True, epochs=1, limit=256, progress=False)
    >>> result.class_names[:3], sorted(result.metrics)
    (('0', '1', '2'), ['accuracy', 'loss'])
    """

    model: Any
    history: Any
    metrics: dict[str, float]
    class_names: tuple[str, ...] | None = None
    settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    paths: Mapping[str, Path] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0

    def __iter__(self) -> Any:
        return iter((self.model, self.history, self.metrics))

    def __len__(self) -> int:
        return 3

    def __getitem__(self, index: int) -> Any:
        return (self.model, self.history, self.metrics)[index]

    def save(self, directory: str | os.PathLike[str], *, curves: bool = True) -> TrainResult:
        """Write ``model.keras``, ``curves.png`` and ``metrics.json`` into ``directory``.

        Every file is written atomically. ``metrics.json`` holds ``test`` (the
        metrics), ``history``, ``epochs``, ``class_names``, ``settings`` and
        ``seconds``.

        Returns
        -------
        TrainResult
            A copy whose ``paths`` also name the files written.
        """
        if not isinstance(directory, (str, os.PathLike)):
            raise V.fail("directory", "a folder path", directory)
        out = Path(directory)
        paths = {"model": out / "model.keras", "metrics": out / "metrics.json"}
        atomic_save(paths["model"], self.model.save)
        if curves:
            import matplotlib.pyplot as plt

            from .visualize import plot_history

            fig = plot_history(self.history)
            paths["curves"] = save_figure(fig, out / "curves.png")
            plt.close(fig)
        write_json(paths["metrics"], {
            "test": dict(self.metrics),
            "history": {k: [float(v) for v in vals] for k, vals in self.history.history.items()},
            "epochs": len(self.history.epoch),
            "class_names": list(self.class_names) if self.class_names else None,
            "settings": dict(self.settings),
            "seconds": round(self.seconds, 2),
        })
        return dataclasses.replace(self, paths={**self.paths, **paths})


# ----------------------------------------------------------------------------- public


def train(
    model: keras.Model,
    train_data: Any,
    *,
    validation_data: Any = None,
    loss: Any = None,
    metrics: Sequence[Any] | None = ("accuracy",),
    **options: Unpack[TrainOptionsKwargs],
) -> keras.callbacks.History:
    """Compile and train ``model``, resumably; return its ``History`` (the loop under every recipe).

    The model is trained in place (as ``fit`` does); the data arrays are not
    modified. ``model`` is (re)compiled with the arguments given here.

    Parameters
    ----------
    model : keras.Model
        A built model (it has an ``Input``), e.g. from [`visionkit.convnets`][visionkit.convnets].
    train_data : (x, y) tuple of arrays or tf.data.Dataset
        Arrays: ``x`` of shape ``(N, *model.input_shape[1:])`` (any numeric dtype,
        cast to float32 per batch), ``y`` of shape ``(N,)``, ``(N, 1)`` or one-hot
        ``(N, classes)``. A dataset must yield ``(x_batch, y_batch)``; it is used as
        it is (already batched, as global batches: ``batch_size`` is then ignored).
    validation_data : (x, y) tuple or tf.data.Dataset, optional
        Evaluated after every epoch; its ``val_loss`` picks the best checkpoint.
    loss : str, callable or keras.losses.Loss, optional
        ``None`` picks one from the output shape (see [`default_loss`][visionkit.training.default_loss]).
    metrics : sequence, default ("accuracy",)
        Keras metrics. With the default loss, ``"accuracy"`` becomes the accuracy
        that matches it (binary with the right threshold for logits, or sparse
        categorical).
    **options
        The shared training options ([`TrainOptions`][visionkit.training.TrainOptions]): ``epochs`` (default
        10), ``batch_size`` (32), ``optimizer`` ("rmsprop"), ``learning_rate``,
        ``lr_schedule``, ``callbacks``, ``checkpoint_dir``, ``resume``, ``log_dir``,
        ``strategy``, ``precision``, ``seed``, ``progress``. Under a ``strategy``
        the model must have been built under ``strategy.scope()`` (the recipes do
        it); under ``MultiWorkerMirroredStrategy``, where Keras 3's ``fit`` cannot
        run, visionkit's own distributed loop runs the same callbacks (see the
        "Scaling out" page).

    Returns
    -------
    keras.callbacks.History
        ``history.history[name]`` holds one value per epoch **of the whole run**,
        resumed epochs included (``history.epoch`` numbers them from 0).

    Raises
    ------
    InvalidArgumentError
        A bad argument (the message names it), or labels outside what the model's
        head takes with a classification loss (e.g. a class index ≥ the number of
        softmax units, a label other than 0/1 for one sigmoid unit): label arrays
        are checked before training, a dataset's labels batch by batch as they are
        read.
    UnexpectedArgumentError
        A keyword that is no training option.
    ResumeMismatchError
        ``checkpoint_dir`` holds a run with different settings (and ``resume`` is not
        ``"weights"``), or its weights files are damaged or missing with none to fall
        back to.

    Warns
    -----
    RuntimeWarning
        The loss became NaN or infinite: training stopped and the model's last finite
        weights (and optimizer state) were put back, from memory, so also without
        ``checkpoint_dir`` and in the first epoch; or the latest checkpoint file was
        damaged and the previous epoch's was resumed from.

    Notes
    -----
    XLA (``jit_compile``) is left to Keras' ``"auto"`` rule: on for GPUs/TPUs,
    off on CPU-only machines, where it is usually slower (see
    ``benchmarks/convnets.py``).

    Examples
    --------
    >>> from visionkit import convnets, data, training
    >>> (x, y), _ = data.load_mnist(sample=True)
    >>> model = convnets.mnist_convnet()
    >>> history = training.train(model, (x[:256], y[:256]), epochs=1, progress=False)
    >>> sorted(history.history)
    ['accuracy', 'loss']
    """
    opts = TrainOptions.from_kwargs(options)
    return _train(model, train_data, validation_data=validation_data, loss=loss, metrics=metrics, options=opts)


def _train(model: Any, train_data: Any, *, validation_data: Any, loss: Any, metrics: Any,
           options: TrainOptions) -> Any:
    """[`train`][visionkit.training.train] with checked options (what [`run_recipe`][visionkit.training.run_recipe] calls)."""
    _check_model(model)
    if metrics is not None and (isinstance(metrics, str) or not isinstance(metrics, Sequence)):
        raise V.fail("metrics", "a list or tuple of metrics (e.g. ('accuracy',)) or None", metrics)
    run = options.resolve()
    options, strat = run.options, run.strategy
    _check_scope(model, strat)
    _check_precision(model, run.precision)
    from ._distributed import distributed_fit, is_chief, needs_custom_loop, task_info

    custom = strat is not None and needs_custom_loop(strat)
    chief = is_chief(strat) if custom else True
    seed = 0 if custom and options.seed is None else options.seed  # every worker must shuffle alike
    batch = run.global_batch
    train_ds, label_info = as_dataset(model, train_data, "train_data", batch_size=batch, shuffle=True, seed=seed,
                                       loss=loss)
    train_ds = _augment(model, train_ds, options, loss=loss, seed=seed)
    val_ds = None
    if validation_data is not None:
        val_ds, _ = as_dataset(model, validation_data, "validation_data", batch_size=batch, shuffle=False,
                                seed=None, loss=loss)

    monitor = "val_loss" if val_ds is not None else "loss"
    folder = options.checkpoint_dir
    if folder is not None and not chief:
        folder = folder / f"worker-{task_info(strat)[1]}"
    # one run per folder, held until the run ends (an exception or Ctrl-C included); a killed
    # run's lock is recognised as stale and taken over, so it resumes
    with RunLock(folder) if folder is not None else contextlib.nullcontext():
        # one job per callback: the NaN guard first (it judges each epoch), then best.keras, then the resume files
        nan_guard = NanGuard()
        files = EpochCheckpoint(folder, monitor=monitor, resume=options.resume, guard=nan_guard)
        loss_obj = _compile(model, train_ds, files, options=options, strategy=strat, loss=loss, metrics=metrics,
                            label_info=label_info, batch_size=options.batch_size if is_arrays(train_data) else None)
        initial_epoch = files.restore(model)
        previous = {k: list(v) for k, v in files.state.get("history", {}).items()}
        if initial_epoch > options.epochs:
            warnings.warn(
                f"Checkpoint folder '{folder}' already holds {initial_epoch} epochs, more than "
                f"epochs={options.epochs}: nothing was trained and the model has the weights of epoch {initial_epoch}.",
                RuntimeWarning,
                stacklevel=3,
            )
        own: list[Any] = [nan_guard, files]
        if folder is not None and chief:
            own.insert(1, BestModel(folder / BEST_FILE, monitor=monitor, best=files.best, guard=nan_guard))
        if options.log_dir is not None and chief:
            own += log_callbacks(options.log_dir, resumed=initial_epoch > 0)

        verbose = (1 if sys.stdout.isatty() else 2) if options.progress and chief else 0
        start = min(initial_epoch, options.epochs)
        if start and is_arrays(train_data) and not custom:  # the pipeline is ours: continue its random state
            replay_epochs(train_ds, start)
        callbacks = own + list(options.callbacks)
        with reraise_label_errors():
            if custom:
                history = distributed_fit(
                    model, train_ds, strategy=strat, loss=loss_obj, epochs=options.epochs, initial_epoch=start,
                    validation_data=val_ds, accuracy=any(m in ("accuracy", "acc") for m in (metrics or ())),
                    from_logits=is_logits(model), callbacks=callbacks, verbose=verbose,
                )
                if options.ema is not None:  # what Keras' fit does at its end
                    model.optimizer.finalize_variable_values(model.trainable_variables)
            else:
                history = model.fit(train_ds, validation_data=val_ds, epochs=options.epochs, initial_epoch=start,
                                    callbacks=callbacks, verbose=verbose, shuffle=False)  # the dataset shuffles itself
        if nan_guard.diverged:
            _warn_diverged(nan_guard, nan_guard.restore_last_good(model, files), options)
        return _merge_history(history, previous, model)


def _compile(model: Any, train_ds: Any, guard: EpochCheckpoint, *, options: TrainOptions, strategy: Any, loss: Any,
             metrics: Any, label_info: dict[str, Any], batch_size: int | None) -> Any:
    """Build the optimizer, settle the checkpoint settings (resume or weights restart), compile; return the loss.

    A ``"cosine"`` schedule spans the epochs from the optimizer's first epoch (0, or the
    epoch a ``resume="weights"`` restart starts from) to ``epochs``.
    """
    steps = None
    if options.lr_schedule != "constant":
        steps = steps_per_epoch(train_ds, "train_data", options.lr_schedule)

    def build(first_epoch: int) -> tuple[Any, Any, Any, dict[str, Any] | None]:
        span = max(options.epochs - first_epoch, 1)
        with strategy_scope(strategy):
            opt = make_optimizer(options.optimizer, options.learning_rate, schedule=options.lr_schedule,
                                  total_steps=None if steps is None else span * steps, ema=options.ema)
            loss_obj, metric_objs, loss_desc = resolve_loss(model, loss, metrics, label_info,
                                                            label_smoothing=options.label_smoothing,
                                                            soft_labels=options.augment in MIXING_PRESETS)
        if guard.directory is None:
            return opt, loss_obj, metric_objs, None
        # no schedule entry for "constant", so older checkpoint folders still resume
        schedule = None if steps is None else f"{options.lr_schedule} over {span} epochs of {steps} steps"
        settings = fingerprint(model, opt, loss=loss_desc, metrics=metrics, label_shape=label_info["label_shape"],
                               batch_size=batch_size, lr_schedule=schedule)
        if options.augment != "none":  # (no entry without it, so older checkpoint folders still resume)
            settings["augment"] = options.augment
        return opt, loss_obj, metric_objs, settings | ({"restart_epoch": first_epoch} if first_epoch else {})

    opt, loss_obj, metric_objs, settings = build(guard.restart_epoch)
    if settings is not None and guard.needs_restart(settings):  # resume="weights" with new settings
        opt, loss_obj, metric_objs, settings = build(guard.completed_epochs)
    if settings is not None:
        guard.apply_settings(settings)
    with strategy_scope(strategy):
        model.compile(optimizer=opt, loss=loss_obj, metrics=metric_objs)
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
    return loss_obj


def _augment(model: Any, train_ds: Any, options: TrainOptions, *, loss: Any, seed: int | None) -> Any:
    """The training batches through the ``augment`` preset (after the label checks); check the loss fits."""
    if options.label_smoothing and loss is not None:
        raise InvalidArgumentError(
            "Argument `label_smoothing` smooths the default loss; with an explicit `loss`, set the smoothing on "
            f"it instead (e.g. keras.losses.CategoricalCrossentropy(label_smoothing=...)). Received: "
            f"label_smoothing={options.label_smoothing!r}, loss={loss!r}"
        )
    if options.augment in MIXING_PRESETS and loss is not None:
        raise InvalidArgumentError(
            f"Argument `augment`={options.augment!r} turns the labels into soft, mixed rows, which only the "
            "default loss is set up for; leave `loss` unset or pick another preset. Received: "
            f"augment={options.augment!r}, loss={loss!r}"
        )
    if options.augment == "none":
        return train_ds
    units = int(model.outputs[0].shape[-1]) if model.outputs and model.outputs[0].shape[-1] else 1
    return augment_batches(train_ds, options.augment, units=units, seed=seed)


def _warn_diverged(guard: NanGuard, restored: str | None, options: TrainOptions) -> None:
    where = f"its weights were restored from {restored}" if restored else "there were no finite weights to restore"
    if options.checkpoint_dir is not None:
        advice = ("To continue from the restored weights with a lower learning rate, run again with the same "
                  '`checkpoint_dir`, the new `learning_rate` and resume="weights" (command line: --resume weights).')
    else:
        advice = "To continue, call train() again on this model with a lower `learning_rate`."
    warnings.warn(
        f"Training stopped in epoch {guard.diverged_epoch + 1}: the loss became NaN or infinite; {where}. "
        f"Lower the learning rate or check the data. {advice}",
        RuntimeWarning,
        stacklevel=4,
    )


def run_recipe(
    build: Callable[[], keras.Model],
    train_data: Any | Callable[[Any], Any],
    *,
    options: TrainOptions,
    validation_data: Any = None,
    test_data: Any = None,
    class_names: Sequence[str] | None = None,
    settings: Mapping[str, Any] | None = None,
    loss: Any = None,
    fit: Callable[[keras.Model, TrainOptions], keras.callbacks.History] | None = None,
) -> TrainResult:
    """Build a model under the run's strategy and precision, train, evaluate: a recipe.

    Every recipe of [`visionkit.convnets`][visionkit.convnets] and [`visionkit.transfer`][visionkit.transfer] is a call
    of this; write your own the same way.

    Parameters
    ----------
    build : callable
        ``build()`` returns a new, built ``keras.Model``. It is called inside
        ``strategy.scope()`` and [`visionkit.device.precision_scope`][visionkit.device.precision_scope].
    train_data, validation_data, test_data
        As for [`train`][visionkit.training.train] (arrays or batched datasets). ``test_data`` gives
        ``TrainResult.metrics``; without it, they are the last epoch's validation
        metrics (``val_`` prefix removed; empty without ``validation_data``).
    options : TrainOptions
        The run's training options (e.g. ``TrainOptions.from_kwargs(kwargs,
        epochs=5)``), resolved once here ([`TrainOptions.resolve`][visionkit.training.TrainOptions.resolve]).
    class_names : sequence of str, optional
        The returned model carries them (see [`with_class_names`][visionkit.training.with_class_names]);
        a model that already carries these names is returned as it is.
    settings : mapping, optional
        The recipe's own settings, recorded with the options in
        ``TrainResult.settings``.
    loss : optional
        As for [`train`][visionkit.training.train].
    fit : callable, optional
        ``fit(model, options)`` trains the built model with the resolved options
        and returns its ``History`` (e.g. the two phases of
        [`visionkit.transfer.fine_tune`][visionkit.transfer.fine_tune]); default: [`train`][visionkit.training.train]
        on ``train_data`` and ``validation_data`` with ``loss``.

    Returns
    -------
    TrainResult

    Examples
    --------
    >>> import keras, numpy as np
    >>> from visionkit import training
    >>> x = np.random.default_rng(0).random((64, 8, 8, 1), dtype=np.float32)
    >>> y = (x.mean(axis=(1, 2, 3)) > 0.5).astype("int32")
    >>> def build():
    ...     return keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
    ...                              keras.layers.Dense(2, activation="softmax")])
    >>> result = training.run_recipe(build, (x, y), test_data=(x, y), class_names=["dark", "bright"],
    ...                              options=training.TrainOptions(epochs=1, progress=False))
    >>> result.class_names, training.class_names(result.model)
    (('dark', 'bright'), ['dark', 'bright'])
    """
    started = time.perf_counter()
    if not isinstance(options, TrainOptions):
        raise V.fail("options", "a visionkit.training.TrainOptions", options)
    run = options.resolve()
    options = run.options
    with strategy_scope(run.strategy), precision_scope(run.precision):
        model = build()
    if fit is None:
        history = _train(model, train_data, validation_data=validation_data, loss=loss,
                         metrics=("accuracy",), options=options)
    else:
        history = fit(model, options)
    policy = model.dtype_policy.name  # before the class-names wrapper, built outside the scope
    if test_data is not None:
        metrics = evaluate(model, test_data, batch_size=run.global_batch)
        if options.tta:  # with test-time augmentation; without it under the _no_tta names
            plain = {f"{k}_no_tta": v for k, v in metrics.items()}
            metrics = {**evaluate(model, test_data, batch_size=run.global_batch, tta=True), **plain}
    else:  # the last epoch's validation metrics
        metrics = {k[4:]: float(v[-1]) for k, v in history.history.items() if k.startswith("val_") and v}
    if class_names is not None and carried_class_names(model) != list(class_names):
        model = with_class_names(model, class_names)
    paths = {k: v for k, v in (("checkpoint_dir", options.checkpoint_dir), ("log_dir", options.log_dir)) if v}
    return TrainResult(
        model=model, history=history, metrics=metrics,
        class_names=tuple(class_names) if class_names is not None else None,
        settings={**options.to_dict(), "precision": policy, **dict(settings or {})},
        paths=paths, seconds=time.perf_counter() - started,
    )


def evaluate(model: keras.Model, data: Any, *, batch_size: int = 32, tta: bool = False) -> dict[str, float]:
    """Evaluate ``model`` on ``data``; return ``{metric_name: value}``.

    Parameters
    ----------
    model : keras.Model
        A trained model. If it was never compiled it is compiled with the default
        loss and ``"accuracy"`` (see [`default_loss`][visionkit.training.default_loss]); the caller's model is
        then compiled in place, as Keras would.
    data : (x, y) tuple of arrays or tf.data.Dataset
        As for [`train`][visionkit.training.train]; a dataset is used as it is.
    batch_size : int, default 32
        Batch size for arrays.
    tta : bool, default False
        Test-time augmentation: evaluate the mean of the model's outputs on each
        image ``(batch, height, width, channels)`` and on its mirror image (width
        flipped), with the model's loss and the accuracy that matches its head.

    Returns
    -------
    dict
        Python floats keyed by metric name, e.g. ``{"loss": 0.03, "accuracy": 0.99}``.

    Examples
    --------
    >>> from visionkit import convnets, data, training
    >>> (_, _), (x_test, y_test) = data.load_mnist(sample=True)
    >>> result = training.evaluate(convnets.mnist_convnet(), (x_test[:64], y_test[:64]))
    >>> sorted(result), 0.0 <= result["accuracy"] <= 1.0
    (['accuracy', 'loss'], True)
    """
    _check_model(model)
    batch_size = V.integer("batch_size", batch_size, minimum=1)
    compiled_loss = getattr(model, "loss", None) if getattr(model, "compiled", False) else None
    ds, label_info = as_dataset(model, data, "data", batch_size=batch_size, shuffle=False, seed=None,
                                 loss=compiled_loss)
    from ._distributed import evaluate_local, needs_custom_loop

    if V.boolean("tta", tta):
        if len(model.inputs[0].shape) != 4:
            raise V.fail("tta", "False for a model whose input is not images (batch, height, width, channels)",
                         tta)
        loss_obj = compiled_loss or resolve_loss(model, None, (), label_info)[0]
        _, metric_objs, _ = resolve_loss(model, None, ("accuracy",), label_info)
        averaged = flip_average(model)
        averaged.compile(loss=loss_obj, metrics=metric_objs)
        with reraise_label_errors():
            results = averaged.evaluate(ds, verbose=0, return_dict=True)
        return {str(k): float(v) for k, v in results.items()}
    if needs_custom_loop(model.distribute_strategy):
        # Keras' evaluate() fails under MultiWorkerMirroredStrategy: evaluate locally.
        loss_obj = getattr(model, "loss", None) or resolve_loss(model, None, (), label_info)[0]
        with reraise_label_errors():
            return evaluate_local(model, ds, loss=loss_obj, accuracy=True, from_logits=is_logits(model))
    if not getattr(model, "compiled", False) or model.optimizer is None:
        loss_obj, metric_objs, _ = resolve_loss(model, None, ("accuracy",), label_info)
        model.compile(optimizer="rmsprop", loss=loss_obj, metrics=metric_objs)
    with reraise_label_errors():
        results = model.evaluate(ds, verbose=0, return_dict=True)
    return {str(k): float(v) for k, v in results.items()}


def load_model(path: str | os.PathLike[str], *, compile: bool = False, safe_mode: bool = True) -> keras.Model:
    """Load a ``.keras`` model saved by visionkit or Keras (safe mode by default).

    visionkit's own layers ([`ClassNames`][visionkit.training.ClassNames], the transfer backbones'
    preprocessing) are registered first, so a saved recipe model comes back with
    its class names.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.keras`` file.
    compile : bool, default False
        Also restore the training configuration.
    safe_mode : bool, default True
        Refuse to deserialise Python code (``Lambda`` layers). Only pass ``False``
        for files you trust.

    Returns
    -------
    keras.Model

    Raises
    ------
    DataNotFoundError
        ``path`` is not a file.
    InvalidArgumentError
        The file is not a loadable ``.keras`` model, its class-name metadata is not one
        distinct string per output, or its members are larger than
        [`MAX_MODEL_CONFIG_BYTES`][visionkit.training.MAX_MODEL_CONFIG_BYTES] (JSON),
        [`MAX_MODEL_BYTES`][visionkit.training.MAX_MODEL_BYTES] (in all) or inflate more than
        [`MAX_MODEL_COMPRESSION_RATIO`][visionkit.training.MAX_MODEL_COMPRESSION_RATIO]
        (checked from the zip directory, before Keras reads anything). The message names the file.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise V.fail("path", "a path to a .keras file", path)
    file = Path(path)
    if not file.is_file():
        raise DataNotFoundError(f"Model file not found: '{file}' (argument `path`).")
    _check_model_archive(file)
    try:
        return keras.saving.load_model(file, safe_mode=safe_mode, compile=compile)
    except InvalidArgumentError as exc:  # ours, from a layer's saved configuration (class names)
        raise InvalidArgumentError(f"Could not load the Keras model '{file}': {exc}") from exc
    except Exception as exc:  # Keras raises many kinds; report them all the same way
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidArgumentError(
            f"Could not load the Keras model '{file}' (expected a .keras file saved with "
            f"model.save()): {type(exc).__name__}: {first}"
        ) from exc


def _check_model_archive(file: Path) -> None:
    """Refuse a ``.keras`` zip whose members would inflate past the documented caps (read from its directory)."""
    import zipfile

    if not zipfile.is_zipfile(file):
        return  # not a zip: Keras reports it
    try:
        with zipfile.ZipFile(file) as zf:
            infos = zf.infolist()
    except (OSError, zipfile.BadZipFile, ValueError):
        return  # Keras reports a damaged directory
    total = sum(i.file_size for i in infos)
    for info in infos:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.filename.endswith(".json") and info.file_size > MAX_MODEL_CONFIG_BYTES:
            why = f"is {info.file_size:,} bytes uncompressed (limit MAX_MODEL_CONFIG_BYTES = {MAX_MODEL_CONFIG_BYTES:,})"
        elif info.file_size > 2**20 and ratio > MAX_MODEL_COMPRESSION_RATIO:
            why = (f"inflates {ratio:,.0f} times, from {info.compress_size:,} to {info.file_size:,} bytes "
                   f"(limit MAX_MODEL_COMPRESSION_RATIO = {MAX_MODEL_COMPRESSION_RATIO})")
        else:
            continue
        raise InvalidArgumentError(
            f"Refused to load the Keras model '{file}': its member '{info.filename}' {why}; "
            "the file is damaged or not a model (see visionkit.training)."
        )
    if total > MAX_MODEL_BYTES:
        raise InvalidArgumentError(
            f"Refused to load the Keras model '{file}': its members take {total:,} bytes uncompressed "
            f"(limit visionkit.training.MAX_MODEL_BYTES = {MAX_MODEL_BYTES:,})."
        )


def default_loss(model: keras.Model, *, one_hot: bool = False) -> keras.losses.Loss:
    """The loss [`train`][visionkit.training.train] picks for ``model`` when ``loss=None``.

    Parameters
    ----------
    model : keras.Model
        Its output must have shape ``(batch, units)``.
    one_hot : bool, default False
        Labels are one-hot ``(batch, units)`` rather than integers.

    Returns
    -------
    keras.losses.Loss
        ``BinaryCrossentropy`` for one unit, ``SparseCategoricalCrossentropy``
        (``CategoricalCrossentropy`` when ``one_hot``) for more, with
        ``from_logits=True`` when the last layer's activation is linear.

    Examples
    --------
    >>> from visionkit import convnets, training
    >>> type(training.default_loss(convnets.mnist_convnet(variant="cookbook"))).__name__
    'SparseCategoricalCrossentropy'
    """
    _check_model(model)
    loss, _, _ = default_loss_for(model, one_hot=one_hot)
    return loss


# ----------------------------------------------------------------------------- helpers


def _check_model(model: Any) -> None:
    import keras

    if not isinstance(model, keras.Model):
        raise V.fail("model", "a keras.Model", type(model).__name__)
    if not model.built or not model.inputs:
        raise V.fail("model", "a built model with a known input shape (start it with keras.Input)", model.name)


def _check_scope(model: Any, strat: Any) -> None:
    """Refuse a model whose variables were not created under ``strat``'s scope."""
    import tensorflow as tf

    if strat is None or strat is tf.distribute.get_strategy() or not model.weights:
        return
    variable = getattr(model.weights[0], "value", model.weights[0])
    if not strat.extended.variable_created_in_scope(variable):
        raise InvalidArgumentError(
            f"Model '{model.name}' was built outside `strategy.scope()`, so its weights cannot be "
            f"distributed by {type(strat).__name__}. Build it inside the scope:\n"
            "    with strategy.scope():\n        model = ...\n"
            f"Received: strategy={type(strat).__name__} with {strat.num_replicas_in_sync} replica(s)"
        )



def _check_precision(model: Any, precision: str | None) -> None:
    """A built model's dtype policy cannot be changed by ``train``: check it matches the resolved ``precision``."""
    if precision is not None and model.dtype_policy.name != precision:
        raise InvalidArgumentError(
            f"Model '{model.name}' was built with dtype policy '{model.dtype_policy.name}', not "
            f"'{precision}'; train() cannot change a built model's precision. Build it under "
            f"`visionkit.device.precision_scope({precision!r})` (the recipes do), or leave `precision` unset. "
            f"Received: precision={precision!r}"
        )


def _merge_history(history: Any, previous: dict[str, list[float]], model: Any) -> Any:
    """Prepend the epochs of earlier (interrupted) runs to ``history``."""
    import keras

    if not previous:
        return history
    merged = keras.callbacks.History()
    merged.set_model(model)
    n_prev = max((len(v) for v in previous.values()), default=0)
    keys = list(dict.fromkeys([*previous, *history.history]))
    merged.history = {k: list(previous.get(k, [float("nan")] * n_prev)) + list(history.history.get(k, [])) for k in keys}
    merged.epoch = list(range(n_prev)) + list(history.epoch)
    merged.params = getattr(history, "params", {})
    return merged
