"""No confident answer from bad pixels or bad shapes (issue #19): every explanation entry
point (each CAM method, each attribution, the faithfulness metrics, ``compare_methods``,
``interpret``) refuses NaN/Inf images, images the model cannot take and models with
several outputs with an ``InvalidArgumentError`` that says what was expected and what
arrived, and answers an empty batch with an empty result of the right shape."""

from __future__ import annotations

import functools
import tracemalloc
import warnings

import keras
import numpy as np
import pytest

from visionkit import explain, gradcam
from visionkit.errors import InvalidArgumentError
from visionkit.gradcam import METHODS, grad_cam
from visionkit.interpret import interpret

SIZE = 8
ATTRIBUTIONS = ("saliency", "smoothgrad", "integrated_gradients", "guided_grad_cam")


def _layers(inp):
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="c1")(inp)
    x = keras.layers.Conv2D(5, 3, activation="relu", name="last")(x)
    return keras.layers.GlobalAveragePooling2D(name="gap")(x)


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(3)
    inp = keras.Input((SIZE, SIZE, 3))
    return keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="probs")(_layers(inp)), name="rgb")


@pytest.fixture(scope="module")
def two_outputs():
    inp = keras.Input((SIZE, SIZE, 3))
    feats = _layers(inp)
    out = [keras.layers.Dense(3, activation="softmax", name="kind")(feats), keras.layers.Dense(1, name="box")(feats)]
    return keras.Model(inp, out, name="two_heads")


def _images(n=4):
    return np.random.default_rng(0).uniform(0, 1, (n, SIZE, SIZE, 3)).astype("float32")


def _quiet(fn):
    def call(model, x):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return fn(model, x)

    return call


def _maps(x):
    return np.random.default_rng(1).random((len(x), *np.shape(x)[1:3]))


# entry point -> (model, images) -> its main array
ENTRY = {
    **{f"grad_cam[{m}]": functools.partial(grad_cam, method=m) for m in METHODS},
    **{a: getattr(gradcam, a) for a in ATTRIBUTIONS},
    "deletion": lambda model, x: explain.deletion(model, x, _maps(x), steps=4).auc,
    "insertion": lambda model, x: explain.insertion(model, x, _maps(x), steps=4).auc,
    "road": lambda model, x: explain.road(model, x, _maps(x), percentiles=(50,)).scores,
    "confidence_change": lambda model, x: explain.confidence_change(model, x, _maps(x)).drop,
    "heatmaps": lambda model, x: explain.heatmaps(model, x),
    "compare_methods": lambda model, x: explain.compare_methods(model, x, methods=["gradcam", "saliency"], steps=4).scores["gradcam"],
    "explain_errors": lambda model, x: gradcam.explain_errors(model, (x, np.zeros(len(x), "int64"))).errors,
    "interpret": lambda model, x: interpret(model, (x, np.zeros(len(x), "int64"))).probabilities,
}
#: the shape of each entry point's answer for no images
EMPTY = {
    **{f"grad_cam[{m}]": (0, SIZE, SIZE) for m in METHODS},
    **{a: (0, SIZE, SIZE) for a in ATTRIBUTIONS},
    "deletion": (0,), "insertion": (0,), "road": (0, 1), "confidence_change": (0,),
    "heatmaps": (0, SIZE, SIZE), "compare_methods": (0,),
}


@pytest.mark.parametrize("entry", list(ENTRY))
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_every_entry_point_refuses_non_finite_images_naming_them(model, entry, bad):
    x = _images(4)
    x[1, 2, 3, 0] = bad
    x[3, 0, 0, 2] = bad
    with pytest.raises(InvalidArgumentError, match=r"finite.*2 of 4 images.*index 1, 3") as info:
        ENTRY[entry](model, x)
    assert len(str(info.value)) < 400  # the message does not print the array


@pytest.mark.parametrize("entry", list(ENTRY))
@pytest.mark.parametrize("shape", [(2, SIZE, SIZE, 1), (2, SIZE, SIZE, 4), (2, SIZE + 3, SIZE, 3)],
                         ids=["1-channel", "4-channel", "other-size"])
