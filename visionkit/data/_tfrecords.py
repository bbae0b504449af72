"""Sharded TFRecords of an image folder: `write_tfrecords` and `read_tfrecords`.

For folders too large to list on every run: the folder is listed and checked once, every
image decoded once (so the records hold only images TensorFlow decodes), and written in
shards of ``shard_size`` images, each shard atomically (a shard is whole or absent), with
a JSON manifest (class names, image size, shards with their counts and byte sizes)
written last. Writing resumes: shards already written for the same listing and options
are kept. ``read_tfrecords`` refuses a manifest that is not what ``write_tfrecords``
writes, or whose shards are missing or of another size.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import _io
from .. import _validate as V
from ..errors import DataNotFoundError, ImageReadError
from . import _index as X
from ._folders import list_folder
from ._pipeline import COLOR_CHANNELS, image_decoder, label_encoder

if TYPE_CHECKING:  # pragma: no cover
    import tensorflow as tf

#: The manifest's file name in a TFRecords folder.
MANIFEST = "manifest.json"
#: The list of source files (relative paths, in record order) beside the manifest.
FILES = "files.json"
_FORMAT = "visionkit.tfrecords"
_VERSION = 1
_SHARD = re.compile(r"shard-\d{5}\.tfrecord")
#: Largest manifest read (bytes): a manifest is small; a larger file is not one.
_MAX_MANIFEST_BYTES = 64 * 1024 * 1024


def write_tfrecords(
    directory: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    shard_size: int = 2048,
    image_size: int | tuple[int, int] | None = None,
    class_names: Sequence[str] | None = None,
    follow_links: bool = False,
    on_error: str = "raise",
    progress: bool = True,
) -> Path:
    """Write an image folder as sharded TFRecords, for [`read_tfrecords`][visionkit.data.read_tfrecords].

    Parameters
    ----------
    directory : str or os.PathLike
        A class-per-folder tree, as [`image_folder`][visionkit.data.image_folder] reads it.
    out_dir : str or os.PathLike
        The folder to write: ``shard-00000.tfrecord``, ... and ``manifest.json``.
    shard_size : int, default 2048
        Images per shard (aim for shards of 100 to 200 MB).
    image_size : int or (height, width), optional
        ``None`` stores each file's own bytes (read later at any size); a size stores
        the images oriented and resized (bilinear) to it, as JPEG quality 95: smaller
        and faster to read, but fixed.
    class_names, follow_links, on_error, progress
        As in [`image_folder`][visionkit.data.image_folder].

    Returns
    -------
    pathlib.Path
        The manifest written.

    Raises
    ------
    ImageReadError
        Unreadable images with ``on_error="raise"``.
    """
    import tensorflow as tf

    shard_size = V.integer("shard_size", shard_size, minimum=1)
    size = None if image_size is None else V.size2d("image_size", image_size)
    files, labels, orientations, names = list_folder(
        directory, class_names=class_names, follow_links=follow_links, on_error=on_error, check="decode",
        progress=progress,
    )
    root, out = Path(directory), Path(out_dir)
    rel = X.relative(files, root)
    key = hashlib.sha256(repr((X.listing_digest(rel, X.stat_files(files)), shard_size, size)).encode()).hexdigest()
    done = _resumable(out, key)
    encode = _encoder(size, any(o != 1 for o in orientations))
    shards = []
    for start in range(0, len(files), shard_size):
        name = f"shard-{start // shard_size:05d}.tfrecord"
        stop = min(start + shard_size, len(files))
        if done.get(name, {}).get("count") == stop - start and (out / name).is_file() \
                and (out / name).stat().st_size == done[name]["bytes"]:
            shards.append(done[name])
            continue
        with _io.atomic_path(out / name) as tmp, tf.io.TFRecordWriter(str(tmp)) as writer:
            for i in range(start, stop):
                writer.write(_example(encode(files[i], orientations[i]), labels[i], orientations[i] if size is None else 1, rel[i]))
        shards.append({"file": name, "count": stop - start, "bytes": (out / name).stat().st_size})
        _io.write_json(out / ".progress.json", {"key": key, "shards": shards})
    manifest = {
        "format": _FORMAT, "version": _VERSION, "class_names": names, "count": len(files),
        "image_size": None if size is None else list(size), "source": str(root.resolve()), "shards": shards,
    }
    _io.write_json(out / FILES, rel)
    path = _io.write_json(out / MANIFEST, manifest)
    (out / ".progress.json").unlink(missing_ok=True)
    return path


def _resumable(out: Path, key: str) -> dict[str, dict[str, Any]]:
    """Shards an interrupted run of the same listing and options already wrote (untrusted: checked)."""
    try:
        progress = json.loads((out / ".progress.json").read_text())
        if progress.get("key") != key:
            return {}
        return {s["file"]: s for s in _checked_shards(progress["shards"], out, require=False)}
    except (OSError, ValueError, KeyError, TypeError, AttributeError, ImageReadError):
        return {}


def _encoder(size: tuple[int, int] | None, oriented: bool) -> Any:
    """``encode(path, orientation) -> bytes``: the file itself, or the oriented, resized JPEG."""
    import tensorflow as tf

    if size is None:
        return lambda path, orientation: Path(path).read_bytes()
    decode = tf.function(image_decoder(color_mode="rgb", image_size=size, crop=False, pad=False, oriented=oriented))

    def encode(path: str, orientation: int) -> bytes:
        img = decode(tf.io.read_file(path), tf.constant(orientation, tf.int32))
        return tf.io.encode_jpeg(tf.cast(tf.clip_by_value(tf.round(img), 0, 255), tf.uint8), quality=95).numpy()

    return encode


def _example(image: bytes, label: int, orientation: int, path: str) -> bytes:
    import tensorflow as tf

    feature = {
        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image])),
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
        "orientation": tf.train.Feature(int64_list=tf.train.Int64List(value=[orientation])),
        "path": tf.train.Feature(bytes_list=tf.train.BytesList(value=[path.encode("utf-8", "surrogateescape")])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of a TFRecords folder, checked; raise ``ImageReadError`` naming what is wrong."""
    folder = Path(path)
    file = folder / MANIFEST if folder.is_dir() else folder
    if not file.is_file():
        raise DataNotFoundError(f"No TFRecords manifest at '{file}' (argument `path`): write one with data.write_tfrecords.")
    if file.stat().st_size > _MAX_MANIFEST_BYTES:
        raise ImageReadError(f"'{file}' is {file.stat().st_size} bytes: too large for a TFRecords manifest.")
    try:
        m = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ImageReadError(f"TFRecords manifest '{file}' is not valid JSON: {exc}.") from None

    def bad(what: str) -> ImageReadError:
        return ImageReadError(f"TFRecords manifest '{file}' is damaged or edited: {what}. Write it again with data.write_tfrecords.")

    if not isinstance(m, dict) or m.get("format") != _FORMAT or m.get("version") != _VERSION:
        raise bad(f"expected format {_FORMAT!r} version {_VERSION}")
    names = m.get("class_names")
    if names is not None and (not isinstance(names, list) or not all(isinstance(c, str) for c in names)):
        raise bad("`class_names` must be a list of strings or null")
    size = m.get("image_size")
    if size is not None and not (isinstance(size, list) and len(size) == 2 and all(type(v) is int and v > 0 for v in size)):
        raise bad("`image_size` must be null or [height, width] of positive integers")
    if not isinstance(m.get("source"), str):
        raise bad("`source` must be the folder the records were written from")
    shards = _checked_shards(m.get("shards"), file.parent, require=True, bad=bad)
    if type(m.get("count")) is not int or m["count"] != sum(s["count"] for s in shards) or m["count"] < 1:
        raise bad("`count` must be the number of images in the shards")
    return {**m, "shards": shards, "folder": file.parent}


