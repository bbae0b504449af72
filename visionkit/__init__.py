"""visionkit: computer-vision training recipes on TensorFlow 2 and Keras 3.

Importing ``visionkit`` is cheap: TensorFlow is loaded only when a recipe
submodule (``visionkit.data``, ``visionkit.convnets``, ...) is first used.

Examples
--------
>>> import visionkit
>>> visionkit.__version__  # doctest: +ELLIPSIS
'0...'
>>> (x_train, y_train), _ = visionkit.data.load_mnist(sample=True)
>>> x_train.shape, x_train.dtype
((5000, 28, 28), dtype('uint8'))
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public submodules, imported on first attribute access.
_SUBMODULES: tuple[str, ...] = (
    "backbones",
    "calibration",
    "convnets",
    "data",
    "device",
    "dream",
    "errors",
    "explain",
    "export",
    "gradcam",
    "interpret",
    "predict",
    "preprocess",
    "report",
    "robustness",
    "style",
    "training",
    "transfer",
    "visualize",
)

__all__ = ["VisionkitError", "__version__", *_SUBMODULES]

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from . import (  # noqa: F401
        backbones,
        calibration,
        convnets,
        data,
        device,
        dream,
        errors,
        explain,
        export,
        gradcam,
        interpret,
        predict,
        preprocess,
        report,
        robustness,
        style,
        training,
        transfer,
        visualize,
    )
    from .errors import VisionkitError


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    if name == "VisionkitError":
        from .errors import VisionkitError

        return VisionkitError
    raise AttributeError(f"module 'visionkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
