"""Export a classifier to run outside Keras: TensorFlow SavedModel, ONNX, LiteRT, each parity-checked.

[`export`][visionkit.export.export] writes one folder:

| file | what |
| --- | --- |
| ``saved_model/`` / ``model.onnx`` / ``model.tflite`` | the model, with its input pipeline baked in: a ``uint8`` RGB (or grayscale) batch ``(N, h, w, C)`` of any size in, bilinear resize to the model's input size, the model's own preprocessing and layers, a calibration temperature if it carries one, and class probabilities ``(N, K)`` float32 out |
| ``labels.txt`` | one class name a line, in output order |
| ``metadata.json`` | the model card: classes, temperature, input and output, format and quantization, the parity check, the versions that made it, and what the caller adds (training settings, metrics) |
| ``parity.json`` | the parity check alone |

Mixed-precision models are cast to float32 first. Every export ends with a **parity
check**: the written file is loaded by its own runtime (TensorFlow, onnxruntime, the
LiteRT interpreter) and run on the given images against the Keras model; the largest
probability difference and the top-1 agreement are printed and stored, and a check
that fails raises [`ParityError`][visionkit.export.ParityError]: float formats must
agree within ``tolerance`` (default 1e-4 in probability), int8 files on at least
``min_agreement`` (default 99 %) of the images' top-1 classes.
[`check_parity`][visionkit.export.check_parity] runs the same check on any export
folder; [`load_exported`][visionkit.export.load_exported] gives a predictor for one.

The converters and runtimes are optional (``pip install 'visionkit[export]'``):
SavedModel needs only TensorFlow; ONNX needs ``tf2onnx``, ``onnx`` and
``onnxruntime``; LiteRT is converted by TensorFlow and read by ``ai-edge-litert`` (or
``tf.lite.Interpreter`` where TensorFlow still has it).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import _export_runtime as R
from . import _export_serving as S
from . import _validate as V
from ._io import write_json
from .errors import DataNotFoundError, VisionkitError

__all__ = ["FORMATS", "ExportError", "ExportResult", "Exported", "ParityError", "check_parity", "export", "load_exported"]

#: The formats [`export`][visionkit.export.export] writes.
FORMATS: tuple[str, ...] = R.FORMATS


class ParityError(VisionkitError, AssertionError):
    """An exported file does not reproduce the Keras model; the message gives the numbers and the file."""


class ExportError(VisionkitError, RuntimeError):
    """A converter failed on the model; the message names the format and the converter's error."""


@dataclass(frozen=True)
class ExportResult:
    """What [`export`][visionkit.export.export] wrote.

    Attributes
    ----------
    folder : pathlib.Path
        The export folder.
    file : pathlib.Path
        The model file (or SavedModel folder) inside it.
    format : str
    parity : dict
        ``max_abs_diff`` (largest probability difference), ``top1_agreement``,
        ``images``, the thresholds and ``passed``.
    metadata : dict
        The contents of ``metadata.json``.
    """

    folder: Path
    file: Path
    format: str
    parity: dict[str, Any]
    metadata: dict[str, Any] = field(repr=False)


def _uint8_images(images: Any, argument: str, channels: int) -> np.ndarray:
    x = np.asarray(images)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[-1] != channels or len(x) == 0 or not np.issubdtype(x.dtype, np.number):
        raise V.fail(argument, f"a non-empty (N, H, W, {channels}) array of images in [0, 255]",
                     f"an array of shape {x.shape} and dtype {x.dtype}")
    if x.dtype != np.uint8:
        if not np.isfinite(x).all() or x.min() < 0 or x.max() > 255:
            raise V.fail(argument, "pixel values in [0, 255]", f"values in [{x.min()}, {x.max()}]")
        x = np.rint(x).astype(np.uint8)
    return x


