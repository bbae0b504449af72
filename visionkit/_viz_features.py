"""Activation, filter-pattern and image-grid plots (private; public through
:mod:`visionkit.visualize`)."""

from __future__ import annotations

from typing import Any

__all__ = ["activations", "filter_grid", "filter_pattern", "image_grid", "plot_activations"]


def _todo(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("arrives with the Grad-CAM and visualisation recipes")


activations = filter_grid = filter_pattern = image_grid = plot_activations = _todo
