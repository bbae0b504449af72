"""VGG-19 feature extractor for style transfer (private).

The extractor is a NEW functional model: every convolution of the loaded VGG-19 is
rebuilt as a float32 layer holding a copy of the loaded kernel and bias, and VGG's
max-pooling is replaced by average pooling when asked. The model loaded through
``visionkit._applications.application`` is never modified. The graph stops at the
deepest requested layer, so no work is spent on layers no loss looks at.

Every layer carries an explicit ``"float32"`` dtype policy, so a global mixed-precision
policy (``keras.mixed_precision.set_global_policy("mixed_float16")``) does not change
the extractor: Gram matrices of large activations overflow float16.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from . import _validate as V

__all__ = ["VGG19_LAYER_NAMES", "build_extractor", "check_layers"]

#: Every convolution and pooling layer of VGG-19's convolutional base, in graph order.
VGG19_LAYER_NAMES: tuple[str, ...] = tuple(
    name
    for block, convs in ((1, 2), (2, 2), (3, 4), (4, 4), (5, 4))
    for name in ([f"block{block}_conv{i}" for i in range(1, convs + 1)] + [f"block{block}_pool"])
)


def check_layers(argument: str, layers: Any, *, allow_empty: bool) -> tuple[str, ...]:
    """Validate a sequence of VGG-19 layer names; return it as a tuple."""
    if isinstance(layers, str):
        layers = (layers,)
    allowed = f"a sequence of VGG-19 layer names (from {list(VGG19_LAYER_NAMES)})"
    if not isinstance(layers, Sequence):
        raise V.fail(argument, allowed, layers)
    layers = tuple(layers)
    if not layers and not allow_empty:
        raise V.fail(argument, "a non-empty " + allowed[2:], layers)
    bad = [n for n in layers if n not in VGG19_LAYER_NAMES]
    if bad:
        raise V.fail(argument, allowed + f"; unknown: {bad}", layers)
    if len(set(layers)) != len(layers):
        raise V.fail(argument, "a sequence of distinct VGG-19 layer names", layers)
    return layers


def build_extractor(
    layers: Sequence[str],
    *,
    pooling: str = "avg",
    weights: str | os.PathLike[str] | None = "imagenet",
) -> Any:
    """A float32 functional model mapping VGG-preprocessed images to ``{layer: features}``."""
    import keras
    import numpy as np

    from ._applications import application

    layers = tuple(layers)
    base = application("vgg19", weights=weights, include_top=False, input_shape=(None, None, 3))
    last = max(VGG19_LAYER_NAMES.index(n) for n in layers)
    policy = keras.DTypePolicy("float32")
    image = keras.Input(shape=(None, None, 3), dtype="float32", name="image")
    x = image
    outputs: dict[str, Any] = {}
    for name in VGG19_LAYER_NAMES[: last + 1]:
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
    return keras.Model(image, {n: outputs[n] for n in layers}, name=f"vgg19_style_{pooling}")
