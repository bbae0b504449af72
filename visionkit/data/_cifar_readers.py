"""CIFAR-10's six source formats: one reader each, and the table that finds them.

Readers: the decoded ``.npz`` cache (`read_cifar_npz`), the bundled sample
(`read_cifar_sample`), a JPEG tree (`read_cifar_tree`), a ``.tar.gz`` of that tree
(`read_cifar_jpeg_tar`), Keras' ``cifar-10-batches-py`` folder (`read_cifar_batches_dir`)
and the official ``cifar-10-python.tar.gz`` (`read_cifar_python_tar`). ``SOURCES``
pairs each place a source may be with its probe and reader; `find_cifar` walks it.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from PIL import Image

from ..errors import DataNotFoundError, ImageReadError
from . import _sources as S
from ._npz import as_uint8, read_splits

Splits = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]

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


#: Largest image file a CIFAR-10 JPEG archive may hold, in bytes (1 MiB; a 32x32 image takes a few KiB).
#: Checked from the member's tar header before it is read.
MAX_ARCHIVE_MEMBER_BYTES: int = 2**20

_CIFAR_BATCHES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch")


def read_cifar_npz(file: Path) -> Splits:
    """The decoded-dataset cache (or any Keras-style CIFAR-10 ``.npz``), checked."""
    return read_splits(file, "CIFAR-10", (32, 32, 3), (1,))


def read_cifar_sample(file: Path) -> Splits:
    """The bundled sample: the JPEG bytes of each split in one array, with their offsets."""
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


def _assemble(items: list[tuple[str, int, str, bytes]], source: Path) -> Splits:
    items.sort(key=lambda t: (t[0], t[1], t[2]))
    with ThreadPoolExecutor(max_workers=S.workers()) as pool:
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


def read_cifar_tree(root: Path) -> Splits:
    """A ``{train,test}/<class>/*.jpg`` tree."""
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


def read_cifar_archive(file: Path) -> Splits:
    """Read a CIFAR-10 archive member by member, in memory: nothing is ever extracted to disk.

    An archive holding ``data_batch_1`` is the Python archive, else a JPEG tree.
    """
    import zlib

    try:
        with tarfile.open(file, "r:*") as tar:
            if any(n.endswith("data_batch_1") for n in tar.getnames()):
                return read_cifar_python_tar(file, tar)
            return read_cifar_jpeg_tar(file, tar)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise ImageReadError(
            f"Could not read CIFAR-10 archive '{file}' (damaged or truncated?): {type(exc).__name__}: {S.first_line(exc)}"
        ) from None


def read_cifar_jpeg_tar(file: Path, tar: tarfile.TarFile) -> Splits:
    """A ``.tar.gz`` of the ``{train,test}/<class>/*.jpg`` tree, read from the open ``tar``."""
    class_index = {c: i for i, c in enumerate(CIFAR10_CLASSES)}
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
        raise ImageReadError(f"'{label}' is not a readable CIFAR-10 batch file: {type(exc).__name__}: {S.first_line(exc)}") from None
    if data.ndim != 2 or data.shape[1] != 3072 or labels.shape != (data.shape[0],):
        raise ImageReadError(
            f"'{label}' is not a CIFAR-10 batch file: data has shape {data.shape}, labels {labels.shape}; "
            "expected (N, 3072) and (N,)."
        )
    data = as_uint8(data, label, "data").reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(data), as_uint8(labels, label, "labels", labels=True).reshape(-1, 1)


def read_cifar_batches_dir(p: Path) -> Splits:
    """Keras' ``cifar-10-batches-py`` folder: five pickled training batches and ``test_batch``."""
    parts = []
    for name in _CIFAR_BATCHES:
        file = p / name
        if not file.is_file():
            raise DataNotFoundError(f"CIFAR-10 folder '{p}' lacks '{name}'.")
        with open(file, "rb") as fh:
            parts.append(_load_batch(fh, str(file)))
    return _join_batches(parts)


def _join_batches(parts: list[tuple[np.ndarray, np.ndarray]]) -> Splits:
    """The five training batches concatenated, and the test batch."""
    return (np.concatenate([x for x, _ in parts[:5]]), np.concatenate([y for _, y in parts[:5]])), parts[5]


def read_cifar_python_tar(file: Path, tar: tarfile.TarFile) -> Splits:
    """The official ``cifar-10-python.tar.gz``, from the open ``tar``; unpickled only if its SHA-256 is the official one."""
    digest = hashlib.sha256()
    with open(file, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    if digest.hexdigest() != S.CIFAR_PY_SHA256:
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


class CifarSource(NamedTuple):
    """A CIFAR-10 source found on disk: its kind, its path, its reader, and whether its decode is cached."""

    kind: str
    path: Path
    read: Callable[[Path], Splits]
    cached: bool


def _probe_batches(p: Path) -> Path | None:
    """Keras' ``cifar-10-batches-py`` folder, or a folder holding it."""
    for folder in (p, p / "cifar-10-batches-py"):
        if (folder / "data_batch_1").is_file():
            return folder
    return None


def _probe_tree(p: Path) -> Path | None:
    """A ``{train,test}/<class>/*.jpg`` tree, or a folder holding it as ``cifar10/``."""
    if (p / "train").is_dir() and (p / "test").is_dir():
        return p
    if (p / "cifar10" / "train").is_dir():
        return p / "cifar10"
    return None


def _probe_archive(p: Path) -> Path | None:
    """A ``.tar.gz``/``.tgz``/``.tar`` file, or a folder holding one of the known archive names."""
    if p.is_file():
        return p if p.name.endswith((".tar.gz", ".tgz", ".tar")) else None
    for name in ("cifar10-jpeg.tar.gz", "cifar-10-python.tar.gz"):
        if (p / name).is_file():
            return p / name
    return None


#: Where a CIFAR-10 source may be, in the order looked for: ``(kind, probe, reader, cached)``.
#: A probe gets a path (a file, or a folder to look in) and returns the source's path or None;
#: decoded JPEG sources are ``cached`` in [`cache_dir`][visionkit.data.cache_dir].
SOURCES: tuple[tuple[str, Callable[[Path], Path | None], Callable[[Path], Splits], bool], ...] = (
    ("batches", _probe_batches, read_cifar_batches_dir, False),
    ("tree", _probe_tree, read_cifar_tree, True),
    ("tar", _probe_archive, read_cifar_archive, True),
)


def source(kind: str, path: Path) -> CifarSource:
    """The source of ``kind`` at ``path`` (known, not probed)."""
    _, _, read, cached = next(entry for entry in SOURCES if entry[0] == kind)
    return CifarSource(kind, path, read, cached)


def find_cifar(p: Path) -> CifarSource | None:
    """The first source of ``SOURCES`` found at ``p`` (a file or a folder), or None."""
    if not p.exists():
        return None
    for kind, probe, read, cached in SOURCES:
        found = probe(p)
        if found is not None:
            return CifarSource(kind, found, read, cached)
    return None
