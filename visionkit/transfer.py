"""Transfer learning: reuse a pretrained convolutional base on a small image dataset.

Three ways to put a pretrained base (VGG16, ResNet50, MobileNetV2, ... or a base you
trained yourself) to work on a small class-per-folder dataset:

1. **Feature extraction** (:func:`extract_features` + :func:`feature_classifier`): run
   the frozen base once over the images, then train a small dense classifier on the
   stored features. Very fast; no augmentation possible.
2. **Frozen base + augmentation** (:func:`transfer_model`): the base sits frozen
   inside an end-to-end model with random augmentation in front; only the head
   trains, but every epoch runs the base. Slower, overfits less.
3. **Fine-tuning** (:func:`fine_tune`, with :func:`unfreeze`): train the head with the
   base frozen, then unfreeze the top of the base and continue with a low learning
   rate.

:func:`train_transfer` runs any of the three on a folder in one call;
:func:`classify` labels new images; :func:`lr_find` suggests a learning rate.

Every base built by :func:`conv_base` holds its own ``preprocess_input``
(:func:`preprocessing_for`) as its first layer, so callers always feed raw RGB images
in ``[0, 255]``.

Examples
--------
>>> from visionkit import transfer
>>> base = transfer.conv_base("vgg16", weights=None)  # doctest: +SKIP
>>> model = transfer.transfer_model(base, dropout=0.0)  # doctest: +SKIP
>>> model.count_params()  # doctest: +SKIP
16812353
"""

from __future__ import annotations

import math
import os
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras
import numpy as np

from . import _applications
from . import _validate as V
from ._layers import get_layer, iter_layers
from .errors import InvalidArgumentError

if TYPE_CHECKING:  # pragma: no cover
    import matplotlib.figure
    import tensorflow as tf

__all__ = [
    "DEFAULT_FINE_TUNE_FROM",
    "METHODS",
    "BackbonePreprocessing",
    "LRFinderResult",
    "classify",
    "conv_base",
    "extract_features",
    "feature_classifier",
    "fine_tune",
    "lr_find",
    "preprocessing_for",
    "train_transfer",
    "transfer_model",
    "unfreeze",
]

#: The three transfer-learning methods of :func:`train_transfer`.
METHODS: tuple[str, ...] = ("features", "frozen", "fine_tune")

#: First layer to unfreeze when fine-tuning each backbone: its last block.
DEFAULT_FINE_TUNE_FROM: dict[str, str] = {
    "vgg16": "block5_conv1",
    "vgg19": "block5_conv1",
    "resnet50": "conv5_block1_1_conv",
    "resnet50v2": "conv5_block1_preact_bn",
    "mobilenet_v2": "block_16_expand",
    "inception_v3": "mixed9",
    "xception": "block14_sepconv1",
    "densenet121": "conv5_block1_0_bn",
    "efficientnet_b0": "block7a_expand_conv",
    "efficientnetv2_b0": "block6a_expand_conv",
    "convnext_tiny": "convnext_tiny_stage_3_block_0_depthwise_conv",
}

BaseSpec = str | Callable[..., Any]


# ----------------------------------------------------------------------------- bases


@keras.saving.register_keras_serializable(package="visionkit")
class BackbonePreprocessing(keras.layers.Layer):
    """The ``preprocess_input`` of a ``keras.applications`` backbone, as a layer.

    Maps raw RGB images in ``[0, 255]`` (float, shape ``(batch, H, W, 3)``) to what
    the backbone's weights expect (e.g. BGR minus the ImageNet means for VGG, ``[-1,
    1]`` for MobileNetV2, unchanged for EfficientNet, whose scaling is built in).
    Serialisable: saved models load again once :mod:`visionkit.transfer` is imported.

    Parameters
    ----------
    backbone : str
        A name of :data:`visionkit._applications.APPLICATIONS` (``"vgg16"``, ...).
    """

    def __init__(self, backbone: str, **kwargs: Any) -> None:
        V.one_of("backbone", backbone, _applications.APPLICATIONS)
        super().__init__(**kwargs)
        self.backbone = backbone
        self._fn = _applications.preprocess_function(backbone)

    def call(self, inputs: Any) -> Any:
        return self._fn(keras.ops.cast(inputs, self.compute_dtype))

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "backbone": self.backbone}


def preprocessing_for(name: str) -> BackbonePreprocessing:
    """The preprocessing matching backbone ``name``, as a Keras layer.

    Parameters
    ----------
    name : str
        One of ``vgg16``, ``vgg19``, ``resnet50``, ``resnet50v2``, ``mobilenet_v2``,
        ``inception_v3``, ``xception``, ``densenet121``, ``efficientnet_b0``,
        ``efficientnetv2_b0``, ``convnext_tiny``.

    Returns
    -------
    BackbonePreprocessing
        A new layer applying ``keras.applications.<module>.preprocess_input``: put it
        first in a model so the model takes raw RGB in ``[0, 255]``, or call it on a
        batch ``(N, H, W, 3)``. :func:`conv_base` already includes it.

    Examples
    --------
    >>> import numpy as np
    >>> from visionkit.transfer import preprocessing_for
    >>> pre = preprocessing_for("mobilenet_v2")  # doctest: +SKIP
    >>> float(pre(np.full((1, 2, 2, 3), 255.0)).numpy().max())  # doctest: +SKIP
    1.0
    """
    V.one_of("name", name, _applications.APPLICATIONS)
    return BackbonePreprocessing(name, name=f"{name}_preprocess")


