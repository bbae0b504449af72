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
import json
import math
import os
import re
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras
import numpy as np

from . import _fast_cifar  # noqa: F401  (registers the fast recipe's layers for keras.models.load_model)
from . import _validate as V
from ._checkpoint import Checkpoint, fingerprint
from ._heads import head_kind, output_layer
from ._heads import is_logits as _is_logits
from ._io import atomic_save, save_figure, write_json
from ._labels import ClassNames, class_names, with_class_names
from ._options import LR_SCHEDULES, OPTIMIZERS, TRAINING_OPTIONS, TrainingOptions, TrainOptions
from .device import (
    global_batch_size,
    precision_scope,
    resolve_precision,
    resolve_strategy,
    strategy_scope,
)
from .errors import DataNotFoundError, InvalidArgumentError

if TYPE_CHECKING:  # pragma: no cover
    import tensorflow as tf
    from typing_extensions import Unpack

__all__ = [
    "LR_SCHEDULES",
    "OPTIMIZERS",
    "TRAINING_OPTIONS",
    "Checkpoint",
    "ClassNames",
    "TrainOptions",
    "TrainResult",
    "TrainingOptions",
    "class_names",
    "default_loss",
    "evaluate",
    "load_model",
    "run_recipe",
    "train",
    "with_class_names",
]

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
    **options: Unpack[TrainingOptions],
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
    strat = resolve_strategy(options.strategy)
    _check_scope(model, strat)
    _check_precision(model, options.precision)
    from ._distributed import distributed_fit, is_chief, needs_custom_loop, task_info

    custom = strat is not None and needs_custom_loop(strat)
    chief = is_chief(strat) if custom else True
    seed = 0 if custom and options.seed is None else options.seed  # every worker must shuffle alike
    batch = global_batch_size(options.batch_size, strat)
    train_ds, label_info = _as_dataset(model, train_data, "train_data", batch_size=batch, shuffle=True, seed=seed,
                                       loss=loss)
    val_ds = None
    if validation_data is not None:
        val_ds, _ = _as_dataset(model, validation_data, "validation_data", batch_size=batch, shuffle=False,
                                seed=None, loss=loss)

    monitor = "val_loss" if val_ds is not None else "loss"
    folder = options.checkpoint_dir
    if folder is not None and not chief:
        folder = folder / f"worker-{task_info(strat)[1]}"
    guard = Checkpoint(folder, monitor=monitor, save_best=chief, resume=options.resume)
    loss_obj = _compile(model, train_ds, guard, options=options, strategy=strat, loss=loss, metrics=metrics,
                        label_info=label_info, batch_size=options.batch_size if _is_arrays(train_data) else None)
    initial_epoch = guard.restore(model)
    previous = {k: list(v) for k, v in guard.state.get("history", {}).items()}
    if initial_epoch > options.epochs:
        warnings.warn(
            f"Checkpoint folder '{folder}' already holds {initial_epoch} epochs, more than "
            f"epochs={options.epochs}: nothing was trained and the model has the weights of epoch {initial_epoch}.",
            RuntimeWarning,
            stacklevel=3,
        )
    own = [keras.callbacks.TerminateOnNaN(), guard]
    if options.log_dir is not None and chief:
        own += _log_callbacks(options.log_dir, resumed=initial_epoch > 0)

    verbose = (1 if sys.stdout.isatty() else 2) if options.progress and chief else 0
    start = min(initial_epoch, options.epochs)
    callbacks = own + list(options.callbacks)
    with _reraise_label_errors():
        if custom:
            history = distributed_fit(
                model, train_ds, strategy=strat, loss=loss_obj, epochs=options.epochs, initial_epoch=start,
                validation_data=val_ds, accuracy=any(m in ("accuracy", "acc") for m in (metrics or ())),
                from_logits=_is_logits(model), callbacks=callbacks, verbose=verbose,
            )
        else:
            history = model.fit(train_ds, validation_data=val_ds, epochs=options.epochs, initial_epoch=start,
                                callbacks=callbacks, verbose=verbose, shuffle=False)  # the dataset shuffles itself
    if guard.diverged:
        _warn_diverged(guard, guard.restore_last_good(model), options)
    return _merge_history(history, previous, model)


