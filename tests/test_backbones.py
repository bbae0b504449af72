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
        if path.name in ("_backbones.py", "backbones.py", "_transfer_train.py"):
            continue  # the table, its front (docstring), and from_layer's default (owned by another change)
        for i, line in enumerate(path.read_text().splitlines(), 1):
            stripped = line.lstrip()
            if stripped.startswith((">>>", "...", "#")) or "``" in line:
                continue  # doctests build tiny models of their own with such names; prose examples
            if pattern.search(line) and "keras.layers." not in line and "name=" not in line:
                offenders.append(f"{path.relative_to(repo_root)}:{i}: {stripped}")
    assert not offenders, "\n".join(offenders)
