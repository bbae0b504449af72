"""The one compiled core of every explanation, and its one cache (private).

``probe(model, layer)`` builds (once per model and layer, then cached) a new
functional graph that re-runs the model's own layers, sharing their weights, and
returns the chosen layer's activations and the class scores taken *before* the final
softmax/sigmoid (``visionkit._heads``). Its compiled steps give, for a whole batch:

- ``gradients(x, classes)``: activations ``A``, ``dS/dA`` and the classes explained;
- ``forward(x, classes)``: activations, the class logit ``S``, its probability
  (softmax, or sigmoid for one unit) and the classes;
- ``masked(x, maps, classes)``: the probability of the class for ``x`` multiplied by
  each (upsampled, min-max scaled) map (Score-CAM);
- ``ablated(x, classes, mask)``: the class logit with the layer's channels multiplied
  by ``mask`` (Ablation-CAM; a second graph whose layer output is gated by a variable
  owned by this probe).

``input_gradients(model, guided=...)`` gives ``dS/dx`` (optionally through guided
ReLUs) and ``predictor(model, batch_size=...)`` the class probabilities the
faithfulness metrics and ``interpret`` read. Every compiled step of a model (these,
and FullGrad's) lives in ONE cache weakly keyed by the model (``cached``), so a
dropped model frees them. The caller's model is never modified.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from .. import _heads, _layers

__all__ = ["InputGradients", "Probe", "cached", "check_classes", "head_of", "input_gradients", "is_relu_layer", "predictor", "probe", "select"]

# model -> {key: object}; weak keys so a dropped model frees its graphs.
_CACHE: weakref.WeakKeyDictionary[Any, dict[Any, Any]] = weakref.WeakKeyDictionary()


def cached(model: Any, key: Any, build: Callable[[], Any]) -> Any:
    """``build()`` once per ``model`` and ``key``, kept while the model lives."""
    try:
        per_model = _CACHE.setdefault(model, {})
    except TypeError:  # not weak-referenceable: build every time
        return build()
    if key not in per_model:
        per_model[key] = build()
    return per_model[key]


def head_of(model: Any) -> tuple[str, Callable[..., Any] | None, str | None]:
    """(head kind, logits substitute or None, qualified name of the final layer)."""
    final = _heads.final_layer(model)
    if not final:
        return "other", None, None
    return _heads.head_kind(final[1]), _heads.logits_substitute(final[1]), final[0]


def select(logits: Any, classes: Any, *, binary: bool, threshold: float) -> tuple[Any, Any, Any]:
    """The class score, its probability and the class for each row of ``logits`` ``(B, units)``.

    ``classes < 0`` means the top class. For one unit, class 1 is the unit's score and
    class 0 its negation (probabilities: sigmoid); otherwise softmax.
    """
    if binary:
        top = tf.cast(logits[:, 0] > threshold, tf.int32)
        chosen = tf.where(classes < 0, top, classes)
        score = tf.where(chosen > 0, logits[:, 0], -logits[:, 0])
        return score, tf.sigmoid(score), chosen
    top = tf.argmax(logits, axis=1, output_type=tf.int32)
    chosen = tf.where(classes < 0, top, classes)
    score = tf.gather(logits, chosen, axis=1, batch_dims=1)
    prob = tf.gather(tf.nn.softmax(logits, axis=1), chosen, axis=1, batch_dims=1)
    return score, prob, chosen


class _ChannelGate(keras.layers.Layer):
    """Multiplies a 4-D tensor by a ``(batch, channels)`` mask read from a variable."""

    def __init__(self, mask: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._mask_ref = (mask,)  # a tuple keeps Keras from tracking it as a weight

    def call(self, inputs: Any) -> Any:
        mask = tf.cast(self._mask_ref[0], inputs.dtype)
        return inputs * mask[:, None, None, :]


@tf.custom_gradient
def _guided_gate(y: Any) -> Any:
    def grad(dy: Any) -> Any:
        return tf.nn.relu(dy)  # the ReLU before this gate already zeroes where y <= 0

    return tf.identity(y), grad


class _GuidedGate(keras.layers.Layer):
    """Identity forward; backward passes only positive gradients (guided backprop)."""

    def call(self, inputs: Any) -> Any:
        return _guided_gate(inputs)


def is_relu_layer(layer: Any) -> bool:
    """True for a ReLU layer, a ReLU ``Activation`` or a layer with ``activation="relu"``."""
    if isinstance(layer, keras.Model):
        return False
    if isinstance(layer, keras.layers.ReLU):
        return True
    return _heads.activation_name(getattr(layer, "activation", None)) in ("relu", "relu6")


def _gated(layer: Any, gate: Any) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        return gate(layer(*args, **kwargs))

    return call


class Probe:
    """The tapped graph and compiled steps for one (model, layer)."""

    def __init__(self, model: Any, layer: str) -> None:
        head, substitute, target = head_of(model)
        self.model_ref = weakref.ref(model) if _weakable(model) else (lambda m=model: m)
        self.layer = layer
        self.head = head
        self.pre_activation = substitute is not None
        self._substitute, self._target = substitute, target

        def replace(name: str, lyr: Any) -> Any:
            return substitute if substitute is not None and name == target else None

        self.graph = _layers.tap(model, [layer], replace=replace, name=f"{model.name}_gradcam")
        self.n_units = int(np.prod(self.graph.output["output"].shape[1:]))
        self.binary = self.n_units == 1 and head in ("sigmoid", "linear")
        self.threshold = 0.0 if (self.pre_activation or head == "linear") else 0.5
        self.channels = int(self.graph.output[layer].shape[-1])
        spec = model.inputs[0]
        self.dtype = spec.dtype
        self.input_shape = tuple(spec.shape[1:])
        x_spec = tf.TensorSpec((None, *spec.shape[1:]), spec.dtype)
        c_spec = tf.TensorSpec((None,), tf.int32)
        graph, n_units = self.graph, self.n_units

        def logits_of(out: Any) -> Any:
            return tf.reshape(tf.cast(out["output"], tf.float32), [-1, n_units])

        @tf.function(input_signature=[x_spec, c_spec])
        def gradients(x: Any, classes: Any) -> tuple[Any, Any, Any]:
            with tf.GradientTape() as tape:
                out = graph(x, training=False)
                acts = out[layer]
                score, _p, chosen = self._select(logits_of(out), classes)
                total = tf.reduce_sum(score)
            grads = tape.gradient(total, acts)
            return tf.cast(acts, tf.float32), tf.cast(grads, tf.float32), chosen

        @tf.function(input_signature=[x_spec, c_spec])
        def forward(x: Any, classes: Any) -> tuple[Any, Any, Any, Any]:
            out = graph(x, training=False)
            score, prob, chosen = self._select(logits_of(out), classes)
            return tf.cast(out[layer], tf.float32), score, prob, chosen

        @tf.function(input_signature=[x_spec, tf.TensorSpec((None, None, None), tf.float32), c_spec])
        def masked(x: Any, maps: Any, classes: Any) -> Any:
            up = tf.image.resize(maps[..., None], tf.shape(x)[1:3], method="bilinear")
            lo = tf.reduce_min(up, axis=(1, 2, 3), keepdims=True)
            hi = tf.reduce_max(up, axis=(1, 2, 3), keepdims=True)
            up = tf.math.divide_no_nan(up - lo, hi - lo)
            out = graph(tf.cast(tf.cast(x, tf.float32) * up, x.dtype), training=False)
            return self._select(logits_of(out), classes)[1]

        self.gradients, self.forward, self.masked = gradients, forward, masked
        self._ablated: Any = None
        self._logits_of = logits_of
        self._specs = (x_spec, c_spec)

    def _select(self, logits: Any, classes: Any) -> tuple[Any, Any, Any]:
        return select(logits, classes, binary=self.binary, threshold=self.threshold)

    @property
    def ablated(self) -> Callable[[Any, Any, Any], Any]:
        """The compiled step ``(x, classes, mask) -> class logit`` with channels gated."""
        if self._ablated is None:
            self._ablated = self._build_ablated()
        return self._ablated

    def _build_ablated(self) -> Callable[[Any, Any, Any], Any]:
        model = self.model_ref()
        mask = tf.Variable(tf.ones((1, self.channels)), shape=tf.TensorShape([None, self.channels]),
                           trainable=False, name="ablation_mask")
        gate = _ChannelGate(mask, name="ablation_gate")
        substitute, target, layer = self._substitute, self._target, self.layer

        def replace(name: str, lyr: Any) -> Any:
            if substitute is not None and name == target:
                return substitute
            return _gated(lyr, gate) if name == layer else None

        graph = _layers.tap(model, [layer], replace=replace, name=f"{model.name}_ablation")
        x_spec, c_spec = self._specs
        logits_of = self._logits_of

        @tf.function(input_signature=[x_spec, c_spec, tf.TensorSpec((None, self.channels), tf.float32)])
        def ablated(x: Any, classes: Any, m: Any) -> Any:
            mask.assign(m)
            out = graph(x, training=False)
            return self._select(logits_of(out), classes)[0]

        self._ablation_graph = graph  # kept alive with the step
        return ablated


def _weakable(obj: Any) -> bool:
    try:
        weakref.ref(obj)
    except TypeError:
        return False
    return True


def probe(model: Any, layer: str) -> Probe:
    """The cached ``Probe`` of ``model`` at ``layer``."""
    return cached(model, ("layer", layer), lambda: Probe(model, layer))


class InputGradients:
    """Compiled ``dS/dx`` of the class logit, optionally through guided ReLUs."""

    def __init__(self, model: Any, *, guided: bool) -> None:
        head, substitute, target = head_of(model)
        gate = _GuidedGate(name="guided_relu") if guided else None

        def replace(name: str, lyr: Any) -> Any:
            if substitute is not None and name == target:
                return substitute
            if gate is not None and is_relu_layer(lyr):
                return _gated(lyr, gate)
            return None

        graph = _layers.tap(model, [], replace=replace, name=f"{model.name}_{'guided' if guided else 'input'}_grads")
        self.graph = graph
        n_units = int(np.prod(graph.output["output"].shape[1:]))
        self.n_units = n_units
        self.binary = n_units == 1 and head in ("sigmoid", "linear")
        self.threshold = 0.0 if (substitute is not None or head == "linear") else 0.5
        spec = model.inputs[0]
        x_spec = tf.TensorSpec((None, *spec.shape[1:]), tf.float32)
        c_spec = tf.TensorSpec((None,), tf.int32)

        def scores(x: Any, classes: Any) -> tuple[Any, Any]:
            out = graph(tf.cast(x, spec.dtype), training=False)
            logits = tf.reshape(tf.cast(out["output"], tf.float32), [-1, n_units])
            score, _p, chosen = select(logits, classes, binary=self.binary, threshold=self.threshold)
            return score, chosen

        @tf.function(input_signature=[x_spec, c_spec])
        def step(x: Any, classes: Any) -> tuple[Any, Any]:
            with tf.GradientTape() as tape:
                tape.watch(x)
                score, chosen = scores(x, classes)
                total = tf.reduce_sum(score)
            return tape.gradient(total, x), chosen

        @tf.function(input_signature=[x_spec, c_spec])
        def classes_of(x: Any, classes: Any) -> tuple[Any, Any]:
            return scores(x, classes)

        self.step, self.classes_of = step, classes_of


def input_gradients(model: Any, *, guided: bool = False) -> InputGradients:
    """The cached ``InputGradients`` of ``model``."""
    return cached(model, ("input", guided), lambda: InputGradients(model, guided=guided))


def check_classes(classes: np.ndarray, n_units: int, binary: bool, class_index: Any) -> None:
    """Raise when a class index is not below the model's number of classes."""
    from .. import _validate as V

    n_classes = 2 if binary else n_units
    if classes.size and classes.max() >= n_classes:
        raise V.fail("class_index", f"a class index below {n_classes} (the model's number of classes)", class_index)


