"""Tests of visionkit.transfer: structure, weights loading, features, unfreezing, training."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest

from visionkit import transfer as T
from visionkit.data import from_arrays, save_image
from visionkit.errors import InvalidArgumentError, UnexpectedArgumentError, WeightsUnavailableError
from visionkit.training import TrainResult, class_names


def trainable_count(model: keras.Model) -> int:
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def tiny_base(input_shape: tuple[int, int, int]) -> keras.Model:
    """A small conv base with BatchNorm, VGG-style layer names."""
    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(4, 3, padding="same", name="block1_conv1")(x)
    x = keras.layers.BatchNormalization(name="block1_bn")(x)
    x = keras.layers.Activation("relu")(x)
    x = keras.layers.MaxPooling2D(2, name="block1_pool")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="block2_conv1")(x)
    x = keras.layers.BatchNormalization(name="block2_bn")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="block2_conv2")(x)
    x = keras.layers.MaxPooling2D(2, name="block2_pool")(x)
    return keras.Model(inputs, x, name="tiny")


def synthetic(n: int = 24, size: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Dark images are class 0, bright ones class 1 (learnable in a few steps)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.uniform(0, 100, (n, size, size, 3)) + y[:, None, None, None] * 150
    return x.astype("float32"), y.astype("float32")


def write_folder(root: Path, per_class: int = 8, size: int = 16, seed: int = 0) -> Path:
    x, y = synthetic(2 * per_class, size, seed)
    for i, (img, label) in enumerate(zip(x, y)):
        save_image(root / ("bright" if label else "dark") / f"{i:03d}.png", img)
    return root


# ----------------------------------------------------------------------------- structure


def test_vgg16_parameter_counts_and_unfreeze():
    base = T.conv_base("vgg16", weights=None, input_shape=(150, 150, 3))
    assert base.count_params() == 14_714_688
    assert base.output_shape == (None, 4, 4, 512)
    assert base.layers[1].name == "vgg16_preprocess"
    assert not base.trainable
    model = T.transfer_model(base, hidden=256, dropout=0.0)
    assert model.count_params() == 16_812_353
    assert trainable_count(model) == 2_097_665
    # the base is called with training=False inside the model
    node_kwargs = [n.arguments.kwargs for n in base._inbound_nodes if n.operation is base]
    assert [kw.get("training") for kw in node_kwargs] == [False]
    assert T.unfreeze(model, from_layer="block5_conv1") is model
    assert trainable_count(model) == 9_177_089
    assert not base.get_layer("block4_conv3").trainable
    T.unfreeze(model, last_n=3)
    assert trainable_count(model) == 9_177_089
    T.unfreeze(model, from_layer="vgg16/block4_conv1")
    assert trainable_count(model) == 9_177_089 + 1_180_160 + 2 * 2_359_808  # block4 too


def test_unfreeze_errors():
    model = T.transfer_model(T.conv_base(tiny_base, weights=None, input_shape=(16, 16, 3)), dropout=0.0)
    with pytest.raises(InvalidArgumentError, match="block2_conv1"):
        T.unfreeze(model, from_layer="block9_conv1")
    with pytest.raises(InvalidArgumentError, match="not both"):
        T.unfreeze(model, from_layer="block2_conv1", last_n=2)
    with pytest.raises(InvalidArgumentError, match="last_n"):
        T.unfreeze(model, last_n=99)


def test_feature_classifier_and_heads():
    clf = T.feature_classifier((4, 4, 512))
    assert clf.count_params() == 2_097_665
    assert clf.output_shape == (None, 1)
    multi = T.feature_classifier((4, 4, 512), num_classes=5, hidden=None, pooling="avg")
    assert multi.output_shape == (None, 5)
    assert multi.count_params() == 512 * 5 + 5
    with pytest.raises(InvalidArgumentError, match="feature_shape"):
        T.feature_classifier(512)
    with pytest.raises(InvalidArgumentError, match="num_classes"):
        T.feature_classifier((4, 4, 512), num_classes=1)


def test_preprocessing_inside_base_matches_keras():
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    pre = T.preprocessing_for("vgg16")
    expected = keras.applications.vgg16.preprocess_input(x.copy())
    np.testing.assert_allclose(np.asarray(pre(x)), expected, atol=1e-4)
    with_pre = T.conv_base("mobilenet_v2", weights=None, input_shape=(32, 32, 3))
    without = T.conv_base("mobilenet_v2", weights=None, input_shape=(32, 32, 3), preprocess=False)
    without.set_weights(with_pre.get_weights())
    np.testing.assert_allclose(
        with_pre.predict(x, verbose=0), without.predict(x / 127.5 - 1.0, verbose=0), rtol=1e-4, atol=1e-4
    )
    with pytest.raises(InvalidArgumentError, match="name"):
        T.preprocessing_for("alexnet")


@pytest.mark.parametrize("name", ["vgg19", "resnet50", "inception_v3", "efficientnet_b0"])
def test_other_backbones_build_with_a_default_fine_tune_layer(name):
    base = T.conv_base(name, weights=None, input_shape=(96, 96, 3) if name != "inception_v3" else (75, 75, 3))
    model = T.transfer_model(base, dropout=0.0)
    before = trainable_count(model)
    T.unfreeze(model, from_layer=T.DEFAULT_FINE_TUNE_FROM[name])
    assert trainable_count(model) > before
    assert all(not layer.trainable for layer in base.layers if isinstance(layer, keras.layers.BatchNormalization))


# ----------------------------------------------------------------------------- weights


@pytest.mark.filterwarnings("ignore:Skipping nested container:UserWarning")
def test_weights_file_round_trip(tmp_path):
    x = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    base = T.conv_base("mobilenet_v2", weights=None, input_shape=(32, 32, 3))
    path = tmp_path / "base.weights.h5"
    base.save_weights(str(path))
    loaded = T.conv_base("mobilenet_v2", weights=path, input_shape=(32, 32, 3))
    np.testing.assert_array_equal(base.predict(x, verbose=0), loaded.predict(x, verbose=0))
    # a custom base through the same path
    custom = T.conv_base(tiny_base, weights=None, input_shape=(32, 32, 3))
    custom.save_weights(str(tmp_path / "tiny.weights.h5"))
    again = T.conv_base(tiny_base, weights=str(tmp_path / "tiny.weights.h5"), input_shape=(32, 32, 3))
    np.testing.assert_array_equal(custom.predict(x, verbose=0), again.predict(x, verbose=0))
    with pytest.raises(WeightsUnavailableError, match=r"missing\.weights\.h5"):
        T.conv_base("mobilenet_v2", weights=tmp_path / "missing.weights.h5", input_shape=(32, 32, 3))
    with pytest.raises(WeightsUnavailableError, match=r"tiny\.weights\.h5"):
        T.conv_base("mobilenet_v2", weights=tmp_path / "tiny.weights.h5", input_shape=(32, 32, 3))
    with pytest.raises(InvalidArgumentError, match="weights"):
        T.conv_base(tiny_base, weights="imagenet", input_shape=(32, 32, 3))


@pytest.mark.filterwarnings("ignore:`input_shape` is undefined or non-square:UserWarning")
def test_keras_imagenet_h5_lands_behind_the_preprocessing_layer(tmp_path, monkeypatch):
    """ImageNet files are loaded by layer order: the extra preprocessing layer must not shift them."""
    h5py = pytest.importorskip("h5py")
    from keras.src.applications import mobilenet_v2
    from keras.src.legacy.saving import legacy_h5_format

    plain = keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=(32, 32, 3))
    rng = np.random.default_rng(0)
    for w in plain.weights:
        w.assign(rng.uniform(0.5, 1.0, w.shape).astype("float32"))
    file = tmp_path / "imagenet_like.h5"
    with h5py.File(file, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, plain)
    monkeypatch.setattr(mobilenet_v2.file_utils, "get_file", lambda *a, **k: str(file))
    base = T.conv_base("mobilenet_v2", weights="imagenet", input_shape=(32, 32, 3))
    x = rng.uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(
        base.predict(x, verbose=0), plain.predict(x / 127.5 - 1.0, verbose=0), rtol=1e-4, atol=1e-4
    )


def test_offline_imagenet_error_names_the_cache_file(tmp_path, monkeypatch):
    from keras.src.applications import vgg16

    url = (
        "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/"
        "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
    )

    def offline(*args, **kwargs):
        raise Exception(f"URL fetch failure on {url}: None -- [Errno -3] Temporary failure in name resolution")

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(vgg16.file_utils, "get_file", offline)
    with pytest.raises(WeightsUnavailableError) as info:
        T.conv_base("vgg16", weights="imagenet")
    message = str(info.value)
    assert str(tmp_path / "keras" / "models" / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5") in message
    assert url in message
    assert "weights=None" in message


# ----------------------------------------------------------------------------- features


def test_extract_features_equals_predict_in_one_pass():
    base = T.conv_base(tiny_base, weights=None, input_shape=(16, 16, 3))
    x, _ = synthetic(21)
    y = np.arange(21)
    features, labels = T.extract_features(base, (x, y), batch_size=8, progress=False)
    expected = base.predict(x, verbose=0)
    assert features.shape == (21, 4, 4, 8) and features.dtype == np.float32
    np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())  # batch 8 vs 32
    np.testing.assert_array_equal(labels, y)
    # a reshuffling dataset: features and labels still pair up
    shuffled = from_arrays(x, y, batch_size=5, shuffle=True, seed=3)
    features, labels = T.extract_features(base, shuffled, progress=False)
    assert sorted(labels.tolist()) == list(range(21)) and labels.tolist() != list(range(21))
    np.testing.assert_allclose(features, expected[labels], rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    features, labels = T.extract_features(base, x, progress=False)
    assert labels is None and features.shape == (21, 4, 4, 8)


def test_batchnorm_stays_frozen_and_in_inference_mode():
    from visionkit.training import train

    base = T.conv_base(tiny_base, weights=None, input_shape=(16, 16, 3))
    model = T.transfer_model(base, hidden=8, dropout=0.0)
    T.unfreeze(model)  # the whole base, except BatchNorm
    bn = base.get_layer("block1_bn")
    assert not bn.trainable and base.get_layer("block1_conv1").trainable
    x, y = synthetic(16)
    before = [w.numpy().copy() for w in bn.weights]
    kernel = base.get_layer("block1_conv1").kernel.numpy().copy()
    train(model, (x, y), epochs=1, batch_size=8, progress=False)
    for w, b in zip(bn.weights, before):
        np.testing.assert_array_equal(w.numpy(), b)  # gamma, beta and the moving statistics
    assert not np.array_equal(base.get_layer("block1_conv1").kernel.numpy(), kernel)
    np.testing.assert_allclose(model(x, training=True), model(x, training=False), rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- training


def test_fine_tune_runs_both_phases_into_one_history(tmp_path):
    base = T.conv_base(tiny_base, weights=None, input_shape=(16, 16, 3))
    model = T.transfer_model(base, hidden=8, dropout=0.0)
    x, y = synthetic(16)
    frozen = trainable_count(model)
    ckpt = tmp_path / "ckpt"
    result = T.fine_tune(
        model, (x, y), validation_data=(x, y), head_epochs=2, epochs=4, from_layer="block2_conv1",
        head_learning_rate=1e-3, learning_rate=1e-4, batch_size=8, checkpoint_dir=ckpt, progress=False,
    )
    assert isinstance(result, TrainResult) and result.model is model
    _, history, metrics = result
    assert history.epoch == [0, 1, 2, 3]
    assert metrics == {"loss": history.history["val_loss"][-1], "accuracy": history.history["val_accuracy"][-1]}
    assert result.settings["head_epochs"] == 2 and result.settings["epochs"] == 4
    assert len(history.history["loss"]) == 4 and len(history.history["val_loss"]) == 4
    assert history.params["head_epochs"] == 2
    assert trainable_count(model) > frozen
    assert base.get_layer("block2_conv1").trainable and not base.get_layer("block1_conv1").trainable
    assert (ckpt / "head").is_dir() and (ckpt / "fine_tune").is_dir()
    # the same call again resumes: nothing left to train, the same history back
    model2 = T.transfer_model(T.conv_base(tiny_base, weights=None, input_shape=(16, 16, 3)), hidden=8, dropout=0.0)
    _, again, _ = T.fine_tune(
        model2, (x, y), validation_data=(x, y), head_epochs=2, epochs=4, from_layer="block2_conv1",
        head_learning_rate=1e-3, learning_rate=1e-4, batch_size=8, checkpoint_dir=ckpt, progress=False,
    )
    np.testing.assert_allclose(again.history["loss"], history.history["loss"])
    for a, b in zip(model.get_weights(), model2.get_weights()):
        np.testing.assert_allclose(a, b)


def test_fine_tune_ends_in_run_recipe(monkeypatch):
    """fine_tune builds no result of its own: run_recipe resolves, trains (both phases) and reports (#20)."""
    import visionkit.training as training

    calls = []
    real = training.run_recipe

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "run_recipe", spy)
    model = _tiny_model()
    x, y = synthetic(16)
    result = T.fine_tune(model, (x, y), validation_data=(x, y), head_epochs=1, epochs=2, last_n=1, batch_size=8,
                         progress=False)
    assert len(calls) == 1 and calls[0]["fit"] is not None
    assert result.model is model and result.history.epoch == [0, 1]
    assert result.metrics == {"loss": result.history.history["val_loss"][-1],
                              "accuracy": result.history.history["val_accuracy"][-1]}


