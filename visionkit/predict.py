"""Batch prediction over image files, for a ``.keras`` model or an exported one.

[`predict_files`][visionkit.predict.predict_files] takes files, folders (searched
recursively for images) and glob patterns, reads the images in batches (decoded in
background threads while the model runs on the previous batch, with a progress bar)
and returns, and optionally writes as CSV, the top-k classes and probabilities of each
image. The model may be a ``keras.Model``, a ``.keras`` file, or an export folder /
file written by [`visionkit.export`][visionkit.export.export] (run by its own
runtime: TensorFlow, onnxruntime or LiteRT). Probabilities are calibrated when the
model carries a temperature ([`visionkit.calibration`][visionkit.calibration]).

Every image is read as [`data.load_image`][visionkit.data.load_image] reads it
(EXIF orientation applied, transparency on white), resized to the model's input size
(bicubic, antialiased) and rounded to ``uint8``, so a ``.keras`` model and its exports
see the same pixels.
"""

from __future__ import annotations

import csv
import glob
import os
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import _ship_core as core
from . import _validate as V
from ._io import atomic_path
from .errors import DataNotFoundError, ImageReadError

__all__ = ["Predictor", "expand_inputs", "load_predictor", "predict_files", "write_csv"]

_GLOB_CHARS = set("*?[")


def expand_inputs(inputs: Sequence[str | os.PathLike[str]] | str | os.PathLike[str]) -> list[Path]:
    """Image files from files, folders (recursive, sorted) and glob patterns, in the order given.

    Parameters
    ----------
    inputs : str, os.PathLike or sequence of them

    Returns
    -------
    list of pathlib.Path
        Each file once (first occurrence kept).

    Raises
    ------
    DataNotFoundError
        An input that is missing, a pattern that matches nothing, or no image at all.
    """
    from .data import IMAGE_EXTENSIONS

    items = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    if not items:
        raise V.fail("inputs", "at least one file, folder or glob pattern", inputs)
    files: list[Path] = []
    for item in items:
        text = os.fspath(item)
        if _GLOB_CHARS & set(text) and not Path(text).exists():
            matches = sorted(Path(m) for m in glob.glob(text, recursive=True))
            found = [m for m in matches if m.is_file() and m.suffix.lower() in IMAGE_EXTENSIONS]
            if not found:
                raise DataNotFoundError(f"No image matches the pattern '{text}' (images: {list(IMAGE_EXTENSIONS)}).")
            files.extend(found)
        elif Path(text).is_dir():
            found = sorted(p for p in Path(text).rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
                           and not any(part.startswith(".") for part in p.relative_to(text).parts))
            if not found:
                raise DataNotFoundError(f"No image in the folder '{text}' (images: {list(IMAGE_EXTENSIONS)}).")
            files.extend(found)
        elif Path(text).is_file():
            files.append(Path(text))
        else:
            raise DataNotFoundError(f"No such file or folder: '{text}'.")
    return list(dict.fromkeys(files))


@dataclass(frozen=True)
class Predictor:
    """A model ready for [`predict_files`][visionkit.predict.predict_files], as [`load_predictor`][visionkit.predict.load_predictor] returns it.

    Attributes
    ----------
    predict : callable
        ``uint8 (N, H, W, C)`` → float64 ``(N, K)`` probabilities.
    size : (int, int)
        Input height and width the images are read at.
    channels : int
        1 or 3.
    class_names : list of str or None
    temperature : float or None
    source : str
        ``"keras"`` or the export format.
    """

    predict: Any
    size: tuple[int, int]
    channels: int
    class_names: list[str] | None
    temperature: float | None
    source: str


def _keras_predictor(model: Any) -> Predictor:
    from ._export_serving import input_size
    from .calibration import temperature_of
    from .training import class_names

    h, w, c = input_size(model)
    run = core.forward(model)
    dtype = np.dtype(getattr(model.inputs[0].dtype, "name", model.inputs[0].dtype))
    state: dict[str, str] = {}

    def predict(x: np.ndarray) -> np.ndarray:
        out = run(x.astype(dtype))
        state.setdefault("kind", core.output_kind(model, out))
        return core.softmax(core.logits_from_outputs(out, state["kind"]))

    return Predictor(predict, (h, w), c, class_names(model), temperature_of(model), "keras")


def load_predictor(model: Any, *, safe_mode: bool = True) -> Predictor:
    """A [`Predictor`][visionkit.predict.Predictor] from a model, a ``.keras`` file or an export.

    Parameters
    ----------
    model : keras.Model, Predictor, str or os.PathLike
        A model; a ``.keras`` file (loaded with
        [`training.load_model`][visionkit.training.load_model]); an export folder, a
        SavedModel folder, a ``.onnx`` or a ``.tflite`` file.
    safe_mode : bool, default True
        For ``.keras`` files: refuse Python code in them.

    Returns
    -------
    Predictor
    """
    if isinstance(model, Predictor):
        return model
    if isinstance(model, (str, os.PathLike)):
        path = Path(model)
        if path.is_file() and path.suffix.lower() == ".keras":
            from .training import load_model

            return _keras_predictor(load_model(path, safe_mode=safe_mode))
        from .export import load_exported

        exported = load_exported(path)
        resize = exported.metadata.get("input", {}).get("resized_to")
        shape = exported.metadata.get("input", {}).get("shape") or [None, None, None, 3]
        if resize is None:
            raise V.fail("model", "an export folder with its metadata.json (it gives the input size)", str(path))

        def run(x: np.ndarray) -> np.ndarray:
            return np.asarray(exported.predict(x), np.float64)

        return Predictor(run, (int(resize[0]), int(resize[1])), int(shape[-1]), exported.class_names,
                         exported.temperature, exported.format)
    import keras

    if isinstance(model, keras.Model):
        return _keras_predictor(model)
    raise V.fail("model", "a keras.Model, a .keras file or an export folder / file", model)


