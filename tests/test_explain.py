"""Tests of visionkit.explain: the metrics against their plain definitions, a sanity
check on a trained model (Grad-CAM beats a random and an inverted map), the method
comparison, errors, and the caller's model and arrays left alone."""

from __future__ import annotations

import sys
import warnings

import keras
import numpy as np
import pytest

from visionkit import explain, gradcam
from visionkit.errors import InvalidArgumentError, MissingDependencyError, VisionkitError
from visionkit.explain import _pixels as core
from visionkit.explain import _probe

# ------------------------------------------------------------------ fixtures


def squares(n, seed):
    """24x24 grey images; the odd ones have a bright 6x6 square at a random place."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 0.4, (n, 24, 24, 1)).astype("float32")
    y = np.arange(n) % 2
    for i in np.flatnonzero(y):
        r, c = rng.integers(0, 24 - 6, 2)
        x[i, r : r + 6, c : c + 6] = 1.0
    return x, y


@pytest.fixture(scope="module")
def square_model():
    keras.utils.set_random_seed(0)
    x, y = squares(512, 0)
    model = keras.Sequential([
        keras.Input((24, 24, 1)),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="last"),
        keras.layers.GlobalMaxPooling2D(),
        keras.layers.Dense(2, activation="softmax"),
    ], name="squares")
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=4, batch_size=64, verbose=0)
    xt, yt = squares(64, 1)
    assert model.evaluate(xt, yt, verbose=0)[1] > 0.9
    return model, xt[yt == 1][:8]


def linear_logit(weights):
    """A one-unit logits model on 2x2x1 images: score = sum(w * x)."""
    model = keras.Sequential([keras.Input((2, 2, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(1, use_bias=False)])
    model.layers[-1].set_weights([np.asarray(weights, "float32").reshape(4, 1)])
    return model


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


# ------------------------------------------------------------------ definitions by hand


def test_deletion_curve_of_a_hand_made_map_is_the_hand_computed_one():
    w = np.array([1.0, -2.0, 0.5, 3.0])
    model = linear_logit(w)
    x = np.array([2.0, 1.0, -1.0, 0.5]).reshape(1, 2, 2, 1)
    relevance = np.array([[0.2, 0.9], [0.1, 0.5]])  # order: pixel 1, 3, 0, 2
    result = explain.deletion(model, x, relevance[None], steps=4, class_index=1)
    kept = x.reshape(4).copy()
    expected = [sigmoid(w @ kept)]
    for pixel in (1, 3, 0, 2):
        kept[pixel] = 0.0
        expected.append(sigmoid(w @ kept))
    np.testing.assert_allclose(result.curves[0], expected, atol=1e-6)
    np.testing.assert_allclose(result.fractions, [0, 0.25, 0.5, 0.75, 1])
    auc = sum((expected[i] + expected[i + 1]) / 2 * 0.25 for i in range(4))
    np.testing.assert_allclose(result.auc[0], auc, atol=1e-6)
    # class 0 of a one-unit head is its complement
    other = explain.deletion(model, x, relevance[None], steps=4, class_index=0)
    np.testing.assert_allclose(other.curves[0], 1 - np.array(expected), atol=1e-6)


def test_insertion_curve_reveals_the_most_relevant_pixels_first_on_the_baseline():
    w = np.array([1.0, -2.0, 0.5, 3.0])
    model = linear_logit(w)
    x = np.array([2.0, 1.0, -1.0, 0.5]).reshape(1, 2, 2, 1)
    relevance = np.array([[0.2, 0.9], [0.1, 0.5]])
    result = explain.insertion(model, x, relevance[None], steps=2, baseline=0.25, class_index=1)
    shown = np.full(4, 0.25)
    expected = [sigmoid(w @ shown)]
    for pixels in ((1, 3), (0, 2)):
        shown[list(pixels)] = x.reshape(4)[list(pixels)]
        expected.append(sigmoid(w @ shown))
    np.testing.assert_allclose(result.curves[0], expected, atol=1e-6)


def test_imputation_is_the_weighted_mean_of_the_neighbours():
    rng = np.random.default_rng(0)
    image = rng.random((5, 6, 2))
    removed = np.zeros((5, 6), bool)
    removed[2, 2] = removed[2, 3] = removed[0, 0] = True  # two adjacent unknowns and a corner
    out = core.impute(image, removed, noise=0.0, rng=rng)
    weights = {(dr, dc): w for dr, dc, w in core._NEIGHBOURS}
    for r, c in zip(*np.nonzero(removed)):
        total, mean = 0.0, np.zeros(2)
        for (dr, dc), w in weights.items():
            if 0 <= r + dr < 5 and 0 <= c + dc < 6:
                total += w
                mean += w * out[r + dr, c + dc]
        np.testing.assert_allclose(out[r, c], mean / total, atol=1e-10)
    np.testing.assert_array_equal(out[~removed], image[~removed])
    # the centre pixel of a 3x3 patch alone: 1/6 of each edge neighbour, 1/12 of each corner
    patch = np.arange(9.0).reshape(3, 3, 1)
    centre = np.zeros((3, 3), bool)
    centre[1, 1] = True
    hand = (patch[0, 1] + patch[1, 0] + patch[1, 2] + patch[2, 1]) / 6 + (patch[0, 0] + patch[0, 2] + patch[2, 0] + patch[2, 2]) / 12
    np.testing.assert_allclose(core.impute(patch, centre, noise=0.0, rng=rng)[1, 1], hand)


def test_road_removes_and_imputes_the_most_or_least_relevant_pixels():
    w = np.array([1.0, -2.0, 0.5, 3.0])
    model = linear_logit(w)
    x = np.array([2.0, 1.0, -1.0, 0.5]).reshape(1, 2, 2, 1)
    relevance = np.array([[0.2, 0.9], [0.1, 0.5]])  # most relevant: pixel 1 (top right)
    morf = explain.road(model, x, relevance[None], percentiles=[25], noise=0.0, class_index=1)
    imputed = x.reshape(4).copy()
    imputed[1] = (x.reshape(4)[0] / 6 + x.reshape(4)[3] / 6 + x.reshape(4)[2] / 12) / (1 / 6 + 1 / 6 + 1 / 12)
    np.testing.assert_allclose(morf.scores[0, 0], sigmoid(w @ imputed), atol=1e-6)
    lerf = explain.road(model, x, relevance[None], percentiles=[25], order="lerf", noise=0.0, class_index=1)
    imputed = x.reshape(4).copy()
    imputed[2] = (x.reshape(4)[0] / 6 + x.reshape(4)[3] / 6 + x.reshape(4)[1] / 12) / (1 / 6 + 1 / 6 + 1 / 12)
    np.testing.assert_allclose(lerf.scores[0, 0], sigmoid(w @ imputed), atol=1e-6)
    # noise is seeded
    a = explain.road(model, x, relevance[None], percentiles=[50], noise=0.5, seed=3).scores
    b = explain.road(model, x, relevance[None], percentiles=[50], noise=0.5, seed=3).scores
    c = explain.road(model, x, relevance[None], percentiles=[50], noise=0.5, seed=4).scores
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_confidence_change_follows_the_grad_cam_plus_plus_definitions():
    w = np.array([1.0, -2.0, 0.5, 3.0])
    model = linear_logit(w)
    x = np.array([[2.0, 1.0, -1.0, 0.5], [1.0, 1.0, 1.0, 1.0]]).reshape(2, 2, 2, 1)
    maps = np.array([[[1.0, 0.0], [0.5, 1.0]], [[0.0, 1.0], [0.0, 0.0]]])
    change = explain.confidence_change(model, x, maps, class_index=1)
    y = sigmoid(x.reshape(2, 4) @ w)
    o = sigmoid((x.reshape(2, 4) * maps.reshape(2, 4)) @ w)
    np.testing.assert_allclose(change.original, y, atol=1e-6)
    np.testing.assert_allclose(change.explained, o, atol=1e-6)
    np.testing.assert_allclose(change.drop, np.maximum(0, y - o) / y, atol=1e-6)
    assert change.average_drop == pytest.approx(float((np.maximum(0, y - o) / y).mean()), abs=1e-6)
    assert change.increase_in_confidence == pytest.approx(float((o > y).mean()))
    assert 0 < change.increase_in_confidence < 1  # one image rose, one fell


def test_ties_are_broken_in_a_fixed_order_not_top_left_first():
    flat = np.zeros((1, 10, 10))
    r1, r2 = core.ranks(flat), core.ranks(flat)
    np.testing.assert_array_equal(r1, r2)
    assert sorted(r1[0]) == list(range(100))
    assert r1[0, :10].mean() > 15  # the first row is not removed first


# ------------------------------------------------------------------ sanity on a trained model


def test_grad_cam_is_more_faithful_than_a_random_or_inverted_map(square_model):
    model, x = square_model
    cam = gradcam.grad_cam(model, x, class_index=1)
    random = np.random.default_rng(5).random(cam.shape)
    inverted = 1.0 - cam
    scores = {}
    for name, maps in (("cam", cam), ("random", random), ("inverted", inverted)):
        scores[name] = (
            explain.deletion(model, x, maps, class_index=1).mean_auc,
            explain.insertion(model, x, maps, class_index=1).mean_auc,
            explain.road(model, x, maps, class_index=1, percentiles=[20, 50, 80]).mean,
        )
    deletion, insertion, road = (dict(zip(scores, col)) for col in zip(*scores.values()))
    assert deletion["cam"] < deletion["random"] < deletion["inverted"]
    assert insertion["cam"] > insertion["random"] > insertion["inverted"]
    assert road["cam"] < road["random"] and road["cam"] < road["inverted"]


def test_compare_methods_ranks_the_methods_and_the_random_map(square_model):
    model, x = square_model
    weights = [w.copy() for w in model.get_weights()]
    before = x.copy()
    table = explain.compare_methods(model, x[:4], methods=["gradcam", "layercam"], metric="deletion", steps=10)
    assert [r["rank"] for r in table.rows] == [1, 2, 3]
    assert {r["method"] for r in table.rows} == {"gradcam", "layercam", "random"}
    assert table.rows[-1]["method"] == "random"  # both CAMs beat a random map here
    means = [r["score"] for r in table.rows]
    assert means == sorted(means)  # lower is better: best first
    assert table.better == "lower" and table.maps["gradcam"].shape == (4, 24, 24)
    text = str(table)
    assert "| 1 | gradcam" in text or "| 1 | layercam" in text
    assert "deletion" in table.to_markdown() and table.to_dict()["rows"][0]["rank"] == 1
    fig = table.figure(n_images=2)
    assert len(fig.axes) == 3 * 2 + 1
    # the caller's model and images are untouched
    for a, b in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(x, before)
    insertion = explain.compare_methods(model, x[:4], methods=["gradcam"], metric="insertion", steps=5,
                                        random_baseline=False)
    assert insertion.better == "higher" and [r["method"] for r in insertion.rows] == ["gradcam"]


def test_compare_methods_takes_callables_mappings_and_attribution_names(square_model, monkeypatch):
    model, x = square_model
    calls = []

    def corner(model, images, class_index=None):
        calls.append(np.asarray(class_index))
        maps = np.zeros((len(images), 6, 6))
        maps[:, 0, 0] = 1.0
        return maps

    table = explain.compare_methods(model, x[:2], methods={"corner": corner, "cam": "gradcam"},
                                    metric="average_drop", random_baseline=False)
    assert {r["method"] for r in table.rows} == {"corner", "cam"}
    np.testing.assert_array_equal(calls[0], [1, 1])  # the top class, resolved once, given to every method
    assert table.maps["corner"].shape == (2, 24, 24)
    # the attribution functions by name; a function of one's own by callable, never by a name set elsewhere
    table = explain.compare_methods(model, x[:2], methods=["saliency"], metric="increase_in_confidence")
    assert {r["method"] for r in table.rows} == {"saliency", "random"}
    monkeypatch.setattr(gradcam, "saliency_test", corner, raising=False)
    monkeypatch.setattr(gradcam, "__all__", [*gradcam.__all__, "saliency_test"])
    with pytest.raises(InvalidArgumentError, match="saliency_test"):
        explain.heatmaps(model, x[:2], method="saliency_test")
    assert explain.heatmaps(model, x[:2], method=corner)[:, 0, 0].min() > 0


def test_every_metric_runs_through_compare_methods(square_model):
    model, x = square_model
    for metric, better in explain.METRICS.items():
        table = explain.compare_methods(model, x[:2], methods=["gradcam"], metric=metric, steps=4)
        assert table.better == better and len(table.rows) == 2
        assert all(np.isfinite(r["score"]) for r in table.rows)


# ------------------------------------------------------------------ errors


def test_errors_are_visionkit_errors_naming_the_argument(square_model):
    model, x = square_model
    maps = np.ones((len(x), 24, 24))
    cases = [
        (lambda: explain.deletion(model, x, maps, steps=0), "steps"),
        (lambda: explain.deletion(model, x, maps[:2]), "maps"),
        (lambda: explain.insertion(model, x, maps, baseline="fog"), "baseline"),
        (lambda: explain.insertion(model, x, maps, baseline=np.zeros((3, 3))), "baseline"),
        (lambda: explain.road(model, x, maps, percentiles=[100]), "percentiles"),
        (lambda: explain.road(model, x, maps, order="up"), "order"),
        (lambda: explain.deletion(model, x, maps, class_index=2), "class_index"),
        (lambda: explain.compare_methods(model, x, metric="accuracy"), "metric"),
        (lambda: explain.compare_methods(model, x, methods=["nope"]), "method"),
        (lambda: explain.compare_methods(model, x, methods="gradcam"), "methods"),
        (lambda: explain.compare_methods(model, x, methods=["gradcam", "gradcam"]), "methods"),
        (lambda: explain.heatmaps(model, x, method=lambda model, images, class_index: np.ones((1, 2))), "method"),
    ]
    for call, name in cases:
        with pytest.raises(InvalidArgumentError, match=f"`{name}`"):
            call()
    with pytest.raises(VisionkitError, match="gradcam\\+\\+"):  # the message lists the known names
        explain.heatmaps(model, x, method="nope")


def test_road_without_scipy_says_how_to_install_it(square_model, monkeypatch):
    model, x = square_model
    for name in ("scipy", "scipy.sparse", "scipy.sparse.linalg"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(MissingDependencyError, match="pip install scipy"):
        explain.road(model, x, np.ones((len(x), 24, 24)))
    with pytest.raises(MissingDependencyError):
        explain.compare_methods(model, x, metric="road")


def test_results_have_figures(square_model):
    model, x = square_model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        maps = gradcam.grad_cam(model, x[:2])
    curve = explain.deletion(model, x[:2], maps, steps=4)
    assert curve.figure().axes[0].get_title().startswith("deletion")
    assert curve._repr_png_()[:4] == b"\x89PNG"
    road = explain.road(model, x[:2], maps, percentiles=[50])
    assert "MORF" in road.figure().axes[0].get_title()


def test_the_compiled_step_is_reused_and_does_not_keep_the_model_alive():
    import gc
    import weakref

    model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(2, activation="softmax")])
    x, maps = np.ones((2, 4, 4, 1)), np.ones((2, 4, 4))
    explain.deletion(model, x, maps, steps=2)
    step = _probe.cached(model, ("predict",), lambda: None)
    explain.insertion(model, x, maps, steps=3, batch_size=5)
    assert _probe.cached(model, ("predict",), lambda: None) is step and step.experimental_get_tracing_count() == 1
    ref = weakref.ref(model)
    del model, step
    gc.collect()
    assert ref() is None