class _CrashAt(keras.callbacks.Callback):
    """Raise at the end of the n-th epoch counted over both phases (after the checkpoint)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n, self.seen = n, 0

    def on_epoch_end(self, epoch, logs=None):
        self.seen += 1
        if self.seen == self.n:
            raise RuntimeError("simulated crash")


def test_fine_tune_resumes_in_phase_two_after_a_crash(tmp_path):
    x, y = synthetic(16)
    kwargs = dict(head_epochs=2, epochs=5, from_layer="block2_conv1", batch_size=8,
                  checkpoint_dir=tmp_path / "ckpt", progress=False)
    model = T.transfer_model(T.conv_base(tiny_base, weights=None, input_shape=(16, 16, 3)), hidden=8, dropout=0.0)
    with pytest.raises(RuntimeError, match="simulated crash"):
        T.fine_tune(model, (x, y), callbacks=[_CrashAt(3)], **kwargs)  # dies after fine-tuning epoch 1
    state = json.loads((tmp_path / "ckpt" / "fine_tune" / "state.json").read_text())
    assert state["epoch"] == 1
    fresh = T.transfer_model(T.conv_base(tiny_base, weights=None, input_shape=(16, 16, 3)), hidden=8, dropout=0.0)
    counter = _CrashAt(0)
    _, history, metrics = T.fine_tune(fresh, (x, y), callbacks=[counter], **kwargs)
    assert metrics == {}  # no validation data
    assert counter.seen == 2  # only the 2 missing fine-tuning epochs ran
    assert history.epoch == [0, 1, 2, 3, 4]
    assert all(np.isfinite(history.history["loss"]))


@pytest.mark.parametrize("method", ["features", "frozen", "fine_tune"])
def test_train_transfer_methods_and_classify(tmp_path, method):
    root = tmp_path / "data"
    write_folder(root / "train", per_class=8)
    write_folder(root / "test", per_class=4, seed=1)
    model, history, metrics = T.train_transfer(
        root, base=tiny_base, weights=None, method=method, image_size=(16, 16), epochs=2,
        head_epochs=1, batch_size=8, head_learning_rate=1e-2, validation_split=0.25, augment=False,
        progress=False,
    )
    assert set(metrics) >= {"loss", "accuracy"}
    assert len(history.epoch) == 2  # epochs is the total, for every method
    assert class_names(model) == ["bright", "dark"]
    labels, probs = T.classify(model, sorted((root / "test" / "dark").glob("*.png")))
    assert probs.shape == (4, 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert set(labels) <= {"bright", "dark"}


def test_train_transfer_learns_and_classify_inputs(tmp_path):
    keras.utils.set_random_seed(0)  # the random-weight base: the same features on every run
    write_folder(tmp_path, per_class=12)
    model, _, metrics = T.train_transfer(
        tmp_path, base=tiny_base, weights=None, method="features", image_size=(16, 16), epochs=15,
        batch_size=8, head_learning_rate=1e-2, progress=False, seed=0,
    )
    assert metrics["accuracy"] >= 0.8
    x, y = synthetic(10, seed=5)
    labels, _ = T.classify(model, x)
    assert np.mean([lab == ("bright" if t else "dark") for lab, t in zip(labels, y)]) >= 0.8
    one, p1 = T.classify(model, x[0], class_names=["b", "d"])
    assert len(one) == 1 and p1.shape == (1, 2)
    big = np.repeat(np.repeat(x[:2], 2, axis=1), 2, axis=2)  # resized to the model's input
    assert T.classify(model, big)[1].shape == (2, 2)
    with pytest.raises(InvalidArgumentError, match="class_names"):
        T.classify(model, x, class_names=["a", "b", "c"])


def test_lr_find_does_not_touch_the_model():
    base = T.conv_base(tiny_base, weights=None, input_shape=(16, 16, 3))
    model = T.transfer_model(base, hidden=8, dropout=0.0)
    weights = [w.copy() for w in model.get_weights()]
    trainable = trainable_count(model)
    x, y = synthetic(32)
    result = T.lr_find(model, (x, y), min_lr=1e-5, max_lr=10.0, steps=30, batch_size=8, progress=False)
    assert 1e-5 <= result.suggestion <= 10.0
    assert len(result.losses) == len(result.learning_rates) <= 30
    assert np.all(np.diff(result.learning_rates) > 0)
    for a, b in zip(model.get_weights(), weights):
        np.testing.assert_array_equal(a, b)
    assert trainable_count(model) == trainable and not getattr(model, "compiled", False)
    fig = result.plot()
    assert fig.axes[0].get_xscale() == "log"


def test_cli_transfer_writes_outputs(tmp_path, capsys):
    from visionkit.cli import main

    write_folder(tmp_path / "data", per_class=6, size=32)
    out = tmp_path / "out"
    code = main([
        "transfer", str(tmp_path / "data"), "--base", "mobilenet_v2", "--method", "features",
        "--weights", "none", "--image-size", "32", "--epochs", "1", "--batch-size", "8",
        "--output", str(out), "--quiet",
    ])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["class_names"] == ["bright", "dark"] and "accuracy" in metrics["test"]
    assert metrics["settings"]["method"] == "features" and metrics["settings"]["learning_rate"] == 1e-5
    assert (out / "curves.png").stat().st_size > 0
    reloaded = keras.models.load_model(out / "model.keras")
    assert reloaded.output_shape == (None, 1)
    with pytest.raises(SystemExit) as info:
        main(["transfer", str(tmp_path / "data"), "--method", "bogus"])
    assert info.value.code == 2


def test_cli_bad_folder_is_a_clean_error(tmp_path, capsys):
    from visionkit.cli import main

    assert main(["transfer", str(tmp_path / "nowhere"), "--weights", "none", "--output", str(tmp_path / "o")]) == 1
    assert "nowhere" in capsys.readouterr().err



@pytest.mark.data
def test_real_cifar_cats_and_dogs_folder(real_data, tmp_path):
    """The recipe end to end on a small cat/dog tree cut from the real CIFAR-10."""
    from visionkit.data import CIFAR10_CLASSES, load_cifar10

    (x_train, y_train), (x_test, y_test) = load_cifar10()
    for split, xs, ys, n in (("train", x_train, y_train, 40), ("test", x_test, y_test, 10)):
        for name in ("cat", "dog"):
            label = CIFAR10_CLASSES.index(name)
            for i, img in enumerate(xs[ys[:, 0] == label][:n]):
                save_image(tmp_path / split / name / f"{i:03d}.png", img)
    model, history, metrics = T.train_transfer(
        tmp_path, base=tiny_base, weights=None, method="fine_tune", image_size=32, head_epochs=1,
        epochs=2, batch_size=16, last_n=1, augment=True, progress=False,
    )
    assert history.epoch == [0, 1]
    assert 0.0 <= metrics["accuracy"] <= 1.0
    labels, probs = T.classify(model, sorted((tmp_path / "test" / "cat").glob("*.png")))
    assert len(labels) == 10 and probs.shape == (10, 2)


# ----------------------------------------------------------------------------- one spine


class _Rates(keras.callbacks.Callback):
    """The optimizer's learning rate at the start of every epoch (over both phases)."""

    def __init__(self) -> None:
        super().__init__()
        self.rates: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.rates.append(float(np.asarray(self.model.optimizer.learning_rate)))


