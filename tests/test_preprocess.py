from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from visionkit import preprocess
from visionkit.errors import InvalidArgumentError


def test_vgg_preprocess_matches_keras():
    import keras

    rng = np.random.default_rng(0)
    img = rng.uniform(0, 255, (2, 5, 5, 3)).astype("float32")
    ours = preprocess.vgg_preprocess(img)
    theirs = keras.applications.vgg16.preprocess_input(img.copy())
    np.testing.assert_allclose(ours, theirs, atol=1e-4)
    assert isinstance(ours, np.ndarray)
    tensor = preprocess.vgg_preprocess(tf.constant(img))
    assert isinstance(tensor, tf.Tensor)
    np.testing.assert_allclose(tensor.numpy(), theirs, atol=1e-4)


def test_vgg_preprocess_means_rgb_order():
    img = np.zeros((1, 1, 3), np.float32)
    out = preprocess.vgg_preprocess(img)
    # BGR order after subtracting the RGB means (123.68, 116.779, 103.939)
    np.testing.assert_allclose(out[0, 0], [-103.939, -116.779, -123.68], atol=1e-4)


def test_vgg_deprocess_is_exact_inverse():
    img = np.random.default_rng(1).integers(0, 256, (7, 9, 3)).astype(np.uint8)
    back = preprocess.vgg_deprocess(preprocess.vgg_preprocess(img))
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, img)
    assert preprocess.vgg_deprocess(tf.constant(preprocess.vgg_preprocess(img))).dtype == np.uint8


def test_vgg_deprocess_clips():
    x = np.full((2, 2, 3), 1e4, np.float32)
    assert (preprocess.vgg_deprocess(x) == 255).all()


def test_vgg_preprocess_rejects_wrong_channels():
    with pytest.raises(InvalidArgumentError, match="Received"):
        preprocess.vgg_preprocess(np.zeros((4, 4, 4)))


def test_augmentation_defaults_and_inference_identity():
    aug = preprocess.augmentation(seed=0)
    names = [type(layer).__name__ for layer in aug.layers]
    assert names == ["RandomFlip", "RandomRotation", "RandomTranslation", "RandomZoom"]
    assert aug.layers[1].factor[1] == pytest.approx(40 / 360)
    x = np.random.default_rng(0).uniform(0, 255, (2, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(aug(x, training=False), x)
    y = aug(x, training=True).numpy()
    assert y.shape == x.shape and not np.allclose(y, x)


def test_augmentation_disable_and_contrast():
    aug = preprocess.augmentation(flip=None, rotation=0, zoom=0, translation=0, contrast=0.3)
    assert [type(layer).__name__ for layer in aug.layers] == ["RandomContrast"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"flip": "diagonal"}, "flip"),
        ({"rotation": -1}, "rotation"),
        ({"zoom": 1.0}, "zoom"),
        ({"translation": "a"}, "translation"),
    ],
)
def test_augmentation_validation(kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        preprocess.augmentation(**kwargs)


def test_standardization_arrays_and_dataset():
    rng = np.random.default_rng(0)
    x = rng.normal([10, 50, 200], [2, 5, 20], size=(200, 4, 4, 3)).astype("float32")
    layer = preprocess.standardization(x)
    out = layer(x).numpy()
    np.testing.assert_allclose(out.mean(axis=(0, 1, 2)), 0, atol=1e-3)
    np.testing.assert_allclose(out.std(axis=(0, 1, 2)), 1, atol=1e-2)
    ds = tf.data.Dataset.from_tensor_slices((x, np.zeros(200))).batch(32)
    layer2 = preprocess.standardization(ds)
    np.testing.assert_allclose(layer2(x).numpy(), out, atol=1e-3)


def test_standardization_rejects_empty():
    with pytest.raises(InvalidArgumentError, match="data"):
        preprocess.standardization(np.zeros((0, 4, 4, 3)))
