"""Images and datasets: one place to get them, online or offline.

Where datasets come from, in order:

1. the ``path`` argument of the loader (a file or a folder);
2. the folder named by the ``VISIONKIT_DATA`` environment variable;
3. the Keras download cache (``$KERAS_HOME/datasets`` or ``~/.keras/datasets``);
4. a download into the Keras cache (needs the internet; hash-checked; each network wait
   bounded by ``$VISIONKIT_DOWNLOAD_TIMEOUT`` seconds, default 15).

When none works, [`DataNotFoundError`][visionkit.errors.DataNotFoundError] says where it looked and
what file to put where. ``sample=True`` returns a small real sample bundled inside the
package, so recipes and notebooks run with no network and no data at all.

Decoded JPEG datasets are cached as ``.npz`` files in [`cache_dir`][visionkit.data.cache_dir]
(``$VISIONKIT_CACHE`` or ``~/.cache/visionkit``) so the second load is fast.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import math
import os
import pickle
import re
import tarfile
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from . import _validate as V
from ._io import atomic_path
from .errors import DataNotFoundError, ImageReadError, InvalidArgumentError, InvalidTypeError

if TYPE_CHECKING:  # pragma: no cover
    import tensorflow as tf

__all__ = [
    "CIFAR10_CLASSES",
    "IMAGE_EXTENSIONS",
    "MAX_ARCHIVE_MEMBER_BYTES",
    "MAX_IMAGE_PIXELS",
    "MAX_NPZ_ARRAY_BYTES",
    "SAMPLE_IMAGES",
    "SAVE_FORMATS",
    "FolderSplits",
    "cache_dir",
    "data_dir",
    "folder_splits",
    "from_arrays",
    "image_folder",
    "load_cifar10",
    "load_image",
    "load_mnist",
    "sample_image",
    "sample_image_path",
    "save_image",
]

#: CIFAR-10 class names; the label of a class is its position here.
CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)

#: File extensions [`image_folder`][visionkit.data.image_folder] reads (the formats TensorFlow decodes).
IMAGE_EXTENSIONS: tuple[str, ...] = (".bmp", ".gif", ".jpeg", ".jpg", ".png")

#: Names of the bundled sample images, for [`sample_image`][visionkit.data.sample_image].
SAMPLE_IMAGES: dict[str, str] = {
    "painting": "starry_night.jpg",
    "starry_night": "starry_night.jpg",
    "photo": "chelsea_cat.jpg",
    "chelsea": "chelsea_cat.jpg",
}

#: Largest image [`load_image`][visionkit.data.load_image] returns, in pixels (height x width):
#: 2**27, 1.5 GiB as float32 RGB. A larger ``size`` or ``max_dim`` is refused before anything is allocated.
MAX_IMAGE_PIXELS: int = 2**27

#: Largest array an ``.npz`` dataset file (MNIST, the CIFAR-10 cache) may declare, in bytes (1 GiB;
#: the real files' largest array is 147 MiB). Checked from the ``.npy`` header before any array is read.
MAX_NPZ_ARRAY_BYTES: int = 2**30

#: Largest image file a CIFAR-10 JPEG archive may hold, in bytes (1 MiB; a 32x32 image takes a few KiB).
#: Checked from the member's tar header before it is read.
MAX_ARCHIVE_MEMBER_BYTES: int = 2**20

_MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
_CIFAR_PY_SHA256 = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"
_MNIST_SIZE = 11_490_434  # bytes of the official files: a download stops there
_CIFAR_PY_SIZE = 170_498_071
_MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
_CIFAR_PY_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
_CIFAR_KERAS_ARCHIVE = "cifar-10-batches-py-target_archive"  # where keras.datasets.cifar10 keeps the download
_DOWNLOAD_TIMEOUT = 15.0  # seconds per network wait; $VISIONKIT_DOWNLOAD_TIMEOUT overrides
_CACHE_VERSION = "2"
_TF_FORMATS = {"JPEG", "PNG", "GIF", "BMP"}
_CIFAR_BATCHES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch")
_T = TypeVar("_T")


# ----------------------------------------------------------------------------- folders


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


def _in_data_dir(find: Callable[[Path], _T | None], tried: list[str], *, file: str = "") -> _T | None:
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


def _download(url: str, target: Path, sha256: str, tried: list[str], *, size: int) -> bool:
    """Download ``url`` to ``target``, hash-checked, size-bounded, with every network wait bounded.

    The connection and each read wait at most ``_download_timeout()`` seconds (not the
    whole transfer, so a slow but live download finishes). The bytes stream into a
    temporary file beside ``target``, renamed into place only when their SHA-256 is
    ``sha256``. At most ``size`` bytes (the official file's) are read: a larger
    ``Content-Length``, or a body that goes on past it, fails at once and keeps nothing.
    Returns ``False`` with the failure noted in ``tried`` instead of raising.
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
            text = f"{type(reason).__name__}: {_first_line(reason)}"
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


def _not_found(dataset: str, tried: list[str], what: str) -> DataNotFoundError:
    """The error of a loader that found ``dataset`` nowhere: where it looked, what to put where."""
    return DataNotFoundError(
        f"Could not find {dataset}. Looked in: {'; '.join(tried)}. Put {what} in a folder and set "
        "VISIONKIT_DATA to it, pass `path=`, or use `sample=True` for the bundled sample."
    )


def _keras_datasets_dir() -> Path:
    home = os.environ.get("KERAS_HOME")
    return (Path(home) if home else Path.home() / ".keras") / "datasets"


def _sample_file(name: str) -> Path:
    return Path(str(resources.files("visionkit") / "_samples" / name))


# ----------------------------------------------------------------------------- images


def load_image(
    source: Any,
    *,
    size: int | tuple[int, int] | None = None,
    max_dim: int | None = None,
) -> np.ndarray:
    """Load an image as a float32 RGB array in ``[0, 255]``.

    Parameters
    ----------
    source : str, os.PathLike, bytes, PIL.Image.Image or numpy.ndarray
        A file path, the bytes of an encoded image, a PIL image, or an array of shape
        ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4)``. Integer arrays are
        read as ``uint8`` (``uint16`` is scaled by ``255 / 65535``); float arrays are
        taken to be in ``[0, 255]`` already.
    size : int or (height, width), optional
        Resize to exactly this size (bicubic, antialiased).
    max_dim : int, optional
        Scale so that the longer side equals ``max_dim``, keeping the aspect ratio.
        Cannot be combined with ``size``.

    Returns
    -------
    numpy.ndarray
        float32 array of shape ``(H, W, 3)``, values in ``[0, 255]``.

    Notes
    -----
    Grayscale, palette, CMYK and 16-bit images are converted to RGB (16-bit values are
    scaled, not clipped); transparent images (RGBA, LA, palette with transparency) are
    composited on white; the EXIF orientation is applied.

    Raises
    ------
    ImageReadError
        The file is missing, not an image, truncated, or larger than PIL's
        decompression-bomb limit (read from its header); the message names the file.
    InvalidArgumentError
        ``size`` or ``max_dim`` asks for more than
        [`MAX_IMAGE_PIXELS`][visionkit.data.MAX_IMAGE_PIXELS] pixels (refused before
        anything is allocated).

    Examples
    --------
    >>> from visionkit.data import load_image, sample_image_path
    >>> img = load_image(sample_image_path("photo"), max_dim=128)
    >>> img.shape, img.dtype
    ((85, 128, 3), dtype('float32'))
    """
    target = V.size2d("size", size, allow_none=True)
    max_dim = V.integer("max_dim", max_dim, minimum=1, allow_none=True)
    if target is not None:
        _check_pixels(target, "size", size)
    if max_dim is not None and max_dim > MAX_IMAGE_PIXELS:  # no image side can be longer
        _check_pixels((max_dim, max_dim), "max_dim", max_dim)
    if target is not None and max_dim is not None:
        raise InvalidArgumentError(
            f"Pass either `size` or `max_dim`, not both. Received: size={size!r}, max_dim={max_dim!r}"
        )
    if isinstance(source, np.ndarray):
        array = _array_to_rgb(source)
    elif isinstance(source, Image.Image):
        array = _pil_to_rgb(source, "<PIL image>")
    elif isinstance(source, (bytes, bytearray, memoryview)):
        array = _open_and_convert(io.BytesIO(bytes(source)), "<bytes>")
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise ImageReadError(f"Image file not found: '{path}'.")
        if not path.is_file():
            raise ImageReadError(f"Expected an image file, got a folder: '{path}'.")
        array = _open_and_convert(path, f"'{path}'")
    else:
        raise InvalidTypeError(
            "Argument `source` must be a path, bytes, a PIL image or a numpy array. "
            f"Received: source of type {type(source).__name__}"
        )
    if max_dim is not None:
        h, w = array.shape[:2]
        scale = max_dim / max(h, w)
        target = (max(1, round(h * scale)), max(1, round(w * scale)))
    if target is not None:
        _check_pixels(target, "max_dim" if max_dim is not None else "size", max_dim if max_dim is not None else size)
    if target is not None and target != array.shape[:2]:
        array = _resize(array, target)
    return array


def _check_pixels(shape: tuple[int, int], name: str, value: Any) -> None:
    """Refuse an output of ``shape`` (height, width) above [`MAX_IMAGE_PIXELS`][visionkit.data.MAX_IMAGE_PIXELS]."""
    h, w = int(shape[0]), int(shape[1])
    if h * w > MAX_IMAGE_PIXELS:
        raise InvalidArgumentError(
            f"Argument `{name}` asks for a {h}x{w} image ({h * w:,} pixels, {h * w * 12 / 2**30:.1f} GiB as "
            f"float32 RGB); the limit is visionkit.data.MAX_IMAGE_PIXELS = {MAX_IMAGE_PIXELS:,} pixels. "
            f"Received: {name}={value!r}"
        )


def _open_and_convert(fp: Any, label: str) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(fp) as img:
                img.load()
                return _pil_to_rgb(img, label)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageReadError(
            f"Image {label} is too large to decode safely ({exc}). Raise "
            "`PIL.Image.MAX_IMAGE_PIXELS` if you trust this file."
        ) from None
    except UnidentifiedImageError:
        raise ImageReadError(f"File {label} is not an image PIL can read.") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(f"Could not decode image {label}: {exc}.") from None


def _pil_to_rgb(img: Image.Image, label: str) -> np.ndarray:
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # a broken EXIF block must not lose the image
        pass
    mode = img.mode
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.float64)
        scale = 255.0 / 65535.0 if mode.startswith("I;16") or arr.max(initial=0) > 255 else 1.0
        arr = np.clip(arr * scale, 0, 255).astype(np.float32)
        return np.repeat(arr[..., None], 3, axis=-1)
    if mode == "F":
        arr = np.clip(np.asarray(img, dtype=np.float32), 0, 255)
        return np.repeat(arr[..., None], 3, axis=-1)
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img, dtype=np.float32).copy()