def _tiny_model(size: int = 16) -> keras.Model:
    return T.transfer_model(T.conv_base(tiny_base, weights=None, input_shape=(size, size, 3)), hidden=8, dropout=0.0)


def test_epochs_and_learning_rates_mean_the_same_in_fine_tune_and_train_transfer(tmp_path):
    """`epochs` is the total and the rates are head → base, in both functions."""
    x, y = synthetic(16)
    rates = _Rates()
    _, history, _ = T.fine_tune(_tiny_model(), (x, y), head_epochs=2, epochs=3, head_learning_rate=1e-2,
                                learning_rate=1e-4, from_layer="block2_conv1", batch_size=8, callbacks=[rates],
                                progress=False)
    assert history.epoch == [0, 1, 2]
    np.testing.assert_allclose(rates.rates, [1e-2, 1e-2, 1e-4], rtol=1e-6)

    write_folder(tmp_path / "data", per_class=6)
    recipe_rates = _Rates()
    _, history, _ = T.train_transfer(tmp_path / "data", base=tiny_base, weights=None, method="fine_tune",
                                     image_size=16, head_epochs=2, epochs=3, head_learning_rate=1e-2,
                                     learning_rate=1e-4, batch_size=8, augment=False, callbacks=[recipe_rates],
                                     progress=False)
    assert history.epoch == [0, 1, 2] and history.params["head_epochs"] == 2
    assert recipe_rates.rates == rates.rates
    # methods that never unfreeze the base train the head, at head_learning_rate
    frozen_rates = _Rates()
    T.train_transfer(tmp_path / "data", base=tiny_base, weights=None, method="frozen", image_size=16, epochs=2,
                     head_learning_rate=1e-2, batch_size=8, augment=False, callbacks=[frozen_rates], progress=False)
    np.testing.assert_allclose(frozen_rates.rates, [1e-2, 1e-2], rtol=1e-6)


