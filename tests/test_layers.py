"""The private layer-addressing helpers every recipe relies on."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from visionkit import _layers
from visionkit.errors import InvalidArgumentError


def _nested_sequential():
    inp = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, name="c1")(inp)
    x = keras.layers.Conv2D(6, 3, name="c2")(x)
    base = keras.Model(inp, x, name="base")
    return keras.Sequential(
        [keras.Input((16, 16, 3)), base, keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3, activation="softmax", name="head")],
        name="outer",
    )


def test_iter_and_get_nested():
    model = _nested_sequential()
    names = _layers.candidates(model)
    assert "base/c2" in names and "head" in names
    assert _layers.get_layer(model, "base/c1").name == "c1"
    with pytest.raises(InvalidArgumentError, match="base/c2"):
        _layers.get_layer(model, "base/nope")


def test_tap_nested_sequential_matches_and_leaves_model_alone():
    model = _nested_sequential()
    n_layers = len(model.layers)
    weights = [w.copy() for w in model.get_weights()]
    x = np.random.default_rng(0).uniform(0, 1, (2, 16, 16, 3)).astype("float32")
    tapped = _layers.tap(model, ["base/c1", "base/c2"])
    out = tapped(x)
    np.testing.assert_allclose(out["output"], model(x), atol=1e-6)
    inner = keras.Model(model.layers[0].input, model.layers[0].get_layer("c2").output)
    np.testing.assert_allclose(out["base/c2"], inner(x), atol=1e-6)
    assert len(model.layers) == n_layers
    for a, b in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_tap_replace_hook():
    model = _nested_sequential()
    head = model.get_layer("head")

    def replace(name, layer):
        if name == "head":
            cfg = {**layer.get_config(), "activation": "linear"}
            clone = type(layer).from_config(cfg)
            clone.build(layer.input.shape)
            clone.set_weights(layer.get_weights())
            return clone
        return None

    tapped = _layers.tap(model, [], replace=replace)
    x = np.random.default_rng(1).uniform(0, 1, (2, 16, 16, 3)).astype("float32")
    logits = tapped(x)["output"]
    np.testing.assert_allclose(keras.ops.softmax(logits), model(x), atol=1e-5)
    assert head.get_config()["activation"] == "softmax"


def test_tap_functional_with_nested_functional():
    inner_in = keras.Input((8, 8, 1))
    inner = keras.Model(inner_in, keras.layers.Conv2D(2, 3, name="k")(inner_in), name="inner")
    inp = keras.Input((8, 8, 1))
    y = keras.layers.Flatten()(inner(inp))
    model = keras.Model(inp, keras.layers.Dense(1, activation="sigmoid")(y))
    out = _layers.tap(model, ["inner/k"])(np.ones((1, 8, 8, 1), "float32"))
    assert out["inner/k"].shape == (1, 6, 6, 2)


def test_tap_rejects_subclassed():
    class Sub(keras.Model):
        def __init__(self):
            super().__init__()
            self.d = keras.layers.Dense(2)

        def call(self, x):
            return self.d(x)

    model = Sub()
    model(np.zeros((1, 3)))
    with pytest.raises((TypeError, ValueError, InvalidArgumentError)):
        _layers.tap(model, ["d"])
