"""Shared parts of ``visionkit.explain`` and ``visionkit.interpret`` (private).

A compiled, batched class-probability function for any classifier head, the class to
explain, heatmaps checked against their images, pixel orders, baselines, the noisy
linear imputation of ROAD and plain Markdown tables. TensorFlow and SciPy are
imported inside the functions that need them.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import _validate as V
from .errors import MissingDependencyError

__all__ = [
    "baseline_images",
    "class_array",
    "impute",
    "markdown",
    "predictor",
    "ranks",
    "require_scipy",
    "resize_maps",
]

_EPS = 1e-7

# ----------------------------------------------------------------------------- probabilities


# model -> its compiled forward step; weak keys so a dropped model frees it. Built once per
# model (one trace, any batch size), so repeated metric calls do not retrace.
_STEPS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _step(model: Any) -> Any:
    import tensorflow as tf

    try:
        return _STEPS[model]
    except KeyError:
        pass
    except TypeError:  # not weak-referenceable: build every time
        return _build_step(model, tf)
    step = _STEPS[model] = _build_step(model, tf)
    return step


def _build_step(model: Any, tf: Any) -> Any:
    signature = None
    if getattr(model, "inputs", None):
        spec = model.inputs[0]
        signature = [tf.TensorSpec((None, *spec.shape[1:]), spec.dtype)]

    ref = weakref.ref(model)  # the step must not keep its model (the cache's key) alive

    @tf.function(input_signature=signature, reduce_retracing=True)
    def step(x: Any) -> Any:
        out = tf.cast(ref()(x, training=False), tf.float32)
        return tf.reshape(out, [tf.shape(out)[0], -1])

    return step


def predictor(model: Any, *, batch_size: int) -> Callable[[np.ndarray], np.ndarray]:
    """``predict(x) -> (N, K)`` float64 class probabilities, ``batch_size`` images per step.

    One compiled forward pass (``training=False``) per batch; a logits head gets its
    softmax (sigmoid for one unit), a one-unit head gives two columns ``[1 - p, p]``.
    The model is only called, never changed.
    """
    import tensorflow as tf

    from . import _heads

    logits = _heads.is_logits(model)
    dtype = model.inputs[0].dtype if getattr(model, "inputs", None) else "float32"
    step = _step(model)

    def predict(x: np.ndarray) -> np.ndarray:
        chunks = [
            step(tf.convert_to_tensor(x[start : start + batch_size], dtype=dtype)).numpy()
            for start in range(0, len(x), batch_size)
        ]
        if not chunks:  # no images: no rows, one column per class
            outputs = getattr(model, "outputs", None)
            k = int(np.prod(outputs[0].shape[1:])) if outputs else 0
            return np.zeros((0, 2 if k == 1 else k))
        p = np.concatenate(chunks).astype(np.float64)
        if logits:
            if p.shape[1] == 1:
                p = 1.0 / (1.0 + np.exp(-p))
            else:
                e = np.exp(p - p.max(axis=1, keepdims=True))
                p = e / e.sum(axis=1, keepdims=True)
        if p.shape[1] == 1:
            p = np.concatenate([1.0 - p, p], axis=1)
        return p

    return predict


def class_array(class_index: Any, probs: np.ndarray) -> np.ndarray:
    """One class per image: each image's top class (None), one int, or one int per image."""
    n, k = probs.shape
    if class_index is None:
        return probs.argmax(axis=1).astype(np.int64)
    allowed = f"None, an int in [0, {k}) or {n} such ints (one per image)"
    if isinstance(class_index, (int, np.integer)) and not isinstance(class_index, bool):
        if not 0 <= int(class_index) < k:
            raise V.fail("class_index", allowed, class_index)
        return np.full(n, int(class_index), np.int64)
    arr = np.asarray(class_index)
    if arr.shape != (n,) or not np.issubdtype(arr.dtype, np.integer) or (arr < 0).any() or (arr >= k).any():
        raise V.fail("class_index", allowed, class_index)
    return arr.astype(np.int64)


# ----------------------------------------------------------------------------- maps


def resize_maps(maps: Any, images: np.ndarray, *, argument: str = "maps") -> np.ndarray:
    """Check heatmaps against their images; bilinear-resize them to the images' size.

    Returns float64 ``(N, H, W)``; NaN counts as 0.
    """
    m = np.asarray(maps)
    if m.ndim == 2 and len(images) == 1:
        m = m[None]
    if m.ndim == 4 and m.shape[-1] == 1:
        m = m[..., 0]
    if m.dtype == object or not np.issubdtype(m.dtype, np.number) or m.ndim != 3 or len(m) != len(images):
        raise V.fail(argument, f"{len(images)} heatmaps of shape (N, H, W), one per image",
                     f"array of shape {np.shape(maps)}")
    m = np.nan_to_num(m.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    size = images.shape[1:3]
    if m.shape[1:] != tuple(size):
        import tensorflow as tf

        m = tf.image.resize(m[..., None], size, method="bilinear").numpy()[..., 0].astype(np.float64)
    return m


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


# ----------------------------------------------------------------------------- tables


def _cell(value: Any, digits: int) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.{digits}f}"
    return str(value)


def markdown(rows: Sequence[dict[str, Any]], columns: Sequence[str], *, digits: int = 4) -> str:
    """A Markdown table of ``rows`` (dicts) with the given columns; floats to ``digits``."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join(" --- " for _ in columns) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c, ""), digits) for c in columns) + " |")
    return "\n".join(lines)
