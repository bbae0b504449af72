"""The optimizer, loss and metrics a run compiles with (private; used by ``training``).

``make_optimizer`` builds a named optimizer (with a cosine schedule when asked),
``default_loss_for`` picks the loss from the model's output, and ``resolve_loss``
turns ``"accuracy"`` into the accuracy metric that matches that loss.
"""

from __future__ import annotations

import json
from typing import Any

from ._heads import is_logits
from .errors import InvalidArgumentError

__all__ = ["default_loss_for", "make_optimizer", "resolve_loss", "steps_per_epoch"]


def make_optimizer(
    optimizer: Any, learning_rate: float | None, *, schedule: str = "constant", total_steps: int | None = None,
    ema: float | None = None,
) -> Any:
    """A named optimizer at ``learning_rate`` along ``schedule``, keeping an EMA of the weights when ``ema``."""
    import keras

    if not isinstance(optimizer, str):
        return optimizer
    extra: dict[str, Any] = {} if ema is None else {"use_ema": True, "ema_momentum": float(ema)}
    config: dict[str, Any] = ({} if learning_rate is None else {"learning_rate": learning_rate}) | extra
    opt = keras.optimizers.get({"class_name": optimizer.lower(), "config": config})
    if schedule == "constant":
        return opt
    initial = float(learning_rate if learning_rate is not None else opt.get_config()["learning_rate"])
    steps = max(int(total_steps or 1), 1)
    if schedule == "one_cycle":
        from ._tricks import OneCycle

        lr: Any = OneCycle(initial, steps)
    else:
        lr = keras.optimizers.schedules.CosineDecay(initial, decay_steps=steps)
    return keras.optimizers.get({"class_name": optimizer.lower(), "config": {"learning_rate": lr} | extra})


def steps_per_epoch(ds: Any, name: str, schedule: str) -> int:
    """Batches per epoch of a batched dataset (needed to lay out a learning-rate schedule)."""
    steps = int(ds.cardinality())
    if steps <= 0:
        raise InvalidArgumentError(
            f"lr_schedule={schedule!r} needs the number of batches per epoch, but the dataset given as "
            f"`{name}` does not know it (cardinality {steps}). Pass arrays, a finite dataset (e.g. via "
            "`dataset.apply(tf.data.experimental.assert_cardinality(n))`) or lr_schedule='constant'."
        )
    return steps


def default_loss_for(model: Any, *, one_hot: bool) -> tuple[Any, str, bool]:
    import keras

    shape = tuple(model.outputs[0].shape) if model.outputs else ()
    if len(shape) != 2 or shape[-1] is None:
        raise InvalidArgumentError(
            f"Cannot pick a default loss for model '{model.name}' with output shape {shape}: "
            "expected (batch, units). Pass `loss=` explicitly."
        )
    units = int(shape[-1])
    logits = is_logits(model)
    if units == 1:
        return keras.losses.BinaryCrossentropy(from_logits=logits), "binary", logits
    if one_hot:
        return keras.losses.CategoricalCrossentropy(from_logits=logits), "categorical", logits
    return keras.losses.SparseCategoricalCrossentropy(from_logits=logits), "sparse", logits


def resolve_loss(model: Any, loss: Any, metrics: Any, label_info: dict[str, Any], *,
                 label_smoothing: float = 0.0, soft_labels: bool = False) -> tuple[Any, list[Any], Any]:
    """Return ``(loss, metrics, loss description for the fingerprint)``.

    ``label_smoothing`` smooths the default loss; ``soft_labels``: the training labels
    will be soft rows (``MixUp``/``CutMix``) while the other data keep the given labels,
    so a sparse head gets the loss and accuracy that take both.
    """
    import keras

    metric_list = list(metrics or ())
    if loss is not None:
        desc = loss if isinstance(loss, str) else type(loss).__name__ + json.dumps(_loss_config(loss), sort_keys=True, default=str)
        return loss, metric_list, desc
    units = model.outputs[0].shape[-1] if model.outputs else None
    label_shape = tuple(label_info.get("label_shape", ()))
    one_hot = units is not None and units > 1 and len(label_shape) == 1 and label_shape[0] == units
    loss_obj, kind, logits = default_loss_for(model, one_hot=one_hot)
    desc = f"{type(loss_obj).__name__}(from_logits={logits})"
    if kind == "sparse" and (label_smoothing or soft_labels):
        from ._tricks import SoftCrossentropy, soft_accuracy

        loss_obj, kind = SoftCrossentropy(int(units), from_logits=logits, label_smoothing=label_smoothing), "soft"
        desc = f"SoftCrossentropy(from_logits={logits})"
    elif label_smoothing:
        loss_obj = type(loss_obj)(from_logits=logits, label_smoothing=label_smoothing)
    if label_smoothing:  # (no entry without it, so older checkpoint folders still resume)
        desc = desc[:-1] + f", label_smoothing={label_smoothing:g})"
    resolved = []
    for m in metric_list:
        if m in ("accuracy", "acc"):
            if kind == "soft":
                m = keras.metrics.MeanMetricWrapper(soft_accuracy, name="accuracy")
            elif kind == "binary":
                m = keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0 if logits else 0.5)
            elif kind == "sparse":
                m = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
            else:
                m = keras.metrics.CategoricalAccuracy(name="accuracy")
        resolved.append(m)
    return loss_obj, resolved, desc


def _loss_config(loss: Any) -> Any:
    try:
        return loss.get_config()
    except (AttributeError, NotImplementedError, TypeError):
        return getattr(loss, "__name__", repr(loss))
