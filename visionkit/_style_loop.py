"""Observers of the style-transfer optimisation loop (private).

The optimisers of ``visionkit._style_optim`` call one ``report(step, x, losses)``
after every step. ``StepCounter`` turns that into a ``Step`` (numbered across
scales, its uint8 image computed at most once and only when an observer asks for it)
and hands it to a list of observers, each a callable ``observer(step) -> stop?``:

- ``progress_observer``: advances a tqdm bar and shows the losses;
- ``save_observer``: writes ``step_NNNNN.png`` every ``save_every`` steps and at the last;
- ``callback_observer``: calls the user's ``callback(step, image, losses)``.

The run stops once any observer returns true.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._style_settings import Callback, StyleSettings

__all__ = [
    "Observer",
    "Step",
    "StepCounter",
    "callback_observer",
    "observers_for",
    "progress_bar",
    "progress_observer",
    "save_observer",
]


@dataclass
class Step:
    """One optimisation step as the observers see it.

    ``number`` counts from 1 across scales; ``losses`` holds float losses
    (``"total"``, ``"content"``, ``"style"``, ``"tv"``); ``image`` is the current uint8
    RGB ``(H, W, 3)`` image, computed on first access.
    """

    number: int
    losses: dict[str, float]
    raw: Any = field(repr=False)
    to_image: Callable[[np.ndarray], np.ndarray] = field(repr=False)
    _image: np.ndarray | None = field(default=None, repr=False)

    @property
    def image(self) -> np.ndarray:
        if self._image is None:
            raw = self.raw.numpy() if hasattr(self.raw, "numpy") else self.raw
            self._image = self.to_image(raw)
        return self._image


#: ``observer(step) -> stop?``: called after every step; a true result stops the run.
Observer = Callable[[Step], Any]


class StepCounter:
    """Numbers the steps across scales and calls the observers after each."""

    def __init__(self, observers: Sequence[Observer]) -> None:
        self.observers = tuple(observers)
        self.done = 0
        self.stopped = False

    def reporter(self, to_image: Callable[[np.ndarray], np.ndarray]) -> Callable[[int, Any, dict[str, float]], bool]:
        """The ``report`` of one scale's optimiser; ``to_image`` maps its pixels to uint8 RGB."""

        def report(_step: int, x: Any, losses: dict[str, float]) -> bool:
            self.done += 1
            step = Step(self.done, losses, x, to_image)
            stop = False
            for observe in self.observers:
                stop = bool(observe(step)) or stop
            self.stopped = stop
            return stop

        return report


def progress_observer(bar: Any) -> Observer:
    """Advance the tqdm ``bar`` by one step and show the losses."""

    def observe(step: Step) -> bool:
        bar.update(1)
        bar.set_postfix({key: f"{val:.3g}" for key, val in step.losses.items()}, refresh=False)
        return False

    return observe


def save_observer(folder: Path, every: int, total: int) -> Observer:
    """Write ``folder/step_NNNNN.png`` (atomically) every ``every`` steps and at step ``total``."""

    def observe(step: Step) -> bool:
        if step.number % every == 0 or step.number == total:
            from .data import save_image

            save_image(folder / f"step_{step.number:05d}.png", step.image)
        return False

    return observe


def callback_observer(callback: Callback) -> Observer:
    """Call ``callback(step, image, losses)`` (a copy of the losses); its truth stops the run."""

    def observe(step: Step) -> bool:
        return bool(callback(step.number, step.image, dict(step.losses)))

    return observe


def observers_for(settings: StyleSettings, bar: Any) -> list[Observer]:
    """The observers a run's settings ask for, in order: progress, saving, callback."""
    observers = [progress_observer(bar)]
    if settings.save_every is not None and settings.output_dir is not None:
        observers.append(save_observer(settings.output_dir, settings.save_every, settings.total_steps))
    if settings.callback is not None:
        observers.append(callback_observer(settings.callback))
    return observers


@contextmanager
def progress_bar(settings: StyleSettings) -> Iterator[Any]:
    """A tqdm bar over every step of the run (disabled by ``progress=False``), closed on exit."""
    from tqdm.auto import tqdm

    bar = tqdm(total=settings.total_steps, disable=not settings.progress, desc="style transfer", unit="step")
    try:
        yield bar
    finally:
        bar.close()
