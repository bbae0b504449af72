"""Pictures of training and of what a convnet has learned.

Training curves (:func:`plot_history`), intermediate activations
(:func:`activations`, :func:`plot_activations`), filter patterns
(:func:`filter_pattern`, :func:`filter_grid`) and image grids (:func:`image_grid`).
Every plotting function returns a matplotlib ``Figure``; none calls ``plt.show()``.
"""

from __future__ import annotations

from ._viz_features import (
    activations,
    filter_grid,
    filter_pattern,
    image_grid,
    plot_activations,
)
from ._viz_history import plot_history

__all__ = [
    "activations",
    "filter_grid",
    "filter_pattern",
    "image_grid",
    "plot_activations",
    "plot_history",
]
