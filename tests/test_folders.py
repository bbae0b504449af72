"""visionkit.data.folder_splits: the one way recipes read the splits of an image folder."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from visionkit import data
from visionkit.errors import DataNotFoundError, InvalidArgumentError, VisionkitError


def _tree(root, counts):
    """``root/<class>/<i>.png``: tiny 8x8 images, ``counts`` images per class."""
    rng = np.random.default_rng(0)
    for cls, n in counts.items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(root / cls / f"{i:02d}.png")
    return root


def _labels(ds):
    return np.concatenate([y.numpy() for _, y in ds])


def test_class_tree_holds_out_validation(tmp_path):
    root = _tree(tmp_path / "ds", {"cat": 5, "dog": 5})
    splits = data.folder_splits(root, image_size=4, batch_size=3, validation_split=0.2)
    assert isinstance(splits, data.FolderSplits)
    assert splits.class_names == ("cat", "dog") and splits.label_mode == "binary"
    assert splits.directories == {"train": root}
    assert splits.test is None
    assert len(splits.train.file_paths) == 8 and len(splits.validation.file_paths) == 2
    assert not set(splits.train.file_paths) & set(splits.validation.file_paths)
    x, y = next(iter(splits.train))
    assert x.shape == (3, 4, 4, 3) and x.dtype == np.float32
    with pytest.raises(dataclasses.FrozenInstanceError):
        splits.train = None


def test_split_folders(tmp_path):
    root = tmp_path / "ds"
    for split, n in (("train", 4), ("validation", 2), ("test", 3)):
        _tree(root / split, {"a": n, "b": n, "c": n})
    splits = data.folder_splits(root, image_size=4, batch_size=4, validation_split=0.5)
    assert splits.directories == {"train": root / "train", "validation": root / "validation", "test": root / "test"}
    assert list(splits.directories) == ["train", "validation", "test"]
    # validation_split is ignored when there is a validation folder
    assert [len(d.file_paths) for d in (splits.train, splits.validation, splits.test)] == [12, 6, 9]
    assert splits.label_mode == "int" and splits.class_names == ("a", "b", "c")
    # validation and test are not shuffled: every epoch reads them in `file_paths` order
    expected = [splits.class_names.index(Path(f).parent.name) for f in splits.test.file_paths]
    assert _labels(splits.test).tolist() == _labels(splits.test).tolist() == expected


def test_train_folder_alone_gets_a_held_out_split(tmp_path):
    root = tmp_path / "ds"
    _tree(root / "train", {"a": 5, "b": 5})
    _tree(root / "test", {"a": 1, "b": 1})
    splits = data.folder_splits(root, image_size=4, validation_split=0.2)
    assert splits.directories == {"train": root / "train", "test": root / "test"}
    assert len(splits.train.file_paths) == 8 and len(splits.validation.file_paths) == 2


def test_val_alias(tmp_path):
    root = tmp_path / "ds"
    _tree(root / "train", {"a": 3, "b": 3})
    _tree(root / "val", {"a": 1, "b": 1})
    splits = data.folder_splits(root, image_size=4)
    assert splits.directories == {"train": root / "train", "validation": root / "val"}
    assert len(splits.validation.file_paths) == 2 and splits.test is None


def test_both_validation_aliases_is_an_error(tmp_path):
    root = tmp_path / "ds"
    for split in ("train", "validation", "val"):
        _tree(root / split, {"a": 2, "b": 2})
    with pytest.raises(InvalidArgumentError, match=r"`validation/` or `val/`.*has both"):
        data.folder_splits(root, image_size=4)


def test_split_folders_without_train(tmp_path):
    root = tmp_path / "ds"
    _tree(root / "val", {"a": 2, "b": 2})
    _tree(root / "test", {"a": 2, "b": 2})
    with pytest.raises(InvalidArgumentError, match="train/"):
        data.folder_splits(root, image_size=4)


@pytest.mark.parametrize(
    ("counts", "label_mode", "resolved", "shape", "dtype"),
    [
        ({"a": 3, "b": 3}, "auto", "binary", (6, 1), np.float32),
        ({"a": 2, "b": 2, "c": 2}, "auto", "int", (6,), np.int32),
        ({"a": 3, "b": 3}, "int", "int", (6,), np.int32),
        ({"a": 3, "b": 3}, "binary", "binary", (6, 1), np.float32),
        ({"a": 2, "b": 2, "c": 2}, "categorical", "categorical", (6, 3), np.float32),
    ],
)
def test_label_modes(tmp_path, counts, label_mode, resolved, shape, dtype):
    root = _tree(tmp_path / "ds", counts)
    splits = data.folder_splits(root, image_size=4, batch_size=6, validation_split=0, label_mode=label_mode)
    assert splits.label_mode == resolved
    (_, y), = list(splits.train)
    assert y.shape == shape and y.dtype == dtype
    if resolved == "binary":
        assert sorted(y.numpy().ravel().tolist()) == [0.0] * 3 + [1.0] * 3


def test_binary_needs_two_classes(tmp_path):
    root = _tree(tmp_path / "ds", {"a": 2, "b": 2, "c": 2})
    with pytest.raises(InvalidArgumentError, match="exactly 2 classes"):
        data.folder_splits(root, image_size=4, label_mode="binary")


def test_class_mismatch_names_the_folder(tmp_path):
    root = tmp_path / "ds"
    _tree(root / "train", {"a": 2, "b": 2})
    _tree(root / "validation", {"a": 1, "c": 1})
    with pytest.raises(InvalidArgumentError) as info:
        data.folder_splits(root, image_size=4)
    msg = str(info.value)
    assert str(root / "validation") in msg and "['a', 'c']" in msg and "['a', 'b']" in msg


def test_test_directory_mismatch_names_the_argument(tmp_path):
    root = _tree(tmp_path / "ds", {"a": 3, "b": 3})
    other = _tree(tmp_path / "other", {"a": 1, "b": 1, "z": 1})
    with pytest.raises(InvalidArgumentError, match=r"test_directory=.*other") as info:
        data.folder_splits(root, image_size=4, test_directory=other)
    assert "['a', 'b', 'z']" in str(info.value)


@pytest.mark.parametrize("counts", [{"only": 3}, {}])
def test_fewer_than_two_classes(tmp_path, counts):
    root = _tree(tmp_path / "ds", counts)
    root.mkdir(exist_ok=True)
    with pytest.raises(InvalidArgumentError, match=re.escape(str(root))) as info:
        data.folder_splits(root, image_size=4)
    if counts:
        assert "at least 2 class" in str(info.value) and "['only']" in str(info.value)


def test_validation_split_zero(tmp_path):
    root = _tree(tmp_path / "ds", {"a": 3, "b": 3})
    splits = data.folder_splits(root, image_size=4, validation_split=0)
    assert splits.validation is None and len(splits.train.file_paths) == 6
    assert data.folder_splits(root, image_size=4, validation_split=None).validation is None


def test_explicit_test_directory_overrides(tmp_path):
    root = tmp_path / "ds"
    _tree(root / "train", {"a": 3, "b": 3})
    _tree(root / "test", {"a": 1, "b": 1})
    extra = _tree(tmp_path / "extra", {"a": 2, "b": 2})
    splits = data.folder_splits(root, image_size=4, test_directory=extra)
    assert splits.directories["test"] == extra and len(splits.test.file_paths) == 4
    plain = _tree(tmp_path / "plain", {"a": 3, "b": 3})
    assert data.folder_splits(plain, image_size=4, test_directory=extra).directories == {"train": plain, "test": extra}


def test_split_is_deterministic(tmp_path):
    root = _tree(tmp_path / "ds", {"a": 10, "b": 10})
    first = data.folder_splits(root, image_size=4, validation_split=0.25)
    second = data.folder_splits(root, image_size=4, validation_split=0.25)
    assert first.validation.file_paths == second.validation.file_paths
    assert sorted(first.train.file_paths) == sorted(second.train.file_paths)
    seeded = data.folder_splits(root, image_size=4, validation_split=0.25, seed=7)
    assert seeded.validation.file_paths == data.folder_splits(root, image_size=4, validation_split=0.25, seed=7).validation.file_paths
    assert set(seeded.validation.file_paths) != set(first.validation.file_paths)
    # the validation split is read in a fixed order every epoch
    assert _labels(first.validation).tolist() == _labels(first.validation).tolist()


def test_missing_folders(tmp_path):
    with pytest.raises(DataNotFoundError, match="nowhere"):
        data.folder_splits(tmp_path / "nowhere")
    root = _tree(tmp_path / "ds", {"a": 2, "b": 2})
    with pytest.raises(DataNotFoundError, match=r"gone.*test_directory"):
        data.folder_splits(root, test_directory=tmp_path / "gone")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"validation_split": 1.0}, "validation_split"),
        ({"validation_split": -0.1}, "validation_split"),
        ({"label_mode": "sparse"}, "label_mode"),
        ({"batch_size": 0}, "batch_size"),
        ({"image_size": (0, 4)}, "image_size"),
        ({"on_error": "ignore"}, "on_error"),
        ({"seed": -1}, "seed"),
    ],
)
def test_argument_errors(tmp_path, kwargs, match):
    root = _tree(tmp_path / "ds", {"a": 2, "b": 2})
    with pytest.raises(InvalidArgumentError, match=match) as info:
        data.folder_splits(root, **kwargs)
    assert isinstance(info.value, VisionkitError) and "Received:" in str(info.value)


def test_training_split_is_reshuffled_each_epoch(tmp_path):
    root = _tree(tmp_path / "ds", {"a": 10, "b": 10})
    splits = data.folder_splits(root, image_size=2, batch_size=20, validation_split=0, seed=1)
    epochs = [np.concatenate([x.numpy().reshape(len(x), -1)[:, 0] for x, _ in splits.train]) for _ in range(3)]
    assert not (np.array_equal(epochs[0], epochs[1]) and np.array_equal(epochs[1], epochs[2]))
    assert sorted(epochs[0].tolist()) == sorted(epochs[1].tolist())


def _record_progress(monkeypatch, module, name):
    """Wrap ``module.name`` so that each call's ``progress`` argument is recorded; return the record."""
    seen = []
    real = getattr(module, name)

    def recording(*args, **kwargs):
        seen.append(kwargs.get("progress"))
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, recording)
    return seen


@pytest.mark.parametrize("progress", [True, False])
def test_progress_reaches_every_split(tmp_path, monkeypatch, progress):
    from visionkit.data import _splits

    seen = _record_progress(monkeypatch, _splits, "image_folder")
    root = _tree(tmp_path / "ds", {"cat": 4, "dog": 4})
    _tree(root.parent / "test", {"cat": 2, "dog": 2})
    data.folder_splits(root, image_size=4, batch_size=2, test_directory=root.parent / "test", progress=progress)
    assert seen == [progress, progress]  # train with validation, then test


def test_folder_recipes_pass_progress_to_the_reader(monkeypatch):
    from visionkit import convnets

    seen = _record_progress(monkeypatch, data, "folder_splits")
    convnets.train_image_folder(sample=True, image_size=48, epochs=1, progress=False)
    assert seen == [False]
