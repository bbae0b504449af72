"""The explanation sub-commands' shared parts: a ``MODEL`` sub-command, loading
``.keras`` models and images, the library's defaults (private)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import numpy as np

from ._common import defaults_of


def add_model_command(
    sub: argparse._SubParsersAction,
    name: str,
    *,
    help: str,
    description: str,
    run: Callable[[argparse.Namespace], int],
    output: str,
    output_help: str,
    rescale: bool = True,
    model_optional: bool = False,
) -> argparse.ArgumentParser:
    """Add sub-command ``name`` reading a saved ``.keras`` model.

    It takes the positional ``MODEL`` (the caller adds its further positionals
    after it), ``-o/--output`` defaulting to ``output``, ``--rescale`` unless
    ``rescale`` is False, and runs ``run(args)``. With ``model_optional`` ``MODEL`` may
    be left out (the command then builds a model of its own, e.g. ``--backbone``).
    """
    p = sub.add_parser(name, help=help, description=description)
    p.add_argument("model", metavar="MODEL", nargs="?" if model_optional else None, help="a .keras model file")
    p.add_argument("-o", "--output", default=output, help=f"{output_help} (default: %(default)s)")
    p.add_argument("--unsafe-load", action="store_true",
                   help="load a model holding Python code (Lambda layers): that code runs, so only for files "
                   "you trust (default: refuse such models)")
    if rescale:
        add_model_options(p)
    p.set_defaults(func=run)
    return p


def default_of(function: Callable[..., Any], parameter: str) -> Any:
    """The default value of ``function``'s keyword ``parameter`` (the library's, not a copy)."""
    return defaults_of(function)[parameter]


def load_model(path: str, *, unsafe: bool = False, command: str = "") -> Any:
    """Load a ``.keras`` model with [`training.load_model`][visionkit.training.load_model].

    Safe mode unless ``unsafe`` (``--unsafe-load``), which warns on stderr first. Raises
    [`InvalidArgumentError`][visionkit.errors.InvalidArgumentError] naming the file when it
    cannot be loaded (a refusal of Python code names ``--unsafe-load``), and
    [`DataNotFoundError`][visionkit.errors.DataNotFoundError] when it is missing.
    """
    from ..errors import InvalidArgumentError
    from ..training import load_model as load
    from ._common import stderr_line

    if unsafe:
        stderr_line(command, "warning", f"--unsafe-load: '{path}' may run Python code stored in it "
                    "(Lambda layers); use it only with files you trust.")
        return load(path, safe_mode=False)
    try:
        return load(path)
    except InvalidArgumentError as exc:
        if "safe_mode" not in str(exc):
            raise
        raise InvalidArgumentError(
            f"Refused to load '{path}': it holds Python code (a Lambda layer or a custom function), which "
            "could run anything. If you trust the file, rerun with --unsafe-load."
        ) from None


def load_images(model: Any, paths: list[str], *, rescale: float) -> np.ndarray:
    """Read images at the model's input size and channels, times ``rescale``."""
    from ..data import load_image

    shape = tuple(model.inputs[0].shape[1:]) if model.inputs else (None, None, 3)
    size = shape[:2] if len(shape) == 3 and None not in shape[:2] else None
    out = []
    for p in paths:
        img = load_image(p, size=size)
        if len(shape) == 3 and shape[-1] == 1:
            img = (img @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
        out.append(img * rescale)
    if size is None and len({im.shape for im in out}) > 1:
        return np.asarray(out, dtype=object)
    return np.stack(out).astype(np.float32)


def add_model_options(p: Any) -> None:
    p.add_argument(
        "--rescale",
        type=float,
        default=1.0,
        help="multiply pixel values (0-255) by this before the model, e.g. 0.00392 for 1/255 "
        "(default 1: the model takes raw pixels)",
    )
