"""Argument validators shared by every module (private).

Each validator raises [`InvalidArgumentError`][visionkit.errors.InvalidArgumentError] (a ``ValueError``)
or ``TypeError`` whose message names the argument, says what is allowed and ends with
``Received: name=value``, Keras style.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from typing import Any

from .errors import InvalidArgumentError


def _received(name: str, value: Any) -> str:
    text = repr(value)
    if len(text) > 200:
        text = text[:197] + "..."
    return f"Received: {name}={text}"


def fail(name: str, allowed: str, value: Any) -> InvalidArgumentError:
    """Build (not raise) the standard error for argument ``name``."""
    return InvalidArgumentError(f"Argument `{name}` must be {allowed}. {_received(name, value)}")


def one_of(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``allowed``; raise otherwise."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise fail(name, f"one of {list(allowed)}", value)
    return value


def integer(
    name: str,
    value: Any,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    allow_none: bool = False,
) -> int | None:
    """Return ``value`` as an ``int`` within ``[minimum, maximum]``; raise otherwise."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise fail(name, _describe("an integer", minimum, maximum, allow_none), value)
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise fail(name, _describe("an integer", minimum, maximum, allow_none), value)
    return value


def number(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
    exclusive_maximum: bool = False,
    allow_none: bool = False,
) -> float | None:
    """Return ``value`` as a finite ``float`` within the given bounds; raise otherwise."""
    if value is None and allow_none:
        return None
    desc = _describe("a finite number", minimum, maximum, allow_none, exclusive_minimum, exclusive_maximum)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise fail(name, desc, value)
    value = float(value)
    if value != value or value in (float("inf"), float("-inf")):
        raise fail(name, desc, value)
    if minimum is not None and (value < minimum or (exclusive_minimum and value == minimum)):
        raise fail(name, desc, value)
    if maximum is not None and (value > maximum or (exclusive_maximum and value == maximum)):
        raise fail(name, desc, value)
    return value


def size2d(name: str, value: Any, *, allow_none: bool = False) -> tuple[int, int] | None:
    """Return ``(height, width)`` from an int or a pair of positive ints; raise otherwise."""
    if value is None and allow_none:
        return None
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and value > 0:
        return int(value), int(value)
    if (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) == 2
        and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0 for v in value)
    ):
        return int(value[0]), int(value[1])
    allowed = "a positive integer or a `(height, width)` pair of positive integers"
    raise fail(name, allowed + (" or None" if allow_none else ""), value)


def _describe(
    kind: str,
    minimum: float | None,
    maximum: float | None,
    allow_none: bool,
    exclusive_minimum: bool = False,
    exclusive_maximum: bool = False,
) -> str:
    parts = [kind]
    if minimum is not None:
        parts.append(f"{'>' if exclusive_minimum else '>='} {minimum}")
    if maximum is not None:
        parts.append(f"{'<' if exclusive_maximum else '<='} {maximum}")
    text = parts[0] + (" " + " and ".join(parts[1:]) if len(parts) > 1 else "")
    return text + (" or None" if allow_none else "")


def boolean(name: str, value: Any) -> bool:
    """Return ``value`` as a ``bool`` if it is one (NumPy's too); raise otherwise."""
    if not isinstance(value, bool) and type(value).__name__ != "bool_":
        raise fail(name, "True or False", value)
    return bool(value)


def one_output(model: Any) -> None:
    """Raise, naming the model and its outputs, unless ``model`` has one output."""
    outputs = list(getattr(model, "outputs", None) or [])
    if len(outputs) > 1:
        names = [getattr(o, "name", str(i)) for i, o in enumerate(outputs)]
        raise fail("model", f"a model with one output (the class scores); model '{model.name}' has "
                   f"{len(outputs)} outputs {names}: wrap the output to explain in its own "
                   "keras.Model(model.inputs, model.outputs[i])", model.name)


def model_images(model: Any, images: Any, *, argument: str = "images", first: int = 0) -> tuple[Any, bool]:
    """``images`` as a batch the model can take, or an error that says why not.

    The one check every explanation entry point (Grad-CAM and its methods, the
    attributions, the faithfulness metrics, ``interpret``) runs before the model
    sees the images: the model has one output, the images fit its input spec
    (``model.inputs[0].shape``: channels and any fixed height/width) and every value
    is finite. A batch of 0 images is returned as is (callers answer with an empty
    result of the right shape).

    Parameters
    ----------
    model : keras.Model
        Not modified.
    images : array-like
        One image or a batch, as ``visionkit._images.as_batch`` takes them.
    argument : str, default "images"
        The argument name used in error messages.
    first : int, default 0
        The index of ``images[0]`` in the caller's data (for streamed batches), so
        that the error names the caller's image indices.

    Returns
    -------
    batch : numpy.ndarray
        ``(N, *shape)``, values untouched (a view where possible: do not write to it).
    single : bool
        True when ``images`` was one image.

    Raises
    ------
    InvalidArgumentError
        A model with several outputs, images of the wrong shape, channels or size
        (the message gives the model's expected shape and the array's), or images
        with NaN or infinite values (the message names their indices).
    """
    import numpy as np

    from ._images import as_batch

    one_output(model)
    x, single = as_batch(model, images, argument=argument)
    inputs = getattr(model, "inputs", None)
    if inputs:
        spec = tuple(inputs[0].shape[1:])
        if len(spec) != x.ndim - 1 or any(s is not None and s != d for s, d in zip(spec, x.shape[1:])):
            expected = "(N, " + ", ".join("any" if s is None else str(s) for s in spec) + ")"
            axes = " (height, width, channels)" if len(spec) == 3 else ""
            raise fail(argument, f"images of shape {expected}{axes} for model "
                       f"'{model.name}', whose input is {(None, *spec)}", f"array of shape {x.shape}")
    if x.size and np.issubdtype(x.dtype, np.inexact):
        bad = np.flatnonzero(~np.isfinite(x.reshape(len(x), -1)).all(axis=1))
        if bad.size:
            shown = ", ".join(str(first + int(i)) for i in bad[:10]) + (", ..." if bad.size > 10 else "")
            raise fail(argument, f"finite (no NaN or infinite values); {bad.size} of {len(x)} images are not: "
                       f"index {shown}", f"array of shape {x.shape} with non-finite values")
    return x, single