def _compile(model: Any, train_ds: Any, guard: Checkpoint, *, options: TrainOptions, strategy: Any, loss: Any,
             metrics: Any, label_info: dict[str, Any], batch_size: int | None) -> Any:
    """Build the optimizer, settle the checkpoint settings (resume or weights restart), compile; return the loss.

    A ``"cosine"`` schedule spans the epochs from the optimizer's first epoch (0, or the
    epoch a ``resume="weights"`` restart starts from) to ``epochs``.
    """
    steps = None
    if options.lr_schedule != "constant":
        steps = _steps_per_epoch(train_ds, "train_data", options.lr_schedule)

    def build(first_epoch: int) -> tuple[Any, Any, Any, dict[str, Any] | None]:
        span = max(options.epochs - first_epoch, 1)
        with strategy_scope(strategy):
            opt = _make_optimizer(options.optimizer, options.learning_rate, schedule=options.lr_schedule,
                                  total_steps=None if steps is None else span * steps)
            loss_obj, metric_objs, loss_desc = _resolve_loss(model, loss, metrics, label_info)
        if guard.directory is None:
            return opt, loss_obj, metric_objs, None
        # no schedule entry for "constant", so older checkpoint folders still resume
        schedule = None if steps is None else f"{options.lr_schedule} over {span} epochs of {steps} steps"
        settings = fingerprint(model, opt, loss=loss_desc, metrics=metrics, label_shape=label_info["label_shape"],
                               batch_size=batch_size, lr_schedule=schedule)
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


def _warn_diverged(guard: Checkpoint, restored: str | None, options: TrainOptions) -> None:
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


