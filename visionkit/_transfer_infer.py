"""Feature extraction, classification and the learning-rate finder (private; public through [`visionkit.transfer`][visionkit.transfer])."""

from __future__ import annotations

import math
import os
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import keras
import numpy as np

from . import _validate as V
from ._labels import check_names
from ._labels import class_names as carried_class_names
from ._layers import iter_layers
from ._options import TrainOptions
from .errors import InvalidArgumentError

if TYPE_CHECKING:  # pragma: no cover
    import matplotlib.figure
    import tensorflow as tf

__all__ = ["LRFinderResult", "classify", "extract_features", "lr_find"]


# ----------------------------------------------------------------------------- features


def _as_dataset(data: Any, batch_size: int, argument: str = "data", model: Any = None) -> tuple[Any, bool, int | None]:
    """``(dataset of batches, has_labels, number of batches or None)``; the images must fit ``model``."""
    import tensorflow as tf

    from ._images import check_fits

    if isinstance(data, tf.data.Dataset):
        spec = data.element_spec
        has_labels = isinstance(spec, tuple) and len(spec) >= 2
        x_spec = spec[0] if isinstance(spec, tuple) else spec
        if getattr(x_spec, "shape", None) is not None and x_spec.shape.rank == 3:
            data = data.batch(batch_size)
            x_spec = data.element_spec[0] if has_labels else data.element_spec
        shape = getattr(x_spec, "shape", None)
        if model is not None and shape is not None and shape.rank and all(d is not None for d in shape[1:]):
            # a spec's batch size is unknown: check one image's dimensions
            check_fits(model, np.empty((1, *shape[1:]), np.uint8), argument=argument)
        n = int(data.cardinality())
        return data, has_labels, (n if n >= 0 else None)
    if isinstance(data, (tuple, list)) and len(data) == 2 and not np.isscalar(data[0]):
        x, y = np.asarray(data[0]), np.asarray(data[1])
        if len(x) != len(y):
            raise InvalidArgumentError(f"Images and labels in `{argument}` differ in length: {len(x)} != {len(y)}")
        ds = tf.data.Dataset.from_tensor_slices((x, y))
        has_labels = True
    else:
        x = np.asarray(data)
        ds = tf.data.Dataset.from_tensor_slices(x)
        has_labels = False
    if x.ndim != 4 or len(x) == 0:
        raise V.fail(argument, "images (N, H, W, C), an (images, labels) pair or a tf.data.Dataset", f"array of shape {x.shape}")
    if model is not None:
        check_fits(model, x, argument=argument)  # not Keras' error from inside the model
    ds = ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
    return ds, has_labels, math.ceil(len(x) / batch_size)


def _progress(total: int | None, desc: str, enabled: bool, unit: str = "batch") -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, leave=False)


_STEPS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _inference_step(base: keras.Model) -> Any:
    """One compiled inference function per base, reused across calls (traced once)."""
    import tensorflow as tf

    step = _STEPS.get(base)
    if step is None:
        ref = weakref.ref(base)  # the cache must not keep the base alive

        @tf.function(reduce_retracing=True, autograph=False)
        def step(x: tf.Tensor) -> tf.Tensor:
            return ref()(tf.cast(x, tf.float32), training=False)

        _STEPS[base] = step
    return step


