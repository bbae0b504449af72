"""Tests of the convnet visualisations in visionkit.visualize: activations,
plot_activations, filter_pattern, filter_grid, image_grid, and their CLI."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from visionkit import cli
from visionkit._viz_features import _gradient_ascent, _standardise_tile
from visionkit.errors import InvalidArgumentError
from visionkit.visualize import (
    activations,
    filter_grid,
    filter_pattern,
    image_grid,
    plot_activations,
)


@pytest.fixture(scope="module")
def model():
    """A Sequential with a nested functional base (and dead channels in 'dead')."""
    keras.utils.set_random_seed(0)
    b_in = keras.Input((20, 20, 3))
    b = keras.layers.Conv2D(6, 3, activation="relu", name="b1")(b_in)
    b = keras.layers.MaxPooling2D(name="bpool")(b)
    base = keras.Model(b_in, b, name="base")
    m = keras.Sequential(
        [
            keras.Input((20, 20, 3)),
            base,
            keras.layers.Conv2D(12, 3, activation="relu", name="dead"),
            keras.layers.AveragePooling2D(2, name="avg"),
            keras.layers.Flatten(),
            keras.layers.Dense(3, activation="softmax"),
        ],
        name="viz",
    )
    dead = m.get_layer("dead")
    kernel, bias = dead.get_weights()
    kernel[..., :4] = 0.0  # channels 0-3 are constant (dead)
    bias[:4] = 0.0
    dead.set_weights([kernel, bias])
    return m


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(0).uniform(0, 255, (20, 20, 3)).astype("float32")


def test_activations_default_layers_include_nested(model, image):
    acts = activations(model, image)
    assert list(acts) == ["base/b1", "base/bpool", "dead", "avg"]
    assert acts["base/b1"].shape == (18, 18, 6)
    assert acts["dead"].shape == (7, 7, 12) and acts["dead"].dtype == np.float32
    # equal to running the layers by hand
    base = model.layers[0]
    np.testing.assert_allclose(acts["base/bpool"], np.asarray(base(image[None]))[0], rtol=1e-4, atol=1e-4)
    batch = activations(model, np.stack([image, image]), layers=["dead"])
    assert list(batch) == ["dead"] and batch["dead"].shape == (2, 7, 7, 12)
    np.testing.assert_allclose(batch["dead"][1], acts["dead"], rtol=1e-4, atol=1e-4)


def test_activations_errors(model, image):
    with pytest.raises(InvalidArgumentError, match=r"base/b1.*Received: layers='nope'"):
        activations(model, image, layers=["nope"])
    with pytest.raises(InvalidArgumentError, match="layers"):
        activations(model, image, layers="dead")
    with pytest.raises(InvalidArgumentError, match="image"):
        activations(model, np.zeros((5, 5)))


def test_plot_activations_handles_dead_channels(model, image):
    acts = activations(model, image)
    assert np.ptp(acts["dead"][..., :4]) == 0
    figs = plot_activations(acts, images_per_row=5)
    assert list(figs) == list(acts)
    grid = figs["dead"].axes[0].images[0].get_array()
    assert np.isfinite(np.asarray(grid, dtype=float)).all()
    assert np.asarray(grid).dtype == np.uint8
    # 12 channels, 5 per row -> 3 rows of 7-pixel tiles
    assert grid.shape[1] == 5 * 7 + 4 * 1 and grid.shape[0] == 3 * 7 + 2 * 1
    # a dead tile is blank, a live one standardised around 128
    assert (_standardise_tile(np.full((4, 4), 3.0)) == 0).all()
    live = _standardise_tile(np.arange(16.0).reshape(4, 4))
    assert abs(float(live.mean()) - 128) < 2
    figs["dead"].savefig(__import__("io").BytesIO(), format="png")
    with pytest.raises(InvalidArgumentError, match="acts"):
        plot_activations({})


def test_filter_pattern_raises_activation(model):
    _, start, end = _gradient_ascent(model, "dead", [5, 6, 7], size=None, steps=30, step_size=1.0, seed=0,
                                     value_range=(0.0, 255.0))
    assert (end > start + 1.0).all() and (end > 3 * np.maximum(start, 0.1)).all()
    img = filter_pattern(model, "base/b1", 2, seed=1, steps=10)
    assert img.shape == (20, 20, 3) and img.dtype == np.uint8
    np.testing.assert_array_equal(img, filter_pattern(model, "base/b1", 2, seed=1, steps=10))
    with pytest.raises(InvalidArgumentError, match="filter_index"):
        filter_pattern(model, "base/b1", 6)
    with pytest.raises(InvalidArgumentError, match="size"):
        filter_pattern(model, "base/b1", 0, size=32)
    with pytest.raises(InvalidArgumentError, match="layer"):
        filter_pattern(model, "nope", 0)


def test_filter_pattern_any_size_model():
    keras.utils.set_random_seed(1)
    m = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(4, 3, name="c")])
    assert filter_pattern(m, "c", 1, size=24, steps=3).shape == (24, 24, 3)
    assert filter_pattern(m, "c", 1, steps=1).shape == (150, 150, 3)


def test_filter_grid(model):
    grid = filter_grid(model, "dead", size=None, steps=5, margin=2, progress=False)
    # 12 filters (fewer than 64) -> 4 columns, 3 rows of 20-pixel tiles
    assert grid.shape == (3 * 20 + 2 * 2, 4 * 20 + 3 * 2, 3) and grid.dtype == np.uint8
    chosen = filter_grid(model, "dead", filters=[4, 5], steps=5, margin=0, batch_size=1, progress=False)
    assert chosen.shape == (20, 40, 3)
    with pytest.raises(InvalidArgumentError, match="filters"):
        filter_grid(model, "dead", filters=[12], progress=False)


def test_image_grid(image):
    fig = image_grid([image, image / 255.0, np.zeros((10, 10))], titles=["a", "b", "c"])
    titled = [ax.get_title() for ax in fig.axes]
    assert titled[:3] == ["a", "b", "c"] and len(fig.axes) == 4
    fig = image_grid(np.zeros((6, 8, 8, 1), "uint8"), ncols=3)
    assert len(fig.axes) == 6
    with pytest.raises(InvalidArgumentError, match="titles"):
        image_grid([image], titles=["a", "b"])
    with pytest.raises(InvalidArgumentError, match="images"):
        image_grid([])


def test_cli_filters_and_activations(tmp_path, model, image, capsys):
    from PIL import Image

    model.save(tmp_path / "m.keras")
    out = tmp_path / "grid.png"
    assert cli.main(["filters", str(tmp_path / "m.keras"), "base/b1", "-o", str(out), "--steps", "3", "-q"]) == 0
    assert np.asarray(Image.open(out)).shape == (2 * 20 + 5, 3 * 20 + 2 * 5, 3)
    img = tmp_path / "img.png"
    Image.fromarray(image.astype("uint8")).save(img)
    assert cli.main(["activations", str(tmp_path / "m.keras"), str(img), "-o", str(tmp_path / "acts")]) == 0
    assert sorted(p.name for p in (tmp_path / "acts").iterdir()) == [
        "00_base_b1.png", "01_base_bpool.png", "02_dead.png", "03_avg.png"
    ]
    assert cli.main(["filters", str(tmp_path / "missing.keras"), "x"]) == 1  # a missing input: exit 1
    assert "missing.keras" in capsys.readouterr().err


# ----------------------------------------------------------------------------- errors at the edges (#19)


@pytest.mark.parametrize("image", [np.zeros((5, 5, 3)), np.zeros((0, 20, 20, 3)), np.zeros((2, 20, 20, 1))],
                         ids=["too-small", "empty-batch", "one-channel"])
def test_activations_refuse_images_that_do_not_fit_the_model(model, image):
    with pytest.raises(InvalidArgumentError, match=r"`image`.*\(N, 20, 20, 3\).*'viz'.*Received: image="):
        activations(model, image, layers=["dead"])


def test_filter_pattern_on_a_model_without_4d_layers_says_so():
    dense = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="d")], name="flat_model")
    with pytest.raises(InvalidArgumentError, match=r"4-D output.*'flat_model' has none.*Received: layer='d'"):
        filter_pattern(dense, "d", 0, steps=1)
