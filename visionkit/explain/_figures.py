"""Pictures of explanations, drawn in one place (private).

[`overlay`][visionkit.gradcam.overlay] (public through ``visionkit.gradcam``), the one
gallery of images with heatmaps and titles that ``explain_errors`` and
``Interpretation.plot_top_losses`` both draw, the titles and axis labels every figure
of the package writes (``label``), and figures as PNG bytes. Matplotlib is imported
inside the functions.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import _validate as V
from .._images import display, literal, to_uint8

__all__ = ["gallery", "label", "overlay", "png"]


def png(figure: Any) -> bytes:
    """The figure as PNG bytes (IPython's rich display)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def label(target: Any, *, title: str | None = None, suptitle: str | None = None, xlabel: str | None = None,
          ylabel: str | None = None, fontsize: float | None = None, xticks: tuple[Any, ...] | None = None,
          yticks: tuple[Any, ...] | None = None) -> None:
    """Write a title, a figure title, axis labels or tick labels on ``target`` (an ``Axes``
    or a ``Figure``).

    Every text the explanation figures show goes through here, so that how text from
    the data (class names, file names) is drawn is decided in one place. ``xticks`` and
    ``yticks`` are ``(positions, labels)`` or ``(positions, labels, options)``.
    """
    for ticks, setter in ((xticks, "set_xticks"), (yticks, "set_yticks")):
        if ticks is not None:
            getattr(target, setter)(ticks[0], [literal(t) for t in ticks[1]], **(ticks[2] if len(ticks) > 2 else {}))
    extra = {} if fontsize is None else {"fontsize": fontsize}
    # text from the data (class names, file names) is drawn as written, never as mathtext
    if title is not None:
        target.set_title(literal(title), **extra)
    if suptitle is not None:
        target.suptitle(literal(suptitle), **extra)
    if xlabel is not None:
        target.set_xlabel(literal(xlabel), **extra)
    if ylabel is not None:
        target.set_ylabel(literal(ylabel), **extra)


def overlay(image: Any, heatmap: Any, *, alpha: float = 0.4, colormap: str = "jet") -> np.ndarray:
    """Paint a heatmap over an image.

    Parameters
    ----------
    image : array-like
        ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)``; uint8, or floats in ``[0, 255]``
        or ``[0, 1]`` (other ranges are min-max scaled for display).
    heatmap : array-like
        ``(h, w)`` values in ``[0, 1]`` (as returned by [`grad_cam`][visionkit.gradcam.grad_cam]); resized
        (bilinear) to the image.
    alpha : float, default 0.4
        Weight of the coloured heatmap, in ``[0, 1]``.
    colormap : str, default "jet"
        A matplotlib colormap name.

    Returns
    -------
    numpy.ndarray
        uint8 RGB image ``(H, W, 3)``: ``(1 - alpha) * image + alpha * colour``.

    Examples
    --------
    >>> import numpy as np
    >>> from visionkit.gradcam import overlay
    >>> overlay(np.zeros((64, 64, 3), "uint8"), np.eye(8)).shape
    (64, 64, 3)
    """
    import matplotlib

    alpha = V.number("alpha", alpha, minimum=0.0, maximum=1.0)
    try:
        cmap = matplotlib.colormaps[colormap]
    except (KeyError, TypeError, ValueError):
        raise V.fail("colormap", "a matplotlib colormap name such as 'jet', 'viridis' or 'inferno'", colormap) from None
    base = display(image).astype(np.float32)
    heat = np.asarray(heatmap, dtype=np.float32)
    if heat.ndim == 3 and heat.shape[0] == 1:
        heat = heat[0]
    if heat.ndim != 2:
        raise V.fail("heatmap", "a 2-D array (h, w)", f"array of shape {heat.shape}")
    heat = np.clip(np.nan_to_num(heat), 0.0, 1.0)
    if heat.shape != base.shape[:2]:
        from PIL import Image

        resized = Image.fromarray(heat, mode="F").resize((base.shape[1], base.shape[0]), Image.BILINEAR)
        heat = np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)
    colour = cmap(heat)[..., :3].astype(np.float32) * 255.0
    return to_uint8((1.0 - alpha) * base + alpha * colour)


def gallery(images: Any, maps: Any, titles: Sequence[str], *, alpha: float, ncols: int | None, suptitle: str,
            tile_size: float = 2.2) -> Any:
    """Images (with their heatmaps painted over when ``maps`` is not None) in a titled grid.

    Returns a matplotlib ``Figure``: one tile per image, ``ncols`` columns (default
    ``ceil(sqrt(N))``), each tile titled, and ``suptitle`` above.
    """
    from .._viz_features import image_grid

    tiles = list(images) if maps is None else [overlay(img, m, alpha=alpha) for img, m in zip(images, maps)]
    fig = image_grid(tiles, ncols=ncols, tile_size=tile_size)
    width, height = fig.get_size_inches()
    rows = fig.axes[0].get_subplotspec().get_gridspec().nrows
    fig.set_size_inches(width, height + 0.3 * rows)  # room for the titles
    for ax, title in zip(fig.axes, titles):
        label(ax, title=title, fontsize=9)
    label(fig, suptitle=suptitle)
    return fig
