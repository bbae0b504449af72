"""Build ``keras.applications`` backbones with clear offline errors (private).

Shared by transfer learning, style transfer, DeepDream and Grad-CAM.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from . import _validate as V
from ._backbones import PRESETS
from .errors import WeightsUnavailableError

__all__ = ["APPLICATIONS", "application", "keras_models_dir", "load_weights_file", "preprocess_function"]

#: name -> (module in keras.applications, constructor name), from the presets table.
APPLICATIONS: dict[str, tuple[str, str]] = {name: (b.module, b.constructor) for name, b in PRESETS.items()}

def keras_models_dir() -> Path:
    """Folder where Keras caches downloaded weights (``$KERAS_HOME/models``)."""
    home = os.environ.get("KERAS_HOME")
    return (Path(home) if home else Path.home() / ".keras") / "models"


def _constructor(name: str) -> Any:
    V.one_of("name", name, APPLICATIONS)
    import keras

    module, ctor = APPLICATIONS[name]
    return getattr(getattr(keras.applications, module), ctor)


def preprocess_function(name: str) -> Any:
    """The ``preprocess_input`` function matching backbone ``name``."""
    V.one_of("name", name, APPLICATIONS)
    import keras

    return getattr(keras.applications, APPLICATIONS[name][0]).preprocess_input


def application(
    name: str,
    *,
    weights: str | os.PathLike[str] | None = "imagenet",
    include_top: bool = False,
    input_shape: tuple[int | None, int | None, int] | None = None,
    **kwargs: Any,
) -> Any:
    """Build backbone ``name`` from ``keras.applications``.

    ``weights`` is ``"imagenet"`` (downloaded and cached by Keras), ``None`` (random),
    or a path to a weights file. An ImageNet download that fails raises
    [`WeightsUnavailableError`][visionkit.errors.WeightsUnavailableError] naming the file to place in the Keras cache;
    a weights file that does not fit names the file.
    """
    ctor = _constructor(name)
    if weights is None or weights == "imagenet":
        pass
    elif isinstance(weights, (str, os.PathLike)):
        model = ctor(weights=None, include_top=include_top, input_shape=input_shape, **kwargs)
        load_weights_file(model, weights, label=f"{name} (include_top={include_top})")
        return model
    else:
        raise V.fail("weights", "'imagenet', None or a path to a weights file", weights)
    try:
        return ctor(weights=weights, include_top=include_top, input_shape=input_shape, **kwargs)
    except Exception as exc:  # keras.utils.get_file raises a bare Exception on URL failure
        if weights != "imagenet" or not _looks_like_download_error(exc):
            raise
        url = _url_in(str(exc))
        fname = url.rsplit("/", 1)[-1] if url else f"<the {name} weights file>"
        raise WeightsUnavailableError(
            f"Could not download the ImageNet weights of {name} "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]}). "
            f"On a machine without internet, download '{fname}'"
            + (f" from {url}" if url else "")
            + f" and place it at '{keras_models_dir() / fname}', or pass weights=<path> "
            "(a weights file) or weights=None (random weights)."
        ) from None


def load_weights_file(model: Any, weights: str | os.PathLike[str], *, label: str) -> Any:
    """Load a weights file into ``model`` in place; errors name the file and ``label``."""
    path = Path(weights)
    if not path.is_file():
        raise WeightsUnavailableError(f"Weights file not found: '{path}' (argument `weights`).")
    try:
        model.load_weights(str(path))
    except Exception as exc:  # h5py and Keras raise many unrelated types here
        raise WeightsUnavailableError(
            f"Could not load weights file '{path}' into {label}: {type(exc).__name__}: {exc}"
        ) from None
    return model


def _looks_like_download_error(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    return any(k in text for k in ("url fetch failure", "urlopen", "http", "connection", "name resolution", "network", "socket", "timed out"))


def _url_in(text: str) -> str | None:
    m = re.search(r"https?://\S+?\.(?:h5|keras|weights\.h5)", text)
    return m.group(0) if m else None
