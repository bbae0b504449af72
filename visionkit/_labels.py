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

__all__ = ["ClassNames", "check_names", "class_names", "is_passthrough", "with_class_names"]


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
        return list(found.class_names)
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
