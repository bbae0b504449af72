"""MNIST: the loader, from a path, ``VISIONKIT_DATA``, the Keras cache or a bounded download."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import DataNotFoundError
from . import _sources as S
from ._npz import read_splits


def load_mnist(
    path: str | os.PathLike[str] | None = None, *, sample: bool = False
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Load MNIST as Keras-convention uint8 arrays.

    Parameters
    ----------
    path : str or os.PathLike, optional
        An ``mnist.npz`` file in Keras' format, or a folder holding one. When given,
        nothing else is tried.
    sample : bool, default False
        Return the bundled sample (5,000 train / 1,000 test digits, stratified) instead.

    Returns
    -------
    ((x_train, y_train), (x_test, y_test))
        ``x`` uint8 of shape ``(N, 28, 28)`` in ``[0, 255]``; ``y`` uint8 of shape
        ``(N,)`` in ``[0, 9]``.

    Raises
    ------
    DataNotFoundError
        No source worked; the message lists every place it looked (and why a download
        failed).
    ImageReadError
        The file found is damaged (empty, truncated, not an ``.npz``, a corrupt member),
        lacks an array, has the wrong shapes, or holds values outside ``[0, 255]``
        (labels outside ``[0, 9]``); the message names the file and the array.

    Notes
    -----
    The download (the last resort) goes to the Keras cache, where
    ``keras.datasets.mnist`` keeps it, and is checked against the file's known SHA-256
    before it is renamed into place. Each network wait (connecting, and every read) is
    bounded by ``$VISIONKIT_DOWNLOAD_TIMEOUT`` seconds (default 15), not the whole
    transfer: a stalled network fails within that time with
    [`DataNotFoundError`][visionkit.errors.DataNotFoundError], while a slow but live
    download finishes. A damaged file in the Keras cache is downloaded again.

    Examples
    --------
    >>> from visionkit.data import load_mnist
    >>> (x_train, y_train), (x_test, y_test) = load_mnist(sample=True)
    >>> x_train.shape, y_train.dtype
    ((5000, 28, 28), dtype('uint8'))
    """
    if sample:
        return _read_mnist_npz(S.sample_file("mnist_sample.npz"))
    if path is not None:
        file = Path(path)
        file = file / "mnist.npz" if file.is_dir() else file
        if not file.is_file():
            raise DataNotFoundError(f"MNIST file not found: '{file}' (from argument `path`). Expected Keras' mnist.npz.")
        return _read_mnist_npz(file)
    tried: list[str] = []
    file = S.in_data_dir(lambda env: env / "mnist.npz" if (env / "mnist.npz").is_file() else None, tried, file="mnist.npz")
    if file is not None:
        return _read_mnist_npz(file)
    cached = S.keras_datasets_dir() / "mnist.npz"
    found = S.from_keras_cache(_read_mnist_npz, cached, tried)
    if found is not None:
        return found
    if S.download(S.MNIST_URL, cached, S.MNIST_SHA256, tried, size=S.MNIST_SIZE):
        return _read_mnist_npz(cached)
    raise S.not_found("MNIST", tried, f"Keras' `mnist.npz` (sha256 {S.MNIST_SHA256[:12]}...)")


def _read_mnist_npz(file: Path) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    return read_splits(file, "MNIST", (28, 28), (), article="an")
