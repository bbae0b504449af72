"""Shared parts of calibration, robustness, export, prediction and the report (private).

Reading ``(images, labels)`` data in batches, turning labels into integer classes,
one compiled forward pass per model, and the class scores of any classifier head as
logits: what a head returns (logits, softmax or sigmoid) is found by the head
inspection of ``visionkit._heads``; a head it cannot name (a ``Rescaling`` after the
last ``Dense``, as the fast CIFAR-10 network has) is read as logits when it is a
linear layer, and from its outputs otherwise. TensorFlow is imported inside the
functions that need it.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import Any

import numpy as np

from . import _validate as V
from .errors import InvalidArgumentError

__all__ = [
    "DATA_ALLOWED",
    "batches",
    "forward",
    "label_ints",
    "logits_from_outputs",
    "output_kind",
    "predict_logits",
    "softmax",
]

DATA_ALLOWED = "an (images, labels) tuple of arrays or a tf.data.Dataset of (images, labels) batches"

#: The smallest probability whose log is taken (float32 softmax outputs may be exactly 0).
TINY = 1e-30


def batches(data: Any, batch_size: int, *, argument: str = "data") -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(images, labels)`` numpy batches from arrays or a dataset of batches, in order."""
    if isinstance(data, (tuple, list)) and len(data) == 2 and not _is_dataset(data):
        x, y = data
        if len(x) != len(y):
            raise V.fail(argument, "an (images, labels) pair of equal length", f"{len(x)} images, {len(y)} labels")
        for start in range(0, len(x), batch_size):
            yield np.asarray(x[start : start + batch_size]), np.asarray(y[start : start + batch_size])
        return
    if not _is_dataset(data):
        raise V.fail(argument, DATA_ALLOWED, data)
    for batch in data:
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise V.fail(argument, DATA_ALLOWED, data)
        yield np.asarray(batch[0]), np.asarray(batch[1])


def _is_dataset(data: Any) -> bool:
    module = type(data).__module__
    if not module.startswith("tensorflow"):
        return False
    import tensorflow as tf

    return isinstance(data, tf.data.Dataset)


def label_ints(y: Any, k: int, *, argument: str = "labels") -> np.ndarray:
    """int64 classes ``(N,)`` from integer labels, one-hot rows ``(N, k)`` or ``(N, 1)`` 0/1 labels."""
    y = np.asarray(y)
    k = max(int(k), 2)
    allowed = f"integer classes in [0, {k}), one-hot rows of {k} or (N, 1) 0/1 labels"
    if y.ndim == 2 and y.shape[1] > 1:
        if y.shape[1] != k:
            raise V.fail(argument, allowed, f"labels of shape {y.shape}")
        y = y.argmax(axis=1)
    elif y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or not (np.issubdtype(y.dtype, np.number) or y.dtype == bool):
        raise V.fail(argument, allowed, f"labels of shape {y.shape}")
    ints = np.rint(y).astype(np.int64)
    bad = (ints != y) | (ints < 0) | (ints >= k)
    if bad.any():
        raise V.fail(argument, allowed, f"labels such as {y[bad][:5].tolist()}")
    return ints


# model -> its compiled forward pass (weak keys: a dropped model frees it)
_STEPS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def forward(model: Any) -> Any:
    """``f(x) -> (N, units)`` float32 numpy outputs of ``model(x, training=False)``, compiled once."""
    try:
        return _STEPS[model]
    except (KeyError, TypeError):
        pass
    import tensorflow as tf

    spec = model.inputs[0] if getattr(model, "inputs", None) else None
    signature = [tf.TensorSpec((None, *spec.shape[1:]), spec.dtype)] if spec is not None else None
    dtype = spec.dtype if spec is not None else "float32"
    ref = weakref.ref(model)

    @tf.function(input_signature=signature, reduce_retracing=True)
    def step(x: Any) -> Any:
        out = tf.cast(ref()(x, training=False), tf.float32)
        return tf.reshape(out, [tf.shape(out)[0], -1])

    def run(x: Any) -> np.ndarray:
        return step(tf.convert_to_tensor(np.asarray(x), dtype=dtype)).numpy()

    try:
        _STEPS[model] = run
    except TypeError:
        pass
    return run


