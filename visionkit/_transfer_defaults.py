"""Transfer-learning constants (private; public through :mod:`visionkit.transfer`).

This module imports neither TensorFlow nor Keras, so the command line can read the
methods, backbones' fine-tuning layers and recipe defaults cheaply.
"""

from __future__ import annotations

__all__ = ["DEFAULT_FINE_TUNE_FROM", "METHODS"]

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