def conv_base(
    name: BaseSpec = "vgg16",
    *,
    weights: str | os.PathLike[str] | None = "imagenet",
    input_shape: tuple[int, int, int] = (150, 150, 3),
    trainable: bool = False,
    preprocess: bool = True,
) -> keras.Model:
    """The convolutional base (no classifier on top) of a pretrained convnet.

    Parameters
    ----------
    name : str or callable, default "vgg16"
        A ``keras.applications`` model: ``vgg16``, ``vgg19``, ``resnet50``,
        ``resnet50v2``, ``mobilenet_v2``, ``inception_v3``, ``xception``,
        ``densenet121``, ``efficientnet_b0``, ``efficientnetv2_b0``,
        ``convnext_tiny``. Or a function ``f(input_shape) -> keras.Model`` building a
        base of your own (for example one you pretrained and saved), which is used as
        built (no preprocessing added).
    weights : "imagenet", None, or path, default "imagenet"
        ``"imagenet"``: downloaded once and cached by Keras in
        ``~/.keras/models``; ``None``: random initialisation; a path: a weights file
        (``.weights.h5`` saved by ``base.save_weights``, or Keras' ``.h5``) for this
        architecture and input shape.
    input_shape : (height, width, channels), default (150, 150, 3)
        Size of the input images.
    trainable : bool, default False
        Whether the base's weights train. Bases are frozen by default.
    preprocess : bool, default True
        Put :func:`preprocessing_for` ``(name)`` first inside the base so it takes raw
        RGB images in ``[0, 255]``. With False the caller must preprocess.

    Returns
    -------
    keras.Model
        Functional model mapping float images ``(batch, *input_shape)`` in ``[0, 255]``
        to feature maps (``(batch, 4, 4, 512)`` for VGG16 at 150×150). For VGG16 it
        holds 14,714,688 parameters. The layers keep their Keras names
        (``"block5_conv1"``, ...).

    Raises
    ------
    WeightsUnavailableError
        ImageNet weights could not be downloaded (the message names the file to put in
        the Keras cache by hand), or a weights file is missing or does not fit
        (the message names the file).
    InvalidArgumentError
        Unknown ``name`` or bad ``input_shape``.

    Examples
    --------
    >>> from visionkit.transfer import conv_base
    >>> base = conv_base("vgg16", weights=None, input_shape=(150, 150, 3))  # doctest: +SKIP
    >>> base.output_shape  # doctest: +SKIP
    (None, 4, 4, 512)
    """
    shape = _input_shape(input_shape)
    if isinstance(weights, os.PathLike):
        weights = os.fspath(weights)
    if callable(name) and not isinstance(name, str):
        base = _custom_base(name, weights, shape)
    else:
        V.one_of("name", name, _applications.APPLICATIONS)
        kwargs: dict[str, Any] = {}
        if preprocess:
            inputs = keras.Input(shape=shape, name="image")
            kwargs["input_tensor"] = preprocessing_for(name)(inputs)
        base = _applications.application(name, weights=weights, include_top=False, input_shape=shape, **kwargs)
    base.trainable = bool(trainable)
    return base


def _input_shape(input_shape: Any) -> tuple[int, int, int]:
    if (
        not isinstance(input_shape, Sequence)
        or isinstance(input_shape, str)
        or len(input_shape) != 3
        or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0 for v in input_shape)
    ):
        raise V.fail("input_shape", "a (height, width, channels) tuple of positive integers", input_shape)
    return int(input_shape[0]), int(input_shape[1]), int(input_shape[2])


def _custom_base(builder: Callable[..., Any], weights: Any, shape: tuple[int, int, int]) -> keras.Model:
    if weights == "imagenet":
        raise V.fail("weights", "None or a path to a weights file when `name` is a function (no ImageNet weights)", weights)
    base = builder(shape)
    if not isinstance(base, keras.Model):
        raise V.fail("name", "a backbone name or a function returning a keras.Model", f"function returning {type(base).__name__}")
    if weights is None:
        return base
    if not isinstance(weights, (str, os.PathLike)):
        raise V.fail("weights", "'imagenet', None or a path to a weights file", weights)
    _applications.load_weights_file(base, weights, label=f"base '{base.name}'")
    return base


# ----------------------------------------------------------------------------- heads


def _head(x: Any, *, num_classes: int, hidden: int | None, dropout: float, pooling: str) -> Any:
    if pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D(name="pool")(x) if len(x.shape) == 4 else keras.layers.Flatten(name="flatten")(x)
    else:
        x = keras.layers.Flatten(name="flatten")(x)
    if hidden:
        x = keras.layers.Dense(hidden, activation="relu", name="hidden")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    if num_classes == 2:
        return keras.layers.Dense(1, activation="sigmoid", name="predictions")(x)
    return keras.layers.Dense(num_classes, activation="softmax", name="predictions")(x)


def _check_head_args(num_classes: Any, hidden: Any, dropout: Any, pooling: Any) -> tuple[int, int | None, float]:
    num_classes = V.integer("num_classes", num_classes, minimum=2)
    hidden = V.integer("hidden", hidden, minimum=0, allow_none=True)
    dropout = V.number("dropout", dropout, minimum=0.0, maximum=1.0, exclusive_maximum=True)
    V.one_of("pooling", pooling, ("flatten", "avg"))
    return num_classes, hidden or None, dropout


