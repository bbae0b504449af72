"""Validated settings of [`visionkit.style.style_transfer`][visionkit.style.style_transfer] (private).

``style_settings`` checks every option of a style-transfer run once and returns a
frozen ``StyleSettings``; the rest of the recipe reads that object and never
validates again.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import _validate as V
from ._backbones import preset
from ._style_model import check_layers
from .errors import InvalidArgumentError, MissingDependencyError

__all__ = [
    "INIT_MODES",
    "OPTIMIZERS",
    "POOLINGS",
    "StyleSettings",
    "check_some_layers",
    "require_scipy",
    "style_settings",
]

#: Optimisers of ``style_transfer(optimizer=...)``.
OPTIMIZERS: tuple[str, ...] = ("adam", "lbfgs")
#: Pooling modes of the VGG extractors (``pooling=...``).
POOLINGS: tuple[str, ...] = ("avg", "max")
#: Named starting points of ``style_transfer(init=...)`` (a noise ratio is the other form).
INIT_MODES: tuple[str, ...] = ("content", "noise")

#: The user callback: ``callback(step, image, losses) -> stop?``.
Callback = Callable[[int, np.ndarray, dict[str, float]], Any]


@dataclass(frozen=True)
class StyleSettings:
    """Every option of one style-transfer run, validated and normalised.

    ``style_layer_weights`` and ``style_blend_weights`` are normalised to sum 1;
    ``sizes`` is the coarse-to-fine schedule (``(max_dim,)`` without ``scales``);
    ``noise_ratio`` is ``init`` as a number in ``[0, 1]``.
    """

    sizes: tuple[int, ...]
    backbone: str
    content_layers: tuple[str, ...]
    style_layers: tuple[str, ...]
    style_layer_weights: tuple[float, ...]
    content_weight: float
    style_weight: float
    tv_weight: float
    steps: int
    optimizer: str
    learning_rate: float
    noise_ratio: float
    pooling: str
    preserve_color: bool
    style_scale: float
    style_blend_weights: tuple[float, ...]
    weights: str | os.PathLike[str] | None
    seed: int | None
    callback: Callback | None
    save_every: int | None
    output_dir: Path | None
    progress: bool

    @property
    def layers(self) -> tuple[str, ...]:
        """Every layer the extractor must return (content layers first, no repeats)."""
        return tuple(dict.fromkeys(self.content_layers + self.style_layers))

    @property
    def total_steps(self) -> int:
        """Steps of the whole run, over every scale."""
        return self.steps * len(self.sizes)


def check_some_layers(
    content_layers: Any, style_layers: Any, backbone: Any = "vgg19"
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Validate both layer lists (None: the backbone's preset); at least one must name a layer."""
    record = preset(backbone)
    if content_layers is None:
        content_layers = record.content_layers
    if style_layers is None:
        style_layers = record.style_layers
    content_layers = check_layers("content_layers", content_layers, allow_empty=True, backbone=record.name)
    style_layers = check_layers("style_layers", style_layers, allow_empty=True, backbone=record.name)
    if not content_layers and not style_layers:
        raise InvalidArgumentError(
            "At least one of `content_layers` and `style_layers` must name a layer. "
            f"Received: content_layers={content_layers!r}, style_layers={style_layers!r}"
        )
    return content_layers, style_layers


