"""visionkit.convnets: exact architectures and the recipes on the bundled samples."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from visionkit import convnets, data, training
from visionkit.errors import InvalidArgumentError


def test_mnist_chollet_parameters_and_io():
    model = convnets.mnist_convnet()
    assert model.count_params() == 93_322
    assert tuple(model.input_shape) == (None, 28, 28, 1) and tuple(model.output_shape) == (None, 10)
    assert [type(layer).__name__ for layer in model.layers[1:]] == [
        "Rescaling", "Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Conv2D", "Flatten", "Dense", "Dense",
    ]
    assert model.layers[-1].activation is keras.activations.softmax
    assert model.layers[-1].dtype_policy.compute_dtype == "float32"
    # raw pixels in, probabilities out
    probs = model.predict(np.full((2, 28, 28, 1), 255.0, "float32"), verbose=0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_mnist_cookbook_architecture():
    model = convnets.mnist_convnet(variant="cookbook")
    assert model.count_params() == 3_274_634
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [(c.filters, c.kernel_size, c.padding) for c in convs] == [(32, (5, 5), "same"), (64, (5, 5), "same")]
    dropout = next(layer for layer in model.layers if isinstance(layer, keras.layers.Dropout))
    assert dropout.rate == pytest.approx(0.15)
    assert model.layers[-1].units == 10 and model.layers[-1].activation is keras.activations.linear
    with pytest.raises(InvalidArgumentError, match="variant"):
        convnets.mnist_convnet(variant="lenet")


def test_small_convnet_parameters():
    bare = convnets.small_convnet(dropout=None, augment=False)
    assert bare.count_params() == 3_453_121
    full = convnets.small_convnet()
    assert full.count_params() == 3_453_121
    names = [layer.name for layer in full.layers]
    assert "augmentation" in names and "dropout" in names
    three = convnets.small_convnet((64, 64, 3), num_classes=3, augment=False)
    assert tuple(three.output_shape) == (None, 3) and three.layers[-1].activation is keras.activations.softmax
    for bad in ((40, 40, 3), (150, 150), "150"):
        with pytest.raises(InvalidArgumentError, match="input_shape"):
            convnets.small_convnet(bad)
    with pytest.raises(InvalidArgumentError, match="num_classes"):
        convnets.small_convnet(num_classes=1)


def test_cifar10_convnet_normalisation_and_augmentation():
    (x, _), _ = data.load_cifar10(sample=True)
    model = convnets.cifar10_convnet(normalization=x[:200])
    norm = model.get_layer("standardization")
    mean = np.asarray(norm.mean).reshape(-1)
    np.testing.assert_allclose(mean, x[:200].reshape(-1, 3).mean(axis=0), rtol=1e-3)
    aug = model.get_layer("augmentation")
    assert [type(layer).__name__ for layer in aug.layers] == ["RandomFlip", "RandomTranslation"]
    assert aug.layers[1].height_factor == pytest.approx(0.1)
    classic = convnets.cifar10_convnet(rotation=25, translation=0.0).get_layer("augmentation")
    assert [type(layer).__name__ for layer in classic.layers] == ["RandomFlip", "RandomRotation"]
    assert classic.layers[1].factor[1] == pytest.approx(25 / 360)
    plain = convnets.cifar10_convnet(augment=False)
    assert plain.count_params() == 2_159_114
    assert "augmentation" not in [layer.name for layer in plain.layers]
    assert model.layers[-1].dtype_policy.compute_dtype == "float32"


def test_train_mnist_sample_learns(tmp_path):
    _model, history, metrics = convnets.train_mnist(sample=True, epochs=2, limit=1500, progress=False, seed=0,
                                                   checkpoint_dir=tmp_path / "ckpt")
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert "val_loss" in history.history
    assert set(metrics) == {"loss", "accuracy"} and metrics["accuracy"] > 0.5
    assert (tmp_path / "ckpt" / "best.keras").is_file()


def test_train_cifar10_sample_learns():
    model, history, metrics = convnets.train_cifar10(sample=True, epochs=3, limit=600, augment=False,
                                                     progress=False, seed=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert 0 <= metrics["accuracy"] <= 1
    assert model.get_layer("standardization") is not None


def test_train_image_folder_sample_and_tree(tmp_path):
    model, history, metrics = convnets.train_image_folder(
        sample=True, image_size=48, epochs=3, augment=False, dropout=None, learning_rate=1e-3,
        progress=False, seed=0,
    )
    assert training.class_names(model) == ["cat", "dog"] and tuple(model.output_shape) == (None, 1)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert 0 <= metrics["accuracy"] <= 1

    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for cls in ("a", "b", "c"):
            for i in range(6):
                data.save_image(tmp_path / "tree" / split / cls / f"{i}.png", rng.integers(0, 255, (50, 50, 3)).astype("uint8"))
    model, history, metrics = convnets.train_image_folder(tmp_path / "tree", image_size=48, epochs=1,
                                                          batch_size=4, progress=False)
    assert training.class_names(model) == ["a", "b", "c"] and tuple(model.output_shape) == (None, 3)
    assert set(metrics) == {"loss", "accuracy"}


def test_recipe_argument_errors():
    with pytest.raises(InvalidArgumentError, match="directory"):
        convnets.train_image_folder()
    with pytest.raises(InvalidArgumentError, match="image_size"):
        convnets.train_image_folder(sample=True, image_size=32)
    with pytest.raises(InvalidArgumentError, match="validation_split"):
        convnets.train_mnist(sample=True, validation_split=1.5)
    with pytest.raises(InvalidArgumentError, match="augment"):
        convnets.cifar10_convnet(augment="yes")
    with pytest.raises(InvalidArgumentError, match="translation"):
        convnets.cifar10_convnet(translation=-0.1)
    with pytest.raises(InvalidArgumentError, match="rotation"):
        convnets.cifar10_convnet(rotation=400)
    with pytest.raises(InvalidArgumentError, match="lr_schedule"):
        convnets.train_mnist(sample=True, lr_schedule="step")


# ----------------------------------------------------------------------------- errors at the edges (#19)


def _tiny_classifier() -> keras.Model:
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Flatten()(keras.layers.Conv2D(2, 3, padding="same")(inputs))
    return keras.Model(inputs, keras.layers.Dense(3)(x), name="tiny")


@pytest.mark.parametrize("shape", [(0, 8, 8, 3), (2, 8, 8, 1), (2, 6, 6, 3)], ids=["empty", "one-channel", "wrong-size"])
def test_predict_tta_refuses_batches_that_do_not_fit_the_model(shape):
    with pytest.raises(InvalidArgumentError, match=r"`images`.*\(N, 8, 8, 3\).*'tiny'.*Received: images=.*" + str(shape[1])):
        convnets.predict_tta(_tiny_classifier(), np.zeros(shape, np.float32))


@pytest.mark.parametrize("images", [np.zeros((4, 28, 28, 1)), np.zeros((4, 32, 32))], ids=["mnist-shaped", "no-channels"])
def test_cifar10_convnet_refuses_normalization_images_of_another_shape(images):
    # these were adapted silently: a 1-channel mean broadcast over the 3 channels
    with pytest.raises(InvalidArgumentError, match=r"`normalization`.*\(N, 32, 32, 3\).*Received"):
        convnets.cifar10_convnet(normalization=images)
