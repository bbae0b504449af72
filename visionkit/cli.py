"""The ``visionkit`` command line.

Each sub-command lives in its own module under ``visionkit/_cli/`` and defines
``register(subparsers)``; the modules are discovered here, so ``visionkit --help``
lists every recipe without importing TensorFlow (the sub-commands import it only when
they run).
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence

from . import __version__

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="visionkit",
        description="Computer-vision training recipes on TensorFlow 2 and Keras 3.",
        epilog="Run 'visionkit COMMAND --help' for a command's options. Datasets are read "
        "from VISIONKIT_DATA when set; --sample uses the small bundled sample.",
    )
    parser.add_argument("--version", action="version", version=f"visionkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    from . import _cli

    for info in sorted(pkgutil.iter_modules(_cli.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{_cli.__name__}.{info.name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (2 for bad arguments)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from .errors import InvalidArgumentError, VisionkitError

    try:
        return int(args.func(args) or 0)
    except InvalidArgumentError as exc:
        print(f"visionkit {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except VisionkitError as exc:
        print(f"visionkit {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"visionkit {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
