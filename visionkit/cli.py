"""The ``visionkit`` command line.

Each sub-command lives in its own module under ``visionkit/_cli/`` and defines
``register(subparsers)``; the modules are discovered here, so ``visionkit --help``
lists every recipe without importing TensorFlow (the sub-commands import it only when
they run).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import pkgutil
import sys
from collections.abc import Iterator, Sequence

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
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="show TensorFlow's own log lines (oneDNN, CUDA, ...), hidden by default")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    from . import _cli

    for info in sorted(pkgutil.iter_modules(_cli.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{_cli.__name__}.{info.name}")
        module.register(sub)
    for command in sub.choices.values():  # also after the command: visionkit info --verbose
        command.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                             help="show TensorFlow's own log lines")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status.

    One rule: 2 for usage errors, which argparse reports with the usage line (a
    missing or malformed argument, an unknown command); 1 for every other error,
    a missing input file or folder included, reported on one line of stderr without
    a traceback; 130 when interrupted. TensorFlow's own log lines are silenced unless
    ``--verbose`` is given.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from ._cli._common import stderr_line

    with _tensorflow_logs(verbose=args.verbose):
        from .errors import VisionkitError

        try:
            return int(args.func(args) or 0)
        except VisionkitError as exc:
            stderr_line(args.command, "error", str(exc))
        except OSError as exc:  # a file the command reads or writes: named by the OS error
            stderr_line(args.command, "error", f"{type(exc).__name__}: {exc}")
        except KeyboardInterrupt:
            print(f"visionkit {args.command}: interrupted", file=sys.stderr)
            return 130
    return 1


@contextlib.contextmanager
def _tensorflow_logs(*, verbose: bool) -> Iterator[None]:
    """Silence TensorFlow's own log lines for one command, unless ``verbose``.

    TensorFlow's C++ side logs through absl before absl's logging is initialised, so
    its import-time lines (oneDNN, CUDA, cuInit, CPU features) reach stderr whatever
    ``TF_CPP_MIN_LOG_LEVEL`` says. So TensorFlow is imported here, and its devices
    listed, with the process's stderr (file descriptor 2) pointed at ``/dev/null``;
    ``TF_CPP_MIN_LOG_LEVEL`` defaults to 3 for the lines logged later, and the Python
    loggers ``tensorflow`` and ``absl`` show errors only (their levels are put back
    afterwards). A ``TF_CPP_MIN_LOG_LEVEL`` the user exported is kept. ``verbose``
    sets it to 0 and hides nothing.
    """
    if verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        yield
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    loggers = [logging.getLogger(name) for name in ("tensorflow", "absl")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        _import_tensorflow_muted()
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _import_tensorflow_muted() -> None:
    """Import TensorFlow and list its devices with file descriptor 2 on ``/dev/null``."""
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow as tf

        tf.config.list_physical_devices()  # CUDA's cuInit messages come on first use
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