def test_every_entry_point_refuses_images_the_model_cannot_take(model, entry, shape):
    x = np.zeros(shape, "float32")
    expected = rf"\(N, {SIZE}, {SIZE}, 3\).*model 'rgb'.*Received: .*shape \({', '.join(map(str, shape))}\)"
    with pytest.raises(InvalidArgumentError, match=expected) as info:
        ENTRY[entry](model, x)
    assert len(str(info.value)) < 400


@pytest.mark.parametrize("entry", list(ENTRY))
def test_every_entry_point_refuses_a_model_with_several_outputs(two_outputs, entry):
    with pytest.raises(InvalidArgumentError, match=r"one output.*'two_heads' has 2 outputs") as info:
        ENTRY[entry](two_outputs, _images(2))
    assert len(str(info.value)) < 400


@pytest.mark.parametrize("entry", list(EMPTY))
def test_every_entry_point_answers_an_empty_batch_with_an_empty_result(model, entry):
    out = _quiet(ENTRY[entry])(model, np.zeros((0, SIZE, SIZE, 3), "float32"))
    assert np.shape(out) == EMPTY[entry]


@pytest.mark.parametrize("method", METHODS)
def test_empty_batch_with_upsample_false_and_aug_smooth(model, method):
    x = np.zeros((0, SIZE, SIZE, 3), "float32")
    assert grad_cam(model, x, method=method, upsample=False).shape == (0, SIZE - 2, SIZE - 2)
    assert grad_cam(model, x, method=method, aug_smooth=True).shape == (0, SIZE, SIZE)


def test_interpret_names_the_image_index_across_batches(model):
    x = _images(6)
    x[5, 0, 0, 0] = np.nan
    with pytest.raises(InvalidArgumentError, match=r"`data`.*index 5"):
        interpret(model, (x, np.zeros(6, "int64")), batch_size=2)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("aug_smooth", [False, True], ids=["plain", "aug_smooth"])
def test_upsample_false_on_a_fully_convolutional_model(model, method, aug_smooth):
    """Maps at the layer's own resolution for any input size, equal to those of the
    same weights behind a fixed-size input."""
    inp = keras.Input((None, None, 3))
    fcn = keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="probs")(_layers(inp)), name="fcn")
    fcn.set_weights(model.get_weights())
    x = _images(2)
    quiet = _quiet(lambda m, xs: grad_cam(m, xs, method=method, upsample=False, aug_smooth=aug_smooth))
    maps = quiet(fcn, x)
    assert maps.shape == (2, SIZE - 2, SIZE - 2)
    np.testing.assert_allclose(maps, quiet(model, x), atol=1e-4)
    wide = np.random.default_rng(2).uniform(0, 1, (1, 12, 17, 3)).astype("float32")
    assert quiet(fcn, wide).shape == (1, 10, 15)


def test_scorecam_numpy_memory_does_not_grow_with_channels_times_activations():
    """One image, a 256-channel 16x16 layer, chunks of 128 pairs: the masks of a chunk
    are 128 single-channel maps (128 KiB in float32), not 128 copies of the whole
    activation tensor (64 MiB in float64, as before the fix)."""
    keras.utils.set_random_seed(4)
    wide = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(256, 3, padding="same", activation="relu"),
                             keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3, activation="softmax")])
    x = np.random.default_rng(5).uniform(0, 1, (1, 16, 16, 3)).astype("float32")
    _quiet(lambda m, xs: grad_cam(m, xs, method="scorecam", scorecam_channels=1))(wide, x)  # compile first
    tracemalloc.start()
    try:
        _quiet(lambda m, xs: grad_cam(m, xs, method="scorecam"))(wide, x)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20, f"NumPy peak {peak / 2**20:.1f} MiB"


@pytest.mark.parametrize("metric", ["deletion", "insertion", "confidence_change"])
def test_metrics_refuse_non_finite_maps_naming_them(metric):
    # before: NaN in a caller's map was zeroed silently and the metric scored the garbage
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(2, activation="softmax")])
    x = np.random.default_rng(0).random((3, 8, 8, 3)).astype("float32")
    maps = np.random.default_rng(1).random((3, 8, 8))
    maps[2, 1, 1] = np.nan
    with pytest.raises(InvalidArgumentError, match=r"`maps` must be finite heatmaps.*1 of 3 are not: index 2"):
        getattr(explain, metric)(model, x, maps)
