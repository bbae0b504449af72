"""visionkit's serialisable Keras classes, registered by importing the leaf modules that define them.

Each class is registered where it is defined, with
``@keras.saving.register_keras_serializable(package="visionkit")``; importing this
module imports those modules (none of them imports the training loop or a recipe),
so ``keras.models.load_model`` finds the classes. [`visionkit.training`][visionkit.training]
imports it, so a model saved by a recipe loads with ``keras.models.load_model`` once
``visionkit.training`` is imported, or with
[`training.load_model`][visionkit.training.load_model].
"""

from __future__ import annotations

from . import _fast_cifar, _labels, _temperature, _transfer_base

__all__ = ["MODULES"]

#: The modules that define visionkit's registered Keras classes (the class-names layer, the
#: transfer backbones' preprocessing, the fast CIFAR-10 recipe's layers, initialiser and optimizer).
MODULES = (_labels, _transfer_base, _fast_cifar, _temperature)
