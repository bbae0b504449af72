"""Every CAM method of visionkit.gradcam against its paper's formula, written plainly here
per image with a GradientTape (a random-weight functional model and a nested one), and
the localisation of every method on a task whose evidence is known."""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from visionkit import gradcam
from visionkit.errors import InvalidArgumentError, VisionkitError
from visionkit.gradcam import METHODS, grad_cam

EPS = 1e-7


def _conv(n, name, **kw):
    return keras.layers.Conv2D(n, 3, padding="same", activation="relu", name=name, **kw)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(1).uniform(0, 1, size=(3, 20, 20, 3)).astype("float32")


@pytest.fixture(scope="module")
def functional():
    keras.utils.set_random_seed(2)
    inp = keras.Input((20, 20, 3))
    x = _conv(6, "c1", bias_initializer="random_normal")(inp)
    x = keras.layers.MaxPooling2D(name="pool")(x)
    x = _conv(8, "last", bias_initializer="random_normal")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    out = keras.layers.Dense(4, activation="softmax", name="probs")(x)
    return keras.Model(inp, out, name="functional")


@pytest.fixture(scope="module")
def nested():
    keras.utils.set_random_seed(3)
    b_in = keras.Input((20, 20, 3))
    b = _conv(6, "b1", bias_initializer="random_normal")(b_in)
    b = keras.layers.MaxPooling2D(name="bpool")(b)
    b = _conv(8, "b2", bias_initializer="random_normal")(b)
    base = keras.Model(b_in, b, name="base")
    return keras.Sequential(
        [keras.Input((20, 20, 3)), base, keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3, activation="softmax")],
        name="seq",
    )


def _parts(model):
    """(features(x) -> A at the last conv, head(A) -> logits, [(conv layer, relu)] in order)."""
    if model.name == "functional":
        convs = [model.get_layer("c1"), model.get_layer("last")]
        dense = model.get_layer("probs")
    else:
        base = model.layers[0]
        convs = [base.get_layer("b1"), base.get_layer("b2")]
        dense = model.layers[-1]

    def features(x):
        return convs[1](tf.nn.max_pool2d(convs[0](x), 2, 2, "VALID"))

    def head(a):
        return tf.matmul(tf.reduce_mean(a, axis=(1, 2)), dense.kernel) + dense.bias

    return features, head, convs


def _acts_grads(model, img, c=None):
    features, head, _ = _parts(model)
    with tf.GradientTape() as tape:
        a = features(tf.convert_to_tensor(img[None]))
        tape.watch(a)
        logits = head(a)
        c = int(tf.argmax(logits[0])) if c is None else c
        score = logits[0, c]
    return a[0].numpy().astype(np.float64), tape.gradient(score, a)[0].numpy().astype(np.float64), c


def _finish(cam, size):
    cam = np.maximum(cam, 0.0)
    cam = tf.image.resize(cam[..., None].astype("float32"), size, method="bilinear")[..., 0].numpy()
    cam = np.maximum(cam, 0.0)
    return cam / cam.max() if cam.max() > 0 else cam


def _pc1(m):
    """First principal component of (h, w, C), its sign chosen to agree with the channel sum."""
    h, w, c = m.shape
    flat = m.reshape(h * w, c)
    _u, _s, vt = np.linalg.svd(flat - flat.mean(axis=0), full_matrices=False)
    proj = flat @ vt[0]
    if np.corrcoef(proj, flat.sum(axis=1))[0, 1] < 0:
        proj = -proj
    return proj.reshape(h, w)


# the papers' formulas, one image at a time: A (h, w, C), g = dS/dA
FORMULAS = {
    "gradcam": lambda a, g: (g.mean(axis=(0, 1)) * a).sum(-1),
    "xgradcam": lambda a, g: (((a * g).sum(axis=(0, 1)) / (a.sum(axis=(0, 1)) + EPS)) * a).sum(-1),
    "layercam": lambda a, g: (np.maximum(g, 0) * a).sum(-1),
    "hirescam": lambda a, g: (g * a).sum(-1),
    "gradcam_elementwise": lambda a, g: np.maximum(g * a, 0).sum(-1),
    "eigencam": lambda a, g: _pc1(a),
    "eigengradcam": lambda a, g: _pc1(g * a),
}


@pytest.mark.parametrize("which", ["functional", "nested"])
def test_gradient_methods_match_their_formulas(which, request, images):
    model = request.getfixturevalue(which)
    for method, formula in FORMULAS.items():
        expected = []
        for img in images:
            a, g, _c = _acts_grads(model, img)
            expected.append(_finish(formula(a, g), img.shape[:2]))
        np.testing.assert_allclose(grad_cam(model, images, method=method), np.stack(expected), atol=2e-4, err_msg=method)
    # eigen_smooth: the first principal component of Grad-CAM's weighted activations
    expected = []
    for img in images:
        a, g, _c = _acts_grads(model, img, c=1)
        expected.append(_finish(_pc1(g.mean(axis=(0, 1)) * a), img.shape[:2]))
    np.testing.assert_allclose(grad_cam(model, images, class_index=1, eigen_smooth=True), np.stack(expected), atol=2e-4)


