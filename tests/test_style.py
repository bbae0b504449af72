"""Tests of visionkit.style (random VGG-19 weights, small images)."""

from __future__ import annotations

import sys

import keras
import numpy as np
import pytest

from visionkit import data, style
from visionkit.errors import InvalidArgumentError, NonFiniteLossError, WeightsUnavailableError

QUICK = {"weights": None, "progress": False}


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return data.sample_image("photo", max_dim=96)  # (64, 96, 3)


@pytest.fixture(scope="module")
def painting() -> np.ndarray:
    return data.sample_image("painting", max_dim=80)  # (60, 80, 3)


def _yiq(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float64) @ style._RGB_TO_YIQ.T


# ----------------------------------------------------------------------------- building blocks


def test_gram_matrix_matches_numpy() -> None:
    rng = np.random.default_rng(0)
    f = rng.normal(size=(2, 5, 7, 4)).astype(np.float32)
    flat = f.reshape(2, 35, 4)
    expected = np.einsum("bpc,bpd->bcd", flat, flat) / 35.0
    np.testing.assert_allclose(style.gram_matrix(f).numpy(), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(style.gram_matrix(f[0]).numpy(), expected[0], rtol=1e-4, atol=1e-5)
    with pytest.raises(InvalidArgumentError, match="features"):
        style.gram_matrix(np.ones((3, 3), np.float32))


def test_content_and_style_loss() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1, 6, 6, 3)).astype(np.float32)
    assert float(style.content_loss(x, x)) == 0.0
    assert float(style.content_loss(x, x + 2.0)) == pytest.approx(4.0)
    assert float(style.style_loss(x, style.gram_matrix(x))) == pytest.approx(0.0, abs=1e-10)
    assert float(style.style_loss(x, style.gram_matrix(2.0 * x))) > 0.0


def test_total_variation_loss_known_values() -> None:
    ramp = np.tile(np.arange(4, dtype=np.float32)[None, :, None], (3, 1, 2))  # steps of 1 along W
    assert float(style.total_variation_loss(ramp)) == pytest.approx(1.0)
    checker = (np.indices((4, 4)).sum(axis=0) % 2).astype(np.float32)[..., None] * 10.0
    assert float(style.total_variation_loss(checker[None])) == pytest.approx(200.0)
    assert float(style.total_variation_loss(np.full((5, 5, 3), 7.0, np.float32))) == 0.0


def test_style_extractor_outputs_and_pooling() -> None:
    model = style.style_extractor(("block3_conv2",), ("block1_conv1", "block2_conv1"), pooling="avg", weights=None)
    assert list(model.output) == ["block3_conv2", "block1_conv1", "block2_conv1"]
    kinds = {layer.name: type(layer).__name__ for layer in model.layers}
    assert kinds["block1_pool"] == "AveragePooling2D" and "block3_pool" not in kinds  # truncated
    assert all(layer.dtype_policy.name == "float32" for layer in model.layers)
    out = model(np.zeros((1, 32, 48, 3), np.float32))
    assert tuple(out["block3_conv2"].shape) == (1, 8, 12, 256)
    model_max = style.style_extractor((), ("block2_conv1",), pooling="max", weights=None)
    assert type(model_max.get_layer("block1_pool")).__name__ == "MaxPooling2D"
    with pytest.raises(InvalidArgumentError, match=r"`content_layers`.*block1_conv1.*unknown.*block6_conv1"):
        style.style_extractor(("block6_conv1",), weights=None)


def test_offline_weights_error(monkeypatch, tmp_path) -> None:
    from keras.src.utils import file_utils

    url = "https://storage.googleapis.com/tensorflow/keras-applications/vgg19/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"

    def offline(*args, **kwargs):  # what Keras raises without internet
        raise Exception(f"URL fetch failure on {url}: None -- [Errno -3] Temporary failure in name resolution")

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(file_utils, "get_file", offline)
    with pytest.raises(WeightsUnavailableError, match=r"vgg19.*vgg19_weights_tf_dim_ordering_tf_kernels_notop\.h5"):
        style.style_extractor(weights="imagenet")
    with pytest.raises(WeightsUnavailableError, match="vgg19"):
        style.style_transfer(np.zeros((32, 32, 3)), np.zeros((32, 32, 3)), progress=False)
    with pytest.raises(WeightsUnavailableError, match=r"nowhere\.weights\.h5"):
        style.style_transfer(np.zeros((8, 8, 3)), np.zeros((8, 8, 3)), weights="/nowhere.weights.h5", progress=False)


