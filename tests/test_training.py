"""visionkit.training: train/evaluate, default losses, resume, refusal, NaN, logs."""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import keras
import numpy as np
import pytest
from callbacks import Crash, RateRecorder

from visionkit import training
from visionkit.errors import (
    CheckpointLockedError,
    InvalidArgumentError,
    ResumeMismatchError,
    VisionkitError,
)

N, FEATURES, CLASSES, BATCH = 64, 8, 3, 16
STEPS = N // BATCH


def tiny_model(units: int = 4, classes: int = CLASSES, features: int = FEATURES, activation: str | None = "softmax") -> keras.Model:
    inputs = keras.Input((features,))
    x = keras.layers.Dense(units, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(classes, activation=activation)(x))


@pytest.fixture(scope="module")
def arrays() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, FEATURES)).astype("float32")
    y = (x[:, 0] > 0).astype("int32") + (x[:, 1] > 1).astype("int32")
    return x, y


class EpochRecorder(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.epochs: list[int] = []
        self.iterations_at_start: int | None = None

    def on_train_begin(self, logs=None):
        self.iterations_at_start = int(self.model.optimizer.iterations.numpy())

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)


def test_train_arrays_and_evaluate(arrays):
    model = tiny_model()
    history = training.train(model, arrays, epochs=3, batch_size=BATCH, progress=False, seed=0,
                             validation_data=arrays, learning_rate=0.01)
    assert history.epoch == [0, 1, 2]
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(history.history)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert int(model.optimizer.iterations.numpy()) == 3 * STEPS
    metrics = training.evaluate(model, arrays)
    assert set(metrics) == {"loss", "accuracy"} and 0 <= metrics["accuracy"] <= 1


def test_train_dataset_and_grayscale_channel():
    import tensorflow as tf

    inputs = keras.Input((6, 6, 1))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(inputs)))
    x = np.random.default_rng(1).integers(0, 255, (20, 6, 6)).astype("uint8")  # no channel axis
    y = np.arange(20) % 2
    history = training.train(model, (x, y), epochs=1, batch_size=5, progress=False)
    assert len(history.history["loss"]) == 1
    ds = tf.data.Dataset.from_tensor_slices((x[..., None].astype("float32"), y)).batch(4)
    history = training.train(model, ds, epochs=2, progress=False)
    assert history.epoch == [0, 1]
    assert training.evaluate(model, ds)["accuracy"] >= 0


def test_default_losses(arrays):
    assert isinstance(training.default_loss(tiny_model(classes=1, activation="sigmoid")), keras.losses.BinaryCrossentropy)
    loss = training.default_loss(tiny_model(activation=None))
    assert isinstance(loss, keras.losses.SparseCategoricalCrossentropy) and loss.get_config()["from_logits"]
    assert not training.default_loss(tiny_model()).get_config()["from_logits"]
    one_hot = training.default_loss(tiny_model(), one_hot=True)
    assert isinstance(one_hot, keras.losses.CategoricalCrossentropy)
    # one-hot labels are detected from the data
    x, y = arrays
    model = tiny_model()
    training.train(model, (x, np.eye(CLASSES)[y]), epochs=1, batch_size=BATCH, progress=False)
    assert isinstance(model.loss, keras.losses.CategoricalCrossentropy)