def extract_features(
    base: keras.Model,
    data: Any,
    *,
    batch_size: int = 32,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Run ``base`` over a dataset once and return the features with their labels.

    One pass with a compiled (``tf.function``) inference step over a prefetched
    ``tf.data`` pipeline, features and labels taken from the same batches, so a
    shuffling dataset still gives matching pairs.

    Parameters
    ----------
    base : keras.Model
        The feature extractor, e.g. from [`conv_base`][visionkit.transfer.conv_base] (called with
        ``training=False``; not modified).
    data : tf.data.Dataset, (images, labels) or images
        A dataset of ``(images, labels)`` batches (as from
        [`visionkit.data.image_folder`][visionkit.data.image_folder]) or of image batches; or numpy arrays
        ``(N, H, W, 3)`` (float or uint8, raw ``[0, 255]``) with optional labels
        ``(N, ...)``.
    batch_size : int, default 32
        Batch size for arrays (datasets keep their own batching).
    progress : bool, default True
        Show a progress bar.

    Returns
    -------
    (features, labels)
        ``features``: float32 ``(N, *base.output_shape[1:])``; ``labels``: the labels
        in the same order (their dtype), or ``None`` when ``data`` has none.

    Examples
    --------
    >>> import keras, numpy as np
    >>> from visionkit.transfer import conv_base, extract_features
    >>> def tiny(shape):
    ...     inputs = keras.Input(shape)
    ...     return keras.Model(inputs, keras.layers.Conv2D(4, 3, name="block1_conv1")(inputs), name="tiny")
    >>> base = conv_base(tiny, weights=None, input_shape=(16, 16, 3))
    >>> images = np.random.default_rng(0).uniform(0, 255, (10, 16, 16, 3))
    >>> features, labels = extract_features(base, (images, np.arange(10) % 2), batch_size=4, progress=False)
    >>> features.shape, features.dtype, labels.tolist()
    ((10, 14, 14, 4), dtype('float32'), [0, 1, 0, 1, 0, 1, 0, 1, 0, 1])
    """

    if not isinstance(base, keras.Model):
        raise V.fail("base", "a keras.Model (e.g. from conv_base)", base)
    batch_size = V.integer("batch_size", batch_size, minimum=1)
    ds, has_labels, total = _as_dataset(data, batch_size, model=base)

    step = _inference_step(base)

    features: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    with _progress(total, "extract_features", progress) as bar:
        for batch in ds:
            if has_labels:
                x, y = batch[0], batch[1]
                labels.append(np.asarray(y))
            else:
                x = batch[0] if isinstance(batch, tuple) else batch
            features.append(np.asarray(step(x)))
            bar.update(1)
    if not features:
        raise V.fail("data", "a non-empty dataset", "an empty dataset")
    return (
        np.concatenate(features).astype(np.float32, copy=False),
        np.concatenate(labels) if has_labels else None,
    )


# ----------------------------------------------------------------------------- inference


def _images_batch(images: Any, size: tuple[int, int]) -> np.ndarray:
    from .data import load_image

    if isinstance(images, (str, os.PathLike)):
        return load_image(images, size=size)[None]
    if isinstance(images, np.ndarray) or hasattr(images, "numpy"):
        arr = np.asarray(images.numpy() if hasattr(images, "numpy") else images)
        if arr.ndim == 3:
            arr = arr[None]
        if arr.ndim != 4 or len(arr) == 0:
            raise V.fail("images", "an image (H, W, 3), a non-empty batch (N, H, W, 3), a path or a list of them",
                         f"array of shape {arr.shape}")
        if tuple(arr.shape[1:3]) != size:
            return np.stack([load_image(a, size=size) for a in arr])
        return arr.astype(np.float32, copy=False)
    if isinstance(images, Sequence) and len(images) > 0:
        return np.stack([load_image(a, size=size) for a in images])
    raise V.fail("images", "an image (H, W, 3), a batch (N, H, W, 3), a path or a non-empty list of them", images)


def classify(
    model: keras.Model,
    images: Any,
    *,
    class_names: Sequence[str] | None = None,
    batch_size: int = 32,
) -> tuple[list[str], np.ndarray]:
    """Label images with a trained classifier.

    Parameters
    ----------
    model : keras.Model
        An end-to-end classifier taking raw images in ``[0, 255]`` (from
        [`train_transfer`][visionkit.transfer.train_transfer] or [`transfer_model`][visionkit.transfer.transfer_model]); not modified.
    images : array, path, or list of paths/arrays
        One image ``(H, W, 3)``, a batch ``(N, H, W, 3)`` (raw ``[0, 255]``), an image
        file, or a list of files or arrays. Images of another size are resized to the
        model's input size.
    class_names : sequence of str, optional
        Names of the classes in label order; by default the names the model carries
        ([`visionkit.training.class_names`][visionkit.training.class_names]: set by [`train_transfer`][visionkit.transfer.train_transfer] and
        [`visionkit.training.with_class_names`][visionkit.training.with_class_names], kept by ``model.save`` and
        ``keras.models.load_model``).
    batch_size : int, default 32
        Prediction batch size.

    Returns
    -------
    (labels, probabilities)
        ``labels``: list of N class names; ``probabilities``: float32
        ``(N, num_classes)`` summing to 1 per row (a sigmoid output ``p`` becomes
        ``[1 - p, p]``).

    Examples
    --------
    >>> import keras, numpy as np
    >>> from visionkit.training import with_class_names
    >>> from visionkit.transfer import classify
    >>> model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.GlobalAveragePooling2D(),
    ...                           keras.layers.Dense(1, activation="sigmoid")])
    >>> model = with_class_names(model, ["cat", "dog"])
    >>> labels, probs = classify(model, np.zeros((3, 8, 8, 3)))
    >>> labels, probs.shape, bool(np.allclose(probs.sum(axis=1), 1.0))
    (['cat', 'cat', 'cat'], (3, 2), True)
    """
    if not isinstance(model, keras.Model) or not model.inputs:
        raise V.fail("model", "a keras.Model with a defined input", model)
    batch_size = V.integer("batch_size", batch_size, minimum=1)
    units = int(model.outputs[0].shape[-1])
    if class_names is None:
        class_names = carried_class_names(model)
        if class_names is None:
            raise V.fail("class_names", "a list of class-name strings (the model carries none; see "
                         "visionkit.training.with_class_names)", None)
    names = check_names(class_names, units)
    size = tuple(int(v) for v in model.inputs[0].shape[1:3])
    batch = _images_batch(images, size)  # type: ignore[arg-type]
    probs = np.asarray(model.predict(batch, batch_size=batch_size, verbose=0), dtype=np.float32)
    if units == 1:
        probs = np.concatenate([1.0 - probs, probs], axis=1)
    labels = [names[i] for i in probs.argmax(axis=1)]
    return labels, probs


# ----------------------------------------------------------------------------- lr finder


@dataclass
class LRFinderResult:
    """What [`lr_find`][visionkit.transfer.lr_find] measured.

    Attributes
    ----------
    learning_rates : numpy.ndarray
        float64 ``(steps,)``: the learning rate of each step (log-spaced).
    losses : numpy.ndarray
        float64 ``(steps,)``: the training loss at each step.
    smoothed : numpy.ndarray
        Exponentially smoothed (bias-corrected) ``losses``.
    suggestion : float
        A learning rate to train with: a tenth of the rate at the lowest smoothed
        loss (at least ``min_lr``).
    """

    learning_rates: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    suggestion: float
    meta: dict[str, Any] = field(default_factory=dict)

    def plot(self) -> matplotlib.figure.Figure:
        """Loss against learning rate (log scale), the suggestion marked; a ``Figure``."""
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6, 4))
        ax = fig.add_subplot()
        ax.plot(self.learning_rates, self.losses, color="0.75", lw=1, label="loss")
        ax.plot(self.learning_rates, self.smoothed, color="C0", lw=2, label="smoothed")
        ax.axvline(self.suggestion, color="C3", ls="--", label=f"suggested {self.suggestion:.2g}")
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("training loss")
        finite = self.smoothed[np.isfinite(self.smoothed)]
        if finite.size:
            lo, hi = float(finite.min()), float(finite[: max(1, len(finite) // 4)].max())
            ax.set_ylim(lo - 0.1 * abs(hi - lo) - 1e-3, max(hi, lo) + 0.5 * abs(hi - lo) + 1e-3)
        ax.legend()
        ax.set_title("Learning-rate finder")
        return fig


def lr_find(
    model: keras.Model,
    train_data: Any,
    *,
    min_lr: float = 1e-7,
    max_lr: float = 1.0,
    steps: int = 100,
    optimizer: str | keras.optimizers.Optimizer = "rmsprop",
    loss: Any = None,
    batch_size: int = 32,
    stop_factor: float = 4.0,
    progress: bool = True,
) -> LRFinderResult:
    """Learning-rate range test: train briefly with a growing learning rate.

    The learning rate rises log-linearly from ``min_lr`` to ``max_lr`` over ``steps``
    training steps (stopping early when the loss exceeds ``stop_factor`` times its
    best); the suggestion is a tenth of the rate at the lowest smoothed loss, a rule
    that holds up on noisy losses. The steps run on a **copy** of ``model`` (and of
    ``optimizer`` when it is an instance): the caller's weights, trainability,
    compile state and optimizer are not touched. It is not training, so it returns
    its own [`LRFinderResult`][visionkit.transfer.LRFinderResult], not a [`visionkit.training.TrainResult`][visionkit.training.TrainResult].

    Parameters
    ----------
    model : keras.Model
        The model to train (e.g. a [`transfer_model`][visionkit.transfer.transfer_model]).
    train_data : tf.data.Dataset or (images, labels)
        Training batches; repeated as needed.
    min_lr, max_lr : float
        The learning-rate range, ``0 < min_lr < max_lr``.
    steps : int, default 100
        Number of training steps (at least 5).
    optimizer : str or keras.optimizers.Optimizer, default "rmsprop"
        As the ``optimizer`` training option: a name from
        [`visionkit.training.OPTIMIZERS`][visionkit.training.OPTIMIZERS] or an instance (copied; its learning
        rate is replaced by the sweep).
    loss : str or keras loss, optional
        Default: [`visionkit.training.default_loss`][visionkit.training.default_loss] of ``model``.
    batch_size : int, default 32
        As the ``batch_size`` training option: examples per batch of array inputs
        (datasets keep their own batching).
    stop_factor : float, default 4.0
        Stop once the smoothed loss exceeds this multiple of the best one.
    progress : bool, default True
        As the ``progress`` training option: a tqdm bar; ``False`` for silence.

    Returns
    -------
    LRFinderResult
        Learning rates, losses, the suggestion, and ``.plot()`` for a Figure.

    Examples
    --------
    >>> import keras, numpy as np
    >>> from visionkit.transfer import lr_find
    >>> x = np.random.default_rng(0).uniform(0, 255, (32, 8, 8, 3)).astype("float32")
    >>> y = (x.mean(axis=(1, 2, 3)) > 127).astype("float32")
    >>> model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Rescaling(1 / 255),
    ...                           keras.layers.Flatten(), keras.layers.Dense(1, activation="sigmoid")])
    >>> result = lr_find(model, (x, y), min_lr=1e-4, max_lr=1.0, steps=10, batch_size=8, progress=False)
    >>> len(result.learning_rates) <= 10, 1e-4 <= result.suggestion <= 1.0
    (True, True)
    """
    if not isinstance(model, keras.Model) or not model.inputs:
        raise V.fail("model", "a keras.Model with a defined input", model)
    min_lr = V.number("min_lr", min_lr, minimum=0.0, exclusive_minimum=True)
    max_lr = V.number("max_lr", max_lr, minimum=0.0, exclusive_minimum=True)
    if not max_lr > min_lr:
        raise InvalidArgumentError(f"`max_lr` must be larger than `min_lr`. Received: min_lr={min_lr}, max_lr={max_lr}")
    steps = V.integer("steps", steps, minimum=5)
    stop_factor = V.number("stop_factor", stop_factor, minimum=1.0, exclusive_minimum=True)
    shared = TrainOptions(optimizer=optimizer, batch_size=batch_size, progress=progress)  # the same checks
    ds, has_labels, _ = _as_dataset(train_data, shared.batch_size, "train_data", model=model)
    if not has_labels:
        raise V.fail("train_data", "(images, labels) batches or arrays", "data without labels")
    if loss is None:
        from .training import default_loss

        loss_fn = default_loss(model)
    else:
        loss_fn = keras.losses.get(loss)
    clone = _copy_model(model)
    opt = _fresh_optimizer(shared.optimizer, min_lr)
    lrs = np.geomspace(min_lr, max_lr, steps)
    losses, smooth = _sweep(_train_step(clone, opt, loss_fn), opt, ds, lrs, stop_factor, shared.progress)
    n = len(losses)
    lr_arr, loss_arr, smooth_arr = lrs[:n], np.asarray(losses), np.asarray(smooth)
    name = shared.optimizer if isinstance(shared.optimizer, str) else type(shared.optimizer).__name__
    return LRFinderResult(lr_arr, loss_arr, smooth_arr, _suggest(lr_arr, smooth_arr),
                          {"optimizer": name, "stopped_early": n < steps})


def _fresh_optimizer(optimizer: Any, learning_rate: float) -> keras.optimizers.Optimizer:
    """A new optimizer (a copy of an instance) starting at ``learning_rate``."""
    if isinstance(optimizer, str):
        return keras.optimizers.get({"class_name": optimizer.lower(), "config": {"learning_rate": learning_rate}})
    config = {**optimizer.get_config(), "learning_rate": learning_rate}
    return type(optimizer).from_config(config)


def _train_step(clone: keras.Model, opt: Any, loss_fn: Any) -> Any:
    """One compiled training step of ``clone`` (returns the loss)."""
    import tensorflow as tf

    variables = clone.trainable_variables
    opt.build(variables)

    @tf.function(reduce_retracing=True, autograph=False)
    def step(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            pred = clone(tf.cast(x, tf.float32), training=True)
            if pred.shape.rank == 2 and pred.shape[-1] == 1 and y.shape.rank == 1:
                y = tf.reshape(tf.cast(y, pred.dtype), (-1, 1))
            value = tf.reduce_mean(loss_fn(y, pred))
            if clone.losses:
                value = value + tf.add_n(clone.losses)
        grads = tape.gradient(value, variables)
        opt.apply_gradients(zip(grads, variables))
        return value

    return step


def _sweep(step: Any, opt: Any, ds: Any, lrs: np.ndarray, stop_factor: float,
           progress: bool) -> tuple[list[float], list[float]]:
    """Run ``step`` at each learning rate; return the losses and their smoothed values."""
    losses: list[float] = []
    smooth: list[float] = []
    avg, beta, best = 0.0, 0.9, math.inf
    batches = iter(ds.repeat())
    with _progress(len(lrs), "lr_find", progress, unit="step") as bar:
        for i, lr in enumerate(lrs):
            opt.learning_rate.assign(float(lr))
            x, y = next(batches)[:2]
            value = float(step(x, y))
            losses.append(value)
            avg = beta * avg + (1 - beta) * value
            s = avg / (1 - beta ** (i + 1))
            smooth.append(s)
            bar.update(1)
            if not math.isfinite(value) or (i > 5 and s > stop_factor * best):
                break
            best = min(best, s)
    return losses, smooth


def _suggest(lrs: np.ndarray, smoothed: np.ndarray) -> float:
    """A tenth of the learning rate at the lowest smoothed loss (robust to noisy losses)."""
    finite = np.isfinite(smoothed)
    if not finite.any():
        return float(lrs[0])
    lr, s = lrs[finite], smoothed[finite]
    return float(max(lr[int(np.argmin(s))] / 10.0, lrs[0]))


def _copy_model(model: keras.Model) -> keras.Model:
    """A functional copy with the same weights and trainable flags."""
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    for (_, src), (_, dst) in zip(iter_layers(model), iter_layers(clone)):
        dst.trainable = src.trainable
    return clone