def _array_to_rgb(array: np.ndarray) -> np.ndarray:
    arr = np.asarray(array)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[-1] not in (1, 3, 4) or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise V.fail("source", "an image array of shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4)", f"array of shape {array.shape}")
    if arr.dtype == np.uint16:
        arr = arr.astype(np.float32) * (255.0 / 65535.0)
    elif arr.dtype == np.bool_:
        arr = arr.astype(np.float32) * 255.0
    elif np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float32)
    else:
        raise V.fail("source", "an array of integers or floats", f"array of dtype {arr.dtype}")
    if not np.isfinite(arr).all():
        raise V.fail("source", "an image array without NaN or infinite values", "array with non-finite values")
    arr = np.clip(arr, 0.0, 255.0)
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    elif arr.shape[-1] == 4:
        alpha = arr[..., 3:4] / 255.0
        arr = arr[..., :3] * alpha + 255.0 * (1.0 - alpha)
    return np.ascontiguousarray(arr, dtype=np.float32)


def _resize(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bicubic, antialiased resize of a float ``(H, W, C)`` array to ``size=(h, w)``."""
    h, w = size
    channels = [
        np.asarray(Image.fromarray(array[..., c]).resize((w, h), Image.Resampling.BICUBIC))
        for c in range(array.shape[-1])
    ]
    return np.clip(np.stack(channels, axis=-1), 0.0, 255.0).astype(np.float32)


_SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF", ".webp": "WEBP"}

#: File extensions [`save_image`][visionkit.data.save_image] can write (the format follows the extension).
SAVE_FORMATS: tuple[str, ...] = tuple(_SAVE_FORMATS)


def save_image(path: str | os.PathLike[str], image: Any, *, quality: int = 95) -> Path:
    """Write an image atomically; the format follows the file extension.

    Parameters
    ----------
    path : str or os.PathLike
        Destination, ending in ``.png``, ``.jpg``/``.jpeg``, ``.bmp``, ``.tif`` or
        ``.webp``. Parent folders are created.
    image : array-like
        ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4)``; uint8, or floats in
        ``[0, 255]`` (rounded and clipped).
    quality : int, default 95
        JPEG/WebP quality, 1-100.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    InvalidArgumentError
        Unknown extension, wrong shape, or NaN/infinite values (nothing is written).

    Notes
    -----
    The data goes to a temporary file in the same folder, which is renamed over
    ``path`` only when complete: a crash never leaves a half-written image.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from visionkit.data import load_image, save_image
    >>> folder = tempfile.mkdtemp()
    >>> path = save_image(f"{folder}/grey.png", np.full((8, 8, 3), 128, np.uint8))
    >>> path.name, load_image(path)[0, 0]
    ('grey.png', array([128., 128., 128.], dtype=float32))
    >>> import shutil; shutil.rmtree(folder)
    """
    path = Path(path)
    fmt = _SAVE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise V.fail("path", f"a file name ending in one of {sorted(_SAVE_FORMATS)}", str(path))
    quality = V.integer("quality", quality, minimum=1, maximum=100)
    arr = np.asarray(image)
    if hasattr(image, "numpy") and not isinstance(image, np.ndarray):
        arr = np.asarray(image.numpy())
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (3, 4)) or arr.size == 0:
        raise V.fail("image", "an array of shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4)", f"array of shape {arr.shape}")
    if arr.dtype != np.uint8:
        if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
            raise V.fail("image", "a numeric array", f"array of dtype {arr.dtype}")
        arr = arr.astype(np.float64)
        if not np.isfinite(arr).all():
            raise V.fail("image", "an image without NaN or infinite values (nothing was written)", f"{path.name} with non-finite pixels")
        arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    pil = Image.fromarray(arr)
    if fmt == "JPEG" and pil.mode == "RGBA":
        pil = pil.convert("RGB")
    options: dict[str, Any] = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    with atomic_path(path) as tmp:
        pil.save(tmp, format=fmt, **options)
    return path


def sample_image_path(name: str) -> Path:
    """Return the path of a bundled sample image.

    Parameters
    ----------
    name : str
        ``"painting"`` (Van Gogh, *The Starry Night*, 512×384, public domain) or
        ``"photo"`` (Chelsea the cat, 451×300, CC0); aliases ``"starry_night"`` and
        ``"chelsea"``.

    Returns
    -------
    pathlib.Path
        The image file inside the installed package.

    Raises
    ------
    InvalidArgumentError
        ``name`` is not one of [`SAMPLE_IMAGES`][visionkit.data.SAMPLE_IMAGES].

    Examples
    --------
    >>> from visionkit.data import sample_image_path
    >>> sample_image_path("photo").name
    'chelsea_cat.jpg'
    """
    V.one_of("name", name, SAMPLE_IMAGES)
    return _sample_file(SAMPLE_IMAGES[name])


def sample_image(name: str, *, size: int | tuple[int, int] | None = None, max_dim: int | None = None) -> np.ndarray:
    """Load a bundled sample image as float32 RGB ``(H, W, 3)`` in ``[0, 255]``.

    Parameters
    ----------
    name : str
        ``"painting"``, ``"photo"`` or an alias; see [`sample_image_path`][visionkit.data.sample_image_path].
    size : int or (height, width), optional
        Resize to exactly this size, as in [`load_image`][visionkit.data.load_image].
    max_dim : int, optional
        Scale so that the longer side is ``max_dim``, as in [`load_image`][visionkit.data.load_image].

    Returns
    -------
    numpy.ndarray
        float32 array of shape ``(H, W, 3)``, values in ``[0, 255]``.

    Examples
    --------
    >>> from visionkit.data import sample_image
    >>> sample_image("painting").shape
    (384, 512, 3)
    >>> sample_image("photo", size=32).shape
    (32, 32, 3)
    """
    return load_image(sample_image_path(name), size=size, max_dim=max_dim)


# ----------------------------------------------------------------------------- MNIST


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
        return _read_mnist_npz(_sample_file("mnist_sample.npz"))
    if path is not None:
        file = Path(path)
        file = file / "mnist.npz" if file.is_dir() else file
        if not file.is_file():
            raise DataNotFoundError(f"MNIST file not found: '{file}' (from argument `path`). Expected Keras' mnist.npz.")
        return _read_mnist_npz(file)
    tried: list[str] = []
    file = _in_data_dir(lambda env: env / "mnist.npz" if (env / "mnist.npz").is_file() else None, tried, file="mnist.npz")
    if file is not None:
        return _read_mnist_npz(file)
    cached = _keras_datasets_dir() / "mnist.npz"
    found = _from_keras_cache(_read_mnist_npz, cached, tried)
    if found is not None:
        return found
    if _download(_MNIST_URL, cached, _MNIST_SHA256, tried, size=_MNIST_SIZE):
        return _read_mnist_npz(cached)
    raise _not_found("MNIST", tried, f"Keras' `mnist.npz` (sha256 {_MNIST_SHA256[:12]}...)")


def _from_keras_cache(read: Callable[[Path], _T], cached: Path, tried: list[str]) -> _T | None:
    """``read(cached)`` if the Keras cache holds it; a damaged cache is noted in ``tried`` and downloaded again."""
    if not cached.exists():
        tried.append(f"'{cached}' (Keras cache)")
        return None
    try:
        return read(cached)
    except (ImageReadError, DataNotFoundError) as exc:
        tried.append(f"'{cached}' (Keras cache, unusable: {_first_line(exc)})")
    return None


_SPLIT_KEYS = ("x_train", "y_train", "x_test", "y_test")


def _read_mnist_npz(file: Path) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    arrays = _read_npz(file, "MNIST", _SPLIT_KEYS)
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 3 or x.shape[1:] != (28, 28) or y.shape != (x.shape[0],):
            raise ImageReadError(
                f"'{file}' is not an MNIST file: x_{split} has shape {x.shape}, y_{split} {y.shape}; "
                "expected (N, 28, 28) and (N,)."
            )
    out = {k: _as_uint8(a, file, k, labels=k.startswith("y")) for k, a in arrays.items()}
    return (out["x_train"], out["y_train"]), (out["x_test"], out["y_test"])


def _read_npz(file: Path, dataset: str, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The arrays ``keys`` of the ``.npz`` ``file``; a damaged or incomplete file raises `ImageReadError` naming it."""
    import zipfile
    import zlib

    size = file.stat().st_size
    if size == 0:
        raise ImageReadError(f"{dataset} file '{file}' is empty (0 bytes): delete it and download or copy it again.")
    if not zipfile.is_zipfile(file):
        raise ImageReadError(
            f"{dataset} file '{file}' is truncated or not an .npz file ({size} bytes, no zip directory found): "
            "delete it and download or copy it again."
        )
    _check_npz_headers(file, dataset, keys)
    arrays: dict[str, np.ndarray] = {}
    try:
        with np.load(file, allow_pickle=False) as f:
            missing = [k for k in keys if k not in f.files]
            if missing:
                raise ImageReadError(
                    f"'{file}' is not an {dataset} file: it lacks the arrays {', '.join(missing)} "
                    f"(it has: {', '.join(f.files) or 'none'})."
                )
            for key in keys:
                try:
                    arrays[key] = f[key]
                except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
                    raise ImageReadError(
                        f"{dataset} file '{file}' is corrupt: its member '{key}.npy' cannot be read "
                        f"({type(exc).__name__}: {_first_line(exc)})."
                    ) from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ImageReadError(f"Could not read {dataset} file '{file}': {type(exc).__name__}: {_first_line(exc)}") from None
    return arrays


