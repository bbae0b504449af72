"""The exceptions visionkit raises.

Every error that visionkit raises on purpose derives from [`VisionkitError`][visionkit.errors.VisionkitError],
so ``except visionkit.VisionkitError`` catches them all. Most also derive from the
matching built-in exception (``ValueError``, ``FileNotFoundError``, ...), so code that
already catches those keeps working.

Argument validation raises plain ``ValueError`` / ``TypeError`` subclasses
([`InvalidArgumentError`][visionkit.errors.InvalidArgumentError]) whose message names the argument, says what was
allowed and what arrived (``Received: x=...``).
"""

from __future__ import annotations

__all__ = [
    "CheckpointLockedError",
    "DataNotFoundError",
    "ImageReadError",
    "InvalidArgumentError",
    "InvalidTypeError",
    "MissingDependencyError",
    "NonFiniteLossError",
    "ResumeMismatchError",
    "UnexpectedArgumentError",
    "VisionkitError",
    "WeightsUnavailableError",
]


class VisionkitError(Exception):
    """Base class of every error visionkit raises on purpose."""


class InvalidArgumentError(VisionkitError, ValueError):
    """An argument has a value that is not allowed; the message names it."""


class InvalidTypeError(VisionkitError, TypeError):
    """An argument has a type that is not allowed; the message names it."""


class UnexpectedArgumentError(InvalidTypeError):
    """A keyword argument that the function does not take (a misspelt option, say).

    The message names it, suggests the closest valid name and lists the valid ones.
    """


class MissingDependencyError(VisionkitError, ImportError):
    """An optional dependency is not installed; the message says how to install it."""


class DataNotFoundError(VisionkitError, FileNotFoundError):
    """A dataset could be found neither locally nor by download.

    The message lists every place that was searched and which file to put where.
    """


class ImageReadError(VisionkitError, ValueError):
    """An image or dataset file is unreadable, truncated, damaged, of the wrong content, or too large.

    The message names the file and what is wrong with it (a missing file is a
    [`DataNotFoundError`][visionkit.errors.DataNotFoundError]).
    """


class WeightsUnavailableError(VisionkitError, OSError):
    """Pretrained weights could not be loaded or downloaded.

    The message names the cache file to place by hand, or the file at fault.
    """


class ResumeMismatchError(VisionkitError, ValueError):
    """A checkpoint folder was written with settings that differ from this run's."""


class NonFiniteLossError(VisionkitError, FloatingPointError):
    """An optimisation produced a NaN or infinite loss and was stopped.

    ``last_finite`` holds the last finite result (for example the last good image),
    or ``None`` if there was none.
    """

    def __init__(self, message: str, *, last_finite: object = None) -> None:
        super().__init__(message)
        self.last_finite = last_finite


class CheckpointLockedError(VisionkitError, RuntimeError):
    """A checkpoint folder is in use by another run.

    The message names the folder, the run that holds it (pid, host, start time) and the
    lock file to delete if that run is gone.
    """