def _log_callbacks(log_dir: Path, *, resumed: bool) -> list[Any]:
    """TensorBoard logs and Keras' own ``CSVLogger``.

    ``CSVLogger`` appends on a resumed run so the rows of earlier epochs stay (it
    writes one line per epoch and flushes it, so a crash loses at most the line being
    written), and starts a new file otherwise.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    return [
        _tensorboard(log_dir),
        keras.callbacks.CSVLogger(str(log_dir / "metrics.csv"), append=resumed),
    ]


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
        ``TrainResult.metrics``.
    options : TrainOptions
        The run's training options (e.g. ``TrainOptions.from_kwargs(kwargs,
        epochs=5)``).
    class_names : sequence of str, optional
        The returned model carries them (see [`with_class_names`][visionkit.training.with_class_names]).
    settings : mapping, optional
        The recipe's own settings, recorded with the options in
        ``TrainResult.settings``.
    loss : optional
        As for [`train`][visionkit.training.train].

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
    strat = resolve_strategy(options.strategy)
    precision = resolve_precision(options.precision)
    options = options.replace(strategy=strat, precision=precision)
    with strategy_scope(strat), precision_scope(precision):
        model = build()
    history = _train(model, train_data, validation_data=validation_data, loss=loss,
                     metrics=("accuracy",), options=options)
    policy = model.dtype_policy.name  # before the class-names wrapper, built outside the scope
    metrics = {}
    if test_data is not None:
        metrics = evaluate(model, test_data, batch_size=global_batch_size(options.batch_size, strat))
    if class_names is not None:
        model = with_class_names(model, class_names)
    paths = {k: v for k, v in (("checkpoint_dir", options.checkpoint_dir), ("log_dir", options.log_dir)) if v}
    return TrainResult(
        model=model, history=history, metrics=metrics,
        class_names=tuple(class_names) if class_names is not None else None,
        settings={**options.to_dict(), "precision": policy, **dict(settings or {})},
        paths=paths, seconds=time.perf_counter() - started,
    )


def evaluate(model: keras.Model, data: Any, *, batch_size: int = 32) -> dict[str, float]:
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
    ds, label_info = _as_dataset(model, data, "data", batch_size=batch_size, shuffle=False, seed=None,
                                 loss=compiled_loss)
    from ._distributed import evaluate_local, needs_custom_loop

    if needs_custom_loop(model.distribute_strategy):
        # Keras' evaluate() fails under MultiWorkerMirroredStrategy: evaluate locally.
        loss_obj = getattr(model, "loss", None) or _resolve_loss(model, None, (), label_info)[0]
        with _reraise_label_errors():
            return evaluate_local(model, ds, loss=loss_obj, accuracy=True, from_logits=_is_logits(model))
    if not getattr(model, "compiled", False) or model.optimizer is None:
        loss_obj, metric_objs, _ = _resolve_loss(model, None, ("accuracy",), label_info)
        model.compile(optimizer="rmsprop", loss=loss_obj, metrics=metric_objs)
    with _reraise_label_errors():
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
        The file is not a loadable ``.keras`` model (the message names it).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise V.fail("path", "a path to a .keras file", path)
    file = Path(path)
    if not file.is_file():
        raise DataNotFoundError(f"Model file not found: '{file}' (argument `path`).")
    from . import (
        calibration,  # noqa: F401  (registers the Temperature layer)
        transfer,  # noqa: F401  (registers the backbone preprocessing layer)
    )

    try:
        return keras.saving.load_model(file, safe_mode=safe_mode, compile=compile)
    except Exception as exc:  # Keras raises many kinds; report them all the same way
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidArgumentError(
            f"Could not load the Keras model '{file}' (expected a .keras file saved with "
            f"model.save()): {type(exc).__name__}: {first}"
        ) from exc


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
    loss, _, _ = _default_loss(model, one_hot=one_hot)
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


def _is_arrays(data: Any) -> bool:
    return isinstance(data, (tuple, list)) and len(data) == 2


def _as_dataset(
    model: keras.Model, data: Any, name: str, *, batch_size: int, shuffle: bool, seed: int | None, loss: Any = None
) -> tuple[tf.data.Dataset, dict[str, Any]]:
    """Return a batched dataset of ``data`` and what its labels look like.

    The labels (all of them for arrays, the first batch of a dataset) are checked
    against the model's head for the loss ``loss`` (``None``: the default loss).
    """
    import tensorflow as tf

    from .data import from_arrays

    want = tuple(model.inputs[0].shape[1:])
    if isinstance(data, tf.data.Dataset):
        spec = data.element_spec
        if not isinstance(spec, tuple) or len(spec) < 2:
            raise V.fail(name, "a dataset of (inputs, labels) pairs", f"dataset with element_spec {spec}")
        x_shape = tuple(spec[0].shape)
        if len(x_shape) < 1 or not _shape_fits(x_shape[1:], want):
            raise V.fail(name, f"a batched dataset whose inputs have shape (batch, {_fmt(want)})", f"dataset of inputs {x_shape}")
        y_shape = tuple(spec[1].shape)
        info = {"label_shape": y_shape[1:], "source": "dataset", "input_shape": x_shape[1:]}
        return _guard_labels(model, data, _label_kind(model, loss, info["label_shape"]), name), info
    if not _is_arrays(data):
        raise V.fail(name, "an (x, y) tuple of arrays or a tf.data.Dataset", type(data).__name__)
    x, y = np.asarray(data[0]), np.asarray(data[1])
    if x.ndim == len(want) and len(want) >= 2 and want[-1] == 1 and _shape_fits((*x.shape[1:], 1), want):
        x = x[..., None]  # (N, H, W) grayscale for an (H, W, 1) model
    if x.ndim < 1 or not _shape_fits(x.shape[1:], want):
        raise V.fail(name, f"inputs of shape (N, {_fmt(want)}) for model '{model.name}'", f"x of shape {x.shape}")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise V.fail(name, "numeric inputs", f"x of dtype {x.dtype}")
    if len(y) != len(x):
        raise InvalidArgumentError(
            f"Argument `{name}` has {len(x)} inputs but {len(y)} labels; they must match. "
            f"Received: x of shape {x.shape}, y of shape {y.shape}"
        )
    _check_labels(model, y, _label_kind(model, loss, tuple(y.shape[1:])), name)
    ds = from_arrays(x, y, batch_size=batch_size, shuffle=shuffle, seed=seed)
    return ds, {"label_shape": tuple(y.shape[1:]), "source": "arrays", "input_shape": tuple(x.shape[1:])}


_LOSS_KINDS = {"binarycrossentropy": "binary", "binaryfocalcrossentropy": "binary",
               "sparsecategoricalcrossentropy": "sparse", "categoricalcrossentropy": "categorical",
               "categoricalfocalcrossentropy": "categorical"}


def _label_kind(model: Any, loss: Any, label_shape: tuple[Any, ...]) -> str | None:
    """``"binary"``, ``"sparse"`` or ``"categorical"``: the labels ``loss`` takes (``None``: unknown)."""
    if loss is None:
        shape = tuple(model.outputs[0].shape) if model.outputs else ()
        if len(shape) != 2 or shape[-1] is None:
            return None
        units = int(shape[-1])
        if units == 1:
            return "binary"
        return "categorical" if len(label_shape) == 1 and label_shape[0] == units else "sparse"
    name = loss if isinstance(loss, str) else getattr(loss, "__name__", type(loss).__name__)
    return _LOSS_KINDS.get(str(name).replace("_", "").lower())


def _label_rule(model: Any, kind: str, name: str) -> dict[str, Any]:
    """What labels the model's head takes for a loss kind: bounds, and the words for a message."""
    units = int(model.outputs[0].shape[-1])
    kind_name = head_kind(output_layer(model))
    head = f"{units}-unit {'logits' if kind_name == 'linear' else kind_name} head".replace(" other head", " head")
    if kind == "sparse":
        allowed, high, integers = f"integers in [0, {units - 1}]", units - 1, True
        width = f"class indices of shape (N,) or (N, 1), or one-hot labels of shape (N, {units})"
    else:
        allowed = "0 or 1 (or floats in [0, 1])" if kind == "binary" else f"one-hot rows of {units} values in [0, 1]"
        high, integers = 1, False
        width = f"labels of shape (N, {units})" if units > 1 else "labels of shape (N,) or (N, 1)"
    return {"units": units, "high": high, "integers": integers, "width": width,
            "text": f"Argument `{name}` has labels outside what model '{model.name}' can learn: labels must be "
                    f"{allowed} for a {head}", "head": head}