def _check_npz_headers(file: Path, dataset: str, keys: tuple[str, ...]) -> None:
    """Read each ``.npy`` header of ``file`` and refuse an array larger than its member or the cap.

    The check costs a few hundred bytes per array: a tiny file whose header declares
    an enormous array is refused before numpy allocates it
    ([`MAX_NPZ_ARRAY_BYTES`][visionkit.data.MAX_NPZ_ARRAY_BYTES]).
    """
    import zipfile
    import zlib

    fmt = np.lib.format
    try:
        with zipfile.ZipFile(file) as zf:
            for key in keys:
                try:
                    info = zf.getinfo(f"{key}.npy")
                except KeyError:
                    continue  # reported, with the names it has, by the caller
                try:
                    with zf.open(info) as fh:
                        version = fmt.read_magic(fh)
                        read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
                        shape, _, dtype = read(fh, max_header_size=1 << 16)
                        header = fh.tell()
                except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
                    raise ImageReadError(
                        f"{dataset} file '{file}' is corrupt: its member '{key}.npy' cannot be read "
                        f"({type(exc).__name__}: {_first_line(exc)})."
                    ) from None
                declared = math.prod(shape) * dtype.itemsize
                if declared > MAX_NPZ_ARRAY_BYTES or declared > info.file_size - header:
                    raise ImageReadError(
                        f"{dataset} file '{file}' is damaged: its array '{key}' declares shape {shape} of "
                        f"{dtype} ({declared:,} bytes) but the member holds {info.file_size - header:,} bytes "
                        f"(limit visionkit.data.MAX_NPZ_ARRAY_BYTES = {MAX_NPZ_ARRAY_BYTES:,}); "
                        "refusing to allocate it."
                    )
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ImageReadError(f"Could not read {dataset} file '{file}': {type(exc).__name__}: {_first_line(exc)}") from None


def _as_uint8(array: np.ndarray, file: Path | str, name: str, *, labels: bool = False) -> np.ndarray:
    """``array`` as uint8 without wrapping: refuse values outside [0, 255] ([0, 9] for labels) or not whole.

    uint8 pixels pass untouched (the real files' case); labels cost one min/max.
    """
    high = 9 if labels else 255
    if array.dtype.kind not in "biuf":
        raise ImageReadError(f"'{file}': array `{name}` has dtype {array.dtype}; expected uint8.")
    if array.size == 0 or (array.dtype == np.uint8 and not labels):
        return array.astype(np.uint8, copy=False)
    lo, hi = array.min(), array.max()
    if not (lo >= 0 and hi <= high):
        raise ImageReadError(
            f"'{file}': array `{name}` ({array.dtype}) has values in [{lo}, {hi}], outside [0, {high}]; "
            "refusing to cast them to uint8."
        )
    if array.dtype.kind == "f" and not np.array_equal(array, np.floor(array)):
        raise ImageReadError(
            f"'{file}': array `{name}` ({array.dtype}) holds fractional values (in [{lo}, {hi}]); "
            f"expected whole numbers in [0, {high}], as uint8."
        )
    return array.astype(np.uint8, copy=False)


# ----------------------------------------------------------------------------- CIFAR-10


def load_cifar10(
    path: str | os.PathLike[str] | None = None, *, sample: bool = False
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
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
        return _read_cifar_sample(_sample_file("cifar10_sample.npz"))
    if path is not None:
        found = _find_cifar(Path(path))
        if found is None:
            raise DataNotFoundError(
                f"No CIFAR-10 data at '{path}' (from argument `path`). Expected a "
                "`cifar-10-batches-py` folder, `cifar-10-python.tar.gz`, a "
                "`cifar10/{train,test}/<class>/*.jpg` tree or a .tar.gz of it."
            )
        return _load_cifar_source(*found)
    tried: list[str] = []
    found = _in_data_dir(_find_cifar, tried)
    if found is not None:
        return _load_cifar_source(*found)
    for cached in (
        _keras_datasets_dir() / "cifar-10-batches-py-target" / "cifar-10-batches-py",
        _keras_datasets_dir() / "cifar-10-batches-py",
    ):
        if (cached / "data_batch_1").is_file():
            found_batches = _from_keras_cache(_read_cifar_batches_dir, cached, tried)
            if found_batches is not None:
                return found_batches
        else:
            tried.append(f"'{cached}' (Keras cache)")
    archive = _keras_datasets_dir() / _CIFAR_KERAS_ARCHIVE
    found_archive = _from_keras_cache(lambda p: _load_cifar_source("tar", p), archive, tried)
    if found_archive is not None:
        return found_archive
    if _download(_CIFAR_PY_URL, archive, _CIFAR_PY_SHA256, tried, size=_CIFAR_PY_SIZE):
        return _load_cifar_source("tar", archive)
    raise _not_found(
        "CIFAR-10", tried,
        "one of `cifar-10-batches-py/`, `cifar-10-python.tar.gz`, `cifar10/{train,test}/<class>/*.jpg` "
        "or `cifar10-jpeg.tar.gz`",
    )


def _find_cifar(p: Path) -> tuple[str, Path] | None:
    if p.is_file():
        if p.name.endswith((".tar.gz", ".tgz", ".tar")):
            return ("tar", p)
        return None
    if not p.is_dir():
        return None
    if (p / "data_batch_1").is_file():
        return ("batches", p)
    if (p / "cifar-10-batches-py" / "data_batch_1").is_file():
        return ("batches", p / "cifar-10-batches-py")
    if (p / "train").is_dir() and (p / "test").is_dir():
        return ("tree", p)
    if (p / "cifar10" / "train").is_dir():
        return ("tree", p / "cifar10")
    for name in ("cifar10-jpeg.tar.gz", "cifar-10-python.tar.gz"):
        if (p / name).is_file():
            return ("tar", p / name)
    return None


def _load_cifar_source(kind: str, p: Path) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    if kind == "batches":
        return _read_cifar_batches_dir(p)
    stamp = _source_stamp(kind, p)
    cache_file = cache_dir() / f"cifar10-{stamp}.npz"
    if cache_file.is_file():
        try:
            return _read_cifar_npz(cache_file)
        except (ImageReadError, DataNotFoundError):
            pass  # a damaged cache is rebuilt below
    result = _read_cifar_tree(p) if kind == "tree" else _read_cifar_tar(p)
    try:
        with atomic_path(cache_file) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, x_train=result[0][0], y_train=result[0][1], x_test=result[1][0], y_test=result[1][1])
    except OSError as exc:
        warnings.warn(f"Could not write the CIFAR-10 cache '{cache_file}': {exc}", RuntimeWarning, stacklevel=3)
    return result


