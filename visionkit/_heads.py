"""What a classifier's head is: logits, softmax or sigmoid (private, shared).

One place for head inspection: ``output_layer`` and ``final_layer`` find the
layer that produces a model's output (inside nested models, skipping pass-through
layers such as ``visionkit._labels.ClassNames``), ``head_kind`` and
``is_logits`` say what its activation is, and ``logits_substitute`` gives a
callable computing that layer *without* its final softmax/sigmoid, for code that
needs the class scores before it (Grad-CAM). Nothing here modifies a model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras

from . import _layers
from ._labels import is_passthrough

__all__ = [
    "PreActivationDense",
    "activation_name",
    "final_layer",
    "head_kind",
    "is_logits",
    "logits_substitute",
    "output_layer",
]

def output_layer(model: Any) -> Any:
    """The layer that computes a model's output, looking into nested models.

    Parameters
    ----------
    model : keras.Model or keras.layers.Layer
        Any model (functional, ``Sequential`` or subclassed); a layer is returned
        as it is.

    Returns
    -------
    keras.layers.Layer
        The last layer of ``model`` that is not a pass-through layer
        (``visionkit._labels.is_passthrough``); when that layer is itself a
        model with layers, its own output layer, recursively. ``model`` itself when
        it has no such layer.

    Examples
    --------
    >>> m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="head")])
    >>> output_layer(keras.Sequential([keras.Input((4,)), m])).name
    'head'
    """
    layer = model
    while isinstance(layer, keras.Model) and layer.layers:
        inner = [ly for ly in layer.layers if not is_passthrough(ly)]
        if not inner:
            break
        layer = inner[-1]
    return layer


def activation_name(fn: Any) -> str | None:
    """The name of a Keras activation function (``"softmax"``, ``"linear"``, ...).

    Parameters
    ----------
    fn : callable or None
        An activation as stored on a layer (``layer.activation``).

    Returns
    -------
    str or None
        The registered name, else the function's ``__name__``; None for None or
        for an object without a name.

    Examples
    --------
    >>> activation_name(keras.activations.relu)
    'relu'
    """
    if fn is None:
        return None
    try:
        name = keras.activations.serialize(fn)
    except (ValueError, TypeError):
        return getattr(fn, "__name__", None)
    if isinstance(name, dict):
        name = name.get("config", {}).get("name", name.get("class_name"))
    return name if isinstance(name, str) else None


def head_kind(layer: Any) -> str:
    """What a head layer's final activation is.

    Parameters
    ----------
    layer : keras.layers.Layer
        Usually ``output_layer`` of a model.

    Returns
    -------
    str
        ``"softmax"`` (a ``Softmax`` layer or a softmax activation), ``"sigmoid"``,
        ``"linear"`` (a linear activation: the layer returns logits) or
        ``"other"`` (another activation, or a layer without one).

    Examples
    --------
    >>> head_kind(keras.layers.Dense(2, activation="sigmoid"))
    'sigmoid'
    """
    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    name = activation_name(getattr(layer, "activation", None))
    return name if name in ("softmax", "sigmoid", "linear") else "other"


def is_logits(model: Any) -> bool:
    """True when a model's output layer has a linear activation (it returns logits).

    Parameters
    ----------
    model : keras.Model
        Nested models and a trailing pass-through layer (class names) are looked
        through, as by ``output_layer``.

    Returns
    -------
    bool

    Examples
    --------
    >>> is_logits(keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)]))
    True
    """
    return head_kind(output_layer(model)) == "linear"


def _producer(tensor: Any) -> Any:
    history = getattr(tensor, "_keras_history", None)
    return history[0] if history else None


def _skip_passthrough(op: Any) -> Any:
    """Follow pass-through layers back to the layer that produced their input."""
    while op is not None and is_passthrough(op):
        nodes = getattr(op, "_inbound_nodes", None) or []
        inputs = nodes[0].input_tensors if nodes else []
        op = _producer(inputs[0]) if len(inputs) == 1 else None
    return op


def final_layer(model: Any, *, prefix: str = "") -> tuple[str, Any] | None:
    """The qualified name and the layer producing a model's single output.

    Unlike ``output_layer`` this follows the model's graph from its output
    (exact for functional models whose layer list does not end with the head) and
    returns the name with which ``visionkit._layers.tap`` addresses the layer.

    Parameters
    ----------
    model : keras.Model
        A functional or ``Sequential`` model; nested ones are entered.
    prefix : str, default ""
        Prepended to the names (``"outer/"`` inside a nested model).

    Returns
    -------
    (str, keras.layers.Layer) or None
        ``("outer/inner", layer)``, pass-through layers skipped; None for a model
        with several outputs or no graph.

    Examples
    --------
    >>> m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="head")])
    >>> final_layer(m)[0]
    'head'
    """
    outputs = getattr(model, "outputs", None)
    if not outputs or len(outputs) != 1:
        return None
    op = _skip_passthrough(_producer(outputs[0]))
    if op is None and isinstance(model, keras.Sequential):
        inner = [ly for ly in model.layers if not is_passthrough(ly)]
        op = inner[-1] if inner else None
    if op is None or getattr(op, "name", None) is None:
        return None
    name = f"{prefix}{op.name}"
    if isinstance(op, keras.Model) and _layers.is_graph_model(op):
        return final_layer(op, prefix=f"{name}/") or (name, op)
    return name, op


class PreActivationDense(keras.layers.Layer):
    """A ``Dense`` layer's output without its activation, reading its own variables.

    The variables are shared, not copied, so later training of the original layer
    is seen. Input ``(..., in_units)``, output ``(..., units)``, the dense layer's
    compute dtype.
    """

    def __init__(self, dense: Any) -> None:
        super().__init__(name=f"{dense.name}_logits", dtype=dense.dtype_policy)
        self._dense_ref = [dense]  # a list keeps Keras from tracking it as a sub-layer

    def call(self, inputs: Any) -> Any:
        dense = self._dense_ref[0]
        x = keras.ops.matmul(inputs, dense.kernel)
        if dense.bias is not None:
            x = keras.ops.add(x, dense.bias)
        return x

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (*tuple(input_shape)[:-1], self._dense_ref[0].units)


def _identity(x: Any, *args: Any, **kwargs: Any) -> Any:
    return x


def logits_substitute(layer: Any) -> Callable[..., Any] | None:
    """A callable computing ``layer`` without its final softmax/sigmoid, if there is one.

    Parameters
    ----------
    layer : keras.layers.Layer
        A head layer (see ``final_layer``).

    Returns
    -------
    callable or None
        The identity for a ``Softmax`` layer or a softmax/sigmoid ``Activation``
        layer; a ``PreActivationDense`` for a ``Dense`` layer with a softmax or
        sigmoid activation; None for any other layer (its output is used as it is).

    Examples
    --------
    >>> logits_substitute(keras.layers.Dense(3)) is None
    True
    """
    kind = head_kind(layer)
    if kind not in ("softmax", "sigmoid"):
        return None
    if isinstance(layer, (keras.layers.Softmax, keras.layers.Activation)):
        return _identity
    if isinstance(layer, keras.layers.Dense):
        return PreActivationDense(layer)
    return None
