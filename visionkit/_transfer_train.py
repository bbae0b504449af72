"""Two-phase fine-tuning and the folder recipe (private; public through :mod:`visionkit.transfer`)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras

from . import _applications
from . import _validate as V
from ._transfer_base import (
    BaseSpec,
    conv_base,
    feature_classifier,
    find_base,
    transfer_model,
    unfreeze,
)
from ._transfer_defaults import DEFAULT_FINE_TUNE_FROM, METHODS
from ._transfer_infer import extract_features
from .errors import InvalidArgumentError

__all__ = ["fine_tune", "train_transfer"]


# ----------------------------------------------------------------------------- training


def _merge_histories(model: keras.Model, parts: Sequence[Any], params: dict[str, Any]) -> keras.callbacks.History:
    keys: list[str] = []
    for h in parts:
        for k in h.history:
            if k not in keys:
                keys.append(k)
    merged = keras.callbacks.History()
    merged.set_model(model)
    merged.history = {k: [] for k in keys}
    n = 0
    for h in parts:
        length = len(h.epoch) if h.epoch else max((len(v) for v in h.history.values()), default=0)
        for k in keys:
            values = list(h.history.get(k, []))
            merged.history[k].extend([float(v) for v in values] + [math.nan] * (length - len(values)))
        n += length
    merged.epoch = list(range(n))
    merged.params = dict(params)
    return merged


def fine_tune(
    model: keras.Model,
    train_data: Any,
    *,
    validation_data: Any = None,
    head_epochs: int = 5,
    epochs: int = 10,
    from_layer: str | None = "block5_conv1",
    last_n: int | None = None,
    head_learning_rate: float | None = None,
    learning_rate: float = 1e-5,
    optimizer: str = "rmsprop",
    batch_size: int = 32,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    log_dir: str | os.PathLike[str] | None = None,
    strategy: Any = None,
    seed: int | None = None,
    progress: bool = True,
    callbacks: Sequence[Any] | None = None,
) -> keras.callbacks.History:
    """Fine-tune a :func:`transfer_model` in two phases; return one ``History``.

    Phase 1 trains the head with the base frozen (``head_epochs`` epochs at
    ``head_learning_rate``). Phase 2 calls :func:`unfreeze` (``from_layer`` or
    ``last_n``) and continues for ``epochs`` epochs at the low ``learning_rate``.
    Both phases run through the crash-safe :func:`visionkit.training.train`, which
    compiles the model each time. ``model`` is trained in place (like ``fit``) and
    its base is left unfrozen as in phase 2.

    Parameters
    ----------
    model : keras.Model
        From :func:`transfer_model` (base frozen).
    train_data, validation_data
        As for :func:`visionkit.training.train`: a ``tf.data.Dataset`` of
        ``(images, labels)`` batches, or an ``(images, labels)`` pair of arrays.
    head_epochs : int, default 5
        Epochs of phase 1 (0 skips it, for a head that is already trained).
    epochs : int, default 10
        Epochs of phase 2 (after unfreezing).
    from_layer, last_n
        What to unfreeze; see :func:`unfreeze`. Default ``"block5_conv1"`` (VGG16/19).
    head_learning_rate : float, optional
        Learning rate of phase 1 (``None``: the optimizer's default, 1e-3 for RMSprop).
    learning_rate : float, default 1e-5
        Learning rate of phase 2: low, so the pretrained features are only nudged.
    optimizer : str, default "rmsprop"
        Optimizer name, for both phases.
    batch_size : int, default 32
        Batch size for array inputs.
    checkpoint_dir : path, optional
        Makes the run resumable: phase 1 checkpoints in ``checkpoint_dir/head``,
        phase 2 in ``checkpoint_dir/fine_tune``. Run the same call again after a
        crash: a finished phase 1 is not redone (its last weights are restored) and
        phase 2 resumes after its last completed epoch.
    log_dir : path, optional
        TensorBoard logs and CSV, in ``log_dir/head`` and ``log_dir/fine_tune``.
    strategy : str or tf.distribute.Strategy, optional
        Distribution strategy for both phases (see :func:`visionkit.training.train`
        and the "Scaling out" page); build ``model`` under its scope.
    seed : int, optional
        Seed passed to :func:`~visionkit.training.train`.
    progress : bool, default True
        Keras progress bars.
    callbacks : sequence of keras.callbacks.Callback, optional
        Extra callbacks for both phases.

    Returns
    -------
    keras.callbacks.History
        Both phases concatenated: ``history.epoch == list(range(head_epochs +
        epochs))``; ``history.params["head_epochs"]`` marks where phase 2 starts.

    Examples
    --------
    >>> from visionkit.transfer import conv_base, transfer_model, fine_tune
    >>> model = transfer_model(conv_base("vgg16"))  # doctest: +SKIP
    >>> history = fine_tune(model, train_ds, validation_data=val_ds,
    ...                     head_epochs=5, epochs=10, checkpoint_dir="ckpt")  # doctest: +SKIP
    """
    from .training import train

    if not isinstance(model, keras.Model):
        raise V.fail("model", "a keras.Model (e.g. from transfer_model)", model)
    head_epochs = V.integer("head_epochs", head_epochs, minimum=0)
    epochs = V.integer("epochs", epochs, minimum=1)
    head_learning_rate = V.number("head_learning_rate", head_learning_rate, minimum=0.0, exclusive_minimum=True, allow_none=True)
    learning_rate = V.number("learning_rate", learning_rate, minimum=0.0, exclusive_minimum=True)
    if from_layer is not None and last_n is not None:
        # An explicit last_n overrides the default from_layer.
        from_layer = None
    # Validate the unfreeze target before spending time on phase 1.
    find_base(model, from_layer)
    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
    logs = Path(log_dir) if log_dir is not None else None
    common: dict[str, Any] = {
        "validation_data": validation_data,
        "batch_size": batch_size,
        "optimizer": optimizer,
        "seed": seed,
        "progress": progress,
        "callbacks": list(callbacks) if callbacks else None,
        "strategy": strategy,
    }
    parts: list[Any] = []
    if head_epochs:
        parts.append(train(
            model, train_data, epochs=head_epochs, learning_rate=head_learning_rate,
            checkpoint_dir=ckpt / "head" if ckpt else None, log_dir=logs / "head" if logs else None,
            **common,
        ))
    unfreeze(model, from_layer=from_layer, last_n=last_n)
    h2 = train(
        model, train_data, epochs=epochs, learning_rate=learning_rate,
        checkpoint_dir=ckpt / "fine_tune" if ckpt else None, log_dir=logs / "fine_tune" if logs else None,
        **common,
    )
    parts.append(h2)
    params = dict(getattr(h2, "params", None) or {})
    params.update({"epochs": head_epochs + epochs, "head_epochs": head_epochs, "fine_tune_epochs": epochs})
    return _merge_histories(model, parts, params)


# ----------------------------------------------------------------------------- folders


_SPLIT_NAMES = ("train", "validation", "val", "test")


def _split_dirs(directory: Path, test_directory: Any) -> tuple[Path, Path | None, Path | None]:
    """``(train, validation or None, test or None)`` folders."""
    test = Path(test_directory) if test_directory is not None else None
    if (directory / "train").is_dir():
        subdirs = {d.name for d in directory.iterdir() if d.is_dir() and not d.name.startswith(".")}
        if subdirs <= set(_SPLIT_NAMES):
            val = next((directory / n for n in ("validation", "val") if n in subdirs), None)
            if test is None and "test" in subdirs:
                test = directory / "test"
            return directory / "train", val, test
    return directory, None, test


def train_transfer(
    directory: str | os.PathLike[str],
    *,
    base: BaseSpec = "vgg16",
    method: str = "fine_tune",
    weights: str | os.PathLike[str] | None = "imagenet",
    image_size: int | tuple[int, int] = (150, 150),
    epochs: int = 30,
    head_epochs: int = 10,
    batch_size: int = 20,
    learning_rate: float | None = None,
    fine_tune_learning_rate: float = 1e-5,
    from_layer: str | None = None,
    last_n: int | None = None,
    hidden: int | None = 256,
    dropout: float = 0.5,
    augment: bool = True,
    validation_split: float = 0.2,
    test_directory: str | os.PathLike[str] | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    strategy: Any = None,
    seed: int | None = 0,
    progress: bool = True,
) -> tuple[keras.Model, keras.callbacks.History, dict[str, float]]:
    """Train a classifier on a folder of images with a pretrained base.

    Parameters
    ----------
    directory : path
        Either a class-per-folder tree ``directory/<class>/<image>`` (a
        ``validation_split`` fraction is held out for validation), or a folder with
        ``train/``, ``test/`` and optionally ``validation/`` (or ``val/``) trees.
    base : str or callable, default "vgg16"
        Backbone name or builder, as for :func:`conv_base`.
    method : {"features", "frozen", "fine_tune"}, default "fine_tune"
        ``"features"``: extract features once, train a dense classifier on them
        (fastest; no augmentation). ``"frozen"``: frozen base inside the model, with
        augmentation. ``"fine_tune"``: ``"frozen"`` for ``head_epochs``, then unfreeze
        the top of the base for ``epochs`` more at ``fine_tune_learning_rate``.
    weights : "imagenet", None or path, default "imagenet"
        Weights of the base (see :func:`conv_base`).
    image_size : int or (height, width), default (150, 150)
        Images are resized to this size.
    epochs : int, default 30
        Training epochs (for ``"fine_tune"``: the epochs after unfreezing).
    head_epochs : int, default 10
        ``"fine_tune"`` only: epochs of the head with the base frozen.
    batch_size : int, default 20
        Batch size.
    learning_rate : float, optional
        Learning rate of the head training (``None``: the RMSprop default, 1e-3).
    fine_tune_learning_rate : float, default 1e-5
        Learning rate after unfreezing.
    from_layer, last_n
        What to unfreeze (see :func:`unfreeze`); default the base's last block
        (:data:`DEFAULT_FINE_TUNE_FROM`), or its last 3 weighted layers for custom bases.
    hidden, dropout
        The classifier head (see :func:`transfer_model`).
    augment : bool, default True
        Random flips, rotations, shifts and zooms (``"frozen"`` and ``"fine_tune"``).
    validation_split : float, default 0.2
        Fraction held out for validation when ``directory`` has no ``validation/``.
    test_directory : path, optional
        A class-per-folder tree to report test metrics on (default ``directory/test``
        when present). Without a test set, ``test_metrics`` are computed on the
        validation images.
    checkpoint_dir : path, optional
        Resumable training (see :func:`visionkit.training.train`).
    strategy : str or tf.distribute.Strategy, optional
        Distribution strategy: the models are built under its scope, and
        ``batch_size`` is per replica (the global batch is ``batch_size`` times the
        number of replicas). See the "Scaling out" page.
    seed : int, optional, default 0
        Seed of the split, the shuffling and the augmentation (weight
        initialisation is seeded by :func:`visionkit.device.configure`).
    progress : bool, default True
        Progress bars.

    Returns
    -------
    (model, history, test_metrics)
        ``model``: an end-to-end ``keras.Model`` taking raw images ``(batch, h, w, 3)``
        in ``[0, 255]`` (for ``"features"`` the base and the trained classifier joined
        together), with ``model.class_names`` set; ``history``: the
        ``keras.callbacks.History``; ``test_metrics``: dict such as
        ``{"loss": ..., "accuracy": ...}``.

    Examples
    --------
    >>> from visionkit.transfer import train_transfer
    >>> model, history, metrics = train_transfer("pets/", method="features")  # doctest: +SKIP
    >>> metrics["accuracy"]  # doctest: +SKIP
    0.9
    """
    import contextlib

    from .data import image_folder
    from .preprocess import augmentation as make_augmentation
    from .training import _resolve_strategy, evaluate, train

    V.one_of("method", method, METHODS)
    size = V.size2d("image_size", image_size)
    epochs = V.integer("epochs", epochs, minimum=1)
    head_epochs = V.integer("head_epochs", head_epochs, minimum=0)
    batch_size = V.integer("batch_size", batch_size, minimum=1)
    seed = V.integer("seed", seed, minimum=0, allow_none=True)
    if isinstance(base, str):
        V.one_of("base", base, _applications.APPLICATIONS)
    elif not callable(base):
        raise V.fail("base", f"one of {list(_applications.APPLICATIONS)} or a function returning a keras.Model", base)
    root = Path(directory)
    if not root.is_dir():
        from .errors import DataNotFoundError

        raise DataNotFoundError(f"Image folder not found: '{root}' (argument `directory`).")
    train_dir, val_dir, test_dir = _split_dirs(root, test_directory)
    classes = sorted(d.name for d in train_dir.iterdir() if d.is_dir() and not d.name.startswith("."))
    label_mode = "binary" if len(classes) == 2 else "int"
    strat = _resolve_strategy(strategy)
    scope = strat.scope if strat is not None else contextlib.nullcontext
    global_batch = batch_size * (strat.num_replicas_in_sync if strat is not None else 1)
    folder_kw: dict[str, Any] = {"image_size": size, "batch_size": global_batch, "seed": seed, "label_mode": label_mode}
    if val_dir is None:
        train_ds, val_ds = image_folder(train_dir, validation_split=validation_split, subset="both", **folder_kw)
    else:
        train_ds = image_folder(train_dir, **folder_kw)
        val_ds = image_folder(val_dir, shuffle=False, **folder_kw)
    test_ds = image_folder(test_dir, shuffle=False, **folder_kw) if test_dir is not None else None
    class_names = list(train_ds.class_names)
    for name, ds in (("validation", val_ds), ("test", test_ds)):
        if ds is not None and list(ds.class_names) != class_names:
            raise InvalidArgumentError(
                f"The {name} folder has classes {ds.class_names}, the training folder {class_names}; "
                "they must be the same."
            )
    num_classes = len(class_names)
    if num_classes < 2:
        raise V.fail("directory", "a folder with at least 2 class sub-folders", str(root))
    with scope():
        cbase = conv_base(base, weights=weights, input_shape=(*size, 3))
    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if method == "features":
        x_train, y_train = extract_features(cbase, train_ds, progress=progress)
        x_val, y_val = extract_features(cbase, val_ds, progress=progress)
        with scope():
            clf = feature_classifier(x_train.shape[1:], num_classes=num_classes, hidden=hidden, dropout=dropout)
        history = train(
            clf, (x_train, y_train), validation_data=(x_val, y_val), epochs=epochs, batch_size=batch_size,
            learning_rate=learning_rate, checkpoint_dir=ckpt, strategy=strat, seed=seed, progress=progress,
        )
        inputs = keras.Input(shape=(*size, 3), name="image")
        model = keras.Model(inputs, clf(cbase(inputs, training=False)), name=f"{cbase.name}_features")
        if test_ds is not None:
            x_test, y_test = extract_features(cbase, test_ds, progress=progress)
            test_metrics = evaluate(clf, (x_test, y_test), batch_size=batch_size)
        else:
            test_metrics = evaluate(clf, (x_val, y_val), batch_size=batch_size)
    else:
        with scope():
            aug = make_augmentation(seed=seed) if augment else None
            model = transfer_model(cbase, num_classes=num_classes, hidden=hidden, dropout=dropout, augmentation=aug)
        if method == "frozen":
            history = train(
                model, train_ds, validation_data=val_ds, epochs=epochs, batch_size=batch_size,
                learning_rate=learning_rate, checkpoint_dir=ckpt, strategy=strat, seed=seed, progress=progress,
            )
        else:
            if from_layer is None and last_n is None:
                default = DEFAULT_FINE_TUNE_FROM.get(base) if isinstance(base, str) else None
                if default is not None and any(layer.name == default for layer in cbase.layers):
                    from_layer = default
                else:
                    last_n = 3
            history = fine_tune(
                model, train_ds, validation_data=val_ds, head_epochs=head_epochs, epochs=epochs,
                from_layer=from_layer, last_n=last_n, head_learning_rate=learning_rate,
                learning_rate=fine_tune_learning_rate, batch_size=batch_size, checkpoint_dir=ckpt,
                strategy=strat, seed=seed, progress=progress,
            )
        test_metrics = evaluate(model, test_ds if test_ds is not None else val_ds, batch_size=batch_size)
    model.class_names = class_names
    return model, history, {k: float(v) for k, v in test_metrics.items()}
