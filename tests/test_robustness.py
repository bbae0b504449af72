"""Common corruptions and the robustness report (issue #23)."""

from __future__ import annotations

import numpy as np
import pytest
from ship_models import colour_images, tiny_model

from visionkit import robustness as R
from visionkit.errors import InvalidArgumentError


def _smooth_images(size: int = 16) -> np.ndarray:
    import tensorflow as tf

    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 256, (4, 4, 4, 3)).astype("float32")
    x = tf.image.resize(coarse, (size, size), method="bicubic").numpy()
    return np.clip(x + rng.normal(0, 10, x.shape), 0, 255).astype(np.uint8)


def test_at_least_ten_corruptions():
    assert len(R.CORRUPTIONS) >= 10
    assert R.SEVERITIES == (1, 2, 3, 4, 5)


@pytest.mark.parametrize("kind", R.CORRUPTIONS)
def test_corruption_keeps_shape_dtype_range_and_grows_with_severity(kind):
    x = _smooth_images()
    distortion = []
    for s in R.SEVERITIES:
        y = R.corrupt(x, kind, severity=s)
        assert y.shape == x.shape and y.dtype == np.uint8
        distortion.append(np.abs(y.astype(float) - x).mean())
    assert distortion[0] > 0
    assert all(np.diff(distortion) > 0), distortion
    f = R.corrupt(x.astype("float32"), kind, severity=5)
    assert f.dtype == np.float32 and f.min() >= 0 and f.max() <= 255


def test_corrupt_is_seeded_and_takes_one_grayscale_image():
    x = _smooth_images()[..., :1]
    a = R.corrupt(x[0], "gaussian_noise", severity=2, seed=3)
    assert a.shape == x[0].shape
    np.testing.assert_array_equal(a, R.corrupt(x[0], "gaussian_noise", severity=2, seed=3))
    assert not np.array_equal(a, R.corrupt(x[0], "gaussian_noise", severity=2, seed=4))
    assert R.corrupt(x, "brightness", severity=3).shape == x.shape
    assert R.corrupt(x, "jpeg_compression", severity=3).shape == x.shape


def test_corrupt_does_not_modify_the_input():
    x = _smooth_images()
    before = x.copy()
    R.corrupt(x, "contrast", severity=5)
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("bad", [{"kind": "snow"}, {"severity": 6}, {"severity": 0}])
def test_corrupt_rejects_bad_arguments(bad):
    args = {"kind": "fog", "severity": 3, **bad}
    with pytest.raises(InvalidArgumentError):
        R.corrupt(_smooth_images(), args.pop("kind"), **args)


def test_corrupt_rejects_out_of_range_images():
    with pytest.raises(InvalidArgumentError, match=r"\[0, 255\]"):
        R.corrupt(np.full((1, 8, 8, 3), 300.0), "fog")


def test_robustness_report_numbers_table_and_figure():
    model = tiny_model("softmax", steps=40)
    x, y = colour_images(48, seed=5)
    report = R.robustness_report(model, (x, y), corruptions=["contrast", "gaussian_noise"], severities=[1, 5],
                                 batch_size=16, progress=False)
    assert set(report.accuracy) == {"contrast", "gaussian_noise"}
    assert all(len(v) == 2 and all(0 <= a <= 1 for a in v) for v in report.accuracy.values())
    assert report.examples == 48
    expected = np.mean([a for v in report.accuracy.values() for a in v])
    assert report.mean_corruption_accuracy == pytest.approx(expected)
    assert report.relative_drop == pytest.approx((report.clean_accuracy - expected) / report.clean_accuracy)
    # severity 5 contrast (x0.15) hurts a colour classifier at least as much as severity 1
    assert report.accuracy["contrast"][1] <= report.accuracy["contrast"][0]
    assert "| contrast |" in report.to_markdown()
    assert report.plot() is not None
    assert report.to_dict()["examples"] == 48
    again = R.robustness_report(model, (x, y), corruptions=["gaussian_noise"], severities=[5], batch_size=16,
                                progress=False)
    assert again.accuracy["gaussian_noise"] == [report.accuracy["gaussian_noise"][1]]  # seeded


def test_plot_corruptions_grid():
    fig = R.plot_corruptions(_smooth_images()[0], severities=(1, 5))
    assert len(fig.axes) == len(R.CORRUPTIONS) * 3
