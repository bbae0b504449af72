"""The read-time guard of image datasets: a file that fails to decode mid-epoch is named, never a crash.

The header sniff finds almost every damaged file before training; what only a decode can
find (corrupt data after a whole header, a file changed since it was listed) is caught
here. Each epoch decodes its files in an order this guard knows (drawn in Python at the
start of the epoch), with ``ignore_errors``; a per-batch check spots the positions that
did not arrive and names their files: ``on_error="raise"`` raises an
[`ImageReadError`][visionkit.errors.ImageReadError] naming them, ``"skip"`` warns once per
file and goes on. The number of batches stays the one announced (``cardinality``): if
dropped files would remove the last batch, a batch of one good image stands in for it.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ImageReadError
from . import _headers as H

if TYPE_CHECKING:  # pragma: no cover
    import tensorflow as tf

#: Epoch states kept at once (iterators abandoned mid-epoch leave theirs behind).
_MAX_EPOCHS = 8


class ReadGuard:
    """Per-dataset state: the order of each running epoch and the files already reported."""

    def __init__(self, files: list[str], *, on_error: str, shuffle: bool, seed: int | None, batch_size: int) -> None:
        self.files = files
        self.on_error = on_error
        self.shuffle = shuffle
        self.batch_size = batch_size
        self.rng = np.random.default_rng(seed)
        self.fixed = np.arange(len(files), dtype=np.int64)
        self.epochs: dict[int, dict[str, Any]] = {}
        self.warned: set[int] = set()
        self.lock = threading.Lock()
        self.count = 0

    def start(self) -> tuple[np.int64, np.ndarray]:
        """A new epoch: its token and the order of its files."""
        with self.lock:
            self.count += 1
            order = self.rng.permutation(len(self.files)) if self.shuffle else self.fixed
            self.epochs[self.count] = {"order": order, "next": 0, "arrived": 0, "good": -1}
            while len(self.epochs) > _MAX_EPOCHS:
                del self.epochs[min(self.epochs)]
            return np.int64(self.count), order.astype(np.int64)

    def check(self, token: Any, positions: Any) -> np.int64:
        """A batch arrived: report the positions skipped since the last one."""
        pos = positions.numpy()
        with self.lock:
            state = self.epochs.get(int(token))
            if state is None or not len(pos):
                return np.int64(0)
            arrived = set(pos.tolist())
            missing = [p for p in range(state["next"], int(pos[-1]) + 1) if p not in arrived]
            state["next"] = int(pos[-1]) + 1
            state["arrived"] += len(pos)
            state["good"] = int(state["order"][pos[0]])
        self._report(state, missing)
        return np.int64(len(missing))

    def finish(self, token: Any) -> tuple[np.int64, np.int64]:
        """The epoch ended: report the last positions lost; how many stand-ins to add, and a good file.

    Stand-ins keep the announced count: batches of ``batch_size`` (one stand-in batch of
    one image per batch lost), or elements when ``batch_size`` is 1.
    """
        with self.lock:
            state = self.epochs.pop(int(token), None)
        if state is None:
            return np.int64(0), np.int64(0)
        n = len(self.files)
        self._report(state, list(range(state["next"], n)))
        short = -(-n // self.batch_size) - -(-state["arrived"] // self.batch_size)
        return np.int64(max(short, 0) if state["good"] >= 0 else 0), np.int64(max(state["good"], 0))

    def _report(self, state: dict[str, Any], missing: list[int]) -> None:
        if not missing:
            return
        bad = [int(state["order"][p]) for p in missing]
        listing = "\n".join(f"  {self.files[i]}: {H.bad_reason(self.files[i])}" for i in bad[:20])
        if self.on_error == "raise":
            raise ImageReadError(
                f"{len(bad)} image file(s) failed to decode while reading the dataset (their headers looked "
                f"whole):\n{listing}\nRemove or fix them, or pass on_error='skip'."
            )
        new = [i for i in bad if i not in self.warned]
        self.warned.update(new)
        if new:
            names = "\n".join(f"  {self.files[i]}" for i in new[:20])
            warnings.warn(
                f"image dataset skipped {len(new)} file(s) that failed to decode while reading:\n{names}",
                RuntimeWarning, stacklevel=2,
            )


def guarded_epochs(
    guard: ReadGuard,
    load: Callable[[tf.Tensor], Any],
    *,
    batch_size: int | None,
    strip: Callable[..., Any],
) -> tf.data.Dataset:
    """Every epoch of ``guard``'s files: ``load(index)`` in parallel, checked, batched (or not).

    ``load`` returns the element (a tuple); ``strip`` turns the checked tuple back into
    the element the dataset yields. With ``batch_size`` None, ``guard.batch_size`` must
    be 1 (stand-ins are then single elements).
    """
    import tensorflow as tf

    def start(_: Any) -> Any:
        token, order = tf.py_function(guard.start, [], [tf.int64, tf.int64])
        order.set_shape([len(guard.files)])
        return token, order

    def epoch(token: tf.Tensor, order: tf.Tensor) -> tf.data.Dataset:
        ds = tf.data.Dataset.from_tensor_slices(order).enumerate()
        ds = ds.map(lambda pos, idx: (*load(idx), pos), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        ds = ds.ignore_errors().batch(batch_size or 256)

        def check(*batch: Any) -> Any:
            done = tf.py_function(guard.check, [token, batch[-1]], tf.int64)
            with tf.control_dependencies([done]):
                return strip(*(tf.identity(t) for t in batch[:-1]))

        ds = ds.map(check)
        if batch_size is None:
            ds = ds.unbatch()
        return ds.concatenate(_stand_in(guard, token, load, ds.element_spec, strip, batch_size))

    return tf.data.Dataset.from_tensors(0).map(start).flat_map(epoch)


def _stand_in(
    guard: ReadGuard, token: tf.Tensor, load: Callable[[tf.Tensor], Any], spec: Any,
    strip: Callable[..., Any], batch_size: int | None,
) -> tf.data.Dataset:
    """Runs ``guard.finish`` at the end of an epoch; yields the stand-in batches it asks for (usually none)."""
    import tensorflow as tf

    del spec
    ds = tf.data.Dataset.from_tensors(token).map(lambda t: tf.py_function(guard.finish, [t], [tf.int64, tf.int64]))
    ds = ds.flat_map(lambda m, good: tf.data.Dataset.from_tensors(good).repeat(m))
    ds = ds.map(lambda idx: strip(*load(idx)))
    return ds.batch(1) if batch_size else ds
