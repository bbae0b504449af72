"""The training tricks of the shared options: ema, tta, label_smoothing, one_cycle, augment (issue #22)."""

from __future__ import annotations

import json
import math

import keras
import numpy as np
import pytest
from callbacks import Crash, RateRecorder

from visionkit import training
from visionkit.errors import InvalidArgumentError, ResumeMismatchError

N, SIDE, CLASSES, BATCH = 48, 8, 3, 16
STEPS = N // BATCH


def tiny_images_model(classes: int = CLASSES, activation: str = "softmax") -> keras.Model:
    inputs = keras.Input((SIDE, SIDE, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(classes, activation=activation)(x))


@pytest.fixture(scope="module")
def images() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(N, SIDE, SIDE, 3)).astype("float32")
    y = (x[..., 0].mean(axis=(1, 2)) > 127).astype("int32") + (x[..., 1].mean(axis=(1, 2)) > 140).astype("int32")
    return x, y


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(("name", "value"), [
    ("ema", 1.0), ("ema", 0.0), ("ema", True), ("ema", "0.9"), ("ema", -0.5),
    ("tta", 1), ("tta", "yes"),
    ("label_smoothing", 1.0), ("label_smoothing", -0.1), ("label_smoothing", None),
    ("augment", "autoaugment"), ("augment", True),
    ("lr_schedule", "onecycle"),
])
def test_trick_options_are_checked(name, value):
    with pytest.raises(InvalidArgumentError, match=f"`{name}`"):
        training.TrainOptions(**{name: value})


def test_trick_options_accept_their_values_and_record_them():
    opts = training.TrainOptions(ema=0.999, tta=True, label_smoothing=0.1, augment="mixup", lr_schedule="one_cycle")
    assert {k: opts.to_dict()[k] for k in ("ema", "tta", "label_smoothing", "augment", "lr_schedule")} == {
        "ema": 0.999, "tta": True, "label_smoothing": 0.1, "augment": "mixup", "lr_schedule": "one_cycle"}
    assert training.TrainOptions(ema=False).ema is None
    for name in ("ema", "tta", "label_smoothing", "augment"):
        assert name in training.TRAINING_OPTIONS
    assert training.AUGMENT_PRESETS[0] == "none"


def test_ema_with_an_optimizer_instance_is_refused():
    with pytest.raises(InvalidArgumentError, match="`ema`.*use_ema"):
        training.TrainOptions(optimizer=keras.optimizers.Adam(), ema=0.9)


def test_label_smoothing_and_mixing_refuse_an_explicit_loss(images):
    with pytest.raises(InvalidArgumentError, match="`label_smoothing`"):
        training.train(tiny_images_model(), images, loss="sparse_categorical_crossentropy", label_smoothing=0.1,
                       epochs=1, progress=False)
    with pytest.raises(InvalidArgumentError, match="`augment`"):
        training.train(tiny_images_model(), images, loss="sparse_categorical_crossentropy", augment="mixup",
                       epochs=1, progress=False)


def test_recipes_take_a_preset_or_their_switch():
    from visionkit import convnets

    with pytest.raises(InvalidArgumentError, match="`augment`"):
        convnets.train_image_folder(sample=True, image_size=48, augment="strong", epochs=1, progress=False)
    with pytest.raises(InvalidArgumentError, match="`augment`"):
        convnets.train_cifar10_fast(sample=True, augment="light", epochs=1, progress=False)
    with pytest.raises(InvalidArgumentError, match="`lr_schedule`"):
        convnets.train_cifar10_fast(sample=True, lr_schedule="one_cycle", epochs=1, progress=False)


# ----------------------------------------------------------------------------- ema


def test_ema_weights_are_what_is_evaluated_and_saved(images, tmp_path):
    model = tiny_images_model()
    seen: dict[str, list[np.ndarray]] = {}

    class Live(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):  # the last one is before fit swaps the average in
            seen["live"] = [v.numpy().copy() for v in self.model.trainable_variables]
            seen["average"] = [self.model.optimizer._model_variables_moving_average[i].numpy().copy()
                               for i in range(len(self.model.trainable_variables))]

    result = training.run_recipe(lambda: model, images, test_data=images, options=training.TrainOptions(
        epochs=3, batch_size=BATCH, optimizer="adam", learning_rate=0.05, ema=0.5, progress=False,
        callbacks=(Live(),)))
    final = [v.numpy() for v in result.model.trainable_variables]
    assert any(not np.allclose(a, b) for a, b in zip(seen["live"], seen["average"]))
    for got, want in zip(final, seen["average"]):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    assert result.metrics == pytest.approx(training.evaluate(result.model, images, batch_size=BATCH), rel=1e-5)
    saved = result.save(tmp_path / "out")
    loaded = training.load_model(saved.paths["model"])
    for got, want in zip(loaded.trainable_variables, seen["average"]):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-6)


