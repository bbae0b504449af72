"""Files are data, never trusted: edited model metadata, colliding output names, names drawn as
mathtext, and size bombs (#19). Every test builds its bad input itself."""

from __future__ import annotations

import json
import zipfile

import keras
import numpy as np
import pytest
from matplotlib.cbook import is_math_text
from PIL import Image

from visionkit import data, training
from visionkit.errors import ImageReadError, InvalidArgumentError

# ----------------------------------------------------------------------------- class names from a file


@pytest.fixture(scope="module")
def named_model(tmp_path_factory):
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(2, 3, name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = training.with_class_names(keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x)),
                                      ["cat", "dog", "bill_$5_to_$10"])
    path = tmp_path_factory.mktemp("named") / "m.keras"
    model.save(path)
    return path


def _edit_config(src, dest, edit):
    """Copy the .keras zip ``src`` to ``dest`` with ``edit(config)`` applied to its config.json."""
    with zipfile.ZipFile(src) as z:
        items = [(i, z.read(i)) for i in z.infolist()]
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as out:
        for info, blob in items:
            if info.filename == "config.json":
                config = json.loads(blob)
                edit(config)
                blob = json.dumps(config).encode()
            out.writestr(info.filename, blob)
    return dest


def _set_names(value):
    def edit(node):
        if isinstance(node, dict):
            if node.get("class_name") == "ClassNames":
                node["config"]["class_names"] = value
            for v in node.values():
                edit(v)
        elif isinstance(node, list):
            for v in node:
                edit(v)
    return edit


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("cat", "non-empty list of strings"),
        (None, "non-empty list of strings"),
        ([], "non-empty list of strings"),
        (["a", "b"], "3 output unit.*3 names"),
        (["a", "b", "c", "d"], "3 output unit.*3 names"),
        (["a", "a", "b"], r"distinct.*\['a'\] repeated"),
        ([1, 2, 3], "must all be strings"),
        (["a", None, "b"], "must all be strings"),
    ],
    ids=["string", "none", "empty", "too-few", "too-many", "duplicates", "numbers", "none-item"],
)
def test_edited_class_names_are_refused_naming_the_file(named_model, tmp_path, value, match):
    bad = _edit_config(named_model, tmp_path / "edited.keras", _set_names(value))
    with pytest.raises(InvalidArgumentError, match=match) as info:
        training.load_model(bad)
    assert str(bad) in str(info.value)


def test_unedited_class_names_load(named_model):
    assert training.class_names(training.load_model(named_model)) == ["cat", "dog", "bill_$5_to_$10"]


def test_class_names_checks_the_layer_it_reads():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, training.ClassNames(["a", "b", "c"])(keras.layers.Dense(3)(inputs)))
    model.layers[-1].class_names = ["a", "b"]  # metadata changed after the model was built
    with pytest.raises(InvalidArgumentError, match="3 output unit"):
        training.class_names(model)


# ----------------------------------------------------------------------------- .keras zip bomb


def test_keras_config_that_inflates_past_the_cap_is_refused_before_keras(named_model, tmp_path, monkeypatch):
    def pad(config):
        config["padding"] = " " * (training.MAX_MODEL_CONFIG_BYTES + 1)

    bad = _edit_config(named_model, tmp_path / "bomb.keras", pad)
    assert bad.stat().st_size < 2**20  # small on disk
    called = []
    monkeypatch.setattr(keras.saving, "load_model", lambda *a, **k: called.append(a))
    with pytest.raises(InvalidArgumentError, match=r"member 'config\.json'.*MAX_MODEL_CONFIG_BYTES") as info:
        training.load_model(bad)
    assert str(bad) in str(info.value) and not called


def test_keras_member_that_inflates_too_much_is_refused(named_model, tmp_path):
    bad = tmp_path / "ratio.keras"
    with zipfile.ZipFile(named_model) as z, zipfile.ZipFile(bad, "w", zipfile.ZIP_DEFLATED) as out:
        for info in z.infolist():
            out.writestr(info.filename, z.read(info) if info.filename != "model.weights.h5" else bytes(64 << 20))
    with pytest.raises(InvalidArgumentError, match=r"member 'model\.weights\.h5' inflates .*MAX_MODEL_COMPRESSION_RATIO"):
        training.load_model(bad)


