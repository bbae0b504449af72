"""The per-backbone layer presets (#21): every name exists in the model Keras builds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from visionkit import backbones
from visionkit.errors import InvalidArgumentError

_SIZE = {"inception_v3": 96, "xception": 96}  # the others build at 64 px


@pytest.mark.parametrize("name", sorted(backbones.PRESETS))
def test_every_preset_layer_exists_with_a_4d_output(name):
    import keras

    record = backbones.PRESETS[name]
    size = _SIZE.get(name, 64)
    keras.utils.clear_session(free_memory=False)
    model = record.build(weights=None, input_shape=(size, size, 3))
    assert record.matches(model), model.name
    assert backbones.find_preset(model) is record
    names = {layer.name: layer for layer in model.layers}
    missing = [n for n in record.layer_names if n not in names]
    assert not missing, f"{name}: {missing}"
    for n in record.layer_names:
        assert len(names[n].output.shape) == 4, (name, n)
    lo, hi = record.input_range
    assert lo < hi
    assert callable(record.preprocess_input())


def test_required_backbones_and_aliases():
    for name in ("vgg16", "vgg19", "inceptionv3", "resnet50", "mobilenetv2", "efficientnetb0", "convnext_tiny"):
        assert backbones.preset(name).name in backbones.PRESETS
    assert backbones.preset("VGG16") is backbones.PRESETS["vgg16"]
    with pytest.raises(InvalidArgumentError, match="backbone.*Received: backbone='vgg17'"):
        backbones.preset("vgg17")


def test_records_are_frozen():
    import dataclasses

    with pytest.raises(dataclasses.FrozenInstanceError):
        backbones.PRESETS["vgg16"].cam_layer = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        backbones.PRESETS["vgg16"] = backbones.PRESETS["vgg19"]  # type: ignore[index]


def test_the_table_is_the_one_place_layer_names_live(repo_root: Path):
    """No module of the package but _backbones.py spells a backbone's layer names."""
    pattern = re.compile(r"[\"'](block\d+_(conv|pool|sepconv)\w*|mixed\d+\w*|conv\d_block\d+\w*|conv_pw_\d+\w*|"
                         r"Conv_?1\w*|out_relu|top_(conv|activation)|block_\d+_\w+|convnext_\w+_(stage|stem)\w*)[\"']")
    offenders = []
    for path in sorted((repo_root / "visionkit").rglob("*.py")):
        if path.name in ("_backbones.py", "backbones.py"):
            continue  # the table and its front (docstring)
        for i, line in enumerate(path.read_text().splitlines(), 1):
            stripped = line.lstrip()
            if stripped.startswith((">>>", "...", "#")) or "``" in line:
                continue  # doctests build tiny models of their own with such names; prose examples
            if pattern.search(line) and "keras.layers." not in line and "name=" not in line:
                offenders.append(f"{path.relative_to(repo_root)}:{i}: {stripped}")
    assert not offenders, "\n".join(offenders)


# ------------------------------------------------------------------ the recipes read the table


def test_grad_cam_defaults_to_the_presets_layer_of_a_known_backbone():
    """Before #21 the default was the last 4-D layer: ``block5_pool`` for VGG16."""
    import keras

    from visionkit.explain._cam import resolve_layer

    base = keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
    model = keras.Sequential([keras.Input((32, 32, 3)), base, keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(2)])
    assert resolve_layer(model, None) == "vgg16/block5_conv3"
    assert resolve_layer(base, None) == "block5_conv3"
    plain = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3, name="c"),
                              keras.layers.MaxPooling2D(name="p"), keras.layers.Flatten(), keras.layers.Dense(2)])
    assert resolve_layer(plain, None) == "p"  # no known backbone: the last 4-D layer, as before


def test_style_transfer_backbone_vgg16_and_a_non_vgg_backbone():
    import numpy as np

    from visionkit.data import sample_image
    from visionkit.style import style_extractor, style_transfer

    photo, painting = sample_image("photo"), sample_image("painting")
    out = style_transfer(photo, painting, backbone="vgg16", max_dim=32, steps=1, weights=None, progress=False)
    assert out.shape[1] == 32 and out.dtype == np.uint8
    assert sorted(style_extractor(backbone="vgg16", weights=None).output) == sorted(
        backbones.preset("vgg16").style_layers + backbones.preset("vgg16").content_layers)
    with pytest.raises(InvalidArgumentError, match="style_layers.*block3_conv4"):
        style_transfer(photo, painting, backbone="vgg16", style_layers=["block3_conv4"], weights=None)
    out = style_transfer(photo, painting, backbone="mobilenet_v2", max_dim=64, steps=1, weights=None, progress=False)
    assert out.shape[1] == 64 and out.dtype == np.uint8


def test_deep_dream_backbone():
    import keras

    from visionkit.data import sample_image
    from visionkit.dream import deep_dream

    img = sample_image("photo", max_dim=64)
    out = deep_dream(img, backbone="vgg16", weights=None, octaves=1, steps=1, seed=0, progress=False)
    assert out.shape == img.shape
    model = keras.applications.VGG16(weights=None, include_top=False)
    with pytest.raises(InvalidArgumentError, match="backbone"):
        deep_dream(img, model=model, backbone="vgg16", progress=False)
    with pytest.raises(InvalidArgumentError, match="backbone.*Received: backbone='vgg99'"):
        deep_dream(img, backbone="vgg99", weights=None, progress=False)


def test_cli_filters_and_style_take_backbone(tmp_path):
    from visionkit.cli import main

    out = tmp_path / "f.png"
    assert main(["filters", "--backbone", "vgg16", "block1_conv1", "--weights", "none", "--filters", "2",
                 "--size", "32", "--steps", "1", "-o", str(out), "-q"]) == 0
    assert out.is_file()
    with pytest.raises(SystemExit) as exc:
        main(["filters", "-q"])  # neither MODEL LAYER nor --backbone
    assert exc.value.code == 2
    out = tmp_path / "s.png"
    from visionkit.data import sample_image, save_image

    save_image(tmp_path / "c.png", sample_image("photo", max_dim=48))
    save_image(tmp_path / "p.png", sample_image("painting", max_dim=48))
    assert main(["style", str(tmp_path / "c.png"), str(tmp_path / "p.png"), "-o", str(out), "--backbone", "vgg16",
                 "--weights", "none", "--steps", "1", "--max-dim", "32", "-q"]) == 0
    assert out.is_file()


def test_cli_activations_takes_backbone(tmp_path):
    from visionkit.cli import main
    from visionkit.data import sample_image, save_image

    save_image(tmp_path / "c.png", sample_image("photo", max_dim=48))
    out = tmp_path / "acts"
    assert main(["activations", "--backbone", "vgg16", str(tmp_path / "c.png"), "--weights", "none",
                 "--layers", "block1_conv1", "-o", str(out)]) == 0
    assert [p.name for p in out.iterdir()] == ["00_block1_conv1.png"]
    with pytest.raises(SystemExit) as exc:
        main(["activations", str(tmp_path / "c.png")])  # neither MODEL nor --backbone
    assert exc.value.code == 2
