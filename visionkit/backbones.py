"""Per-backbone layer presets: one table shared by style, dream, CAM and filters.

Each ``keras.applications`` backbone the recipes know has one frozen
[`Backbone`][visionkit.backbones.Backbone] record: style transfer's content and style
layers, DeepDream's layers and weights, the default Grad-CAM layer (the last
convolutional feature map), the filter-pattern layers, the first layer to unfreeze
when fine-tuning, the ``preprocess_input`` mode and its input range, and the builder.
``style_transfer(..., backbone=)``, ``deep_dream(..., backbone=)``,
``filter_patterns(backbone=)``, ``grad_cam`` without ``layer`` on a known backbone, the
transfer recipes and the command line's ``--backbone`` all read this table; it is
the one place in the package where layer names live.

The names are checked against the layers ``keras.applications`` builds (with
``weights=None``) by ``tests/test_backbones.py``. The layers of VGG16/VGG19
(content ``block5_conv2``, style ``block1_conv1`` ... ``block5_conv1``) are those of
Gatys et al.; those of the other backbones are reasonable starting points (block
outputs at every scale), not tuned settings.

Importing this module does not import TensorFlow.

Examples
--------
>>> from visionkit.backbones import PRESETS, preset
>>> sorted(PRESETS)[:4]
['convnext_tiny', 'densenet121', 'efficientnet_b0', 'efficientnetv2_b0']
>>> vgg = preset("vgg16")
>>> vgg.cam_layer, vgg.style_layers[0], vgg.dream_weights["block5_conv3"]
('block5_conv3', 'block1_conv1', 1.5)
>>> vgg.input_range
(-123.68, 151.061)
>>> preset("inceptionv3").name  # Keras' spelling is accepted too
'inception_v3'
"""

from __future__ import annotations

from ._backbones import PREPROCESSINGS, PRESETS, Backbone, find_preset, preset

__all__ = ["PREPROCESSINGS", "PRESETS", "Backbone", "find_preset", "preset"]