def _check_label_shape(model: Any, label_shape: tuple[Any, ...], kind: str, rule: dict[str, Any], name: str) -> None:
    units = rule["units"]
    if len(model.outputs[0].shape) != 2 or any(d is None for d in label_shape):
        return
    shape = tuple(int(d) for d in label_shape)
    if kind == "sparse" or units == 1:
        ok = shape in ((), (1,))
    else:
        ok = shape == (units,)
    if not ok:
        raise InvalidArgumentError(
            f"Argument `{name}` has labels of shape (N, {_fmt(shape)}) that do not fit the {rule['head']} of "
            f"model '{model.name}': it takes {rule['width']}."
        )


def _found(low: float, high: float, integral: bool, rule: dict[str, Any]) -> str | None:
    """What is wrong with labels spanning ``[low, high]``, or ``None``."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return "NaN or infinite values"
    if low < 0 or high > rule["high"] or (rule["integers"] and not integral):
        return f"values in [{low:g}, {high:g}]" + ("" if integral or not rule["integers"] else ", not all integers")
    return None


def _check_labels(model: Any, y: Any, kind: str | None, name: str) -> None:
    """Refuse label arrays outside what the model's head and loss can take, naming both ranges."""
    if kind is None or not model.outputs or model.outputs[0].shape[-1] is None or np.size(y) == 0:
        return
    y = np.asarray(y)
    if not (np.issubdtype(y.dtype, np.number) or y.dtype == np.bool_):
        raise V.fail(name, "numeric labels", f"labels of dtype {y.dtype}")
    rule = _label_rule(model, kind, name)
    _check_label_shape(model, tuple(y.shape[1:]), kind, rule, name)
    y = y.astype(np.float64)
    found = _found(float(y.min()), float(y.max()), bool(np.array_equal(y, np.round(y))), rule)
    if found is not None:
        raise InvalidArgumentError(f"{rule['text']}; found {found}.")


