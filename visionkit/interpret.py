"""Interpretation of a trained classifier: where it errs, how badly, and on which images.

[`interpret`][visionkit.interpret.interpret] runs the model once over a dataset or
``(images, labels)`` arrays (streamed in batches) and returns an
[`Interpretation`][visionkit.interpret.Interpretation] that holds the predictions;
every view is computed from them, without predicting again:

| view | what |
| --- | --- |
| ``confusion_matrix()`` / ``plot_confusion_matrix()`` | counts of (true, predicted) pairs, as an array and a figure |
| ``most_confused()`` | the off-diagonal pairs, most frequent first |
| ``top_losses()`` / ``plot_top_losses()`` | the examples with the highest loss, with Grad-CAM heatmaps of the predicted class |
| ``classification_report()`` | precision, recall, F1 and support per class, with macro and weighted averages |

Labels may be integers, one-hot rows or the ``(N, 1)`` 0/1 floats of a binary
sigmoid head; the loss is the cross-entropy of the true class under the model's
probabilities (softmax or sigmoid, also for a model that returns logits). Class
names default to those the model carries
([`training.class_names`][visionkit.training.class_names]). The model is never modified.
"""

from __future__ import annotations

from .explain._interpret import ClassificationReport, Interpretation, TopLosses, interpret

__all__ = ["ClassificationReport", "Interpretation", "TopLosses", "interpret"]
