"""Single images: load (any source, EXIF-oriented, to float32 RGB), save atomically, the bundled samples."""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .. import _validate as V
from .._io import atomic_path
from ..errors import ImageReadError, InvalidArgumentError, InvalidTypeError
from ._sources import sample_file

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
    return sample_file(SAMPLE_IMAGES[name])


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
