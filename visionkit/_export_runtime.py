"""Writing and loading exported files with each format's own converter and runtime (private).

SavedModel: Keras' ``Model.export(format="tf_saved_model")``, read back with
``tf.saved_model.load``. ONNX: Keras' ``Model.export(format="onnx")`` (tf2onnx), read
back with onnxruntime. LiteRT: Keras' ``Model.export(format="litert")`` (the
TensorFlow Lite converter; int8 with a representative dataset), read back with the
LiteRT interpreter (``ai_edge_litert``, else ``tf.lite.Interpreter``).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .errors import MissingDependencyError

__all__ = ["FILES", "FORMATS", "PACKAGES", "load_runtime", "require", "write"]

FORMATS: tuple[str, ...] = ("savedmodel", "onnx", "litert")
#: The file (or folder) each format writes inside the export folder.
FILES: dict[str, str] = {"savedmodel": "saved_model", "onnx": "model.onnx", "litert": "model.tflite"}
#: Python packages each format needs beyond TensorFlow (module, distribution).
PACKAGES: dict[str, tuple[tuple[str, str], ...]] = {
    "savedmodel": (),
    "onnx": (("tf2onnx", "tf2onnx"), ("onnx", "onnx"), ("onnxruntime", "onnxruntime")),
    "litert": (),
}


def require(module: str, distribution: str, fmt: str) -> Any:
    """Import ``module`` or raise MissingDependencyError naming the ``export`` extra."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(
            f"The {fmt} format needs the package '{distribution}', which is not installed. Install the export "
            f"extra: pip install 'visionkit[export]' (or pip install {distribution})."
        ) from None


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the converters' prints and known deprecation chatter."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
        yield


def write(serving: Any, target: Path, fmt: str, *, quantize: str | None,
          representative: Callable[[], Iterator[list[np.ndarray]]] | None) -> None:
    """Export ``serving`` to ``target`` in ``fmt``."""
    for module, dist in PACKAGES[fmt]:
        require(module, dist, fmt)
    with _quiet():
        if fmt == "savedmodel":
            serving.export(str(target), format="tf_saved_model", verbose=False)
        elif fmt == "onnx":
            serving.export(str(target), format="onnx", verbose=False)
        else:
            kwargs: dict[str, Any] = {}
            if quantize == "int8":
                import tensorflow as tf

                kwargs = {"optimizations": [tf.lite.Optimize.DEFAULT], "representative_dataset": representative}
            serving.export(str(target), format="litert", verbose=False, **kwargs)


def _litert_interpreter(path: Path) -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        if not hasattr(tf.lite, "Interpreter"):
            raise MissingDependencyError(
                "Reading LiteRT files needs the package 'ai-edge-litert' (this TensorFlow has no "
                "tf.lite.Interpreter). Install the export extra: pip install 'visionkit[export]'.") from None
        Interpreter = tf.lite.Interpreter
    with _quiet():
        return Interpreter(model_path=str(path))


def load_runtime(path: Path, fmt: str) -> Callable[[np.ndarray], np.ndarray]:
    """``predict(uint8 (N, h, w, C)) -> float32 (N, K)`` with the format's own runtime."""
    if fmt == "savedmodel":
        import tensorflow as tf

        serve = tf.saved_model.load(str(path)).signatures["serving_default"]

        def run_tf(x: np.ndarray) -> np.ndarray:
            out = serve(tf.constant(x, tf.uint8))
            return np.asarray(next(iter(out.values())), np.float32)

        return run_tf
    if fmt == "onnx":
        ort = require("onnxruntime", "onnxruntime", "onnx")
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return lambda x: np.asarray(session.run(None, {name: np.ascontiguousarray(x, np.uint8)})[0], np.float32)
    interpreter = _litert_interpreter(path)
    state: dict[str, Any] = {"shape": None}

    def run_litert(x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, np.uint8)
        inp = interpreter.get_input_details()[0]
        if state["shape"] != x.shape:
            interpreter.resize_tensor_input(inp["index"], x.shape)
            interpreter.allocate_tensors()
            state["shape"] = x.shape
        interpreter.set_tensor(inp["index"], x)
        interpreter.invoke()
        return np.asarray(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]), np.float32)

    return run_litert