# ----------------------------------------------------------------------------- probabilities


def _build_step(model: Any) -> Any:
    """One compiled forward pass (one trace, any batch size); holds the model weakly."""
    signature = None
    if getattr(model, "inputs", None):
        spec = model.inputs[0]
        signature = [tf.TensorSpec((None, *spec.shape[1:]), spec.dtype)]

    ref = weakref.ref(model) if _weakable(model) else (lambda m=model: m)  # the cache's key stays collectable

    @tf.function(input_signature=signature, reduce_retracing=True)
    def step(x: Any) -> Any:
        out = tf.cast(ref()(x, training=False), tf.float32)
        return tf.reshape(out, [tf.shape(out)[0], -1])

    return step


def predictor(model: Any, *, batch_size: int) -> Callable[[np.ndarray], np.ndarray]:
    """``predict(x) -> (N, K)`` float64 class probabilities, ``batch_size`` images per step.

    One compiled forward pass (``training=False``) per batch, built once per model (so
    repeated metric calls do not retrace); a logits head gets its softmax (sigmoid for
    one unit), a one-unit head gives two columns ``[1 - p, p]``. The model is only
    called, never changed.
    """
    logits = _heads.is_logits(model)
    dtype = model.inputs[0].dtype if getattr(model, "inputs", None) else "float32"
    step = cached(model, ("predict",), lambda: _build_step(model))

    def predict(x: np.ndarray) -> np.ndarray:
        chunks = [
            step(tf.convert_to_tensor(x[start : start + batch_size], dtype=dtype)).numpy()
            for start in range(0, len(x), batch_size)
        ]
        if not chunks:  # no images: no rows, one column per class
            outputs = getattr(model, "outputs", None)
            k = int(np.prod(outputs[0].shape[1:])) if outputs else 0
            return np.zeros((0, 2 if k == 1 else k))
        p = np.concatenate(chunks).astype(np.float64)
        if logits:
            if p.shape[1] == 1:
                p = 1.0 / (1.0 + np.exp(-p))
            else:
                e = np.exp(p - p.max(axis=1, keepdims=True))
                p = e / e.sum(axis=1, keepdims=True)
        if p.shape[1] == 1:
            p = np.concatenate([1.0 - p, p], axis=1)
        return p

    return predict
