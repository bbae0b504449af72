"""Tests of visionkit.gradcam: localisation, agreement with a plain GradientTape
Grad-CAM, the caller's model untouched, batches, heads, errors, the CLI."""

from __future__ import annotations

import dataclasses
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from visionkit import cli
from visionkit._labels import with_class_names
from visionkit.errors import InvalidArgumentError
from visionkit.explain._probe import probe as _explainer
from visionkit.gradcam import (
    METHODS,
    ErrorGallery,
    candidate_layers,
    explain_errors,
    grad_cam,
    overlay,
)

# ------------------------------------------------------------------ a naive reference


def naive_grad_cam(features, head, x, class_index=None, binary=False):
    """Per-image Grad-CAM with a GradientTape.

    ``features(img) -> A`` (the layer's activations) and ``head(A) -> logits``.
    """
    maps = []
    for img in x:
        with tf.GradientTape() as tape:
            a = features(tf.convert_to_tensor(img[None], tf.float32))
            tape.watch(a)
            logits = head(a)
            if binary:
                positive = logits[0, 0] > 0 if class_index is None else class_index == 1
                score = logits[0, 0] if positive else -logits[0, 0]
            else:
                c = int(tf.argmax(logits[0])) if class_index is None else class_index
                score = logits[0, c]
        g = tape.gradient(score, a)
        w = tf.reduce_mean(g, axis=(1, 2), keepdims=True)
        cam = tf.nn.relu(tf.reduce_sum(w * a, axis=-1))[0]
        cam = tf.image.resize(cam[..., None], img.shape[:2], method="bilinear")[..., 0]
        cam = tf.nn.relu(cam).numpy()
        maps.append(cam / cam.max() if cam.max() > 0 else cam)
    return np.stack(maps)


def dense_logits(dense, f):
    return tf.matmul(f, dense.kernel) + dense.bias


def _conv(n, name, **kw):
    return keras.layers.Conv2D(n, 3, padding="same", activation="relu", name=name, **kw)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(1).uniform(0, 1, size=(5, 24, 24, 3)).astype("float32")


@pytest.fixture(scope="module")
def functional():
    keras.utils.set_random_seed(2)
    inp = keras.Input((24, 24, 3))
    x = _conv(6, "c1")(inp)
    x = keras.layers.MaxPooling2D(name="pool")(x)
    x = _conv(8, "last")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    out = keras.layers.Dense(4, activation="softmax", name="probs")(x)
    return keras.Model(inp, out, name="functional")


@pytest.fixture(scope="module")
def nested():
    keras.utils.set_random_seed(3)
    b_in = keras.Input((24, 24, 3))
    b = _conv(6, "b1")(b_in)
    b = keras.layers.MaxPooling2D(name="bpool")(b)
    b = _conv(8, "b2")(b)
    base = keras.Model(b_in, b, name="base")
    return keras.Sequential(
        [keras.Input((24, 24, 3)), base, keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3, activation="softmax")],
        name="seq",
    )


@pytest.fixture(scope="module")
def sigmoid():
    keras.utils.set_random_seed(4)
    inp = keras.Input((24, 24, 3))
    x = _conv(6, "c1")(inp)
    x = _conv(8, "last")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(1, activation="sigmoid", name="p")(x)
    return keras.Model(inp, out, name="binary")


# ------------------------------------------------------------------ localisation


def _squares(n, rng, positive):
    x = rng.uniform(0.0, 0.35, size=(n, 32, 32, 1)).astype("float32")
    boxes = []
    for i in range(n):
        r, c = rng.integers(0, 32 - 8, size=2)
        if positive[i]:
            x[i, r : r + 8, c : c + 8] = 1.0
        boxes.append((r, c))
    return x, boxes


@pytest.fixture(scope="module")
def squares_model():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    y = (np.arange(600) % 2).astype("int64")
    x, _ = _squares(600, rng, y)
    model = keras.Sequential(
        [
            keras.Input((32, 32, 1)),
            _conv(8, "c1"),
            keras.layers.MaxPooling2D(),
            _conv(16, "c2"),
            keras.layers.GlobalMaxPooling2D(),
            keras.layers.Dense(2, activation="softmax"),
        ],
        name="squares",
    )
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=4, batch_size=32, verbose=0)
    return model


def test_localisation_peak_inside_square(squares_model):
    rng = np.random.default_rng(123)
    x, boxes = _squares(60, rng, np.ones(60, bool))
    assert squares_model.predict(x, verbose=0).argmax(1).mean() > 0.9
    for method in ("gradcam", "gradcam++"):
        maps = grad_cam(squares_model, x, class_index=1, method=method)
        hits = 0
        for heat, (r, c) in zip(maps, boxes):
            pr, pc = np.unravel_index(heat.argmax(), heat.shape)
            hits += r <= pr < r + 8 and c <= pc < c + 8
        assert hits / len(x) >= 0.9, method


