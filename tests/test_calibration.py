"""Calibration: ECE known answers, temperature fitting, the Temperature layer (issue #23)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from ship_models import tiny_model

from visionkit import calibration as C
from visionkit import training
from visionkit.errors import InvalidArgumentError


def test_ece_known_answer_hand_built():
    # bin (0.8, 0.9]: two examples, conf 0.9/0.85, one right -> |0.5 - 0.875| = 0.375, weight 2/4
    # bin (0.6, 0.7]: two examples, conf 0.7, both right -> |1 - 0.7| = 0.3, weight 2/4
    p = np.array([[0.9, 0.1], [0.15, 0.85], [0.7, 0.3], [0.3, 0.7]])
    y = np.array([0, 0, 0, 1])
    assert C.expected_calibration_error(p, y, bins=10) == pytest.approx(0.5 * 0.375 + 0.5 * 0.3)


def test_ece_zero_when_confidence_matches_accuracy():
    # 10 examples at confidence 0.8 of which exactly 8 are right
    p = np.tile([0.8, 0.2], (10, 1))
    y = np.array([0] * 8 + [1] * 2)
    assert C.expected_calibration_error(p, y) == pytest.approx(0.0, abs=1e-12)


def test_reliability_diagram_bins_and_binary_vector():
    d = C.reliability_diagram(np.array([0.95, 0.05, 0.6]), np.array([1, 0, 0]), bins=5)
    assert d.counts.tolist() == [0, 0, 1, 0, 2]
    assert d.accuracy[4] == 1.0 and np.isnan(d.accuracy[0])
    assert d.plot() is not None


def test_ece_rejects_bad_input():
    with pytest.raises(InvalidArgumentError, match="probabilities"):
        C.expected_calibration_error(np.array([[1.5, -0.5]]), [0])
    with pytest.raises(InvalidArgumentError, match="labels"):
        C.expected_calibration_error(np.array([[0.5, 0.5]]), [0, 1])


@pytest.mark.parametrize("true_t", [0.5, 2.5])
def test_fit_temperature_recovers_known_temperature(true_t):
    rng = np.random.default_rng(1)
    z = rng.normal(0, 2, (20000, 5))
    p = np.exp(z / true_t)
    p /= p.sum(axis=1, keepdims=True)
    y = (p.cumsum(axis=1) > rng.random((len(z), 1))).argmax(axis=1)  # labels drawn at true_t
    assert C.fit_temperature(z, y) == pytest.approx(true_t, rel=0.05)


def test_fit_temperature_one_sigmoid_logit():
    rng = np.random.default_rng(2)
    z = rng.normal(0, 3, 20000)
    y = (rng.random(len(z)) < 1 / (1 + np.exp(-z / 2.0))).astype(int)
    assert C.fit_temperature(z, y) == pytest.approx(2.0, rel=0.05)


@pytest.mark.parametrize("head", ["softmax", "logits", "sigmoid"])
def test_temperature_layer_matches_numpy_and_keeps_top1(head):
    model = tiny_model(head, steps=4)
    x = np.random.default_rng(0).integers(0, 256, (8, 16, 16, 3)).astype("float32")
    calibrated = C.with_temperature(model, 2.0)
    raw = np.asarray(model(x)).astype(np.float64)
    got = np.asarray(calibrated(x)).astype(np.float64)
    if head == "logits":
        np.testing.assert_allclose(got, raw / 2.0, rtol=1e-5, atol=1e-6)
    elif head == "softmax":
        expected = np.exp(np.log(raw) / 2.0)
        np.testing.assert_allclose(got, expected / expected.sum(1, keepdims=True), rtol=1e-4, atol=1e-6)
        np.testing.assert_array_equal(got.argmax(1), raw.argmax(1))
    else:
        z = np.log(raw) - np.log(1 - raw)
        np.testing.assert_allclose(got, 1 / (1 + np.exp(-z / 2.0)), rtol=1e-4, atol=1e-6)
    assert training.class_names(calibrated) == training.class_names(model)
    assert C.temperature_of(model) is None  # the caller's model is not modified


def test_temperature_survives_save_and_load(tmp_path):
    model = C.with_temperature(tiny_model("logits", steps=4), 1.75)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = training.load_model(path)
    assert C.temperature_of(loaded) == 1.75
    assert training.class_names(loaded) == ["red", "green", "blue"]
    x = np.random.default_rng(0).integers(0, 256, (4, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), rtol=1e-5, atol=1e-6)


def test_with_temperature_replaces_rather_than_stacks():
    model = C.with_temperature(C.with_temperature(tiny_model("logits", steps=4), 3.0), 1.5)
    assert sum(isinstance(layer, C.Temperature) for layer in model.layers) == 1
    assert C.temperature_of(model) == 1.5
    assert isinstance(model.layers[-1], training.ClassNames)


def test_with_temperature_rejects_bad_temperature():
    with pytest.raises(InvalidArgumentError, match="temperature"):
        C.with_temperature(tiny_model("logits", steps=4), 0.0)


def test_calibrate_lowers_ece_of_an_overconfident_model():
    """Logits scaled by 4: strongly over-confident; the fitted T is about 4 and ECE falls."""
    rng = np.random.default_rng(3)
    inputs = keras.Input((5,))
    model = keras.Model(inputs, keras.layers.Rescaling(4.0)(inputs))  # logits = 4 * x
    z = rng.normal(0, 1.5, (6000, 5))
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    y = (p.cumsum(axis=1) > rng.random((len(z), 1))).argmax(axis=1)
    x = z.astype("float32")
    result = C.calibrate(model, (x[:3000], y[:3000]), test_data=(x[3000:], y[3000:]))
    assert result.temperature == pytest.approx(4.0, rel=0.1)
    assert result.after["ece"] < 0.5 * result.before["ece"]
    assert result.after["accuracy"] == result.before["accuracy"]
    assert result.evaluated_on == "test"
    assert C.temperature_of(result.model) == pytest.approx(result.temperature)
    assert result.plot() is not None and "before" in result.to_markdown()