def test_epochs_must_exceed_head_epochs(tmp_path):
    x, y = synthetic(8)
    with pytest.raises(InvalidArgumentError, match="total of both phases"):
        T.fine_tune(_tiny_model(), (x, y), head_epochs=5, epochs=5, from_layer="block2_conv1", progress=False)
    with pytest.raises(InvalidArgumentError, match="head_epochs=10"):
        T.train_transfer(tmp_path, base=tiny_base, weights=None, epochs=4, progress=False)  # default head_epochs
    # head_epochs=0 skips phase 1
    _, history, _ = T.fine_tune(_tiny_model(), (x, y), head_epochs=0, epochs=1, from_layer="block2_conv1",
                                batch_size=8, progress=False)
    assert history.epoch == [0] and history.params["head_epochs"] == 0


def test_unknown_option_is_refused_before_training(tmp_path):
    x, y = synthetic(8)
    with pytest.raises(UnexpectedArgumentError, match="did you mean `epochs`"):
        T.fine_tune(_tiny_model(), (x, y), epoch=3)
    with pytest.raises(UnexpectedArgumentError, match="did you mean `learning_rate`"):
        T.train_transfer(tmp_path, base=tiny_base, weights=None, learnig_rate=1e-3)


def test_class_names_survive_save_and_load(tmp_path):
    import visionkit.training  # noqa: F401  (registers the layers, as the docs say)

    root = tmp_path / "data"
    write_folder(root / "train", per_class=6)
    write_folder(root / "val", per_class=2, seed=1)  # the `val/` alias of `validation/`
    result = T.train_transfer(root, base=tiny_base, weights=None, method="frozen", image_size=16, epochs=1,
                              batch_size=8, augment=False, progress=False)
    assert result.class_names == ("bright", "dark")
    assert "val_loss" in result.history.history  # the val/ folder was the validation split
    assert result.settings["method"] == "frozen" and result.settings["seed"] is None
    result.model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert class_names(loaded) == ["bright", "dark"]
    x, _ = synthetic(4, seed=3)
    labels, probs = T.classify(loaded, x)
    np.testing.assert_allclose(probs, T.classify(result.model, x)[1], rtol=1e-5, atol=1e-6)
    assert set(labels) <= {"bright", "dark"}
    with pytest.raises(InvalidArgumentError, match="carries none"):
        T.classify(_tiny_model(), x)