def test_explain_errors_shows_most_confident_errors(squares_model):
    rng = np.random.default_rng(5)
    y = (np.arange(40) % 2).astype("int64")
    x, _ = _squares(40, rng, y)
    wrong = 1 - y  # every prediction is now an error
    gallery = explain_errors(squares_model, (x, wrong), k=6, class_names=["noise", "square"])
    assert isinstance(gallery, ErrorGallery)
    assert len(gallery.errors) == 6
    conf = [e[3] for e in gallery.errors]
    assert conf == sorted(conf, reverse=True)
    titled = [ax.get_title() for ax in gallery.figure.axes if ax.get_title()]
    assert len(titled) == 6 and all("true:" in t and "pred:" in t for t in titled)
    assert all(("noise" in t) and ("square" in t) for t in titled)
    # one-hot labels and a tf.data pipeline give the same gallery
    ds = tf.data.Dataset.from_tensor_slices((x, keras.utils.to_categorical(wrong, 2))).batch(7)
    assert [e[:3] for e in explain_errors(squares_model, ds, k=6).errors] == [e[:3] for e in gallery.errors]
    gallery.figure.savefig(__import__("io").BytesIO(), format="png")
    assert gallery._repr_png_().startswith(b"\x89PNG")
    with pytest.raises(dataclasses.FrozenInstanceError):
        gallery.errors = ()
    none = explain_errors(squares_model, (x[:0], wrong[:0]), k=3)
    assert none.errors == ()
    # without class_names, the names the model carries
    named = with_class_names(squares_model, ["noise", "square"])
    titles = [ax.get_title() for ax in explain_errors(named, (x, wrong), k=2).figure.axes if ax.get_title()]
    assert len(titles) == 2 and all("noise" in t and "square" in t for t in titles)


def test_explain_errors_reads_labels_with_the_strict_rule_of_interpret(squares_model):
    """One label rule for every explanation entry point: a label that is not a class
    index of the model (0.6, or 2 for a two-class model) is refused, never rounded."""
    rng = np.random.default_rng(6)
    y = (np.arange(8) % 2).astype("int64")
    x, _ = _squares(8, rng, y)
    for bad in (np.full(8, 0.6), np.full(8, 2)):
        with pytest.raises(InvalidArgumentError, match="labels"):
            explain_errors(squares_model, (x, bad), k=2)
    with pytest.raises(InvalidArgumentError, match="class_names"):
        explain_errors(squares_model, (x, 1 - y), k=2, class_names=["only one"])


# ------------------------------------------------------------------ agreement


def test_agrees_with_naive_functional(functional, images):
    conv = functional.get_layer("last")
    features = keras.Model(functional.inputs, conv.output)

    def head(a):
        return dense_logits(functional.get_layer("probs"), tf.reduce_mean(a, axis=(1, 2)))

    np.testing.assert_allclose(grad_cam(functional, images), naive_grad_cam(features, head, images), atol=1e-4)
    np.testing.assert_allclose(
        grad_cam(functional, images, class_index=2), naive_grad_cam(features, head, images, 2), atol=1e-4
    )


def test_agrees_with_naive_nested_sequential(nested, images):
    base = nested.layers[0]
    dense = nested.layers[-1]
    # default layer: the last 4-D layer, found inside the nested base
    assert candidate_layers(nested)[-1] == "base/b2"

    def head(a):
        return dense_logits(dense, tf.reduce_mean(a, axis=(1, 2)))

    np.testing.assert_allclose(grad_cam(nested, images), naive_grad_cam(base, head, images), atol=1e-4)
    # an inner layer of the base: the rest of the base then runs in the head
    inner = keras.Model(base.inputs, [base.get_layer("bpool").output])
    rest = base.get_layer("b2")
    np.testing.assert_allclose(
        grad_cam(nested, images, layer="base/bpool"),
        naive_grad_cam(inner, lambda a: head(rest(a)), images),
        atol=1e-4,
    )


