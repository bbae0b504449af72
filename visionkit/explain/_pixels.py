"""Pixels in a map's order, and what replaces them (private).

The rank of every pixel of a heatmap, the baseline images of deletion and insertion,
and the noisy linear imputation of ROAD (with the SciPy it needs). NumPy only; SciPy
is imported when ROAD runs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import _validate as V
from ..errors import MissingDependencyError

__all__ = ["baseline_images", "impute", "ranks", "require_scipy"]


def ranks(maps: np.ndarray) -> np.ndarray:
    """The rank of every pixel, ``(N, H*W)`` int: 0 for the most relevant.

    Ties are broken in one fixed pseudo-random order (the same for every call), so
    that flat regions (often all zero) are not removed top-left first.
    """
    n = len(maps)
    flat = maps.reshape(n, int(np.prod(maps.shape[1:])))
    tiebreak = np.random.default_rng(0).permutation(flat.shape[1])
    out = np.empty(flat.shape, np.int64)
    for i in range(n):
        order = np.lexsort((tiebreak, -flat[i]))
        out[i, order] = np.arange(flat.shape[1])
    return out


def _gaussian_blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of ``(N, H, W, C)`` images, reflected borders."""
    radius = max(1, math.ceil(3 * sigma))
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (t / sigma) ** 2)
    kernel /= kernel.sum()
    out = x.astype(np.float64)
    for axis in (1, 2):
        pad = [(0, 0)] * 4
        pad[axis] = (radius, radius)
        padded = np.pad(out, pad, mode="reflect" if out.shape[axis] > radius else "edge")
        length = out.shape[axis]
        out = sum(kernel[j] * np.take(padded, np.arange(j, j + length), axis=axis) for j in range(len(kernel)))
    return out


def baseline_images(x: np.ndarray, baseline: Any, *, argument: str = "baseline") -> np.ndarray:
    """The image each pixel is replaced by (deletion) or revealed from (insertion).

    ``"blur"``: a Gaussian blur, sigma ``max(1, max(H, W) / 8)`` pixels; ``"zero"``:
    zeros; ``"mean"``: each image's mean colour; a number: that constant; an array
    broadcastable to the images.
    """
    if isinstance(baseline, str):
        V.one_of(argument, baseline, ("blur", "zero", "mean"))
        if baseline == "zero":
            return np.zeros(x.shape)
        if baseline == "mean":
            return np.broadcast_to(x.mean(axis=(1, 2), keepdims=True, dtype=np.float64), x.shape).copy()
        return _gaussian_blur(x, max(1.0, max(x.shape[1:3]) / 8.0))
    if isinstance(baseline, (int, float, np.number)) and not isinstance(baseline, bool):
        return np.full(x.shape, V.number(argument, float(baseline)))
    arr = np.asarray(baseline)
    if arr.dtype != object and np.issubdtype(arr.dtype, np.number):
        try:
            return np.broadcast_to(arr.astype(np.float64), x.shape).copy()
        except ValueError:
            pass  # the shapes do not broadcast: reported below
    raise V.fail(argument, f"'blur', 'zero', 'mean', a number or an array broadcastable to {x.shape}", baseline)


# ----------------------------------------------------------------------------- ROAD imputation

#: (row offset, column offset, weight) of the 8 neighbours (Rong et al., 2022).
_NEIGHBOURS = (
    (-1, -1, 1 / 12), (-1, 0, 1 / 6), (-1, 1, 1 / 12), (0, -1, 1 / 6),
    (0, 1, 1 / 6), (1, -1, 1 / 12), (1, 0, 1 / 6), (1, 1, 1 / 12),
)


def require_scipy() -> Any:
    """``scipy.sparse`` (with ``linalg``), or MissingDependencyError saying how to install it."""
    try:
        import scipy.sparse
        import scipy.sparse.linalg
    except ImportError:
        raise MissingDependencyError(
            "ROAD's noisy linear imputation needs SciPy: pip install scipy "
            "(or pip install 'visionkit[test]')."
        ) from None
    return scipy.sparse


def impute(image: np.ndarray, removed: np.ndarray, *, noise: float, rng: np.random.Generator) -> np.ndarray:
    """Noisy linear imputation: each removed pixel becomes the weighted mean of its neighbours.

    ``image`` ``(H, W, C)``, ``removed`` bool ``(H, W)``. The removed pixels are the
    unknowns of one sparse linear system (a removed neighbour is itself an unknown),
    solved once for all channels; Gaussian noise of standard deviation ``noise`` is
    added to them. Every removed region must touch a kept pixel (true unless every
    pixel is removed).
    """
    sparse = require_scipy()
    h, w, c = image.shape
    rows, cols = np.nonzero(removed)
    k = len(rows)
    if k == 0:
        return image.astype(np.float64)
    index = np.full((h, w), -1, np.int64)
    index[rows, cols] = np.arange(k)
    values = image.astype(np.float64)
    diagonal = np.zeros(k)
    rhs = np.zeros((k, c))
    a_rows, a_cols, a_vals = [], [], []
    for dr, dc, weight in _NEIGHBOURS:
        nr, nc = rows + dr, cols + dc
        inside = (nr >= 0) & (nr < h) & (nc >= 0) & (nc < w)
        diagonal[inside] += weight
        me = np.flatnonzero(inside)
        other = index[nr[inside], nc[inside]]
        unknown = other >= 0
        a_rows.append(me[unknown])
        a_cols.append(other[unknown])
        a_vals.append(np.full(int(unknown.sum()), -weight))
        known = me[~unknown]
        rhs[known] += weight * values[nr[inside][~unknown], nc[inside][~unknown]]
    a_rows.append(np.arange(k))
    a_cols.append(np.arange(k))
    a_vals.append(diagonal)
    matrix = sparse.csc_matrix(
        (np.concatenate(a_vals), (np.concatenate(a_rows), np.concatenate(a_cols))), shape=(k, k)
    )
    solved = sparse.linalg.splu(matrix).solve(rhs)
    out = values.copy()
    out[rows, cols] = solved + rng.normal(0.0, 1.0, solved.shape) * noise
    return out
