"""Class names that travel with a saved model (private; public through ``visionkit.training``).

A model knows the names of its classes through a [`ClassNames`][visionkit.training.ClassNames] layer: an identity
layer placed after the output layer whose configuration holds the names. Keras saves
the configuration with the model, so ``model.save("m.keras")`` followed by
``keras.models.load_model("m.keras")`` (in a process where visionkit's training module
is imported, which registers the layer) gives back a model that still names its
classes. Being an identity, the layer changes neither outputs nor gradients.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from . import _validate as V
from .errors import InvalidArgumentError

__all__ = ["ClassNames", "check_names", "check_saved_names", "class_names", "is_passthrough", "with_class_names"]


@keras.saving.register_keras_serializable(package="visionkit", name="ClassNames")
class ClassNames(keras.layers.Layer):
    """Identity layer that stores the class names of the model's output.

    Parameters
    ----------
    class_names : sequence of str
        One name per output unit (two for a one-unit sigmoid head: negative first).

    Notes
    -----
    The layer always computes in float32, so it never casts a float32 output back
    to a mixed-precision compute dtype.
    """

    #: Head inspection skips layers marked as pass-through.
    visionkit_passthrough = True

    def __init__(self, class_names: Sequence[str], **kwargs: Any) -> None:
        kwargs.setdefault("dtype", "float32")
        kwargs.setdefault("name", "class_names")
        super().__init__(**kwargs)
        self.class_names = [str(c) for c in class_names]

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ClassNames:
        """Rebuild the layer from a saved configuration, which is data: checked, never trusted.

        Raises [`InvalidArgumentError`][visionkit.errors.InvalidArgumentError] unless
        ``class_names`` is a non-empty list of distinct strings (a string, ``None``,
        numbers or repeated names would silently relabel the predictions).
        """
        config = dict(config)
        names = config.pop("class_names", None)
        check_saved_names(names, None)
        return cls(names, **config)

    def build(self, input_shape: Any) -> None:
        units = input_shape[-1] if input_shape is not None and len(input_shape) else None
        if units is not None:  # a saved model whose names do not match its outputs
            check_saved_names(self.class_names, int(units))
        super().build(input_shape)

    def call(self, inputs: Any) -> Any:
        return inputs

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "class_names": list(self.class_names)}


def is_passthrough(layer: Any) -> bool:
    """True for layers that only carry metadata (skipped when looking for the head)."""
    return bool(getattr(layer, "visionkit_passthrough", False))


def class_names(model: Any) -> list[str] | None:
    """The class names a model carries (``None`` when it carries none).

    Looks for the last [`ClassNames`][visionkit.training.ClassNames] layer, in nested models too; falls back
    to a ``class_names`` attribute (models made by visionkit 0.1).
    """
    found = _find(model)
    if found is not None:
        try:
            shape = found.input.shape
        except (AttributeError, ValueError):  # never called, or called more than once
            shape = None
        units = shape[-1] if shape is not None and len(shape) else None
        return check_saved_names(found.class_names, None if units is None else int(units))
    names = getattr(model, "class_names", None)
    return [str(n) for n in names] if names is not None else None


def _find(model: Any) -> ClassNames | None:
    for layer in reversed(getattr(model, "layers", []) or []):
        if isinstance(layer, ClassNames):
            return layer
        if isinstance(layer, keras.Model):
            inner = _find(layer)
            if inner is not None:
                return inner
    return None


def check_names(names: Any, units: int | None, *, argument: str = "class_names") -> list[str]:
    """Validate ``names`` against a head of ``units`` output units."""
    if isinstance(names, str) or not isinstance(names, Sequence) or not names:
        raise V.fail(argument, "a non-empty list of class-name strings", names)
    names = [str(n) for n in names]
    if len(set(names)) != len(names):
        raise V.fail(argument, "distinct class names", names)
    if units is not None:
        expected = 2 if units == 1 else units
        if len(names) != expected:
            raise V.fail(argument, f"{expected} names (the model has {units} output unit(s))", names)
    return names


def check_saved_names(names: Any, units: int | None) -> list[str]:
    """Check class names read from a saved model: a non-empty list of distinct strings, one per output.

    ``units`` is the number of output units of the layer the names label (two names
    for one unit), or ``None`` when unknown. Raises
    [`InvalidArgumentError`][visionkit.errors.InvalidArgumentError] saying what is wrong;
    [`load_model`][visionkit.training.load_model] adds the file's name.
    """
    if not isinstance(names, (list, tuple)) or not names:
        raise InvalidArgumentError(
            "The model's class-name metadata must be a non-empty list of strings (edited or damaged "
            f"file?). Received: class_names={_short(names)}"
        )
    bad = [n for n in names if not isinstance(n, str)]
    if bad:
        raise InvalidArgumentError(
            "The model's class names must all be strings (edited or damaged file?). "
            f"Received: non-string items {_short(bad[:5])} in class_names={_short(names)}"
        )
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InvalidArgumentError(
            f"The model's class names must be distinct (edited or damaged file?). Received: {_short(repeated)} "
            f"repeated in class_names={_short(names)}"
        )
    if units is not None and len(names) != (2 if units == 1 else units):
        raise InvalidArgumentError(
            f"The model has {units} output unit(s), so its class-name metadata must hold "
            f"{2 if units == 1 else units} names (edited or damaged file?). Received: {len(names)} names "
            f"class_names={_short(names)}"
        )
    return list(names)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def with_class_names(model: Any, names: Sequence[str]) -> keras.Model:
    """A new model, sharing ``model``'s weights, whose output carries ``names``.

    ``model`` is not modified. An existing [`ClassNames`][visionkit.training.ClassNames] layer at the end is
    replaced rather than stacked.
    """
    if not isinstance(model, keras.Model) or not model.inputs:
        raise V.fail("model", "a built keras.Model with a known input (start it with keras.Input)", model)
    units = model.outputs[0].shape[-1] if model.outputs else None
    names = check_names(names, units)
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    outputs = model.outputs[0] if len(model.outputs) == 1 else model.outputs
    last = model.layers[-1] if model.layers else None
    if isinstance(last, ClassNames):  # re-label: take the tensor before it
        outputs = last.input
    return keras.Model(inputs, ClassNames(names)(outputs), name=model.name)