def test_agrees_with_naive_sigmoid(sigmoid, images):
    features = keras.Model(sigmoid.inputs, sigmoid.get_layer("last").output)

    def head(a):
        return dense_logits(sigmoid.get_layer("p"), tf.reduce_mean(a, axis=(1, 2)))

    np.testing.assert_allclose(grad_cam(sigmoid, images), naive_grad_cam(features, head, images, binary=True), atol=1e-4)
    for c in (0, 1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # some class-0 maps are all zero
            maps = grad_cam(sigmoid, images, class_index=c)
        np.testing.assert_allclose(
            maps,
            naive_grad_cam(features, head, images, c, binary=True),
            atol=1e-4,
        )
    assert _explainer(sigmoid, "last").pre_activation


def test_separate_softmax_layer_and_saved_model(tmp_path, images):
    keras.utils.set_random_seed(6)
    inp = keras.Input((24, 24, 3))
    x = _conv(5, "last")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(3, name="logits")(x)
    out = keras.layers.Softmax()(x)
    model = keras.Model(inp, out)
    assert _explainer(model, "last").pre_activation
    features = keras.Model(model.inputs, model.get_layer("last").output)

    def head(a):
        return dense_logits(model.get_layer("logits"), tf.reduce_mean(a, axis=(1, 2)))

    expected = naive_grad_cam(features, head, images)
    np.testing.assert_allclose(grad_cam(model, images), expected, atol=1e-4)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(grad_cam(loaded, images), expected, atol=1e-4)


def test_model_with_class_names_uses_logits(functional, images):
    named = with_class_names(functional, ["a", "b", "c", "d"])
    assert _explainer(named, "last").pre_activation
    np.testing.assert_allclose(grad_cam(named, images), grad_cam(functional, images), atol=1e-6)


# ------------------------------------------------------------------ properties


def test_callers_model_unchanged(nested, images):
    before_w = [w.copy() for w in nested.get_weights()]
    before_out = nested.predict(images, verbose=0)
    before_cfg = nested.get_config()
    before_names = [w.name for w in nested.weights]
    n_layers = len(nested.layers)
    act = nested.layers[-1].activation
    for method in METHODS:
        grad_cam(nested, images, method=method)
    assert len(nested.layers) == n_layers
    assert nested.layers[-1].activation is act
    assert nested.get_config() == before_cfg
    for a, b in zip(before_w, nested.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(nested.predict(images, verbose=0), before_out, rtol=1e-6)
    assert [w.name for w in nested.weights] == before_names


def test_batch_equals_per_image(functional, images):
    for method in METHODS:
        whole = grad_cam(functional, images, method=method, batch_size=2)
        single = np.concatenate([grad_cam(functional, img, method=method) for img in images])
        np.testing.assert_allclose(whole, single, atol=1e-4)  # maps in [0, 1]; batch 2 vs 1


def test_shapes_ranges_and_methods(functional, images):
    for method in METHODS:
        maps = grad_cam(functional, images, method=method)
        assert maps.shape == (5, 24, 24) and maps.dtype == np.float32
        assert np.isfinite(maps).all() and maps.min() >= 0 and maps.max() <= 1
        small = grad_cam(functional, images, method=method, upsample=False)
        assert small.shape == (5, 12, 12)
    assert grad_cam(functional, images[0], layer="c1").shape == (1, 24, 24)
    per_image = grad_cam(functional, images, class_index=[0, 1, 2, 3, 0])
    np.testing.assert_allclose(per_image[1], grad_cam(functional, images[1], class_index=1)[0], atol=1e-4)
    # the compiled graph is built once per model and layer
    assert _explainer(functional, "last") is _explainer(functional, "last")


def test_gradient_follows_later_training(images):
    keras.utils.set_random_seed(7)
    model = keras.Sequential(
        [keras.Input((24, 24, 3)), _conv(4, "c"), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2, activation="softmax")]
    )
    first = grad_cam(model, images, class_index=0)
    model.layers[-1].kernel.assign(-model.layers[-1].kernel)
    second = grad_cam(model, images, class_index=0)
    assert not np.allclose(first, second)


def test_constant_inputs_no_nan(functional, nested):
    for model in (functional, nested):
        for value in (0.0, 1.0):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                maps = grad_cam(model, np.full((2, 24, 24, 3), value, "float32"), method="gradcam++")
            assert np.isfinite(maps).all()


def test_all_non_positive_map_warns_and_is_zero():
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(2, 3, kernel_initializer="zeros", bias_initializer="zeros", name="dead"),
            keras.layers.Flatten(),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    for method in METHODS:
        with pytest.warns(UserWarning, match="no positive value"):
            maps = grad_cam(model, np.ones((3, 8, 8, 1), "float32"), method=method)
        assert np.array_equal(maps, np.zeros((3, 8, 8), "float32"))


def test_grayscale_without_channel_axis(squares_model):
    x = np.random.default_rng(0).uniform(0, 1, (3, 32, 32)).astype("float32")
    np.testing.assert_allclose(grad_cam(squares_model, x), grad_cam(squares_model, x[..., None]), atol=1e-6)
    assert grad_cam(squares_model, x[0]).shape == (1, 32, 32)


def test_errors_name_the_argument(functional, images):
    with pytest.raises(InvalidArgumentError, match=r"valid names: c1, pool, last.*Received: layer='nope'"):
        grad_cam(functional, images, layer="nope")
    with pytest.raises(InvalidArgumentError, match="4-D output"):
        grad_cam(functional, images, layer="probs")
    with pytest.raises(InvalidArgumentError, match="method"):
        grad_cam(functional, images, method="cam")
    with pytest.raises(InvalidArgumentError, match="class_index"):
        grad_cam(functional, images, class_index=4)
    with pytest.raises(InvalidArgumentError, match="class_index"):
        grad_cam(functional, images, class_index=[0, 1])
    with pytest.raises(InvalidArgumentError, match="images"):
        grad_cam(functional, np.zeros((2, 2, 24, 24, 3)))
    flat = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(InvalidArgumentError, match="no layer with a 4-D output"):
        grad_cam(flat, np.zeros((1, 4)))


# ------------------------------------------------------------------ overlay


def test_overlay():
    img = np.full((40, 30, 3), 100, np.uint8)
    heat = np.zeros((5, 5), np.float32)
    heat[2, 2] = 1.0
    out = overlay(img, heat)
    assert out.shape == (40, 30, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(overlay(img, heat, alpha=0.0), img)
    full = overlay(img, np.ones((5, 5)), alpha=1.0, colormap="gray")
    assert (full == 255).all()
    assert overlay(np.zeros((10, 10)), np.ones((10, 10))).shape == (10, 10, 3)
    with pytest.raises(InvalidArgumentError, match="colormap"):
        overlay(img, heat, colormap="nope")
    with pytest.raises(InvalidArgumentError, match="alpha"):
        overlay(img, heat, alpha=2)


# ------------------------------------------------------------------ CLI


def test_cli_gradcam(tmp_path, nested, capsys):
    from PIL import Image

    nested.save(tmp_path / "m.keras")
    paths = []
    for i in range(2):
        p = tmp_path / f"img{i}.png"
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(p)
        paths.append(str(p))
    out = tmp_path / "out"
    rc = cli.main(["gradcam", str(tmp_path / "m.keras"), *paths, "-o", str(out), "--method", "gradcam++",
                   "--rescale", str(1 / 255)])
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == ["img0_gradcam.png", "img1_gradcam.png"]
    assert np.asarray(Image.open(out / "img0_gradcam.png")).shape == (24, 24, 3)
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a model")
    assert cli.main(["gradcam", str(bad), paths[0], "-o", str(out)]) == 1  # not a usage error: exit 1 (docs/cli.md)
    assert "bad.keras" in capsys.readouterr().err
    assert cli.main(["gradcam", str(tmp_path / "m.keras"), paths[0], "--layer", "zz"]) == 1
    assert "base/b2" in capsys.readouterr().err


def test_cli_gradcam_shows_class_names(tmp_path, functional, images, capsys):
    from PIL import Image

    with_class_names(functional, ["cat", "dog", "owl", "yak"]).save(tmp_path / "named.keras")
    img = tmp_path / "img.png"
    Image.fromarray((images[0] * 255).astype("uint8")).save(img)
    assert cli.main(["gradcam", str(tmp_path / "named.keras"), str(img), "-o", str(tmp_path / "out"), "--class", "2"]) == 0
    line = capsys.readouterr().out
    assert "class 2 (owl)" in line and "top class" in line
    with pytest.raises(SystemExit) as exit_:
        cli.main(["gradcam", str(tmp_path / "named.keras"), str(img), "--method", "cam"])
    assert exit_.value.code == 2
    assert "gradcam++" in capsys.readouterr().err  # the choices come from METHODS


def test_gradcam_and_visualize_import_without_tensorflow(repo_root):
    import subprocess
    import sys

    code = ("import sys, visionkit.gradcam, visionkit.visualize, visionkit._images; "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=repo_root, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "False False"


def test_explain_errors_logits_head(images):
    keras.utils.set_random_seed(8)
    model = keras.Sequential(
        [keras.Input((24, 24, 3)), _conv(4, "c"), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3, name="logits")]
    )
    assert _explainer(model, "c").head == "linear"
    pred = model.predict(images, verbose=0).argmax(1)
    gallery = explain_errors(model, (images, (pred + 1) % 3), k=3)
    assert len(gallery.errors) == 3
    assert all(0.0 < e[3] <= 1.0 for e in gallery.errors)
    assert [e[2] for e in gallery.errors] == [int(pred[e[0]]) for e in gallery.errors]
