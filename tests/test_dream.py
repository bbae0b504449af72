"""Tests of visionkit.dream on tiny models and small images."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from visionkit import dream as D
from visionkit.errors import InvalidArgumentError, WeightsUnavailableError


def _tiny(name: str = "tiny") -> keras.Model:
    keras.utils.set_random_seed(1)
    inp = keras.Input((None, None, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inp)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(x)
    x = keras.layers.MaxPooling2D(name="pool1")(x)
    x = keras.layers.Conv2D(12, 3, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv3")(x)
    return keras.Model(inp, x, name=name)


@pytest.fixture(scope="module")
def tiny() -> keras.Model:
    return _tiny()


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:48, 0:64]
    img = np.stack([yy * 4, xx * 3, (yy + xx) * 2], axis=-1) % 255
    return (img + rng.uniform(0, 20, img.shape)).clip(0, 255).astype(np.float32)


LAYERS = {"conv2": 1.0, "conv3": 2.0}


def _loss(model, layers, img):
    fm = D.dream_model(model, layers)
    weights = D._layer_weights(layers)
    return float(D.dream_loss(fm(np.asarray(img, np.float32)[None]), weights))


def test_shape_dtype_and_loss_rises(tiny, image):
    out = D.deep_dream(image, model=tiny, layers=LAYERS, octaves=2, steps=6, tile_size=32, seed=0, progress=False)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert _loss(tiny, LAYERS, out) > 1.5 * _loss(tiny, LAYERS, image)
    # The input is not modified; uint8 input works too.
    out8 = D.deep_dream(image.astype(np.uint8), model=tiny, layers=LAYERS, octaves=1, steps=1, progress=False)
    assert out8.shape == image.shape and out8.dtype == np.uint8


def test_tiled_gradient_equals_untiled(tiny, image):
    dreamer = D._make_dreamer(tiny, "imagenet", LAYERS, "default")
    loss, grad = dreamer.gradient(image, tile_size=64, shift=(0, 0))
    x = tf.constant(image)
    with tf.GradientTape() as tape:
        tape.watch(x)
        expected_loss = D.dream_loss(dreamer.features(x[None]), LAYERS)
    expected = tape.gradient(expected_loss, x).numpy()
    np.testing.assert_allclose(loss, float(expected_loss), rtol=1e-4)
    np.testing.assert_allclose(grad, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    # Small tiles cover every pixel: each tile gets its own (non-zero) gradient.
    _, tiled = dreamer.gradient(image, tile_size=32, shift=(5, -7))
    assert tiled.shape == image.shape
    for block in (tiled[:24, :32], tiled[24:, 32:]):
        assert np.abs(block).sum() > 0


def test_one_trace_for_all_tile_sizes(tiny, image):
    dreamer = D._make_dreamer(tiny, "imagenet", LAYERS, "default")
    dreamer.gradient(image, tile_size=32, shift=(3, 4))
    dreamer.gradient(image[:40, :50], tile_size=48, shift=(0, 0))
    assert len(dreamer.tile_gradient._list_all_concrete_functions()) == 1


def test_same_seed_same_output(tiny, image):
    kwargs = dict(model=tiny, layers=LAYERS, octaves=2, steps=3, tile_size=32, progress=False)
    a = D.deep_dream(image, seed=3, **kwargs)
    b = D.deep_dream(image, seed=3, **kwargs)
    c = D.deep_dream(image, seed=4, **kwargs)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_max_loss_stops_early(tiny, image):
    kwargs = dict(model=tiny, layers=LAYERS, octaves=1, steps=5, jitter=0, progress=False)
    stopped = D.deep_dream(image, max_loss=-1.0, **kwargs)
    np.testing.assert_array_equal(stopped, np.rint(image).astype(np.uint8))


def test_layer_forms(tiny):
    assert D._layer_weights("conv1") == {"conv1": 1.0}
    assert D._layer_weights(["conv1", "conv2"]) == {"conv1": 1.0, "conv2": 1.0}
    assert D._layer_weights({"conv1": 2}) == {"conv1": 2.0}
    for layers in ("conv1", ["conv1", "conv3"], {"conv2": 0.5}):
        fm = D.dream_model(tiny, layers)
        assert set(fm.output) == set(D._layer_weights(layers))
    with pytest.raises(InvalidArgumentError, match="layers"):
        D._layer_weights([])
    with pytest.raises(InvalidArgumentError, match="layers"):
        D._layer_weights({"conv1": "big"})


def test_nested_name_in_sequential(image):
    base = _tiny("base")
    model = keras.Sequential([keras.Input((None, None, 3)), base, keras.layers.GlobalAveragePooling2D()], name="seq")
    n_layers = len(model.layers)
    out = D.deep_dream(image, model=model, layers={"base/conv2": 1.0, "base/conv3": 1.0},
                       octaves=1, steps=2, tile_size=32, seed=0, progress=False)
    assert out.shape == image.shape
    assert len(model.layers) == n_layers  # the caller's model is untouched


def test_unknown_layer_lists_valid_names(tiny, image):
    with pytest.raises(InvalidArgumentError, match=r"valid names:.*conv2"):
        D.deep_dream(image, model=tiny, layers={"nope": 1.0}, progress=False)


def test_layers_required_for_unknown_model(tiny, image):
    with pytest.raises(InvalidArgumentError, match="layers"):
        D.deep_dream(image, model=tiny, progress=False)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"octave_scale": 1.0}, "octave_scale"),
        ({"octaves": 0}, "octaves"),
        ({"tile_size": 8}, "tile_size"),
        ({"step_size": 0}, "step_size"),
        ({"jitter": -1}, "jitter"),
        ({"weights": None}, "weights"),
        ({"preprocess": 3}, "preprocess"),
    ],
)
def test_bad_arguments(tiny, image, kwargs, argument):
    with pytest.raises(InvalidArgumentError, match=f"`{argument}`"):
        D.deep_dream(image, model=tiny, layers=LAYERS, progress=False, **kwargs)


def test_image_too_small_for_model(image):
    inp = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 9, name="big")(inp)
    model = keras.Model(inp, x)
    with pytest.raises(InvalidArgumentError, match="too small"):
        D.deep_dream(image[:6, :6], model=model, layers="big", octaves=1, steps=1, progress=False)


def test_mixed_precision_model_refused(image):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = _tiny("mixed")
    finally:
        keras.config.set_dtype_policy(previous)
    with pytest.raises(InvalidArgumentError, match="float32"):
        D.deep_dream(image, model=model, layers=LAYERS, progress=False)


def test_default_model_is_float32_under_mixed_policy():
    img = np.random.default_rng(0).uniform(0, 255, (80, 80, 3)).astype(np.float32)
    from visionkit._backbones import preprocess_function

    pre = preprocess_function("inception_v3")
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = D._default_model(None)
        loss_mixed, grad_mixed = D._Dreamer(D.dream_model(model, D.INCEPTION_V3_LAYERS),
                                            D.INCEPTION_V3_LAYERS, pre).gradient(img, tile_size=512)
    finally:
        keras.config.set_dtype_policy(previous)
    dtypes = {layer.compute_dtype for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)}
    assert dtypes == {"float32"}
    D._check_float32(model)
    # Same result as under the float32 policy: nothing ran in float16.
    loss, grad = D._Dreamer(D.dream_model(model, D.INCEPTION_V3_LAYERS), D.INCEPTION_V3_LAYERS, pre).gradient(
        img, tile_size=512)
    assert grad_mixed.dtype == np.float32
    np.testing.assert_allclose(loss_mixed, loss, rtol=1e-4)
    np.testing.assert_allclose(grad_mixed, grad, rtol=1e-3, atol=1e-4 * np.abs(grad).max())


def test_offline_weights_error(image, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(WeightsUnavailableError, match="inception_v3"):
        D.deep_dream(image, weights="imagenet", progress=False)
    bad = tmp_path / "bad.weights.h5"
    with pytest.raises(WeightsUnavailableError, match="not found"):
        D.deep_dream(image, weights=bad, progress=False)


def test_dream_loss_values():
    acts = {"a": np.ones((1, 2, 2, 3), np.float32), "b": np.full((1, 1, 1, 2), 2.0, np.float16)}
    assert float(D.dream_loss(acts)) == pytest.approx(5.0)
    assert float(D.dream_loss(acts, {"a": 2.0, "b": 0.5})) == pytest.approx(4.0)
    assert D.dream_loss(acts).dtype == tf.float32


def test_dream_frames(tiny, image):
    frames = list(D.dream_frames(image, 3, zoom=1.2, model=tiny, layers=LAYERS, steps=2, tile_size=32,
                                 seed=0, progress=False))
    assert len(frames) == 3
    assert all(f.shape == image.shape and f.dtype == np.uint8 for f in frames)
    assert not np.array_equal(frames[1], frames[2])


def test_cli(tmp_path, image):
    from visionkit.cli import main
    from visionkit.data import save_image

    src = save_image(tmp_path / "in.png", np.tile(image, (2, 2, 1))[:80, :96])
    out = tmp_path / "out.png"
    base = ["dream", str(src), "-o", str(out), "--octaves", "1", "--steps", "1", "--weights", "none", "-q"]
    assert main([*base, "--layers", "nope=1"]) == 1  # an unknown layer is not a usage error: exit 1
    assert not out.exists()
    assert main([*base, "--layers", "mixed2=1,mixed3", "--tile-size", "96", "--seed", "0"]) == 0
    from visionkit.data import load_image

    assert load_image(out).shape == (80, 96, 3)
    assert main(["dream", str(tmp_path / "missing.png"), "-o", str(out), "-q"]) == 1
    assert main(["dream", str(src), "-o", str(tmp_path / "out.xyz"), "-q"]) == 2


def test_cli_layer_parsing():
    from visionkit._cli.dream import parse_layers

    assert parse_layers("mixed4=1,mixed5=1.5") == {"mixed4": 1.0, "mixed5": 1.5}
    assert parse_layers("a/b, c") == {"a/b": 1.0, "c": 1.0}
    import argparse

    with pytest.raises(argparse.ArgumentTypeError):
        parse_layers("a=x")


def test_guide_pulls_towards_guide_features(tiny, image):
    guide = np.zeros((40, 40, 3), np.float32)
    guide[::4] = 255.0  # horizontal stripes
    fm = D.dream_model(tiny, LAYERS)
    dreamer = D._make_dreamer(tiny, "imagenet", LAYERS, "default")
    dreamer.set_guide(guide, 32)

    def projection(img):
        return float(D.dream_loss(fm(np.asarray(img, np.float32)[None]), LAYERS, guide=dreamer.guide))

    out = D.deep_dream(image, model=tiny, layers=LAYERS, guide=guide, octaves=1, steps=6, tile_size=32,
                       seed=0, progress=False)
    plain = D.deep_dream(image, model=tiny, layers=LAYERS, octaves=1, steps=6, tile_size=32, seed=0, progress=False)
    assert projection(out) > projection(image)
    assert not np.array_equal(out, plain)


def test_settings_resolve_jitter_and_are_frozen():
    import dataclasses

    s = D._dream_settings(octaves=2, octave_scale=1.5, steps=3, step_size=0.1, max_loss=None,
                          tile_size=64, jitter=None, seed=0, progress=False)
    assert s.jitter == 64 and s.octaves == 2
    assert s.rng().integers(1000) == np.random.default_rng(0).integers(1000)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.steps = 1


def test_cli_defaults_come_from_the_library():
    import inspect

    from visionkit.cli import build_parser

    args = build_parser().parse_args(["dream", "in.png", "-o", "out.png"])
    params = inspect.signature(D.deep_dream).parameters
    for name in ("octaves", "octave_scale", "steps", "step_size", "layers", "tile_size", "max_loss", "seed", "weights"):
        assert getattr(args, name) == params[name].default, name


# ----------------------------------------------------------------------------- errors at the edges (#19)


def _strided() -> keras.Model:
    inp = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, name="c1")(inp)
    return keras.Model(inp, keras.layers.Conv2D(4, 3, strides=2, name="c2")(x), name="strided")


@pytest.mark.parametrize(("size", "octaves", "octave_scale"), [(1, 1, 1.4), (4, 1, 1.4), (16, 5, 1.4), (16, 2, 100.0)],
                         ids=["1px", "4px", "octaves-shrink-below", "huge-octave-scale"])
def test_deep_dream_refuses_images_too_small_for_the_model_before_any_step(size, octaves, octave_scale):
    # "valid" convolutions need 5x5 pixels; smaller octaves reached the kernels (InceptionV3
    # at 8x8 crashed the process with SIGFPE in oneDNN) or Keras' errors
    image = np.full((size, size, 3), 128.0, np.float32)
    with pytest.raises(InvalidArgumentError, match=r"`image` must be large enough for model 'strided_dream'.*at least 5x5 "
                                                   r"pixels.*Received: image of size"):
        D.deep_dream(image, model=_strided(), layers=["c2"], octaves=octaves, octave_scale=octave_scale, steps=1,
                     preprocess=None, progress=False)


def test_deep_dream_smallest_size_the_model_takes_works():
    out = D.deep_dream(np.full((5, 5, 3), 128.0, np.float32), model=_strided(), layers=["c2"], octaves=1, steps=1,
                       preprocess=None, progress=False)
    assert out.shape == (5, 5, 3)


def test_deep_dream_names_its_own_arguments(tiny):
    with pytest.raises(InvalidArgumentError, match=r"Argument `image` must be an image array.*Received: image="):
        D.deep_dream(np.zeros((0, 0, 3)), model=tiny, layers=LAYERS, steps=1, progress=False)
    with pytest.raises(InvalidArgumentError, match=r"Argument `layers` must be the name of a layer.*Received: layers='nope'"):
        D.deep_dream(np.zeros((16, 16, 3)), model=tiny, layers=["nope"], steps=1, progress=False)
    with pytest.raises(InvalidArgumentError, match=r"Argument `guide` must be an image large enough"):
        D.deep_dream(np.zeros((16, 16, 3)), model=_strided(), layers=["c2"], guide=np.zeros((2, 2, 3)), octaves=1,
                     steps=1, preprocess=None, progress=False)