def test_binary_logits_accuracy_uses_zero_threshold(arrays):
    x, y = arrays
    model = tiny_model(classes=1, activation=None)
    training.train(model, (x, (y > 0).astype("float32")), epochs=1, batch_size=BATCH, progress=False)
    acc = next(m for m in model.metrics[1].metrics if m.name == "accuracy") if hasattr(model.metrics[1], "metrics") else None
    assert acc is None or acc.get_config()["threshold"] == 0.0
    logits = model.predict(x, verbose=0)[:, 0]
    expected = float(np.mean((logits > 0) == (y > 0)))
    assert training.evaluate(model, (x, (y > 0).astype("float32")))["accuracy"] == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"epochs": 0}, "epochs"),
        ({"batch_size": -1}, "batch_size"),
        ({"optimizer": "nope"}, "optimizer"),
        ({"optimizer": "adam", "learning_rate": -1.0}, "learning_rate"),
        ({"metrics": "accuracy"}, "metrics"),
        ({"strategy": "warp"}, "strategy"),
        ({"callbacks": ["x"]}, "callbacks"),
        ({"lr_schedule": "linear"}, "lr_schedule"),
        ({"optimizer": keras.optimizers.Adam(), "lr_schedule": "cosine"}, "lr_schedule"),
    ],
)
def test_bad_arguments(arrays, kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        training.train(tiny_model(), arrays, progress=False, **kwargs)


def test_bad_data_and_model(arrays):
    x, y = arrays
    with pytest.raises(InvalidArgumentError, match="train_data"):
        training.train(tiny_model(), (x[:, :4], y), progress=False)
    with pytest.raises(InvalidArgumentError, match="64 inputs but 10 labels"):
        training.train(tiny_model(), (x, y[:10]), progress=False)
    with pytest.raises(InvalidArgumentError, match="learning_rate"):
        training.train(tiny_model(), arrays, optimizer=keras.optimizers.Adam(), learning_rate=0.1, progress=False)
    with pytest.raises(InvalidArgumentError, match="model"):
        training.train("model", arrays)


def test_resume_after_crash_keeps_optimizer_state(arrays, tmp_path):
    ckpt = tmp_path / "ckpt"
    model = tiny_model()
    with pytest.raises(RuntimeError, match="simulated crash"):
        training.train(model, arrays, epochs=5, batch_size=BATCH, checkpoint_dir=ckpt, progress=False,
                       optimizer="adam", callbacks=[Crash(3)])
    state = json.loads((ckpt / "state.json").read_text())
    assert state["epoch"] == 3 and state["iterations"] == 3 * STEPS
    assert (ckpt / "best.keras").is_file() and (ckpt / state["weights"]).is_file()
    saved = model.get_weights()

    fresh = tiny_model()
    recorder = EpochRecorder()
    history = training.train(fresh, arrays, epochs=5, batch_size=BATCH, checkpoint_dir=ckpt, progress=False,
                             optimizer="adam", callbacks=[recorder])
    assert recorder.iterations_at_start == 3 * STEPS  # optimizer state restored before training
    assert recorder.epochs == [3, 4]
    assert history.epoch == [0, 1, 2, 3, 4] and len(history.history["loss"]) == 5
    assert int(fresh.optimizer.iterations.numpy()) == 5 * STEPS
    assert not np.allclose(fresh.get_weights()[0], saved[0])  # it trained on from the checkpoint
    # Adam's moment estimates came back too (not zeros)
    moments = [v for v in fresh.optimizer.variables if "momentum" in v.path or "velocity" in v.path]
    assert moments and any(np.abs(v.numpy()).sum() > 0 for v in moments)
    # already complete: nothing more to train
    again = EpochRecorder()
    history = training.train(tiny_model(), arrays, epochs=5, batch_size=BATCH, checkpoint_dir=ckpt,
                             progress=False, optimizer="adam", callbacks=[again])
    assert again.epochs == [] and len(history.history["loss"]) == 5
    with pytest.warns(RuntimeWarning, match="already holds 5 epochs"):
        training.train(tiny_model(), arrays, epochs=3, batch_size=BATCH, checkpoint_dir=ckpt,
                       progress=False, optimizer="adam")
    # the current and the previous epoch are kept, each with its hash in the state
    assert sorted(p.name for p in ckpt.glob("*.weights.h5")) == ["epoch-0004.weights.h5", "epoch-0005.weights.h5"]
    state = json.loads((ckpt / "state.json").read_text())
    assert state["previous"]["weights"] == "epoch-0004.weights.h5" and len(state["previous"]["sha256"]) == 64
    assert not list(ckpt.glob(".*tmp*"))
    best = keras.models.load_model(ckpt / "best.keras")
    assert best.count_params() == fresh.count_params()


_CHILD = """
import sys, time
sys.path.insert(0, {root!r})
import keras, numpy as np
from visionkit import training
rng = np.random.default_rng(0)
x = rng.normal(size=({n}, {f})).astype("float32"); y = (x[:, 0] > 0).astype("int32")
inputs = keras.Input(({f},))
h = keras.layers.Dense(4, activation="relu")(inputs)
model = keras.Model(inputs, keras.layers.Dense({c}, activation="softmax")(h))
class Slow(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        time.sleep(0.25)
training.train(model, (x, y), epochs=500, batch_size={b}, checkpoint_dir={ckpt!r}, progress=False,
               optimizer="adam", callbacks=[Slow()])
"""


def test_resume_after_kill_signal(arrays, tmp_path, repo_root):
    ckpt = tmp_path / "killed"
    x, _ = arrays
    y = (x[:, 0] > 0).astype("int32")
    script = _CHILD.format(root=str(repo_root), n=N, f=FEATURES, c=CLASSES, b=BATCH, ckpt=str(ckpt))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    state_file = ckpt / "state.json"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if state_file.is_file() and json.loads(state_file.read_text())["epoch"] >= 2:
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    done = json.loads(state_file.read_text())["epoch"]
    assert done >= 2

    model = tiny_model()
    recorder = EpochRecorder()
    assert json.loads((ckpt / "lock.json").read_text())["pid"] == proc.pid  # left behind by the kill
    with pytest.warns(RuntimeWarning, match=rf"took over the lock left by pid {proc.pid}\b"):
        history = training.train(model, (x, y), epochs=done + 2, batch_size=BATCH, checkpoint_dir=ckpt,
                                 progress=False, optimizer="adam", callbacks=[recorder])
    assert not (ckpt / "lock.json").exists()
    assert recorder.iterations_at_start == done * STEPS
    assert recorder.epochs == [done, done + 1]
    assert len(history.history["loss"]) == done + 2
    assert int(model.optimizer.iterations.numpy()) == (done + 2) * STEPS


@pytest.mark.parametrize(
    ("other", "setting"),
    [
        ({"units": 5}, "model"),
        ({"features": 9}, "input_shape"),
        ({"classes": 4}, "num_classes"),
    ],
)
def test_refuses_to_resume_changed_settings(tmp_path, other, setting):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(N, FEATURES)).astype("float32"), rng.integers(0, 3, N)
    ckpt = tmp_path / "c"
    training.train(tiny_model(), (x, y), epochs=1, batch_size=BATCH, checkpoint_dir=ckpt, progress=False)
    model = tiny_model(**other)
    xx = rng.normal(size=(N, other.get("features", FEATURES))).astype("float32")
    with pytest.raises(ResumeMismatchError, match=setting) as info:
        training.train(model, (xx, y), epochs=2, batch_size=BATCH, checkpoint_dir=ckpt, progress=False)
    assert str(ckpt) in str(info.value)


