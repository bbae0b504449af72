"""Transfer learning: reuse a pretrained convolutional base on a small image dataset.

Three ways to put a pretrained base (VGG16, ResNet50, MobileNetV2, ... or a base you
trained yourself) to work on a small class-per-folder dataset:

1. **Feature extraction** ([`extract_features`][visionkit.transfer.extract_features] + [`feature_classifier`][visionkit.transfer.feature_classifier]): run
   the frozen base once over the images, then train a small dense classifier on the
   stored features. Very fast; no augmentation possible.
2. **Frozen base + augmentation** ([`transfer_model`][visionkit.transfer.transfer_model]): the base sits frozen
   inside an end-to-end model with random augmentation in front; only the head
   trains, but every epoch runs the base. Slower, overfits less.
3. **Fine-tuning** ([`fine_tune`][visionkit.transfer.fine_tune], with [`unfreeze`][visionkit.transfer.unfreeze]): train the head with the
   base frozen, then unfreeze the top of the base and continue with a low learning
   rate.

[`train_transfer`][visionkit.transfer.train_transfer] runs any of the three on a folder in one call;
[`classify`][visionkit.transfer.classify] labels new images; [`lr_find`][visionkit.transfer.lr_find] suggests a learning rate.

[`fine_tune`][visionkit.transfer.fine_tune] and [`train_transfer`][visionkit.transfer.train_transfer] take the shared training options
([`visionkit.training.TrainOptions`][visionkit.training.TrainOptions]; their defaults in [`RECIPE_DEFAULTS`][visionkit.transfer.RECIPE_DEFAULTS])
and return a [`visionkit.training.TrainResult`][visionkit.training.TrainResult]. In both, ``epochs`` is the run's
total; the first ``head_epochs`` train the head alone at ``head_learning_rate``, the
rest the unfrozen top of the base at ``learning_rate`` (low, default 1e-5). Methods
that never unfreeze the base (``"features"``, ``"frozen"``) train the head only, so at
``head_learning_rate``.

Every base built by [`conv_base`][visionkit.transfer.conv_base] holds its own ``preprocess_input``
([`preprocessing_for`][visionkit.transfer.preprocessing_for]) as its first layer, so callers always feed raw RGB images
in ``[0, 255]``.

Examples
--------
>>> import keras
>>> from visionkit import transfer
>>> def tiny(shape):
...     inputs = keras.Input(shape)
...     return keras.Model(inputs, keras.layers.Conv2D(4, 3, name="block1_conv1")(inputs), name="tiny")
>>> base = transfer.conv_base(tiny, weights=None, input_shape=(16, 16, 3))
>>> model = transfer.transfer_model(base, hidden=8, dropout=0.0)
>>> model.count_params(), sum(int(w.numpy().size) for w in model.trainable_weights)
(6401, 6289)
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
from ._transfer_defaults import DEFAULT_FINE_TUNE_FROM, METHODS, POOLINGS, RECIPE_DEFAULTS
from ._transfer_infer import LRFinderResult, classify, extract_features, lr_find
from ._transfer_train import fine_tune, train_transfer

__all__ = [
    "DEFAULT_FINE_TUNE_FROM",
    "METHODS",
    "POOLINGS",
    "RECIPE_DEFAULTS",
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
