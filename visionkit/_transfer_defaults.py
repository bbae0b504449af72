"""Transfer-learning constants (private; public through [`visionkit.transfer`][visionkit.transfer]).

This module imports neither TensorFlow nor Keras, so the command line can read the
methods, backbones' fine-tuning layers and recipe defaults cheaply.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from ._backbones import PRESETS

__all__ = ["DEFAULT_FINE_TUNE_FROM", "METHODS", "POOLINGS", "RECIPE_DEFAULTS"]

#: The three transfer-learning methods of [`train_transfer`][visionkit.transfer.train_transfer].
METHODS: tuple[str, ...] = ("features", "frozen", "fine_tune")

#: How a head turns feature maps into a vector ([`transfer_model`][visionkit.transfer.transfer_model], [`feature_classifier`][visionkit.transfer.feature_classifier]).
POOLINGS: tuple[str, ...] = ("flatten", "avg")

#: The training options [`fine_tune`][visionkit.transfer.fine_tune] and [`train_transfer`][visionkit.transfer.train_transfer] set differently
#: from [`visionkit.training.TrainOptions`][visionkit.training.TrainOptions]' defaults (the command line uses them
#: too). ``epochs`` is the run's total, both phases together; ``learning_rate`` is the
#: rate at which the unfrozen base is fine-tuned (the head alone trains at
#: ``head_learning_rate``).
RECIPE_DEFAULTS: Mapping[str, Mapping[str, Any]] = MappingProxyType({
    "fine_tune": MappingProxyType({"epochs": 15, "batch_size": 32, "optimizer": "rmsprop", "learning_rate": 1e-5}),
    "train_transfer": MappingProxyType({"epochs": 30, "batch_size": 20, "optimizer": "rmsprop", "learning_rate": 1e-5}),
})

#: First layer to unfreeze when fine-tuning each backbone: its last block (from the
#: presets table, [`visionkit.backbones`][visionkit.backbones]).
DEFAULT_FINE_TUNE_FROM: dict[str, str] = {name: b.fine_tune_from for name, b in PRESETS.items()}