def test_refuses_other_optimizer_and_corrupt_settings(arrays, tmp_path):
    ckpt = tmp_path / "c"
    training.train(tiny_model(), arrays, epochs=1, batch_size=BATCH, checkpoint_dir=ckpt, progress=False)
    with pytest.raises(ResumeMismatchError, match="optimizer"):
        training.train(tiny_model(), arrays, epochs=2, batch_size=BATCH, checkpoint_dir=ckpt, optimizer="sgd", progress=False)
    with pytest.raises(ResumeMismatchError, match="learning_rate"):
        training.train(tiny_model(), arrays, epochs=2, batch_size=BATCH, checkpoint_dir=ckpt, learning_rate=0.5, progress=False)
    (ckpt / "settings.json").write_text("{not json")
    with pytest.raises(ResumeMismatchError, match="Cannot read"):
        training.train(tiny_model(), arrays, epochs=2, batch_size=BATCH, checkpoint_dir=ckpt, progress=False)


def test_cosine_schedule_spans_the_run_and_survives_resume(arrays, tmp_path):
    epochs, total = 4, 4 * STEPS
    expected = [0.01 * 0.5 * (1 + math.cos(math.pi * step / total)) for step in range(total)]
    model, rates = tiny_model(), RateRecorder()
    training.train(model, arrays, epochs=epochs, batch_size=BATCH, optimizer="adam", learning_rate=0.01,
                   lr_schedule="cosine", progress=False, callbacks=[rates])
    np.testing.assert_allclose(rates.rates, expected, rtol=1e-5, atol=1e-9)
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(0.0, abs=1e-9)

    # interrupted after 2 epochs, resumed: the schedule carries on from the restored step count
    ckpt = tmp_path / "cos"
    with pytest.raises(RuntimeError, match="simulated crash"):
        training.train(tiny_model(), arrays, epochs=epochs, batch_size=BATCH, optimizer="adam", learning_rate=0.01,
                       lr_schedule="cosine", checkpoint_dir=ckpt, progress=False, callbacks=[Crash(2)])
    assert "cosine over 4 epochs of 4 steps" in (ckpt / "settings.json").read_text()
    resumed = RateRecorder()
    training.train(tiny_model(), arrays, epochs=epochs, batch_size=BATCH, optimizer="adam", learning_rate=0.01,
                   lr_schedule="cosine", checkpoint_dir=ckpt, progress=False, callbacks=[resumed])
    np.testing.assert_allclose(resumed.rates, expected[2 * STEPS:], rtol=1e-5, atol=1e-9)
    # the schedule spans `epochs`: continuing to more epochs, or without it, is refused by name
    with pytest.raises(ResumeMismatchError, match="lr_schedule: checkpoint has 'cosine over 4 epochs"):
        training.train(tiny_model(), arrays, epochs=6, batch_size=BATCH, optimizer="adam", learning_rate=0.01,
                       lr_schedule="cosine", checkpoint_dir=ckpt, progress=False)
    with pytest.raises(ResumeMismatchError, match="lr_schedule"):
        training.train(tiny_model(), arrays, epochs=6, batch_size=BATCH, optimizer="adam", learning_rate=0.01,
                       checkpoint_dir=ckpt, progress=False)


