"""The predict, export and report commands (issue #23)."""

from __future__ import annotations

import csv
import json

import pytest
from ship_models import image_folder, tiny_model

from visionkit import calibration as C
from visionkit.cli import main


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "model.keras"
    C.with_temperature(tiny_model("softmax", steps=40), 1.25).save(path)
    return path


def test_cli_export_then_predict_on_the_export(saved, tmp_path, capsys):
    folder = image_folder(tmp_path / "imgs", 9)
    assert main(["export", str(saved), "-o", str(tmp_path / "exp"), "--images", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "parity" in out and "ok" in out
    meta = json.loads((tmp_path / "exp" / "metadata.json").read_text())
    assert meta["temperature"] == 1.25 and meta["parity"]["images"] == 9
    assert main(["predict", str(tmp_path / "exp"), str(folder), "-o", str(tmp_path / "p.csv"), "-q",
                 "--top-k", "1"]) == 0
    with open(tmp_path / "p.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 9 and set(rows[0]) == {"path", "class_1", "probability_1"}


def test_cli_predict_keras_file_with_glob(saved, tmp_path):
    folder = image_folder(tmp_path / "imgs", 6)
    assert main(["predict", str(saved), str(folder / "*" / "*.png"), "-o", str(tmp_path / "p.csv"), "-q"]) == 0
    with open(tmp_path / "p.csv", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == 6


def test_cli_report_writes_json_markdown_and_figures(saved, tmp_path, capsys):
    folder = image_folder(tmp_path / "test", 24)
    code = main(["report", str(saved), str(folder), "-o", str(tmp_path / "rep"), "-q",
                 "--corruptions", "contrast,pixelate", "--severities", "1,5"])
    assert code == 0
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert report["data"]["examples"] == 24
    assert 0 <= report["accuracy"] <= 1
    assert report["calibration"]["fitted_on"] == "carried by the model"
    assert set(report["robustness"]["accuracy"]) == {"contrast", "pixelate"}
    assert report["model"]["class_names"] == ["red", "green", "blue"]
    assert report["versions"]["keras"]
    page = (tmp_path / "rep" / "report.md").read_text()
    assert "## Model card" in page and "robustness.png" in page
    for name in ("confusion.png", "reliability.png", "robustness.png"):
        assert (tmp_path / "rep" / name).stat().st_size > 0
    assert "accuracy" in capsys.readouterr().out


@pytest.mark.parametrize(("limit", "expected"), [(None, 24), ("10", 10), ("all", 24)])
def test_cli_report_robustness_limit(saved, tmp_path, limit, expected, monkeypatch):
    from visionkit import report as R

    # the library's default, made small enough to see the command leave it in place
    monkeypatch.setattr(R.model_report, "__kwdefaults__", {**R.model_report.__kwdefaults__, "robustness_examples": 16})
    folder = image_folder(tmp_path / "test", 24)
    args = ["report", str(saved), str(folder), "-o", str(tmp_path / "rep"), "-q", "--corruptions", "contrast",
            "--severities", "5"]
    if limit is not None:
        args += ["--robustness-limit", limit]
    assert main(args) == 0
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert report["robustness"]["examples"] == (16 if limit is None else expected)
    assert report["data"]["examples"] == 24


def test_model_report_default_robustness_examples_is_documented():
    import inspect

    from visionkit import report as R

    default = inspect.signature(R.model_report).parameters["robustness_examples"].default
    assert default == R.ROBUSTNESS_EXAMPLES == 2000


def test_cli_report_fits_a_temperature_on_half_when_the_model_has_none(tmp_path):
    path = tmp_path / "m.keras"
    tiny_model("logits", steps=20).save(path)
    folder = image_folder(tmp_path / "test", 24)
    assert main(["report", str(path), str(folder), "-o", str(tmp_path / "rep"), "-q", "--corruptions", "none"]) == 0
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert report["calibration"]["fitted_on"].startswith("half of the test data")
    assert report["calibration"]["temperature"] > 0 and report["robustness"] is None


def test_cli_missing_inputs_exit_1(tmp_path, capsys):
    assert main(["predict", str(tmp_path / "nope.keras"), str(tmp_path)]) == 1
    assert "MODEL" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "nope.keras")]) == 1


@pytest.mark.parametrize("training", ["loaded", {"settings": "loaded"}, {"settings": {1: "x"}, "test": None}, [1, 2]])
def test_model_report_takes_any_training_metadata(saved, tmp_path, training):
    from ship_models import colour_images

    from visionkit.report import model_report
    from visionkit.training import load_model

    card = model_report(load_model(saved), colour_images(8, size=16), tmp_path / "rep", corruptions=[],
                        progress=False, metadata={"training": training})
    assert card["training"] == training
    assert "## Model card" in (tmp_path / "rep" / "report.md").read_text()


def test_model_report_robustness_sample_is_not_the_first_images(tmp_path):
    """A folder's images come sorted by class: the robustness sample must not be its first class."""
    import keras
    import numpy as np

    from visionkit.report import model_report

    inputs = keras.Input((16, 16, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    head = keras.layers.Dense(2, activation="softmax", kernel_initializer="zeros",
                              bias_initializer=keras.initializers.Constant([5.0, 0.0]))
    always_first = keras.Model(inputs, head(pooled))  # says class 0 for every image
    x = np.random.default_rng(0).uniform(0, 255, (40, 16, 16, 3)).astype("float32")
    y = np.repeat([0, 1], 20)  # sorted by class
    card = model_report(always_first, (x, y), tmp_path / "rep", corruptions=["contrast"], severities=[1],
                        robustness_examples=10, progress=False)
    assert card["robustness"]["examples"] == 10
    assert 0.0 < card["robustness"]["clean_accuracy"] < 1.0  # both classes drawn (the first 10 would give 1.0)