def _softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


@pytest.mark.parametrize("which", ["functional", "nested"])
def test_scorecam_and_ablationcam_match_their_formulas(which, request, images):
    model = request.getfixturevalue(which)
    features, head, _ = _parts(model)
    score_cams, ablation_cams, faster = [], [], []
    for img in images:
        a, _g, c = _acts_grads(model, img)
        probs = []
        drops = []
        y = float(head(features(img[None]))[0, c])
        for k in range(a.shape[-1]):
            up = tf.image.resize(a[..., k : k + 1].astype("float32"), img.shape[:2], method="bilinear").numpy()
            mask = (up - up.min()) / (up.max() - up.min()) if up.max() > up.min() else np.zeros_like(up)
            probs.append(_softmax(head(features((img * mask)[None])).numpy()[0].astype(np.float64))[c])
            ablated = a.copy()
            ablated[..., k] = 0.0
            drops.append((y - float(head(ablated[None].astype("float32"))[0, c])) / abs(y))
        probs, drops = np.array(probs), np.array(drops)
        score_cams.append(_finish((probs * a).sum(-1), img.shape[:2]))
        ablation_cams.append(_finish((drops * a).sum(-1), img.shape[:2]))
        top3 = np.argsort(-a.std(axis=(0, 1)), kind="stable")[:3]
        faster.append(_finish((probs[top3] * a[..., top3]).sum(-1), img.shape[:2]))
    np.testing.assert_allclose(grad_cam(model, images, method="scorecam", perturbation_batch_size=5), np.stack(score_cams), atol=2e-4)
    np.testing.assert_allclose(grad_cam(model, images, method="scorecam", scorecam_channels=3), np.stack(faster), atol=2e-4)
    np.testing.assert_allclose(grad_cam(model, images, method="ablationcam", perturbation_batch_size=7), np.stack(ablation_cams), atol=2e-4)


def _minmax(m):
    return (m - m.min()) / (m.max() - m.min()) if m.max() > m.min() else np.zeros_like(m)


@pytest.mark.parametrize("which", ["functional", "nested"])
def test_fullgrad_matches_its_formula(which, request, images):
    model = request.getfixturevalue(which)
    _features, head, (c1, c2) = _parts(model)
    expected = []
    for img in images:
        x = tf.convert_to_tensor(img[None])
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            z1 = tf.nn.conv2d(x, c1.kernel, 1, "SAME") + c1.bias
            tape.watch(z1)
            p = tf.nn.max_pool2d(tf.nn.relu(z1), 2, 2, "VALID")
            z2 = tf.nn.conv2d(p, c2.kernel, 1, "SAME") + c2.bias
            tape.watch(z2)
            logits = head(tf.nn.relu(z2))
            score = logits[0, int(tf.argmax(logits[0]))]
        gx, g1, g2 = (t[0].numpy().astype(np.float64) for t in tape.gradient(score, [x, z1, z2]))
        total = sum(_minmax(t) for t in np.moveaxis(np.abs(gx * img), -1, 0))
        for g, layer in ((g1, c1), (g2, c2)):
            for k in range(g.shape[-1]):
                term = _minmax(np.abs(g[..., k] * layer.bias.numpy()[k]))
                total = total + tf.image.resize(term[..., None].astype("float32"), img.shape[:2])[..., 0].numpy()
        expected.append(total / total.max())
    np.testing.assert_allclose(grad_cam(model, images, method="fullgrad"), np.stack(expected), atol=2e-4)


def test_fullgrad_refuses_a_layer_it_cannot_read(images):
    inp = keras.Input((20, 20, 3))
    x = keras.layers.Conv2D(4, 3, activation="tanh", name="squash")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inp, keras.layers.Dense(2)(x))
    with pytest.raises(VisionkitError, match="squash.*tanh"):
        grad_cam(model, images, method="fullgrad")
    nobias = keras.Sequential([keras.Input((20, 20, 3)), keras.layers.Conv2D(2, 3, use_bias=False, name="nb"),
                               keras.layers.Flatten(), keras.layers.Dense(2)], name="nobias")
    with pytest.raises(InvalidArgumentError, match="nobias"):
        grad_cam(nobias, images, method="fullgrad")


