"""Helpers every explanation module shares, written once (private).

The class to explain, heatmaps resized and checked against their images, the one
``(images, labels)`` batch iterator, the one label rule (strict: labels outside the
model's classes or not whole numbers are refused), the class names, and Markdown
tables. NumPy only; TensorFlow is imported inside the functions that need it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from .. import _validate as V

__all__ = ["batches", "check_maps", "class_array", "class_names", "label_ints", "markdown", "resize_maps"]


# ----------------------------------------------------------------------------- classes


def class_array(class_index: Any, n: int, *, n_classes: int | None = None) -> np.ndarray:
    """``class_index`` (None, an int or one int per image) as int32 ``(n,)``; -1 = top class.

    With ``n_classes`` the indices must also be below it (checked here); without it
    the caller checks them against the model (``_probe.check_classes``).
    """
    if n_classes is None:
        allowed = f"None, a non-negative int, or {n} non-negative ints (one per image)"
    else:
        allowed = f"None, an int in [0, {n_classes}) or {n} such ints (one per image)"
    top = n_classes if n_classes is not None else np.iinfo(np.int32).max
    if class_index is None:
        return np.full(n, -1, np.int32)
    if isinstance(class_index, (int, np.integer)) and not isinstance(class_index, bool):
        if n_classes is None:
            V.integer("class_index", class_index, minimum=0)
        elif not 0 <= int(class_index) < top:
            raise V.fail("class_index", allowed, class_index)
        return np.full(n, int(class_index), np.int32)
    arr = np.asarray(class_index)
    if arr.shape != (n,) or not np.issubdtype(arr.dtype, np.integer) or (arr < 0).any() or (arr >= top).any():
        raise V.fail("class_index", allowed, class_index)
    return arr.astype(np.int32)


def label_ints(y: Any, k: int) -> np.ndarray:
    """Integer classes from integer labels, one-hot rows or (N, 1) binary labels (strict).

    Labels that are not whole numbers in ``[0, k)`` (or one-hot rows of another width)
    are refused, never rounded.
    """
    y = np.asarray(y)
    allowed = f"integer classes in [0, {k}), one-hot rows of {k} or (N, 1) 0/1 labels"
    if y.ndim == 2 and y.shape[1] > 1:
        if y.shape[1] != k:
            raise V.fail("data", f"labels as {allowed}", f"labels of shape {y.shape}")
        y = y.argmax(axis=1)
    elif y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or not (np.issubdtype(y.dtype, np.number) or y.dtype == bool):
        raise V.fail("data", f"labels as {allowed}", f"labels of shape {y.shape}")
    ints = np.rint(y).astype(np.int64)
    if (ints != y).any() or (ints < 0).any() or (ints >= k).any():
        bad = y[(ints != y) | (ints < 0) | (ints >= k)][:5]
        raise V.fail("data", f"labels as {allowed}", f"labels such as {bad.tolist()}")
    return ints


def class_names(names: Any, model: Any, k: int) -> tuple[str, ...]:
    """``k`` class names: the ones given, else those the model carries, else ``"0"``, ``"1"``, ..."""
    from .. import _labels

    if names is None:
        names = _labels.class_names(model)
        if names is None or len(names) != k:
            return tuple(str(i) for i in range(k))
    if isinstance(names, Mapping):
        names = [names.get(i, str(i)) for i in range(k)]
    if isinstance(names, str) or not isinstance(names, Sequence) or len(names) != k:
        raise V.fail("class_names", f"{k} names (one per class of the model)", names)
    return tuple(str(n) for n in names)


# ----------------------------------------------------------------------------- data


def batches(data: Any, batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(images, labels)`` NumPy batches of an ``(x, y)`` pair or a ``tf.data.Dataset``."""
    allowed = "an (images, labels) tuple of arrays or a tf.data.Dataset of (images, labels) batches"
    if isinstance(data, tuple) and len(data) == 2:
        x, y = data
        if len(x) != len(y):
            raise V.fail("data", "an (images, labels) pair of equal length", f"{len(x)} images, {len(y)} labels")
        for start in range(0, len(x), batch_size):
            yield np.asarray(x[start : start + batch_size]), np.asarray(y[start : start + batch_size])
        return
    import tensorflow as tf

    if not isinstance(data, tf.data.Dataset):
        raise V.fail("data", allowed, data)
    for batch in data:
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise V.fail("data", allowed, data)
        yield np.asarray(batch[0]), np.asarray(batch[1])


# ----------------------------------------------------------------------------- maps


def resize_maps(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Maps ``(N, h, w)`` resized (bilinear) to ``size``; unchanged when already that size."""
    if tuple(maps.shape[1:3]) == tuple(size):
        return maps
    import tensorflow as tf

    return tf.image.resize(np.asarray(maps, np.float32)[..., None], size, method="bilinear").numpy()[..., 0]


def check_maps(maps: Any, images: np.ndarray, *, argument: str = "maps") -> np.ndarray:
    """Check heatmaps against their images; bilinear-resize them to the images' size.

    Returns float64 ``(N, H, W)``. Maps with NaN or infinite values are refused, naming
    the images: a faithfulness score of a broken map would be a confident answer from
    garbage.
    """
    m = np.asarray(maps)
    if m.ndim == 2 and len(images) == 1:
        m = m[None]
    if m.ndim == 4 and m.shape[-1] == 1:
        m = m[..., 0]
    if m.dtype == object or not np.issubdtype(m.dtype, np.number) or m.ndim != 3 or len(m) != len(images):
        raise V.fail(argument, f"{len(images)} heatmaps of shape (N, H, W), one per image",
                     f"array of shape {np.shape(maps)}")
    m = m.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(m.reshape(len(m), -1)).all(axis=1)) if m.size else np.array([], int)
    if bad.size:
        shown = ", ".join(str(int(i)) for i in bad[:10]) + (", ..." if bad.size > 10 else "")
        raise V.fail(argument, f"finite heatmaps (no NaN or infinite values); {bad.size} of {len(m)} are not: "
                     f"index {shown}", f"array of shape {m.shape} with non-finite values")
    return resize_maps(m, images.shape[1:3]).astype(np.float64)


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
