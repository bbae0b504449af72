"""Addressing layers inside (nested) Keras models, and tapping their outputs (private).

Shared by Grad-CAM, DeepDream, the visualisations and style transfer. Names address
nested layers with ``/``: ``"vgg16/block5_conv3"`` is layer ``block5_conv3`` of the
sub-model ``vgg16``.

``tap`` builds a **new** functional model that returns the outputs of any layers,
nested or not, together with the model's output. It re-runs the original layers
(sharing their weights) on a fresh input, so it works where
``keras.Model(model.inputs, inner_layer.output)`` fails with "Graph disconnected"
(a pretrained base nested inside a ``Sequential``), and it never changes the
caller's model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import keras

from . import _validate as V
from .errors import InvalidArgumentError, InvalidTypeError

__all__ = ["candidates", "get_layer", "is_graph_model", "iter_layers", "output_rank", "short_list", "tap"]


def iter_layers(model: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Yield ``(qualified_name, layer)`` for every layer, depth first, in graph order.

    Nested models are yielded themselves and then their layers (``"outer/inner"``).
    """
    for layer in getattr(model, "layers", []):
        name = f"{prefix}{layer.name}"
        yield name, layer
        if isinstance(layer, keras.Model):
            yield from iter_layers(layer, prefix=f"{name}/")


def output_rank(layer: Any) -> int | None:
    """Rank of a layer's output (including the batch axis), or None if unknown."""
    try:
        out = layer.output
    except (AttributeError, ValueError, RuntimeError):
        return None
    if isinstance(out, (list, tuple)):
        return None
    shape = getattr(out, "shape", None)
    return len(shape) if shape is not None else None


def candidates(model: Any, predicate: Callable[[Any], bool] | None = None) -> list[str]:
    """Qualified names of the layers for which ``predicate(layer)`` is true."""
    return [name for name, layer in iter_layers(model) if predicate is None or predicate(layer)]


def get_layer(model: Any, name: str, *, argument: str = "layer") -> Any:
    """Return the layer called ``name`` (``"outer/inner"`` for nested ones).

    Raises an error listing the valid names when there is no such layer.
    """
    if not isinstance(name, str) or not name:
        raise V.fail(argument, "a layer name (str), nested names joined by '/'", name)
    current = model
    for part in name.split("/"):
        found = None
        for layer in getattr(current, "layers", []):
            if layer.name == part:
                found = layer
                break
        if found is None:
            names = candidates(model)
            raise V.fail(
                argument,
                f"the name of a layer of model '{model.name}'; valid names: {short_list(names)}",
                name,
            )
        current = found
    return current


def short_list(names: Sequence[str], limit: int = 60) -> str:
    """The first ``limit`` names joined by commas, with how many more there are."""
    names = list(names)
    text = ", ".join(names[:limit])
    return text + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def is_graph_model(model: Any) -> bool:
    """True for a Sequential or functional model (one whose layers form a graph)."""
    return isinstance(model, keras.Sequential) or hasattr(model, "_run_through_graph")


def _run(
    model: Any,
    x: Any,
    prefix: str,
    wanted: set[str],
    found: dict[str, Any],
    replace: Callable[[str, Any], Callable[..., Any] | None] | None,
) -> Any:
    """Call ``model`` on symbolic ``x`` layer by layer, recording wanted outputs."""

    def wrap(layer: Any) -> Callable[..., Any]:
        name = f"{prefix}{layer.name}"
        inner = [w for w in wanted if w.startswith(name + "/")]
        substitute = replace(name, layer) if replace is not None else None

        def call(*args: Any, **kwargs: Any) -> Any:
            if substitute is not None:
                out = substitute(*args, **kwargs)
            elif isinstance(layer, keras.Model) and (inner or replace is not None) and is_graph_model(layer):
                if len(args) != 1:
                    raise InvalidArgumentError(f"Nested model '{name}' takes several inputs; cannot address its layers.")
                out = _run(layer, args[0], f"{name}/", wanted, found, replace)
            else:
                out = layer(*args, **kwargs)
            if name in wanted:
                found[name] = out
            return out

        return call

    if isinstance(model, keras.Sequential):
        out = x
        for layer in model.layers:
            out = wrap(layer)(out)
        return out
    if hasattr(model, "_run_through_graph"):
        inputs = x if isinstance(x, (list, tuple)) else [x]
        return model._run_through_graph(inputs, operation_fn=wrap)
    raise InvalidTypeError(
        f"Model '{model.name}' is a subclassed model; visionkit can address layers only in "
        "functional and Sequential models."
    )


def tap(
    model: Any,
    layers: Sequence[str],
    *,
    include_output: bool = True,
    replace: Callable[[str, Any], Callable[..., Any] | None] | None = None,
    name: str | None = None,
) -> keras.Model:
    """A new functional model returning the outputs of ``layers`` (and the output).

    Parameters
    ----------
    model : keras.Model
        A functional or Sequential model, possibly with nested models. Not modified.
    layers : sequence of str
        Qualified layer names (``"outer/inner"`` for nested layers).
    include_output : bool, default True
        Also return the model's own output, under the key ``"output"``.
    replace : callable, optional
        ``replace(qualified_name, layer)`` may return a callable used instead of the
        layer (for example the last Dense layer without its softmax), or None.
    name : str, optional
        Name of the new model.

    Returns
    -------
    keras.Model
        Takes the same input as ``model``; returns a dict ``{layer_name: tensor, ...,
        "output": tensor}``. It shares weights with ``model``.
    """
    layers = list(layers)
    for layer_name in layers:
        get_layer(model, layer_name)
    if not model.inputs:
        raise InvalidArgumentError(f"Model '{model.name}' has no defined input; build it on an input shape first.")
    inputs = [keras.Input(shape=t.shape[1:], dtype=t.dtype, name=f"tap_input_{i}") for i, t in enumerate(model.inputs)]
    found: dict[str, Any] = {}
    out = _run(model, inputs[0] if len(inputs) == 1 else inputs, "", set(layers), found, replace)
    missing = [n for n in layers if n not in found]
    if missing:
        raise InvalidArgumentError(f"Layers {missing} of model '{model.name}' are not on the path from its input to its output.")
    outputs = {n: found[n] for n in layers}
    if include_output:
        outputs["output"] = out
    return keras.Model(inputs[0] if len(inputs) == 1 else inputs, outputs, name=name or f"{model.name}_tap")
