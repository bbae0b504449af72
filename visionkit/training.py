"""A crash-safe training loop shared by every recipe: :func:`train` and :func:`evaluate`.

:func:`train` wraps ``keras.Model.fit`` with what a long run needs:

* data as numpy arrays or ``tf.data`` datasets (arrays go through
  :func:`visionkit.data.from_arrays`: cached, shuffled, prefetched);
* a default loss chosen from the model's output (one sigmoid unit: binary
  cross-entropy; ``n`` units: sparse categorical cross-entropy, or categorical when
  the labels are one-hot; ``from_logits`` when the last activation is linear);
* with ``checkpoint_dir``: a checkpoint of the weights **and optimizer state** after
  every completed epoch, written atomically, so a run that crashed or was killed
  resumes from its last completed epoch; the best model so far (``best.keras``); and a
  fingerprint of the settings, so a folder is never resumed with a different model,
  input size, number of classes, optimizer or loss
  (:class:`~visionkit.errors.ResumeMismatchError`);
* a run whose loss becomes NaN or infinite stops at once, keeps its last good
  checkpoint and gets its last good weights back;
* with ``log_dir``: TensorBoard logs and a ``metrics.csv`` of every epoch.

Files in ``checkpoint_dir``
---------------------------
``settings.json``
    The fingerprint of the run's settings, checked on resume.
``state.json``
    The number of completed epochs, the name of the weights file that holds them,
    the best monitored value so far and the per-epoch history.
``epoch-NNNN.weights.h5``
    Model and optimizer variables after epoch ``NNNN`` (only the latest is kept).
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
>>> history = training.train(model, (x[..., None], y), epochs=2,
...                          checkpoint_dir="runs/mnist")  # doctest: +SKIP
>>> training.evaluate(model, (x_test[..., None], y_test))  # doctest: +SKIP
{'accuracy': 0.95..., 'loss': 0.15...}
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import os
import sys
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _validate as V
from ._io import atomic_path, write_json
from .errors import InvalidArgumentError, ResumeMismatchError

if TYPE_CHECKING:  # pragma: no cover
    import keras
    import tensorflow as tf

__all__ = ["LR_SCHEDULES", "OPTIMIZERS", "default_loss", "evaluate", "train"]

#: Optimizer names :func:`train` accepts as strings (or pass a Keras optimizer).
OPTIMIZERS: tuple[str, ...] = (
    "adadelta", "adafactor", "adagrad", "adam", "adamax", "adamw", "ftrl", "lion",
    "nadam", "rmsprop", "sgd",
)

_SETTINGS_FILE = "settings.json"
_STATE_FILE = "state.json"
_BEST_FILE = "best.keras"
_FORMAT = 1

#: Learning-rate schedules :func:`train` can build for a named optimizer.
LR_SCHEDULES: tuple[str, ...] = ("constant", "cosine")


# ----------------------------------------------------------------------------- public


def train(
    model: keras.Model,
    train_data: Any,
    *,
    validation_data: Any = None,
    epochs: int = 10,
    batch_size: int = 32,
    optimizer: str | keras.optimizers.Optimizer = "rmsprop",
    learning_rate: float | None = None,
    lr_schedule: str = "constant",
    loss: Any = None,
    metrics: Sequence[Any] | None = ("accuracy",),
    checkpoint_dir: str | os.PathLike[str] | None = None,
    log_dir: str | os.PathLike[str] | None = None,
    strategy: str | tf.distribute.Strategy | None = None,
    seed: int | None = None,
    progress: bool = True,
    callbacks: Sequence[keras.callbacks.Callback] | None = None,
) -> keras.callbacks.History:
    """Compile and train ``model``, resumably; return its ``History``.

    The model is trained in place (that is the point); the data arrays are not
    modified. ``model`` is (re)compiled with the arguments given here.

    Parameters
    ----------
    model : keras.Model
        A built model (it has an ``Input``), e.g. from :mod:`visionkit.convnets`.
    train_data : (x, y) tuple of arrays or tf.data.Dataset
        Arrays: ``x`` of shape ``(N, *model.input_shape[1:])`` (any numeric dtype,
        cast to float32 per batch), ``y`` of shape ``(N,)``, ``(N, 1)`` or one-hot
        ``(N, classes)``. A dataset must yield ``(x_batch, y_batch)``; it is used as
        it is (already batched: ``batch_size`` is then ignored).
    validation_data : (x, y) tuple or tf.data.Dataset, optional
        Evaluated after every epoch; its ``val_loss`` picks the best checkpoint.
    epochs : int, default 10
        The **total** number of epochs. A resumed run trains only the epochs still
        missing; calling again with a larger number continues the same run.
    batch_size : int, default 32
        For arrays: the batch size **per replica**. The global batch (the examples
        one optimizer step averages over) is ``batch_size × R`` under a ``strategy``
        with ``R`` replicas, and ``batch_size`` without one. The learning rate is not
        scaled for you. A dataset's batches are used as they are, as global batches.
    optimizer : str or keras.optimizers.Optimizer, default "rmsprop"
        A name from :data:`OPTIMIZERS` or an optimizer instance.
    learning_rate : float, optional
        Learning rate for a named optimizer (Keras' default for it when ``None``).
        Not allowed with an optimizer instance (set it on the instance).
    lr_schedule : {"constant", "cosine"}, default "constant"
        ``"cosine"``: the learning rate falls from ``learning_rate`` (or the
        optimizer's default) to 0 along a half cosine over the ``epochs × steps per
        epoch`` optimizer steps of the whole run (``keras.optimizers.schedules.
        CosineDecay``). The schedule follows ``optimizer.iterations``, so a resumed
        run continues it where it stopped; since it spans ``epochs``, a checkpoint
        folder cannot be continued with a different ``epochs``. Needs a named
        optimizer and, for a dataset, a known number of batches.
    loss : str, callable or keras.losses.Loss, optional
        ``None`` picks one from the output shape (see :func:`default_loss`).
    metrics : sequence, default ("accuracy",)
        Keras metrics. With the default loss, ``"accuracy"`` becomes the accuracy
        that matches it (binary with the right threshold for logits, or sparse
        categorical).
    checkpoint_dir : str or os.PathLike, optional
        Folder for resumable checkpoints (see the module description). If it
        holds a checkpoint of the same settings, training resumes after its last
        completed epoch with the optimizer state (``optimizer.iterations``
        included) restored; if the settings differ,
        :class:`~visionkit.errors.ResumeMismatchError` names what changed. The
        folder is kept when training ends (delete it to start over).
    log_dir : str or os.PathLike, optional
        Folder for TensorBoard logs and ``metrics.csv`` (one row per epoch).
    strategy : str or tf.distribute.Strategy, optional
        A name from :data:`visionkit.device.STRATEGIES` or a strategy. The model
        must have been built under ``strategy.scope()`` (the recipes in
        :mod:`visionkit.convnets` do); it is compiled under it. Under
        ``MultiWorkerMirroredStrategy``, where Keras 3's ``fit`` cannot run, training
        goes through visionkit's own distributed loop with the same callbacks
        (progress, history, checkpoints, NaN stop); only the chief (worker 0) shows
        progress and writes ``best.keras`` and logs, and every other worker keeps its
        own resumable backup in ``checkpoint_dir/worker-N``. Pass ``seed`` so every
        worker shuffles alike (it defaults to 0 there). See the "Scaling out" page.
    seed : int, optional
        Seed of the shuffling of array data. It does not seed weight
        initialisation or dropout: use :func:`visionkit.device.configure` for that.
    progress : bool, default True
        Keras progress bar per epoch (one line per epoch when output is not a
        terminal); ``False`` for silence.
    callbacks : sequence of keras.callbacks.Callback, optional
        Extra callbacks, run after visionkit's own.

    Returns
    -------
    keras.callbacks.History
        ``history.history[name]`` holds one value per epoch **of the whole run**,
        resumed epochs included (``history.epoch`` numbers them from 0).

    Raises
    ------
    InvalidArgumentError
        A bad argument (the message names it).
    ResumeMismatchError
        ``checkpoint_dir`` holds a run with different settings.

    Warns
    -----
    RuntimeWarning
        The loss became NaN or infinite: training stopped, the model's weights were
        restored from the last good checkpoint (when there is one).

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
    >>> history = training.train(model, (x[..., None], y), epochs=1,
    ...                          progress=False)  # doctest: +SKIP
    >>> sorted(history.history)  # doctest: +SKIP
    ['accuracy', 'loss']
    """
    import keras

    _check_model(model)
    epochs = V.integer("epochs", epochs, minimum=1)
    batch_size = V.integer("batch_size", batch_size, minimum=1)
    learning_rate = V.number("learning_rate", learning_rate, minimum=0.0, exclusive_minimum=True, allow_none=True)
    seed = V.integer("seed", seed, minimum=0, allow_none=True)
    V.one_of("lr_schedule", lr_schedule, LR_SCHEDULES)
    if isinstance(optimizer, str):
        V.one_of("optimizer", optimizer.lower(), OPTIMIZERS)
    elif not isinstance(optimizer, keras.optimizers.Optimizer):
        raise V.fail("optimizer", f"one of {list(OPTIMIZERS)} or a keras.optimizers.Optimizer", optimizer)
    else:
        for arg, value, default in (("learning_rate", learning_rate, None), ("lr_schedule", lr_schedule, "constant")):
            if value != default:
                raise InvalidArgumentError(
                    f"Argument `{arg}` only goes with an optimizer name; set the learning rate (or a "
                    "keras.optimizers.schedules.LearningRateSchedule) on the optimizer instance instead. "
                    f"Received: optimizer={type(optimizer).__name__}, {arg}={value!r}"
                )
    if metrics is not None and (isinstance(metrics, str) or not isinstance(metrics, Sequence)):
        raise V.fail("metrics", "a list or tuple of metrics (e.g. ('accuracy',)) or None", metrics)
    extra = list(callbacks or ())
    for cb in extra:
        if not isinstance(cb, keras.callbacks.Callback):
            raise V.fail("callbacks", "a list of keras.callbacks.Callback", cb)
    strat = _resolve_strategy(strategy)
    _check_scope(model, strat)
    from ._distributed import distributed_fit, is_chief, needs_custom_loop, task_info

    custom = strat is not None and needs_custom_loop(strat)
    chief = is_chief(strat) if custom else True
    if custom and seed is None:
        seed = 0  # every worker must shuffle alike
    global_batch = batch_size * (strat.num_replicas_in_sync if strat is not None else 1)

    train_ds, label_info = _as_dataset(model, train_data, "train_data", batch_size=global_batch, shuffle=True, seed=seed)
    val_ds = None
    if validation_data is not None:
        val_ds, _ = _as_dataset(model, validation_data, "validation_data", batch_size=global_batch, shuffle=False, seed=None)

    total_steps = None
    if lr_schedule != "constant":
        total_steps = epochs * _steps_per_epoch(train_ds, "train_data", lr_schedule)

    with strat.scope() if strat is not None else contextlib.nullcontext():
        opt = _make_optimizer(optimizer, learning_rate, schedule=lr_schedule, total_steps=total_steps)
        loss_obj, metric_objs, loss_desc = _resolve_loss(model, loss, metrics, label_info)
        model.compile(optimizer=opt, loss=loss_obj, metrics=metric_objs)
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)

    own: list[keras.callbacks.Callback] = [keras.callbacks.TerminateOnNaN()]
    previous: dict[str, list[float]] = {}
    initial_epoch = 0
    guard = _checkpoint(None, monitor="val_loss" if val_ds is not None else "loss")
    if checkpoint_dir is not None:
        ckpt = Path(checkpoint_dir)
        if not chief:
            ckpt = ckpt / f"worker-{task_info(strat)[1]}"
        schedule = None  # absent for "constant", so older checkpoint folders still resume
        if total_steps is not None:
            schedule = f"{lr_schedule} over {epochs} epochs of {total_steps // epochs} steps"
        settings = _fingerprint(model, opt, loss_desc, metrics, label_info,
                                batch_size=batch_size if _is_arrays(train_data) else None, lr_schedule=schedule)
        state = _prepare_checkpoint(ckpt, settings)
        guard = _checkpoint(ckpt, monitor=guard.monitor, state=state, keep_best=chief)
        if state is not None:
            initial_epoch = guard.restore(model)
            previous = {k: list(v) for k, v in state.get("history", {}).items()}
            if initial_epoch > epochs:
                warnings.warn(
                    f"Checkpoint folder '{ckpt}' already holds {initial_epoch} epochs, more than "
                    f"epochs={epochs}: nothing was trained and the model has the weights of epoch {initial_epoch}.",
                    RuntimeWarning,
                    stacklevel=2,
                )
    own.append(guard)
    if log_dir is not None and chief:
        log_path = Path(log_dir)
        own.append(_tensorboard(log_path))
        own.append(_csv_log(log_path / "metrics.csv", previous))

    verbose = (1 if sys.stdout.isatty() else 2) if progress and chief else 0
    if custom:
        history = distributed_fit(
            model, train_ds, strategy=strat, loss=loss_obj, epochs=epochs,
            initial_epoch=min(initial_epoch, epochs), validation_data=val_ds,
            accuracy=any(m in ("accuracy", "acc") for m in (metrics or ())),
            from_logits=_is_logits(model), callbacks=own + extra, verbose=verbose,
        )
    else:
        history = _fit(
            model, train_ds, validation=val_ds, epochs=epochs, initial_epoch=min(initial_epoch, epochs),
            callbacks=own + extra, verbose=verbose,
        )
    if guard.diverged:
        restored = guard.restore_last_good(model)
        where = f"its weights were restored from '{restored}'" if restored else "no checkpoint was available to restore"
        warnings.warn(
            f"Training stopped in epoch {guard.diverged_epoch + 1}: the loss became NaN or infinite; {where}. "
            "Lower the learning rate or check the data.",
            RuntimeWarning,
            stacklevel=2,
        )
    return _merge_history(history, previous, model)


def evaluate(model: keras.Model, data: Any, *, batch_size: int = 32) -> dict[str, float]:
    """Evaluate ``model`` on ``data``; return ``{metric_name: value}``.

    Parameters
    ----------
    model : keras.Model
        A trained model. If it was never compiled it is compiled with the default
        loss and ``"accuracy"`` (see :func:`default_loss`).
    data : (x, y) tuple of arrays or tf.data.Dataset
        As for :func:`train`; a dataset is used as it is.
    batch_size : int, default 32
        Batch size for arrays.

    Returns
    -------
    dict
        Python floats keyed by metric name, e.g. ``{"loss": 0.03, "accuracy": 0.99}``.

    Examples
    --------
    >>> from visionkit import training
    >>> training.evaluate(model, (x_test[..., None], y_test))  # doctest: +SKIP
    {'accuracy': 0.99, 'loss': 0.03}
    """
    _check_model(model)
    batch_size = V.integer("batch_size", batch_size, minimum=1)
    ds, label_info = _as_dataset(model, data, "data", batch_size=batch_size, shuffle=False, seed=None)
    from ._distributed import evaluate_local, needs_custom_loop

    if needs_custom_loop(model.distribute_strategy):
        # Keras' evaluate() fails under MultiWorkerMirroredStrategy: evaluate locally.
        loss_obj = getattr(model, "loss", None) or _resolve_loss(model, None, (), label_info)[0]
        return evaluate_local(model, ds, loss=loss_obj, accuracy=True, from_logits=_is_logits(model))
    if not getattr(model, "compiled", False) or model.optimizer is None:
        loss_obj, metric_objs, _ = _resolve_loss(model, None, ("accuracy",), label_info)
        model.compile(optimizer="rmsprop", loss=loss_obj, metrics=metric_objs)
    results = model.evaluate(ds, verbose=0, return_dict=True)
    return {str(k): float(v) for k, v in results.items()}


def default_loss(model: keras.Model, *, one_hot: bool = False) -> keras.losses.Loss:
    """The loss :func:`train` picks for ``model`` when ``loss=None``.

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
    >>> training.default_loss(convnets.mnist_convnet(variant="cookbook"))  # doctest: +SKIP
    <SparseCategoricalCrossentropy name=sparse_categorical_crossentropy,...>
    """
    _check_model(model)
    loss, _, _ = _default_loss(model, one_hot=one_hot)
    return loss


# ----------------------------------------------------------------------------- fit


def _fit(
    model: keras.Model,
    train_ds: tf.data.Dataset,
    *,
    validation: tf.data.Dataset | None,
    epochs: int,
    initial_epoch: int,
    callbacks: list[keras.callbacks.Callback],
    verbose: int,
) -> keras.callbacks.History:
    """The single-process ``fit`` path (multi-worker training plugs in beside it)."""
    return model.fit(
        train_ds,
        validation_data=validation,
        epochs=epochs,
        initial_epoch=initial_epoch,
        callbacks=callbacks,
        verbose=verbose,
        shuffle=False,  # the dataset shuffles itself
    )


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


def _resolve_strategy(strategy: Any) -> Any:
    if strategy is None:
        return None
    if isinstance(strategy, str):
        from .device import STRATEGIES
        from .device import strategy as make

        V.one_of("strategy", strategy, STRATEGIES)
        return make(strategy)
    import tensorflow as tf

    if not isinstance(strategy, tf.distribute.Strategy):
        raise V.fail("strategy", "None, a name from visionkit.device.STRATEGIES or a tf.distribute.Strategy", strategy)
    return strategy


def _is_arrays(data: Any) -> bool:
    return isinstance(data, (tuple, list)) and len(data) == 2


def _as_dataset(
    model: keras.Model, data: Any, name: str, *, batch_size: int, shuffle: bool, seed: int | None
) -> tuple[tf.data.Dataset, dict[str, Any]]:
    """Return a batched dataset of ``data`` and what its labels look like."""
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
        return data, {"label_shape": y_shape[1:], "source": "dataset", "input_shape": x_shape[1:]}
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
    ds = from_arrays(x, y, batch_size=batch_size, shuffle=shuffle, seed=seed)
    return ds, {"label_shape": tuple(y.shape[1:]), "source": "arrays", "input_shape": tuple(x.shape[1:])}


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


def _output_layer(model: Any) -> Any:
    import keras

    layer = model
    while isinstance(layer, keras.Model) and layer.layers:
        layer = layer.layers[-1]
    return layer


def _is_logits(model: Any) -> bool:
    import keras

    layer = _output_layer(model)
    act = getattr(layer, "activation", None)
    if act is None:
        return False
    return act is keras.activations.linear or getattr(act, "__name__", "") == "linear"


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


# ----------------------------------------------------------------------------- fingerprint


def _architecture(model: Any) -> list[dict[str, Any]]:
    """Layer classes and configs (without the auto-generated names), nested models flattened."""
    import keras

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


def _fingerprint(
    model: Any, optimizer: Any, loss_desc: Any, metrics: Any, label_info: dict[str, Any], *, batch_size: int | None,
    lr_schedule: str | None = None,
) -> dict[str, Any]:
    arch = _architecture(model)
    digest = hashlib.sha256(json.dumps(arch, sort_keys=True, default=str).encode()).hexdigest()[:16]
    opt_config = {k: v for k, v in _strip_names(optimizer.get_config()).items() if k not in ("name",)}
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
        "label_shape": _fmt(tuple(label_info.get("label_shape", ()))),
        "optimizer": f"{type(optimizer).__name__}(learning_rate={lr})",
        "optimizer_config": json.dumps(opt_config, sort_keys=True, default=str),
        "loss": str(loss_desc),
        "metrics": [m if isinstance(m, str) else type(m).__name__ for m in (metrics or ())],
        "batch_size": batch_size,
    } | ({} if lr_schedule is None else {"lr_schedule": lr_schedule})


def _prepare_checkpoint(ckpt: Path, settings: dict[str, Any]) -> dict[str, Any] | None:
    """Check or write the fingerprint; return the saved state to resume from, if any."""
    if ckpt.exists() and not ckpt.is_dir():
        raise V.fail("checkpoint_dir", "a folder (it is created if missing)", str(ckpt))
    settings_file = ckpt / _SETTINGS_FILE
    if settings_file.is_file():
        try:
            saved = json.loads(settings_file.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ResumeMismatchError(
                f"Cannot read the settings of checkpoint folder '{ckpt}' ({exc}). Delete the folder or use another one."
            ) from None
        diffs = [
            f"{key}: checkpoint has {saved.get(key)!r}, this run has {settings.get(key)!r}"
            for key in sorted(set(saved) | set(settings))
            if saved.get(key) != settings.get(key)
        ]
        if diffs:
            raise ResumeMismatchError(
                f"Checkpoint folder '{ckpt}' was written by a run with different settings, so it cannot be "
                "resumed:\n  " + "\n  ".join(diffs) + "\nUse another `checkpoint_dir`, or delete this one to start over."
            )
    else:
        write_json(settings_file, settings)
    state_file = ckpt / _STATE_FILE
    if not state_file.is_file():
        return None
    try:
        state = json.loads(state_file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ResumeMismatchError(f"Cannot read '{state_file}' ({exc}). Delete '{ckpt}' to start over.") from None
    if not (ckpt / state.get("weights", "")).is_file():
        raise ResumeMismatchError(
            f"'{state_file}' names the weights file '{state.get('weights')}', which is missing. Delete '{ckpt}' to start over."
        )
    return state


def _atomic_keras_save(path: Path, save: Any, suffix: str) -> None:
    """Write with ``save(tmp)`` to a temporary file ending in ``suffix``; rename to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    os.unlink(tmp)  # Keras refuses to overwrite silently in some versions
    try:
        save(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return True


def _make_checkpoint_class() -> type:
    import keras

    class Checkpoint(keras.callbacks.Callback):
        """Per-epoch atomic checkpoint of weights + optimizer, best model, NaN guard."""

        def __init__(
            self, folder: Path | None, *, monitor: str, state: dict[str, Any] | None = None, keep_best: bool = True
        ) -> None:
            super().__init__()
            self.folder = folder
            self.keep_best = keep_best
            self.monitor = monitor
            self.state = dict(state or {})
            self.history: dict[str, list[float]] = {k: list(v) for k, v in self.state.get("history", {}).items()}
            # a run resumed with (or without) validation data monitors another value
            self.best = self.state.get("best") if self.state.get("monitor") == monitor else None
            self.diverged = False
            self.diverged_epoch = -1
            self._epoch = 0

        def restore(self, model: Any) -> int:
            model.load_weights(str(self.folder / self.state["weights"]))
            return int(self.state["epoch"])

        def restore_last_good(self, model: Any) -> Path | None:
            if self.folder is None or not self.state.get("weights"):
                return None
            path = self.folder / self.state["weights"]
            model.load_weights(str(path))
            return path

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self._epoch = epoch

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            if logs and not _finite(logs.get("loss")):
                self.diverged = True
                self.diverged_epoch = self._epoch
                self.model.stop_training = True

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            logs = dict(logs or {})
            if self.diverged or not all(_finite(v) for k, v in logs.items() if "loss" in k):
                self.diverged = True
                self.diverged_epoch = epoch
                self.model.stop_training = True
                return
            if self.folder is None:
                return
            for key, value in logs.items():
                self.history.setdefault(key, []).append(float(value))
            value = logs.get(self.monitor)
            improved = value is not None and (self.best is None or float(value) < self.best)
            if improved:
                self.best = float(value)
            if improved and self.keep_best:
                _atomic_keras_save(self.folder / _BEST_FILE, self.model.save, ".keras")
            name = f"epoch-{epoch + 1:04d}.weights.h5"
            _atomic_keras_save(self.folder / name, self.model.save_weights, ".weights.h5")
            old = self.state.get("weights")
            self.state = {
                "epoch": epoch + 1,
                "weights": name,
                "iterations": int(self.model.optimizer.iterations.numpy()),
                "monitor": self.monitor,
                "best": self.best,
                "history": self.history,
            }
            write_json(self.folder / _STATE_FILE, self.state)
            if old and old != name:
                with contextlib.suppress(FileNotFoundError):
                    (self.folder / old).unlink()

    return Checkpoint


_CLASSES: dict[str, type] = {}


def _checkpoint(
    folder: Path | None, *, monitor: str, state: dict[str, Any] | None = None, keep_best: bool = True
) -> Any:
    """A new checkpoint callback (the Keras subclass is built on first use, keeping import cheap)."""
    if "checkpoint" not in _CLASSES:
        _CLASSES["checkpoint"] = _make_checkpoint_class()
    return _CLASSES["checkpoint"](folder, monitor=monitor, state=state, keep_best=keep_best)


def _make_csv_class() -> type:
    import keras

    class CsvLog(keras.callbacks.Callback):
        """Rewrites ``metrics.csv`` atomically after every epoch (previous epochs kept)."""

        def __init__(self, path: Path, previous: dict[str, list[float]]) -> None:
            super().__init__()
            self.path = path
            self.rows: list[dict[str, Any]] = []
            n = max((len(v) for v in previous.values()), default=0)
            for i in range(n):
                row = {"epoch": i + 1}
                row.update({k: v[i] for k, v in previous.items() if i < len(v)})
                self.rows.append(row)

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.rows = [r for r in self.rows if r["epoch"] <= epoch]
            row: dict[str, Any] = {"epoch": epoch + 1}
            row.update({k: float(v) for k, v in (logs or {}).items()})
            self.rows.append(row)
            keys = ["epoch", *sorted({k for r in self.rows for k in r} - {"epoch"})]
            buf = io.StringIO()
            writer = csv.DictWriter(buf, fieldnames=keys)
            writer.writeheader()
            writer.writerows(self.rows)
            with atomic_path(self.path) as tmp:
                tmp.write_text(buf.getvalue())

    return CsvLog


def _csv_log(path: Path, previous: dict[str, list[float]]) -> Any:
    if "csv" not in _CLASSES:
        _CLASSES["csv"] = _make_csv_class()
    return _CLASSES["csv"](path, previous)


def _tensorboard(log_dir: Path) -> Any:
    """Keras' TensorBoard callback, or epoch scalars written with core TF ops without it."""
    import importlib.util

    import keras

    if importlib.util.find_spec("tensorboard") is not None:
        return keras.callbacks.TensorBoard(log_dir=str(log_dir))
    if "tb" not in _CLASSES:

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

        _CLASSES["tb"] = EpochScalars
    return _CLASSES["tb"](log_dir)


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
