"""Two-phase fine-tuning and the folder recipe (private; public through [`visionkit.transfer`][visionkit.transfer]).

Both functions take the shared training options ([`visionkit.training.TrainOptions`][visionkit.training.TrainOptions])
and return a [`visionkit.training.TrainResult`][visionkit.training.TrainResult]. The words mean the same in both:

* ``epochs``: the run's **total**, both phases together;
* ``head_epochs``: how many of them train the head alone, the base frozen (phase 1);
  the other ``epochs - head_epochs`` fine-tune the unfrozen top of the base (phase 2);
* ``head_learning_rate``: the rate whenever only the head trains (phase 1, and the
  whole run of the ``"features"`` and ``"frozen"`` methods, where the base never
  trains); ``None`` is the optimizer's default (1e-3 for RMSprop);
* ``learning_rate``: the rate while the unfrozen base trains (phase 2): low, default
  1e-5, so the pretrained features are only nudged.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras

from . import _backbones
from . import _validate as V
from ._options import TRAINING_OPTIONS, TrainOptions, augment_switch
from ._transfer_base import (
    BaseSpec,
    check_head_args,
    conv_base,
    feature_classifier,
    find_base,
    min_input_size,
    transfer_model,
    unfreeze,
)
from ._transfer_defaults import DEFAULT_FINE_TUNE_FROM, METHODS, RECIPE_DEFAULTS
from ._transfer_infer import extract_features
from .errors import InvalidArgumentError

if TYPE_CHECKING:  # pragma: no cover
    from typing_extensions import Unpack

    from .data import FolderSplits
    from .training import TrainOptionsKwargs, TrainResult

__all__ = ["fine_tune", "train_transfer"]

# ----------------------------------------------------------------------------- options


def _recipe_options(options: Mapping[str, Any], recipe: str) -> TrainOptions:
    """The shared options over ``RECIPE_DEFAULTS[recipe]``, checked once."""
    return TrainOptions.from_kwargs(options, **RECIPE_DEFAULTS[recipe])


def _kwargs(opts: TrainOptions) -> dict[str, Any]:
    """``opts`` as keyword arguments of [`visionkit.training.train`][visionkit.training.train]."""
    return {name: getattr(opts, name) for name in TRAINING_OPTIONS}


def _check_phases(epochs: int, head_epochs: Any, head_learning_rate: Any) -> tuple[int, float | None]:
    head_epochs = V.integer("head_epochs", head_epochs, minimum=0)
    head_learning_rate = V.number("head_learning_rate", head_learning_rate, minimum=0.0,
                                  exclusive_minimum=True, allow_none=True)
    if epochs <= head_epochs:
        raise InvalidArgumentError(
            f"`epochs` is the total of both phases and must exceed `head_epochs` (the head-only epochs), so "
            f"that the unfrozen base trains for `epochs - head_epochs` epochs. Received: epochs={epochs}, "
            f"head_epochs={head_epochs}"
        )
    return head_epochs, head_learning_rate


def _head_options(opts: TrainOptions, head_learning_rate: float | None, **changes: Any) -> TrainOptions:
    """The options while only the head trains: ``head_learning_rate`` instead of ``learning_rate``.

    An optimizer instance is copied (phase 2 keeps the instance itself), with
    ``head_learning_rate`` when given.
    """
    if isinstance(opts.optimizer, str):
        return opts.replace(learning_rate=head_learning_rate, **changes)
    config = opts.optimizer.get_config()
    if head_learning_rate is not None:
        config["learning_rate"] = head_learning_rate
    return opts.replace(optimizer=type(opts.optimizer).from_config(config), **changes)


def _phase_folders(opts: TrainOptions, phase: str) -> dict[str, Path | None]:
    return {name: getattr(opts, name) / phase if getattr(opts, name) is not None else None
            for name in ("checkpoint_dir", "log_dir")}


# ----------------------------------------------------------------------------- fine_tune


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


def _two_phases(model: keras.Model, train_data: Any, validation_data: Any, opts: TrainOptions, *,
                head_epochs: int, head_learning_rate: float | None, from_layer: str | None,
                last_n: int | None) -> keras.callbacks.History:
    """Phase 1 (head only) if ``head_epochs``, unfreeze, phase 2; one merged ``History``."""
    from .training import train

    find_base(model, from_layer)  # check the unfreeze target before spending time on phase 1
    parts: list[Any] = []
    if head_epochs:
        head = _head_options(opts, head_learning_rate, epochs=head_epochs, **_phase_folders(opts, "head"))
        parts.append(train(model, train_data, validation_data=validation_data, **_kwargs(head)))
    unfreeze(model, from_layer=from_layer, last_n=last_n)
    tune = opts.replace(epochs=opts.epochs - head_epochs, **_phase_folders(opts, "fine_tune"))
    parts.append(train(model, train_data, validation_data=validation_data, **_kwargs(tune)))
    params = dict(getattr(parts[-1], "params", None) or {})
    params.update({"epochs": opts.epochs, "head_epochs": head_epochs, "fine_tune_epochs": opts.epochs - head_epochs})
    return _merge_histories(model, parts, params)


def fine_tune(
    model: keras.Model,
    train_data: Any,
    *,
    validation_data: Any = None,
    head_epochs: int = 5,
    head_learning_rate: float | None = None,
    from_layer: str | None = None,
    last_n: int | None = None,
    **options: Unpack[TrainOptionsKwargs],
) -> TrainResult:
    """Fine-tune a [`transfer_model`][visionkit.transfer.transfer_model] in two phases; one history for the run.

    Phase 1 trains the head with the base frozen: ``head_epochs`` epochs at
    ``head_learning_rate``. Phase 2 calls [`unfreeze`][visionkit.transfer.unfreeze] (``from_layer`` or
    ``last_n``) and trains the other ``epochs - head_epochs`` epochs at the low
    ``learning_rate``. Both phases run through the crash-safe
    [`visionkit.training.train`][visionkit.training.train], which compiles the model each time. ``model``
    is trained in place (like ``fit``) and its base is left unfrozen as in phase 2.

    Parameters
    ----------
    model : keras.Model
        From [`transfer_model`][visionkit.transfer.transfer_model] (base frozen), built under the ``strategy`` scope
        and ``precision`` policy when those are given.
    train_data, validation_data
        As for [`visionkit.training.train`][visionkit.training.train]: a ``tf.data.Dataset`` of
        ``(images, labels)`` batches, or an ``(images, labels)`` pair of arrays
        (images ``(N, H, W, 3)`` in ``[0, 255]``).
    head_epochs : int, default 5
        Epochs of phase 1, counted in ``epochs``; 0 skips it (for a head that is
        already trained).
    head_learning_rate : float, optional
        Learning rate of phase 1, while only the head trains (``None``: the
        optimizer's default, 1e-3 for RMSprop). With an optimizer instance, phase 1
        uses a copy of it (at this rate when given).
    from_layer, last_n
        What to unfreeze (one of them, not both); see [`unfreeze`][visionkit.transfer.unfreeze].
        Default: the base's last block from its [`visionkit.backbones`][visionkit.backbones] preset
        (``fine_tune_from``, ``"block5_conv1"`` for VGG16/19), else its last 3 layers.
    **options
        The shared training options ([`visionkit.training.TrainOptions`][visionkit.training.TrainOptions]); this
        recipe's defaults: ``epochs=15`` (the **total**, both phases; it must exceed
        ``head_epochs``), ``batch_size=32``, ``optimizer="rmsprop"``,
        ``learning_rate=1e-5`` (phase 2's rate, for the unfrozen base).
        ``lr_schedule`` applies within each phase. ``checkpoint_dir`` makes the run
        resumable: phase 1 checkpoints in ``checkpoint_dir/head``, phase 2 in
        ``checkpoint_dir/fine_tune``; run the same call again after a crash: a
        finished phase 1 is not redone (its last weights are restored) and phase 2
        resumes after its last completed epoch. ``log_dir`` likewise gets ``head/``
        and ``fine_tune/``. ``callbacks`` run in both phases.

    Returns
    -------
    visionkit.training.TrainResult
        Unpacks as ``model, history, metrics``: ``model`` itself; ``history`` covers
        both phases (``history.epoch == list(range(epochs))``, and
        ``history.params["head_epochs"]`` is the epoch where phase 2 starts);
        ``metrics``: the last epoch's validation metrics (``{"loss": ...,
        "accuracy": ...}`` from ``val_loss``, ``val_accuracy``), empty without
        ``validation_data``. ``class_names`` are those the model carries, if any.

    Raises
    ------
    InvalidArgumentError
        A bad argument, ``epochs <= head_epochs``, or an unknown ``from_layer``
        (before any training).
    UnexpectedArgumentError
        A keyword that is no training option.

    Examples
    --------
    >>> import keras, numpy as np
    >>> from visionkit.transfer import conv_base, fine_tune, transfer_model
    >>> def tiny(shape):
    ...     inputs = keras.Input(shape)
    ...     x = keras.layers.Conv2D(4, 3, name="block1_conv1")(inputs)
    ...     return keras.Model(inputs, keras.layers.Conv2D(4, 3, name="block2_conv1")(x), name="tiny")
    >>> model = transfer_model(conv_base(tiny, weights=None, input_shape=(8, 8, 3)), hidden=4)
    >>> x = np.random.default_rng(0).uniform(0, 255, (16, 8, 8, 3)).astype("float32")
    >>> y = (np.arange(16) % 2).astype("float32")
    >>> model, history, metrics = fine_tune(model, (x, y), validation_data=(x, y), head_epochs=1, epochs=3,
    ...                                     from_layer="block2_conv1", batch_size=8, progress=False)
    >>> history.epoch, history.params["head_epochs"], sorted(metrics)
    ([0, 1, 2], 1, ['accuracy', 'loss'])
    """
    if not isinstance(model, keras.Model):
        raise V.fail("model", "a keras.Model (e.g. from transfer_model)", model)
    opts = _recipe_options(options, "fine_tune")
    from .training import class_names, run_recipe

    head_epochs, head_learning_rate = _check_phases(opts.epochs, head_epochs, head_learning_rate)
    from_layer, last_n = _unfreeze_default(model, from_layer, last_n)
    find_base(model, from_layer)  # check the unfreeze target before anything else

    def fit(built: keras.Model, resolved: TrainOptions) -> keras.callbacks.History:
        return _two_phases(built, train_data, validation_data, resolved, head_epochs=head_epochs,
                           head_learning_rate=head_learning_rate, from_layer=from_layer, last_n=last_n)

    # the model is already built: run_recipe resolves the options once for both phases, trains
    # them through `fit` and reports the last validation metrics (there is no test data here)
    return run_recipe(lambda: model, train_data, options=opts, validation_data=validation_data,
                      class_names=class_names(model), fit=fit,
                      settings={"recipe": "fine_tune", "head_epochs": head_epochs,
                                "head_learning_rate": head_learning_rate, "from_layer": from_layer, "last_n": last_n})


# ----------------------------------------------------------------------------- train_transfer


@dataclasses.dataclass(frozen=True)
class _Recipe:
    """The checked recipe settings of [`train_transfer`][visionkit.transfer.train_transfer] (the training options aside)."""

    base: BaseSpec
    method: str
    weights: Any
    image_size: tuple[int, int]
    head_epochs: int
    head_learning_rate: float | None
    from_layer: str | None
    last_n: int | None
    hidden: int | None
    dropout: float
    augment: bool | str

    def build_base(self) -> keras.Model:
        return conv_base(self.base, weights=self.weights, input_shape=(*self.image_size, 3))

    def settings(self) -> dict[str, Any]:
        base = self.base if isinstance(self.base, str) else getattr(self.base, "__name__", type(self.base).__name__)
        return {"recipe": "transfer", "base": base, "method": self.method,
                "weights": None if self.weights is None else str(self.weights),
                "image_size": list(self.image_size), "head_epochs": self.head_epochs,
                "head_learning_rate": self.head_learning_rate, "from_layer": self.from_layer,
                "last_n": self.last_n, "hidden": self.hidden, "dropout": self.dropout, "augment": self.augment}


def _check_recipe(opts: TrainOptions, **kw: Any) -> _Recipe:
    V.one_of("method", kw["method"], METHODS)
    base = kw["base"]
    if isinstance(base, str):
        V.one_of("base", base, _backbones.APPLICATIONS)
    elif not callable(base):
        raise V.fail("base", f"one of {list(_backbones.APPLICATIONS)} or a function returning a keras.Model", base)
    weights = kw["weights"]
    if weights is not None and not isinstance(weights, (str, os.PathLike)):
        raise V.fail("weights", "'imagenet', None or a path to a weights file", weights)
    head_epochs, head_lr = (V.integer("head_epochs", kw["head_epochs"], minimum=0),
                            V.number("head_learning_rate", kw["head_learning_rate"], minimum=0.0,
                                     exclusive_minimum=True, allow_none=True))
    if kw["method"] == "fine_tune":
        head_epochs, head_lr = _check_phases(opts.epochs, head_epochs, head_lr)
    elif opts.learning_rate not in (None, RECIPE_DEFAULTS["train_transfer"]["learning_rate"]):
        # the base never trains: a rate given for it would be silently unused
        raise V.fail("learning_rate", f"unset with method={kw['method']!r}, which trains only the head "
                     "(its rate is `head_learning_rate`; `learning_rate` is the unfrozen base's rate, "
                     "method='fine_tune')", opts.learning_rate)
    from_layer, last_n = kw["from_layer"], V.integer("last_n", kw["last_n"], minimum=1, allow_none=True)
    if from_layer is not None and (not isinstance(from_layer, str) or not from_layer):
        raise V.fail("from_layer", "a layer name (str) or None", from_layer)
    if from_layer is not None and last_n is not None:
        raise InvalidArgumentError(
            f"Pass `from_layer` or `last_n`, not both. Received: from_layer={from_layer!r}, last_n={last_n!r}"
        )
    _, hidden, dropout = check_head_args(2, kw["hidden"], kw["dropout"], "flatten")
    image_size = V.size2d("image_size", kw["image_size"])
    if isinstance(base, str) and min(image_size) < min_input_size(base):  # before the folder is read
        raise V.fail("image_size", f"at least {min_input_size(base)} pixels on each side for base '{base}'", image_size)
    return _Recipe(base=base, method=kw["method"], weights=weights, image_size=image_size,
                   head_epochs=head_epochs, head_learning_rate=head_lr, from_layer=from_layer, last_n=last_n,
                   hidden=hidden, dropout=dropout, augment=kw["augment"])


def train_transfer(
    directory: str | os.PathLike[str],
    *,
    base: BaseSpec = "vgg16",
    method: str = "fine_tune",
    weights: str | os.PathLike[str] | None = "imagenet",
    image_size: int | tuple[int, int] = (150, 150),
    head_epochs: int = 10,
    head_learning_rate: float | None = None,
    from_layer: str | None = None,
    last_n: int | None = None,
    hidden: int | None = 256,
    dropout: float = 0.5,
    augment: bool | str = True,
    validation_split: float = 0.2,
    test_directory: str | os.PathLike[str] | None = None,
    **options: Unpack[TrainOptionsKwargs],
) -> TrainResult:
    """Train a classifier on a folder of images with a pretrained base.

    Parameters
    ----------
    directory : str or os.PathLike
        A class-per-folder tree ``directory/<class>/<image>`` (a ``validation_split``
        fraction is held out for validation), or a folder of ``train/``,
        ``validation/`` (or ``val/``) and ``test/`` trees: the layouts of
        [`visionkit.data.folder_splits`][visionkit.data.folder_splits], which reads it.
    base : str or callable, default "vgg16"
        Backbone name or builder, as for [`conv_base`][visionkit.transfer.conv_base].
    method : {"features", "frozen", "fine_tune"}, default "fine_tune"
        ``"features"``: extract features once, train a dense classifier on them
        (fastest; no augmentation). ``"frozen"``: frozen base inside the model, with
        augmentation. ``"fine_tune"``: ``"frozen"`` for ``head_epochs``, then the top
        of the base unfrozen for the other ``epochs - head_epochs`` ([`fine_tune`][visionkit.transfer.fine_tune]).
    weights : "imagenet", None or path, default "imagenet"
        Weights of the base (see [`conv_base`][visionkit.transfer.conv_base]).
    image_size : int or (height, width), default (150, 150)
        Images are resized to this size.
    head_epochs : int, default 10
        ``"fine_tune"`` only: how many of the ``epochs`` train the head alone.
    head_learning_rate : float, optional
        The rate while only the head trains: phase 1 of ``"fine_tune"``, and the
        whole run of ``"features"`` and ``"frozen"`` (their base never trains).
        ``None``: the optimizer's default (1e-3 for RMSprop).
    from_layer, last_n
        What to unfreeze (see [`unfreeze`][visionkit.transfer.unfreeze]); default the base's last block
        ([`DEFAULT_FINE_TUNE_FROM`][visionkit.transfer.DEFAULT_FINE_TUNE_FROM]), or its last 3 weighted layers for custom bases.
    hidden, dropout
        The classifier head (see [`transfer_model`][visionkit.transfer.transfer_model]).
    augment : bool or str, default True
        Random flips, rotations, shifts and zooms inside the model (``"frozen"`` and
        ``"fine_tune"``); or a preset name from
        [`visionkit.training.AUGMENT_PRESETS`][visionkit.training.AUGMENT_PRESETS], applied to whole batches in the
        ``tf.data`` pipeline instead (the shared ``augment`` option; not with ``"features"``).
    validation_split : float, default 0.2
        Fraction held out for validation when ``directory`` has no ``validation/``.
    test_directory : str or os.PathLike, optional
        A class-per-folder tree for ``metrics`` (default ``directory/test`` when
        present). Without a test set, ``metrics`` are computed on the validation split.
    **options
        The shared training options ([`visionkit.training.TrainOptions`][visionkit.training.TrainOptions]);
        this recipe's defaults: ``epochs=30`` (the **total**; for ``"fine_tune"``
        both phases, and it must exceed ``head_epochs``), ``batch_size=20`` (per
        replica), ``optimizer="rmsprop"``, ``learning_rate=1e-5`` (the rate while the
        unfrozen base trains: ``"fine_tune"``'s phase 2). ``checkpoint_dir`` and
        ``log_dir`` get ``head/`` and ``fine_tune/`` sub-folders for ``"fine_tune"``.

    Returns
    -------
    visionkit.training.TrainResult
        Unpacks as ``model, history, metrics``: an end-to-end ``keras.Model`` taking
        raw images ``(batch, h, w, 3)`` in ``[0, 255]`` (for ``"features"``, the base
        and the trained classifier joined together) that carries the class names (the
        sub-folder names; [`visionkit.training.class_names`][visionkit.training.class_names], [`classify`][visionkit.transfer.classify]);
        the history of the whole run; ``{"loss", "accuracy"}`` on the test set (or
        the validation split; empty without either).

    Raises
    ------
    DataNotFoundError
        ``directory`` or ``test_directory`` does not exist.
    InvalidArgumentError
        A bad argument, ``epochs <= head_epochs`` for ``"fine_tune"``, or a folder
        that [`visionkit.data.folder_splits`][visionkit.data.folder_splits] refuses.
    UnexpectedArgumentError
        A keyword that is no training option.

    Examples
    --------
    >>> import keras, tempfile
    >>> from visionkit.data import sample_image, save_image
    >>> from visionkit.training import class_names
    >>> from visionkit.transfer import train_transfer
    >>> root = tempfile.mkdtemp()
    >>> for name in ("painting", "photo"):
    ...     for i in range(6):
    ...         _ = save_image(f"{root}/{name}/{i}.png", sample_image(name, size=16))
    >>> def tiny(shape):
    ...     inputs = keras.Input(shape)
    ...     return keras.Model(inputs, keras.layers.Conv2D(4, 3, name="block1_conv1")(inputs), name="tiny")
    >>> model, history, metrics = train_transfer(root, base=tiny, weights=None, method="features",
    ...                                          image_size=16, epochs=2, progress=False)
    >>> class_names(model), len(history.epoch), sorted(metrics)
    (['painting', 'photo'], 2, ['accuracy', 'loss'])
    """
    started = time.perf_counter()
    _, preset = augment_switch(augment)
    opts = _recipe_options({**options, "augment": preset}, "train_transfer")
    if method == "features" and (preset != "none" or opts.tta):
        name, value = ("augment", augment) if preset != "none" else ("tta", opts.tta)
        raise V.fail(name, "off with method='features', which trains on stored features, not images", value)
    recipe = _check_recipe(opts, base=base, method=method, weights=weights, image_size=image_size,
                           head_epochs=head_epochs, head_learning_rate=head_learning_rate, from_layer=from_layer,
                           last_n=last_n, hidden=hidden, dropout=dropout, augment=augment)
    from .data import folder_splits

    resolved = opts.resolve()  # strategy, precision and global batch, once for the whole recipe
    opts = resolved.options
    splits = folder_splits(directory, image_size=recipe.image_size, batch_size=resolved.global_batch,
                           validation_split=validation_split, test_directory=test_directory, seed=opts.seed,
                           progress=opts.progress)
    run: Callable[[_Recipe, FolderSplits, TrainOptions], TrainResult] = _METHODS[recipe.method]
    result = run(recipe, splits, opts)
    # the recipe's options over the phases' (which train the head with its own rate), but the
    # precision as recorded by the phases: the policy the model was built under
    settings = {**result.settings, **opts.to_dict(), "precision": result.settings["precision"],
                **recipe.settings(), "directory": str(directory), "validation_split": validation_split,
                "test_directory": None if test_directory is None else str(test_directory)}
    return dataclasses.replace(result, settings=settings, seconds=time.perf_counter() - started)


def _held_out(splits: FolderSplits) -> Any:
    return splits.test if splits.test is not None else splits.validation


def _run_features(recipe: _Recipe, splits: FolderSplits, opts: TrainOptions) -> TrainResult:
    """Features once, a dense classifier on them, both joined into one model."""
    from .device import precision_scope, strategy_scope
    from .training import run_recipe, with_class_names

    with strategy_scope(opts.strategy), precision_scope(opts.precision):
        cbase = recipe.build_base()
    feats = {"train": extract_features(cbase, splits.train, progress=opts.progress)}
    if splits.validation is not None:
        feats["validation"] = extract_features(cbase, splits.validation, progress=opts.progress)
    if splits.test is not None:
        feats["held_out"] = extract_features(cbase, splits.test, progress=opts.progress)
    elif splits.validation is not None:
        feats["held_out"] = feats["validation"]
    n = len(splits.class_names)
    result = run_recipe(
        lambda: feature_classifier(feats["train"][0].shape[1:], num_classes=n, hidden=recipe.hidden,
                                   dropout=recipe.dropout),
        feats["train"], validation_data=feats.get("validation"), test_data=feats.get("held_out"),
        options=_head_options(opts, recipe.head_learning_rate),
    )
    with strategy_scope(opts.strategy):
        inputs = keras.Input(shape=(*recipe.image_size, 3), name="image")
        model = keras.Model(inputs, result.model(cbase(inputs, training=False)), name=f"{cbase.name}_features")
        model = with_class_names(model, splits.class_names)
    return dataclasses.replace(result, model=model, class_names=tuple(splits.class_names))


def _build_transfer_model(recipe: _Recipe, num_classes: int, seed: int | None) -> keras.Model:
    from .preprocess import augmentation

    aug = augmentation(seed=seed) if augment_switch(recipe.augment)[0] else None
    return transfer_model(recipe.build_base(), num_classes=num_classes, hidden=recipe.hidden,
                          dropout=recipe.dropout, augmentation=aug)


def _run_frozen(recipe: _Recipe, splits: FolderSplits, opts: TrainOptions) -> TrainResult:
    """The frozen base inside the model, augmentation in front; only the head trains."""
    from .training import run_recipe

    n = len(splits.class_names)
    return run_recipe(
        lambda: _build_transfer_model(recipe, n, opts.seed), splits.train, validation_data=splits.validation,
        test_data=_held_out(splits), class_names=splits.class_names,
        options=_head_options(opts, recipe.head_learning_rate),
    )


def _unfreeze_default(model: keras.Model, from_layer: str | None, last_n: int | None,
                      base_name: str | None = None) -> tuple[str | None, int | None]:
    """``(from_layer, last_n)``: as given, else the backbone's last block (from its preset in
    [`visionkit.backbones`][visionkit.backbones]), else the last 3 layers."""
    if from_layer is not None and last_n is not None:
        raise InvalidArgumentError(
            f"Pass `from_layer` or `last_n`, not both. Received: from_layer={from_layer!r}, last_n={last_n!r}"
        )
    if from_layer is not None or last_n is not None:
        return from_layer, last_n
    from ._backbones import find_preset

    base = find_base(model, None)
    default = DEFAULT_FINE_TUNE_FROM.get(base_name) if base_name else None
    if default is None:
        record = find_preset(base)
        default = record.fine_tune_from if record is not None else None
    if default is not None and any(layer.name == default for layer in base.layers):
        return default, None
    return None, 3


def _unfreeze_target(recipe: _Recipe, model: keras.Model) -> tuple[str | None, int | None]:
    """``(from_layer, last_n)`` of the folder recipe: as given, else the preset's, else the last 3 layers."""
    return _unfreeze_default(model, recipe.from_layer, recipe.last_n,
                             recipe.base if isinstance(recipe.base, str) else None)


def _run_fine_tune(recipe: _Recipe, splits: FolderSplits, opts: TrainOptions) -> TrainResult:
    """[`fine_tune`][visionkit.transfer.fine_tune] of a [`transfer_model`][visionkit.transfer.transfer_model], then the held-out evaluation."""
    from .training import run_recipe

    def fit(model: keras.Model, resolved: TrainOptions) -> keras.callbacks.History:
        from_layer, last_n = _unfreeze_target(recipe, model)
        return _two_phases(model, splits.train, splits.validation, resolved, head_epochs=recipe.head_epochs,
                           head_learning_rate=recipe.head_learning_rate, from_layer=from_layer, last_n=last_n)

    n = len(splits.class_names)
    return run_recipe(
        lambda: _build_transfer_model(recipe, n, opts.seed), splits.train, validation_data=splits.validation,
        test_data=_held_out(splits), class_names=splits.class_names, options=opts, fit=fit,
    )


_METHODS: dict[str, Callable[[_Recipe, FolderSplits, TrainOptions], TrainResult]] = {
    "features": _run_features, "frozen": _run_frozen, "fine_tune": _run_fine_tune,
}
