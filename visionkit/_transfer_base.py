"""Bases, heads and unfreezing for transfer learning (private; public through [`visionkit.transfer`][visionkit.transfer])."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np

from . import _backbones
from . import _validate as V
from ._layers import get_layer, iter_layers
from ._transfer_defaults import POOLINGS
from .errors import InvalidArgumentError

__all__ = [
    "BackbonePreprocessing",
    "BaseSpec",
    "check_head_args",
    "conv_base",
    "feature_classifier",
    "find_base",
    "min_input_size",
    "preprocessing_for",
    "transfer_model",
    "unfreeze",
]

BaseSpec = str | Callable[..., Any]


# ----------------------------------------------------------------------------- bases


@keras.saving.register_keras_serializable(package="visionkit", name="BackbonePreprocessing")
class BackbonePreprocessing(keras.layers.Layer):
    """The ``preprocess_input`` of a ``keras.applications`` backbone, as a layer.

    Maps raw RGB images in ``[0, 255]`` (float, shape ``(batch, H, W, 3)``) to what
    the backbone's weights expect (e.g. BGR minus the ImageNet means for VGG, ``[-1,
    1]`` for MobileNetV2, unchanged for EfficientNet, whose scaling is built in).
    Serialisable: saved models load again once [`visionkit.transfer`][visionkit.transfer] is imported.

    Parameters
    ----------
    backbone : str
        A name of ``visionkit._backbones.APPLICATIONS`` (``"vgg16"``, ...).
    """

    def __init__(self, backbone: str, **kwargs: Any) -> None:
        V.one_of("backbone", backbone, _backbones.APPLICATIONS)
        super().__init__(**kwargs)
        self.backbone = backbone
        self._fn = _backbones.preprocess_function(backbone)

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
        batch ``(N, H, W, 3)``. [`conv_base`][visionkit.transfer.conv_base] already includes it.

    Examples
    --------
    >>> import numpy as np
    >>> from visionkit.transfer import preprocessing_for
    >>> pre = preprocessing_for("mobilenet_v2")
    >>> float(np.asarray(pre(np.full((1, 2, 2, 3), 255.0))).max())
    1.0
    """
    V.one_of("name", name, _backbones.APPLICATIONS)
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
        Size of the input images: height and width at least 32 (75 for
        ``inception_v3``, 71 for ``xception``); 3 channels with ImageNet weights.
    trainable : bool, default False
        Whether the base's weights train. Bases are frozen by default.
    preprocess : bool, default True
        Put [`preprocessing_for`][visionkit.transfer.preprocessing_for] ``(name)`` first inside the base so it takes raw
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
    >>> base = conv_base("mobilenet_v2", weights=None, input_shape=(32, 32, 3))
    >>> base.output_shape, base.layers[1].name, base.trainable
    ((None, 1, 1, 1280), 'mobilenet_v2_preprocess', False)

    A base of your own (a function of the input shape):

    >>> import keras
    >>> def tiny(shape):
    ...     inputs = keras.Input(shape)
    ...     return keras.Model(inputs, keras.layers.Conv2D(4, 3, name="block1_conv1")(inputs), name="tiny")
    >>> conv_base(tiny, weights=None, input_shape=(16, 16, 3)).output_shape
    (None, 14, 14, 4)
    """
    shape = _input_shape(input_shape)
    if isinstance(weights, os.PathLike):
        weights = os.fspath(weights)
    if callable(name) and not isinstance(name, str):
        base = _custom_base(name, weights, shape)
    else:
        V.one_of("name", name, _backbones.APPLICATIONS)
        _check_base_shape(name, shape, weights)
        kwargs: dict[str, Any] = {}
        if preprocess:
            inputs = keras.Input(shape=shape, name="image")
            kwargs["input_tensor"] = preprocessing_for(name)(inputs)
        base = _backbones.application(name, weights=weights, include_top=False, input_shape=shape, **kwargs)
    base.trainable = bool(trainable)
    return base


#: The smallest height and width each ``keras.applications`` base accepts (Keras' ``min_size``).
_MIN_SIZES = {"inception_v3": 75, "xception": 71}


def min_input_size(name: str) -> int:
    """The smallest height and width the ``keras.applications`` base ``name`` takes."""
    return _MIN_SIZES.get(name, 32)


def _check_base_shape(name: str, shape: tuple[int, int, int], weights: Any) -> None:
    """Refuse an input shape the backbone cannot take, before Keras does so from inside."""
    low = min_input_size(name)
    if min(shape[:2]) < low:
        raise V.fail("input_shape", f"a (height, width, channels) tuple with height and width >= {low} for "
                     f"base '{name}'", shape)
    if weights == "imagenet" and shape[2] != 3:
        raise V.fail("input_shape", f"3 channels (RGB) for base '{name}' with ImageNet weights", shape)


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
    _backbones.load_weights_file(base, weights, label=f"base '{base.name}'")
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
        # float32 output layer: probabilities stay accurate under a mixed-precision policy
        return keras.layers.Dense(1, activation="sigmoid", dtype="float32", name="predictions")(x)
    return keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="predictions")(x)


def check_head_args(num_classes: Any, hidden: Any, dropout: Any, pooling: Any) -> tuple[int, int | None, float]:
    num_classes = V.integer("num_classes", num_classes, minimum=2)
    hidden = V.integer("hidden", hidden, minimum=0, allow_none=True)
    dropout = V.number("dropout", dropout, minimum=0.0, maximum=1.0, exclusive_maximum=True)
    V.one_of("pooling", pooling, POOLINGS)
    return num_classes, hidden or None, dropout


def feature_classifier(
    feature_shape: Sequence[int],
    *,
    num_classes: int = 2,
    hidden: int | None = 256,
    dropout: float = 0.5,
    pooling: str = "flatten",
) -> keras.Model:
    """The dense classifier trained on features from [`extract_features`][visionkit.transfer.extract_features].

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
    >>> feature_classifier((4, 4, 512)).count_params()
    2097665
    >>> feature_classifier((4, 4, 512), num_classes=5, pooling="avg").output_shape
    (None, 5)
    """
    if isinstance(feature_shape, (int, np.integer)) or not isinstance(feature_shape, Sequence) or not feature_shape or not all(
        isinstance(v, (int, np.integer)) and v > 0 for v in feature_shape
    ):
        raise V.fail("feature_shape", "a non-empty tuple of positive integers (features.shape[1:])", feature_shape)
    num_classes, hidden, dropout = check_head_args(num_classes, hidden, dropout, pooling)
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
        A convolutional base with a defined input shape, e.g. from [`conv_base`][visionkit.transfer.conv_base].
        It is **shared, not copied**, and **frozen**: this function sets
        ``base.trainable = False``. It is called with ``training=False``, so its
        BatchNorm layers stay in inference mode even after [`unfreeze`][visionkit.transfer.unfreeze].
    num_classes : int, default 2
        2 gives one sigmoid output; more gives a softmax.
    hidden : int or None, default 256
        Width of the ReLU hidden layer; 0 or None for none.
    dropout : float, default 0.5
        Dropout rate before the output layer; 0 for none.
    augmentation : keras.Layer, optional
        Random augmentation applied to the raw images first, active only in training
        (e.g. [`visionkit.preprocess.augmentation`][visionkit.preprocess.augmentation]).
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
    >>> import keras
    >>> from visionkit.preprocess import augmentation
    >>> from visionkit.transfer import conv_base, transfer_model
    >>> def tiny(shape):
    ...     inputs = keras.Input(shape)
    ...     return keras.Model(inputs, keras.layers.Conv2D(4, 3, name="block1_conv1")(inputs), name="tiny")
    >>> base = conv_base(tiny, weights=None, input_shape=(16, 16, 3))
    >>> model = transfer_model(base, hidden=8, augmentation=augmentation(seed=0))
    >>> model.output_shape, base.trainable
    ((None, 1), False)
    """
    if not isinstance(base, keras.Model) or not base.inputs:
        raise V.fail("base", "a keras.Model with a defined input shape (e.g. from conv_base)", base)
    if len(base.inputs) != 1:
        raise V.fail("base", "a model with one input", f"model '{base.name}' with {len(base.inputs)} inputs")
    num_classes, hidden, dropout = check_head_args(num_classes, hidden, dropout, pooling)
    if augmentation is not None and not callable(augmentation):
        raise V.fail("augmentation", "a Keras layer (e.g. visionkit.preprocess.augmentation()) or None", augmentation)
    base.trainable = False
    inputs = keras.Input(shape=tuple(base.inputs[0].shape[1:]), name="image")
    x = augmentation(inputs) if augmentation is not None else inputs
    x = base(x, training=False)
    outputs = _head(x, num_classes=num_classes, hidden=hidden, dropout=dropout, pooling=pooling)
    return keras.Model(inputs, outputs, name=f"{base.name}_transfer")