def test_resume_with_ema_is_exact(images, tmp_path):
    # a dataset of the caller's own, in a fixed order (arrays: the test below)
    def run(**kw):
        keras.utils.set_random_seed(1)
        model = tiny_images_model()
        training.train(model, batches(*images), epochs=4, optimizer="adam", learning_rate=0.02, ema=0.8,
                       progress=False, **kw)
        return [v.numpy() for v in model.trainable_variables]

    straight = run()
    ckpt = tmp_path / "ema"
    with pytest.raises(RuntimeError, match="simulated crash"):
        run(checkpoint_dir=ckpt, callbacks=[Crash(2)])
    assert '"use_ema": true' in json.loads((ckpt / "settings.json").read_text())["optimizer_config"]
    resumed = run(checkpoint_dir=ckpt)
    for a, b in zip(straight, resumed):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    with pytest.raises(ResumeMismatchError, match="ema_momentum"):
        training.train(tiny_images_model(), batches(*images), epochs=4, optimizer="adam", learning_rate=0.02,
                       ema=0.9, progress=False, checkpoint_dir=ckpt)



@pytest.mark.parametrize("augment", ["none", "light"])
def test_resume_on_arrays_sees_the_batches_of_an_uninterrupted_run(images, tmp_path, augment):
    # arrays are reshuffled every epoch and the seeded augmentation draws anew every batch;
    # that random state lives in the pipeline, so a resumed run must carry it on, not start over
    def run(**kw):
        keras.utils.set_random_seed(1)
        model = tiny_images_model()
        training.train(model, images, epochs=4, batch_size=BATCH, optimizer="adam", learning_rate=0.02,
                       augment=augment, seed=3, progress=False, **kw)
        return [v.numpy() for v in model.trainable_variables]

    straight = run()
    ckpt = tmp_path / augment
    with pytest.raises(RuntimeError, match="simulated crash"):
        run(checkpoint_dir=ckpt, callbacks=[Crash(2)])
    resumed = run(checkpoint_dir=ckpt)
    for a, b in zip(straight, resumed):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)

# ----------------------------------------------------------------------------- tta


def test_tta_metrics_equal_a_manual_flip_average(images):
    x, y = images
    model = tiny_images_model()
    training.train(model, images, epochs=1, batch_size=BATCH, progress=False)
    got = training.evaluate(model, images, tta=True, batch_size=BATCH)
    probs = (model.predict(x, verbose=0) + model.predict(x[:, :, ::-1], verbose=0)) / 2
    want_loss = float(np.mean(-np.log(np.clip(probs[np.arange(N), y], 1e-7, 1))))
    assert got["accuracy"] == pytest.approx(float(np.mean(probs.argmax(-1) == y)))
    assert got["loss"] == pytest.approx(want_loss, rel=1e-4)


def test_run_recipe_reports_metrics_with_and_without_tta(images):
    result = training.run_recipe(tiny_images_model, images, test_data=images,
                                 options=training.TrainOptions(epochs=1, tta=True, progress=False))
    assert sorted(result.metrics) == ["accuracy", "accuracy_no_tta", "loss", "loss_no_tta"]
    plain = training.evaluate(result.model, images)
    assert result.metrics["accuracy_no_tta"] == pytest.approx(plain["accuracy"])
    assert result.metrics["accuracy"] == pytest.approx(training.evaluate(result.model, images, tta=True)["accuracy"])


def test_tta_refuses_a_model_without_image_input():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))
    with pytest.raises(InvalidArgumentError, match="`tta`"):
        training.evaluate(model, (np.zeros((4, 4), "float32"), np.zeros(4, "int32")), tta=True)


# ----------------------------------------------------------------------------- label smoothing


