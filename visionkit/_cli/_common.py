"""Helpers shared by the sub-commands (private)."""

from __future__ import annotations

import argparse
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0 (a seed, a count that may be 0)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def number_in(low: float, high: float, *, open_low: bool = False, open_high: bool = False) -> Callable[[str], float]:
    """argparse type factory: a number in ``[low, high]`` (either end open on request)."""
    shown = f"{'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        above = value > low if open_low else value >= low
        below = value < high if open_high else value <= high
        if not (above and below):
            raise argparse.ArgumentTypeError(f"expected a number in {shown}, got {text!r}")
        return value

    return parse


def weights_arg(text: str) -> str | None:
    """argparse type for --weights: 'imagenet', 'none' or a path.

    A path is not checked here: a missing file is a missing input (exit 1, see
    ``require_inputs``), not a usage error.
    """
    if text.lower() == "none":
        return None
    return text


def require_inputs(*inputs: tuple[str, str | None, str]) -> None:
    """Check input paths before any work: ``(label, path, kind)`` with kind ``file``, ``folder`` or ``any``.

    ``path`` None is skipped, and so is ``--weights imagenet``. Raises
    [`DataNotFoundError`][visionkit.errors.DataNotFoundError] naming the first path that
    is missing (or of the wrong kind) and the argument it came from.
    """
    from ..errors import DataNotFoundError

    for label, path, kind in inputs:
        if path is None or (label == "--weights" and path == "imagenet"):
            continue
        p = Path(path)
        if not p.exists():
            raise DataNotFoundError(f"{label}: no such {'file or folder' if kind == 'any' else kind}: '{p}'")
        if kind == "file" and not p.is_file():
            raise DataNotFoundError(f"{label}: expected a file, '{p}' is a folder")
        if kind == "folder" and not p.is_dir():
            raise DataNotFoundError(f"{label}: expected a folder, '{p}' is a file")


def add_output(parser: argparse.ArgumentParser, default: str) -> None:
    """Add ``-o/--output``."""
    parser.add_argument("-o", "--output", default=default, help=f"output folder or file (default: {default})")


def stderr_line(command: str, kind: str, message: str) -> None:
    """Print ``visionkit COMMAND: KIND: MESSAGE`` on one line of stderr (the command line's own channel)."""
    text = " ".join(str(message).split())
    print(f"visionkit {command}: {kind}: {text}", file=sys.stderr)


def usage_error(parser: argparse.ArgumentParser, message: str) -> int:
    """Report a usage error found after parsing as argparse does (usage line, then the error); return 2."""
    parser.print_usage(sys.stderr)
    print(f"{parser.prog}: error: {message}", file=sys.stderr)
    return 2


def check_image_output(parser: argparse.ArgumentParser, output: str) -> int:
    """0 when ``output`` ends like an image file visionkit writes, else a usage error (2)."""
    from ..data import SAVE_FORMATS

    if Path(output).suffix.lower() in SAVE_FORMATS:
        return 0
    return usage_error(parser, f"argument -o/--output: expected a file name ending in one of "
                       f"{sorted(SAVE_FORMATS)}, got {output!r}")


def output_names(inputs: list[str], suffix: str) -> list[str]:
    """One distinct output file name per input path: ``<stem><suffix>``, never the same twice.

    Inputs whose stems collide (``a/cat.png``, ``b/cat.png``, ``a/cat.jpg``) get their
    parent folder and then their extension added (``a_cat_png<suffix>``), and a number
    as a last resort (the same path given twice), so no output replaces another.
    """
    import re

    def clean(text: str) -> str:
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "image"

    paths = [Path(p) for p in inputs]
    names = [clean(p.stem) for p in paths]
    for widen in ("folder", "extension"):
        lowered = [n.lower() for n in names]  # case-insensitive file systems
        for i, n in enumerate(list(names)):
            if lowered.count(n.lower()) > 1:
                parent, ext = clean(paths[i].parent.name) if paths[i].parent.name else "", clean(paths[i].suffix)
                names[i] = (f"{parent}_{n}" if parent else n) if widen == "folder" else f"{n}_{ext}"
    reserved = {n.lower() for n in names}  # a number never takes another input's own name
    used: set[str] = set()
    out = []
    for n in names:
        name, k = n, 1
        while name.lower() in used or (k > 1 and name.lower() in reserved):
            k += 1
            name = f"{n}_{k}"
        used.add(name.lower())
        out.append(name)
    return [n + suffix for n in out]


def add_progress(parser: argparse.ArgumentParser) -> None:
    """Add ``--quiet`` (no progress bars)."""
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def image_size(minimum: int = 1) -> Callable[[str], tuple[int, int]]:
    """argparse type factory: ``N`` or ``HxW`` (also ``H,W``) with sides >= ``minimum``."""

    def parse(text: str) -> tuple[int, int]:
        parts = text.lower().replace(",", "x").split("x")
        try:
            values = [int(p) for p in parts]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected N or HxW, got {text!r}") from None
        if len(values) == 1:
            values *= 2
        if len(values) != 2 or min(values) < minimum:
            raise argparse.ArgumentTypeError(f"expected N or HxW with sides >= {minimum}, got {text!r}")
        return values[0], values[1]

    return parse


def defaults_of(function: Callable[..., Any]) -> dict[str, Any]:
    """The default value of every parameter of ``function`` that has one (the library's, not copies)."""
    return {n: p.default for n, p in inspect.signature(function).parameters.items() if p.default is not p.empty}
