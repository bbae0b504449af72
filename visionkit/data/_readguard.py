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

    def check(self, token: Any, positions: Any) -> tuple[np.int64, np.int64]:
        """A batch arrived: report the positions skipped since the last one.

        Position -1 is the end-of-epoch marker: then also report the last positions
        lost, and return how many stand-ins to add and a good file to use (else 0, 0).
        """
        pos = positions.numpy()
        real = pos[pos >= 0]
        with self.lock:
            state = self.epochs.get(int(token))
            if state is None:
                return np.int64(0), np.int64(0)
            end = len(self.files) if len(real) < len(pos) else (int(real[-1]) + 1 if len(real) else state["next"])
            arrived = set(real.tolist())
            missing = [p for p in range(state["next"], end) if p not in arrived]
            state["next"] = end
            state["arrived"] += len(real)
            if len(real):
                state["good"] = int(state["order"][real[0]])
            if len(real) == len(pos):
                short = 0
            else:
                del self.epochs[int(token)]
                short = -(-len(self.files) // self.batch_size) - -(-state["arrived"] // self.batch_size)
        self._report(state, missing)
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

    ``load`` returns the element (a tuple); ``strip`` turns it into the element the
    dataset yields. With ``batch_size`` None, ``guard.batch_size`` must be 1 (stand-ins
    are then single elements). Each epoch's indices are followed by an end marker
    (position -1) that decodes nothing and is removed after the check.
    """
    import tensorflow as tf

    load = tf.function(load, input_signature=[tf.TensorSpec([], tf.int64)], autograph=False)  # traced once
    spec = load.get_concrete_function().structured_outputs

    def indices(_: Any) -> tf.data.Dataset:
        token, order = tf.py_function(guard.start, [], [tf.int64, tf.int64])
        order.set_shape([len(guard.files)])
        n = tf.shape(order, out_type=tf.int64)[0]
        ds = tf.data.Dataset.from_tensor_slices((tf.fill([n], token), tf.range(n), order))
        return ds.concatenate(tf.data.Dataset.from_tensors((token, tf.constant(-1, tf.int64), tf.constant(-1, tf.int64))))

    def dummy() -> tuple[Any, ...]:
        return tuple(tf.zeros(t.shape, t.dtype) for t in spec)

    def read(token: tf.Tensor, pos: tf.Tensor, idx: tf.Tensor) -> Any:
        return (*tf.cond(idx >= 0, lambda: tuple(load(idx)), dummy), token, pos)

    def check(*batch: Any) -> Any:
        short, good = tf.py_function(guard.check, [batch[-2][0], batch[-1]], [tf.int64, tf.int64])
        keep = batch[-1] >= 0
        return tuple(tf.boolean_mask(t, keep) for t in batch[:-2]), short, good

    def emit(element: Any, short: tf.Tensor, good: tf.Tensor) -> tf.data.Dataset:
        plain = tf.autograph.experimental.do_not_convert
        ds = tf.data.Dataset.from_tensors(element).filter(plain(lambda *e: tf.shape(e[0])[0] > 0))
        stand_ins = tf.data.Dataset.from_tensors(good).repeat(short).map(plain(lambda i: tuple(load(i)))).batch(1)
        return ds.concatenate(stand_ins).map(plain(strip))

    plain = tf.autograph.experimental.do_not_convert  # no Python control flow on tensors here: skip autograph
    ds = tf.data.Dataset.from_tensors(0).flat_map(plain(indices))
    ds = ds.map(plain(read), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).ignore_errors()
    ds = ds.batch(batch_size or 256).map(plain(check)).flat_map(plain(emit))
    return ds.unbatch() if batch_size is None else ds
