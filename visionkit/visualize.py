"""Pictures of training and of what a convnet has learned.

Training curves ([`plot_history`][visionkit.visualize.plot_history]), intermediate activations
([`activations`][visionkit.visualize.activations], [`plot_activations`][visionkit.visualize.plot_activations]), filter patterns
([`filter_pattern`][visionkit.visualize.filter_pattern], [`filter_grid`][visionkit.visualize.filter_grid],
[`filter_patterns`][visionkit.visualize.filter_patterns] of a backbone's preset layers) and image grids ([`image_grid`][visionkit.visualize.image_grid]).
Every plotting function returns a matplotlib ``Figure``; none calls ``plt.show()``.
"""

from __future__ import annotations

from ._viz_features import (
    activations,
    filter_grid,
    filter_pattern,
    filter_patterns,
    image_grid,
    plot_activations,
)
from ._viz_history import plot_history

__all__ = [
    "activations",
    "filter_grid",
    "filter_pattern",
    "filter_patterns",
    "image_grid",
    "plot_activations",
    "plot_history",
]
