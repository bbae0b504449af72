"""FullGrad (Srinivas & Fleuret, 2019): input-gradient and bias-gradient maps (private).

The class logit's gradient w.r.t. the input, times the input, plus, for every layer
with a bias and a 4-D output (``Conv2D``, ``DepthwiseConv2D``, ``SeparableConv2D``,
``Conv2DTranspose``, ``BatchNormalization``), the gradient w.r.t. the layer's
pre-activation output times its bias. The pre-activation gradient is read from the
layer's output: for a linear activation it is the same, for ReLU it is masked where
the output is 0; any other fused activation cannot be undone and is refused (the
error names the layer). A ``BatchNormalization``'s bias is its inference-time shift
``beta - mean * gamma / sqrt(var + eps)``.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from .. import _heads, _layers
from .. import _validate as V
from ._cams import minmax
from ._probe import cached, head_of, select

__all__ = ["FullGrad", "fullgrad_maps"]

_CONVS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D, keras.layers.Conv2DTranspose)


def _bias_layers(model: Any) -> list[tuple[str, Any]]:
    out = []
    for name, layer in _layers.iter_layers(model):
        if isinstance(layer, keras.Model) or _layers.output_rank(layer) != 4:
            continue
        if isinstance(layer, keras.layers.BatchNormalization):
            if layer.axis not in (-1, 3, [3], [-1]):
                raise V.fail("method", f"'fullgrad' on channels-last BatchNormalization; layer '{name}' normalises axis {layer.axis}", "fullgrad")
            out.append((name, layer))
        elif isinstance(layer, _CONVS) and getattr(layer, "use_bias", False):
            act = _heads.activation_name(getattr(layer, "activation", None))
            if act not in (None, "linear", "relu"):
                raise V.fail(
                    "method",
                    f"a method other than 'fullgrad' for this model: FullGrad needs the bias gradients of layer "
                    f"'{name}', whose fused activation '{act}' hides its pre-activation output (only linear and "
                    "relu are supported)",
                    "fullgrad",
                )
            out.append((name, layer))
    if not out:
        raise V.fail("method", f"a method other than 'fullgrad': model '{model.name}' has no conv or BatchNormalization layer with a bias", "fullgrad")
    return out


def _bias(layer: Any) -> Any:
    if isinstance(layer, keras.layers.BatchNormalization):
        mean = tf.cast(layer.moving_mean, tf.float32)
        inv = tf.math.rsqrt(tf.cast(layer.moving_variance, tf.float32) + layer.epsilon)
        gamma = tf.cast(layer.gamma, tf.float32) if layer.scale else 1.0
        beta = tf.cast(layer.beta, tf.float32) if layer.center else 0.0
        return beta - mean * gamma * inv
    return tf.cast(layer.bias, tf.float32)


class FullGrad:
    """The compiled step giving the input term and every layer's bias-gradient term."""

    def __init__(self, model: Any) -> None:
        self.layers = _bias_layers(model)
        names = [n for n, _ in self.layers]
        head, substitute, target = head_of(model)

        def replace(name: str, lyr: Any) -> Any:
            return substitute if substitute is not None and name == target else None

        graph = _layers.tap(model, names, replace=replace, name=f"{model.name}_fullgrad")
        self.graph = graph
        n_units = int(np.prod(graph.output["output"].shape[1:]))
        binary = n_units == 1 and head in ("sigmoid", "linear")
        threshold = 0.0 if (substitute is not None or head == "linear") else 0.5
        relu = [_heads.activation_name(getattr(ly, "activation", None)) == "relu" for _, ly in self.layers]
        layers = [ly for _, ly in self.layers]
        spec = model.inputs[0]

        @tf.function(input_signature=[tf.TensorSpec((None, *spec.shape[1:]), tf.float32), tf.TensorSpec((None,), tf.int32)])
        def step(x: Any, classes: Any) -> tuple[Any, list[Any]]:
            with tf.GradientTape() as tape:
                tape.watch(x)
                out = graph(tf.cast(x, spec.dtype), training=False)
                logits = tf.reshape(tf.cast(out["output"], tf.float32), [-1, n_units])
                score, _p, _c = select(logits, classes, binary=binary, threshold=threshold)
                total = tf.reduce_sum(score)
            outs = [out[n] for n in names]
            grads = tape.gradient(total, [x, *outs])
            terms = [tf.abs(grads[0] * x)]
            for g, y, is_relu, ly in zip(grads[1:], outs, relu, layers):
                g = tf.cast(g, tf.float32)
                if is_relu:
                    g = g * tf.cast(y > 0, tf.float32)
                terms.append(tf.abs(g * _bias(ly)))
            return terms[0], terms[1:]

        self.step = step


def fullgrad_maps(model: Any, x: np.ndarray, classes: np.ndarray, *, batch_size: int) -> np.ndarray:
    """Raw FullGrad maps ``(N, H, W)`` at the input resolution (each term min-max scaled)."""
    fg = cached(model, ("fullgrad",), lambda: FullGrad(model))
    size = x.shape[1:3]
    out = []
    for start in range(0, len(x), batch_size):
        xb = tf.convert_to_tensor(x[start : start + batch_size], tf.float32)
        cb = tf.convert_to_tensor(classes[start : start + batch_size], tf.int32)
        first, rest = fg.step(xb, cb)
        total = _scaled_sum(first.numpy(), size)
        for term in rest:
            total = total + _scaled_sum(term.numpy(), size)
        out.append(total)
    return np.concatenate(out) if out else np.zeros((0, *size))


def _scaled_sum(term: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Each channel map of ``(N, h, w, C)`` min-max scaled, resized to ``size``, summed."""
    n, h, w, c = term.shape
    maps = minmax(np.moveaxis(term.astype(np.float64), -1, 1).reshape(n * c, h, w))
    if (h, w) != tuple(size):
        maps = tf.image.resize(maps[..., None], size, method="bilinear").numpy()[..., 0]
    return maps.reshape(n, c, *size).sum(axis=1)