def test_label_smoothing_changes_the_loss_as_the_formula_says():
    from visionkit._losses import resolve_loss

    model = tiny_images_model(activation="linear")  # logits
    logits = np.array([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]], "float32")
    labels = np.array([0, 1])
    eps = 0.2
    loss, metrics, desc = resolve_loss(model, None, ("accuracy",), {"label_shape": ()}, label_smoothing=eps)
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    targets = np.eye(CLASSES)[labels] * (1 - eps) + eps / CLASSES
    want = float(np.mean(-(targets * log_p).sum(-1)))
    assert float(loss(labels, logits)) == pytest.approx(want, rel=1e-5)
    assert float(loss(np.eye(CLASSES)[labels], logits)) == pytest.approx(want, rel=1e-5)  # soft rows too
    assert "label_smoothing=0.2" in desc
    plain, _, plain_desc = resolve_loss(model, None, (), {"label_shape": ()})
    assert float(plain(labels, logits)) == pytest.approx(float(np.mean(-log_p[np.arange(2), labels])), rel=1e-5)
    assert plain_desc == "SparseCategoricalCrossentropy(from_logits=True)"  # unchanged for old folders
    # a one-unit binary head: Keras' binary smoothing, y (1 - eps) + eps / 2
    binary = tiny_images_model(classes=1, activation="sigmoid")
    bce, _, _ = resolve_loss(binary, None, (), {"label_shape": ()}, label_smoothing=eps)
    p, t = np.array([[0.8]], "float32"), 1.0 * (1 - eps) + eps / 2
    assert float(bce(np.array([[1.0]]), p)) == pytest.approx(-(t * math.log(0.8) + (1 - t) * math.log(0.2)), rel=1e-4)


def test_label_smoothing_trains_and_is_refused_on_resume_when_changed(images, tmp_path):
    ckpt = tmp_path / "ls"
    training.train(tiny_images_model(), images, epochs=1, label_smoothing=0.1, checkpoint_dir=ckpt, progress=False)
    with pytest.raises(ResumeMismatchError, match="label_smoothing"):
        training.train(tiny_images_model(), images, epochs=2, checkpoint_dir=ckpt, progress=False)


# ----------------------------------------------------------------------------- one cycle


def one_cycle(step: int, total: int, peak: float) -> float:
    warm, lo = 0.3 * total, peak / 25
    end = lo / 1e4
    if step < warm:
        return lo + (peak - lo) * (1 - math.cos(math.pi * step / warm)) / 2
    return end + (peak - end) * (1 + math.cos(math.pi * min((step - warm) / (total - warm), 1))) / 2


def test_one_cycle_rates_follow_the_formula_and_survive_resume(images, tmp_path):
    epochs, total = 4, 4 * STEPS
    expected = [one_cycle(s, total, 0.01) for s in range(total)]
    rates = RateRecorder()
    training.train(tiny_images_model(), images, epochs=epochs, batch_size=BATCH, optimizer="adam", learning_rate=0.01,
                   lr_schedule="one_cycle", progress=False, callbacks=[rates])
    np.testing.assert_allclose(rates.rates, expected, rtol=1e-5, atol=1e-9)
    assert max(expected) == pytest.approx(0.01, rel=0.05)
    ckpt = tmp_path / "cycle"
    with pytest.raises(RuntimeError, match="simulated crash"):
        training.train(tiny_images_model(), images, epochs=epochs, batch_size=BATCH, optimizer="adam",
                       learning_rate=0.01, lr_schedule="one_cycle", checkpoint_dir=ckpt, progress=False,
                       callbacks=[Crash(2)])
    assert "one_cycle over 4 epochs of 3 steps" in (ckpt / "settings.json").read_text()
    resumed = RateRecorder()
    training.train(tiny_images_model(), images, epochs=epochs, batch_size=BATCH, optimizer="adam", learning_rate=0.01,
                   lr_schedule="one_cycle", checkpoint_dir=ckpt, progress=False, callbacks=[resumed])
    np.testing.assert_allclose(resumed.rates, expected[2 * STEPS:], rtol=1e-5, atol=1e-9)
    with pytest.raises(ResumeMismatchError, match="lr_schedule"):
        training.train(tiny_images_model(), images, epochs=epochs, batch_size=BATCH, optimizer="adam",
                       learning_rate=0.01, lr_schedule="cosine", checkpoint_dir=ckpt, progress=False)


def test_one_cycle_schedule_serialises():
    schedule = training.OneCycle(0.1, 100)
    again = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(schedule))
    assert [float(again(s)) for s in (0, 50, 100)] == pytest.approx([float(schedule(s)) for s in (0, 50, 100)])


# ----------------------------------------------------------------------------- augmentation


def batches(x, y):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH)