def style_settings(
    *,
    n_styles: int,
    max_dim: Any,
    backbone: Any,
    content_layers: Any,
    style_layers: Any,
    style_layer_weights: Any,
    content_weight: Any,
    style_weight: Any,
    tv_weight: Any,
    steps: Any,
    optimizer: Any,
    learning_rate: Any,
    init: Any,
    pooling: Any,
    preserve_color: Any,
    style_scale: Any,
    style_blend_weights: Any,
    scales: Any,
    weights: Any,
    seed: Any,
    callback: Any,
    save_every: Any,
    output_dir: Any,
    progress: Any,
) -> StyleSettings:
    """Validate the options of ``style_transfer`` (with ``n_styles`` style images)."""
    max_dim = int(V.integer("max_dim", max_dim, minimum=16))
    backbone = preset(backbone).name
    content_layers, style_layers = check_some_layers(content_layers, style_layers, backbone)
    layer_w = _weights_arg("style_layer_weights", style_layer_weights, max(len(style_layers), 1), "style layer")
    V.one_of("optimizer", optimizer, OPTIMIZERS)
    V.one_of("pooling", pooling, POOLINGS)
    if not isinstance(preserve_color, bool):
        raise V.fail("preserve_color", "True or False", preserve_color)
    if callback is not None and not callable(callback):
        raise V.fail("callback", "None or a callable callback(step, image, losses)", callback)
    save_every = V.integer("save_every", save_every, minimum=1, allow_none=True)
    if save_every is not None and output_dir is None:
        raise InvalidArgumentError(
            "Argument `output_dir` is required with `save_every`. "
            f"Received: save_every={save_every!r}, output_dir=None"
        )
    return StyleSettings(
        sizes=_scales_arg(scales) or (max_dim,),
        backbone=backbone,
        content_layers=content_layers,
        style_layers=style_layers,
        style_layer_weights=layer_w,
        content_weight=float(V.number("content_weight", content_weight, minimum=0.0)),
        style_weight=float(V.number("style_weight", style_weight, minimum=0.0)),
        tv_weight=float(V.number("tv_weight", tv_weight, minimum=0.0)),
        steps=int(V.integer("steps", steps, minimum=1)),
        optimizer=optimizer,
        learning_rate=float(V.number("learning_rate", learning_rate, minimum=0.0, exclusive_minimum=True)),
        noise_ratio=_init_arg(init),
        pooling=pooling,
        preserve_color=preserve_color,
        style_scale=float(V.number("style_scale", style_scale, minimum=0.0, exclusive_minimum=True, maximum=8.0)),
        style_blend_weights=_weights_arg("style_blend_weights", style_blend_weights, n_styles, "style image"),
        weights=weights,
        seed=V.integer("seed", seed, allow_none=True),
        callback=callback,
        save_every=save_every,
        output_dir=Path(output_dir) if output_dir is not None else None,
        progress=bool(progress),
    )


def require_scipy() -> Callable[..., Any]:
    """``scipy.optimize.minimize``, or an ImportError that says how to install scipy."""
    try:
        from scipy.optimize import minimize
    except ImportError:
        raise MissingDependencyError(
            "optimizer='lbfgs' needs scipy: pip install 'visionkit[lbfgs]' (or pip "
            "install scipy), or use optimizer='adam'."
        ) from None
    return minimize


def _weights_arg(name: str, values: Any, n: int, what: str) -> tuple[float, ...]:
    if values is None:
        return (1.0 / n,) * n
    allowed = f"None or a sequence of {n} non-negative numbers (one per {what}) with a positive sum"
    if isinstance(values, str) or not isinstance(values, Sequence) or len(values) != n:
        raise V.fail(name, allowed, values)
    try:
        arr = np.array([V.number(name, v, minimum=0.0) for v in values], dtype=np.float64)
    except (InvalidArgumentError, TypeError):
        raise V.fail(name, allowed, values) from None
    if arr.sum() <= 0:
        raise V.fail(name, allowed, values)
    return tuple(float(v) for v in arr / arr.sum())


def _init_arg(init: Any) -> float:
    if init == "content":
        return 0.0
    if init == "noise":
        return 1.0
    allowed = "'content', 'noise' or a noise ratio in [0, 1]"
    if isinstance(init, str):
        raise V.fail("init", allowed, init)
    try:
        return float(V.number("init", init, minimum=0.0, maximum=1.0))
    except (InvalidArgumentError, TypeError):
        raise V.fail("init", allowed, init) from None


def _scales_arg(scales: Any) -> tuple[int, ...] | None:
    if scales is None:
        return None
    allowed = "None or an increasing sequence of image sizes (integers >= 16)"
    if isinstance(scales, str) or not isinstance(scales, Sequence) or not scales:
        raise V.fail("scales", allowed, scales)
    try:
        out = tuple(int(V.integer("scales", s, minimum=16)) for s in scales)
    except (InvalidArgumentError, TypeError):
        raise V.fail("scales", allowed, scales) from None
    if any(out[i + 1] <= out[i] for i in range(len(out) - 1)):
        raise V.fail("scales", allowed, scales)
    return out
