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


def resolve_loss(model: Any, loss: Any, metrics: Any, label_info: dict[str, Any]) -> tuple[Any, list[Any], Any]:
    """Return ``(loss, metrics, loss description for the fingerprint)``."""
    import keras

    metric_list = list(metrics or ())
    if loss is not None:
        desc = loss if isinstance(loss, str) else type(loss).__name__ + json.dumps(_loss_config(loss), sort_keys=True, default=str)
        return loss, metric_list, desc
    units = model.outputs[0].shape[-1] if model.outputs else None
    label_shape = tuple(label_info.get("label_shape", ()))
    one_hot = units is not None and units > 1 and len(label_shape) == 1 and label_shape[0] == units
    loss_obj, kind, logits = default_loss_for(model, one_hot=one_hot)
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