def test_never_released_names_are_gone(tmp_path):
    """The 0.1 development names had no release to deprecate from: they are refused, not translated (#20)."""
    write_folder(tmp_path, per_class=6)
    with pytest.raises(UnexpectedArgumentError, match="fine_tune_learning_rate"):
        T.train_transfer(tmp_path, base=tiny_base, weights=None, fine_tune_learning_rate=1e-4)
    head = _Rates()
    T.train_transfer(tmp_path, base=tiny_base, weights=None, method="frozen", image_size=16, epochs=1,
                     head_learning_rate=1e-2, batch_size=8, augment=False, callbacks=[head], progress=False)
    np.testing.assert_allclose(head.rates, [1e-2], rtol=1e-6)


@pytest.mark.parametrize("method", ["features", "frozen"])
def test_head_only_methods_refuse_a_base_learning_rate(tmp_path, method):
    # the base never trains there: a `learning_rate` would be silently unused (the head's is head_learning_rate)
    write_folder(tmp_path, per_class=6)
    with pytest.raises(InvalidArgumentError, match=r"`learning_rate`.*head_learning_rate.*Received: learning_rate=0.01"):
        T.train_transfer(tmp_path, base=tiny_base, weights=None, method=method, image_size=16, epochs=1,
                         learning_rate=1e-2, progress=False)


