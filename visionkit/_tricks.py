"""The training tricks of the shared options (private; used by ``training`` and ``_losses``).

* [`OneCycle`][visionkit.training.OneCycle]: the ``lr_schedule="one_cycle"`` learning-rate schedule.
* ``SoftCrossentropy`` and ``soft_accuracy``: the cross-entropy and accuracy of a softmax (or
  logits) head that take class indices **or** soft label rows (after ``MixUp``/``CutMix``),
  with label smoothing: Keras' ``SparseCategoricalCrossentropy`` has no ``label_smoothing``.
* ``augment_batches``: the ``augment`` presets, Keras 3 preprocessing layers mapped over
  whole batches of a ``tf.data`` pipeline (graph mode, on the CPU), seeded.
* ``flip_average``: the model whose output is the mean over each image and its mirror
  (the ``tta`` option).

Importing this module imports Keras and registers the serialisable classes.
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

__all__ = ["MIXING_PRESETS", "OneCycle", "SoftCrossentropy", "augment_batches", "flip_average", "soft_accuracy"]

#: The presets whose labels come out soft (mixed rows).
MIXING_PRESETS: tuple[str, ...] = ("mixup", "cutmix")


@keras.saving.register_keras_serializable(package="visionkit")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """The one-cycle learning rate (Smith & Topin 2018, as PyTorch's ``OneCycleLR`` with cosine annealing).

    For step ``s`` of ``T = total_steps``, ``w = warmup × T``, ``lo = peak / div`` and
    ``end = lo / final_div``:

    * ``s < w``: ``lo + (peak − lo) × (1 − cos(π s / w)) / 2`` (rises from ``lo`` to ``peak``);
    * ``s ≥ w``: ``end + (peak − end) × (1 + cos(π p)) / 2`` with ``p = min((s − w) / (T − w), 1)``
      (falls from ``peak`` to ``end``).

    Parameters
    ----------
    peak : float
        The highest rate (the ``learning_rate`` option), ``> 0``.
    total_steps : int
        Optimizer steps of the whole run (``epochs × steps per epoch``).
    warmup : float, default 0.3
        Fraction of the steps spent rising, in ``(0, 1)``.
    div : float, default 25.0
        ``peak / div`` is the starting rate.
    final_div : float, default 1e4
        The last rate is the starting rate ``/ final_div``.

    Examples
    --------
    >>> from visionkit.training import OneCycle
    >>> schedule = OneCycle(0.1, 100)
    >>> [round(float(schedule(s)), 6) for s in (0, 30, 100)]
    [0.004, 0.1, 0.0]
    """

    def __init__(self, peak: float, total_steps: int, warmup: float = 0.3, div: float = 25.0,
                 final_div: float = 1e4) -> None:
        self.peak = float(peak)
        self.total_steps = max(int(total_steps), 1)
        self.warmup = float(warmup)
        self.div = float(div)
        self.final_div = float(final_div)

    def __call__(self, step: Any) -> Any:
        step = ops.cast(step, "float32")
        total = float(self.total_steps)
        warm = max(self.warmup * total, 1.0)
        lo = self.peak / self.div
        end = lo / self.final_div
        up = lo + (self.peak - lo) * (1.0 - ops.cos(math.pi * ops.minimum(step / warm, 1.0))) / 2.0
        frac = ops.clip((step - warm) / max(total - warm, 1.0), 0.0, 1.0)
        down = end + (self.peak - end) * (1.0 + ops.cos(math.pi * frac)) / 2.0
        return ops.where(step < warm, up, down)

    def get_config(self) -> dict[str, Any]:
        return {"peak": self.peak, "total_steps": self.total_steps, "warmup": self.warmup, "div": self.div,
                "final_div": self.final_div}


def _targets(y_true: Any, units: int) -> Any:
    """Soft ``(batch, units)`` targets from class indices ``(batch,)``/``(batch, 1)`` or from soft rows."""
    shape = tuple(y_true.shape)
    if len(shape) == 2 and shape[-1] == units and units > 1:
        return ops.cast(y_true, "float32")
    return ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), units)


@keras.saving.register_keras_serializable(package="visionkit")
class SoftCrossentropy(keras.losses.Loss):
    """Cross-entropy of a ``units``-way head on class indices or soft label rows, with label smoothing.

    ``y_true`` of shape ``(batch,)`` or ``(batch, 1)`` holds class indices (as for
    ``SparseCategoricalCrossentropy``); of shape ``(batch, units)``, probability rows
    (one-hot, or mixed by ``MixUp``/``CutMix``). The targets are smoothed to
    ``t × (1 − label_smoothing) + label_smoothing / units``.
    """

    def __init__(self, units: int, *, from_logits: bool = False, label_smoothing: float = 0.0,
                 name: str = "soft_crossentropy", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.units = int(units)
        self.from_logits = bool(from_logits)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        targets = _targets(y_true, self.units)
        return keras.losses.categorical_crossentropy(targets, ops.cast(y_pred, "float32"),
                                                     from_logits=self.from_logits,
                                                     label_smoothing=self.label_smoothing)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units, "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing}


@keras.saving.register_keras_serializable(package="visionkit")
def soft_accuracy(y_true: Any, y_pred: Any) -> Any:
    """Accuracy against class indices or soft label rows (the arg-max of the row is the class)."""
    units = int(y_pred.shape[-1])
    shape = tuple(y_true.shape)
    if len(shape) == 2 and shape[-1] == units and units > 1:
        truth = ops.argmax(y_true, axis=-1)
    else:
        truth = ops.reshape(ops.cast(y_true, "int32"), (-1,))
    return ops.cast(ops.equal(ops.cast(truth, "int32"), ops.cast(ops.argmax(y_pred, axis=-1), "int32")), "float32")


def _layers(preset: str, seed: int | None) -> list[Any]:
    from keras import layers

    def s(i: int) -> int | None:
        return None if seed is None else seed + i

    flip = layers.RandomFlip("horizontal", seed=s(1))
    shift = layers.RandomTranslation(0.125, 0.125, fill_mode="reflect", seed=s(2))
    return {
        "none": [],
        "flip": [flip],
        "light": [flip, shift],
        "randaugment": [flip, layers.RandAugment(value_range=(0, 255), num_ops=2, factor=0.5, seed=s(3))],
        "erasing": [flip, shift, layers.RandomErasing(factor=0.5, value_range=(0, 255), seed=s(4))],
        "mixup": [flip, shift, layers.MixUp(alpha=0.2, seed=s(5))],
        "cutmix": [flip, shift, layers.CutMix(factor=1.0, seed=s(6))],
    }[preset]


def augment_batches(ds: Any, preset: str, *, units: int, seed: int | None) -> Any:
    """Map the ``augment`` preset over a batched ``(images, labels)`` dataset.

    Images (any numeric dtype, pixels in ``[0, 255]``) come out float32 in
    ``[0, 255]`` with the same shape. With a mixing preset, the labels come out as
    float32 rows: one-hot then mixed, ``(batch, units)`` for a ``units``-way head, or
    ``(batch, 1)`` probabilities of class 1 for a one-unit head. The map runs the
    Keras layers in graph mode on whole batches, one batch at a time in order, so a
    ``seed`` gives the same batches on every run.
    """
    import tensorflow as tf

    if preset == "none":
        return ds
    steps = _layers(preset, seed)
    mixing = preset in MIXING_PRESETS

    def apply(x: Any, y: Any) -> Any:
        with tf.device("/cpu:0"):
            x = tf.cast(x, tf.float32)
            for layer in steps[:-1] if mixing else steps:
                x = layer(x, training=True)
            if mixing:
                if units > 1:
                    y = tf.one_hot(tf.cast(tf.reshape(y, (-1,)), tf.int32), units)
                else:
                    y = tf.reshape(tf.cast(y, tf.float32), (-1, 1))
                out = steps[-1]({"images": x, "labels": y}, training=True)
                x, y = out["images"], out["labels"]
            return tf.clip_by_value(x, 0.0, 255.0), y

    return ds.map(apply).prefetch(tf.data.AUTOTUNE)


def flip_average(model: Any) -> Any:
    """A model whose output is the mean of ``model``'s outputs on the images and on their mirror images.

    Images are ``(batch, height, width, channels)``; the mirror flips the width axis.
    """
    inputs = keras.Input(tuple(model.inputs[0].shape[1:]), dtype=model.inputs[0].dtype)
    plain = ops.cast(model(inputs, training=False), "float32")
    mirrored = ops.cast(model(ops.flip(inputs, axis=2), training=False), "float32")
    return keras.Model(inputs, (plain + mirrored) / 2.0, name=f"{model.name}_flip_tta")
