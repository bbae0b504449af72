"""Where datasets come from: the data and cache folders, the Keras cache, the bounded download.

The remote files (URL, SHA-256, size) are listed here once; the loaders read them from
this module at call time.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from .._io import atomic_path
from ..errors import DataNotFoundError, ImageReadError, InvalidArgumentError

MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
CIFAR_PY_SHA256 = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"
MNIST_SIZE = 11_490_434  # bytes of the official files: a download stops there
CIFAR_PY_SIZE = 170_498_071
MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
CIFAR_PY_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR_KERAS_ARCHIVE = "cifar-10-batches-py-target_archive"  # where keras.datasets.cifar10 keeps the download
_DOWNLOAD_TIMEOUT = 15.0  # seconds per network wait; $VISIONKIT_DOWNLOAD_TIMEOUT overrides
_T = TypeVar("_T")


def data_dir() -> Path | None:
    """Return the folder named by ``VISIONKIT_DATA``, or ``None`` when it is unset.

    Returns
    -------
    pathlib.Path or None
        The folder of local datasets (``mnist.npz``, ``cifar10/`` or
        ``cifar10-jpeg.tar.gz``, ``cifar-10-batches-py/``, ...).

    Examples
    --------
    >>> import os
    >>> from unittest import mock
    >>> from visionkit.data import data_dir
    >>> with mock.patch.dict(os.environ, {"VISIONKIT_DATA": "/srv/datasets"}):
    ...     data_dir().as_posix()
    '/srv/datasets'
    """
    value = os.environ.get("VISIONKIT_DATA")
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """Return the folder where decoded datasets are cached.

    ``$VISIONKIT_CACHE`` when set, else ``$XDG_CACHE_HOME/visionkit``, else
    ``~/.cache/visionkit``. The folder is created on first write, not here.

    Returns
    -------
    pathlib.Path
        The cache folder (it may not exist yet).

    Examples
    --------
    >>> import os
    >>> from unittest import mock
    >>> from visionkit.data import cache_dir
    >>> with mock.patch.dict(os.environ, {"VISIONKIT_CACHE": "/tmp/vk-cache"}):
    ...     cache_dir().as_posix()
    '/tmp/vk-cache'
    """
    value = os.environ.get("VISIONKIT_CACHE")
    if value:
        return Path(value).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "visionkit"


def in_data_dir(find: Callable[[Path], _T | None], tried: list[str], *, file: str = "") -> _T | None:
    """``find(folder)`` for the ``VISIONKIT_DATA`` folder; on a miss, note where it looked in ``tried``."""
    env = data_dir()
    if env is None:
        tried.append("VISIONKIT_DATA (not set)")
        return None
    found = find(env)
    if found is None:
        tried.append(f"'{env / file}' (VISIONKIT_DATA)")
    return found


def _download_timeout() -> float:
    """Seconds any one network wait of a download may take: ``$VISIONKIT_DOWNLOAD_TIMEOUT`` or 15."""
    value = os.environ.get("VISIONKIT_DOWNLOAD_TIMEOUT", "").strip()
    if not value:
        return _DOWNLOAD_TIMEOUT
    try:
        seconds = float(value)
    except ValueError:
        seconds = float("nan")
    if not (seconds > 0 and seconds < float("inf")):
        raise InvalidArgumentError(
            "Environment variable `VISIONKIT_DOWNLOAD_TIMEOUT` must be a number of seconds > 0. "
            f"Received: VISIONKIT_DOWNLOAD_TIMEOUT={value!r}"
        )
    return seconds


def download(url: str, target: Path, sha256: str, tried: list[str], *, size: int) -> bool:
    """Download ``url`` to ``target``, hash-checked, size-bounded, with every network wait bounded.

    The connection and each read wait at most ``_download_timeout()`` seconds (not the
    whole transfer, so a slow but live download finishes). The bytes stream into a
    temporary file beside ``target``, renamed into place only when their SHA-256 is
    ``sha256``. At most ``size`` bytes (the official file's) are read: a larger
    ``Content-Length``, or a body that goes on past it, fails at once and keeps nothing.
    Returns ``False`` with the failure noted in ``tried`` instead of raising.

    Not ``keras.utils.get_file(..., file_hash=...)``: it downloads with ``urlretrieve``,
    which has no timeout (a stalled server hangs it for ever) and no size cap (its
    progress hook is its own, so nothing can stop the transfer at ``size``); it writes
    into the target itself rather than a temporary file, keeps a file whose hash is
    wrong, and prints its progress bar. The loop below adds only those three things.
    """
    import http.client
    import urllib.error
    import urllib.request

    timeout = _download_timeout()
    try:
        with atomic_path(target) as tmp, urllib.request.urlopen(url, timeout=timeout) as response:
            digest = _stream_at_most(response, tmp, size)
            if digest.hexdigest() != sha256:
                raise ImageReadError(f"the file has sha256 {digest.hexdigest()[:12]}..., expected {sha256[:12]}...")
    except (OSError, http.client.HTTPException, ValueError) as exc:  # ImageReadError is a ValueError
        wrapped = isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException)
        reason = exc.reason if wrapped else exc
        if isinstance(reason, TimeoutError):
            text = f"no answer within {timeout:g} s, see VISIONKIT_DOWNLOAD_TIMEOUT"
        else:
            text = f"{type(reason).__name__}: {first_line(reason)}"
        tried.append(f"download of {url} to '{target}' ({text})")
        return False
    return True


def _stream_at_most(response: Any, tmp: Path, size: int) -> Any:
    """Copy ``response`` into ``tmp``, refusing more than ``size`` bytes; return the SHA-256 object."""
    announced = response.headers.get("Content-Length") if getattr(response, "headers", None) else None
    if announced is not None and announced.strip().isdigit() and int(announced) > size:
        raise ImageReadError(f"the server announces {int(announced)} bytes, more than the {size} bytes of the file")
    digest, seen = hashlib.sha256(), 0
    with open(tmp, "wb") as out:
        while chunk := response.read(min(1 << 16, size + 1 - seen)):
            seen += len(chunk)
            if seen > size:
                raise ImageReadError(f"the server sent more than the {size} bytes of the file; stopped there")
            digest.update(chunk)
            out.write(chunk)
    return digest


def not_found(dataset: str, tried: list[str], what: str) -> DataNotFoundError:
    """The error of a loader that found ``dataset`` nowhere: where it looked, what to put where."""
    return DataNotFoundError(
        f"Could not find {dataset}. Looked in: {'; '.join(tried)}. Put {what} in a folder and set "
        "VISIONKIT_DATA to it, pass `path=`, or use `sample=True` for the bundled sample."
    )


def keras_datasets_dir() -> Path:
    """The Keras download cache: ``$KERAS_HOME/datasets`` or ``~/.keras/datasets``."""
    home = os.environ.get("KERAS_HOME")
    return (Path(home) if home else Path.home() / ".keras") / "datasets"


def sample_file(name: str) -> Path:
    """The bundled file ``name`` (``visionkit/_samples/``)."""
    return Path(str(resources.files("visionkit") / "_samples" / name))


def from_keras_cache(read: Callable[[Path], _T], cached: Path, tried: list[str]) -> _T | None:
    """``read(cached)`` if the Keras cache holds it; a damaged cache is noted in ``tried`` and downloaded again."""
    if not cached.exists():
        tried.append(f"'{cached}' (Keras cache)")
        return None
    try:
        return read(cached)
    except (ImageReadError, DataNotFoundError) as exc:
        tried.append(f"'{cached}' (Keras cache, unusable: {first_line(exc)})")
    return None


def workers() -> int:
    """Threads for decoding or checking many files: the CPU count, 1 to 8."""
    return max(1, min(8, os.cpu_count() or 1))


def first_line(exc: BaseException) -> str:
    """The first line of ``str(exc)``, at most 200 characters: enough to name a failure in a message."""
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else ""