# ----------------------------------------------------------------------------- the recipe


def _tutorial_adam_trajectory(loss, u0, low, high, steps):
    """Keras' Adam as the TensorFlow tutorial sets it, on an image ``u`` in [0, 1] units."""
    import tensorflow as tf

    opt = keras.optimizers.Adam(learning_rate=0.02, beta_1=0.99, epsilon=1e-1)
    u = keras.Variable(u0)
    out = []
    for _ in range(steps):
        with tf.GradientTape() as tape:
            value = loss(u.value)
        opt.apply_gradients([(tape.gradient(value, u.value), u)])
        u.assign(tf.clip_by_value(u.value, low, high))
        out.append(np.array(u.numpy()))
    return np.stack(out)


def test_adam_takes_the_tutorials_steps_in_pixel_units() -> None:
    """visionkit's Adam on [0, 255] pixels moves as the tutorial's Adam on [0, 1] images, times 255."""
    import tensorflow as tf

    from visionkit._style_optim import make_adam_step

    rng = np.random.default_rng(0)
    x0 = rng.uniform(-100, 100, (6, 7, 3)).astype(np.float32)  # VGG units: pixels minus the mean
    target = rng.uniform(-120, 120, (6, 7, 3)).astype(np.float32)
    scale = np.geomspace(1e-9, 1e-3, 6 * 7 * 3).reshape(6, 7, 3).astype(np.float32)  # tiny to large gradients
    low, high = np.float32([-103.9, -116.8, -123.7]), np.float32([151.1, 138.2, 131.3])

    def loss_pixels(x):
        return tf.reduce_sum(scale * tf.square(x - target))

    step, x = make_adam_step(lambda x: (loss_pixels(x), {}), x0, low, high, learning_rate=0.02 * 255)
    ours = []
    for _ in range(12):
        step()
        ours.append(x.numpy())
    tutorial = _tutorial_adam_trajectory(lambda u: loss_pixels(255.0 * u), x0 / 255.0, low / 255.0, high / 255.0, 12)
    moved = np.abs(tutorial[-1] * 255.0 - x0)
    assert moved.max() > 1.0 and moved.min() < 1e-3  # large and tiny gradients: epsilon matters
    np.testing.assert_allclose(np.stack(ours), tutorial * 255.0, rtol=1e-4, atol=2e-3)



@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_total_loss_falls(photo: np.ndarray, painting: np.ndarray, optimizer: str) -> None:
    hist: list[dict[str, float]] = []
    out = style.style_transfer(
        photo, painting, max_dim=64, steps=20, optimizer=optimizer, init=0.6, seed=0,
        callback=lambda k, img, losses: hist.append(losses), **QUICK,
    )
    assert len(hist) == 20 and set(hist[0]) == {"total", "content", "style", "tv"}
    assert hist[-1]["total"] < 0.5 * hist[0]["total"]
    assert out.dtype == np.uint8 and out.shape == (43, 64, 3)


def test_shape_follows_content_and_sizes_may_differ(photo: np.ndarray) -> None:
    tall_style = data.sample_image("painting", size=(100, 40))
    out = style.style_transfer(photo, tall_style, max_dim=72, steps=2, style_scale=0.8, **QUICK)
    assert out.shape == data.load_image(photo, max_dim=72).shape == (48, 72, 3)
    assert out.dtype == np.uint8
    with pytest.raises(InvalidArgumentError, match=r"style image is 36x14.*block5_conv1.*16.*`style_scale`"):
        style.style_transfer(photo, tall_style, max_dim=72, steps=2, style_scale=0.5, **QUICK)
    # a small content image is scaled up to max_dim
    out = style.style_transfer(photo[:20, :30], tall_style, max_dim=45, steps=1, **QUICK)
    assert out.shape == (30, 45, 3)


def test_grayscale_and_rgba_inputs(photo: np.ndarray, painting: np.ndarray) -> None:
    grey = photo.mean(axis=-1).astype(np.uint8)  # (H, W)
    rgba = np.concatenate([painting, np.full((*painting.shape[:2], 1), 255.0)], axis=-1).astype(np.uint8)
    out = style.style_transfer(grey, rgba, max_dim=48, steps=2, **QUICK)
    assert out.shape == (32, 48, 3) and out.dtype == np.uint8


