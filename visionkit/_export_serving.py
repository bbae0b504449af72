"""The model that is exported: uint8 images of any size in, class probabilities out (private).

``serving_model`` wraps a classifier (cast to float32 first when it computes in mixed
precision) between two layers: ``ServingResize`` (uint8 ``(N, h, w, C)`` of any size
→ float32, bilinear resize to the model's input size, values kept in ``[0, 255]``:
visionkit's models do their own preprocessing inside) and ``ServingProbabilities``
(a softmax over logits; two columns ``[1 - p, p]`` for one unit). A
``Temperature`` layer of the model is inside and so is exported with it.
"""

from __future__ import annotations

import importlib.metadata
import platform
from typing import Any

import keras
import numpy as np

from . import _ship_core as core
from .errors import InvalidArgumentError

__all__ = ["FrozenNormalization", "ServingProbabilities", "ServingResize", "erf_gelu", "float32_model", "input_size", "serving_model", "versions"]


class ServingResize(keras.layers.Layer):
    """uint8 images of any size → float32 at ``size`` (bilinear), values unchanged in scale."""

    def __init__(self, size: tuple[int, int], **kwargs: Any) -> None:
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.size = (int(size[0]), int(size[1]))

    def call(self, inputs: Any) -> Any:
        import tensorflow as tf

        return tf.image.resize(tf.cast(inputs, tf.float32), self.size, method="bilinear")

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (input_shape[0], *self.size, input_shape[-1])


class ServingProbabilities(keras.layers.Layer):
    """Class probabilities ``(N, K)`` float32 from a head's output of kind ``kind``."""

    def __init__(self, kind: str, **kwargs: Any) -> None:
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.kind = kind

    def call(self, inputs: Any) -> Any:
        import tensorflow as tf

        x = tf.cast(inputs, tf.float32)
        if x.shape[-1] == 1:
            p = tf.sigmoid(x) if self.kind == "logits" else x
            return tf.concat([1.0 - p, p], axis=-1)
        return tf.nn.softmax(x, axis=-1) if self.kind == "logits" else x

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (input_shape[0], max(2, int(input_shape[-1])))


def input_size(model: Any) -> tuple[int, int, int]:
    """``(height, width, channels)`` of a model's single image input; an error if any is unknown."""
    shape = tuple(model.inputs[0].shape[1:]) if getattr(model, "inputs", None) and len(model.inputs) == 1 else ()
    if len(shape) != 3 or None in shape or shape[-1] not in (1, 3):
        raise InvalidArgumentError(
            f"Export needs a model with one image input of a known size (H, W, 1 or 3), as visionkit's recipes "
            f"build. Received: model '{getattr(model, 'name', model)}' with input shape {shape or 'unknown'}.")
    return int(shape[0]), int(shape[1]), int(shape[2])


def _is_float32(model: Any) -> bool:
    return all(getattr(layer, "compute_dtype", "float32") in ("float32", None) for layer in _all_layers(model))


def _all_layers(model: Any) -> list[Any]:
    out = []
    for layer in getattr(model, "layers", []) or []:
        out.append(layer)
        if isinstance(layer, keras.Model):
            out.extend(_all_layers(layer))
    return out


def erf_gelu(x: Any) -> Any:
    """Exact GELU written with ``erf`` (TensorFlow's uses ``erfc``, which tf2onnx cannot convert)."""
    return 0.5 * x * (1.0 + keras.ops.erf(x / np.sqrt(2.0).astype("float32")))


def _activation_config(layer: Any) -> Any:
    try:
        return layer.get_config().get("activation")
    except Exception:  # a layer without a config: leave it alone
        return None


class FrozenNormalization(keras.layers.Layer):
    """A ``Normalization`` layer's computation with its mean and variance held as weights.

    Keras' ONNX export turns the constant mean and variance of a ``Normalization``
    built with ``mean=`` / ``variance=`` into inputs the ONNX file then asks for;
    weights are converted as initializers. Same result: ``(x - mean) / max(sqrt(var), eps)``
    (or its inverse).
    """

    def __init__(self, mean: Any, variance: Any, invert: bool = False, **kwargs: Any) -> None:
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self._values = (np.asarray(mean, np.float32), np.asarray(variance, np.float32))
        self.invert = bool(invert)

    def build(self, input_shape: Any) -> None:
        mean, var = self._values
        self.mean = self.add_weight(name="mean", shape=mean.shape, trainable=False,
                                    initializer=keras.initializers.Constant(mean))
        self.variance = self.add_weight(name="variance", shape=var.shape, trainable=False,
                                        initializer=keras.initializers.Constant(var))

    def call(self, inputs: Any) -> Any:
        x = keras.ops.cast(inputs, "float32")
        std = keras.ops.maximum(keras.ops.sqrt(self.variance), keras.backend.epsilon())
        return x * std + self.mean if self.invert else (x - self.mean) / std

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape


