"""A custom distributed training loop for where ``model.fit`` cannot run (private).

Keras 3's ``model.fit`` fails under ``tf.distribute.MultiWorkerMirroredStrategy``
("Attempt to convert a value (PerReplica:...) to a Tensor", keras-team/keras#20585).
:func:`distributed_fit` trains the same Keras model and optimizer with
``strategy.experimental_distribute_dataset`` and ``strategy.run`` inside a
``tf.function``, and reproduces what the visionkit callbacks give ``fit``: a progress
bar (chief only), a ``History``, a backup every epoch that a restarted worker resumes
from (optimizer state included), and a stop on a NaN/Inf loss that keeps the last good
backup.

Batches: ``train_data`` yields *global* batches; each of the ``N`` replicas gets about
``1/N`` of every batch. The last, partial batch is kept: losses are divided by the
true number of examples in each global batch (summed across replicas), so a partial
batch is averaged correctly instead of being dropped.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from ._io import atomic_path

__all__ = ["distributed_fit", "is_chief", "task_info"]


def task_info(strategy: tf.distribute.Strategy) -> tuple[str, int]:
    """``(task_type, task_id)`` of this process in the cluster (``("chief", 0)`` alone)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return "chief", 0
    return resolver.task_type, int(resolver.task_id or 0)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True on the process that writes kept models and logs."""
    task_type, task_id = task_info(strategy)
    if task_type == "chief":
        return True
    resolver = strategy.cluster_resolver
    has_chief = "chief" in (resolver.cluster_spec().as_dict() if resolver else {})
    return task_type == "worker" and task_id == 0 and not has_chief


def _per_example_loss(loss: keras.losses.Loss) -> keras.losses.Loss:
    config = {**loss.get_config(), "reduction": None}
    return type(loss).from_config(config)


def _accuracy_fn(output_shape: tuple[int | None, ...]) -> Any:
    units = output_shape[-1] if output_shape else 1

    def accuracy(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        y_pred = tf.cast(y_pred, tf.float32)
        if units == 1:
            # probabilities or logits: the threshold is 0.5 or 0, both work on sigmoid outputs
            pred = tf.cast(y_pred > 0.5, tf.float32)
            return tf.reduce_sum(tf.cast(tf.equal(tf.reshape(pred, [-1]), tf.reshape(tf.cast(y_true, tf.float32), [-1])), tf.float32))
        pred = tf.argmax(y_pred, axis=-1, output_type=tf.int64)
        true = tf.reshape(tf.cast(y_true, tf.int64), [-1]) if y_true.shape.rank != 2 or y_true.shape[-1] == 1 else tf.argmax(y_true, axis=-1, output_type=tf.int64)
        return tf.reduce_sum(tf.cast(tf.equal(pred, true), tf.float32))

    return accuracy


def _backup_dir(checkpoint_dir: Path, strategy: tf.distribute.Strategy) -> Path:
    task_type, task_id = task_info(strategy)
    return checkpoint_dir / ("backup" if is_chief(strategy) else f"backup-{task_type}-{task_id}")


def distributed_fit(
    model: keras.Model,
    train_data: tf.data.Dataset,
    *,
    strategy: tf.distribute.Strategy,
    optimizer: keras.optimizers.Optimizer,
    loss: keras.losses.Loss,
    epochs: int,
    validation_data: tf.data.Dataset | None = None,
    track_accuracy: bool = True,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    on_epoch_end: Any = None,
    progress: bool = True,
) -> keras.callbacks.History:
    """Train ``model`` with a custom ``strategy.run`` loop; see the module docstring.

    ``model`` and ``optimizer`` must have been created under ``strategy.scope()``.
    ``on_epoch_end(epoch, logs)`` is called on every worker after each epoch (after the
    backup was written); visionkit uses it to keep the best model on the chief.
    """
    history = keras.callbacks.History()
    history.set_model(model)
    history.on_train_begin()
    per_example = _per_example_loss(loss)
    accuracy = _accuracy_fn(tuple(model.outputs[0].shape)) if track_accuracy else None
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    dist_train = strategy.experimental_distribute_dataset(train_data.with_options(options))
    dist_val = strategy.experimental_distribute_dataset(validation_data.with_options(options)) if validation_data is not None else None

    def replica_step(x: tf.Tensor, y: tf.Tensor, training: bool) -> tuple[tf.Tensor, ...]:
        ctx = tf.distribute.get_replica_context()
        n_local = tf.cast(tf.shape(y)[0], tf.float32)
        n_global = ctx.all_reduce(tf.distribute.ReduceOp.SUM, n_local)
        with tf.GradientTape() as tape:
            pred = model(x, training=training)
            losses = tf.cast(per_example(y, pred), tf.float32)
            loss_sum = tf.reduce_sum(losses)
            scaled = loss_sum / tf.maximum(n_global, 1.0)
        if training:
            grads = tape.gradient(scaled, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
        correct = accuracy(y, pred) if accuracy is not None else tf.constant(0.0)
        return loss_sum, n_local, correct

    def make_step(training: bool) -> Any:
        @tf.function
        def step(batch: Any) -> list[tf.Tensor]:
            x, y = batch[0], batch[1]
            out = strategy.run(replica_step, args=(x, y, training))
            return [strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for v in out]

        return step

    train_step, eval_step = make_step(True), make_step(False)

    epoch_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="completed_epochs")
    ckpt = manager = None
    backup: Path | None = None
    if checkpoint_dir is not None:
        backup = _backup_dir(Path(checkpoint_dir), strategy)
        ckpt = tf.train.Checkpoint(model=model, optimizer=optimizer, completed_epochs=epoch_var)
        manager = tf.train.CheckpointManager(ckpt, str(backup), max_to_keep=1)
        if manager.latest_checkpoint:
            ckpt.restore(manager.latest_checkpoint).expect_partial()
            saved = backup / "history.json"
            if saved.is_file():
                old = json.loads(saved.read_text())
                history.history = {k: list(v) for k, v in old["history"].items()}
                history.epoch = list(old["epoch"])
    chief = is_chief(strategy)

    def run_epoch(dist: Any, step: Any, bar: keras.utils.Progbar | None) -> dict[str, float]:
        total_loss = count = correct = 0.0
        for i, batch in enumerate(dist):
            loss_sum, n, c = (float(v) for v in step(batch))
            total_loss, count, correct = total_loss + loss_sum, count + n, correct + c
            if bar is not None:
                logs = [("loss", total_loss / max(count, 1.0))]
                if accuracy is not None:
                    logs.append(("accuracy", correct / max(count, 1.0)))
                bar.update(i + 1, logs)
        out = {"loss": total_loss / max(count, 1.0)}
        if accuracy is not None:
            out["accuracy"] = correct / max(count, 1.0)
        return out

    start = int(epoch_var.numpy())
    steps = int(train_data.cardinality().numpy()) if train_data.cardinality() >= 0 else None
    for epoch in range(start, epochs):
        bar = None
        if progress and chief:
            print(f"Epoch {epoch + 1}/{epochs}")
            bar = keras.utils.Progbar(steps, stateful_metrics=["loss", "accuracy"])
        logs = run_epoch(dist_train, train_step, bar)
        if not math.isfinite(logs["loss"]):
            if progress and chief:
                print(f"\nEpoch {epoch + 1}: invalid loss {logs['loss']}, terminating training")
            break
        if dist_val is not None:
            val = run_epoch(dist_val, eval_step, None)
            logs.update({f"val_{k}": v for k, v in val.items()})
        if bar is not None:
            bar.update(steps or bar._seen_so_far, list(logs.items()), finalize=True)
        history.on_epoch_end(epoch, logs)
        epoch_var.assign(epoch + 1)
        if manager is not None and backup is not None:
            manager.save(checkpoint_number=epoch + 1)
            with atomic_path(backup / "history.json") as tmp:
                tmp.write_text(json.dumps({"history": history.history, "epoch": history.epoch}, default=float))
        if on_epoch_end is not None:
            on_epoch_end(epoch, logs)
    return history


def weights_fingerprint(model: keras.Model) -> str:
    """A short hash of the model's weights (to compare workers)."""
    import hashlib

    h = hashlib.sha256()
    for w in model.get_weights():
        h.update(np.ascontiguousarray(w).tobytes())
    return h.hexdigest()[:16]
