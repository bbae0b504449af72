"""Image file headers: format, size and EXIF orientation sniffed from the first bytes, and TensorFlow's decode check.

What [`image_folder`][visionkit.data.image_folder] learns about each file before training,
without decoding it: its format (magic bytes), its size (JPEG SOF, PNG IHDR, GIF screen,
BMP info header), its orientation, and whether it looks whole (every JPEG segment up to
the scan present and an end-of-image marker, a PNG ending in ``IEND``, a GIF in its
trailer, a BMP as long as its header says). Only the files that fail those checks are
decoded by TensorFlow (``tf_unreadable``) to confirm and explain the failure.
"""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

_TF_FORMATS = {"JPEG", "PNG", "GIF", "BMP"}

_ORIENTATION_TAG = 0x0112

#: JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic): they hold the size.
_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
#: How far from its end a JPEG's end-of-image marker may sit (padding some cameras add).
_JPEG_TAIL = 4096

#: A sniffed file: ``(height, width, orientation, suspect, kind)``; a suspect file gets a full decode check.
Sniffed = tuple[int, int, int, bool, int]
#: ``kind`` codes: the format the magic bytes say.
KINDS = {"unknown": 0, "jpeg": 1, "png": 2, "gif": 3, "bmp": 4}


def sniff(path: str) -> Sniffed:
    """Format, size, orientation and wholeness of ``path`` from its bytes, without decoding.

    Returns ``(height, width, orientation, suspect, kind)``: the stored size (before the
    EXIF orientation), the orientation as ``load_image`` applies it, whether the file
    failed a check (not a JPEG/PNG/GIF/BMP, a header cut short or broken, no end marker)
    and must be decoded to know, and its format (``KINDS``). Never raises: an unreadable
    file is a suspect.
    """
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            magic = fh.read(26)
            if magic[:2] == b"\xff\xd8":
                kind = 1
                height, width, whole, tagged = _sniff_jpeg(fh, size)
            elif magic[:8] == _PNG_MAGIC:
                kind = 2
                height, width, whole, tagged = _sniff_png(fh, magic, size)
            elif magic[:6] in (b"GIF87a", b"GIF89a"):
                kind, tagged = 3, False
                width, height = int.from_bytes(magic[6:8], "little"), int.from_bytes(magic[8:10], "little")
                fh.seek(-1, os.SEEK_END)
                whole = fh.read(1) == b"\x3b"
            elif magic[:2] == b"BM" and len(magic) == 26:
                kind, tagged = 4, False
                width = abs(int.from_bytes(magic[18:22], "little", signed=True))
                height = abs(int.from_bytes(magic[22:26], "little", signed=True))
                whole = int.from_bytes(magic[2:6], "little") <= size
            else:
                return 0, 0, 1, True, 0
    except (OSError, ValueError):
        return 0, 0, 1, True, 0
    orientation = _orientation(path) if tagged else 1  # PIL opens only files with EXIF/XMP metadata
    return height, width, orientation, not whole or height <= 0 or width <= 0, kind


def _sniff_jpeg(fh: Any, size: int) -> tuple[int, int, bool, bool]:
    """``(height, width, whole, tagged)`` of a JPEG read past its SOI: segments walked up to
    the scan; ``tagged``: an APP1 (EXIF or XMP) segment, where an orientation may be."""
    fh.seek(2)
    height = width = 0
    tagged = False
    while True:
        head = fh.read(4)
        if len(head) < 4 or head[0] != 0xFF:
            return height, width, False, tagged
        marker = head[1]
        if marker == 0xFF:  # fill byte
            fh.seek(-3, os.SEEK_CUR)
            continue
        length = int.from_bytes(head[2:], "big")
        if length < 2 or fh.tell() - 2 + length > size:
            return height, width, False, tagged  # a segment cut short
        tagged = tagged or marker == 0xE1
        if marker in _SOF_MARKERS:
            frame = fh.read(5)
            height, width = int.from_bytes(frame[1:3], "big"), int.from_bytes(frame[3:5], "big")
            fh.seek(length - 7, os.SEEK_CUR)
        elif marker == 0xDA:  # start of scan: the pixels follow; the file must end with EOI
            start = max(fh.tell(), size - _JPEG_TAIL)
            fh.seek(start)
            return height, width, height > 0 and b"\xff\xd9" in fh.read(), tagged
        else:
            fh.seek(length - 2, os.SEEK_CUR)


def _sniff_png(fh: Any, magic: bytes, size: int) -> tuple[int, int, bool, bool]:
    """``(height, width, whole, tagged)`` of a PNG: its IHDR, an IEND chunk at the end, and
    whether a chunk may hold an orientation (``eXIf``, EXIF or XMP text)."""
    if magic[12:16] != b"IHDR" or size < 8 + 25 + 12:
        return 0, 0, False, False
    width = int.from_bytes(magic[16:20], "big")
    height = int.from_bytes(fh.read(4), "big")
    fh.seek(-12, os.SEEK_END)
    whole = fh.read(12) == _PNG_END
    fh.seek(8)
    return height, width, whole, _png_has_orientation_chunk(fh)


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


def sniff_many(files: list[str]) -> list[Sniffed]:
    """``sniff`` each file, in order."""
    return [sniff(f) for f in files]


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