def feature_classifier(
    feature_shape: Sequence[int],
    *,
    num_classes: int = 2,
    hidden: int | None = 256,
    dropout: float = 0.5,
    pooling: str = "flatten",
) -> keras.Model:
    """The dense classifier trained on features from :func:`extract_features`.

    Parameters
    ----------
    feature_shape : sequence of int
        Shape of one feature array, e.g. ``(4, 4, 512)`` for VGG16 at 150×150
        (``features.shape[1:]``).
    num_classes : int, default 2
        2 gives one sigmoid output (binary); more gives a softmax over the classes.
    hidden : int or None, default 256
        Width of the ReLU hidden layer; 0 or None for none.
    dropout : float, default 0.5
        Dropout rate before the output layer; 0 for none.
    pooling : {"flatten", "avg"}, default "flatten"
        Flatten the feature maps, or average them over space (far fewer weights
        for bases with large feature maps, like ResNet50).

    Returns
    -------
    keras.Model
        Uncompiled; maps float32 ``(batch, *feature_shape)`` to probabilities
        ``(batch, 1)`` (binary) or ``(batch, num_classes)``.

    Examples
    --------
    >>> from visionkit.transfer import feature_classifier
    >>> feature_classifier((4, 4, 512)).count_params()  # doctest: +SKIP
    2097665
    """
    if isinstance(feature_shape, (int, np.integer)) or not isinstance(feature_shape, Sequence) or not feature_shape or not all(
        isinstance(v, (int, np.integer)) and v > 0 for v in feature_shape
    ):
        raise V.fail("feature_shape", "a non-empty tuple of positive integers (features.shape[1:])", feature_shape)
    num_classes, hidden, dropout = _check_head_args(num_classes, hidden, dropout, pooling)
    inputs = keras.Input(shape=tuple(int(v) for v in feature_shape), name="features")
    outputs = _head(inputs, num_classes=num_classes, hidden=hidden, dropout=dropout, pooling=pooling)
    return keras.Model(inputs, outputs, name="feature_classifier")


def transfer_model(
    base: keras.Model,
    *,
    num_classes: int = 2,
    hidden: int | None = 256,
    dropout: float = 0.5,
    augmentation: Any = None,
    pooling: str = "flatten",
) -> keras.Model:
    """An end-to-end classifier: [augmentation] → frozen ``base`` → Flatten → Dense → head.

    Parameters
    ----------
    base : keras.Model
        A convolutional base with a defined input shape, e.g. from :func:`conv_base`.
        It is **shared, not copied**, and **frozen**: this function sets
        ``base.trainable = False``. It is called with ``training=False``, so its
        BatchNorm layers stay in inference mode even after :func:`unfreeze`.
    num_classes : int, default 2
        2 gives one sigmoid output; more gives a softmax.
    hidden : int or None, default 256
        Width of the ReLU hidden layer; 0 or None for none.
    dropout : float, default 0.5
        Dropout rate before the output layer; 0 for none.
    augmentation : keras.Layer, optional
        Random augmentation applied to the raw images first, active only in training
        (e.g. :func:`visionkit.preprocess.augmentation`).
    pooling : {"flatten", "avg"}, default "flatten"
        How the feature maps become a vector.

    Returns
    -------
    keras.Model
        Uncompiled; maps float images ``(batch, H, W, 3)`` in ``[0, 255]`` to
        probabilities ``(batch, 1)`` or ``(batch, num_classes)``. With VGG16 at
        150×150×3, ``hidden=256``, no dropout or augmentation: 16,812,353 parameters,
        2,097,665 trainable.

    Examples
    --------
    >>> from visionkit.transfer import conv_base, transfer_model
    >>> from visionkit.preprocess import augmentation
    >>> model = transfer_model(conv_base("vgg16", weights=None),
    ...                        augmentation=augmentation(seed=0))  # doctest: +SKIP
    """
    if not isinstance(base, keras.Model) or not base.inputs:
        raise V.fail("base", "a keras.Model with a defined input shape (e.g. from conv_base)", base)
    if len(base.inputs) != 1:
        raise V.fail("base", "a model with one input", f"model '{base.name}' with {len(base.inputs)} inputs")
    num_classes, hidden, dropout = _check_head_args(num_classes, hidden, dropout, pooling)
    if augmentation is not None and not callable(augmentation):
        raise V.fail("augmentation", "a Keras layer (e.g. visionkit.preprocess.augmentation()) or None", augmentation)
    base.trainable = False
    inputs = keras.Input(shape=tuple(base.inputs[0].shape[1:]), name="image")
    x = augmentation(inputs) if augmentation is not None else inputs
    x = base(x, training=False)
    outputs = _head(x, num_classes=num_classes, hidden=hidden, dropout=dropout, pooling=pooling)
    return keras.Model(inputs, outputs, name=f"{base.name}_transfer")


# ----------------------------------------------------------------------------- unfreeze


def _find_base(model: keras.Model, from_layer: str | None) -> keras.Model:
    """The sub-model holding the backbone (or ``model`` itself when it has none)."""
    if from_layer is not None and "/" in from_layer:
        outer = from_layer.rsplit("/", 1)[0]
        found = get_layer(model, outer, argument="from_layer")
        if not isinstance(found, keras.Model):
            raise V.fail("from_layer", "'<sub-model>/<layer>' where <sub-model> is a nested model", from_layer)
        return found
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model) and layer.weights]
    if from_layer is not None:
        for sub in [*nested, model]:
            if any(layer.name == from_layer for layer in sub.layers):
                return sub
        names = [n for n, _ in iter_layers(model)]
        raise V.fail("from_layer", f"the name of a layer of the base of '{model.name}'; valid names: {', '.join(names[:80])}", from_layer)
    if not nested:
        return model
    return max(nested, key=lambda m: sum(int(np.prod(w.shape)) for w in m.weights))


