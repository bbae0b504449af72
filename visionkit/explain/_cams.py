"""The CAM methods: one small function each, registered in one table (private; public
through [`visionkit.gradcam`][visionkit.gradcam]).

Every method receives one batch (``visionkit.explain._cam.Batch``), asks it for what
it needs (``gradients()``: float64 activations ``A`` and gradients ``G`` of the class
score, both ``(N, h, w, C)``; ``forward()``: ``A`` and the class scores;
``score_weights`` / ``ablation_weights``: per-channel weights from one forward pass per
(image, channel) pair; ``fullgrad()``: FullGrad's maps) and returns *weighted
activations* ``(N, h, w, C)``. The map is their sum over channels, or with
``eigen_smooth`` their first principal component (``project_2d``), then ReLU and
normalisation. This mirrors pytorch-grad-cam, where every method derives from one base
and differs only in its weights: a new method is one function here and one line in
``TABLE``.

NumPy only: the command line reads ``METHODS`` without importing TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["METHODS", "TABLE", "Method", "minmax", "normalise", "project_2d", "reduce"]

EPS = 1e-7


# ----------------------------------------------------------------------------- gradient methods


def gradcam(b: Any) -> np.ndarray:
    """channel weights = spatial mean of the gradients

    Selvaraju et al., 2017: ``w_k = mean_hw(dS/dA_k)``, map ``sum_k w_k A_k``.
    """
    a, g = b.gradients()
    return g.mean(axis=(1, 2), keepdims=True) * a


def gradcam_plus_plus(b: Any) -> np.ndarray:
    """channel weights = positive gradients with higher-order weights

    Chattopadhay et al., 2018: ``alpha = g^2 / (2 g^2 + sum_hw(A) g^3)`` (0 where the
    gradient is 0), ``w_k = sum_hw(alpha * relu(g))``.
    """
    a, g = b.gradients()
    g2 = g**2
    g3 = g2 * g
    denom = 2.0 * g2 + a.sum(axis=(1, 2), keepdims=True) * g3
    alpha = np.where(g != 0.0, g2 / np.where(denom != 0.0, denom, EPS), 0.0)
    return (alpha * np.maximum(g, 0.0)).sum(axis=(1, 2), keepdims=True) * a


def xgradcam(b: Any) -> np.ndarray:
    """channel weights = activation-weighted mean of the gradients

    Fu et al., 2020 (XGrad-CAM): ``w_k = sum_hw(A_k * g_k) / (sum_hw(A_k) + eps)``.
    """
    a, g = b.gradients()
    weights = (a * g).sum(axis=(1, 2), keepdims=True) / (a.sum(axis=(1, 2), keepdims=True) + EPS)
    return weights * a


def layercam(b: Any) -> np.ndarray:
    """element-wise relu(gradient) * activation

    Jiang et al., 2021: ``sum_k relu(g_k) * A_k``, position by position.
    """
    a, g = b.gradients()
    return np.maximum(g, 0.0) * a


def hirescam(b: Any) -> np.ndarray:
    """element-wise gradient * activation

    Draelos & Carin, 2020: ``sum_k g_k * A_k``, position by position.
    """
    a, g = b.gradients()
    return g * a


def gradcam_elementwise(b: Any) -> np.ndarray:
    """element-wise relu(gradient * activation)

    pytorch-grad-cam's GradCAMElementWise: ``sum_k relu(g_k * A_k)``.
    """
    a, g = b.gradients()
    return np.maximum(g * a, 0.0)


def eigencam(b: Any) -> np.ndarray:
    """first principal component of the activations (class-agnostic)

    Muhammad & Yeasin, 2020: the projection of ``A`` (positions x channels, centred) on
    its first right singular vector; no gradient, so the same map for every class.
    """
    return b.gradients()[0]


def eigengradcam(b: Any) -> np.ndarray:
    """first principal component of gradient * activation

    pytorch-grad-cam's EigenGradCAM: the first principal component of ``g * A``.
    """
    a, g = b.gradients()
    return g * a


# ----------------------------------------------------------------------------- perturbation methods


def scorecam(b: Any) -> np.ndarray:
    """channel weights = class probability of the image masked by each channel

    Wang et al., 2020: ``M_k = minmax(upsample(A_k))``, ``w_k = softmax(f(x * M_k))_c``
    (sigmoid for one unit); ``scorecam_channels=N`` keeps the N channels of largest
    spatial standard deviation (Faster Score-CAM).
    """
    a, _scores = b.forward()
    return b.score_weights(a)[:, None, None, :] * a


def ablationcam(b: Any) -> np.ndarray:
    """channel weights = relative drop of the class score when the channel is zeroed

    Desai & Ramaswamy, 2020: ``w_k = (y_c - y_c^k) / |y_c|`` with ``y_c^k`` the logit
    when channel ``k`` of the layer is set to zero.
    """
    a, scores = b.forward()
    return b.ablation_weights(scores)[:, None, None, :] * a


# ----------------------------------------------------------------------------- all layers


def fullgrad(b: Any) -> np.ndarray:
    """input-gradient * input plus bias-gradients of every conv/BN layer

    Srinivas & Fleuret, 2019: ``psi(|dS/dx * x|) + sum_layers sum_k psi(|dS/dz_k * b_k|)``,
    each term min-max scaled and resized to the input; ``layer`` is not used.
    """
    return b.fullgrad()[..., None]  # one "channel": the map itself, at the input's resolution


@dataclass(frozen=True)
class Method:
    """One CAM method: its weighting and how its weighted activations may be reduced."""

    weigh: Callable[[Any], np.ndarray]
    eigen: bool = False  # always reduced by the first principal component
    eigen_smooth: bool = True  # eigen_smooth=True allowed (not when the terms come from several layers)
    options: tuple[str, ...] = ()  # the method-only options it takes ("scorecam_channels")


#: method name -> Method; a new CAM method is one function and one entry.
TABLE: dict[str, Method] = {
    "gradcam": Method(gradcam),
    "gradcam++": Method(gradcam_plus_plus),
    "xgradcam": Method(xgradcam),
    "layercam": Method(layercam),
    "hirescam": Method(hirescam),
    "gradcam_elementwise": Method(gradcam_elementwise),
    "eigencam": Method(eigencam, eigen=True),
    "eigengradcam": Method(eigengradcam, eigen=True),
    "scorecam": Method(scorecam, options=("scorecam_channels",)),
    "ablationcam": Method(ablationcam),
    "fullgrad": Method(fullgrad, eigen_smooth=False),
}

#: method name -> one-line description (the first line of its function's docstring).
METHODS: dict[str, str] = {name: (m.weigh.__doc__ or "").strip().splitlines()[0] for name, m in TABLE.items()}


# ----------------------------------------------------------------------------- reductions


def project_2d(weighted: np.ndarray) -> np.ndarray:
    """First principal component of ``(N, h, w, C)`` weighted activations, ``(N, h, w)``.

    Per image: the positions x channels matrix ``M``, projected on the first right
    singular vector of ``M`` centred over positions (the top eigenvector of the
    channels' covariance, all images at once). The sign of a principal component is
    arbitrary; it is chosen so that the projection correlates positively with the
    channel sum.
    """
    n, h, w, c = weighted.shape
    m = np.nan_to_num(weighted.reshape(n, h * w, c))
    centred = m - m.mean(axis=1, keepdims=True)
    import tensorflow as tf  # its eigh: NumPy's (OpenBLAS) is 50x slower on a busy machine

    _vals, vecs = tf.linalg.eigh(np.einsum("npc,npd->ncd", centred, centred))
    top = vecs.numpy()[:, :, -1]  # eigenvalues ascending
    proj = np.einsum("npc,nc->np", m, top)
    total = m.sum(axis=2)
    sign = np.einsum("np,np->n", proj - proj.mean(1, keepdims=True), total - total.mean(1, keepdims=True))
    proj = np.where(sign[:, None] < 0, -proj, proj)
    proj[~centred.any(axis=(1, 2))] = 0.0
    return proj.reshape(n, h, w)


def reduce(weighted: np.ndarray, *, eigen: bool) -> np.ndarray:
    """Weighted activations ``(N, h, w, C)`` to raw maps ``(N, h, w)`` (before the ReLU)."""
    return project_2d(weighted) if eigen else weighted.sum(axis=-1)


def minmax(maps: np.ndarray) -> np.ndarray:
    """Scale each map of ``(N, ...)`` to ``[0, 1]`` by its own min and max (constant maps: 0)."""
    flat = maps.reshape(len(maps), -1)
    lo = flat.min(axis=1) if flat.size else np.zeros(len(maps))
    hi = flat.max(axis=1) if flat.size else np.zeros(len(maps))
    span = (hi - lo).reshape(-1, *([1] * (maps.ndim - 1)))
    out = (maps - lo.reshape(span.shape)) / np.where(span > 0, span, 1.0)
    return np.where(span > 0, out, 0.0)


def normalise(maps: np.ndarray) -> tuple[np.ndarray, int]:
    """Scale each map ``(N, ...)`` (ReLU applied) to ``[0, 1]`` by its maximum.

    Returns the float32 maps and the number of maps with no positive value (left at 0).
    """
    maps = np.maximum(np.nan_to_num(np.asarray(maps, np.float64), nan=0.0, posinf=0.0, neginf=0.0), 0.0)
    peak = maps.reshape(len(maps), -1).max(axis=1) if maps.size else np.zeros(len(maps))
    ok = np.isfinite(peak) & (peak > 0)
    out = np.zeros(maps.shape, dtype=np.float32)
    out[ok] = maps[ok] / peak[ok].reshape(-1, *([1] * (maps.ndim - 1)))
    return np.clip(out, 0.0, 1.0), int((~ok).sum())