_LABEL_MARK = re.compile(r"<<visionkit-labels (.*?)>>\] \[([^\]]+)\] \[([^\]]+)\] \[([^\]]+)\]", re.S)


def _guard_labels(model: Any, ds: Any, kind: str | None, name: str) -> Any:
    """``ds`` with every batch's labels checked as it is read (a failed check stops training by name).

    Checking inside the pipeline reads nothing ahead (a peek would advance a seeded
    ``shuffle`` and fill its buffer); ``_reraise_label_errors`` turns the failed
    assertion into an [`InvalidArgumentError`][visionkit.errors.InvalidArgumentError].
    """
    import tensorflow as tf

    spec = ds.element_spec[1]
    if kind is None or not model.outputs or model.outputs[0].shape[-1] is None or not hasattr(spec, "dtype"):
        return ds
    if not (spec.dtype.is_integer or spec.dtype.is_floating or spec.dtype.is_bool):
        raise V.fail(name, "a dataset with numeric labels", f"labels of dtype {spec.dtype.name}")
    rule = _label_rule(model, kind, name)
    _check_label_shape(model, tuple(spec.shape[1:]), kind, rule, name)

    def check(x: Any, y: Any, *rest: Any) -> Any:
        yf = tf.cast(y, tf.float64)
        empty = tf.equal(tf.size(yf), 0)
        zero = tf.constant(0.0, tf.float64)
        low = tf.where(empty, zero, tf.reduce_min(yf))
        high = tf.where(empty, zero, tf.reduce_max(yf))
        integral = tf.reduce_all(tf.equal(yf, tf.round(yf)))
        ok = tf.logical_and(low >= 0.0, high <= float(rule["high"]))
        if rule["integers"]:
            ok = tf.logical_and(ok, integral)
        done = tf.debugging.Assert(ok, [f"<<visionkit-labels {rule['text']}>>", low, high, tf.cast(integral, tf.int32)])
        with tf.control_dependencies([done]):
            return (x, tf.identity(y), *rest)

    return ds.map(check)


@contextlib.contextmanager
def _reraise_label_errors() -> Any:
    """Turn a failed label check of ``_guard_labels`` into an ``InvalidArgumentError`` naming the data."""
    import tensorflow as tf

    try:
        yield
    except tf.errors.InvalidArgumentError as exc:
        match = _LABEL_MARK.search(str(exc))
        if match is None:
            raise
        low, high, integral = float(match[2]), float(match[3]), match[4].strip() == "1"
        if not (math.isfinite(low) and math.isfinite(high)):
            found = "NaN or infinite values"
        else:
            found = f"values in [{low:g}, {high:g}]" + ("" if integral else ", not all integers")
        raise InvalidArgumentError(f"{match[1]}; found {found} in a batch.") from None


def _shape_fits(got: tuple[Any, ...], want: tuple[Any, ...]) -> bool:
    return len(got) == len(want) and all(w is None or g is None or int(g) == int(w) for g, w in zip(got, want))


def _fmt(shape: tuple[Any, ...]) -> str:
    return ", ".join("None" if s is None else str(s) for s in shape)


