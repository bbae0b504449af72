"""Is an explanation faithful? Perturbation metrics for heatmaps, and a method comparison.

A heatmap (Grad-CAM's or any other) claims that some pixels matter more than others
for a class. These metrics test the claim on the model itself, by changing the pixels
in the map's order and watching the class probability:

| metric | what is done to the image | better |
| --- | --- | --- |
| [`deletion`][visionkit.explain.deletion] | the most relevant pixels are replaced by a baseline first, in ``steps`` steps; area under the probability curve | lower |
| [`insertion`][visionkit.explain.insertion] | starting from the baseline (a blurred image), the most relevant pixels are put back first; area under the curve | higher |
| [`road`][visionkit.explain.road] | the most (MoRF) or least (LeRF) relevant ``p%`` of pixels are removed and filled in by noisy linear imputation (Rong et al., 2022) | MoRF lower, LeRF higher |
| [`confidence_change`][visionkit.explain.confidence_change] | the image is multiplied by its map (Chattopadhay et al., 2018): average drop and increase in confidence | drop lower, increase higher |

[`compare_methods`][visionkit.explain.compare_methods] runs one metric over several
methods (CAM variants by name, attribution functions of [`visionkit.gradcam`][visionkit.gradcam]
by name, or your own callables) and a random map, and returns a
[`MethodComparison`][visionkit.explain.MethodComparison] table with a figure.
[`heatmaps`][visionkit.explain.heatmaps] computes one method's maps by name.

Every perturbed image goes through one compiled forward pass, batched across images
and steps; the caller's model, images and maps are never modified. The class
explained is each image's top class unless ``class_index`` says otherwise, and the
probabilities are the model's softmax (or sigmoid) outputs, also for a model that
returns logits.
"""

from __future__ import annotations

from ._compare import DEFAULT_METHODS, METRICS, MethodComparison, compare_methods, heatmaps
from ._metrics import (
    ConfidenceChange,
    CurveResult,
    ROADResult,
    confidence_change,
    deletion,
    insertion,
    road,
)

__all__ = [
    "DEFAULT_METHODS",
    "METRICS",
    "ConfidenceChange",
    "CurveResult",
    "MethodComparison",
    "ROADResult",
    "compare_methods",
    "confidence_change",
    "deletion",
    "heatmaps",
    "insertion",
    "road",
]