def _parity_numbers(reference: np.ndarray, got: np.ndarray, *, tolerance: float, min_agreement: float,
                    int8: bool) -> dict[str, Any]:
    if got.shape != reference.shape:
        return {"images": len(reference), "max_abs_diff": None, "top1_agreement": 0.0, "passed": False,
                "problem": f"output shape {got.shape}, expected {reference.shape}"}
    diff = float(np.max(np.abs(got.astype(np.float64) - reference))) if got.size else 0.0
    agreement = float(np.mean(got.argmax(axis=1) == reference.argmax(axis=1)))
    passed = bool(np.isfinite(diff) and (agreement >= min_agreement if int8 else diff <= tolerance))
    return {"images": len(reference), "max_abs_diff": diff, "top1_agreement": agreement,
            "tolerance": None if int8 else tolerance, "min_agreement": min_agreement if int8 else None,
            "rule": "top-1 agreement >= min_agreement" if int8 else "max |p_exported - p_keras| <= tolerance",
            "passed": passed}


def _reference(serving: Any, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    return np.concatenate([np.asarray(serving(images[i:i + batch_size], training=False), np.float64)
                           for i in range(0, len(images), batch_size)])


def _run_batches(run: Any, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    return np.concatenate([run(images[i:i + batch_size]) for i in range(0, len(images), batch_size)])


def check_parity(
    model: Any,
    folder: str | os.PathLike[str],
    images: Any,
    *,
    tolerance: float = 1e-4,
    min_agreement: float = 0.99,
    raise_on_failure: bool = True,
) -> dict[str, Any]:
    """Compare an export folder, run by its own runtime, with the Keras model on images.

    Parameters
    ----------
    model : keras.Model
        The model that was exported (the one given to ``export``).
    folder : str or os.PathLike
        An export folder written by [`export`][visionkit.export.export].
    images : array-like
        ``(N, H, W, C)`` images in ``[0, 255]`` (any size; ``uint8`` or float, rounded).
    tolerance : float, default 1e-4
        Largest allowed probability difference (float formats).
    min_agreement : float, default 0.99
        Smallest allowed top-1 agreement (int8 files).
    raise_on_failure : bool, default True
        Raise [`ParityError`][visionkit.export.ParityError] when the check fails.

    Returns
    -------
    dict
        ``max_abs_diff``, ``top1_agreement``, ``images``, the rule and ``passed``.
    """
    exported = load_exported(folder)
    serving, info = S.serving_model(model)
    x = _uint8_images(images, "images", S.input_size(model)[2])
    tolerance = float(V.number("tolerance", tolerance, minimum=0.0))
    min_agreement = float(V.number("min_agreement", min_agreement, minimum=0.0, maximum=1.0))
    int8 = exported.metadata.get("quantize") == "int8"
    try:
        got = _run_batches(exported.predict, x)
    except Exception as exc:  # the runtimes raise many kinds
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ExportError(f"The {exported.format} runtime cannot run '{exported.file}': {type(exc).__name__}: "
                          f"{first}") from exc
    numbers = _parity_numbers(_reference(serving, x), got, tolerance=tolerance, min_agreement=min_agreement,
                              int8=int8)
    numbers["format"] = exported.format
    if info["cast_to_float32"]:  # how far the float32 cast is from the mixed-precision model itself
        original = _reference(S.serving_model(model, cast=False)[0], x)
        numbers["vs_mixed_precision_model"] = {
            "max_abs_diff": float(np.max(np.abs(original - _reference(serving, x)))),
            "top1_agreement": float(np.mean(original.argmax(1) == _reference(serving, x).argmax(1)))}
    if raise_on_failure and not numbers["passed"]:
        raise ParityError(
            f"The exported {exported.format} file '{exported.file}' does not reproduce the Keras model on "
            f"{numbers['images']} images: max probability difference {numbers['max_abs_diff']}, top-1 agreement "
            f"{numbers['top1_agreement']:.4f} (rule: {numbers['rule']}).")
    return numbers


@dataclass(frozen=True)
class Exported:
    """An export folder loaded with its format's runtime, as [`load_exported`][visionkit.export.load_exported] returns it.

    Attributes
    ----------
    file : pathlib.Path
    format : str
    class_names : list of str or None
    temperature : float or None
    metadata : dict
    predict : callable
        ``predict(images)``: ``uint8 (N, h, w, C)`` images of one size → float32
        ``(N, K)`` probabilities.
    """

    file: Path
    format: str
    class_names: list[str] | None
    temperature: float | None
    metadata: dict[str, Any] = field(repr=False)
    predict: Any = field(repr=False)


def _locate(path: Path) -> tuple[Path, Path, str]:
    """(folder, model file, format) from an export folder or the model file in it."""
    if path.is_dir() and (path / "saved_model.pb").is_file():
        return path.parent, path, "savedmodel"
    if path.is_file():
        fmt = {".onnx": "onnx", ".tflite": "litert"}.get(path.suffix.lower())
        if fmt is None:
            raise V.fail("path", "an export folder, a .onnx or .tflite file, or a SavedModel folder", str(path))
        return path.parent, path, fmt
    if path.is_dir():
        for fmt, name in R.FILES.items():
            if (path / name).exists():
                return path, path / name, fmt
        raise V.fail("path", f"an export folder holding one of {sorted(R.FILES.values())}", str(path))
    raise DataNotFoundError(f"No exported model at '{path}'.")


def load_exported(path: str | os.PathLike[str]) -> Exported:
    """Load an exported model with its own runtime (no Keras model needed).

    Parameters
    ----------
    path : str or os.PathLike
        An export folder, or the ``saved_model`` folder / ``.onnx`` / ``.tflite`` file
        in it (``metadata.json`` and ``labels.txt`` are read from beside it when there).

    Returns
    -------
    Exported
    """
    folder, file, fmt = _locate(Path(path))
    meta_file = folder / "metadata.json"
    metadata = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
    names = metadata.get("class_names")
    if names is None and (folder / "labels.txt").is_file():
        names = [ln for ln in (folder / "labels.txt").read_text().splitlines() if ln]
    try:
        run = R.load_runtime(file, fmt)
    except VisionkitError:
        raise
    except Exception as exc:  # the runtimes raise many kinds
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ExportError(f"The {fmt} runtime cannot load '{file}': {type(exc).__name__}: {first}") from exc
    return Exported(file, fmt, names, metadata.get("temperature"), metadata, run)


def _representative(data: Any, channels: int, size: tuple[int, int]) -> Any:
    x = _uint8_images(data, "representative_data", channels)

    def gen() -> Any:
        for i in range(min(len(x), 200)):
            yield [x[i:i + 1]]

    return gen, x


def _check_options(model: Any, fmt: Any, quantize: Any, representative_data: Any) -> None:
    V.one_of("format", fmt, FORMATS)
    V.one_of("quantize", quantize, (None, "int8"))
    if quantize == "int8" and fmt != "litert":
        raise V.fail("quantize", "None, or 'int8' with format='litert'", quantize)
    if quantize == "int8" and representative_data is None:
        raise V.fail("representative_data", "images from the training data (int8 needs them to set its ranges)",
                     None)
    import keras

    if not isinstance(model, keras.Model):
        raise V.fail("model", "a keras.Model", model)


def export(
    model: Any,
    path: str | os.PathLike[str],
    *,
    format: str = "savedmodel",
    quantize: str | None = None,
    representative_data: Any = None,
    parity_data: Any = None,
    tolerance: float = 1e-4,
    min_agreement: float = 0.99,
    metadata: Mapping[str, Any] | None = None,
    verbose: bool = True,
) -> ExportResult:
    """Export a classifier to a folder in one format, then check the file against the model.

    Parameters
    ----------
    model : keras.Model
        A classifier with one image input of known size, taking pixels in ``[0, 255]``
        (visionkit's recipes). Not modified. Its class names and temperature are carried.
    path : str or os.PathLike
        The export folder (created; an earlier export there is replaced; any other
        non-empty folder is refused).
    format : {"savedmodel", "onnx", "litert"}, default "savedmodel"
    quantize : {None, "int8"}, default None
        ``"int8"``: LiteRT with int8 weights and activations (float fallback where an
        op has no int8 kernel), ranges from ``representative_data``.
    representative_data : array-like, optional
        ``(N, H, W, C)`` training images in ``[0, 255]`` (about 100-200 are enough);
        needed for int8; also the parity images when ``parity_data`` is None.
    parity_data : array-like, optional
        ``(N, H, W, C)`` images in ``[0, 255]`` for the parity check (real images,
        ideally the test set). Default: ``representative_data``, else 32 random images
        (recorded as such).
    tolerance, min_agreement : float
        The parity thresholds (see [`check_parity`][visionkit.export.check_parity]).
    metadata : mapping, optional
        JSON-able extras for the model card (training settings, data, metrics).
    verbose : bool, default True
        Print the parity result.

    Returns
    -------
    ExportResult

    Raises
    ------
    ParityError
        The exported file does not reproduce the model (the folder is still written,
        with ``"passed": false``, for inspection).
    MissingDependencyError
        The format's converter or runtime is not installed (names the extra).
    """
    _check_options(model, format, quantize, representative_data)
    from .calibration import temperature_of
    from .training import class_names

    serving, info = S.serving_model(model, onnx=format == "onnx")
    h, w, c = S.input_size(model)
    rep, rep_images = (None, None) if representative_data is None else _representative(representative_data, c, (h, w))
    if parity_data is not None:
        parity_images, source = _uint8_images(parity_data, "parity_data", c), "given"
    elif rep_images is not None:
        parity_images, source = rep_images, "representative_data"
    else:
        parity_images = np.random.default_rng(0).integers(0, 256, (32, h, w, c)).astype(np.uint8)
        source = "random"
    folder = Path(path)
    _check_target(folder)
    names = class_names(model)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        try:
            R.write(serving, tmp / R.FILES[format], format, quantize=quantize, representative=rep)
        except VisionkitError:
            raise
        except Exception as exc:  # the converters raise many kinds
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ExportError(f"Converting model '{model.name}' to {format} failed: {type(exc).__name__}: "
                              f"{first}") from exc
        card = {"format": format, "file": R.FILES[format], "quantize": quantize, "class_names": names,
                "temperature": temperature_of(model), "model_name": model.name, **info,
                "versions": S.versions(*(d for _, d in R.PACKAGES[format]), "ai-edge-litert"),
                **dict(metadata or {})}
        if names is not None:
            (tmp / "labels.txt").write_text("".join(f"{n}\n" for n in names))
        write_json(tmp / "metadata.json", card)
        _install(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        numbers = check_parity(model, folder, parity_images, tolerance=tolerance, min_agreement=min_agreement,
                               raise_on_failure=False)
    except ExportError as exc:  # the file does not even load: recorded, then raised
        write_json(folder / "parity.json", {"passed": False, "error": str(exc), "format": format})
        raise
    numbers["source"] = source
    card["parity"] = numbers
    write_json(folder / "parity.json", numbers)
    write_json(folder / "metadata.json", card)
    if verbose:
        print(f"export {format}{' int8' if quantize else ''}: parity on {numbers['images']} {source} images: "
              f"max |dp| {numbers['max_abs_diff']:.3g}, top-1 agreement {numbers['top1_agreement']:.4f} "
              f"-> {'ok' if numbers['passed'] else 'FAILED'}")
    if not numbers["passed"]:
        raise ParityError(f"The exported {format} file '{folder / R.FILES[format]}' does not reproduce the Keras "
                          f"model: max probability difference {numbers['max_abs_diff']}, top-1 agreement "
                          f"{numbers['top1_agreement']:.4f} on {numbers['images']} images (rule: {numbers['rule']}).")
    return ExportResult(folder, folder / R.FILES[format], format, numbers, card)


def _check_target(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise V.fail("path", "a folder to export into", f"'{folder}' (a file)")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / "metadata.json").is_file():
        raise V.fail("path", "a new or empty folder, or an earlier export folder to replace",
                     f"'{folder}' (a non-empty folder that is not an export)")


def _install(tmp: Path, folder: Path) -> None:
    """Move the finished export into place, replacing an earlier export."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    if folder.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old.", dir=folder.parent))
        os.replace(folder, old / "x")
        os.replace(tmp, folder)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, folder)
