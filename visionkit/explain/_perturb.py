"""The perturbation core of Score-CAM and Ablation-CAM (private).

Both need one forward pass per (image, channel) pair: Score-CAM on the image masked by
the channel's upsampled, min-max scaled activation map; Ablation-CAM with the channel
set to zero at the layer. The pairs of a whole batch are flattened and run in chunks
of ``chunk`` forward passes, so memory stays bounded whatever the number of channels:
a chunk holds ``chunk`` images and ``chunk`` single-channel maps (Score-CAM) or
``chunk x C`` mask values (Ablation-CAM), never a copy of the whole activation tensor
per pair.
Both return per-channel weights ``(N, C)`` (0 for channels not evaluated).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = ["ablation_weights", "score_weights", "top_channels"]


def top_channels(acts: np.ndarray, n: int | None) -> np.ndarray:
    """Indices ``(N, K)`` of the channels kept: all, or the ``n`` of largest spatial std."""
    channels = acts.shape[-1]
    if n is None or n >= channels:
        return np.tile(np.arange(channels), (len(acts), 1))
    std = acts.std(axis=(1, 2))
    return np.argsort(-std, axis=1, kind="stable")[:, :n]


def _pairs(keep: np.ndarray, chunk: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    images = np.repeat(np.arange(len(keep)), keep.shape[1])
    channels = keep.reshape(-1)
    for start in range(0, len(images), chunk):
        yield images[start : start + chunk], channels[start : start + chunk]


def score_weights(ex: Any, x: np.ndarray, acts: np.ndarray, chosen: np.ndarray, *, keep: np.ndarray, chunk: int) -> np.ndarray:
    """Score-CAM weights: the class probability of ``x * minmax(upsample(A_k))``."""
    import tensorflow as tf

    weights = np.zeros((acts.shape[0], acts.shape[-1]), np.float64)
    for ii, kk in _pairs(keep, chunk):
        # one (h, w) map per pair, gathered directly: never a copy of A per pair
        maps = np.ascontiguousarray(acts[ii, :, :, kk], dtype=np.float32)
        probs = ex.masked(
            tf.convert_to_tensor(x[ii], dtype=ex.dtype),
            tf.convert_to_tensor(maps, tf.float32),
            tf.convert_to_tensor(chosen[ii], tf.int32),
        )
        weights[ii, kk] = probs.numpy()
    return weights


def ablation_weights(ex: Any, x: np.ndarray, scores: np.ndarray, chosen: np.ndarray, *, chunk: int) -> np.ndarray:
    """Ablation-CAM weights: ``(y_c - y_c^k) / |y_c|``, channel ``k`` zeroed at the layer."""
    import tensorflow as tf

    n, channels = len(x), ex.channels
    weights = np.zeros((n, channels), np.float64)
    keep = np.tile(np.arange(channels), (n, 1))
    for ii, kk in _pairs(keep, chunk):
        mask = np.ones((len(ii), channels), np.float32)
        mask[np.arange(len(ii)), kk] = 0.0
        ablated = ex.ablated(
            tf.convert_to_tensor(x[ii], dtype=ex.dtype),
            tf.convert_to_tensor(chosen[ii], tf.int32),
            tf.convert_to_tensor(mask),
        ).numpy()
        base = scores[ii].astype(np.float64)
        weights[ii, kk] = (base - ablated) / np.maximum(np.abs(base), 1e-7)
    return weights