def _read(path: Path, size: tuple[int, int], channels: int) -> np.ndarray:
    from .data import load_image

    img = load_image(path, size=size)
    if channels == 1:
        img = (img @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _batches(files: list[Path], predictor: Predictor, batch_size: int, on_error: str,
             skipped: list[str]) -> Iterator[tuple[list[Path], np.ndarray]]:
    def load(chunk: list[Path]) -> tuple[list[Path], np.ndarray]:
        images, kept = [], []
        for f in chunk:
            try:
                images.append(_read(f, predictor.size, predictor.channels))
                kept.append(f)
            except (ImageReadError, DataNotFoundError) as exc:
                if on_error == "raise":
                    raise
                skipped.append(f"{f} ({exc})")
        empty = np.zeros((0, *predictor.size, predictor.channels), np.uint8)
        return kept, np.stack(images) if images else empty

    chunks = [files[i:i + batch_size] for i in range(0, len(files), batch_size)]
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        pending = pool.submit(load, chunks[0]) if chunks else None
        for i in range(len(chunks)):
            kept, images = pending.result()
            pending = pool.submit(load, chunks[i + 1]) if i + 1 < len(chunks) else None
            yield kept, images


def _row(path: Path, probs: np.ndarray, top_k: int, names: list[str] | None) -> dict[str, Any]:
    order = np.argsort(-probs, kind="stable")[:top_k]
    row: dict[str, Any] = {"path": str(path)}
    for rank, c in enumerate(order, start=1):
        row[f"class_{rank}"] = names[c] if names is not None and c < len(names) else str(int(c))
        row[f"probability_{rank}"] = float(probs[c])
    return row


def predict_files(
    model: Any,
    inputs: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
    *,
    output: str | os.PathLike[str] | None = None,
    top_k: int = 3,
    batch_size: int = 64,
    on_error: str = "raise",
    progress: bool = True,
    safe_mode: bool = True,
) -> list[dict[str, Any]]:
    """Top-k classes and probabilities of every image in files, folders and globs.

    Parameters
    ----------
    model : keras.Model, str or os.PathLike
        A model, a ``.keras`` file, or an export folder / file (see
        [`load_predictor`][visionkit.predict.load_predictor]).
    inputs : str, os.PathLike or sequence of them
        Image files, folders (searched recursively) and glob patterns (``**``
        allowed), see [`expand_inputs`][visionkit.predict.expand_inputs].
    output : str or os.PathLike, optional
        Also write the rows as CSV (columns ``path``, ``class_1``,
        ``probability_1``, ... ``class_k``, ``probability_k``), atomically.
    top_k : int, default 3
        Classes per image (at most the number of classes).
    batch_size : int, default 64
        Images per forward pass.
    on_error : {"raise", "skip"}, default "raise"
        An unreadable image: raise [`ImageReadError`][visionkit.errors.ImageReadError],
        or skip it (one warning lists the skipped files).
    progress : bool, default True
        A progress bar over the images.
    safe_mode : bool, default True
        For ``.keras`` files: refuse Python code in them.

    Returns
    -------
    list of dict
        One row per image, in input order: ``path``, then ``class_i`` (the class
        name, else its index as a string) and ``probability_i`` (float in ``[0, 1]``).
    """
    top_k = V.integer("top_k", top_k, minimum=1)
    batch_size = V.integer("batch_size", batch_size, minimum=1)
    V.one_of("on_error", on_error, ("raise", "skip"))
    predictor = load_predictor(model, safe_mode=safe_mode)
    files = expand_inputs(inputs)
    from tqdm.auto import tqdm

    rows: list[dict[str, Any]] = []
    skipped: list[str] = []
    with tqdm(total=len(files), disable=not progress, desc="predict", unit="img") as bar:
        for kept, images in _batches(files, predictor, batch_size, on_error, skipped):
            before = bar.n
            if len(images):
                probs = predictor.predict(images)
                k = min(top_k, probs.shape[1])
                rows.extend(_row(f, p, k, predictor.class_names) for f, p in zip(kept, probs))
            bar.update(min(len(files), before + batch_size) - before)
    if skipped:
        warnings.warn(f"Skipped {len(skipped)} unreadable image(s): " + "; ".join(skipped[:10]), stacklevel=2)
    if output is not None:
        write_csv(rows, output)
    return rows


def write_csv(rows: list[dict[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Write prediction rows as CSV atomically; the columns of the widest row."""
    columns = max((list(r) for r in rows), key=len, default=["path"])
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in r.items()})
    return Path(path)
