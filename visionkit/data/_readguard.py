"""The read-time guard of image datasets: a file that fails to decode mid-epoch is named, never a crash.

The header sniff finds almost every damaged file before training; what only a decode can
find (corrupt data after a whole header, a file changed since it was listed) is caught
here. Each epoch reads its files in an order this guard knows (drawn in Python at the
start of the epoch) through the plain ``map`` then ``batch`` of Keras' own reader, which
``tf.data`` fuses; a batch holding a file that fails to decode is dropped
(``ignore_errors``) and the per-batch check finds the positions that did not arrive.
Their files are decoded again one by one: the good ones are put back (a batch of their
own), the bad ones are named: ``on_error="raise"`` raises an
[`ImageReadError`][visionkit.errors.ImageReadError] naming them, ``"skip"`` warns once per
file and goes on. The number of batches stays the one announced (``cardinality``): if
dropped files would remove the last batch, a batch of one good image stands in for it.

Why not ``ignore_errors`` on each image, as before: between the ``map`` and the
``batch`` it stops their fusion and costs ~25 % more CPU time per image on 32-px JPEGs
(measured with ``benchmarks/data.py``), for a check that almost never fires.
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

#: Images decoded together when the dataset is unbatched (the read-time batches).
_READ_BATCH = 256


class ReadGuard:
    """Per-dataset state: the order of each running epoch and the files already reported.

    ``batch_size`` is the unit the cardinality counts (1: the dataset is unbatched);
    ``read_batch`` the size of the batches read (``batch_size``, or ``_READ_BATCH``).
    """

    def __init__(self, files: list[str], *, on_error: str, shuffle: bool, seed: int | None, batch_size: int) -> None:
        self.files = files
        self.on_error = on_error
        self.shuffle = shuffle
        self.batch_size = batch_size
        self.read_batch = batch_size if batch_size > 1 else _READ_BATCH
        self.rng = np.random.default_rng(seed)
        self.fixed = np.arange(len(files), dtype=np.int64)
        self.epochs: dict[int, dict[str, Any]] = {}
        self.warned: set[int] = set()
        self.lock = threading.Lock()
        self.count = 0
        self.load: Callable[[Any], Any] | None = None  # set by guarded_epochs: one image, eagerly
        self.spec: tuple[Any, ...] = ()

    def start(self) -> tuple[np.int64, np.ndarray]:
        """A new epoch: its token and the order of its files."""
        with self.lock:
            self.count += 1
            order = self.rng.permutation(len(self.files)) if self.shuffle else self.fixed
            where = np.empty(len(order), np.int64)
            where[order] = np.arange(len(order))
            self.epochs[self.count] = {"order": order, "where": where, "next": 0, "emitted": 0, "good": -1}
            while len(self.epochs) > _MAX_EPOCHS:
                del self.epochs[min(self.epochs)]
            return np.int64(self.count), order.astype(np.int64)

    def check(self, token: Any, indices: Any) -> list[Any]:
        """A batch arrived (its file indices; ``[-1]`` ends the epoch): put back what was dropped before it.

        Returns the recovered images (a batch, maybe empty), then how many stand-ins to
        add and a good file to use (only at the end of the epoch; else 0, 0).
        """
        idx = indices.numpy()
        n = len(self.files)
        with self.lock:
            state = self.epochs.get(int(token))
        if state is None:
            return [*self._stack([]), np.int64(0), np.int64(0)]
        end = len(idx) == 1 and idx[0] < 0
        first = n if end else int(state["where"][idx[0]])
        lost = state["order"][state["next"]:first]
        state["next"] = first + (0 if end else len(idx))
        if not end:
            state["good"] = int(idx[0])
        good = self._recover(lost)
        if good and state["good"] < 0:
            state["good"] = good[0][0]
        # never more batches than announced: room = announced - emitted - this batch - what the stream still holds
        unit = self.batch_size
        this = 0 if end else (1 if unit > 1 else len(idx))
        ahead = -(-(n - state["next"]) // self.read_batch) if unit > 1 else n - state["next"]
        room = -(-n // unit) - state["emitted"] - this - ahead
        keep = good[: max(room, 0) * (self.read_batch if unit > 1 else 1)]
        if len(keep) < len(good):  # only where tf.data's map_and_batch fusion is off (batch edges then shift)
            warnings.warn(f"image dataset left {len(good) - len(keep)} readable image(s) out of this epoch to keep "
                          "its announced number of batches", RuntimeWarning, stacklevel=2)
        state["emitted"] += this + (-(-len(keep) // self.read_batch) if unit > 1 else len(keep))
        short = 0
        if end:
            with self.lock:
                self.epochs.pop(int(token), None)
            short = max(-(-n // unit) - state["emitted"], 0) if state["good"] >= 0 else 0
        return [*self._stack([e for _, e in keep]), np.int64(short), np.int64(max(state["good"], 0))]

    def _recover(self, lost: np.ndarray) -> list[tuple[int, tuple[Any, ...]]]:
        """Decode ``lost`` files one by one: the good ones' elements; the bad ones are reported."""
        import tensorflow as tf

        good, bad = [], []
        for i in lost.tolist():
            try:
                good.append((i, tuple(t.numpy() for t in self.load(tf.constant(i, tf.int64)))))
            except (tf.errors.OpError, ValueError):
                bad.append(i)
        self._report(bad)
        return good

    def _stack(self, elements: list[tuple[Any, ...]]) -> list[np.ndarray]:
        """A batch of ``elements`` (component by component); empty of the right shape for none."""
        if elements:
            return [np.stack([e[k] for e in elements]) for k in range(len(self.spec))]
        return [np.zeros((0, *t.shape), t.dtype.as_numpy_dtype) for t in self.spec]

    def _report(self, bad: list[int]) -> None:
        if not bad:
            return
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
    """Every epoch of ``guard``'s files: ``load(index)`` in parallel, batched, checked (unbatched again or not).

    ``load`` returns the element (a tuple); ``strip`` turns it into the element the
    dataset yields. With ``batch_size`` None, ``guard.batch_size`` must be 1 (stand-ins
    are then single elements). Each epoch's batches are followed by an end marker (the
    indices ``[-1]`` and no image), removed after the check.
    """
    import tensorflow as tf

    plain = tf.autograph.experimental.do_not_convert  # no Python control flow on tensors here: skip autograph
    inline = load  # the epoch's map traces it inline: a nested function call per image cost ~15 % on 32-px JPEGs
    load = tf.function(load, input_signature=[tf.TensorSpec([], tf.int64)], autograph=False)  # traced once
    spec = tuple(load.get_concrete_function().structured_outputs)
    guard.load, guard.spec = load, spec
    dtypes = [t.dtype for t in spec]

    def with_index(idx: tf.Tensor) -> Any:
        return (*inline(idx), idx)

    def epoch(_: Any) -> tf.data.Dataset:
        token, order = tf.py_function(guard.start, [], [tf.int64, tf.int64])
        order.set_shape([len(guard.files)])
        ds = tf.data.Dataset.from_tensor_slices(order)
        # map then batch, as Keras: tf.data fuses them, and a failed decode drops its whole batch
        ds = ds.map(plain(with_index), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        ds = ds.batch(guard.read_batch).ignore_errors()
        marker = (*(tf.zeros((0, *t.shape), t.dtype) for t in spec), tf.constant([-1], tf.int64))
        ds = ds.concatenate(tf.data.Dataset.from_tensors(marker))
        return ds.map(plain(lambda *b: (*b, token)))

    def check(*batch: Any) -> Any:
        *recovered, short, good = tf.py_function(guard.check, [batch[-1], batch[-2]], [*dtypes, tf.int64, tf.int64])
        for r, t in zip(recovered, spec):
            r.set_shape((None, *t.shape))
        return tuple(batch[:-2]), tuple(recovered), short, good

    def emit(element: Any, recovered: Any, short: tf.Tensor, good: tf.Tensor) -> tf.data.Dataset:
        put_back = tf.data.Dataset.from_tensor_slices(recovered).batch(guard.read_batch)
        ds = tf.data.Dataset.from_tensors(element).filter(plain(lambda *e: tf.shape(e[0])[0] > 0))
        stand_ins = tf.data.Dataset.from_tensors(good).repeat(short).map(plain(lambda i: tuple(load(i)))).batch(1)
        return put_back.concatenate(ds).concatenate(stand_ins).map(plain(strip))

    ds = tf.data.Dataset.from_tensors(0).flat_map(plain(epoch))
    ds = ds.map(plain(check)).flat_map(plain(emit))
    return ds.unbatch() if batch_size is None else ds
