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
