"""Checkpoint hardening: in-memory NaN restore, resume="weights", verified weights files with fallback."""

from __future__ import annotations

import argparse
import hashlib
import json

import keras
import numpy as np
import pytest

from visionkit import training
from visionkit.errors import ResumeMismatchError, VisionkitError

N, FEATURES, CLASSES, BATCH = 64, 8, 3, 16
STEPS = N // BATCH


def tiny_model(units: int = 4) -> keras.Model:
    inputs = keras.Input((FEATURES,))
    x = keras.layers.Dense(units, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(CLASSES, activation="softmax")(x))


@pytest.fixture(scope="module")
def arrays() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, FEATURES)).astype("float32")
    return x, (x[:, 0] > 0).astype("int32") + (x[:, 1] > 1).astype("int32")


class Poison(keras.callbacks.Callback):
    """Sets the head's weights to NaN at the start of epoch ``at``; keeps the weights after each epoch."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at = at
        self.after: dict[int, list[np.ndarray]] = {}

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at:
            for w in self.model.layers[-1].weights:
                w.assign(np.full(w.shape, np.nan, dtype="float32"))

    def on_epoch_end(self, epoch, logs=None):
        self.after[epoch + 1] = self.model.get_weights()


class Recorder(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.epochs: list[int] = []
        self.start_weights: list[np.ndarray] = []
        self.iterations_at_start = -1
        self.rates: list[float] = []

    def on_train_begin(self, logs=None):
        self.start_weights = self.model.get_weights()
        self.iterations_at_start = int(self.model.optimizer.iterations.numpy())

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)

    def on_train_batch_begin(self, batch, logs=None):
        self.rates.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))


def _same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(np.array_equal(u, v) for u, v in zip(a, b))


# ----------------------------------------------------------------------------- NaN: in-memory restore


def test_nan_in_first_epoch_without_checkpoint_dir_restores_initial_weights(arrays):
    x, y = arrays
    bad = x.copy()
    bad[5, 2] = np.inf  # one bad input: the loss is NaN from the first epoch
    model = tiny_model()
    before = model.get_weights()
    with pytest.warns(RuntimeWarning, match="in-memory copy of the weights before training"):
        training.train(model, (bad, y), epochs=3, batch_size=BATCH, progress=False)
    assert _same(model.get_weights(), before)


def test_nan_later_without_checkpoint_dir_restores_last_finite_epoch(arrays):
    model, poison = tiny_model(), Poison(at=2)
    with pytest.warns(RuntimeWarning, match=r"after epoch 2\b.*train\(\) again"):
        history = training.train(model, arrays, epochs=5, batch_size=BATCH, progress=False, optimizer="adam",
                                 callbacks=[poison])
    assert len(history.history["loss"]) == 3
    assert _same(model.get_weights(), poison.after[2])
    assert int(model.optimizer.iterations.numpy()) == 2 * STEPS  # the optimizer state came back too


def test_nan_with_checkpoint_dir_names_memory_copy_and_file_and_the_resume_option(arrays, tmp_path):
    model, poison = tiny_model(), Poison(at=1)
    with pytest.warns(RuntimeWarning, match=r'after epoch 1, the same as .*epoch-0001\.weights\.h5.*resume="weights"'):
        training.train(model, arrays, epochs=4, batch_size=BATCH, progress=False, checkpoint_dir=tmp_path / "c",
                       callbacks=[poison])
    assert _same(model.get_weights(), poison.after[1])


def test_restore_last_good_reads_the_file_without_a_memory_copy(arrays, tmp_path):
    training.train(tiny_model(), arrays, epochs=2, batch_size=BATCH, progress=False, checkpoint_dir=tmp_path / "c")
    guard = training.Checkpoint(tmp_path / "c", monitor="loss")
    model = tiny_model()
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy")
    model.optimizer.build(model.trainable_variables)
    assert "epoch-0002.weights.h5" in guard.restore_last_good(model)
    assert training.Checkpoint(None).restore_last_good(model) is None


# ----------------------------------------------------------------------------- resume="weights"


def test_lower_learning_rate_after_nan_needs_resume_weights(arrays, tmp_path):
    ckpt = tmp_path / "c"
    poison = Poison(at=2)
    with pytest.warns(RuntimeWarning, match="NaN or infinite"):
        training.train(tiny_model(), arrays, epochs=6, batch_size=BATCH, progress=False, optimizer="adam",
                       learning_rate=0.01, checkpoint_dir=ckpt, callbacks=[poison])
    # the default refuses the new rate, and the message names the way out
    with pytest.raises(ResumeMismatchError, match=r'(?s)learning_rate.*resume="weights".*--resume weights'):
        training.train(tiny_model(), arrays, epochs=4, batch_size=BATCH, progress=False, optimizer="adam",
                       learning_rate=0.001, checkpoint_dir=ckpt)
    model, rec = tiny_model(), Recorder()
    history = training.train(model, arrays, epochs=4, batch_size=BATCH, progress=False, optimizer="adam",
                             learning_rate=0.001, checkpoint_dir=ckpt, resume="weights", callbacks=[rec])
    assert rec.epochs == [2, 3]  # epochs count on from the checkpoint's epoch; `epochs` is the total
    assert rec.iterations_at_start == 0  # a fresh optimizer
    assert rec.rates[0] == pytest.approx(0.001)  # the new rate, not the one saved with the old optimizer
    assert _same(rec.start_weights, poison.after[2])  # the checkpoint's model weights
    assert len(history.history["loss"]) == 4 and all(np.isfinite(history.history["loss"]))
    settings = json.loads((ckpt / "settings.json").read_text())
    previous = json.loads((ckpt / "settings.previous.json").read_text())
    assert settings["restart_epoch"] == 2 and settings["optimizer"] != previous["optimizer"]
    # the same call again (more epochs) resumes normally, optimizer state included
    rec = Recorder()
    training.train(tiny_model(), arrays, epochs=5, batch_size=BATCH, progress=False, optimizer="adam",
                   learning_rate=0.001, checkpoint_dir=ckpt, resume="weights", callbacks=[rec])
    assert rec.epochs == [4] and rec.iterations_at_start == 2 * STEPS


def test_resume_weights_cosine_spans_the_remaining_epochs(arrays, tmp_path):
    ckpt = tmp_path / "c"
    training.train(tiny_model(), arrays, epochs=2, batch_size=BATCH, progress=False, checkpoint_dir=ckpt)
    rec = Recorder()
    training.train(tiny_model(), arrays, epochs=4, batch_size=BATCH, progress=False, optimizer="adam",
                   learning_rate=0.01, lr_schedule="cosine", checkpoint_dir=ckpt, resume="weights", callbacks=[rec])
    total = 2 * STEPS
    expected = [0.01 * 0.5 * (1 + np.cos(np.pi * step / total)) for step in range(total)]
    np.testing.assert_allclose(rec.rates, expected, rtol=1e-5, atol=1e-9)
    assert "cosine over 2 epochs" in (ckpt / "settings.json").read_text()


def test_resume_weights_cannot_change_the_model_and_never_refuses_a_used_folder(arrays, tmp_path):
    ckpt = tmp_path / "c"
    training.train(tiny_model(), arrays, epochs=1, batch_size=BATCH, progress=False, checkpoint_dir=ckpt)
    with pytest.raises(ResumeMismatchError, match="cannot change the model"):
        training.train(tiny_model(units=5), arrays, epochs=2, batch_size=BATCH, progress=False,
                       checkpoint_dir=ckpt, resume="weights")
    with pytest.raises(ResumeMismatchError, match='resume="never"'):
        training.train(tiny_model(), arrays, epochs=2, batch_size=BATCH, progress=False, checkpoint_dir=ckpt,
                       resume="never")
    training.train(tiny_model(), arrays, epochs=1, batch_size=BATCH, progress=False,
                   checkpoint_dir=tmp_path / "new", resume="never")
    with pytest.raises(VisionkitError, match="resume"):
        training.train(tiny_model(), arrays, epochs=1, progress=False, resume="yes")


def test_cli_resume_options():
    from visionkit._cli._recipe import add_training_options, training_options

    parser = argparse.ArgumentParser()
    add_training_options(parser, defaults={}, output="out")
    assert training_options(parser.parse_args([]))["resume"] == "auto"
    assert training_options(parser.parse_args(["--resume", "weights"]))["resume"] == "weights"
    assert training_options(parser.parse_args(["--restart-from-checkpoint"]))["resume"] == "weights"
    assert training.TrainOptions.from_kwargs(training_options(parser.parse_args(["--resume", "never"]))).resume == "never"


# ----------------------------------------------------------------------------- damaged weights files


def _three_epochs(arrays, folder) -> dict[int, list[np.ndarray]]:
    keep = Poison(at=-1)
    training.train(tiny_model(), arrays, epochs=3, batch_size=BATCH, progress=False, checkpoint_dir=folder,
                   callbacks=[keep])
    return keep.after


def _truncate(f):
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


def _empty(f):
    f.write_bytes(b"")


def _flip(f):
    data = bytearray(f.read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 16):
        data[i] ^= 0xFF
    f.write_bytes(bytes(data))


def _delete(f):
    f.unlink()


@pytest.mark.parametrize("damage", [_truncate, _empty, _flip, _delete], ids=["truncated", "empty", "flipped", "deleted"])
def test_damaged_weights_fall_back_to_the_previous_epoch(arrays, tmp_path, damage):
    ckpt = tmp_path / "c"
    after = _three_epochs(arrays, ckpt)
    state = json.loads((ckpt / "state.json").read_text())
    assert (state["weights"], state["previous"]["weights"]) == ("epoch-0003.weights.h5", "epoch-0002.weights.h5")
    damage(ckpt / "epoch-0003.weights.h5")
    rec = Recorder()
    with pytest.warns(RuntimeWarning, match=r"epoch-0003\.weights\.h5.*previous one.*epoch-0002\.weights\.h5"):
        history = training.train(tiny_model(), arrays, epochs=4, batch_size=BATCH, progress=False,
                                 checkpoint_dir=ckpt, callbacks=[rec])
    assert rec.epochs == [2, 3] and _same(rec.start_weights, after[2])
    assert len(history.history["loss"]) == 4
    state = json.loads((ckpt / "state.json").read_text())
    assert state["epoch"] == 4 and state["previous"]["epoch"] == 3
    assert sorted(p.name for p in ckpt.glob("*.weights.h5")) == ["epoch-0003.weights.h5", "epoch-0004.weights.h5"]


def test_damaged_weights_without_fallback_name_the_file(arrays, tmp_path):
    ckpt = tmp_path / "c"
    _three_epochs(arrays, ckpt)
    _flip(ckpt / "epoch-0003.weights.h5")
    _empty(ckpt / "epoch-0002.weights.h5")
    with pytest.raises(ResumeMismatchError, match=r"epoch-0003\.weights\.h5.*damaged.*epoch-0002\.weights\.h5"):
        training.train(tiny_model(), arrays, epochs=4, batch_size=BATCH, progress=False, checkpoint_dir=ckpt)
    (ckpt / "epoch-0002.weights.h5").unlink()
    with pytest.raises(ResumeMismatchError, match=r"epoch-0003\.weights\.h5.*damaged.*epoch-0002.*missing"):
        training.train(tiny_model(), arrays, epochs=4, batch_size=BATCH, progress=False, checkpoint_dir=ckpt)


def _old_format(ckpt) -> None:
    """Rewrite state.json as visionkit wrote it before hashes: one file, no sha256, no previous."""
    state = json.loads((ckpt / "state.json").read_text())
    for key in ("sha256", "previous", "restart_epoch"):
        state.pop(key)
    (ckpt / "state.json").write_text(json.dumps(state))


def test_old_state_without_hashes_resumes_and_a_bad_file_is_named(arrays, tmp_path):
    ckpt = tmp_path / "c"
    after = _three_epochs(arrays, ckpt)
    _old_format(ckpt)
    rec = Recorder()
    training.train(tiny_model(), arrays, epochs=4, batch_size=BATCH, progress=False, checkpoint_dir=ckpt,
                   callbacks=[rec])
    assert rec.epochs == [3] and _same(rec.start_weights, after[3])
    _old_format(ckpt)
    _truncate(ckpt / "epoch-0004.weights.h5")  # no hash to check: the load itself fails, by name
    with pytest.raises(ResumeMismatchError, match=r"Cannot load the checkpoint '.*epoch-0004\.weights\.h5'"):
        training.train(tiny_model(), arrays, epochs=5, batch_size=BATCH, progress=False, checkpoint_dir=ckpt)


# ----------------------------------------------------------------------------- nothing outside the folder


def _write_state(ckpt, **changes) -> None:
    state = json.loads((ckpt / "state.json").read_text())
    for key, value in changes.items():
        if key == "previous_weights":
            state["previous"]["weights"] = value
        else:
            state[key] = value
    (ckpt / "state.json").write_text(json.dumps(state))


@pytest.mark.parametrize("kind", ["relative", "absolute"])
def test_state_naming_a_file_outside_the_folder_never_touches_it(arrays, tmp_path, kind):
    ckpt = tmp_path / "run" / "c"
    victim = tmp_path / "run" / "victim"
    victim.parent.mkdir()
    victim.write_bytes(b"precious")
    name = "../victim" if kind == "relative" else str(victim)
    _three_epochs(arrays, ckpt)
    # the previous entry names it: the old code deleted it as a stale weights file
    _write_state(ckpt, previous_weights=name)
    rec = Recorder()
    with pytest.warns(RuntimeWarning, match=r"(?s)previous checkpoint .*victim.*not a weights file name.*ignored"):
        training.train(tiny_model(), arrays, epochs=5, batch_size=BATCH, progress=False, checkpoint_dir=ckpt,
                       callbacks=[rec])
    assert rec.epochs == [3, 4] and victim.read_bytes() == b"precious"
    # the current entry names it (with its true hash): damaged, so the previous epoch's file is used
    _write_state(ckpt, weights=name, sha256=hashlib.sha256(b"precious").hexdigest())
    rec = Recorder()
    with pytest.warns(RuntimeWarning, match=r"(?s)victim.*not a weights file name.*previous one.*epoch-0004"):
        training.train(tiny_model(), arrays, epochs=6, batch_size=BATCH, progress=False, checkpoint_dir=ckpt,
                       callbacks=[rec])
    assert rec.epochs == [4, 5] and victim.read_bytes() == b"precious"
    # both: nothing to fall back to, so the error names both entries
    _write_state(ckpt, weights=name, previous_weights=name)
    with pytest.raises(ResumeMismatchError, match=r"(?s)victim.*not a weights file name.*victim.*not a weights"):
        training.train(tiny_model(), arrays, epochs=7, batch_size=BATCH, progress=False, checkpoint_dir=ckpt)
    assert victim.read_bytes() == b"precious"


def test_weights_file_linking_out_of_the_folder_is_not_read(arrays, tmp_path):
    ckpt = tmp_path / "c"
    after = _three_epochs(arrays, ckpt)
    outside = tmp_path / "outside.weights.h5"
    data = (ckpt / "epoch-0003.weights.h5").read_bytes()
    outside.write_bytes(data)  # the very same bytes, so its recorded hash matches
    (ckpt / "epoch-0003.weights.h5").unlink()
    (ckpt / "epoch-0003.weights.h5").symlink_to(outside)
    rec = Recorder()
    with pytest.warns(RuntimeWarning, match=r"epoch-0003\.weights\.h5.*link to a file outside.*epoch-0002"):
        training.train(tiny_model(), arrays, epochs=4, batch_size=BATCH, progress=False, checkpoint_dir=ckpt,
                       callbacks=[rec])
    assert rec.epochs == [2, 3] and _same(rec.start_weights, after[2])
    assert outside.read_bytes() == data  # the link was replaced, not the file it pointed to
    assert not (ckpt / "epoch-0003.weights.h5").is_symlink()


# ----------------------------------------------------------------------------- one job per callback (#20)


def test_train_composes_single_job_callbacks_without_keras_terminate_on_nan(arrays, tmp_path, monkeypatch):
    """The NaN guard is visionkit's own; Keras' TerminateOnNaN on top of it was a second copy of the job."""
    def refuse(self, *args, **kwargs):
        raise AssertionError("train() added keras.callbacks.TerminateOnNaN beside its own NaN guard")

    monkeypatch.setattr(keras.callbacks.TerminateOnNaN, "__init__", refuse)
    model, poison = tiny_model(), Poison(at=1)
    with pytest.warns(RuntimeWarning, match="NaN or infinite"):
        training.train(model, arrays, epochs=3, batch_size=BATCH, progress=False, checkpoint_dir=tmp_path / "c",
                       callbacks=[poison])
    assert _same(model.get_weights(), poison.after[1])
    assert (tmp_path / "c" / "best.keras").is_file()
    assert json.loads((tmp_path / "c" / "state.json").read_text())["epoch"] == 1


def test_each_checkpoint_job_is_its_own_callback(arrays, tmp_path):
    from visionkit._best import BestModel
    from visionkit._checkpoint import EpochCheckpoint
    from visionkit._nan_guard import NanGuard

    model = tiny_model()
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy")
    resume = EpochCheckpoint(tmp_path / "resume", monitor="loss")
    best = BestModel(tmp_path / "best.keras", monitor="loss")
    model.fit(*arrays, epochs=2, batch_size=BATCH, verbose=0, callbacks=[NanGuard(), best, resume])
    assert sorted(p.name for p in (tmp_path / "resume").iterdir()) == [
        "epoch-0001.weights.h5", "epoch-0002.weights.h5", "state.json"]  # no best.keras: another job
    assert (tmp_path / "best.keras").is_file() and best.best == resume.best
    assert isinstance(training.Checkpoint(None), EpochCheckpoint)
