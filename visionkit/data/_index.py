"""The per-folder index of [`image_folder`][visionkit.data.image_folder]: what the header sniff
learned about every file, cached in [`cache_dir`][visionkit.data.cache_dir] and reused while
the folder is unchanged.

One file per folder, ``<cache_dir>/folders/<digest of the folder's real path>.npz``: the
relative paths, and for each file its size, ``mtime_ns``, stored height and width, EXIF
orientation and whether TensorFlow can decode it. A file whose size and ``mtime_ns`` are
those of the index is not read again; any other is sniffed. The index is untrusted data:
read without pickle, every array checked (kind, shape, ranges, the folder it names), and
ignored (then rebuilt) when anything is off. It is written atomically.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .. import _io
from . import _headers as H
from . import _sources as S

#: Version of the index layout; an index of another version is rebuilt.
INDEX_VERSION = 2
_KEYS = {"version", "root", "digest", "paths", "meta"}
#: Columns of ``meta``: size, mtime_ns, height, width, orientation, bad (TensorFlow cannot decode it), kind.
_COLUMNS = 7
_CHUNK = 512
_STAT_CHUNK = 4096


def index_path(root: Path) -> Path:
    """Where the index of the folder ``root`` lives."""
    key = hashlib.sha256(os.path.realpath(root).encode("utf-8", "surrogateescape")).hexdigest()[:32]
    return S.cache_dir() / "folders" / f"{key}.npz"


def relative(files: list[str], root: Path) -> list[str]:
    """The paths of ``files`` relative to ``root`` (a prefix cut for files listed under it)."""
    prefix = str(root).rstrip(os.sep) + os.sep
    cut = len(prefix)
    return [f[cut:] if f.startswith(prefix) else os.path.relpath(f, root) for f in files]


def listing_digest(rel: list[str], stats: np.ndarray) -> str:
    """SHA-256 of the listing: every relative path with its size and ``mtime_ns``."""
    text = "".join(f"{path}\0{size}\0{mtime}\n" for path, (size, mtime) in zip(rel, stats.tolist()))
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def stat_files(files: list[str]) -> np.ndarray:
    """``(n, 2)`` int64: size and ``mtime_ns`` of each file (``-1`` where it cannot be read); in threads."""
    out = np.full((len(files), 2), -1, dtype=np.int64)

    def chunk(start: int) -> None:
        rows = []
        for f in files[start:start + _STAT_CHUNK]:
            try:
                st = os.stat(f)
                rows.append((st.st_size, st.st_mtime_ns))
            except OSError:
                rows.append((-1, -1))
        out[start:start + len(rows)] = rows

    starts = range(0, len(files), _STAT_CHUNK)
    if len(starts) <= 1:
        for start in starts:
            chunk(start)
    else:
        with ThreadPoolExecutor(max_workers=S.workers()) as pool:
            list(pool.map(chunk, starts))
    return out


def file_index(
    root: Path,
    files: list[str],
    *,
    confirm: Callable[[list[str]], list[int]],
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """``(n, 5)`` int64 per file: height, width, orientation, bad, kind; from the cached index when unchanged.

    Files not in the index (or changed) are sniffed in threads; the suspects among them
    are passed to ``confirm`` (indices of those TensorFlow cannot decode). ``progress``
    is called with the number of files done after each chunk.
    """
    rel = relative(files, root)
    stats = stat_files(files)
    digest = listing_digest(rel, stats)
    path = index_path(root)
    cached = read_index(path, root)
    if cached is not None and cached[0] == digest:
        return cached[2][:, 2:]
    meta = np.zeros((len(files), _COLUMNS), dtype=np.int64)
    meta[:, :2] = stats
    todo = list(range(len(files)))
    if cached is not None:
        rows = dict(zip(cached[1], cached[2].tolist()))
        todo = []
        for i, (r, st) in enumerate(zip(rel, stats.tolist())):
            row = rows.get(r)
            if row is not None and row[:2] == st:
                meta[i] = row
            else:
                todo.append(i)
    _sniff_into(meta, files, todo, confirm, progress)
    try:
        write_index(path, root, digest, rel, meta)
    except OSError:
        pass  # a read-only cache only costs the next run the sniff
    return meta[:, 2:]


def _sniff_into(
    meta: np.ndarray, files: list[str], todo: list[int], confirm: Callable[[list[str]], list[int]],
    progress: Callable[[int], None] | None,
) -> None:
    """Sniff the files ``todo`` in threads (a chunk at a time), confirm the suspects, fill ``meta``."""
    chunks = [todo[i:i + _CHUNK] for i in range(0, len(todo), _CHUNK)]
    suspects: list[int] = []
    with ThreadPoolExecutor(max_workers=S.workers()) as pool:
        for chunk, result in zip(chunks, pool.map(lambda c: H.sniff_many([files[i] for i in c]), chunks)):
            for i, (height, width, orientation, suspect, kind) in zip(chunk, result):
                meta[i, 2:5] = height, width, orientation
                meta[i, 6] = kind
                if suspect:
                    suspects.append(i)
            if progress is not None:
                progress(len(chunk))
    if suspects:
        for j in confirm([files[i] for i in suspects]):
            meta[suspects[j], 5] = 1


def read_index(path: Path, root: Path) -> tuple[str, list[str], np.ndarray] | None:
    """``(digest, relative paths, meta)`` from the index file, or None when absent or not valid."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if set(z.files) != _KEYS:
                return None
            arrays = {k: z[k] for k in _KEYS}
    except Exception:  # any damage (a cut file, a bad zip, a pickled array): rebuild
        return None
    return _valid(arrays, root)


def _valid(a: dict[str, np.ndarray], root: Path) -> tuple[str, list[str], np.ndarray] | None:
    """The index's content if every array is what ``write_index`` writes, else None."""
    text = {k: a[k] for k in ("root", "digest", "paths")}
    if any(v.dtype != np.uint8 or v.ndim != 1 for v in text.values()):
        return None
    version, meta = a["version"], a["meta"]
    if version.dtype != np.int64 or version.shape != (1,) or int(version[0]) != INDEX_VERSION:
        return None
    try:
        if text["root"].tobytes().decode("utf-8", "surrogateescape") != os.path.realpath(root):
            return None
        digest = text["digest"].tobytes().decode("ascii")
        paths = text["paths"].tobytes().decode("utf-8", "surrogateescape").split("\0") if text["paths"].size else []
    except UnicodeDecodeError:
        return None
    if len(digest) != 64 or meta.dtype != np.int64 or meta.ndim != 2 or meta.shape != (len(paths), _COLUMNS):
        return None
    if len(paths) and (
        meta[:, 2:4].min() < 0 or meta[:, 4].min() < 1 or meta[:, 4].max() > 8 or not np.isin(meta[:, 5], (0, 1)).all()
        or meta[:, 6].min() < 0 or meta[:, 6].max() > 4
    ):
        return None
    return digest, paths, meta


def write_index(path: Path, root: Path, digest: str, rel: list[str], meta: np.ndarray) -> None:
    """Write the index atomically."""
    def as_bytes(text: str) -> np.ndarray:
        return np.frombuffer(text.encode("utf-8", "surrogateescape"), dtype=np.uint8)

    with _io.atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(
            fh, version=np.array([INDEX_VERSION], dtype=np.int64), root=as_bytes(os.path.realpath(root)),
            digest=as_bytes(digest), paths=as_bytes("\0".join(rel)), meta=meta.astype(np.int64),
        )