def _make_optimizer(
    optimizer: Any, learning_rate: float | None, *, schedule: str = "constant", total_steps: int | None = None
) -> Any:
    import keras

    if not isinstance(optimizer, str):
        return optimizer
    config: dict[str, Any] = {} if learning_rate is None else {"learning_rate": learning_rate}
    opt = keras.optimizers.get({"class_name": optimizer.lower(), "config": config})
    if schedule == "constant":
        return opt
    initial = float(learning_rate if learning_rate is not None else opt.get_config()["learning_rate"])
    lr = keras.optimizers.schedules.CosineDecay(initial, decay_steps=max(int(total_steps or 1), 1))
    return keras.optimizers.get({"class_name": optimizer.lower(), "config": {"learning_rate": lr}})


def _steps_per_epoch(ds: Any, name: str, schedule: str) -> int:
    """Batches per epoch of a batched dataset (needed to lay out a learning-rate schedule)."""
    steps = int(ds.cardinality())
    if steps <= 0:
        raise InvalidArgumentError(
            f"lr_schedule={schedule!r} needs the number of batches per epoch, but the dataset given as "
            f"`{name}` does not know it (cardinality {steps}). Pass arrays, a finite dataset (e.g. via "
            "`dataset.apply(tf.data.experimental.assert_cardinality(n))`) or lr_schedule='constant'."
        )
    return steps


def _default_loss(model: Any, *, one_hot: bool) -> tuple[Any, str, bool]:
    import keras

    shape = tuple(model.outputs[0].shape) if model.outputs else ()
    if len(shape) != 2 or shape[-1] is None:
        raise InvalidArgumentError(
            f"Cannot pick a default loss for model '{model.name}' with output shape {shape}: "
            "expected (batch, units). Pass `loss=` explicitly."
        )
    units = int(shape[-1])
    logits = _is_logits(model)
    if units == 1:
        return keras.losses.BinaryCrossentropy(from_logits=logits), "binary", logits
    if one_hot:
        return keras.losses.CategoricalCrossentropy(from_logits=logits), "categorical", logits
    return keras.losses.SparseCategoricalCrossentropy(from_logits=logits), "sparse", logits


def _resolve_loss(model: Any, loss: Any, metrics: Any, label_info: dict[str, Any]) -> tuple[Any, list[Any], Any]:
    """Return ``(loss, metrics, loss description for the fingerprint)``."""
    import keras

    metric_list = list(metrics or ())
    if loss is not None:
        desc = loss if isinstance(loss, str) else type(loss).__name__ + json.dumps(_loss_config(loss), sort_keys=True, default=str)
        return loss, metric_list, desc
    units = model.outputs[0].shape[-1] if model.outputs else None
    label_shape = tuple(label_info.get("label_shape", ()))
    one_hot = units is not None and units > 1 and len(label_shape) == 1 and label_shape[0] == units
    loss_obj, kind, logits = _default_loss(model, one_hot=one_hot)
    resolved = []
    for m in metric_list:
        if m in ("accuracy", "acc"):
            if kind == "binary":
                m = keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0 if logits else 0.5)
            elif kind == "sparse":
                m = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
            else:
                m = keras.metrics.CategoricalAccuracy(name="accuracy")
        resolved.append(m)
    return loss_obj, resolved, f"{type(loss_obj).__name__}(from_logits={logits})"


def _loss_config(loss: Any) -> Any:
    try:
        return loss.get_config()
    except (AttributeError, NotImplementedError, TypeError):
        return getattr(loss, "__name__", repr(loss))


def _check_precision(model: Any, precision: str | None) -> None:
    """A built model's dtype policy cannot be changed by ``train``: check it matches."""
    precision = resolve_precision(precision)
    if precision is not None and model.dtype_policy.name != precision:
        raise InvalidArgumentError(
            f"Model '{model.name}' was built with dtype policy '{model.dtype_policy.name}', not "
            f"'{precision}'; train() cannot change a built model's precision. Build it under "
            f"`visionkit.device.precision_scope({precision!r})` (the recipes do), or leave `precision` unset. "
            f"Received: precision={precision!r}"
        )


def _tensorboard(log_dir: Path) -> Any:
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
    return _EpochScalars(log_dir)


class _EpochScalars(keras.callbacks.Callback):
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