def test_lr_find_takes_the_shared_optimizer_option():
    model = _tiny_model()
    x, y = synthetic(16)
    opt = keras.optimizers.Adam(learning_rate=0.5)
    result = T.lr_find(model, (x, y), min_lr=1e-5, max_lr=1.0, steps=8, optimizer=opt, batch_size=8,
                       progress=False)
    assert result.meta["optimizer"] == "Adam" and float(np.asarray(opt.learning_rate)) == 0.5
    assert not opt.built  # a copy trained, not the caller's optimizer
    with pytest.raises(InvalidArgumentError, match="optimizer"):
        T.lr_find(model, (x, y), optimizer="sgdd")
    with pytest.raises(InvalidArgumentError, match="batch_size"):
        T.lr_find(model, (x, y), batch_size=0)


def test_train_transfer_takes_every_shared_option(tmp_path, bfloat16_kernels):
    """optimizer, lr_schedule, log_dir, checkpoint_dir, strategy, precision and callbacks reach both phases."""
    write_folder(tmp_path / "data", per_class=6)
    rates = _Rates()
    result = T.train_transfer(
        tmp_path / "data", base=tiny_base, weights=None, image_size=16, head_epochs=1, epochs=2, batch_size=4,
        optimizer="adam", lr_schedule="cosine", learning_rate=1e-4, head_learning_rate=1e-2, strategy="default",
        precision="mixed_bfloat16", log_dir=tmp_path / "logs", checkpoint_dir=tmp_path / "ckpt", seed=3,
        callbacks=[rates], augment=False, progress=False,
    )
    assert len(rates.rates) == 2 and rates.rates[0] == pytest.approx(1e-2) and rates.rates[1] == pytest.approx(1e-4)
    for phase in ("head", "fine_tune"):
        assert (tmp_path / "logs" / phase / "metrics.csv").is_file()
        assert (tmp_path / "ckpt" / phase / "state.json").is_file()
    assert result.settings["precision"] == "mixed_bfloat16" and result.settings["optimizer"] == "adam"
    assert result.model.outputs[0].dtype == "float32"  # the head's output layer computes in float32
    assert set(result.paths) == {"checkpoint_dir", "log_dir"}