@pytest.mark.parametrize("preset", ["flip", "light", "randaugment", "erasing", "mixup", "cutmix"])
def test_presets_keep_shape_dtype_range_and_are_seeded(images, preset):
    from visionkit._tricks import augment_batches

    x, y = images
    first = list(augment_batches(batches(x.astype("uint8"), y), preset, units=CLASSES, seed=7))
    again = list(augment_batches(batches(x.astype("uint8"), y), preset, units=CLASSES, seed=7))
    for (xa, ya), (xb, yb) in zip(first, again):
        assert xa.shape == (BATCH, SIDE, SIDE, 3) and xa.dtype.name == "float32"
        assert 0.0 <= float(np.min(xa)) and float(np.max(xa)) <= 255.0
        np.testing.assert_array_equal(xa.numpy(), xb.numpy())
        np.testing.assert_array_equal(ya.numpy(), yb.numpy())
    assert any(not np.array_equal(xa.numpy(), x[i * BATCH:(i + 1) * BATCH]) for i, (xa, _) in enumerate(first))
    if preset in ("mixup", "cutmix"):
        for _, ya in first:
            assert ya.shape == (BATCH, CLASSES) and ya.dtype.name == "float32"
            np.testing.assert_allclose(ya.numpy().sum(-1), 1.0, rtol=1e-5)
            assert 0.0 <= float(np.min(ya)) and float(np.max(ya)) <= 1.0


def test_presets_run_batched_in_graph_mode(images):
    import tensorflow as tf

    from visionkit._tricks import augment_batches

    x, y = images
    calls = []
    ds = batches(x, y).map(lambda a, b: (calls.append(tf.executing_eagerly()) or a, b))
    out = augment_batches(ds, "randaugment", units=CLASSES, seed=1)
    graph = tf.function(lambda d: d.reduce(0.0, lambda acc, e: acc + tf.reduce_sum(e[0])))
    assert np.isfinite(float(graph(out)))
    assert calls == [False]  # traced once, as a graph function, not run per image in Python
    graph_def = out._as_serialized_graph().numpy()
    assert b"PyFunc" not in graph_def and b"RandomFlip" not in graph_def.replace(b"random_flip", b"")


def test_mixup_trains_a_sparse_head_and_evaluates_on_class_indices(images, tmp_path):
    result = training.run_recipe(tiny_images_model, images, validation_data=images, test_data=images,
                                 options=training.TrainOptions(epochs=2, augment="mixup", seed=0, progress=False,
                                                               label_smoothing=0.1, checkpoint_dir=tmp_path / "mix"))
    assert sorted(result.metrics) == ["accuracy", "loss"] and np.isfinite(result.metrics["loss"])
    settings = json.loads((tmp_path / "mix" / "settings.json").read_text())
    assert settings["augment"] == "mixup" and "SoftCrossentropy" in settings["loss"]
    with pytest.raises(ResumeMismatchError, match="augment"):
        training.train(tiny_images_model(), images, epochs=3, augment="cutmix", label_smoothing=0.1,
                       checkpoint_dir=tmp_path / "mix", progress=False)


def test_mixup_on_a_binary_head(images):
    x, y = images
    model = tiny_images_model(classes=1, activation="sigmoid")
    history = training.train(model, (x, (y > 0).astype("int32")), epochs=1, augment="cutmix", seed=0, progress=False)
    assert np.isfinite(history.history["loss"][0])


def test_image_folder_recipe_takes_the_tricks():
    from visionkit import convnets

    result = convnets.train_image_folder(sample=True, image_size=48, augment="light", tta=True, ema=0.9,
                                         label_smoothing=0.1, lr_schedule="one_cycle", epochs=1, seed=0,
                                         progress=False)
    assert sorted(result.metrics) == ["accuracy", "accuracy_no_tta", "loss", "loss_no_tta"]
    assert result.settings["augment"] == "light" and result.settings["ema"] == 0.9
    assert not any("random" in layer.name for layer in result.model.layers)  # no in-model augmentation


# ----------------------------------------------------------------------------- command line


def test_cli_takes_the_tricks(tmp_path):
    from visionkit.cli import main

    out = tmp_path / "out"
    argv = ["train", "--sample", "--image-size", "48x48", "--epochs", "1", "--augment", "flip", "--ema", "0.9",
            "--tta", "--label-smoothing", "0.05", "--lr-schedule", "one_cycle", "-o", str(out), "-q"]
    assert main(argv) == 0
    written = json.loads((out / "metrics.json").read_text())
    assert {k: written["settings"][k] for k in ("augment", "ema", "tta", "label_smoothing", "lr_schedule")} == {
        "augment": "flip", "ema": 0.9, "tta": True, "label_smoothing": 0.05, "lr_schedule": "one_cycle"}
    assert "accuracy_no_tta" in written["test"]


def test_cli_fast_recipe_refuses_the_classic_only_tricks(capsys):
    from visionkit.cli import main

    assert main(["cifar10", "--sample", "--ema", "0.9", "-q"]) == 2
    assert "--ema" in capsys.readouterr().err
