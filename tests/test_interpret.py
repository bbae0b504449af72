"""Tests of visionkit.interpret (the views against hand counts, every label form and head,
predictions computed once) and of the ``visionkit explain`` command end to end."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from visionkit import training
from visionkit.cli import main
from visionkit.errors import InvalidArgumentError
from visionkit.interpret import interpret

# probabilities chosen by hand: the model's input *is* the log-probabilities
PROBS = np.array([
    [0.7, 0.2, 0.1],  # true 0, pred 0
    [0.1, 0.8, 0.1],  # true 0, pred 1
    [0.2, 0.5, 0.3],  # true 0, pred 1
    [0.1, 0.8, 0.1],  # true 1, pred 1
    [0.3, 0.3, 0.4],  # true 1, pred 2
    [0.05, 0.05, 0.9],  # true 2, pred 2
    [0.6, 0.3, 0.1],  # true 2, pred 0
])
LABELS = np.array([0, 0, 0, 1, 1, 2, 2])


def softmax_model():
    return keras.Sequential([keras.Input((3,)), keras.layers.Softmax()], name="given")


def test_views_match_hand_counts():
    result = interpret(softmax_model(), (np.log(PROBS), LABELS), class_names=["cat", "dog", "fox"])
    np.testing.assert_allclose(result.probabilities, PROBS, atol=1e-6)
    cm = result.confusion_matrix()
    np.testing.assert_array_equal(cm, [[1, 2, 0], [0, 1, 1], [1, 0, 1]])
    np.testing.assert_allclose(result.confusion_matrix(normalize="true").sum(axis=1), 1.0)
    np.testing.assert_allclose(result.confusion_matrix(normalize="pred")[:, 1], [2 / 3, 1 / 3, 0])
    assert result.confusion_matrix(normalize="all").sum() == pytest.approx(1.0)
    assert result.most_confused() == [("cat", "dog", 2), ("dog", "fox", 1), ("fox", "cat", 1)]
    assert result.most_confused(min_count=2) == [("cat", "dog", 2)]
    assert result.accuracy == pytest.approx(3 / 7)
    top = result.top_losses(3)
    np.testing.assert_allclose(top.losses, -np.log([0.1, 0.1, 0.2]), atol=1e-6)
    assert set(top.indices[:2]) == {1, 6} and top.indices[2] == 2
    assert top.to_rows()[0]["true"] in ("cat", "fox") and len(top) == 3
    report = result.classification_report()
    cat = report.rows[0]
    assert (cat["precision"], cat["recall"], cat["support"]) == (pytest.approx(1 / 2), pytest.approx(1 / 3), 3)
    assert cat["f1"] == pytest.approx(2 * 0.5 * (1 / 3) / (0.5 + 1 / 3))
    macro = report.rows[-2]
    assert macro["class"] == "macro avg"
    assert macro["recall"] == pytest.approx(np.mean([1 / 3, 1 / 2, 1 / 2]))
    assert report.rows[-1]["support"] == 7 and report.accuracy == pytest.approx(3 / 7)
    assert "| fox |" in str(report) and "accuracy: 0.429" in report.to_markdown()
    fig = result.plot_confusion_matrix()
    assert "1" in [t.get_text() for t in fig.axes[0].texts]


def test_labels_one_hot_binary_datasets_and_logits_agree():
    x = np.log(PROBS)
    ints = interpret(softmax_model(), (x, LABELS), batch_size=2)
    one_hot = interpret(softmax_model(), (x, np.eye(3)[LABELS]))
    ds = tf.data.Dataset.from_tensor_slices((x.astype("float32"), LABELS)).batch(3)
    streamed = interpret(softmax_model(), ds)
    logits = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3, use_bias=False)])
    logits.layers[-1].set_weights([np.eye(3, dtype="float32")])
    from_logits = interpret(logits, (x, LABELS))
    for other in (one_hot, streamed, from_logits):
        np.testing.assert_array_equal(other.confusion_matrix(), ints.confusion_matrix())
        np.testing.assert_allclose(other.losses, ints.losses, atol=1e-5)
    assert ints.class_names == ("0", "1", "2")
    # a one-unit sigmoid head: two classes, (N, 1) float labels
    sig = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, activation="sigmoid", use_bias=False)])
    sig.layers[-1].set_weights([np.ones((1, 1), "float32")])
    z = np.array([[2.0], [-1.0], [0.5], [-3.0]])
    binary = interpret(sig, (z, np.array([[1.0], [1.0], [0.0], [0.0]])))
    np.testing.assert_array_equal(binary.confusion_matrix(), [[1, 1], [1, 1]])
    np.testing.assert_allclose(binary.probabilities[:, 1], 1 / (1 + np.exp(-z[:, 0])), atol=1e-6)


def test_predictions_are_computed_once_and_names_come_from_the_model():
    dense = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3, activation="softmax")])
    named = training.with_class_names(dense, ["a", "b", "c"])
    result = interpret(named, (np.log(PROBS), LABELS))
    assert result.class_names == ("a", "b", "c")
    before = result.confusion_matrix().copy(), result.classification_report().rows
    dense.layers[-1].set_weights([np.zeros((3, 3), "float32"), np.array([9, 0, 0], "float32")])
    np.testing.assert_array_equal(result.confusion_matrix(), before[0])  # not predicted again
    assert result.classification_report().rows == before[1]


def test_top_losses_gallery_has_heatmaps_and_keeps_only_what_it_needs():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((12, 12, 3)), keras.layers.Conv2D(4, 3, activation="relu"),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2, activation="softmax")])
    x = np.random.default_rng(0).random((10, 12, 12, 3), dtype="float32")
    y = np.arange(10) % 2
    result = interpret(model, (x, y), keep=4, batch_size=3)
    assert len(result.kept_images) == 4
    top = result.top_losses(4)
    np.testing.assert_array_equal(result.kept_indices, top.indices)
    np.testing.assert_array_equal(result.kept_images, x[top.indices])
    fig = result.plot_top_losses(4, ncols=2)
    assert len(fig.axes) == 4 and fig.axes[0].get_title().startswith("true: ")
    assert len(result.plot_top_losses(2, heatmaps=False).axes) == 2
    with pytest.raises(InvalidArgumentError, match="keep=5"):
        result.plot_top_losses(5)


def test_interpret_errors():
    model = softmax_model()
    x = np.log(PROBS)
    with pytest.raises(InvalidArgumentError, match="`data`"):
        interpret(model, (x, LABELS[:3]))
    with pytest.raises(InvalidArgumentError, match="`data`"):
        interpret(model, (x, LABELS + 1))  # a label 3 for three classes
    with pytest.raises(InvalidArgumentError, match="`data`"):
        interpret(model, (x, LABELS + 0.5))
    with pytest.raises(InvalidArgumentError, match="`data`"):
        interpret(model, [x, LABELS])
    with pytest.raises(InvalidArgumentError, match="`class_names`"):
        interpret(model, (x, LABELS), class_names=["a", "b"])
    result = interpret(model, (x, LABELS))
    with pytest.raises(InvalidArgumentError, match="`normalize`"):
        result.confusion_matrix(normalize="rows")


# ------------------------------------------------------------------ the command


def _tree(root, classes, n=3, size=14):
    from visionkit.data import save_image

    rng = np.random.default_rng(0)
    for c in classes:
        for i in range(n):
            save_image(root / c / f"{i}.png", (rng.random((size, size, 3)) * 255).astype("uint8"))
    return root


def test_explain_command_writes_every_output(tmp_path, capsys):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((12, 12, 3)), keras.layers.Rescaling(1 / 255),
                              keras.layers.Conv2D(4, 3, activation="relu"), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(3, activation="softmax")])
    training.with_class_names(model, ["x", "y", "z"]).save(tmp_path / "m.keras")
    tree = _tree(tmp_path / "tree", ["x", "y", "z"])
    out = tmp_path / "out"
    argv = ["explain", str(tmp_path / "m.keras"), str(tree), "-o", str(out), "--limit", "2",
            "--methods", "gradcam,layercam", "--metric", "insertion", "--top-k", "4"]
    assert main(argv) == 0
    assert {p.name for p in out.iterdir()} == {
        "methods.md", "methods.json", "methods.png", "confusion_matrix.json", "confusion_matrix.png",
        "report.json", "top_losses.png"}
    methods = json.loads((out / "methods.json").read_text())
    assert methods["metric"] == "insertion" and len(methods["scores"]["gradcam"]) == 2
    assert {r["method"] for r in methods["rows"]} == {"gradcam", "layercam", "random"}
    assert "| rank | method |" in (out / "methods.md").read_text()
    cm = json.loads((out / "confusion_matrix.json").read_text())
    assert cm["class_names"] == ["x", "y", "z"] and np.sum(cm["matrix"]) == 9
    report = json.loads((out / "report.json").read_text())
    assert report["examples"] == 9 and len(report["top_losses"]) == 4 and report["rows"][0]["class"] == "x"
    assert (out / "top_losses.png").read_bytes()[:4] == b"\x89PNG"
    assert "accuracy" in capsys.readouterr().out


def test_explain_command_binary_grey_splits_and_bad_method(tmp_path, capsys):
    model = keras.Sequential([keras.Input((10, 10, 1)), keras.layers.Conv2D(2, 3, activation="relu"),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(1, activation="sigmoid")])
    model.save(tmp_path / "b.keras")
    _tree(tmp_path / "s" / "train", ["neg", "pos"], n=2)
    _tree(tmp_path / "s" / "test", ["neg", "pos"], n=2)
    out = tmp_path / "out"
    argv = ["explain", str(tmp_path / "b.keras"), str(tmp_path / "s"), "-o", str(out), "--limit", "2",
            "--methods", "gradcam", "--metric", "road", "--top-k", "2"]
    assert main(argv) == 0
    cm = json.loads((out / "confusion_matrix.json").read_text())
    assert cm["class_names"] == ["neg", "pos"] and np.sum(cm["matrix"]) == 4  # the test split only
    assert main([*argv[:-6], "--methods", "nope"]) == 1  # refused by the library, not argparse: exit 1
    assert "nope" in capsys.readouterr().err
