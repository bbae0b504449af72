"""Gradient attributions of visionkit.gradcam (saliency, SmoothGrad, integrated gradients,
guided Grad-CAM) and Score-CAM against tf-keras-vis (an implementation nobody here wrote,
when installed) and against their formulas written plainly per image."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from visionkit.errors import InvalidArgumentError
from visionkit.gradcam import grad_cam, guided_grad_cam, integrated_gradients, saliency, smoothgrad


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(4).uniform(0, 1, size=(3, 16, 16, 3)).astype("float32")


@pytest.fixture(scope="module")
def logits_model():
    """Logits head, the last conv at the input's resolution (no resampling differences)."""
    keras.utils.set_random_seed(5)
    inp = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="c1")(inp)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="last")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, keras.layers.Dense(3, name="logits")(x), name="logits_model")


@pytest.fixture(scope="module")
def nested():
    """ReLUs of every kind: a separate ReLU layer, fused into a Conv2D and into a Dense."""
    keras.utils.set_random_seed(6)
    b_in = keras.Input((16, 16, 3))
    b = keras.layers.Conv2D(6, 3, padding="same", name="b1", bias_initializer="random_normal")(b_in)
    b = keras.layers.ReLU(name="r1")(b)
    b = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="b2", bias_initializer="random_normal")(b)
    base = keras.Model(b_in, b, name="base")
    return keras.Sequential(
        [keras.Input((16, 16, 3)), base, keras.layers.GlobalAveragePooling2D(),
         keras.layers.Dense(5, activation="relu", name="hidden", bias_initializer="random_normal"),
         keras.layers.Dense(3, activation="softmax", name="probs")],
        name="seq",
    )


def _minmax(m):
    flat = m.reshape(len(m), -1)
    lo, hi = flat.min(1)[:, None, None], flat.max(1)[:, None, None]
    return (m - lo) / (hi - lo + 1e-7)  # keras.backend.epsilon(), as tf-keras-vis


# ------------------------------------------------------------------ against tf-keras-vis


def test_saliency_smoothgrad_scorecam_agree_with_tf_keras_vis(logits_model, images, monkeypatch):
    tkv_saliency = pytest.importorskip("tf_keras_vis.saliency")
    tkv_scorecam = pytest.importorskip("tf_keras_vis.scorecam")
    from tf_keras_vis.utils.scores import CategoricalScore

    classes = [0, 2, 1]
    score = CategoricalScore(classes)
    # saliency: tf-keras-vis min-max scales max_c |grad|; visionkit divides by the maximum
    theirs = tkv_saliency.Saliency(logits_model, clone=True)(score, images)
    raw = saliency(logits_model, images, class_index=classes, raw=True)
    np.testing.assert_allclose(_minmax(np.abs(raw).max(-1)), theirs, atol=1e-4)
    ours = saliency(logits_model, images, class_index=classes)
    np.testing.assert_allclose(ours, np.abs(raw).max(-1) / np.abs(raw).max(axis=(1, 2, 3))[:, None, None], atol=1e-6)

    # SmoothGrad with the same noise: tf-keras-vis draws (samples, N, ...) from np.random.normal
    n, samples, seed = len(images), 6, 3
    z = np.random.default_rng(seed).standard_normal((n * samples, *images.shape[1:]), dtype=np.float32)
    z = z.reshape(n, samples, *images.shape[1:]).swapaxes(0, 1)
    monkeypatch.setattr(np.random, "normal", lambda loc, scale, size: np.asarray(scale) * z)
    theirs = tkv_saliency.Saliency(logits_model, clone=True)(score, images, smooth_samples=samples, smooth_noise=0.2)
    monkeypatch.undo()
    ours = smoothgrad(logits_model, images, class_index=classes, noise=0.2, samples=samples, seed=seed, batch_size=64)
    np.testing.assert_allclose(_minmax(ours), theirs, atol=1e-4)

    # Score-CAM and Faster Score-CAM (the max_N channels of largest std, per image)
    theirs = tkv_scorecam.Scorecam(logits_model, clone=True)(score, images, penultimate_layer="last")
    ours = grad_cam(logits_model, images, class_index=classes, layer="last", method="scorecam")
    np.testing.assert_allclose(_minmax(ours), theirs, atol=1e-4)
    for i, c in enumerate(classes):
        theirs = tkv_scorecam.Scorecam(logits_model, clone=True)(
            CategoricalScore([c]), images[i : i + 1], penultimate_layer="last", max_N=3)
        ours = grad_cam(logits_model, images[i], class_index=c, layer="last", method="scorecam", scorecam_channels=3)
        np.testing.assert_allclose(_minmax(ours), theirs, atol=1e-4)


# ------------------------------------------------------------------ against the formulas


def _logit(model, x, c):
    if model.name == "logits_model":
        return model(x)[:, c]
    base, hidden, probs = model.layers[0], model.layers[2], model.layers[3]
    h = hidden(tf.reduce_mean(base(x), axis=(1, 2)))
    return (tf.matmul(h, probs.kernel) + probs.bias)[:, c]


