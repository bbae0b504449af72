"""The shared training options (private; public through [`visionkit.training`][visionkit.training]).

This module imports neither TensorFlow nor Keras at import time, so the command line
can read the option names, choices and defaults from here cheaply.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from . import _validate as V
from .device import PRECISIONS, STRATEGIES, global_batch_size, resolve_precision, resolve_strategy
from .errors import InvalidArgumentError, UnexpectedArgumentError

if TYPE_CHECKING:  # pragma: no cover
    import keras
    import tensorflow as tf

__all__ = [
    "AUGMENT_PRESETS",
    "LR_SCHEDULES",
    "OPTIMIZERS",
    "RESUME_MODES",
    "TRAINING_OPTIONS",
    "Resolved",
    "TrainOptions",
    "TrainOptionsKwargs",
    "augment_switch",
]

#: Optimizer names [`train`][visionkit.training.train] accepts as strings (or pass a Keras optimizer).
OPTIMIZERS: tuple[str, ...] = (
    "adadelta", "adafactor", "adagrad", "adam", "adamax", "adamw", "ftrl", "lion",
    "muon", "nadam", "rmsprop", "sgd",
)

#: Learning-rate schedules [`train`][visionkit.training.train] can build for a named optimizer.
LR_SCHEDULES: tuple[str, ...] = ("constant", "cosine", "one_cycle")

#: Augmentation presets of the ``augment`` option, applied to whole training batches in the
#: ``tf.data`` pipeline by Keras 3's own preprocessing layers (see the "Training tricks" page).
AUGMENT_PRESETS: tuple[str, ...] = ("none", "flip", "light", "randaugment", "erasing", "mixup", "cutmix")

#: Values of the ``resume`` option: how a ``checkpoint_dir`` that already holds a run is continued.
RESUME_MODES: tuple[str, ...] = ("auto", "weights", "never")


# ----------------------------------------------------------------------------- options


class TrainOptionsKwargs(TypedDict, total=False):
    """The shared training options as keyword arguments, for type checkers: ``**options: Unpack[TrainOptionsKwargs]``.

    The same names and types as the fields of [`TrainOptions`][visionkit.training.TrainOptions],
    which checks them.
    """

    epochs: int
    batch_size: int
    optimizer: str | keras.optimizers.Optimizer
    learning_rate: float | None
    lr_schedule: str
    callbacks: Sequence[keras.callbacks.Callback] | None
    checkpoint_dir: str | os.PathLike[str] | None
    resume: str
    log_dir: str | os.PathLike[str] | None
    strategy: str | tf.distribute.Strategy | None
    precision: str | None
    seed: int | None
    progress: bool
    ema: float | None
    tta: bool
    label_smoothing: float
    augment: str


@dataclasses.dataclass(frozen=True)
class TrainOptions:
    """The training options shared by [`train`][visionkit.training.train] and every recipe, checked once.

    Every training function takes these as keyword arguments with the same names
    and meanings; a recipe only changes some defaults (its ``epochs``, say). Build
    one with ``from_kwargs``, which also refuses unknown names.

    Parameters
    ----------
    epochs : int, default 10
        The run's **total** number of epochs (for two-phase fine-tuning, both phases
        together). A resumed run trains only the epochs still missing.
    batch_size : int, default 32
        Examples per batch **per replica**: the global batch under a strategy of
        ``R`` replicas is ``batch_size × R``. The learning rate is not scaled for you.
    optimizer : str or keras.optimizers.Optimizer, default "rmsprop"
        A name from [`OPTIMIZERS`][visionkit.training.OPTIMIZERS] or an optimizer instance.
    learning_rate : float, optional
        Learning rate of a named optimizer (Keras' default for it when ``None``).
        Not allowed with an optimizer instance (set it on the instance).
    lr_schedule : {"constant", "cosine", "one_cycle"}, default "constant"
        ``"cosine"``: the rate falls from ``learning_rate`` to 0 along a half
        cosine over the ``epochs × steps per epoch`` optimizer steps of the run
        (``keras.optimizers.schedules.CosineDecay``). ``"one_cycle"``: it rises from
        ``learning_rate / 25`` to ``learning_rate`` along a half cosine over the
        first 30 % of the steps, then falls along a half cosine to
        ``learning_rate / 25e4`` ([`OneCycle`][visionkit.training.OneCycle]). Both follow
        ``optimizer.iterations``, so a resumed run continues them.
    callbacks : sequence of keras.callbacks.Callback, optional
        Extra callbacks, run after visionkit's own.
    checkpoint_dir : str or os.PathLike, optional
        Folder of resumable checkpoints (see the module description): run the same
        call again after a crash to resume after the last completed epoch.
    resume : {"auto", "weights", "never"}, default "auto"
        What to do with a ``checkpoint_dir`` that already holds a run. ``"auto"``:
        resume it when this run's settings match the folder's ``settings.json``,
        refuse otherwise ([`ResumeMismatchError`][visionkit.errors.ResumeMismatchError]). ``"weights"``: the
        same when they match; when they differ (a lower ``learning_rate`` after a
        NaN loss, another optimizer, more ``epochs``; not another model), load the
        last good checkpoint's **model weights only** (not the optimizer state)
        and train on with the new settings. Epochs keep counting from the
        checkpoint's epoch and ``epochs`` stays the run's total: a run stopped
        after epoch 3 and restarted with ``epochs=10`` trains epochs 4 to 10, and
        a ``"cosine"`` schedule spans those 7 epochs. The replaced settings are
        kept as ``settings.previous.json``; running the same call again resumes
        normally. ``"never"``: refuse a folder that already holds a run. Ignored
        without ``checkpoint_dir``.
    log_dir : str or os.PathLike, optional
        Folder for TensorBoard logs and ``metrics.csv``.
    strategy : str or tf.distribute.Strategy, optional
        A name from [`visionkit.device.STRATEGIES`][visionkit.device.STRATEGIES] or a strategy; ``None``
        trains on the default device.
    precision : {"float32", "mixed_float16", "mixed_bfloat16", "auto"}, optional
        The Keras dtype policy the recipe builds its model under (``"auto"``:
        [`visionkit.device.auto_precision`][visionkit.device.auto_precision]); the global policy is put back
        afterwards. ``None`` uses the global policy. [`train`][visionkit.training.train], which gets a
        built model, only checks that the model has this policy.
    seed : int, optional
        Seed (``>= 0``) of the data shuffling, splits and augmentation. It does not
        seed weight initialisation: use [`visionkit.device.configure`][visionkit.device.configure] for that.
    progress : bool, default True
        Keras progress bars (one line per epoch when output is not a terminal) and
        tqdm bars; ``False`` for silence.
    ema : float, optional
        Keep an exponential moving average of the weights with this decay per
        optimizer step (``0 < ema < 1``, e.g. 0.999; ``None`` or ``False``: none), and
        put it into the model when training ends: the returned model, its test
        metrics and ``model.keras`` are the averaged weights. Keras optimizers' own
        ``use_ema``: the average is optimizer state, so it is saved in the epoch
        checkpoints and a resumed run is exact. Validation metrics during training,
        ``best.keras`` and the epoch checkpoints hold the live (not averaged) weights.
        With an optimizer instance, set ``use_ema`` on it instead.
    tta : bool, default False
        Evaluate the held-out metrics with test-time augmentation: the mean of the
        model's outputs on each image and its mirror image. ``metrics["accuracy"]``
        and ``metrics["loss"]`` are then with it, ``"accuracy_no_tta"`` and
        ``"loss_no_tta"`` without. Training is unchanged.
    label_smoothing : float, default 0.0
        Label smoothing of the default cross-entropy loss, in ``[0, 1)``: the
        targets become ``y × (1 − ε) + ε / K`` for ``K`` classes (``K = 2`` for a
        one-unit binary head). Not allowed with an explicit ``loss``.
    augment : str, default "none"
        An augmentation preset from [`AUGMENT_PRESETS`][visionkit.training.AUGMENT_PRESETS], applied to whole
        training batches in the ``tf.data`` pipeline by Keras' preprocessing
        layers, seeded by ``seed``: ``"flip"`` (horizontal flips), ``"light"``
        (flips and shifts up to 1/8 of the size), ``"randaugment"`` (flips and
        ``keras.layers.RandAugment``), ``"erasing"`` (flips, shifts and
        ``RandomErasing``), ``"mixup"`` / ``"cutmix"`` (flips and shifts, then
        ``MixUp`` / ``CutMix``: the labels become soft, mixed rows that sum to 1,
        so they need the default loss). Inputs are taken to be pixels in
        ``[0, 255]``. Recipes with their own ``augment`` switch (``True``: their
        in-model augmentation) take a preset name there too.

    Examples
    --------
    >>> from visionkit.training import TrainOptions
    >>> TrainOptions.from_kwargs({"epochs": 3}, batch_size=64).batch_size
    64
    >>> TrainOptions.from_kwargs({"epoch": 3})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    visionkit.errors.UnexpectedArgumentError: Unexpected keyword argument `epoch` (did you mean `epochs`?). ...
    """

    epochs: int = 10
    batch_size: int = 32
    optimizer: Any = "rmsprop"
    learning_rate: float | None = None
    lr_schedule: str = "constant"
    callbacks: tuple[Any, ...] = ()
    checkpoint_dir: Path | None = None
    resume: str = "auto"
    log_dir: Path | None = None
    strategy: Any = None
    precision: str | None = None
    seed: int | None = None
    progress: bool = True
    ema: float | None = None
    tta: bool = False
    label_smoothing: float = 0.0
    augment: str = "none"

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "epochs", V.integer("epochs", self.epochs, minimum=1))
        set_(self, "batch_size", V.integer("batch_size", self.batch_size, minimum=1))
        set_(self, "learning_rate", V.number("learning_rate", self.learning_rate, minimum=0.0,
                                             exclusive_minimum=True, allow_none=True))
        V.one_of("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        V.one_of("resume", self.resume, RESUME_MODES)
        set_(self, "seed", V.integer("seed", self.seed, minimum=0, allow_none=True))
        set_(self, "progress", V.boolean("progress", self.progress))
        V.one_of("precision", self.precision, (*PRECISIONS, None))
        if isinstance(self.strategy, str):
            V.one_of("strategy", self.strategy, STRATEGIES)
        for name in ("checkpoint_dir", "log_dir"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, (str, os.PathLike)):
                raise V.fail(name, "a folder path or None", value)
            set_(self, name, Path(value) if value is not None else None)
        set_(self, "callbacks", _check_callbacks(self.callbacks))
        if self.ema is False or self.ema is None:
            set_(self, "ema", None)
        else:
            set_(self, "ema", V.number("ema", self.ema, minimum=0.0, maximum=1.0, exclusive_minimum=True,
                                       exclusive_maximum=True))
        set_(self, "tta", V.boolean("tta", self.tta))
        set_(self, "label_smoothing", float(V.number("label_smoothing", self.label_smoothing, minimum=0.0,
                                                     maximum=1.0, exclusive_maximum=True)))
        V.one_of("augment", self.augment, AUGMENT_PRESETS)
        _check_optimizer(self.optimizer, self.learning_rate, self.lr_schedule)
        if self.ema is not None and not isinstance(self.optimizer, str):
            raise InvalidArgumentError(
                "Argument `ema` only goes with an optimizer name; create the optimizer instance with "
                f"use_ema=True, ema_momentum=... instead. Received: optimizer={type(self.optimizer).__name__}, "
                f"ema={self.ema!r}"
            )

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any], /, **defaults: Any) -> TrainOptions:
        """Options from a recipe's ``**options``, over the recipe's ``defaults``.

        Raises
        ------
        UnexpectedArgumentError
            A name in ``kwargs`` that is no training option (the closest one is
            suggested).
        """
        known = TRAINING_OPTIONS
        for name in kwargs:
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                hint = f" (did you mean `{close[0]}`?)" if close else ""
                raise UnexpectedArgumentError(
                    f"Unexpected keyword argument `{name}`{hint}. The shared training options are: "
                    f"{', '.join(known)}."
                )
        if not isinstance(kwargs.get("optimizer", defaults.get("optimizer")), str):
            # a recipe's default rate and schedule are for its named optimizer: an instance
            # brings its own (set them on it)
            defaults = {k: v for k, v in defaults.items() if k not in ("learning_rate", "lr_schedule", "ema")}
        return cls(**{**defaults, **kwargs})

    def resolve(self) -> Resolved:
        """The run's strategy object, precision policy and global batch, resolved once.

        A strategy name becomes the strategy ([`visionkit.device.resolve_strategy`][visionkit.device.resolve_strategy]),
        ``precision="auto"`` the policy picked for this machine
        ([`visionkit.device.resolve_precision`][visionkit.device.resolve_precision]), and the global batch is
        ``batch_size`` × the strategy's replicas. Resolving resolved options changes
        nothing, so a recipe resolves them once and passes ``resolved.options`` on.

        Returns
        -------
        Resolved
            ``options`` (these options with the resolved ``strategy`` and
            ``precision``), ``strategy`` (``None``: the default device),
            ``precision`` (``None``: the global policy) and ``global_batch``.

        Examples
        --------
        >>> from visionkit.training import TrainOptions
        >>> run = TrainOptions(batch_size=16, precision="float32").resolve()
        >>> run.strategy, run.precision, run.global_batch
        (None, 'float32', 16)
        """
        strategy = resolve_strategy(self.strategy)
        precision = resolve_precision(self.precision)
        options = self
        if strategy is not self.strategy or precision != self.precision:
            options = self.replace(strategy=strategy, precision=precision)
        return Resolved(options, strategy, precision, global_batch_size(self.batch_size, strategy))

    def replace(self, **changes: Any) -> TrainOptions:
        """A copy with some options changed (checked again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The options as JSON-able settings (callbacks and progress left out)."""
        def name(obj: Any) -> Any:
            return obj if obj is None or isinstance(obj, (str, int, float)) else type(obj).__name__

        return {
            "epochs": self.epochs, "batch_size": self.batch_size, "optimizer": name(self.optimizer),
            "learning_rate": self.learning_rate, "lr_schedule": self.lr_schedule,
            "checkpoint_dir": str(self.checkpoint_dir) if self.checkpoint_dir else None, "resume": self.resume,
            "log_dir": str(self.log_dir) if self.log_dir else None,
            "strategy": name(self.strategy), "precision": self.precision, "seed": self.seed,
            "ema": self.ema, "tta": self.tta, "label_smoothing": self.label_smoothing, "augment": self.augment,
        }


@dataclasses.dataclass(frozen=True)
class Resolved:
    """What [`TrainOptions.resolve`][visionkit.training.TrainOptions.resolve] returns: the run's device settings, resolved once."""

    options: TrainOptions
    strategy: Any
    precision: str | None
    global_batch: int


#: The names of the shared training options, in the order the docs list them.
TRAINING_OPTIONS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(TrainOptions))


def augment_switch(value: Any) -> tuple[bool, str]:
    """A recipe's ``augment`` argument as ``(in-model augmentation on, pipeline preset)``.

    ``True``/``False``: the recipe's own in-model augmentation on or off (the preset is
    ``"none"``); a name from ``AUGMENT_PRESETS``: that preset in the ``tf.data``
    pipeline, and no in-model augmentation.
    """
    if isinstance(value, str):
        V.one_of("augment", value, AUGMENT_PRESETS)
        return False, value
    if not isinstance(value, bool) and type(value).__name__ != "bool_":
        raise V.fail("augment", f"True, False or one of {list(AUGMENT_PRESETS)}", value)
    return bool(value), "none"


def _check_callbacks(callbacks: Any) -> tuple[Any, ...]:
    if callbacks is None or (isinstance(callbacks, (list, tuple)) and not callbacks):
        return ()
    import keras

    if callbacks is None:
        return ()
    if isinstance(callbacks, keras.callbacks.Callback) or not isinstance(callbacks, (list, tuple)):
        raise V.fail("callbacks", "a list of keras.callbacks.Callback", callbacks)
    for cb in callbacks:
        if not isinstance(cb, keras.callbacks.Callback):
            raise V.fail("callbacks", "a list of keras.callbacks.Callback", cb)
    return tuple(callbacks)


def _check_optimizer(optimizer: Any, learning_rate: float | None, lr_schedule: str) -> None:
    if isinstance(optimizer, str):
        V.one_of("optimizer", optimizer.lower(), OPTIMIZERS)
        return
    import keras

    if not isinstance(optimizer, keras.optimizers.Optimizer):
        raise V.fail("optimizer", f"one of {list(OPTIMIZERS)} or a keras.optimizers.Optimizer", optimizer)
    for arg, value, default in (("learning_rate", learning_rate, None), ("lr_schedule", lr_schedule, "constant")):
        if value != default:
            raise InvalidArgumentError(
                f"Argument `{arg}` only goes with an optimizer name; set the learning rate (or a "
                "keras.optimizers.schedules.LearningRateSchedule) on the optimizer instance instead. "
                f"Received: optimizer={type(optimizer).__name__}, {arg}={value!r}"
            )