def test_preserve_color_keeps_content_chroma(photo: np.ndarray, painting: np.ndarray) -> None:
    out = style.style_transfer(photo, painting, max_dim=64, steps=15, preserve_color=True, **QUICK)
    content = data.load_image(photo, max_dim=64)
    got, want = _yiq(out), _yiq(content)
    np.testing.assert_allclose(got[..., 1:].mean(axis=(0, 1)), want[..., 1:].mean(axis=(0, 1)), atol=1.5)
    assert np.abs(got[..., 1:] - want[..., 1:]).mean() < 3.0


def test_style_blending(photo: np.ndarray, painting: np.ndarray) -> None:
    other = np.asarray(photo[::-1, ::-1] * 0.5, np.float32)

    def run(styles, blend=None):
        keras.utils.set_random_seed(3)  # same random VGG-19 for every run
        hist: list[dict[str, float]] = []
        out = style.style_transfer(
            photo, styles, max_dim=48, steps=3, style_blend_weights=blend, style_weight=1e3,
            tv_weight=0.0, callback=lambda k, img, losses: hist.append(losses), **QUICK,
        )
        return out, hist[0]["style"]

    single, loss_a = run(painting)
    same, loss_same = run([painting, other], (2.0, 0.0))  # weights are normalised
    np.testing.assert_array_equal(same, single)
    assert loss_same == pytest.approx(loss_a, rel=1e-5)
    _, loss_b = run(other)
    mixed, loss_mix = run([painting, other], (0.5, 0.5))
    # the blended target is the mean Gram matrix: its loss differs from both styles'
    assert loss_mix != pytest.approx(loss_a, rel=1e-3) and loss_mix != pytest.approx(loss_b, rel=1e-3)
    assert np.abs(mixed.astype(int) - single.astype(int)).mean() > 0.5
    with pytest.raises(InvalidArgumentError, match="style_blend_weights"):
        style.style_transfer(photo, [painting, other], style_blend_weights=(1.0,), **QUICK)


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_nan_guard(photo: np.ndarray, painting: np.ndarray, tmp_path, optimizer: str) -> None:
    with pytest.raises(NonFiniteLossError, match="not finite") as info:
        style.style_transfer(
            photo, painting, max_dim=48, steps=5, style_weight=1e38, optimizer=optimizer,
            save_every=1, output_dir=tmp_path, **QUICK,
        )
    last = info.value.last_finite
    assert last.dtype == np.uint8 and last.shape == (32, 48, 3)
    assert last.std() > 5  # the content image, not a black or flat one
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_intermediate_files_written_atomically(photo: np.ndarray, painting: np.ndarray, tmp_path, monkeypatch) -> None:
    import visionkit._io as vio

    used: list[str] = []
    real = vio.atomic_path

    def spy(path):
        used.append(str(path))
        return real(path)

    monkeypatch.setattr("visionkit.data._image_io.atomic_path", spy)
    out = style.style_transfer(photo, painting, max_dim=48, steps=5, save_every=2, output_dir=tmp_path / "run", **QUICK)
    names = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert names == ["step_00002.png", "step_00004.png", "step_00005.png"]
    assert len(used) == 3
    np.testing.assert_array_equal(data.load_image(tmp_path / "run" / "step_00005.png"), out)
    with pytest.raises(InvalidArgumentError, match="output_dir"):
        style.style_transfer(photo, painting, save_every=2, **QUICK)


def test_callback_stops_early_and_multiscale(photo: np.ndarray, painting: np.ndarray) -> None:
    seen: list[tuple[int, tuple[int, ...]]] = []
    out = style.style_transfer(
        photo, painting, scales=(32, 64), steps=3, init="noise", seed=1,
        callback=lambda k, img, losses: seen.append((k, img.shape)), **QUICK,
    )
    assert out.shape == (43, 64, 3)
    assert [k for k, _ in seen] == [1, 2, 3, 4, 5, 6]
    assert seen[0][1] == (21, 32, 3) and seen[-1][1] == (43, 64, 3)
    calls: list[int] = []
    style.style_transfer(photo, painting, scales=(32, 40), steps=10, callback=lambda k, img, losses: calls.append(k) or k == 3, **QUICK)
    assert calls == [1, 2, 3]  # and the second scale does not start


def test_mixed_precision_policy_is_ignored(photo: np.ndarray, painting: np.ndarray) -> None:
    before = keras.config.dtype_policy().name
    keras.config.set_dtype_policy("mixed_float16")
    try:
        out = style.style_transfer(photo, painting, max_dim=40, steps=3, **QUICK)
        model = style.style_extractor(weights=None)
    finally:
        keras.config.set_dtype_policy(before)
    assert out.dtype == np.uint8 and out.std() > 1
    assert {layer.dtype_policy.name for layer in model.layers[1:]} == {"float32"}  # [0]: InputLayer