# ----------------------------------------------------------------------------- errors at the edges (#19)


@pytest.mark.parametrize(("name", "side", "low"), [("vgg16", 31, 32), ("mobilenet_v2", 8, 32), ("inception_v3", 74, 75),
                                                   ("xception", 70, 71)])
def test_conv_base_refuses_inputs_below_the_backbones_minimum(name, side, low):
    # before: Keras' bare ValueError ("Input size must be at least 32x32")
    with pytest.raises(InvalidArgumentError, match=rf"`input_shape`.*>= {low} for base '{name}'.*Received: input_shape=\({side}"):
        T.conv_base(name, weights=None, input_shape=(side, side, 3))


def test_conv_base_with_imagenet_weights_needs_three_channels():
    with pytest.raises(InvalidArgumentError, match=r"3 channels.*ImageNet.*Received: input_shape=\(64, 64, 1\)"):
        T.conv_base("vgg16", weights="imagenet", input_shape=(64, 64, 1))


@pytest.mark.parametrize("shape", [(2, 8, 8, 3), (2, 16, 16, 1)], ids=["wrong-size", "one-channel"])
def test_extract_features_and_lr_find_refuse_images_that_do_not_fit(shape):
    import tensorflow as tf

    base = T.conv_base(tiny_base, weights=None, input_shape=(16, 16, 3))
    images, labels = np.zeros(shape, np.float32), np.array([0, 1])
    pattern = r"`{}` must be a non-empty batch of shape \(N, 16, 16, 3\) for model 'tiny'"
    with pytest.raises(InvalidArgumentError, match=pattern.format("data")):
        T.extract_features(base, (images, labels), progress=False)
    with pytest.raises(InvalidArgumentError, match=pattern.format("data")):
        T.extract_features(base, tf.data.Dataset.from_tensor_slices((images, labels)), progress=False)
    model = keras.Model(base.inputs, keras.layers.Dense(1, activation="sigmoid")(keras.layers.Flatten()(base.output)))
    model.name = "tiny"
    with pytest.raises(InvalidArgumentError, match=pattern.format("train_data")):
        T.lr_find(model, (images, labels), steps=5, progress=False)


def test_classify_refuses_an_empty_batch():
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(2, activation="softmax")])
    # before: UnboundLocalError from inside Keras' predict
    with pytest.raises(InvalidArgumentError, match=r"`images`.*non-empty batch.*Received: images='array of shape \(0, 8, 8, 3\)'"):
        T.classify(model, np.zeros((0, 8, 8, 3)), class_names=["a", "b"])


@pytest.mark.parametrize(("base", "size", "low"), [("vgg16", 16, 32), ("inception_v3", (74, 100), 75)])
def test_train_transfer_names_image_size_below_the_backbones_minimum(tmp_path, base, size, low):
    # before: the folder was read, then conv_base's error named `input_shape` (Keras' before that);
    # now the check comes first: the folder (missing here) is not even looked at
    with pytest.raises(InvalidArgumentError, match=rf"`image_size` must be at least {low} pixels.*'{base}'.*Received: image_size="):
        T.train_transfer(tmp_path / "missing", base=base, weights=None, image_size=size, method="frozen", epochs=1,
                         progress=False)
