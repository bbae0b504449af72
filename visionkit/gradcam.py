"""Grad-CAM: where a convnet looks when it predicts a class.

[`grad_cam`][visionkit.gradcam.grad_cam] computes class-activation heatmaps for any Keras classifier
(functional, ``Sequential``, a pretrained base nested inside either, models loaded from
``.keras`` files, softmax or sigmoid heads) in one compiled, batched pass;
[`overlay`][visionkit.gradcam.overlay] paints a heatmap over its image; [`explain_errors`][visionkit.gradcam.explain_errors] draws the
gallery of a model's most confidently wrong predictions with their heatmaps (an
[`ErrorGallery`][visionkit.gradcam.ErrorGallery]).

How it works: a new functional graph (built once per model and layer, then cached)
re-runs the model's own layers, sharing their weights, and returns the chosen layer's
activations ``A`` together with the class scores taken *before* the final
softmax/sigmoid. Compiled ``tf.function`` steps compute, for a whole batch, ``A`` and
``dscore/dA`` (the gradient methods), or the scores of masked inputs and ablated
channels (the perturbation methods, in chunks of bounded size); each method in
[`METHODS`][visionkit.gradcam.METHODS] is one small weighting function:

| method | weighting |
| --- | --- |
| ``"gradcam"`` | channel weights = spatial mean of the gradients (Selvaraju et al., 2017) |
| ``"gradcam++"`` | channel weights = positive gradients weighted by second/third-order terms (Chattopadhay et al., 2018) |
| ``"xgradcam"`` | channel weights = activation-weighted mean of the gradients (Fu et al., 2020) |
| ``"layercam"`` | element-wise ``relu(gradient) * A`` (Jiang et al., 2021) |
| ``"hirescam"`` | element-wise ``gradient * A`` (Draelos & Carin, 2020) |
| ``"gradcam_elementwise"`` | element-wise ``relu(gradient * A)`` |
| ``"eigencam"`` | first principal component of ``A`` (Muhammad & Yeasin, 2020; class-agnostic) |
| ``"eigengradcam"`` | first principal component of ``gradient * A`` |
| ``"scorecam"`` | channel weights = class probability of the image masked by each channel (Wang et al., 2020) |
| ``"ablationcam"`` | channel weights = relative drop of the logit when the channel is zeroed (Desai & Ramaswamy, 2020) |
| ``"fullgrad"`` | input-gradient and bias-gradient maps of every conv/BN layer (Srinivas & Fleuret, 2019) |

Gradient attributions on the input pixels, one map per image:
[`saliency`][visionkit.gradcam.saliency], [`smoothgrad`][visionkit.gradcam.smoothgrad],
[`integrated_gradients`][visionkit.gradcam.integrated_gradients] and
[`guided_grad_cam`][visionkit.gradcam.guided_grad_cam].

The caller's model is never modified.
"""

from __future__ import annotations

from .explain._attribution import guided_grad_cam, integrated_gradients, saliency, smoothgrad
from .explain._cam import AUG_SCALES, candidate_layers, grad_cam
from .explain._cams import METHODS
from .explain._error_gallery import ErrorGallery, explain_errors
from .explain._figures import overlay

# TensorFlow, Keras and the modules that import them are imported inside the
# functions, so that reading METHODS (the command line's choices) stays cheap.

__all__ = [
    "AUG_SCALES",
    "METHODS",
    "ErrorGallery",
    "candidate_layers",
    "explain_errors",
    "grad_cam",
    "guided_grad_cam",
    "integrated_gradients",
    "overlay",
    "saliency",
    "smoothgrad",
]
