"""A custom distributed training loop for where ``model.fit`` cannot run (private).

Keras 3's ``model.fit`` fails under ``tf.distribute.MultiWorkerMirroredStrategy``
("Attempt to convert a value (PerReplica:...) to a Tensor", keras-team/keras#20585).
``distributed_fit`` trains the same compiled Keras model with
``strategy.experimental_distribute_dataset`` and ``strategy.run`` inside a
``tf.function``, and drives the **same Keras callbacks** ``fit`` would (progress bar,
``History``, visionkit's checkpoint/resume and NaN guard, CSV and TensorBoard logs, the
caller's own callbacks), so [`visionkit.training.train`][visionkit.training.train] behaves alike on either
path.

Batches: the dataset yields *global* batches; each of the ``N`` replicas gets about
``1/N`` of every batch. The last, partial batch is kept: each replica divides its summed
loss by the true number of examples in the global batch (an all-reduce of the local
counts), so a partial batch is averaged exactly as on one device instead of dropped.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

__all__ = ["distributed_fit", "evaluate_local", "is_chief", "needs_custom_loop", "task_info", "weights_fingerprint"]


def needs_custom_loop(strategy: Any) -> bool:
    """True for strategies under which Keras 3's ``model.fit`` does not run."""
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def task_info(strategy: Any) -> tuple[str, int]:
    """``(task_type, task_id)`` of this process in the cluster (``("chief", 0)`` alone)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return "chief", 0
    return str(resolver.task_type), int(resolver.task_id or 0)


def is_chief(strategy: Any) -> bool:
    """True on the process that writes kept models and logs (``chief``, else worker 0)."""
    task_type, task_id = task_info(strategy)
    if task_type == "chief":
        return True
    resolver = getattr(strategy, "cluster_resolver", None)
    has_chief = resolver is not None and "chief" in resolver.cluster_spec().as_dict()
    return task_type == "worker" and task_id == 0 and not has_chief


def _per_example(loss: Any) -> Any:
    """A copy of a Keras loss that returns one value per example."""
    if isinstance(loss, keras.losses.Loss):
        return type(loss).from_config({**loss.get_config(), "reduction": None})
    fn = keras.losses.get(loss)
    return fn if not isinstance(fn, keras.losses.Loss) else _per_example(fn)


def _correct_fn(units: int, from_logits: bool) -> Any:
    def correct(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        y_pred = tf.cast(y_pred, tf.float32)
        if units == 1:
            pred = tf.reshape(tf.cast(y_pred > (0.0 if from_logits else 0.5), tf.float32), [-1])
            return tf.reduce_sum(tf.cast(tf.equal(pred, tf.reshape(tf.cast(y_true, tf.float32), [-1])), tf.float32))
        pred = tf.argmax(y_pred, axis=-1, output_type=tf.int64)
        if y_true.shape.rank == 2 and y_true.shape[-1] == units and units > 1:
            true = tf.argmax(y_true, axis=-1, output_type=tf.int64)
        else:
            true = tf.reshape(tf.cast(y_true, tf.int64), [-1])
        return tf.reduce_sum(tf.cast(tf.equal(pred, true), tf.float32))

    return correct


def distributed_fit(
    model: keras.Model,
    train_data: tf.data.Dataset,
    *,
    strategy: Any,
    loss: Any,
    epochs: int,
    initial_epoch: int = 0,
    validation_data: tf.data.Dataset | None = None,
    accuracy: bool = True,
    from_logits: bool = False,
    callbacks: list[keras.callbacks.Callback] | None = None,
    verbose: int = 1,
) -> keras.callbacks.History:
    """Train a compiled ``model`` with a ``strategy.run`` loop; see the module docstring.

    ``model`` and its optimizer must live under ``strategy.scope()``. Returns the
    ``History`` that the callbacks filled, like ``model.fit``.
    """
    optimizer = model.optimizer
    per_example = _per_example(loss)
    units = int(model.outputs[0].shape[-1] or 1)
    correct_fn = _correct_fn(units, from_logits) if accuracy else None
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    dist_train = strategy.experimental_distribute_dataset(train_data.with_options(options))
    dist_val = (
        strategy.experimental_distribute_dataset(validation_data.with_options(options))
        if validation_data is not None else None
    )

    def replica_step(x: tf.Tensor, y: tf.Tensor, training: bool) -> tuple[tf.Tensor, ...]:
        ctx = tf.distribute.get_replica_context()
        n_local = tf.cast(tf.shape(y)[0], tf.float32)
        n_global = ctx.all_reduce(tf.distribute.ReduceOp.SUM, n_local)
        with tf.GradientTape() as tape:
            pred = model(x, training=training)
            loss_sum = tf.reduce_sum(tf.cast(per_example(y, pred), tf.float32))
            mean = loss_sum / tf.maximum(n_global, 1.0)
            if model.losses:  # regularisation terms, once per global step
                mean += tf.add_n([tf.cast(v, tf.float32) for v in model.losses]) / ctx.num_replicas_in_sync
            scaled = optimizer.scale_loss(mean) if training else mean
        if training:
            grads = tape.gradient(scaled, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
        hits = correct_fn(y, pred) if correct_fn is not None else tf.constant(0.0)
        return loss_sum, n_local, hits

    def make_step(training: bool) -> Any:
        @tf.function
        def step(batch: Any) -> list[tf.Tensor]:
            out = strategy.run(replica_step, args=(batch[0], batch[1], training))
            return [strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for v in out]

        return step

    train_step, eval_step = make_step(True), make_step(False)
    steps = int(train_data.cardinality())
    cbs = keras.callbacks.CallbackList(
        list(callbacks or ()), add_history=True, add_progbar=verbose > 0, model=model,
        verbose=verbose, epochs=epochs, steps=steps if steps >= 0 else None,
    )

    def summarise(total: float, count: float, hits: float) -> dict[str, float]:
        logs = {"loss": total / max(count, 1.0)}
        if correct_fn is not None:
            logs["accuracy"] = hits / max(count, 1.0)
        return logs

    model.stop_training = False
    cbs.on_train_begin()
    logs: dict[str, float] = {}
    for epoch in range(initial_epoch, epochs):
        cbs.on_epoch_begin(epoch)
        total = count = hits = 0.0
        for i, batch in enumerate(dist_train):
            cbs.on_train_batch_begin(i)
            loss_sum, n, c = (float(v) for v in train_step(batch))
            total, count, hits = total + loss_sum, count + n, hits + c
            logs = summarise(total, count, hits)
            cbs.on_train_batch_end(i, logs)
            if model.stop_training:
                break
        if dist_val is not None and not model.stop_training:
            v_total = v_count = v_hits = 0.0
            for batch in dist_val:
                loss_sum, n, c = (float(v) for v in eval_step(batch))
                v_total, v_count, v_hits = v_total + loss_sum, v_count + n, v_hits + c
            logs.update({f"val_{k}": v for k, v in summarise(v_total, v_count, v_hits).items()})
        cbs.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    cbs.on_train_end(logs)
    return model.history


def weights_fingerprint(model: keras.Model) -> str:
    """A short hash of the model's weights, to compare workers."""
    import hashlib

    h = hashlib.sha256()
    for w in model.get_weights():
        h.update(np.ascontiguousarray(w).tobytes())
    return h.hexdigest()[:16]


def evaluate_local(model: keras.Model, data: tf.data.Dataset, *, loss: Any, accuracy: bool, from_logits: bool) -> dict[str, float]:
    """Evaluate on this process alone, without collectives (``model.evaluate`` fails
    under ``MultiWorkerMirroredStrategy`` too). Every worker holds the same weights,
    so every worker gets the same figures."""
    per_example = _per_example(loss)
    units = int(model.outputs[0].shape[-1] or 1)
    correct_fn = _correct_fn(units, from_logits) if accuracy else None

    @tf.function
    def step(x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        pred = model(x, training=False)
        hits = correct_fn(y, pred) if correct_fn is not None else tf.constant(0.0)
        return tf.reduce_sum(tf.cast(per_example(y, pred), tf.float32)), tf.cast(tf.shape(y)[0], tf.float32), hits

    total = count = hits = 0.0
    for x, y in data:
        loss_sum, n, c = (float(v) for v in step(x, y))
        total, count, hits = total + loss_sum, count + n, hits + c
    out = {"loss": total / max(count, 1.0)}
    if correct_fn is not None:
        out["accuracy"] = hits / max(count, 1.0)
    return out
