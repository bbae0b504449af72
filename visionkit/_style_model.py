"""Feature extractors for style transfer (private).

The layers come from the presets table ([`visionkit.backbones`][visionkit.backbones]).
Every extractor takes VGG-preprocessed images (BGR, ImageNet mean subtracted: the space
the generated image is optimised in) and returns ``{layer: features}``.

VGG backbones (VGG-19, the default, and VGG16): the extractor is a NEW functional model:
every convolution of the loaded VGG is rebuilt as a float32 layer holding a copy of
the loaded kernel and bias, and VGG's max-pooling is replaced by average pooling when
asked. The graph stops at the deepest requested layer, so no work is spent on layers
no loss looks at. Other backbones: the float32 backbone, tapped at the requested
layers, behind a layer mapping VGG-preprocessed pixels to the backbone's own input
(``pooling`` does not apply).

The model loaded through ``visionkit._backbones.application`` is never modified.
Every layer carries an explicit ``"float32"`` dtype policy, so a global mixed-precision
policy (``keras.mixed_precision.set_global_policy("mixed_float16")``) does not change
the extractor: Gram matrices of large activations overflow float16.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from . import _validate as V
from ._backbones import PRESETS, Backbone, preset

__all__ = ["VGG19_LAYER_NAMES", "build_extractor", "check_layers", "min_side"]

#: Every convolution and pooling layer of VGG-19's convolutional base, in graph order.
VGG19_LAYER_NAMES: tuple[str, ...] = PRESETS["vgg19"].vgg_layer_names


def check_layers(argument: str, layers: Any, *, allow_empty: bool, backbone: str = "vgg19") -> tuple[str, ...]:
    """Validate a sequence of layer names of ``backbone``; return it as a tuple.

    VGG names are checked here against the table; other backbones' names are checked
    when the extractor is built (the message then lists the valid names).
    """
    record = preset(backbone)
    if isinstance(layers, str):
        layers = (layers,)
    known = record.vgg_layer_names
    label = f"{record.name} layer names" + (f" (from {list(known)})" if known else "")
    allowed = f"a sequence of {label}"
    if not isinstance(layers, Sequence) or not all(isinstance(n, str) for n in layers):
        raise V.fail(argument, allowed, layers)
    layers = tuple(layers)
    if not layers and not allow_empty:
        raise V.fail(argument, "a non-empty " + allowed[2:], layers)
    bad = [n for n in layers if known and n not in known]
    if bad:
        raise V.fail(argument, allowed + f"; unknown: {bad}", layers)
    if len(set(layers)) != len(layers):
        raise V.fail(argument, f"a sequence of distinct {record.name} layer names", layers)
    return layers


def min_side(backbone: str, layers: Sequence[str]) -> tuple[int, str]:
    """The smallest image side that reaches the deepest of ``layers``, and that layer."""
    record = preset(backbone)
    names = record.vgg_layer_names
    if not names:
        return record.min_size, layers[-1]
    deepest = max(names.index(n) for n in layers)
    return 2 ** sum(1 for n in names[:deepest] if n.endswith("_pool")), names[deepest]


def build_extractor(
    layers: Sequence[str],
    *,
    backbone: str = "vgg19",
    pooling: str = "avg",
    weights: str | os.PathLike[str] | None = "imagenet",
) -> Any:
    """A float32 model mapping VGG-preprocessed images to ``{layer: features}``."""
    record = preset(backbone)
    if record.vgg_blocks:
        return _vgg_extractor(record, tuple(layers), pooling=pooling, weights=weights)
    return _tapped_extractor(record, tuple(layers), weights=weights)


def _vgg_extractor(record: Backbone, layers: tuple[str, ...], *, pooling: str, weights: Any) -> Any:
    import keras
    import numpy as np

    base = record.build(weights=weights, include_top=False, input_shape=(None, None, 3))
    names = record.vgg_layer_names
    last = max(names.index(n) for n in layers)
    policy = keras.DTypePolicy("float32")
    image = keras.Input(shape=(None, None, 3), dtype="float32", name="image")
    x = image
    outputs: dict[str, Any] = {}
    for name in names[: last + 1]:
        source = base.get_layer(name)
        if name.endswith("_pool"):
            pool = keras.layers.AveragePooling2D if pooling == "avg" else keras.layers.MaxPooling2D
            x = pool(pool_size=2, strides=2, dtype=policy, name=name)(x)
        else:
            conv = keras.layers.Conv2D(
                source.filters,
                source.kernel_size,
                padding="same",
                activation="relu",
                dtype=policy,
                name=name,
            )
            x = conv(x)
            conv.set_weights([np.asarray(w, dtype=np.float32) for w in source.get_weights()])
        if name in layers:
            outputs[name] = x
    del base
    return keras.Model(image, {n: outputs[n] for n in layers}, name=f"{record.name}_style_{pooling}")


def _tapped_extractor(record: Backbone, layers: tuple[str, ...], *, weights: Any) -> Any:
    import keras

    from ._layers import get_layer, tap

    base = record.build(weights=weights, include_top=False, input_shape=(None, None, 3), float32=True)
    for n in layers:
        get_layer(base, n, argument="content_layers/style_layers")
    features = tap(base, list(layers), include_output=False, name=f"{record.name}_features")
    image = keras.Input(shape=(None, None, 3), dtype="float32", name="image")
    converted = _FromVGGPixels(record.preprocessing, dtype="float32", name="from_vgg_pixels")(image)
    return keras.Model(image, features(converted), name=f"{record.name}_style")


def _from_vgg_pixels_layer() -> Any:
    import keras

    class FromVGGPixels(keras.layers.Layer):
        """VGG-preprocessed BGR pixels -> a backbone's input (``preprocessing`` mode)."""

        def __init__(self, preprocessing: str, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.preprocessing = preprocessing

        def call(self, x: Any) -> Any:
            from keras import ops

            from .preprocess import IMAGENET_MEAN_RGB

            if self.preprocessing == "caffe":
                return x  # the same space
            rgb = ops.flip(x, axis=-1) + ops.convert_to_tensor(IMAGENET_MEAN_RGB, "float32")
            if self.preprocessing == "tf":
                return rgb / 127.5 - 1.0
            if self.preprocessing == "torch":
                mean = ops.convert_to_tensor([0.485, 0.456, 0.406], "float32")
                std = ops.convert_to_tensor([0.229, 0.224, 0.225], "float32")
                return (rgb / 255.0 - mean) / std
            return rgb

    return FromVGGPixels


def _FromVGGPixels(preprocessing: str, **kwargs: Any) -> Any:
    return _from_vgg_pixels_layer()(preprocessing, **kwargs)