def _normalization_values(layer: Any) -> tuple[np.ndarray, np.ndarray]:
    """A ``Normalization`` layer's mean and variance in float32, as its float32 copy computes them.

    Not ``layer.mean``: under a mixed policy Keras keeps it in the compute dtype, so a
    ``mixed_bfloat16`` model's mean 125.307 reads 125.5; the float32 copy (and the other
    formats) rebuild the layer from its config (``mean=`` given) or its float32 adapted
    state, and so does this (an ONNX file 4e-3 off the other formats, found on the fast
    CIFAR-10 recipe's model).
    """
    shape = tuple(keras.ops.shape(layer.mean))
    config = layer.get_config()
    if config.get("mean") is not None:
        mean, var = config["mean"], config["variance"]
    else:
        mean, var = layer.adapt_mean, layer.adapt_variance
    def as_array(value: Any) -> np.ndarray:
        v = np.asarray(keras.ops.convert_to_numpy(value), np.float32)
        return v.reshape(shape) if v.size == int(np.prod(shape)) else np.broadcast_to(v, shape).copy()

    return as_array(mean), as_array(var)


def float32_model(model: Any, *, onnx: bool = False) -> Any:
    """``model`` itself when it computes in float32 (and, for ONNX, needs no rewrite), else a copy.

    The copy has the model's weights; it computes in float32 (a mixed-precision model
    cast) and, with ``onnx``, has its exact GELUs written with ``erf`` and its
    ``Normalization`` layers as [`FrozenNormalization`] (the same functions).
    """
    cast = not _is_float32(model)
    layers = _all_layers(model)
    swap = onnx and any(_activation_config(ly) == "gelu" or isinstance(ly, keras.layers.Normalization)
                        for ly in layers)
    if not cast and not swap:
        return model

    def clone(layer: Any) -> Any:
        if swap and isinstance(layer, keras.layers.Normalization):
            return FrozenNormalization(*_normalization_values(layer), invert=layer.invert, name=layer.name)
        config = layer.get_config()
        if cast:
            config["dtype"] = "float32"
        if swap and config.get("activation") == "gelu":
            config["activation"] = erf_gelu
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone, recursive=True)
    new_layers = _all_layers(copy)
    if len(new_layers) != len(layers):  # pragma: no cover - clone_model keeps the structure
        copy.set_weights(model.get_weights())
        return copy
    for old, new in zip(layers, new_layers):
        if not isinstance(new, (FrozenNormalization, keras.Model)) and old.weights:
            new.set_weights(old.get_weights())
            if hasattr(new, "finalize_state"):  # an adapted Normalization computes its mean from these weights
                new.finalize_state()
    return copy


def serving_model(model: Any, *, cast: bool = True, onnx: bool = False) -> tuple[Any, dict[str, Any]]:
    """The uint8-in, probabilities-out model to export, and what it is (for the metadata).

    ``cast=False`` keeps a mixed-precision model as it is (to compare the cast with it);
    ``onnx`` writes exact GELUs with ``erf`` (see ``float32_model``).
    """
    h, w, c = input_size(model)
    base = float32_model(model, onnx=onnx) if cast else model
    kind = core.output_kind(model)  # a head it cannot name is an error here
    inputs = keras.Input((None, None, c), dtype="uint8", name="image")
    outputs = ServingProbabilities(kind, name="probabilities")(base(ServingResize((h, w), name="resize")(inputs)))
    serving = keras.Model(inputs, outputs, name=f"{model.name}_serving")
    serving(np.zeros((1, h, w, c), np.uint8))  # called once: Keras exports only called models
    units = int(model.outputs[0].shape[-1])
    info = {"input": {"dtype": "uint8", "shape": [None, None, None, c], "resized_to": [h, w],
                      "resize": "bilinear", "channels": "RGB" if c == 3 else "grayscale"},
            "output": {"name": "probabilities", "dtype": "float32", "shape": [None, max(2, units)]},
            "head": kind, "cast_to_float32": cast and not _is_float32(model)}
    return serving, info


def versions(*extra: str) -> dict[str, str]:
    """Versions of Python, visionkit and the libraries that made an export or report."""
    from . import __version__

    out = {"python": platform.python_version(), "visionkit": __version__}
    for name in ("tensorflow", "keras", "numpy", *extra):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out