@pytest.mark.parametrize("which", ["logits_model", "nested"])
def test_integrated_gradients_matches_its_formula(which, request, images):
    model = request.getfixturevalue(which)
    baseline = np.full((16, 16, 3), 0.25, np.float32)
    steps = 10
    expected = []
    for img in images:
        logits = model(img[None]).numpy()[0]
        c = int(logits.argmax())
        total = np.zeros(img.shape)
        for k in range(1, steps + 1):
            point = tf.convert_to_tensor((baseline + k / steps * (img - baseline))[None])
            with tf.GradientTape() as tape:
                tape.watch(point)
                s = _logit(model, point, c)
            total += tape.gradient(s, point)[0].numpy()
        expected.append((img - baseline) * total / steps)
    expected = np.stack(expected)
    raw = integrated_gradients(model, images, baseline=baseline, steps=steps, raw=True, batch_size=7)
    np.testing.assert_allclose(raw, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())  # batch 7 vs 1
    maps = integrated_gradients(model, images, baseline=baseline, steps=steps)
    reduced = np.abs(expected.sum(-1))
    np.testing.assert_allclose(maps, reduced / reduced.max(axis=(1, 2))[:, None, None], atol=1e-4)
    # completeness: sum(IG) ~ S(x) - S(x') with many steps
    many = integrated_gradients(model, images[:1], class_index=0, steps=256, raw=True)
    gap = float(_logit(model, images[:1], 0)[0] - _logit(model, baseline[None] * 0, 0)[0])
    assert abs(many.sum() - gap) < 0.05 * abs(gap) + 1e-3


@tf.custom_gradient
def guided_relu(x):
    def grad(dy):
        return dy * tf.cast(x > 0, dy.dtype) * tf.cast(dy > 0, dy.dtype)

    return tf.nn.relu(x), grad


def test_guided_grad_cam_matches_its_formula(nested, images):
    base, hidden, probs = nested.layers[0], nested.layers[2], nested.layers[3]
    b1, b2 = base.get_layer("b1"), base.get_layer("b2")
    expected, raw_expected = [], []
    cams = grad_cam(nested, images, class_index=[1, 0, 2])
    for img, c, cam in zip(images, [1, 0, 2], cams):
        x = tf.convert_to_tensor(img[None])
        with tf.GradientTape() as tape:
            tape.watch(x)
            a = guided_relu(tf.nn.conv2d(x, b1.kernel, 1, "SAME") + b1.bias)
            a = guided_relu(tf.nn.conv2d(a, b2.kernel, 1, "SAME") + b2.bias)
            h = guided_relu(tf.matmul(tf.reduce_mean(a, axis=(1, 2)), hidden.kernel) + hidden.bias)
            s = (tf.matmul(h, probs.kernel) + probs.bias)[0, c]
        gb = tape.gradient(s, x)[0].numpy() * cam[..., None]
        raw_expected.append(gb)
        m = np.abs(gb).max(-1)
        expected.append(m / m.max() if m.max() > 0 else m)
    np.testing.assert_allclose(guided_grad_cam(nested, images, class_index=[1, 0, 2], raw=True), np.stack(raw_expected),
                               rtol=1e-4, atol=1e-4 * np.abs(raw_expected).max())
    np.testing.assert_allclose(guided_grad_cam(nested, images, class_index=[1, 0, 2]), np.stack(expected), atol=1e-4)
    # guided backprop is not the plain gradient
    assert not np.allclose(guided_grad_cam(nested, images, raw=True),
                           saliency(nested, images, raw=True) * grad_cam(nested, images)[..., None], atol=1e-5)


def test_saliency_matches_the_gradient_of_the_logit(nested, images):
    expected = []
    for img in images:
        x = tf.convert_to_tensor(img[None])
        c = int(nested(x).numpy().argmax())
        with tf.GradientTape() as tape:
            tape.watch(x)
            s = _logit(nested, x, c)[0]
        expected.append(tape.gradient(s, x)[0].numpy())
    np.testing.assert_allclose(saliency(nested, images, raw=True, batch_size=2), np.stack(expected),
                               rtol=1e-4, atol=1e-4 * np.abs(expected).max())


# ------------------------------------------------------------------ properties


def test_contract_batches_and_callers_model_unchanged(nested, images):
    before = [w.copy() for w in nested.get_weights()]
    out = nested.predict(images, verbose=0)
    cfg = nested.get_config()
    fns = {
        "saliency": lambda x, **k: saliency(nested, x, **k),
        "smoothgrad": lambda x, **k: smoothgrad(nested, x, samples=4, seed=1, **k),
        "integrated_gradients": lambda x, **k: integrated_gradients(nested, x, steps=4, **k),
        "guided_grad_cam": lambda x, **k: guided_grad_cam(nested, x, **k),
    }
    for name, fn in fns.items():
        maps = fn(images, class_index=1)
        assert maps.shape == (3, 16, 16) and maps.dtype == np.float32, name
        assert maps.min() >= 0 and maps.max() == pytest.approx(1.0), name
        assert fn(images[0], class_index=1).shape == (1, 16, 16), name
        if name != "smoothgrad":  # its noise depends on the batch
            np.testing.assert_allclose(fn(images, class_index=1, batch_size=1), maps, atol=1e-4, err_msg=name)
    assert nested.get_config() == cfg
    for a, b in zip(before, nested.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(nested.predict(images, verbose=0), out, rtol=1e-6)
    assert [type(ly).__name__ for ly in nested.layers[0].layers].count("ReLU") == 1


def test_attribution_errors(nested, images):
    with pytest.raises(InvalidArgumentError, match="noise"):
        smoothgrad(nested, images, noise=0)
    with pytest.raises(InvalidArgumentError, match="samples"):
        smoothgrad(nested, images, samples=0)
    with pytest.raises(InvalidArgumentError, match="steps"):
        integrated_gradients(nested, images, steps=0)
    with pytest.raises(InvalidArgumentError, match="baseline"):
        integrated_gradients(nested, images, baseline=np.zeros((3, 3)))
    with pytest.raises(InvalidArgumentError, match="class_index"):
        saliency(nested, images, class_index=3)
    with pytest.raises(InvalidArgumentError, match="raw"):
        saliency(nested, images, raw=1)
    with pytest.raises(InvalidArgumentError, match="layer"):
        guided_grad_cam(nested, images, layer="nope")
