"""The temperature layer of calibrated classifiers (public through
[`visionkit.calibration`][visionkit.calibration]).

A leaf module: it imports no recipe and no training loop, so that importing it
registers the layer for ``keras.models.load_model`` (see ``_registered``).
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np

from . import _ship_core as core
from . import _validate as V

__all__ = ["HEADS", "Temperature", "positive_temperature"]

#: What a `Temperature` layer's input may be.
HEADS: tuple[str, ...] = ("logits", "softmax", "sigmoid")


@keras.saving.register_keras_serializable(package="visionkit", name="Temperature")
class Temperature(keras.layers.Layer):
    """Divide a classifier's logits by a temperature; the output keeps the head's kind.

    Parameters
    ----------
    temperature : float
        ``T > 0``; ``T > 1`` softens over-confident probabilities.
    head : {"logits", "softmax", "sigmoid"}
        What the layer's input is. ``"logits"``: returns ``x / T``.
        ``"softmax"``: returns ``softmax(log(x) / T)``. ``"sigmoid"``: returns
        ``sigmoid(logit(x) / T)``. Input and output ``(batch, units)``, float32.

    Notes
    -----
    Head inspection ([`visionkit.explain`][visionkit.explain], ``interpret``) looks
    through this layer to the head before it, as through
    [`ClassNames`][visionkit.training.ClassNames]: it changes neither the top class
    nor the kind of output.
    """

    #: Head inspection skips the layer (it keeps the head's kind and its top class).
    visionkit_passthrough = True

    def __init__(self, temperature: float, head: str = "logits", **kwargs: Any) -> None:
        kwargs.setdefault("dtype", "float32")
        kwargs.setdefault("name", "temperature")
        super().__init__(**kwargs)
        self.temperature = positive_temperature(temperature)
        self.head = V.one_of("head", head, HEADS)

    def call(self, inputs: Any) -> Any:
        x = keras.ops.cast(inputs, "float32")
        t = self.temperature
        if self.head == "logits":
            return x / t
        if self.head == "softmax":
            return keras.ops.softmax(keras.ops.log(keras.ops.maximum(x, core.TINY)) / t, axis=-1)
        p = keras.ops.clip(x, core.TINY, 1.0)
        z = keras.ops.log(p) - keras.ops.log(keras.ops.maximum(1.0 - x, core.TINY))
        return keras.ops.sigmoid(z / t)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "temperature": self.temperature, "head": self.head}


def positive_temperature(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
            or not math.isfinite(float(value)) or float(value) <= 0:
        raise V.fail("temperature", "a finite number > 0", value)
    return float(value)
