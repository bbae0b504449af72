"""CIFAR-10: the loader, which finds a source (``_cifar_readers``) and caches decoded JPEG sources."""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import numpy as np

from .._io import atomic_path
from ..errors import DataNotFoundError, ImageReadError
from . import _cifar_readers as R
from . import _sources as S
from ._cifar_readers import Splits

_CACHE_VERSION = "2"


def load_cifar10(
    path: str | os.PathLike[str] | None = None, *, sample: bool = False
) -> Splits:
    """Load CIFAR-10 as Keras-convention uint8 arrays.

    Parameters
    ----------
    path : str or os.PathLike, optional
        One of: Keras' ``cifar-10-batches-py`` folder (or a folder holding it); the
        ``cifar-10-python.tar.gz`` archive (hash-checked); a class-per-folder JPEG tree
        ``cifar10/{train,test}/<class>/*.jpg`` (or a folder holding ``cifar10/``); or a
        ``.tar.gz`` of that tree. When given, nothing else is tried.
    sample : bool, default False
        Return the bundled sample (1,000 train / 200 test images, stratified over the 10 classes) instead.

    Returns
    -------
    ((x_train, y_train), (x_test, y_test))
        ``x`` uint8 ``(N, 32, 32, 3)`` RGB; ``y`` uint8 ``(N, 1)`` with the class
        index in [`CIFAR10_CLASSES`][visionkit.data.CIFAR10_CLASSES].

    Raises
    ------
    DataNotFoundError
        No source worked (the message lists every place it looked and why a download
        failed), or a source lacks a file or folder.
    ImageReadError
        A file is damaged (empty, truncated, a corrupt member), is not the official
        archive (SHA-256), holds something other than numpy arrays, has the wrong
        shapes, or holds values outside ``[0, 255]`` (labels outside ``[0, 9]``); the
        message names the file.

    Notes
    -----
    A JPEG tree or archive is decoded once and cached in [`cache_dir`][visionkit.data.cache_dir]; later
    calls read the cache (a damaged cache is rebuilt). Its images come in one fixed, class-interleaved order (a
    seeded permutation of the sorted file names), like Keras' arrays, so that
    ``x_train[:5000]`` holds every class. Archives are read in memory, member by member:
    nothing is extracted to disk. The Python pickles are read with an unpickler that accepts
    numpy arrays and plain containers only, and from an archive only once its SHA-256 is
    that of the official ``cifar-10-python.tar.gz``.

    The download (the last resort) saves that archive where ``keras.datasets.cifar10``
    keeps it (``cifar-10-batches-py-target_archive`` in the Keras cache), hash-checked
    before it is renamed into place. Each network wait (connecting, and every read) is
    bounded by ``$VISIONKIT_DOWNLOAD_TIMEOUT`` seconds (default 15), not the whole
    transfer: a stalled network fails within that time with
    [`DataNotFoundError`][visionkit.errors.DataNotFoundError], while a slow but live
    download finishes.

    Examples
    --------
    >>> from visionkit.data import load_cifar10
    >>> (x_train, y_train), _ = load_cifar10(sample=True)
    >>> x_train.shape, y_train.shape
    ((1000, 32, 32, 3), (1000, 1))
    """
    if sample:
        return R.read_cifar_sample(S.sample_file("cifar10_sample.npz"))
    if path is not None:
        found = R.find_cifar(Path(path))
        if found is None:
            raise DataNotFoundError(
                f"No CIFAR-10 data at '{path}' (from argument `path`). Expected a "
                "`cifar-10-batches-py` folder, `cifar-10-python.tar.gz`, a "
                "`cifar10/{train,test}/<class>/*.jpg` tree or a .tar.gz of it."
            )
        return _load_cifar_source(found)
    tried: list[str] = []
    found = S.in_data_dir(R.find_cifar, tried)
    if found is not None:
        return _load_cifar_source(found)
    for cached in (
        S.keras_datasets_dir() / "cifar-10-batches-py-target" / "cifar-10-batches-py",
        S.keras_datasets_dir() / "cifar-10-batches-py",
    ):
        if (cached / "data_batch_1").is_file():
            found_batches = S.from_keras_cache(R.read_cifar_batches_dir, cached, tried)
            if found_batches is not None:
                return found_batches
        else:
            tried.append(f"'{cached}' (Keras cache)")
    archive = S.keras_datasets_dir() / S.CIFAR_KERAS_ARCHIVE
    found_archive = S.from_keras_cache(lambda p: _load_cifar_source(R.source("tar", p)), archive, tried)
    if found_archive is not None:
        return found_archive
    if S.download(S.CIFAR_PY_URL, archive, S.CIFAR_PY_SHA256, tried, size=S.CIFAR_PY_SIZE):
        return _load_cifar_source(R.source("tar", archive))
    raise S.not_found(
        "CIFAR-10", tried,
        "one of `cifar-10-batches-py/`, `cifar-10-python.tar.gz`, `cifar10/{train,test}/<class>/*.jpg` "
        "or `cifar10-jpeg.tar.gz`",
    )


def _load_cifar_source(found: R.CifarSource) -> Splits:
    """Read ``found``; a decoded JPEG source through the ``.npz`` cache (a damaged cache is rebuilt)."""
    if not found.cached:
        return found.read(found.path)
    cache_file = S.cache_dir() / f"cifar10-{_source_stamp(found.kind, found.path)}.npz"
    if cache_file.is_file():
        try:
            return R.read_cifar_npz(cache_file)
        except (ImageReadError, DataNotFoundError):
            pass  # a damaged cache is rebuilt below
    result = found.read(found.path)
    try:
        with atomic_path(cache_file) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, x_train=result[0][0], y_train=result[0][1], x_test=result[1][0], y_test=result[1][1])
    except OSError as exc:
        warnings.warn(f"Could not write the CIFAR-10 cache '{cache_file}': {exc}", RuntimeWarning, stacklevel=3)
    return result


def _source_stamp(kind: str, p: Path) -> str:
    """A key of the source's path and modification times: a changed source gets a new cache file."""
    p = p.resolve()
    parts = [_CACHE_VERSION, kind, str(p)]
    if kind == "tree":
        for split in ("train", "test"):
            for cls in R.CIFAR10_CLASSES:
                d = p / split / cls
                st = d.stat() if d.is_dir() else None
                parts.append(f"{split}/{cls}:{st.st_mtime_ns if st else 0}")
    else:
        st = p.stat()
        parts.append(f"{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]