def test_aug_smooth_maps_back_to_the_frame(functional, images):
    plain = grad_cam(functional, images, class_index=2)
    smooth = grad_cam(functional, images, class_index=2, aug_smooth=True)
    assert smooth.shape == plain.shape and smooth.dtype == np.float32
    assert 0 <= smooth.min() and smooth.max() == pytest.approx(1.0)
    assert not np.allclose(smooth, plain, atol=1e-3)
    # the augmentations are symmetric under a flip: explaining the flipped image gives the flipped map
    flipped = grad_cam(functional, images[:, :, ::-1], class_index=2, aug_smooth=True)
    np.testing.assert_allclose(flipped[:, :, ::-1], smooth, atol=2e-4)
    assert grad_cam(functional, images, aug_smooth=True, upsample=False).shape == (3, 10, 10)


def test_options_are_checked(functional, images):
    with pytest.raises(InvalidArgumentError, match="scorecam_channels"):
        grad_cam(functional, images, method="gradcam", scorecam_channels=2)
    with pytest.raises(InvalidArgumentError, match="scorecam_channels"):
        grad_cam(functional, images, method="scorecam", scorecam_channels=0)
    with pytest.raises(InvalidArgumentError, match="perturbation_batch_size"):
        grad_cam(functional, images, method="scorecam", perturbation_batch_size=0)
    with pytest.raises(InvalidArgumentError, match="eigen_smooth"):
        grad_cam(functional, images, method="fullgrad", eigen_smooth=True)
    with pytest.raises(InvalidArgumentError, match="aug_smooth"):
        grad_cam(functional, images, aug_smooth="yes")


# ------------------------------------------------------------------ localisation


def _squares(n, rng, positive, size=24, side=6):
    x = rng.uniform(0.0, 0.4, size=(n, size, size, 1)).astype("float32")
    boxes = []
    for i in range(n):
        r, c = rng.integers(0, size - side, size=2)
        if positive[i]:
            x[i, r : r + side, c : c + side] = 1.0
        boxes.append((r, c))
    return x, boxes


@pytest.fixture(scope="module")
def squares_model():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    y = (np.arange(512) % 2).astype("int64")
    x, _ = _squares(512, rng, y)
    model = keras.Sequential(
        [keras.Input((24, 24, 1)), _conv(8, "c1"), keras.layers.MaxPooling2D(), _conv(16, "c2"),
         keras.layers.GlobalMaxPooling2D(), keras.layers.Dense(2, activation="softmax")],
        name="squares",
    )
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=3, batch_size=32, verbose=0)
    return model


def _hit_rate(maps, boxes, side=6):
    hits = 0
    for heat, (r, c) in zip(maps, boxes):
        pr, pc = np.unravel_index(heat.argmax(), heat.shape)
        hits += r <= pr < r + side and c <= pc < c + side
    return hits / len(maps)


def test_every_method_localises_the_square(squares_model):
    x, boxes = _squares(40, np.random.default_rng(123), np.ones(40, bool))
    assert squares_model.predict(x, verbose=0).argmax(1).mean() > 0.9
    rates = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for method in METHODS:
            rates[method] = _hit_rate(grad_cam(squares_model, x, class_index=1, method=method), boxes)
        rates["gradcam+aug_smooth"] = _hit_rate(grad_cam(squares_model, x, class_index=1, aug_smooth=True), boxes)
        rates["gradcam+eigen_smooth"] = _hit_rate(grad_cam(squares_model, x, class_index=1, eigen_smooth=True), boxes)
        rates["saliency"] = _hit_rate(gradcam.saliency(squares_model, x, class_index=1), boxes)
        rates["smoothgrad"] = _hit_rate(gradcam.smoothgrad(squares_model, x, class_index=1, samples=8, seed=0), boxes)
        rates["integrated_gradients"] = _hit_rate(gradcam.integrated_gradients(squares_model, x, class_index=1, steps=16), boxes)
        rates["guided_grad_cam"] = _hit_rate(gradcam.guided_grad_cam(squares_model, x, class_index=1), boxes)
    print(rates)
    low = {k: v for k, v in rates.items() if v < 0.9}
    assert not low, rates


def test_cli_accepts_every_method(tmp_path, functional, capsys):
    from PIL import Image

    from visionkit import cli

    functional.save(tmp_path / "m.keras")
    img = tmp_path / "img.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(img)
    for method in ("scorecam", "ablationcam", "fullgrad", "eigencam"):
        out = tmp_path / method
        assert cli.main(["gradcam", str(tmp_path / "m.keras"), str(img), "-o", str(out), "--method", method]) == 0
        assert [p.name for p in out.iterdir()] == ["img_gradcam.png"]
    smooth = tmp_path / "smooth"
    assert cli.main(["gradcam", str(tmp_path / "m.keras"), str(img), "-o", str(smooth), "--aug-smooth", "--eigen-smooth"]) == 0
    assert (smooth / "img_gradcam.png").exists()
    with pytest.raises(SystemExit):
        cli.main(["gradcam", "--help"])
    text = "".join(capsys.readouterr().out.split())  # argparse wraps the choices
    assert all(m in text for m in METHODS)