def _source_stamp(kind: str, p: Path) -> str:
    p = p.resolve()
    parts = [_CACHE_VERSION, kind, str(p)]
    if kind == "tree":
        for split in ("train", "test"):
            for cls in CIFAR10_CLASSES:
                d = p / split / cls
                st = d.stat() if d.is_dir() else None
                parts.append(f"{split}/{cls}:{st.st_mtime_ns if st else 0}")
    else:
        st = p.stat()
        parts.append(f"{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _read_cifar_npz(file: Path) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    arrays = _read_npz(file, "CIFAR-10", _SPLIT_KEYS)
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 4 or x.shape[1:] != (32, 32, 3) or y.shape != (x.shape[0], 1):
            raise ImageReadError(
                f"'{file}' is not a CIFAR-10 file: x_{split} has shape {x.shape}, y_{split} {y.shape}; "
                "expected (N, 32, 32, 3) and (N, 1)."
            )
    out = {k: _as_uint8(a, file, k, labels=k.startswith("y")) for k, a in arrays.items()}
    return (out["x_train"], out["y_train"]), (out["x_test"], out["y_test"])


def _read_cifar_sample(file: Path) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    out = []
    with np.load(file, allow_pickle=False) as f:
        for split in ("train", "test"):
            blob, offsets = f[f"jpeg_{split}"].tobytes(), f[f"offsets_{split}"]
            x = np.stack([
                _decode_jpeg_bytes(blob[offsets[i] : offsets[i + 1]], f"{file.name}:{split}[{i}]")
                for i in range(len(offsets) - 1)
            ])
            out.append((x, f[f"y_{split}"].astype(np.uint8)))
    return out[0], out[1]


def _decode_jpeg_bytes(data: bytes, label: str) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as img:
            arr = np.asarray(img.convert("RGB"), dtype=np.uint8)
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(f"Could not decode CIFAR-10 image '{label}': {exc}") from None
    if arr.shape != (32, 32, 3):
        raise ImageReadError(f"CIFAR-10 image '{label}' has shape {arr.shape}, expected (32, 32, 3).")
    return arr


def _assemble(items: list[tuple[str, int, str, bytes]], source: Path) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    items.sort(key=lambda t: (t[0], t[1], t[2]))
    with ThreadPoolExecutor(max_workers=_workers()) as pool:
        arrays = list(pool.map(lambda t: _decode_jpeg_bytes(t[3], f"{source}:{t[0]}/{t[2]}"), items, chunksize=512))
    out = []
    for split in ("train", "test"):
        idx = [i for i, t in enumerate(items) if t[0] == split]
        if not idx:
            raise DataNotFoundError(f"CIFAR-10 source '{source}' has no '{split}' images.")
        # A folder tree has no order of its own: use one fixed permutation so that, as in
        # Keras' arrays, classes are interleaved and any slice is roughly balanced.
        idx = [idx[i] for i in np.random.default_rng(0).permutation(len(idx))]
        x = np.stack([arrays[i] for i in idx])
        y = np.array([[items[i][1]] for i in idx], dtype=np.uint8)
        out.append((x, y))
    return out[0], out[1]


def _read_cifar_tree(root: Path) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    items: list[tuple[str, int, str, bytes]] = []
    for split in ("train", "test"):
        for label, cls in enumerate(CIFAR10_CLASSES):
            folder = root / split / cls
            if not folder.is_dir():
                raise DataNotFoundError(f"CIFAR-10 tree '{root}' lacks the folder '{split}/{cls}'.")
            for f in folder.iterdir():
                if f.suffix.lower() in (".jpg", ".jpeg", ".png"):
                    items.append((split, label, f"{cls}/{f.name}", f.read_bytes()))
    return _assemble(items, root)


def _read_cifar_tar(file: Path) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Read a CIFAR-10 archive member by member, in memory: nothing is ever extracted to disk."""
    import zlib

    class_index = {c: i for i, c in enumerate(CIFAR10_CLASSES)}
    try:
        with tarfile.open(file, "r:*") as tar:
            names = tar.getnames()
            if any(n.endswith("data_batch_1") for n in names):
                return _read_cifar_python_tar(file, tar)
            items: list[tuple[str, int, str, bytes]] = []
            for member in tar:
                if not member.isfile():
                    continue
                parts = member.name.split("/")
                if len(parts) < 3 or parts[-3] not in ("train", "test") or parts[-2] not in class_index:
                    continue
                if not parts[-1].lower().endswith((".jpg", ".jpeg", ".png")):
                    continue
                _check_member_size(file, member)
                fh = tar.extractfile(member)
                if fh is None:
                    continue
                items.append((parts[-3], class_index[parts[-2]], f"{parts[-2]}/{parts[-1]}", fh.read()))
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise ImageReadError(
            f"Could not read CIFAR-10 archive '{file}' (damaged or truncated?): {type(exc).__name__}: {_first_line(exc)}"
        ) from None
    return _assemble(items, file)


def _check_member_size(file: Path, member: tarfile.TarInfo) -> None:
    """Refuse an image member whose tar header declares more than [`MAX_ARCHIVE_MEMBER_BYTES`][visionkit.data.MAX_ARCHIVE_MEMBER_BYTES]."""
    if member.size > MAX_ARCHIVE_MEMBER_BYTES:
        raise ImageReadError(
            f"CIFAR-10 archive '{file}' is damaged or not CIFAR-10: its member '{member.name}' declares "
            f"{member.size:,} bytes, more than a 32x32 image needs (limit visionkit.data.MAX_ARCHIVE_MEMBER_BYTES "
            f"= {MAX_ARCHIVE_MEMBER_BYTES:,}); refusing to read it."
        )


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickler that accepts plain containers and numpy arrays, nothing else."""

    _ALLOWED = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")


def _load_batch(fh: Any, label: str) -> tuple[np.ndarray, np.ndarray]:
    """One pickled CIFAR-10 batch (numpy arrays and plain containers only), checked."""
    try:
        d = _ArrayOnlyUnpickler(fh, encoding="bytes").load()
        data, labels = np.asarray(d[b"data"]), np.asarray(d[b"labels"])
    except (pickle.UnpicklingError, KeyError, ValueError, EOFError, TypeError, IndexError, AttributeError) as exc:
        # a damaged, truncated or foreign pickle raises any of these: all mean "not a batch file"
        raise ImageReadError(f"'{label}' is not a readable CIFAR-10 batch file: {type(exc).__name__}: {_first_line(exc)}") from None
    if data.ndim != 2 or data.shape[1] != 3072 or labels.shape != (data.shape[0],):
        raise ImageReadError(
            f"'{label}' is not a CIFAR-10 batch file: data has shape {data.shape}, labels {labels.shape}; "
            "expected (N, 3072) and (N,)."
        )
    data = _as_uint8(data, label, "data").reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(data), _as_uint8(labels, label, "labels", labels=True).reshape(-1, 1)


def _read_cifar_batches_dir(p: Path) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    parts = []
    for name in _CIFAR_BATCHES:
        file = p / name
        if not file.is_file():
            raise DataNotFoundError(f"CIFAR-10 folder '{p}' lacks '{name}'.")
        with open(file, "rb") as fh:
            parts.append(_load_batch(fh, str(file)))
    return _join_batches(parts)


def _join_batches(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The five training batches concatenated, and the test batch."""
    return (np.concatenate([x for x, _ in parts[:5]]), np.concatenate([y for _, y in parts[:5]])), parts[5]


def _read_cifar_python_tar(file: Path, tar: tarfile.TarFile) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    digest = hashlib.sha256()
    with open(file, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    if digest.hexdigest() != _CIFAR_PY_SHA256:
        raise ImageReadError(
            f"'{file}' does not have the sha256 of the official cifar-10-python.tar.gz (damaged, or another "
            "file); refusing to unpickle it."
        )
    members = {m.name.split("/")[-1]: m for m in tar.getmembers() if m.isfile()}
    parts = []
    for name in _CIFAR_BATCHES:
        if name not in members:
            raise DataNotFoundError(f"CIFAR-10 archive '{file}' lacks '{name}'.")
        parts.append(_load_batch(tar.extractfile(members[name]), f"{file}:{name}"))
    return _join_batches(parts)


def _workers() -> int:
    """Threads for decoding or checking many files: the CPU count, 1 to 8."""
    return max(1, min(8, os.cpu_count() or 1))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else ""


# ----------------------------------------------------------------------------- tf.data

_ORIENTATION_TAG = 0x0112
#: Channels of each ``color_mode`` of [`image_folder`][visionkit.data.image_folder].
_COLOR_CHANNELS = {"grayscale": 1, "rgb": 3, "rgba": 4}


def image_folder(
    directory: str | os.PathLike[str],
    *,
    labels: str | Sequence[int] | None = "inferred",
    label_mode: str | None = "int",
    class_names: Sequence[str] | None = None,
    color_mode: str = "rgb",
    image_size: int | tuple[int, int] = (150, 150),
    batch_size: int | None = 32,
    shuffle: bool = True,
    seed: int | None = None,
    validation_split: float | None = None,
    subset: str | None = None,
    follow_links: bool = False,
    crop_to_aspect_ratio: bool = False,
    pad_to_aspect_ratio: bool = False,
    on_error: str = "raise",
) -> tf.data.Dataset | tuple[tf.data.Dataset, tf.data.Dataset]:
    """Build a prefetched ``tf.data.Dataset`` from a folder of images.

    Follows the semantics of ``keras.utils.image_dataset_from_directory``: with
    ``labels="inferred"`` each sub-folder of ``directory`` is a class (in alphanumeric
    order, or the order of ``class_names``), and the images in it (``.bmp``, ``.gif``,
    ``.jpeg``, ``.jpg``, ``.png``, searched recursively; hidden files and folders
    skipped) are its examples. Files are listed folder by folder in alphanumeric order
    of their paths, as ``os.walk`` sorted gives them.

    What training reads is what [`load_image`][visionkit.data.load_image] reads:

    * every file is decoded once up front, in parallel, by the TensorFlow decoder the
      dataset uses (JPEGs at 1/8 scale), so a file TensorFlow cannot decode (a PNG
      without its end chunk, a cut GIF, a truncated JPEG, another format under an
      image extension) is named before training instead of failing an epoch half-way;
    * the EXIF orientation of each file (read from its header during that check) is
      applied, so a photo taken on its side is upright, as ``load_image`` shows it;
    * transparent images are composited on white (``"rgb"``, ``"grayscale"``).

    Parameters
    ----------
    directory : str or os.PathLike
        The root folder: ``directory/<class>/<image>`` with ``labels="inferred"``; any
        tree of images otherwise (read recursively from ``directory`` itself).
    labels : "inferred", None or sequence of int, default "inferred"
        ``"inferred"``: the label of an image is its class sub-folder; ``None``: no
        labels (the dataset yields images only); or one integer label ``>= 0`` per
        image file, in the alphanumeric order of the file paths (the order of
        ``file_paths`` with ``shuffle=False``). Explicit labels name their classes
        ``"0"``, ``"1"``, ... up to the largest label.
    label_mode : {"int", "categorical", "binary", None}, default "int"
        ``"int"``: int32 ``(batch,)``; ``"categorical"``: one-hot float32
        ``(batch, num_classes)``; ``"binary"``: float32 ``(batch, 1)``, exactly two
        classes (labels 0 and 1); ``None``: images only.
    class_names : sequence of str, optional
        With ``labels="inferred"`` only: the class sub-folders to read, in label order
        (others are left out). Default: every visible sub-folder, sorted.
    color_mode : {"rgb", "grayscale", "rgba"}, default "rgb"
        Channels of the images: 3, 1 or 4. ``"rgb"`` and ``"grayscale"`` composite a
        transparent image on white; ``"rgba"`` keeps the alpha (255 where the file has
        none).
    image_size : int or (height, width), default (150, 150)
        Images are resized (bilinear) to this size.
    batch_size : int or None, default 32
        Batch size; ``None`` yields single images. The last batch may be smaller.
    shuffle : bool, default True
        Shuffle the files, again every epoch (both subsets with ``subset="training"`` or
        ``"validation"``; the training one only with ``"both"``, as Keras). With
        ``False`` every dataset reads its files in alphanumeric order.
    seed : int, optional
        Seed of the shuffle and of the split.
    validation_split : float, optional
        Fraction in ``(0, 1)`` held out for validation; needs ``subset``. The split is
        deterministic (files are permuted with ``seed``, 0 when it is None, whatever
        ``shuffle`` is), so separate ``"training"`` and ``"validation"`` calls with the
        same ``seed`` never overlap.
    subset : {"training", "validation", "both"}, optional
        Which side of the split to return; ``"both"`` returns ``(train, val)``.
    follow_links : bool, default False
        Enter symbolic links to folders met inside the tree (class folders that are
        links are always read, as Keras). A folder is never read twice and a link back
        to ``directory`` or into another class's folder is skipped (with a warning):
        no loops, no image under two labels.
    crop_to_aspect_ratio : bool, default False
        Crop the centre of each image to the aspect ratio of ``image_size`` before
        resizing, instead of distorting it.
    pad_to_aspect_ratio : bool, default False
        Pad each image with zeros (black) to the aspect ratio of ``image_size``, as
        Keras. Not with ``crop_to_aspect_ratio``.
    on_error : {"raise", "skip"}, default "raise"
        For files TensorFlow cannot decode: ``"raise"`` an
        [`ImageReadError`][visionkit.errors.ImageReadError] naming them, or ``"skip"``
        them with one warning that lists them.

    Returns
    -------
    tf.data.Dataset or (tf.data.Dataset, tf.data.Dataset)
        Batches of ``(images, labels)`` (images float32 ``(batch, h, w, channels)`` in
        ``[0, 255]``), or images alone with ``labels=None`` or ``label_mode=None``. The
        dataset has ``class_names`` (``None`` with ``labels=None``) and ``file_paths``
        attributes.

    Warns
    -----
    UserWarning
        A class folder holds no (readable) image: it stays a label with no examples
        (the warning names it; pass ``class_names`` to leave it out); or folder links
        that lead back to ``directory``, into another class or to a folder already
        read were not followed (the warning names them).
    RuntimeWarning
        ``on_error="skip"`` skipped unreadable files (one warning listing them).

    Raises
    ------
    DataNotFoundError
        ``directory`` does not exist.
    ImageReadError
        Unreadable files with ``on_error="raise"``; the message lists them.
    InvalidArgumentError
        A bad argument, a folder without class sub-folders or images, ``labels`` of
        the wrong length, or a split that leaves a subset empty.

    Examples
    --------
    >>> import tempfile
    >>> from visionkit.data import image_folder, save_image, sample_image
    >>> root = tempfile.mkdtemp()
    >>> for name in ("painting", "photo"):
    ...     for i in range(5):
    ...         _ = save_image(f"{root}/{name}/{i}.png", sample_image(name, size=16))
    >>> train, val = image_folder(root, image_size=(8, 8), batch_size=4,
    ...                           validation_split=0.2, subset="both", seed=1)
    >>> train.class_names, len(train.file_paths), len(val.file_paths)
    (['painting', 'photo'], 8, 2)
    >>> images, labels = next(iter(train))
    >>> images.shape, images.dtype.name, labels.dtype.name
    (TensorShape([4, 8, 8, 3]), 'float32', 'int32')
    >>> gray = image_folder(root, labels=None, color_mode="grayscale", image_size=8, shuffle=False)
    >>> gray.class_names, [p[len(root):] for p in gray.file_paths[:2]], next(iter(gray)).shape
    (None, ['/painting/0.png', '/painting/1.png'], TensorShape([10, 8, 8, 1]))
    >>> import shutil; shutil.rmtree(root)
    """
    settings = _FolderSettings.check(
        directory, labels=labels, label_mode=label_mode, class_names=class_names, color_mode=color_mode,
        image_size=image_size, batch_size=batch_size, shuffle=shuffle, seed=seed,
        validation_split=validation_split, subset=subset, follow_links=follow_links,
        crop_to_aspect_ratio=crop_to_aspect_ratio, pad_to_aspect_ratio=pad_to_aspect_ratio, on_error=on_error,
    )
    datasets = _folder_datasets(settings)
    return datasets if settings.subset == "both" else datasets[0]


@dataclasses.dataclass(frozen=True)
class _FolderSettings:
    """The arguments of [`image_folder`][visionkit.data.image_folder], validated once."""

    root: Path
    labels: str | tuple[int, ...] | None
    label_mode: str | None
    class_names: tuple[str, ...] | None
    color_mode: str
    image_size: tuple[int, int]
    batch_size: int | None
    shuffle: bool
    seed: int | None
    validation_split: float | None
    subset: str | None
    follow_links: bool
    crop_to_aspect_ratio: bool
    pad_to_aspect_ratio: bool
    on_error: str

    @classmethod
    def check(cls, directory: Any, **kwargs: Any) -> _FolderSettings:
        """Validate every argument, then the folder; raise the standard errors."""
        V.one_of("label_mode", kwargs["label_mode"], ("int", "categorical", "binary", None))
        V.one_of("color_mode", kwargs["color_mode"], tuple(_COLOR_CHANNELS))
        V.one_of("on_error", kwargs["on_error"], ("raise", "skip"))
        V.one_of("subset", kwargs["subset"], ("training", "validation", "both", None))
        for name in ("shuffle", "follow_links", "crop_to_aspect_ratio", "pad_to_aspect_ratio"):
            kwargs[name] = V.boolean(name, kwargs[name])
        if kwargs["crop_to_aspect_ratio"] and kwargs["pad_to_aspect_ratio"]:
            raise InvalidArgumentError(
                "Pass either `crop_to_aspect_ratio` or `pad_to_aspect_ratio`, not both. "
                "Received: crop_to_aspect_ratio=True, pad_to_aspect_ratio=True"
            )
        kwargs["labels"] = _check_labels(kwargs["labels"])
        kwargs["class_names"] = _check_class_names(kwargs["class_names"], kwargs["labels"])
        if kwargs["labels"] is None:
            kwargs["label_mode"] = None  # as Keras: no labels, images only
        kwargs["image_size"] = V.size2d("image_size", kwargs["image_size"])
        kwargs["batch_size"] = V.integer("batch_size", kwargs["batch_size"], minimum=1, allow_none=True)
        kwargs["seed"] = V.integer("seed", kwargs["seed"], minimum=0, allow_none=True)
        split = kwargs["validation_split"] = V.number(
            "validation_split", kwargs["validation_split"], minimum=0.0, maximum=1.0,
            exclusive_minimum=True, exclusive_maximum=True, allow_none=True,
        )
        if (split is None) != (kwargs["subset"] is None):
            raise InvalidArgumentError(
                "Arguments `validation_split` and `subset` go together: pass both or neither. "
                f"Received: validation_split={split!r}, subset={kwargs['subset']!r}"
            )
        return cls(root=_existing_folder(directory), **kwargs)  # the folder after the arguments


def _check_labels(labels: Any) -> str | tuple[int, ...] | None:
    """``"inferred"``, ``None``, or the explicit labels as a tuple of ints >= 0."""
    if labels is None or (isinstance(labels, str) and labels == "inferred"):
        return labels
    allowed = '"inferred", None, or a list or tuple of integer labels >= 0, one per image file'
    if isinstance(labels, np.ndarray) and labels.ndim == 1:
        labels = labels.tolist()
    if not isinstance(labels, (list, tuple)):
        raise V.fail("labels", allowed, labels)
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 0 for v in labels):
        raise V.fail("labels", allowed, labels)
    return tuple(int(v) for v in labels)


def _check_class_names(class_names: Any, labels: Any) -> tuple[str, ...] | None:
    """``class_names`` as a tuple of distinct folder names; only with ``labels="inferred"``."""
    if class_names is None:
        return None
    if labels != "inferred":
        raise InvalidArgumentError(
            'Argument `class_names` can only be passed with labels="inferred" (explicit labels name '
            f'their classes "0", "1", ...). Received: class_names={class_names!r}, '
            f"labels={'None' if labels is None else 'a list of labels'}"
        )
    if (
        isinstance(class_names, str) or not isinstance(class_names, (list, tuple))
        or not class_names or not all(isinstance(c, str) and c for c in class_names)
        or len(set(class_names)) != len(class_names)
    ):
        raise V.fail("class_names", "a non-empty list of distinct class sub-folder names", class_names)
    return tuple(class_names)


def _existing_folder(directory: Any, name: str = "directory") -> Path:
    """Return ``directory`` as a ``Path`` to an existing folder; raise otherwise."""
    root = Path(directory)
    if not root.exists():
        raise DataNotFoundError(f"Image folder not found: '{root}' (argument `{name}`).")
    if not root.is_dir():
        raise V.fail(name, "a folder with one sub-folder per class", str(root))
    return root


def _subfolders(root: Path) -> list[str]:
    """Names of the visible (not dot-) sub-folders of ``root``, sorted."""
    return sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))


def _class_names(root: Path, chosen: Sequence[str] | None = None) -> list[str]:
    """The class sub-folders of ``root`` (``chosen`` ones, in that order); raise if there are none."""
    found = _subfolders(root)
    if chosen is not None:
        missing = [c for c in chosen if c not in found]
        if missing:
            raise V.fail("class_names", f"names of sub-folders of '{root}' ({found}); {missing} are not", list(chosen))
        return list(chosen)
    if not found:
        raise V.fail("directory", "a folder with one sub-folder of images per class; it has no sub-folders", str(root))
    return found


def _folder_datasets(settings: _FolderSettings) -> tuple[tf.data.Dataset, ...]:
    """The datasets of ``settings.subset`` (two for ``"both"``): list, check, split, build.

    As Keras, ``shuffle`` shuffles a lone subset, but only the training side of ``"both"``.
    """
    files, labels, class_names = _list_images(settings)
    files, labels, orientations = _drop_unreadable(settings.root, files, labels, on_error=settings.on_error)
    if settings.labels == "inferred" and class_names is not None:
        _warn_empty_classes(settings.root, class_names, labels)
    parts = _split_files(settings, len(files))
    return tuple(
        _files_dataset(
            settings, [files[i] for i in idx], [labels[i] for i in idx], [orientations[i] for i in idx], class_names,
            shuffle=settings.shuffle and (name == "training" or settings.subset != "both"),
        )
        for name, idx in parts.items()
    )


def _list_images(settings: _FolderSettings) -> tuple[list[str], list[int], list[str] | None]:
    """Every image file, its label and the class names, as Keras indexes a folder.

    Inferred labels: the files of each class folder, class by class. Otherwise every
    image under the root. Within a folder tree: folders by path, then files by name.
    """
    root, follow = settings.root, settings.follow_links
    skipped: list[str] = []
    files: list[str] = []
    labels: list[int] = []
    if settings.labels != "inferred":
        files = _walk_images(str(root), follow_links=follow, avoid=frozenset(), root=str(root), skipped=skipped)
        labels, class_names = _explicit_labels(settings, len(files))
    else:
        class_names = _class_names(root, settings.class_names)
        _resolve_label_mode(settings.label_mode, class_names, root)
        root_real = os.path.realpath(root)
        trees = {c: os.path.realpath(root / c) for c in _subfolders(root)}
        for label, cls in enumerate(class_names):
            real = trees[cls]
            if real == root_real or root_real.startswith(real.rstrip(os.sep) + os.sep):
                skipped.append(str(root / cls))  # a class folder that is the root or holds it: a loop
                continue
            others = frozenset(t for c, t in trees.items() if c != cls)
            found = _walk_images(str(root / cls), follow_links=follow, avoid=others, root=str(root), skipped=skipped)
            files.extend(found)
            labels.extend([label] * len(found))
    if skipped:
        warnings.warn(
            f"image_folder did not read {len(skipped)} folder link(s) that lead back to '{root}', into another "
            "class's folder or to a folder already read:\n" + "\n".join(f"  {s}" for s in skipped[:20]),
            UserWarning, stacklevel=4,
        )
    if not files:
        raise V.fail("directory", f"a folder holding images with extensions {list(IMAGE_EXTENSIONS)}; none found", str(root))
    return files, labels, class_names


def _explicit_labels(settings: _FolderSettings, n_files: int) -> tuple[list[int], list[str] | None]:
    """The labels and class names for ``labels=None`` or an explicit list of labels."""
    if settings.labels is None:
        return [0] * n_files, None
    labels = list(settings.labels)
    if len(labels) != n_files:
        raise InvalidArgumentError(
            f"Argument `labels` must hold one label per image file: '{settings.root}' has {n_files} image "
            f"files (in alphanumeric order of their paths). Received: labels of length {len(labels)}"
        )
    if settings.label_mode == "binary" and not set(labels) <= {0, 1}:
        raise V.fail("labels", 'labels 0 and 1 with label_mode="binary"', sorted(set(labels)))
    return labels, [str(i) for i in range(max(labels, default=0) + 1)]


def _walk_images(top: str, *, follow_links: bool, avoid: frozenset[str], root: str, skipped: list[str]) -> list[str]:
    """The image files under ``top``: folders sorted by path, then files by name (as Keras).

    Hidden files and folders are skipped. Links to folders are entered only with
    ``follow_links``, and then never into a folder already read (no loops), ``root``
    itself, nor into or below a folder in ``avoid`` (real paths of the other classes);
    those links are added to ``skipped``.
    """
    seen = {os.path.realpath(top), os.path.realpath(root)}
    folders: list[tuple[str, list[str]]] = []
    stack = [top]
    while stack:
        folder = stack.pop()
        names: list[str] = []
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            raise ImageReadError(f"Cannot list the image folder '{folder}': {_first_line(exc)}.") from None
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                if follow_links:
                    real = os.path.realpath(entry.path)
                    if real in seen or any(real == a or real.startswith(a.rstrip(os.sep) + os.sep) for a in avoid):
                        skipped.append(entry.path)
                        continue
                    seen.add(real)
                elif entry.is_symlink():
                    continue  # as Keras: links to folders are read only with follow_links=True
                stack.append(entry.path)
            elif entry.name.lower().endswith(IMAGE_EXTENSIONS) and entry.is_file():
                names.append(entry.name)
        folders.append((folder, names))
    folders.sort(key=lambda f: f[0])
    return [os.path.join(folder, name) for folder, names in folders for name in names]


def _warn_empty_classes(root: Path, class_names: list[str], labels: list[int]) -> None:
    """Warn, naming them, about class folders left without a single image."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(class_names))
    empty = [c for c, n in zip(class_names, counts) if n == 0]
    if empty:
        kept = [c for c, n in zip(class_names, counts) if n > 0]
        warnings.warn(
            f"image_folder: the class folder(s) {empty} of '{root}' hold no readable image; they remain "
            f"classes (labels) with no examples. To leave them out, pass class_names={kept!r}.",
            UserWarning, stacklevel=4,
        )


def _orientation(path: str) -> int:
    """The EXIF orientation of ``path`` as ``load_image`` applies it (1 to 8; 1 without one).

    Cheap: a JPEG's or PNG's segment list is scanned first, and PIL reads the orientation
    (EXIF, or XMP as PIL falls back to) only from files whose header holds such metadata;
    only then does a PNG get decoded (PIL reads its late chunks on load only).
    """
    try:
        with open(path, "rb") as fh:
            magic = fh.read(8)
            if magic[:2] == b"\xff\xd8":
                fh.seek(2)
                if not _jpeg_has_app1(fh):
                    return 1
            elif magic == b"\x89PNG\r\n\x1a\n" and not _png_has_orientation_chunk(fh):
                return 1
        with Image.open(path) as img:
            if img.format == "PNG":
                img.load()  # late eXIf / text chunks
            orientation = int(img.getexif().get(_ORIENTATION_TAG, 1))
    except Exception:  # as load_image: unreadable metadata must not lose the image (bad files are the decode check's)
        return 1
    return orientation if 1 <= orientation <= 8 else 1


def _orientations(files: list[str]) -> list[int]:
    return [_orientation(f) for f in files]


def _jpeg_has_app1(fh: Any) -> bool:
    """Whether a JPEG (read past its SOI marker) has an APP1 (EXIF or XMP) segment before its pixels."""
    while True:
        head = fh.read(4)
        if len(head) < 4 or head[0] != 0xFF:
            return False
        if head[1] == 0xFF:  # fill byte
            fh.seek(-3, os.SEEK_CUR)
            continue
        if head[1] == 0xE1:
            return True
        if head[1] in (0xDA, 0xD9):  # start of scan, end of image
            return False
        fh.seek(int.from_bytes(head[2:], "big") - 2, os.SEEK_CUR)


def _png_has_orientation_chunk(fh: Any) -> bool:
    """Whether a PNG (read past its signature) has an ``eXIf`` chunk, or text that PIL reads EXIF or XMP from."""
    while True:
        head = fh.read(8)
        if len(head) < 8 or head[4:] == b"IEND":
            return False
        size, kind = int.from_bytes(head[:4], "big"), head[4:]
        if kind == b"eXIf":
            return True
        if kind in (b"tEXt", b"zTXt", b"iTXt"):
            keyword = fh.read(min(size, 80)).split(b"\0", 1)[0]
            if keyword in (b"Raw profile type exif", b"XML:com.adobe.xmp"):
                return True
            fh.seek(size + 4 - min(size, 80), os.SEEK_CUR)
        else:
            fh.seek(size + 4, os.SEEK_CUR)


def _bad_reason(path: str) -> str:
    """Why the dataset cannot read ``path``: PIL's view of the format, else TensorFlow's words."""
    try:
        with Image.open(path) as img:
            fmt = img.format
    except UnidentifiedImageError:
        return "not an image"
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        fmt = None
    if fmt is not None and fmt not in _TF_FORMATS | {"MPO", "WEBP"}:
        return f"format {fmt} is not one TensorFlow decodes"
    return _tf_reason(path)


def _tf_unreadable(files: list[str]) -> list[int]:
    """Indices of the files TensorFlow cannot decode: one parallel ``tf.data`` pass.

    The decode is the dataset's own (``tf.io.decode_image``); JPEGs are decoded at 1/8
    scale (the same decoder and checks, an eighth of the work).
    """
    import tensorflow as tf

    def decode(index: tf.Tensor, path: tf.Tensor) -> Any:
        raw = tf.io.read_file(path)
        shape = tf.cond(
            tf.io.is_jpeg(raw),
            lambda: tf.shape(tf.io.decode_jpeg(raw, ratio=8)),
            lambda: tf.shape(tf.io.decode_image(raw, channels=0, expand_animations=False, dtype=tf.uint8)),
        )
        return index, shape  # the shape makes the decode part of the result

    ds = tf.data.Dataset.from_tensor_slices((np.arange(len(files), dtype=np.int64), files))
    ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
    ds = ds.ignore_errors(log_warning=False).batch(4096)
    readable = np.zeros(len(files), dtype=bool)
    for index, _ in ds:
        readable[index.numpy()] = True
    return np.flatnonzero(~readable).tolist()


def _tf_reason(path: str) -> str:
    """TensorFlow's own words on why it cannot decode ``path``."""
    import tensorflow as tf

    try:
        tf.io.decode_image(tf.io.read_file(path), channels=0, expand_animations=False)
    except tf.errors.OpError as exc:
        lines = re.sub(r"\{\{[^}]*\}\}|\[Op:[^\]]*\].*", "", exc.message).strip().splitlines()
        return lines[0][:200] if lines else type(exc).__name__
    return "TensorFlow cannot decode it"


def _drop_unreadable(
    root: Path, files: list[str], labels: list[int], *, on_error: str
) -> tuple[list[str], list[int], list[int]]:
    """Check every file once, as the dataset decodes it; read the EXIF orientations.

    Returns the files TensorFlow decodes, their labels and orientations. Raises on the
    others, or drops them with one warning.
    """
    n = _workers()
    with ThreadPoolExecutor(max_workers=n) as pool:  # headers in threads while tf.data decodes
        chunks = [pool.submit(_orientations, files[i::n]) for i in range(n)]
        bad = _tf_unreadable(files)
        orientations = [0] * len(files)
        for i, chunk in enumerate(chunks):
            orientations[i::n] = chunk.result()
    if not bad:
        return files, labels, orientations
    listing = "\n".join(f"  {files[i]}: {_bad_reason(files[i])}" for i in bad[:20])
    more = f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else ""
    if on_error == "raise":
        raise ImageReadError(
            f"{len(bad)} image file(s) in '{root}' that TensorFlow cannot decode:\n{listing}{more}\n"
            "Remove or fix them, or pass on_error='skip'."
        )
    warnings.warn(f"image_folder skipped {len(bad)} unreadable file(s):\n{listing}{more}", RuntimeWarning, stacklevel=4)
    keep = sorted(set(range(len(files))) - set(bad))
    if not keep:
        raise V.fail("directory", "a folder with at least one readable image", str(root))
    return [files[i] for i in keep], [labels[i] for i in keep], [orientations[i] for i in keep]


def _split_files(settings: _FolderSettings, n: int) -> dict[str, list[int]]:
    """Indices of the subsets asked for, ``{"training": ..., "validation": ...}``, in that order.

    Files are permuted with ``seed`` (0 when None) before the split, so the split is
    deterministic and the two subsets never overlap; with ``shuffle=False`` each subset
    is then put back in listing order.
    """
    order = np.random.default_rng(0 if settings.seed is None else settings.seed).permutation(n)
    if settings.validation_split is None:
        parts = {"training": order if settings.shuffle else np.arange(n)}
    else:
        n_train = n - int(settings.validation_split * n)
        parts = {"training": order[:n_train], "validation": order[n_train:]}
    wanted = ("training", "validation") if settings.subset == "both" else (settings.subset or "training",)
    for name in wanted:
        if not len(parts[name]):
            raise InvalidArgumentError(
                f"`validation_split={settings.validation_split}` leaves the {name} subset of '{settings.root}' "
                f"empty ({n} images in all). Use a split closer to 0.5 or add images. "
                f"Received: validation_split={settings.validation_split!r}"
            )
    return {name: (parts[name] if settings.shuffle else np.sort(parts[name])).tolist() for name in wanted}


# ----------------------------------------------------------------------------- folder splits

#: Split sub-folders [`folder_splits`][visionkit.data.folder_splits] recognises, and the split each one is.
_SPLIT_FOLDERS = {"train": "train", "validation": "validation", "val": "validation", "test": "test"}


@dataclasses.dataclass(frozen=True)
class FolderSplits:
    """The splits of an image folder, as [`folder_splits`][visionkit.data.folder_splits] returns them.

    Attributes
    ----------
    train : tf.data.Dataset
        Shuffled batches of ``(images, labels)``; images float32
        ``(batch, h, w, channels)`` in ``[0, 255]`` (3 channels unless another
        ``color_mode``).
    validation : tf.data.Dataset or None
        Unshuffled batches like ``train``; ``None`` when there is no validation split.
    test : tf.data.Dataset or None
        Unshuffled batches like ``train``; ``None`` when there is no test folder.
    class_names : tuple of str
        The class sub-folders, in label order (the same in every split).
    label_mode : str
        ``"binary"`` (labels float32 ``(batch, 1)`` in ``{0, 1}``), ``"int"`` (int32
        ``(batch,)``) or ``"categorical"`` (one-hot float32 ``(batch, num_classes)``).
    directories : dict of str to pathlib.Path
        The folders read: ``"train"``, and ``"validation"`` / ``"test"`` when those
        splits are folders (not when validation is held out of ``train``).
    """

    train: tf.data.Dataset
    validation: tf.data.Dataset | None
    test: tf.data.Dataset | None
    class_names: tuple[str, ...]
    label_mode: str
    directories: dict[str, Path]


def folder_splits(
    directory: str | os.PathLike[str],
    *,
    image_size: int | tuple[int, int] = (150, 150),
    batch_size: int = 32,
    validation_split: float | None = 0.2,
    test_directory: str | os.PathLike[str] | None = None,
    label_mode: str = "auto",
    color_mode: str = "rgb",
    seed: int | None = None,
    follow_links: bool = False,
    on_error: str = "raise",
) -> FolderSplits:
    """Build the train / validation / test datasets of an image folder, one rule for all.

    Two layouts are read:

    * a class-per-folder tree ``directory/<class>/<image>``: a ``validation_split``
      fraction of it is held out for validation (deterministically, see ``seed``);
    * a folder whose visible sub-folders are only ``train/`` (required),
      ``validation/`` (or its alias ``val/``) and ``test/``, each a class-per-folder
      tree: those are the splits. ``validation_split`` applies to ``train/`` only when
      there is no validation folder.

    Parameters
    ----------
    directory : str or os.PathLike
        The folder, in one of the two layouts.
    image_size : int or (height, width), default (150, 150)
        Images are resized (bilinear) to this size.
    batch_size : int, default 32
        The batch size of every split (pass the global batch when training on several
        replicas). The last batch may be smaller.
    validation_split : float, default 0.2
        Fraction in ``[0, 1)`` of the training images held out for validation when
        there is no validation folder; ``0`` (or ``None``) means no validation split.
    test_directory : str or os.PathLike, optional
        A class-per-folder tree used as the test split (instead of ``test/``).
    label_mode : {"auto", "binary", "int", "categorical"}, default "auto"
        ``"auto"``: ``"binary"`` for exactly 2 classes (labels float32 ``(batch, 1)``,
        for a one-unit sigmoid head), else ``"int"`` (int32 ``(batch,)``).
        ``"binary"`` needs exactly 2 classes; ``"categorical"`` gives one-hot float32
        ``(batch, num_classes)``.
    color_mode : {"rgb", "grayscale", "rgba"}, default "rgb"
        Channels of the images (3, 1 or 4), as in
        [`image_folder`][visionkit.data.image_folder].
    seed : int, optional
        Seed of the training shuffle. The validation hold-out uses ``seed`` (0 when
        ``None``), so it is reproducible and never overlaps the training split.
        Validation and test are not shuffled.
    follow_links : bool, default False
        Enter links to folders inside the class folders, as in
        [`image_folder`][visionkit.data.image_folder] (never in a loop).
    on_error : {"raise", "skip"}, default "raise"
        For images TensorFlow cannot decode, as in
        [`image_folder`][visionkit.data.image_folder]: every file is decoded once
        before training, so none fails an epoch half-way.

    Returns
    -------
    FolderSplits
        The datasets (images float32 ``(batch, h, w, channels)`` in ``[0, 255]``), the class
        names, the label mode used and the folders read.

    Raises
    ------
    DataNotFoundError
        ``directory`` or ``test_directory`` does not exist.
    InvalidArgumentError
        A bad argument; both ``validation/`` and ``val/``; split folders without
        ``train/``; fewer than 2 classes; a split whose classes differ from the
        training classes (the message names the folder and both lists).
    ImageReadError
        Unreadable images with ``on_error="raise"``.

    See Also
    --------
    image_folder : one dataset from one class-per-folder tree.

    Examples
    --------
    >>> import tempfile
    >>> from visionkit.data import folder_splits, save_image, sample_image
    >>> root = tempfile.mkdtemp()
    >>> for split, n in (("train", 5), ("test", 2)):
    ...     for name in ("painting", "photo"):
    ...         for i in range(n):
    ...             _ = save_image(f"{root}/{split}/{name}/{i}.png", sample_image(name, size=16))
    >>> splits = folder_splits(root, image_size=8, batch_size=4, seed=0)
    >>> splits.class_names, splits.label_mode, sorted(splits.directories)
    (('painting', 'photo'), 'binary', ['test', 'train'])
    >>> len(splits.train.file_paths), len(splits.validation.file_paths), len(splits.test.file_paths)
    (8, 2, 4)
    >>> images, labels = next(iter(splits.test))
    >>> images.shape, labels.shape, labels.dtype.name
    (TensorShape([4, 8, 8, 3]), TensorShape([4, 1]), 'float32')
    >>> import shutil; shutil.rmtree(root)
    """
    V.one_of("label_mode", label_mode, ("auto", "binary", "int", "categorical"))
    V.one_of("on_error", on_error, ("raise", "skip"))
    common: dict[str, Any] = {
        "image_size": V.size2d("image_size", image_size),
        "batch_size": V.integer("batch_size", batch_size, minimum=1),
        "color_mode": V.one_of("color_mode", color_mode, tuple(_COLOR_CHANNELS)),
        "seed": V.integer("seed", seed, minimum=0, allow_none=True),
        "follow_links": V.boolean("follow_links", follow_links),
        "on_error": on_error,
    }
    split = V.number("validation_split", validation_split, minimum=0.0, maximum=1.0, exclusive_maximum=True, allow_none=True)
    directories = _split_directories(directory, test_directory)
    class_names = _split_classes(directories, from_argument="directory" if test_directory is None else "test_directory")
    common["label_mode"] = _resolve_label_mode(label_mode, class_names, directories["train"])
    if "validation" not in directories and split:
        train, validation = image_folder(directories["train"], validation_split=split, subset="both", **common)
    else:
        train = image_folder(directories["train"], **common)
        validation = image_folder(directories["validation"], shuffle=False, **common) if "validation" in directories else None
    test = image_folder(directories["test"], shuffle=False, **common) if "test" in directories else None
    return FolderSplits(
        train=train, validation=validation, test=test, class_names=tuple(class_names),
        label_mode=common["label_mode"], directories=directories,
    )


def _split_directories(directory: Any, test_directory: Any) -> dict[str, Path]:
    """The split folders, ``{"train": ..., "validation": ..., "test": ...}`` (those present)."""
    root = _existing_folder(directory)
    test = None if test_directory is None else _existing_folder(test_directory, "test_directory")
    subdirs = set(_subfolders(root))
    directories = {"train": root}
    if subdirs and subdirs <= set(_SPLIT_FOLDERS):
        if "train" not in subdirs:
            raise InvalidArgumentError(
                f"Argument `directory` must be a class-per-folder tree or hold a `train/` split folder; "
                f"'{root}' has only the split folders {sorted(subdirs)}. Received: directory={str(root)!r}"
            )
        if {"validation", "val"} <= subdirs:
            raise InvalidArgumentError(
                f"Argument `directory` must hold one validation folder, `validation/` or `val/`; "
                f"'{root}' has both. Remove or rename one. Received: directory={str(root)!r}"
            )
        directories = {split: root / name for name, split in _SPLIT_FOLDERS.items() if name in subdirs}
    if test is not None:
        directories["test"] = test
    return directories


def _split_classes(directories: dict[str, Path], *, from_argument: str) -> list[str]:
    """The training classes (at least 2), checked to be those of every other split."""
    train_dir = directories["train"]
    class_names = _class_names(train_dir)
    if len(class_names) < 2:
        raise InvalidArgumentError(
            f"Argument `directory` must hold at least 2 class sub-folders; '{train_dir}' has "
            f"{len(class_names)}: {class_names}. Received: directory={str(train_dir)!r}"
        )
    for name in ("validation", "test"):
        folder = directories.get(name)
        if folder is None:
            continue
        found = _subfolders(folder)
        if found != class_names:
            argument = from_argument if name == "test" else "directory"
            raise InvalidArgumentError(
                f"The {name} folder '{folder}' has the classes {found}, but the training folder "
                f"'{train_dir}' has {class_names}; every split must have the same class sub-folders. "
                f"Received: {argument}={str(folder)!r}"
            )
    return class_names


def _resolve_label_mode(label_mode: str | None, class_names: list[str], root: Path) -> str | None:
    """``"auto"`` → ``"binary"`` for 2 classes, else ``"int"``; check ``"binary"`` has 2."""
    if label_mode == "auto":
        return "binary" if len(class_names) == 2 else "int"
    if label_mode == "binary" and len(class_names) != 2:
        raise InvalidArgumentError(
            f"`label_mode='binary'` needs exactly 2 classes, but '{root}' has {len(class_names)}: "
            f"{class_names}. Use label_mode='int' or 'categorical'. Received: label_mode='binary'"
        )
    return label_mode


def _files_dataset(
    settings: _FolderSettings,
    files: list[str],
    labels: list[int],
    orientations: list[int],
    class_names: list[str] | None,
    *,
    shuffle: bool,
) -> tf.data.Dataset:
    """Decode, orient, convert and resize ``files`` into a batched, prefetched dataset."""
    import tensorflow as tf

    num_classes = len(class_names or ())
    label_mode, image_size = settings.label_mode, settings.image_size
    oriented = any(o != 1 for o in orientations)  # the orientation ops only where a file needs them
    ds = tf.data.Dataset.from_tensor_slices(
        (files, np.asarray(labels, np.int32), np.asarray(orientations, np.int32))
    )
    if shuffle:
        ds = ds.shuffle(len(files), seed=settings.seed, reshuffle_each_iteration=True)

    def load(path: tf.Tensor, label: tf.Tensor, orientation: tf.Tensor) -> Any:
        img = tf.io.decode_image(tf.io.read_file(path), channels=0, expand_animations=False, dtype=tf.uint8)
        img = _tf_color(tf.cast(img, tf.float32), settings.color_mode)
        if oriented:
            img = _tf_orient(img, orientation)
        img = _tf_fit(img, settings)
        img.set_shape((*image_size, _COLOR_CHANNELS[settings.color_mode]))
        if label_mode is None:
            return img
        if label_mode == "categorical":
            label = tf.one_hot(label, num_classes)
        elif label_mode == "binary":
            label = tf.expand_dims(tf.cast(label, tf.float32), -1)
        return img, label

    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if settings.batch_size is not None:
        ds = ds.batch(settings.batch_size)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    ds.class_names = None if class_names is None else list(class_names)
    ds.file_paths = list(files)
    return ds


def _tf_color(img: tf.Tensor, color_mode: str) -> tf.Tensor:
    """A decoded float image (1 to 4 channels) in ``color_mode``, as ``load_image`` converts.

    Alpha (LA, RGBA) is composited on white for ``"rgb"`` and ``"grayscale"``; gray is
    repeated to RGB; ``"rgba"`` keeps the alpha (255 where there is none).
    """
    import tensorflow as tf

    has_alpha = tf.shape(img)[-1] % 2 == 0
    color = tf.cond(has_alpha, lambda: img[..., :-1], lambda: img)
    alpha = tf.cond(has_alpha, lambda: img[..., -1:], lambda: tf.fill(tf.shape(img[..., :1]), 255.0))
    if color_mode == "rgba":
        return tf.concat([tf.tile(color, [1, 1, 3 // tf.shape(color)[-1]]), alpha], axis=-1)
    color = color * (alpha / 255.0) + 255.0 * (1.0 - alpha / 255.0)
    if color_mode == "rgb":
        return tf.tile(color, [1, 1, 3 // tf.shape(color)[-1]])
    luma = tf.constant([0.299, 0.587, 0.114])  # ITU-R 601-2, as PIL's convert("L")
    return tf.cond(
        tf.shape(color)[-1] == 3,
        lambda: tf.clip_by_value(tf.reduce_sum(color * luma, axis=-1, keepdims=True), 0.0, 255.0),
        lambda: color,
    )


def _tf_orient(img: tf.Tensor, orientation: tf.Tensor) -> tf.Tensor:
    """Apply an EXIF orientation (1 to 8) as PIL's ``ImageOps.exif_transpose`` does."""
    import tensorflow as tf

    def transverse() -> tf.Tensor:
        return tf.image.rot90(tf.image.transpose(img), 2)

    return tf.switch_case(orientation - 1, [
        lambda: img,
        lambda: tf.image.flip_left_right(img),
        lambda: tf.image.rot90(img, 2),
        lambda: tf.image.flip_up_down(img),
        lambda: tf.image.transpose(img),
        lambda: tf.image.rot90(img, 3),
        transverse,
        lambda: tf.image.rot90(img, 1),
    ])


def _tf_fit(img: tf.Tensor, settings: _FolderSettings) -> tf.Tensor:
    """Resize to ``image_size`` (bilinear): distorted, centre-cropped or padded, as Keras."""
    import tensorflow as tf

    height, width = settings.image_size
    if settings.pad_to_aspect_ratio:
        return tf.image.resize_with_pad(img, height, width, method="bilinear")
    if settings.crop_to_aspect_ratio:  # keras.utils.smart_resize
        h, w = tf.shape(img)[0], tf.shape(img)[1]
        crop_h = tf.clip_by_value(tf.cast(tf.cast(w * height, tf.float32) / width, tf.int32), 1, h)
        crop_w = tf.clip_by_value(tf.cast(tf.cast(h * width, tf.float32) / height, tf.int32), 1, w)
        top = tf.cast(tf.cast(h - crop_h, tf.float32) / 2, tf.int32)
        left = tf.cast(tf.cast(w - crop_w, tf.float32) / 2, tf.int32)
        img = img[top:top + crop_h, left:left + crop_w]
    return tf.image.resize(img, (height, width), method="bilinear")


def from_arrays(
    x: Any,
    y: Any = None,
    *,
    batch_size: int = 32,
    shuffle: bool = True,
    seed: int | None = None,
    augment: Callable[..., Any] | None = None,
    cache: bool = True,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Wrap arrays in a batched, prefetched ``tf.data.Dataset``.

    Parameters
    ----------
    x : array-like
        Inputs, shape ``(N, ...)``; cast to float32 per batch (values unchanged).
    y : array-like, optional
        Targets, shape ``(N, ...)``; ``None`` for inputs only.
    batch_size : int, default 32
        Batch size. The last batch is smaller unless ``drop_remainder``.
    shuffle : bool, default True
        Reshuffle every epoch (with ``seed``).
    seed : int, optional
        Shuffle seed.
    augment : callable, optional
        Applied to each batch of inputs as ``augment(x, training=True)`` (a Keras layer
        or model such as [`visionkit.preprocess.augmentation`][visionkit.preprocess.augmentation]) or ``augment(x)``.
    cache : bool, default True
        Cache the unbatched examples in memory after the first epoch.
    drop_remainder : bool, default False
        Drop the last partial batch.

    Returns
    -------
    tf.data.Dataset
        Yields ``(x_batch, y_batch)``, or ``x_batch`` when ``y`` is None.

    Examples
    --------
    >>> from visionkit.data import from_arrays, load_mnist
    >>> (x, y), _ = load_mnist(sample=True)
    >>> ds = from_arrays(x[..., None], y, batch_size=64, seed=0)
    >>> images, labels = next(iter(ds))
    >>> images.shape, images.dtype.name, labels.shape
    (TensorShape([64, 28, 28, 1]), 'float32', TensorShape([64]))
    """
    import tensorflow as tf

    batch_size = V.integer("batch_size", batch_size, minimum=1)
    x = np.asarray(x)
    if x.ndim < 1 or len(x) == 0:
        raise V.fail("x", "a non-empty array of shape (N, ...)", f"array of shape {x.shape}")
    if y is not None:
        y = np.asarray(y)
        if len(y) != len(x):
            raise InvalidArgumentError(
                f"Arguments `x` and `y` must have the same length. Received: len(x)={len(x)}, len(y)={len(y)}"
            )
    if augment is not None and not callable(augment):
        raise V.fail("augment", "a callable (e.g. a Keras layer) or None", augment)
    ds = tf.data.Dataset.from_tensor_slices((x, y) if y is not None else x)
    if cache:
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)

    def prepare(*batch: Any) -> Any:
        xb = tf.cast(batch[0], tf.float32)
        if augment is not None:
            xb = _call_augment(augment, xb)
        return (xb, *batch[1:]) if len(batch) > 1 else xb

    ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def _call_augment(augment: Callable[..., Any], xb: Any) -> Any:
    try:
        return augment(xb, training=True)
    except TypeError:
        return augment(xb)