def _is_batchnorm(layer: Any) -> bool:
    return isinstance(layer, keras.layers.BatchNormalization)


def unfreeze(model: keras.Model, *, from_layer: str | None = None, last_n: int | None = None) -> keras.Model:
    """Make the top of a frozen base trainable, for fine-tuning. **Changes ``model``.**

    The base is the nested model inside ``model`` (as built by :func:`transfer_model`;
    the largest one when there are several), or ``model`` itself when it nests none.
    Layers from ``from_layer`` on (or the last ``last_n`` layers holding weights)
    become trainable; earlier layers are frozen; **BatchNorm layers always stay
    frozen** (and, in a :func:`transfer_model`, in inference mode), so their moving
    statistics are not destroyed by small batches.

    Parameters
    ----------
    model : keras.Model
        A :func:`transfer_model` model, or a base. The ``trainable`` flags of its
        base's layers are changed in place (and ``model.trainable`` is set to True
        if it was False); nothing else is.
    from_layer : str, optional
        Name of the first base layer to unfreeze, e.g. ``"block5_conv1"`` for VGG16
        (:data:`DEFAULT_FINE_TUNE_FROM` lists one per backbone). ``"base/layer"``
        picks a specific nested model.
    last_n : int, optional
        Unfreeze the last ``last_n`` base layers that hold weights (BatchNorm layers
        are not counted). Give ``from_layer`` or ``last_n``, not both; with neither,
        the whole base (except BatchNorm) is unfrozen.

    Returns
    -------
    keras.Model
        ``model`` itself, ready to be compiled again (trainability changes take
        effect only at the next ``compile``; :func:`visionkit.training.train`
        compiles).

    Examples
    --------
    >>> from visionkit.transfer import conv_base, transfer_model, unfreeze
    >>> model = transfer_model(conv_base("vgg16", weights=None), dropout=0.0)  # doctest: +SKIP
    >>> sum(int(w.numpy().size) for w in unfreeze(model, from_layer="block5_conv1").trainable_weights)  # doctest: +SKIP
    9177089
    """
    if not isinstance(model, keras.Model):
        raise V.fail("model", "a keras.Model", model)
    if from_layer is not None and last_n is not None:
        raise InvalidArgumentError(
            f"Pass `from_layer` or `last_n`, not both. Received: from_layer={from_layer!r}, last_n={last_n!r}"
        )
    if from_layer is not None and (not isinstance(from_layer, str) or not from_layer):
        raise V.fail("from_layer", "a layer name (str)", from_layer)
    last_n = V.integer("last_n", last_n, minimum=1, allow_none=True)
    base = _find_base(model, from_layer)
    layer_name = from_layer.rsplit("/", 1)[-1] if from_layer else None
    layers = list(base.layers)
    if layer_name is not None:
        start = next(i for i, layer in enumerate(layers) if layer.name == layer_name)
    elif last_n is not None:
        weighted = [i for i, layer in enumerate(layers) if layer.weights and not _is_batchnorm(layer)]
        if last_n > len(weighted):
            raise V.fail("last_n", f"at most {len(weighted)} (the layers with weights in base '{base.name}')", last_n)
        start = weighted[-last_n]
    else:
        start = 0
    if not model.trainable:
        model.trainable = True
    base.trainable = True
    for i, layer in enumerate(layers):
        layer.trainable = i >= start
    for _, layer in iter_layers(base):
        if _is_batchnorm(layer):
            layer.trainable = False
    return model


# ----------------------------------------------------------------------------- features