def output_kind(model: Any, sample: np.ndarray | None = None) -> str:
    """``"logits"``, ``"softmax"`` or ``"sigmoid"``: what a classifier's output holds.

    The head inspection names linear, softmax and sigmoid heads; a ``Rescaling``
    layer at the end (logits times a constant) is read as logits; for any other head
    ``sample`` (outputs of the model) decides: rows of probabilities (in ``[0, 1]``,
    summing to 1, or one unit in ``[0, 1]``) are softmax / sigmoid, anything else
    logits.
    """
    import keras

    from ._heads import head_kind, output_layer

    layer = output_layer(model)
    kind = head_kind(layer)
    if kind == "linear":
        return "logits"
    if kind in ("softmax", "sigmoid"):
        return kind
    if isinstance(layer, keras.layers.Rescaling):
        return "logits"
    if sample is None:
        raise InvalidArgumentError(
            f"Cannot tell whether the output layer '{getattr(layer, 'name', layer)}' of model "
            f"'{getattr(model, 'name', model)}' returns logits or probabilities (expected a linear, softmax or "
            "sigmoid head).")
    s = np.asarray(sample, np.float64)
    in_unit = s.size > 0 and s.min() >= 0.0 and s.max() <= 1.0
    if s.shape[1] == 1:
        return "sigmoid" if in_unit else "logits"
    return "softmax" if in_unit and np.allclose(s.sum(axis=1), 1.0, atol=1e-3) else "logits"


def logits_from_outputs(outputs: np.ndarray, kind: str) -> np.ndarray:
    """float64 ``(N, K)`` logits from a head's outputs; a one-unit head gives ``[0, z]`` (K = 2).

    ``softmax(result)`` is the head's class probabilities: ``log p`` for a softmax
    head (defined up to a constant per row), ``z`` for logits, and for one sigmoid
    unit ``z = log p - log(1 - p)``, so that ``softmax([0, z]) = [1 - p, p]``.
    """
    out = np.asarray(outputs, np.float64)
    if kind == "softmax":
        return np.log(np.maximum(out, TINY))
    if out.shape[1] == 1:
        if kind == "sigmoid":
            p = np.clip(out[:, 0], TINY, 1.0)
            z = np.log(p) - np.log(np.maximum(1.0 - out[:, 0], TINY))
        else:
            z = out[:, 0]
        return np.stack([np.zeros_like(z), z], axis=1)
    if kind == "sigmoid":
        raise InvalidArgumentError(
            f"A sigmoid head of {out.shape[1]} units is multi-label; calibration and reports take one-label "
            "classifiers (a softmax or logits head, or one sigmoid unit).")
    return out


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature`` in float64."""
    z = np.asarray(logits, np.float64) / float(temperature)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def predict_logits(model: Any, data: Any, *, batch_size: int, argument: str = "data") -> tuple[np.ndarray, np.ndarray, str]:
    """Logits ``(N, K)`` float64, integer labels ``(N,)`` and the head kind of ``model`` over ``data``."""
    run = forward(model)
    outs, labels = [], []
    kind = None
    for xb, yb in batches(data, batch_size, argument=argument):
        out = run(xb)
        kind = kind or output_kind(model, out)
        outs.append(logits_from_outputs(out, kind))
        labels.append(label_ints(yb, out.shape[1], argument=argument))
        if len(labels[-1]) != len(xb):
            raise V.fail(argument, "batches of as many labels as images", f"{len(xb)} images, {len(labels[-1])} labels")
    if not outs:
        raise V.fail(argument, "at least one example", data)
    return np.concatenate(outs), np.concatenate(labels), str(kind)
