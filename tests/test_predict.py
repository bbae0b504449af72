"""Batch prediction over files, folders and globs (issue #23)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from ship_models import image_folder, tiny_model

from visionkit import calibration as C
from visionkit import export as E
from visionkit import predict as P
from visionkit.errors import DataNotFoundError, ImageReadError


@pytest.fixture(scope="module")
def model():
    return tiny_model("logits", steps=40)


@pytest.fixture
def folder(tmp_path):
    return image_folder(tmp_path / "imgs", 12)


def test_predict_csv_on_a_folder(model, folder, tmp_path):
    rows = P.predict_files(model, [folder], output=tmp_path / "p.csv", top_k=2, batch_size=5, progress=False)
    assert len(rows) == 12
    with open(tmp_path / "p.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert list(table[0]) == ["path", "class_1", "probability_1", "class_2", "probability_2"]
    assert [r["path"] for r in table] == [r["path"] for r in rows]
    for r in rows:
        assert r["class_1"] in ("red", "green", "blue")
        assert 1.0 >= r["probability_1"] >= r["probability_2"] >= 0.0
    right = sum(r["class_1"] in r["path"] for r in rows)
    assert right >= 9  # the tiny model learnt the colours


def test_files_folders_and_globs_expand_once_in_order(folder):
    files = P.expand_inputs([folder / "red", str(folder / "*" / "img0*.png"), folder / "red" / "img00.png"])
    assert len(files) == len(set(files))
    assert files[0].parent.name == "red"
    with pytest.raises(DataNotFoundError):
        P.expand_inputs([folder / "nope"])
    with pytest.raises(DataNotFoundError, match="pattern"):
        P.expand_inputs([str(folder / "*.jpg")])


def test_calibrated_probabilities_follow_the_temperature(model, folder):
    plain = P.predict_files(model, folder, top_k=3, progress=False)
    hot = P.predict_files(C.with_temperature(model, 3.0), folder, top_k=3, progress=False)
    assert [r["class_1"] for r in plain] == [r["class_1"] for r in hot]
    assert all(h["probability_1"] <= p["probability_1"] + 1e-9 for p, h in zip(plain, hot))


def test_keras_file_and_exports_give_the_same_predictions(model, folder, tmp_path):
    model.save(tmp_path / "m.keras")
    from_file = P.predict_files(tmp_path / "m.keras", folder, progress=False)
    E.export(model, tmp_path / "sm", verbose=False)
    E.export(model, tmp_path / "lite", format="litert", verbose=False)
    for exported in (tmp_path / "sm", tmp_path / "lite" / "model.tflite"):
        rows = P.predict_files(exported, folder, progress=False)
        assert [r["class_1"] for r in rows] == [r["class_1"] for r in from_file]
        np.testing.assert_allclose([r["probability_1"] for r in rows], [r["probability_1"] for r in from_file],
                                   atol=1e-4)


def test_unreadable_image_raises_or_is_skipped(model, folder):
    (folder / "red" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ImageReadError):
        P.predict_files(model, folder, progress=False)
    with pytest.warns(UserWarning, match="Skipped 1"):
        rows = P.predict_files(model, folder, progress=False, on_error="skip")
    assert len(rows) == 12