def _as_dataset(data: Any, batch_size: int, argument: str = "data") -> tuple[Any, bool, int | None]:
    """``(dataset of batches, has_labels, number of batches or None)``."""
    import tensorflow as tf

    if isinstance(data, tf.data.Dataset):
        spec = data.element_spec
        has_labels = isinstance(spec, tuple) and len(spec) >= 2
        x_spec = spec[0] if isinstance(spec, tuple) else spec
        if getattr(x_spec, "shape", None) is not None and x_spec.shape.rank == 3:
            data = data.batch(batch_size)
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
        The feature extractor, e.g. from :func:`conv_base` (called with
        ``training=False``; not modified).
    data : tf.data.Dataset, (images, labels) or images
        A dataset of ``(images, labels)`` batches (as from
        :func:`visionkit.data.image_folder`) or of image batches; or numpy arrays
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
    >>> from visionkit.data import image_folder
    >>> from visionkit.transfer import conv_base, extract_features
    >>> base = conv_base("vgg16", weights=None)  # doctest: +SKIP
    >>> features, labels = extract_features(base, image_folder("pets/train"))  # doctest: +SKIP
    >>> features.shape  # doctest: +SKIP
    (2000, 4, 4, 512)
    """

    if not isinstance(base, keras.Model):
        raise V.fail("base", "a keras.Model (e.g. from conv_base)", base)
    batch_size = V.integer("batch_size", batch_size, minimum=1)
    ds, has_labels, total = _as_dataset(data, batch_size)

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


# ----------------------------------------------------------------------------- training


def _merge_histories(model: keras.Model, parts: Sequence[Any], params: dict[str, Any]) -> keras.callbacks.History:
    keys: list[str] = []
    for h in parts:
        for k in h.history:
            if k not in keys:
                keys.append(k)
    merged = keras.callbacks.History()
    merged.set_model(model)
    merged.history = {k: [] for k in keys}
    n = 0
    for h in parts:
        length = len(h.epoch) if h.epoch else max((len(v) for v in h.history.values()), default=0)
        for k in keys:
            values = list(h.history.get(k, []))
            merged.history[k].extend([float(v) for v in values] + [math.nan] * (length - len(values)))
        n += length
    merged.epoch = list(range(n))
    merged.params = dict(params)
    return merged


def fine_tune(
    model: keras.Model,
    train_data: Any,
    *,
    validation_data: Any = None,
    head_epochs: int = 5,
    epochs: int = 10,
    from_layer: str | None = "block5_conv1",
    last_n: int | None = None,
    head_learning_rate: float | None = None,
    learning_rate: float = 1e-5,
    optimizer: str = "rmsprop",
    batch_size: int = 32,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    log_dir: str | os.PathLike[str] | None = None,
    strategy: Any = None,
    seed: int | None = None,
    progress: bool = True,
    callbacks: Sequence[Any] | None = None,
) -> keras.callbacks.History:
    """Fine-tune a :func:`transfer_model` in two phases; return one ``History``.

    Phase 1 trains the head with the base frozen (``head_epochs`` epochs at
    ``head_learning_rate``). Phase 2 calls :func:`unfreeze` (``from_layer`` or
    ``last_n``) and continues for ``epochs`` epochs at the low ``learning_rate``.
    Both phases run through the crash-safe :func:`visionkit.training.train`, which
    compiles the model each time. ``model`` is trained in place (like ``fit``) and
    its base is left unfrozen as in phase 2.

    Parameters
    ----------
    model : keras.Model
        From :func:`transfer_model` (base frozen).
    train_data, validation_data
        As for :func:`visionkit.training.train`: a ``tf.data.Dataset`` of
        ``(images, labels)`` batches, or an ``(images, labels)`` pair of arrays.
    head_epochs : int, default 5
        Epochs of phase 1 (0 skips it, for a head that is already trained).
    epochs : int, default 10
        Epochs of phase 2 (after unfreezing).
    from_layer, last_n
        What to unfreeze; see :func:`unfreeze`. Default ``"block5_conv1"`` (VGG16/19).
    head_learning_rate : float, optional
        Learning rate of phase 1 (``None``: the optimizer's default, 1e-3 for RMSprop).
    learning_rate : float, default 1e-5
        Learning rate of phase 2: low, so the pretrained features are only nudged.
    optimizer : str, default "rmsprop"
        Optimizer name, for both phases.
    batch_size : int, default 32
        Batch size for array inputs.
    checkpoint_dir : path, optional
        Makes the run resumable: phase 1 checkpoints in ``checkpoint_dir/head``,
        phase 2 in ``checkpoint_dir/fine_tune``. Run the same call again after a
        crash: a finished phase 1 is not redone (its last weights are restored) and
        phase 2 resumes after its last completed epoch.
    log_dir : path, optional
        TensorBoard logs and CSV, in ``log_dir/head`` and ``log_dir/fine_tune``.
    strategy : str or tf.distribute.Strategy, optional
        Distribution strategy for both phases (see :func:`visionkit.training.train`
        and the "Scaling out" page); build ``model`` under its scope.
    seed : int, optional
        Seed passed to :func:`~visionkit.training.train`.
    progress : bool, default True
        Keras progress bars.
    callbacks : sequence of keras.callbacks.Callback, optional
        Extra callbacks for both phases.

    Returns
    -------
    keras.callbacks.History
        Both phases concatenated: ``history.epoch == list(range(head_epochs +
        epochs))``; ``history.params["head_epochs"]`` marks where phase 2 starts.

    Examples
    --------
    >>> from visionkit.transfer import conv_base, transfer_model, fine_tune
    >>> model = transfer_model(conv_base("vgg16"))  # doctest: +SKIP
    >>> history = fine_tune(model, train_ds, validation_data=val_ds,
    ...                     head_epochs=5, epochs=10, checkpoint_dir="ckpt")  # doctest: +SKIP
    """
    from .training import train

    if not isinstance(model, keras.Model):
        raise V.fail("model", "a keras.Model (e.g. from transfer_model)", model)
    head_epochs = V.integer("head_epochs", head_epochs, minimum=0)
    epochs = V.integer("epochs", epochs, minimum=1)
    head_learning_rate = V.number("head_learning_rate", head_learning_rate, minimum=0.0, exclusive_minimum=True, allow_none=True)
    learning_rate = V.number("learning_rate", learning_rate, minimum=0.0, exclusive_minimum=True)
    if from_layer is not None and last_n is not None:
        # An explicit last_n overrides the default from_layer.
        from_layer = None
    # Validate the unfreeze target before spending time on phase 1.
    _find_base(model, from_layer)
    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
    logs = Path(log_dir) if log_dir is not None else None
    common: dict[str, Any] = {
        "validation_data": validation_data,
        "batch_size": batch_size,
        "optimizer": optimizer,
        "seed": seed,
        "progress": progress,
        "callbacks": list(callbacks) if callbacks else None,
        "strategy": strategy,
    }
    parts: list[Any] = []
    if head_epochs:
        parts.append(train(
            model, train_data, epochs=head_epochs, learning_rate=head_learning_rate,
            checkpoint_dir=ckpt / "head" if ckpt else None, log_dir=logs / "head" if logs else None,
            **common,
        ))
    unfreeze(model, from_layer=from_layer, last_n=last_n)
    h2 = train(
        model, train_data, epochs=epochs, learning_rate=learning_rate,
        checkpoint_dir=ckpt / "fine_tune" if ckpt else None, log_dir=logs / "fine_tune" if logs else None,
        **common,
    )
    parts.append(h2)
    params = dict(getattr(h2, "params", None) or {})
    params.update({"epochs": head_epochs + epochs, "head_epochs": head_epochs, "fine_tune_epochs": epochs})
    return _merge_histories(model, parts, params)


# ----------------------------------------------------------------------------- folders


_SPLIT_NAMES = ("train", "validation", "val", "test")


def _split_dirs(directory: Path, test_directory: Any) -> tuple[Path, Path | None, Path | None]:
    """``(train, validation or None, test or None)`` folders."""
    test = Path(test_directory) if test_directory is not None else None
    if (directory / "train").is_dir():
        subdirs = {d.name for d in directory.iterdir() if d.is_dir() and not d.name.startswith(".")}
        if subdirs <= set(_SPLIT_NAMES):
            val = next((directory / n for n in ("validation", "val") if n in subdirs), None)
            if test is None and "test" in subdirs:
                test = directory / "test"
            return directory / "train", val, test
    return directory, None, test


def train_transfer(
    directory: str | os.PathLike[str],
    *,
    base: BaseSpec = "vgg16",
    method: str = "fine_tune",
    weights: str | os.PathLike[str] | None = "imagenet",
    image_size: int | tuple[int, int] = (150, 150),
    epochs: int = 30,
    head_epochs: int = 10,
    batch_size: int = 20,
    learning_rate: float | None = None,
    fine_tune_learning_rate: float = 1e-5,
    from_layer: str | None = None,
    last_n: int | None = None,
    hidden: int | None = 256,
    dropout: float = 0.5,
    augment: bool = True,
    validation_split: float = 0.2,
    test_directory: str | os.PathLike[str] | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    strategy: Any = None,
    seed: int | None = 0,
    progress: bool = True,
) -> tuple[keras.Model, keras.callbacks.History, dict[str, float]]:
    """Train a classifier on a folder of images with a pretrained base.

    Parameters
    ----------
    directory : path
        Either a class-per-folder tree ``directory/<class>/<image>`` (a
        ``validation_split`` fraction is held out for validation), or a folder with
        ``train/``, ``test/`` and optionally ``validation/`` (or ``val/``) trees.
    base : str or callable, default "vgg16"
        Backbone name or builder, as for :func:`conv_base`.
    method : {"features", "frozen", "fine_tune"}, default "fine_tune"
        ``"features"``: extract features once, train a dense classifier on them
        (fastest; no augmentation). ``"frozen"``: frozen base inside the model, with
        augmentation. ``"fine_tune"``: ``"frozen"`` for ``head_epochs``, then unfreeze
        the top of the base for ``epochs`` more at ``fine_tune_learning_rate``.
    weights : "imagenet", None or path, default "imagenet"
        Weights of the base (see :func:`conv_base`).
    image_size : int or (height, width), default (150, 150)
        Images are resized to this size.
    epochs : int, default 30
        Training epochs (for ``"fine_tune"``: the epochs after unfreezing).
    head_epochs : int, default 10
        ``"fine_tune"`` only: epochs of the head with the base frozen.
    batch_size : int, default 20
        Batch size.
    learning_rate : float, optional
        Learning rate of the head training (``None``: the RMSprop default, 1e-3).
    fine_tune_learning_rate : float, default 1e-5
        Learning rate after unfreezing.
    from_layer, last_n
        What to unfreeze (see :func:`unfreeze`); default the base's last block
        (:data:`DEFAULT_FINE_TUNE_FROM`), or its last 3 weighted layers for custom bases.
    hidden, dropout
        The classifier head (see :func:`transfer_model`).
    augment : bool, default True
        Random flips, rotations, shifts and zooms (``"frozen"`` and ``"fine_tune"``).
    validation_split : float, default 0.2
        Fraction held out for validation when ``directory`` has no ``validation/``.
    test_directory : path, optional
        A class-per-folder tree to report test metrics on (default ``directory/test``
        when present). Without a test set, ``test_metrics`` are computed on the
        validation images.
    checkpoint_dir : path, optional
        Resumable training (see :func:`visionkit.training.train`).
    strategy : str or tf.distribute.Strategy, optional
        Distribution strategy: the models are built under its scope, and
        ``batch_size`` is per replica (the global batch is ``batch_size`` times the
        number of replicas). See the "Scaling out" page.
    seed : int, optional, default 0
        Seed of the split, the shuffling and the augmentation (weight
        initialisation is seeded by :func:`visionkit.device.configure`).
    progress : bool, default True
        Progress bars.

    Returns
    -------
    (model, history, test_metrics)
        ``model``: an end-to-end ``keras.Model`` taking raw images ``(batch, h, w, 3)``
        in ``[0, 255]`` (for ``"features"`` the base and the trained classifier joined
        together), with ``model.class_names`` set; ``history``: the
        ``keras.callbacks.History``; ``test_metrics``: dict such as
        ``{"loss": ..., "accuracy": ...}``.

    Examples
    --------
    >>> from visionkit.transfer import train_transfer
    >>> model, history, metrics = train_transfer("pets/", method="features")  # doctest: +SKIP
    >>> metrics["accuracy"]  # doctest: +SKIP
    0.9
    """
    import contextlib

    from .data import image_folder
    from .preprocess import augmentation as make_augmentation
    from .training import _resolve_strategy, evaluate, train

    V.one_of("method", method, METHODS)
    size = V.size2d("image_size", image_size)
    epochs = V.integer("epochs", epochs, minimum=1)
    head_epochs = V.integer("head_epochs", head_epochs, minimum=0)
    batch_size = V.integer("batch_size", batch_size, minimum=1)
    seed = V.integer("seed", seed, minimum=0, allow_none=True)
    if isinstance(base, str):
        V.one_of("base", base, _applications.APPLICATIONS)
    elif not callable(base):
        raise V.fail("base", f"one of {list(_applications.APPLICATIONS)} or a function returning a keras.Model", base)
    root = Path(directory)
    if not root.is_dir():
        from .errors import DataNotFoundError

        raise DataNotFoundError(f"Image folder not found: '{root}' (argument `directory`).")
    train_dir, val_dir, test_dir = _split_dirs(root, test_directory)
    classes = sorted(d.name for d in train_dir.iterdir() if d.is_dir() and not d.name.startswith("."))
    label_mode = "binary" if len(classes) == 2 else "int"
    strat = _resolve_strategy(strategy)
    scope = strat.scope if strat is not None else contextlib.nullcontext
    global_batch = batch_size * (strat.num_replicas_in_sync if strat is not None else 1)
    folder_kw: dict[str, Any] = {"image_size": size, "batch_size": global_batch, "seed": seed, "label_mode": label_mode}
    if val_dir is None:
        train_ds, val_ds = image_folder(train_dir, validation_split=validation_split, subset="both", **folder_kw)
    else:
        train_ds = image_folder(train_dir, **folder_kw)
        val_ds = image_folder(val_dir, shuffle=False, **folder_kw)
    test_ds = image_folder(test_dir, shuffle=False, **folder_kw) if test_dir is not None else None
    class_names = list(train_ds.class_names)
    for name, ds in (("validation", val_ds), ("test", test_ds)):
        if ds is not None and list(ds.class_names) != class_names:
            raise InvalidArgumentError(
                f"The {name} folder has classes {ds.class_names}, the training folder {class_names}; "
                "they must be the same."
            )
    num_classes = len(class_names)
    if num_classes < 2:
        raise V.fail("directory", "a folder with at least 2 class sub-folders", str(root))
    with scope():
        cbase = conv_base(base, weights=weights, input_shape=(*size, 3))
    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if method == "features":
        x_train, y_train = extract_features(cbase, train_ds, progress=progress)
        x_val, y_val = extract_features(cbase, val_ds, progress=progress)
        with scope():
            clf = feature_classifier(x_train.shape[1:], num_classes=num_classes, hidden=hidden, dropout=dropout)
        history = train(
            clf, (x_train, y_train), validation_data=(x_val, y_val), epochs=epochs, batch_size=batch_size,
            learning_rate=learning_rate, checkpoint_dir=ckpt, strategy=strat, seed=seed, progress=progress,
        )
        inputs = keras.Input(shape=(*size, 3), name="image")
        model = keras.Model(inputs, clf(cbase(inputs, training=False)), name=f"{cbase.name}_features")
        if test_ds is not None:
            x_test, y_test = extract_features(cbase, test_ds, progress=progress)
            test_metrics = evaluate(clf, (x_test, y_test), batch_size=batch_size)
        else:
            test_metrics = evaluate(clf, (x_val, y_val), batch_size=batch_size)
    else:
        with scope():
            aug = make_augmentation(seed=seed) if augment else None
            model = transfer_model(cbase, num_classes=num_classes, hidden=hidden, dropout=dropout, augmentation=aug)
        if method == "frozen":
            history = train(
                model, train_ds, validation_data=val_ds, epochs=epochs, batch_size=batch_size,
                learning_rate=learning_rate, checkpoint_dir=ckpt, strategy=strat, seed=seed, progress=progress,
            )
        else:
            if from_layer is None and last_n is None:
                default = DEFAULT_FINE_TUNE_FROM.get(base) if isinstance(base, str) else None
                if default is not None and any(layer.name == default for layer in cbase.layers):
                    from_layer = default
                else:
                    last_n = 3
            history = fine_tune(
                model, train_ds, validation_data=val_ds, head_epochs=head_epochs, epochs=epochs,
                from_layer=from_layer, last_n=last_n, head_learning_rate=learning_rate,
                learning_rate=fine_tune_learning_rate, batch_size=batch_size, checkpoint_dir=ckpt,
                strategy=strat, seed=seed, progress=progress,
            )
        test_metrics = evaluate(model, test_ds if test_ds is not None else val_ds, batch_size=batch_size)
    model.class_names = class_names
    return model, history, {k: float(v) for k, v in test_metrics.items()}


# ----------------------------------------------------------------------------- inference


def _images_batch(images: Any, size: tuple[int, int]) -> np.ndarray:
    from .data import load_image

    if isinstance(images, (str, os.PathLike)):
        return load_image(images, size=size)[None]
    if isinstance(images, np.ndarray) or hasattr(images, "numpy"):
        arr = np.asarray(images.numpy() if hasattr(images, "numpy") else images)
        if arr.ndim == 3:
            arr = arr[None]
        if arr.ndim != 4:
            raise V.fail("images", "an image (H, W, 3), a batch (N, H, W, 3), a path or a list of them", f"array of shape {arr.shape}")
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
        :func:`train_transfer` or :func:`transfer_model`); not modified.
    images : array, path, or list of paths/arrays
        One image ``(H, W, 3)``, a batch ``(N, H, W, 3)`` (raw ``[0, 255]``), an image
        file, or a list of files or arrays. Images of another size are resized to the
        model's input size.
    class_names : sequence of str, optional
        Names of the classes in label order; defaults to ``model.class_names`` (set by
        :func:`train_transfer`).
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
    >>> from visionkit.transfer import classify
    >>> labels, probs = classify(model, "cat.jpg", class_names=["cat", "dog"])  # doctest: +SKIP
    """
    if not isinstance(model, keras.Model) or not model.inputs:
        raise V.fail("model", "a keras.Model with a defined input", model)
    names = list(class_names) if class_names is not None else getattr(model, "class_names", None)
    if not names or not all(isinstance(n, str) for n in names):
        raise V.fail("class_names", "a list of class-name strings (or a model with `class_names`)", class_names)
    batch_size = V.integer("batch_size", batch_size, minimum=1)
    units = int(model.outputs[0].shape[-1])
    expected = 2 if units == 1 else units
    if len(names) != expected:
        raise V.fail("class_names", f"{expected} names (the model has {units} output unit(s))", list(names))
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
    """What :func:`lr_find` measured.

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
    optimizer: str = "rmsprop",
    loss: Any = None,
    batch_size: int = 32,
    stop_factor: float = 4.0,
    progress: bool = True,
) -> LRFinderResult:
    """Learning-rate range test: train briefly with a growing learning rate.

    The learning rate rises log-linearly from ``min_lr`` to ``max_lr`` over ``steps``
    training steps (stopping early when the loss exceeds ``stop_factor`` times its
    best); the suggestion is a tenth of the rate at the lowest smoothed loss, a rule
that holds up on noisy losses. The steps run on
    a **copy** of ``model``: the caller's weights, trainability and compile state are
    not touched.

    Parameters
    ----------
    model : keras.Model
        The model to train (e.g. a :func:`transfer_model`).
    train_data : tf.data.Dataset or (images, labels)
        Training batches; repeated as needed.
    min_lr, max_lr : float
        The learning-rate range, ``0 < min_lr < max_lr``.
    steps : int, default 100
        Number of training steps.
    optimizer : str, default "rmsprop"
        Optimizer name (as for ``keras.optimizers.get``).
    loss : str or keras loss, optional
        Default: binary cross-entropy for one output unit, else sparse categorical.
    batch_size : int, default 32
        Batch size for arrays.
    stop_factor : float, default 4.0
        Stop once the smoothed loss exceeds this multiple of the best one.
    progress : bool, default True
        Progress bar.

    Returns
    -------
    LRFinderResult
        Learning rates, losses, the suggestion, and ``.plot()`` for a Figure.

    Examples
    --------
    >>> from visionkit.transfer import lr_find
    >>> result = lr_find(model, train_ds, steps=50)  # doctest: +SKIP
    >>> result.plot().savefig("lr.png"); result.suggestion  # doctest: +SKIP
    """
    import tensorflow as tf

    if not isinstance(model, keras.Model) or not model.inputs:
        raise V.fail("model", "a keras.Model with a defined input", model)
    min_lr = V.number("min_lr", min_lr, minimum=0.0, exclusive_minimum=True)
    max_lr = V.number("max_lr", max_lr, minimum=0.0, exclusive_minimum=True)
    if not max_lr > min_lr:
        raise InvalidArgumentError(f"`max_lr` must be larger than `min_lr`. Received: min_lr={min_lr}, max_lr={max_lr}")
    steps = V.integer("steps", steps, minimum=5)
    stop_factor = V.number("stop_factor", stop_factor, minimum=1.0, exclusive_minimum=True)
    ds, has_labels, _ = _as_dataset(train_data, V.integer("batch_size", batch_size, minimum=1), "train_data")
    if not has_labels:
        raise V.fail("train_data", "(images, labels) batches or arrays", "data without labels")
    clone = _copy_model(model)
    opt = keras.optimizers.get(optimizer)
    opt.learning_rate = min_lr
    if loss is None:
        from .training import default_loss

        loss_fn = default_loss(model)
    else:
        loss_fn = keras.losses.get(loss)
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

    lrs = np.geomspace(min_lr, max_lr, steps)
    losses: list[float] = []
    smooth: list[float] = []
    avg, beta, best = 0.0, 0.9, math.inf
    batches = iter(ds.repeat())
    with _progress(steps, "lr_find", progress, unit="step") as bar:
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
    n = len(losses)
    lr_arr, loss_arr, smooth_arr = lrs[:n], np.asarray(losses), np.asarray(smooth)
    suggestion = _suggest(lr_arr, smooth_arr)
    return LRFinderResult(lr_arr, loss_arr, smooth_arr, suggestion, {"optimizer": optimizer, "stopped_early": n < steps})


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

