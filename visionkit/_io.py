"""Atomic file output (private).

Every file visionkit writes goes through ``atomic_path``: the data is written to a
temporary file in the destination folder and renamed over the target only once it is
complete, so a crash or a full disk never leaves a half-written file behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["atomic_path", "atomic_save", "save_figure", "write_json"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` on success.

    Parent folders are created. On error the temporary file is removed and ``path``
    is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def atomic_save(path: str | os.PathLike[str], save: Callable[[str], Any]) -> Path:
    """Write a file with ``save(tmp_name)`` (e.g. ``model.save``) atomically.

    ``save`` is called with a temporary name in the destination folder that ends like
    ``path`` (Keras picks the format from the ending: ``.keras``, ``.weights.h5``),
    and does not exist yet (Keras refuses to overwrite silently in some versions). The
    file is renamed over ``path`` only once it is complete.
    """
    path = Path(path)
    suffix = "".join(path.suffixes[-2:]) if path.name.endswith(".weights.h5") else path.suffix
    with atomic_path(path) as tmp:
        real = tmp.with_name(tmp.name[: -len(tmp.suffix)] + suffix) if suffix else tmp
        tmp.unlink()
        try:
            save(str(real))
            if real != tmp:
                os.replace(real, tmp)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                real.unlink()
            raise
    return path


def _umask() -> int:
    """The process umask, read without changing it where the platform allows."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def save_figure(figure: Any, path: str | os.PathLike[str], *, dpi: int = 100) -> Path:
    """Save a matplotlib figure atomically; the format follows the extension."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight")
    return path


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented JSON atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")
    return path


def _json_default(obj: Any) -> Any:
    try:
        import numpy as np

        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")