# ----------------------------------------------------------------------------- CLI outputs never overwrite each other


def test_gradcam_gives_every_input_its_own_output(named_model, tmp_path):
    from visionkit.cli import main

    rng = np.random.default_rng(0)
    inputs = [tmp_path / "a" / "cat.png", tmp_path / "b" / "cat.png", tmp_path / "a" / "cat.jpg"]
    for p in inputs:
        p.parent.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(p)
    out = tmp_path / "out"
    assert main(["gradcam", str(named_model), *map(str, inputs), "-o", str(out)]) == 0
    written = sorted(p.name for p in out.iterdir())
    assert len(written) == 3, written


def test_output_names_are_unique():
    from visionkit._cli._common import output_names

    names = output_names(["a/cat.png", "b/cat.png", "a/cat.jpg", "dog.png", "dog.png", "x/Dog.PNG"], "_g.png")
    assert len({n.lower() for n in names}) == 6, names
    assert output_names(["x/cat.png", "y/dog.jpg"], "_g.png") == ["cat_g.png", "dog_g.png"]  # unchanged when unique
    # a number added to one input's name never lands on another input's own name
    names = output_names(["cat.png", "cat_png_2.png", "b/cat_png.jpg", "cat.jpg"], "_g.png")
    assert len({n.lower() for n in names}) == 4, names
    assert names[1] == "cat_png_2_g.png", names


# ----------------------------------------------------------------------------- names drawn literally


def test_class_names_with_dollars_draw_literally(named_model, tmp_path):
    from visionkit.interpret import interpret

    model = training.load_model(named_model)
    x = np.random.default_rng(0).random((6, 8, 8, 3)).astype("float32")
    y = np.array([0, 1, 2, 0, 1, 2])
    result = interpret(model, (x, y), class_names=training.class_names(model), keep=4)
    matrix = result.plot_confusion_matrix()
    matrix.savefig(tmp_path / "matrix.png")  # as mathtext, `$5_to_$` fails to parse
    assert not any(is_math_text(t.get_text()) for t in matrix.axes[0].get_xticklabels())
    result.plot_top_losses(2, heatmaps=False).savefig(tmp_path / "top.png")


def test_image_grid_titles_draw_literally(tmp_path):
    from visionkit.visualize import image_grid

    fig = image_grid(np.zeros((2, 8, 8), "uint8"), titles=["bill_$5_to_$10", "x^2"])
    fig.savefig(tmp_path / "g.png")  # as mathtext, `$5_to_$` fails to parse
    assert not is_math_text(fig.axes[0].get_title())


# ----------------------------------------------------------------------------- images too large to allocate


@pytest.mark.parametrize("kwargs", [{"max_dim": 100_000}, {"size": (60_000, 60_000)}])
def test_load_image_refuses_outputs_past_the_pixel_cap(tmp_path, kwargs):
    file = tmp_path / "small.png"
    Image.new("RGB", (40, 30)).save(file)
    with pytest.raises(InvalidArgumentError, match=r"MAX_IMAGE_PIXELS = 134,217,728 pixels"):
        data.load_image(file, **kwargs)


def test_style_transfer_refuses_a_huge_max_dim(tmp_path):
    from visionkit.style import style_transfer

    img = np.zeros((30, 40, 3), np.float32)
    with pytest.raises(InvalidArgumentError, match="MAX_IMAGE_PIXELS"):
        style_transfer(img, img, max_dim=100_000, steps=1, weights=None, progress=False)


def test_decompression_bomb_header_is_an_image_read_error(tmp_path, monkeypatch):
    file = tmp_path / "bomb.png"
    Image.new("L", (200, 200)).save(file)  # tiny on disk; its header declares 40,000 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    with pytest.raises(ImageReadError, match="too large to decode safely") as info:
        data.load_image(file)
    assert str(file) in str(info.value)
