"""Image file headers: EXIF orientation sniffed from JPEG/PNG segments, and TensorFlow's decode check.

What [`image_folder`][visionkit.data.image_folder] learns about each file before training:
its orientation (read cheaply from the header), and whether the TensorFlow decoder the
dataset uses can decode it (and if not, why).
"""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

_TF_FORMATS = {"JPEG", "PNG", "GIF", "BMP"}

_ORIENTATION_TAG = 0x0112


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


def orientations(files: list[str]) -> list[int]:
    """The EXIF orientation of each file, as ``load_image`` applies it."""
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


def bad_reason(path: str) -> str:
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


def tf_unreadable(files: list[str]) -> list[int]:
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
