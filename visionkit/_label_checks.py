"""Labels checked against the model's head before and while training (private; used by ``training``).

A classification loss only takes some labels: class indices below the number of
softmax units, 0/1 for one sigmoid unit, one-hot rows of the head's width.
``check_labels`` refuses label arrays outside that before training;
``guard_labels`` checks a dataset's labels batch by batch inside the pipeline (it
reads nothing ahead), and ``reraise_label_errors`` turns a failed check into an
[`InvalidArgumentError`][visionkit.errors.InvalidArgumentError] naming the data.
"""

from __future__ import annotations

import contextlib
import math
import re
from typing import Any

import numpy as np

from . import _validate as V
from ._heads import head_kind, output_layer
from .errors import InvalidArgumentError

__all__ = ["check_labels", "guard_labels", "label_kind", "reraise_label_errors"]

_LOSS_KINDS = {"binarycrossentropy": "binary", "binaryfocalcrossentropy": "binary",
               "sparsecategoricalcrossentropy": "sparse", "categoricalcrossentropy": "categorical",
               "categoricalfocalcrossentropy": "categorical",
               "softcrossentropy": "sparse"}


def label_kind(model: Any, loss: Any, label_shape: tuple[Any, ...]) -> str | None:
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
            f"Argument `{name}` has labels of shape (N, {_shape_text(shape)}) that do not fit the {rule['head']} of "
            f"model '{model.name}': it takes {rule['width']}."
        )


def _found(low: float, high: float, integral: bool, rule: dict[str, Any]) -> str | None:
    """What is wrong with labels spanning ``[low, high]``, or ``None``."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return "NaN or infinite values"
    if low < 0 or high > rule["high"] or (rule["integers"] and not integral):
        return f"values in [{low:g}, {high:g}]" + ("" if integral or not rule["integers"] else ", not all integers")
    return None


def check_labels(model: Any, y: Any, kind: str | None, name: str) -> None:
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


def guard_labels(model: Any, ds: Any, kind: str | None, name: str) -> Any:
    """``ds`` with every batch's labels checked as it is read (a failed check stops training by name).

    Checking inside the pipeline reads nothing ahead (a peek would advance a seeded
    ``shuffle`` and fill its buffer); ``reraise_label_errors`` turns the failed
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
def reraise_label_errors() -> Any:
    """Turn a failed label check of ``guard_labels`` into an ``InvalidArgumentError`` naming the data."""
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



def _shape_text(shape: tuple[Any, ...]) -> str:
    return ", ".join("None" if s is None else str(s) for s in shape)
