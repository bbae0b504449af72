"""Training-curve plots (private; public through :mod:`visionkit.visualize`)."""

from __future__ import annotations

from typing import Any

__all__ = ["plot_history"]


def plot_history(history: Any, *, metrics: Any = None) -> Any:
    """Placeholder, written with the convnet recipes (issue 3)."""
    raise NotImplementedError("plot_history arrives with the convnet recipes")
