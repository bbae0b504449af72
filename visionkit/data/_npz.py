"""Reading ``.npz`` dataset files safely: header-checked sizes, named damage, uint8 without wrapping."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..errors import ImageReadError
from ._sources import first_line

#: Largest array an ``.npz`` dataset file (MNIST, the CIFAR-10 cache) may declare, in bytes (1 GiB;
#: the real files' largest array is 147 MiB). Checked from the ``.npy`` header before any array is read.
MAX_NPZ_ARRAY_BYTES: int = 2**30

SPLIT_KEYS = ("x_train", "y_train", "x_test", "y_test")


def read_splits(
    file: Path, dataset: str, image_shape: tuple[int, ...], label_shape: tuple[int, ...], *, article: str = "a"
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``((x_train, y_train), (x_test, y_test))`` of a Keras-style ``.npz``, checked, as uint8.

    ``x`` must have shape ``(N, *image_shape)`` and ``y`` ``(N, *label_shape)``; values
    outside ``[0, 255]`` (labels outside ``[0, 9]``) are refused. Errors name the file
    (``article`` goes before ``dataset`` in them: "an MNIST file").
    """
    arrays = read_npz(file, dataset, SPLIT_KEYS)
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.shape[1:] != image_shape or y.shape != (x.shape[:1] + label_shape):
            raise ImageReadError(
                f"'{file}' is not {article} {dataset} file: x_{split} has shape {x.shape}, y_{split} {y.shape}; "
                f"expected {_shape_text(image_shape)} and {_shape_text(label_shape)}."
            )
    out = {k: as_uint8(a, file, k, labels=k.startswith("y")) for k, a in arrays.items()}
    return (out["x_train"], out["y_train"]), (out["x_test"], out["y_test"])


def _shape_text(dims: tuple[int, ...]) -> str:
    """``(N, 28, 28)``, ``(N, 1)``, ``(N,)``: a shape with ``N`` examples, as the messages write it."""
    return f"(N, {', '.join(map(str, dims))})" if dims else "(N,)"


def read_npz(file: Path, dataset: str, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
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
                    raise _corrupt_member(file, dataset, key, exc) from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise _unreadable(file, dataset, exc) from None
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
                    raise _corrupt_member(file, dataset, key, exc) from None
                declared = math.prod(shape) * dtype.itemsize
                if declared > MAX_NPZ_ARRAY_BYTES or declared > info.file_size - header:
                    raise ImageReadError(
                        f"{dataset} file '{file}' is damaged: its array '{key}' declares shape {shape} of "
                        f"{dtype} ({declared:,} bytes) but the member holds {info.file_size - header:,} bytes "
                        f"(limit visionkit.data.MAX_NPZ_ARRAY_BYTES = {MAX_NPZ_ARRAY_BYTES:,}); "
                        "refusing to allocate it."
                    )
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise _unreadable(file, dataset, exc) from None


def _corrupt_member(file: Path, dataset: str, key: str, exc: BaseException) -> ImageReadError:
    return ImageReadError(
        f"{dataset} file '{file}' is corrupt: its member '{key}.npy' cannot be read "
        f"({type(exc).__name__}: {first_line(exc)})."
    )


def _unreadable(file: Path, dataset: str, exc: BaseException) -> ImageReadError:
    return ImageReadError(f"Could not read {dataset} file '{file}': {type(exc).__name__}: {first_line(exc)}")


def as_uint8(array: np.ndarray, file: Path | str, name: str, *, labels: bool = False) -> np.ndarray:
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
