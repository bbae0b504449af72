"""Tests of visionkit._heads: finding a classifier's output layer and its activation."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from visionkit import _heads
from visionkit._labels import ClassNames, with_class_names


def _dense_model(activation, units=3, name="head"):
    return keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(units, activation=activation, name=name)]
    )


@pytest.mark.parametrize(
    ("activation", "kind", "logits"),
    [("softmax", "softmax", False), ("sigmoid", "sigmoid", False), (None, "linear", True), ("linear", "linear", True),
     ("relu", "other", False)],
)
def test_dense_heads(activation, kind, logits):
    model = _dense_model(activation)
    assert _heads.output_layer(model) is model.layers[-1]
    assert _heads.head_kind(_heads.output_layer(model)) == kind
    assert _heads.is_logits(model) is logits
    assert _heads.final_layer(model) == ("head", model.layers[-1])


def test_separate_activation_layers():
    inp = keras.Input((6,))
    z = keras.layers.Dense(3, name="z")(inp)
    soft = keras.Model(inp, keras.layers.Softmax(name="soft")(z))
    assert _heads.head_kind(_heads.output_layer(soft)) == "softmax" and not _heads.is_logits(soft)
    assert _heads.logits_substitute(soft.get_layer("soft")) is not None
    act = keras.Model(inp, keras.layers.Activation("sigmoid", name="act")(z))
    assert _heads.head_kind(_heads.output_layer(act)) == "sigmoid"
    assert _heads.head_kind(keras.layers.GlobalAveragePooling2D()) == "other"
    assert _heads.logits_substitute(keras.layers.GlobalAveragePooling2D()) is None


def test_nested_model():
    inner = _dense_model("sigmoid", units=1, name="inner_head")
    outer = keras.Sequential([keras.Input((6,)), inner], name="outer")
    assert _heads.output_layer(outer) is inner.layers[-1]
    assert not _heads.is_logits(outer)
    name, layer = _heads.final_layer(outer)
    assert layer is inner.layers[-1] and name == f"{inner.name}/inner_head"
    logits = keras.Sequential([keras.Input((6,)), _dense_model(None)])
    assert _heads.is_logits(logits)


@pytest.mark.parametrize("activation", ["softmax", None])
def test_class_names_layer_is_skipped(activation):
    model = _dense_model(activation)
    named = with_class_names(model, ["a", "b", "c"])
    assert isinstance(named.layers[-1], ClassNames)
    head = model.layers[-1]
    assert _heads.output_layer(named) is head
    assert _heads.is_logits(named) is (activation is None)
    assert _heads.final_layer(named) == ("head", head)
    # a Sequential ending with the layer, and a model nesting the named one
    seq = keras.Sequential([keras.Input((6,)), keras.layers.Dense(2, activation="softmax", name="p"), ClassNames(["x", "y"])])
    assert _heads.output_layer(seq).name == "p"
    assert _heads.final_layer(seq)[0] == "p"
    outer = keras.Sequential([keras.Input((6,)), named])
    assert _heads.output_layer(outer) is head
    assert _heads.final_layer(outer) == (f"{named.name}/head", head)


def test_logits_substitute_shares_weights():
    model = _dense_model("softmax")
    dense = model.layers[-1]
    sub = _heads.logits_substitute(dense)
    f = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    expected = f @ dense.kernel.numpy() + dense.bias.numpy()
    np.testing.assert_allclose(np.asarray(sub(f)), expected, rtol=1e-4, atol=1e-5)
    dense.kernel.assign(-dense.kernel)  # later training is seen: the variables are shared
    np.testing.assert_allclose(np.asarray(sub(f)), f @ dense.kernel.numpy() + dense.bias.numpy(), rtol=1e-4, atol=1e-5)
    assert len(model.layers) == 2 and dense.activation is keras.activations.softmax
