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

from ._transfer_base import (
    BackbonePreprocessing,
    conv_base,
    feature_classifier,
    preprocessing_for,
    transfer_model,
    unfreeze,
)
from ._transfer_defaults import DEFAULT_FINE_TUNE_FROM, METHODS
from ._transfer_infer import LRFinderResult, classify, extract_features, lr_find
from ._transfer_train import fine_tune, train_transfer

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