def test_argument_validation(photo: np.ndarray) -> None:
    bad = [
        ({"optimizer": "sgd"}, "optimizer"),
        ({"init": "zeros"}, "init"),
        ({"init": 1.5}, "init"),
        ({"pooling": "min"}, "pooling"),
        ({"max_dim": 4}, "max_dim"),
        ({"steps": 0}, "steps"),
        ({"style_layers": ("conv1",)}, "style_layers"),
        ({"style_layer_weights": (1.0, 2.0)}, "style_layer_weights"),
        ({"scales": (64, 32)}, "scales"),
        ({"content_weight": -1.0}, "content_weight"),
    ]
    for kwargs, name in bad:
        with pytest.raises(InvalidArgumentError, match=f"`{name}`"):
            style.style_transfer(photo, photo, **kwargs, **QUICK)


def test_lbfgs_without_scipy(photo: np.ndarray, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "scipy.optimize", None)
    with pytest.raises(ImportError, match=r"visionkit\[lbfgs\]"):
        style.style_transfer(photo, photo, optimizer="lbfgs", **QUICK)


def test_cli(photo: np.ndarray, painting: np.ndarray, tmp_path) -> None:
    from visionkit.cli import main

    data.save_image(tmp_path / "c.png", photo)
    data.save_image(tmp_path / "s.jpg", painting)
    out = tmp_path / "out" / "result.png"
    rc = main([
        "style", str(tmp_path / "c.png"), str(tmp_path / "s.jpg"), "-o", str(out), "--steps", "4",
        "--max-dim", "48", "--weights", "none", "--save-every", "2", "--init", "0.5",
        "--optimizer", "lbfgs", "--preserve-color", "--quiet",
    ])
    assert rc == 0
    assert data.load_image(out).shape == (32, 48, 3)
    assert sorted(p.name for p in (tmp_path / "out" / "result_steps").iterdir()) == ["step_00002.png", "step_00004.png"]
    assert main(["style", str(tmp_path / "c.png"), str(tmp_path / "missing.png"), "-o", str(out), "--weights", "none"]) == 1


def test_settings_validated_once_and_frozen() -> None:
    import dataclasses
    import inspect

    from visionkit._style_settings import style_settings

    params = inspect.signature(style.style_transfer).parameters
    defaults = {n: p.default for n, p in params.items() if p.default is not p.empty}
    s = style_settings(n_styles=2, **{**defaults, "style_blend_weights": (3, 1), "scales": (32, 64)})
    assert s.style_blend_weights == (0.75, 0.25) and s.sizes == (32, 64) and s.total_steps == 2 * s.steps
    assert s.layers == (*style.VGG19_CONTENT_LAYERS, *style.VGG19_STYLE_LAYERS)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.steps = 3


def test_cli_defaults_and_choices_come_from_the_library() -> None:
    import argparse
    import inspect

    from visionkit.cli import build_parser

    args = build_parser().parse_args(["style", "c.png", "s.png", "-o", "o.png"])
    params = inspect.signature(style.style_transfer).parameters
    for name in ("steps", "max_dim", "content_weight", "style_weight", "tv_weight", "optimizer",
                 "learning_rate", "init", "pooling", "style_scale", "weights", "seed", "scales"):
        assert getattr(args, name) == params[name].default, name
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    choices = {a.dest: a.choices for a in sub.choices["style"]._actions if a.choices}
    from visionkit.backbones import PRESETS

    assert choices == {"optimizer": style.OPTIMIZERS, "pooling": style.POOLINGS, "backbone": sorted(PRESETS)}


# ----------------------------------------------------------------------------- errors at the edges (#19)


@pytest.mark.parametrize(("which", "argument"), [("content", "content"), ("style", "style"), ("second-style", r"style\[1\]")])
def test_style_transfer_names_the_image_argument_at_fault(photo, painting, which, argument):
    bad = np.zeros((32, 32, 2), np.uint8)  # two channels: neither grey, RGB nor RGBA
    content = bad if which == "content" else photo
    styles = bad if which == "style" else [painting, bad] if which == "second-style" else painting
    # before: "Argument `source`", the parameter of data.load_image
    with pytest.raises(InvalidArgumentError, match=rf"Argument `{argument}` must be an image array.*Received: {argument}="):
        style.style_transfer(content, styles, weights=None, steps=1, max_dim=32, progress=False)
