"""Helpers shared by the sub-commands (private)."""

from __future__ import annotations

import argparse
from pathlib import Path


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
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


def weights_arg(text: str) -> str | None:
    """argparse type for --weights: 'imagenet', 'none' or a path."""
    if text.lower() == "none":
        return None
    if text == "imagenet":
        return text
    if not Path(text).is_file():
        raise argparse.ArgumentTypeError(f"expected 'imagenet', 'none' or an existing weights file, got {text!r}")
    return text


def add_output(parser: argparse.ArgumentParser, default: str) -> None:
    """Add ``-o/--output``."""
    parser.add_argument("-o", "--output", default=default, help=f"output folder or file (default: {default})")


def add_progress(parser: argparse.ArgumentParser) -> None:
    """Add ``--quiet`` (no progress bars)."""
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