def _checked_shards(shards: Any, folder: Path, *, require: bool, bad: Any = None) -> list[dict[str, Any]]:
    """The shard entries, each a plain file name, a positive count and the byte size found on disk."""
    bad = bad or (lambda what: ImageReadError(what))
    if not isinstance(shards, list) or not shards:
        raise bad("`shards` must be a non-empty list")
    for s in shards:
        if not (isinstance(s, dict) and set(s) == {"file", "count", "bytes"} and isinstance(s["file"], str)
                and _SHARD.fullmatch(s["file"]) and type(s["count"]) is int and s["count"] > 0
                and type(s["bytes"]) is int and s["bytes"] > 0):
            raise bad(f"shard entry {str(s)[:200]} is not {{'file': 'shard-NNNNN.tfrecord', 'count': n, 'bytes': n}}")
        shard = folder / s["file"]
        if require and (not shard.is_file() or shard.stat().st_size != s["bytes"]):
            found = shard.stat().st_size if shard.is_file() else "missing"
            raise bad(f"shard '{shard}' should be {s['bytes']} bytes; found {found}")
    return shards


def read_tfrecords(
    path: str | os.PathLike[str],
    *,
    label_mode: str | None = "int",
    color_mode: str = "rgb",
    image_size: int | tuple[int, int] = (150, 150),
    batch_size: int | None = 32,
    shuffle: bool = True,
    seed: int | None = None,
    crop_to_aspect_ratio: bool = False,
    pad_to_aspect_ratio: bool = False,
    cache: bool | str | None = None,
) -> tf.data.Dataset:
    """Read TFRecords written by [`write_tfrecords`][visionkit.data.write_tfrecords] as ``image_folder`` reads the folder.

    Parameters
    ----------
    path : str or os.PathLike
        The TFRecords folder (or its ``manifest.json``).
    label_mode, color_mode, image_size, batch_size, shuffle, seed, crop_to_aspect_ratio, pad_to_aspect_ratio
        As in [`image_folder`][visionkit.data.image_folder]. With ``shuffle=False`` the
        images come in the folder's listing order.
    cache : bool, "memory" or str, optional
        ``True``/``"memory"``: cache the decoded images in memory; a path: on disk.

    Returns
    -------
    tf.data.Dataset
        The batches ``image_folder`` yields (images float32 ``(batch, h, w, channels)``
        in ``[0, 255]``, labels as ``label_mode``), with ``class_names`` and
        ``file_paths`` (the source files, in listing order).

    Raises
    ------
    DataNotFoundError
        No manifest at ``path``.
    ImageReadError
        A damaged or edited manifest, or a shard missing or of another size.
    """
    import tensorflow as tf

    m = read_manifest(path)
    V.one_of("label_mode", label_mode, ("int", "categorical", "binary", None))
    V.one_of("color_mode", color_mode, tuple(COLOR_CHANNELS))
    size = V.size2d("image_size", image_size)
    batch_size = V.integer("batch_size", batch_size, minimum=1, allow_none=True)
    names = m["class_names"]
    if m["class_names"] is None:
        label_mode = None
    if label_mode == "binary" and len(names or ()) != 2:
        raise V.fail("label_mode", '"binary" only for exactly 2 classes', label_mode)
    decode = image_decoder(color_mode=color_mode, image_size=size, crop=crop_to_aspect_ratio, pad=pad_to_aspect_ratio, oriented=True)
    encode = label_encoder(label_mode, len(names or ()))
    features = {k: tf.io.FixedLenFeature([], tf.string if k in ("image", "path") else tf.int64)
                for k in ("image", "label", "orientation", "path")}

    def parse(record: tf.Tensor) -> Any:
        ex = tf.io.parse_single_example(record, features)
        img = decode(ex["image"], tf.cast(ex["orientation"], tf.int32))
        return img if label_mode is None else (img, encode(tf.cast(ex["label"], tf.int32)))

    n = m["count"]
    shards = [str(m["folder"] / s["file"]) for s in m["shards"]]
    ds = tf.data.TFRecordDataset(shards, num_parallel_reads=None if not shuffle else min(len(shards), 8))
    cache_to = None if cache in (None, False) else ("" if cache in (True, "memory") else os.fspath(cache))
    if shuffle and cache_to is None:
        ds = ds.shuffle(min(n, 10_000), seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=not shuffle)
    if cache_to is not None:
        ds = ds.cache(cache_to)
        if shuffle:
            ds = ds.shuffle(n if cache_to == "" else min(n, 10_000), seed=seed, reshuffle_each_iteration=True)
    if batch_size is not None:
        ds = ds.batch(batch_size)
    ds = ds.apply(tf.data.experimental.assert_cardinality(-(-n // batch_size) if batch_size else n))
    ds = ds.prefetch(tf.data.AUTOTUNE)
    ds.class_names = names
    ds.file_paths = _source_paths(m)
    return ds


def _source_paths(m: dict[str, Any]) -> list[str]:
    """The source file of every record, in order (``files.json``, checked against the manifest)."""
    file = m["folder"] / FILES
    try:
        rel = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        rel = None
    if not isinstance(rel, list) or len(rel) != m["count"] or not all(isinstance(p, str) for p in rel):
        raise ImageReadError(f"'{file}' is missing, damaged or edited: expected the {m['count']} relative paths of the records.")
    source = str(m["source"])
    return [os.path.join(source, p) for p in rel]