# ----------------------------------------------------------------------------- unfreeze


def find_base(model: keras.Model, from_layer: str | None) -> keras.Model:
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

    The base is the nested model inside ``model`` (as built by [`transfer_model`][visionkit.transfer.transfer_model];
    the largest one when there are several), or ``model`` itself when it nests none.
    Layers from ``from_layer`` on (or the last ``last_n`` layers holding weights)
    become trainable; earlier layers are frozen; **BatchNorm layers always stay
    frozen** (and, in a [`transfer_model`][visionkit.transfer.transfer_model], in inference mode), so their moving
    statistics are not destroyed by small batches.

    Parameters
    ----------
    model : keras.Model
        A [`transfer_model`][visionkit.transfer.transfer_model] model, or a base. The ``trainable`` flags of its
        base's layers are changed in place (and ``model.trainable`` is set to True
        if it was False); nothing else is.
    from_layer : str, optional
        Name of the first base layer to unfreeze, e.g. ``"block5_conv1"`` for VGG16
        ([`DEFAULT_FINE_TUNE_FROM`][visionkit.transfer.DEFAULT_FINE_TUNE_FROM] lists one per backbone). ``"base/layer"``
        picks a specific nested model.
    last_n : int, optional
        Unfreeze the last ``last_n`` base layers that hold weights (BatchNorm layers
        are not counted). Give ``from_layer`` or ``last_n``, not both; with neither,
        the whole base (except BatchNorm) is unfrozen.

    Returns
    -------
    keras.Model
        ``model`` itself, ready to be compiled again (trainability changes take
        effect only at the next ``compile``; [`visionkit.training.train`][visionkit.training.train]
        compiles).

    Examples
    --------
    >>> import keras
    >>> from visionkit.transfer import conv_base, transfer_model, unfreeze
    >>> def tiny(shape):
    ...     inputs = keras.Input(shape)
    ...     x = keras.layers.Conv2D(4, 3, name="block1_conv1")(inputs)
    ...     x = keras.layers.BatchNormalization(name="block1_bn")(x)
    ...     return keras.Model(inputs, keras.layers.Conv2D(8, 3, name="block2_conv1")(x), name="tiny")
    >>> model = transfer_model(conv_base(tiny, weights=None, input_shape=(16, 16, 3)), hidden=None)
    >>> len(model.trainable_weights)  # the head's kernel and bias
    2
    >>> len(unfreeze(model, from_layer="block2_conv1").trainable_weights)  # + block2_conv1
    4
    >>> len(unfreeze(model).trainable_weights)  # + block1_conv1; BatchNorm stays frozen
    6
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
    base = find_base(model, from_layer)
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