def test_cosine_schedule_default_rate_and_dataset_sizes(arrays):
    import tensorflow as tf

    x, y = arrays
    model, rates = tiny_model(), RateRecorder()
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH)
    training.train(model, ds, epochs=1, optimizer="rmsprop", lr_schedule="cosine", progress=False, callbacks=[rates])
    assert rates.rates[0] == pytest.approx(1e-3)  # RMSprop's default rate is where the decay starts
    assert rates.rates == sorted(rates.rates, reverse=True)
    unknown = ds.filter(lambda a, b: True)
    with pytest.raises(InvalidArgumentError, match="number of batches per epoch"):
        training.train(tiny_model(), unknown, epochs=1, lr_schedule="cosine", progress=False)


class Poison(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 2:
            for w in self.model.layers[-1].weights:
                w.assign(np.full(w.shape, np.nan, dtype="float32"))


def test_nan_stops_and_keeps_last_good_checkpoint(arrays, tmp_path):
    ckpt = tmp_path / "nan"
    model = tiny_model()
    with pytest.warns(RuntimeWarning, match="NaN or infinite"):
        history = training.train(model, arrays, epochs=6, batch_size=BATCH, checkpoint_dir=ckpt, progress=False,
                                 callbacks=[Poison()])
    assert len(history.history["loss"]) == 3 and math.isnan(history.history["loss"][-1])
    state = json.loads((ckpt / "state.json").read_text())
    assert state["epoch"] == 2 and len(state["history"]["loss"]) == 2
    assert all(np.isfinite(w).all() for w in model.get_weights())  # last good weights restored
    best = keras.models.load_model(ckpt / "best.keras")
    assert all(np.isfinite(w).all() for w in best.get_weights())
    # the run resumes from the good epoch
    recorder = EpochRecorder()
    training.train(tiny_model(), arrays, epochs=3, batch_size=BATCH, checkpoint_dir=ckpt, progress=False, callbacks=[recorder])
    assert recorder.epochs == [2]


def test_log_dir_writes_csv_and_tensorboard(arrays, tmp_path):
    logs = tmp_path / "logs"
    training.train(tiny_model(), arrays, validation_data=arrays, epochs=2, batch_size=BATCH, log_dir=logs, progress=False)
    lines = (logs / "metrics.csv").read_text().strip().splitlines()
    assert lines[0].split(",") == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    assert [line.split(",")[0] for line in lines[1:]] == ["0", "1"]  # Keras CSVLogger numbers from 0
    assert list(logs.glob("train/events.out.tfevents.*")) and list(logs.glob("validation/events.out.tfevents.*"))


def test_strategy_and_silence(arrays, capsys):
    import tensorflow as tf

    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with strategy.scope():
        model = tiny_model()
    training.train(model, arrays, epochs=1, batch_size=BATCH, strategy=strategy, progress=False)
    training.train(tiny_model(), arrays, epochs=1, batch_size=BATCH, strategy="default", progress=False)
    assert capsys.readouterr().out == ""


# ----------------------------------------------------------------------------- labels against the head


def test_binary_head_refuses_labels_outside_0_1(arrays):
    x, _ = arrays
    y = np.arange(N) % 3  # {0, 1, 2} for a one-unit sigmoid
    with pytest.raises(InvalidArgumentError, match=r"0 or 1 \(or floats in \[0, 1\]\) for a 1-unit sigmoid head; "
                                                   r"found values in \[0, 2\]"):
        training.train(tiny_model(classes=1, activation="sigmoid"), (x, y), epochs=1, progress=False)
    with pytest.raises(InvalidArgumentError, match="train_data.*NaN or infinite"):
        training.train(tiny_model(classes=1, activation="sigmoid"), (x, np.full(N, np.nan)), epochs=1, progress=False)
    # floats in [0, 1] are soft labels, fine
    training.train(tiny_model(classes=1, activation=None), (x, np.linspace(0, 1, N)), epochs=1, progress=False)


def test_softmax_head_refuses_class_indices_out_of_range(arrays):
    import tensorflow as tf

    x, _ = arrays
    y = np.arange(N) % 6
    msg = r"integers in \[0, 2\] for a 3-unit softmax head; found values in \[0, 5\]"
    with pytest.raises(InvalidArgumentError, match=msg):
        training.train(tiny_model(), (x, y), epochs=1, progress=False)
    with pytest.raises(InvalidArgumentError, match=r"logits head; found values in \[0, 5\]"):
        training.train(tiny_model(activation=None), (x, y), epochs=1, progress=False,
                       loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    with pytest.raises(InvalidArgumentError, match=r"validation_data.*found values in \[0, 5\]"):
        training.train(tiny_model(), (x, y % 3), validation_data=(x, y), epochs=1, progress=False)
    with pytest.raises(InvalidArgumentError, match="not all integers"):
        training.train(tiny_model(), (x, (y % 3) + 0.5 * (y == 1)), epochs=1, progress=False)
    # a dataset: every batch is checked as it is read (here the third), nothing is read ahead
    ds = tf.data.Dataset.from_tensor_slices((x, np.where(np.arange(N) == 40, 7, y % 3))).batch(BATCH)
    with pytest.raises(InvalidArgumentError, match=r"train_data.*integers in \[0, 2\] for a 3-unit softmax head; "
                                                   r"found values in \[0, 7\] in a batch"):
        training.train(tiny_model(), ds, epochs=1, progress=False)
    with pytest.raises(InvalidArgumentError, match=r"data.*found values in \[0, 7\] in a batch"):
        training.evaluate(tiny_model(), ds)
    with pytest.raises(InvalidArgumentError, match=r"not all integers"):
        training.train(tiny_model(), ds.map(lambda a, b: (a, tf.cast(b, "float32") / 2)), epochs=1, progress=False)
    good = tf.data.Dataset.from_tensor_slices((x, y % 3)).batch(BATCH)
    history = training.train(tiny_model(), good, epochs=1, progress=False)
    assert len(history.history["loss"]) == 1
    with pytest.raises(InvalidArgumentError, match=r"data.*integers in \[0, 2\]"):
        training.evaluate(tiny_model(), (x, y))
    # a loss that is no classification loss is left alone
    training.train(tiny_model(classes=1, activation=None), (x, 5.0 * y), loss="mse", epochs=1, progress=False)


def test_one_hot_labels_of_the_wrong_width(arrays):
    x, y = arrays
    with pytest.raises(InvalidArgumentError, match=r"labels of shape \(N, 5\).*3-unit softmax head"):
        training.train(tiny_model(), (x, np.eye(5)[y]), epochs=1, progress=False)
    with pytest.raises(InvalidArgumentError, match=r"one-hot rows of 3 values in \[0, 1\].*found values in \[0, 2\]"):
        training.train(tiny_model(), (x, 2 * np.eye(3)[y]), epochs=1, progress=False)


# ----------------------------------------------------------------------------- one run per folder

_HOLDER = """
import sys, time
sys.path.insert(0, {root!r})
from visionkit._lock import RunLock
with RunLock({ckpt!r}):
    print("held", flush=True)
    sys.stdin.read()  # until the parent closes it (or kills this process)
"""


def test_a_second_process_is_refused_with_the_holder_named_and_a_killed_one_taken_over(arrays, tmp_path,
                                                                                       repo_root):
    ckpt = tmp_path / "c"
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER.format(root=str(repo_root), ckpt=str(ckpt))],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held", proc.stderr.read()[-2000:]
        with pytest.raises(CheckpointLockedError, match=rf"(?s)'{ckpt}' is in use by another run \(pid {proc.pid} "
                                                        rf"on host '.+', started .*lock\.json") as info:
            training.train(tiny_model(), arrays, epochs=1, batch_size=BATCH, progress=False, checkpoint_dir=ckpt)
        assert isinstance(info.value, VisionkitError) and isinstance(info.value, RuntimeError)
        assert sorted(p.name for p in ckpt.iterdir()) == ["lock.json"]  # the refused run wrote nothing
        proc.kill()  # SIGKILL: the lock file stays, the kernel drops the file lock
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            stream.close()
    assert (ckpt / "lock.json").exists()
    with pytest.warns(RuntimeWarning, match=rf"took over the lock left by pid {proc.pid}\b"):
        training.train(tiny_model(), arrays, epochs=1, batch_size=BATCH, progress=False, checkpoint_dir=ckpt)
    assert not (ckpt / "lock.json").exists()


def _lock_file(ckpt, pid: int) -> None:
    from visionkit._lock import _process_start

    ckpt.mkdir(parents=True, exist_ok=True)
    holder = {"pid": pid, "host": socket.gethostname(), "started": "2024-01-01T00:00:00+0000",
              "process_start": _process_start(pid)}
    (ckpt / "lock.json").write_text(json.dumps(holder))


@pytest.mark.skipif(not os.path.exists(f"/proc/{os.getppid()}/stat"), reason="needs /proc to prove a pid is its holder")
def test_lock_file_naming_a_live_process_is_refused(arrays, tmp_path):
    ckpt = tmp_path / "c"
    _lock_file(ckpt, os.getppid())  # a live process on this host (e.g. a filesystem where flock does nothing)
    with pytest.raises(CheckpointLockedError, match=rf"pid {os.getppid()} on host .*its process is running"):
        training.train(tiny_model(), arrays, epochs=1, batch_size=BATCH, progress=False, checkpoint_dir=ckpt)
    assert (ckpt / "lock.json").exists()


def test_lock_file_naming_a_dead_pid_is_taken_over(arrays, tmp_path):
    ckpt = tmp_path / "c"
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(timeout=60)
    _lock_file(ckpt, gone.pid)
    with pytest.warns(RuntimeWarning, match=rf"took over the lock left by pid {gone.pid}\b"):
        training.train(tiny_model(), arrays, epochs=1, batch_size=BATCH, progress=False, checkpoint_dir=ckpt)
    assert not (ckpt / "lock.json").exists()


def test_lock_is_released_after_a_run_an_exception_and_ctrl_c(arrays, tmp_path):
    from visionkit._lock import RunLock

    ckpt = tmp_path / "c"
    training.train(tiny_model(), arrays, epochs=1, batch_size=BATCH, progress=False, checkpoint_dir=ckpt)
    assert not (ckpt / "lock.json").exists()
    with pytest.raises(RuntimeError, match="simulated crash"):
        training.train(tiny_model(), arrays, epochs=3, batch_size=BATCH, progress=False, checkpoint_dir=ckpt,
                       callbacks=[Crash(at_epoch=1)])
    assert not (ckpt / "lock.json").exists()

    class CtrlC(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            raise KeyboardInterrupt  # what SIGINT raises in the main thread

    with pytest.raises(KeyboardInterrupt):
        training.train(tiny_model(), arrays, epochs=3, batch_size=BATCH, progress=False, checkpoint_dir=ckpt,
                       callbacks=[CtrlC()])
    assert not (ckpt / "lock.json").exists()
    # held in this process: a second run here is refused too
    with RunLock(ckpt), pytest.raises(CheckpointLockedError, match="this process is already training into it"):
        training.train(tiny_model(), arrays, epochs=3, batch_size=BATCH, progress=False, checkpoint_dir=ckpt)
    rec = EpochRecorder()
    training.train(tiny_model(), arrays, epochs=3, batch_size=BATCH, progress=False, checkpoint_dir=ckpt,
                   callbacks=[rec])
    assert rec.epochs == [1, 2] and not (ckpt / "lock.json").exists()


def test_without_flock_the_pid_decides_and_another_host_is_refused(tmp_path, monkeypatch):
    from visionkit import _lock

    monkeypatch.setattr(_lock, "fcntl", None)  # Windows, or a filesystem without file locks: O_EXCL and the pid
    ckpt = tmp_path / "c"
    with _lock.RunLock(ckpt):
        assert json.loads((ckpt / "lock.json").read_text())["pid"] == os.getpid()
        with pytest.raises(CheckpointLockedError, match="this process is already training into it"):
            _lock.RunLock(ckpt).acquire()
    assert not (ckpt / "lock.json").exists()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(timeout=60)
    _lock_file(ckpt, gone.pid)
    with pytest.warns(RuntimeWarning, match=rf"took over the lock left by pid {gone.pid}\b"), _lock.RunLock(ckpt):
        assert json.loads((ckpt / "lock.json").read_text())["pid"] == os.getpid()
    (ckpt / "lock.json").write_text(json.dumps({"pid": 1, "host": "elsewhere.example", "started": "then"}))
    with pytest.raises(CheckpointLockedError, match=r"(?s)pid 1 on host 'elsewhere\.example'.*cannot be checked"
                                                    r".*delete the lock file '.*lock\.json'"):
        _lock.RunLock(ckpt).acquire()
    if os.path.exists(f"/proc/{os.getppid()}/stat"):
        _lock_file(ckpt, os.getppid())
        with pytest.raises(CheckpointLockedError, match=rf"pid {os.getppid()} .*its process is running"):
            _lock.RunLock(ckpt).acquire()


@pytest.mark.skipif(os.name == "nt", reason="flock is POSIX")
def test_with_flock_a_released_lock_from_another_host_is_taken_over(tmp_path):
    from visionkit import _lock

    ckpt = tmp_path / "c"
    ckpt.mkdir()
    (ckpt / "lock.json").write_text(json.dumps({"pid": 1, "host": "elsewhere.example", "started": "then"}))
    # nobody holds its file lock (that host's run ended or was killed): a preempted run resumes elsewhere
    with pytest.warns(RuntimeWarning, match=r"pid 1 on host 'elsewhere\.example'.*file lock was released"):
        with _lock.RunLock(ckpt):
            assert json.loads((ckpt / "lock.json").read_text())["host"] == socket.gethostname()
    assert not (ckpt / "lock.json").exists()


# ----------------------------------------------------------------------------- errors at the edges (#19)


@pytest.mark.parametrize("where", ["train_data", "validation_data"])
def test_train_refuses_empty_arrays_and_names_the_argument(arrays, where):
    x, y = arrays
    empty = (x[:0], y[:0])
    kwargs = {"validation_data": empty} if where == "validation_data" else {}
    train_data = empty if where == "train_data" else (x, y)
    # before: `x` (from_arrays' parameter) was named, not the argument the caller passed
    with pytest.raises(InvalidArgumentError, match=rf"Argument `{where}` must be at least one example.*Received: {where}="):
        training.train(tiny_model(), train_data, epochs=1, progress=False, **kwargs)


def test_train_refuses_an_empty_dataset(arrays):
    import tensorflow as tf

    x, y = arrays
    ds = tf.data.Dataset.from_tensor_slices((x[:0], y[:0])).batch(4)
    # before: Keras "trained" zero steps and returned a History with no losses
    with pytest.raises(InvalidArgumentError, match=r"`train_data` must be a non-empty dataset.*0 batches"):
        training.train(tiny_model(), ds, epochs=1, progress=False)


def test_an_unwritable_checkpoint_folder_is_named(arrays, tmp_path, monkeypatch):
    # as root a chmod'ed folder stays writable: make the lock's open fail as a read-only folder would
    from visionkit import _lock

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(_lock.os, "open", refuse)
    with pytest.raises(InvalidArgumentError, match=r"`checkpoint_dir` must be a folder this process can write.*"
                                                   r"PermissionError: Permission denied"):
        training.train(tiny_model(), arrays, epochs=1, batch_size=BATCH, progress=False, checkpoint_dir=tmp_path / "c")
