"""``visionkit explain``: which explanation is faithful, and where a saved classifier errs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..explain import DEFAULT_METHODS, METRICS, compare_methods  # TensorFlow-free until called
from ._common import positive_int
from ._model import add_model_command, default_of


def _methods(text: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated method names, got {text!r}")
    return names


def register(sub: argparse._SubParsersAction) -> None:
    p = add_model_command(
        sub,
        "explain",
        help="compare explanation methods and interpret a saved .keras classifier on an image folder",
        description="Read a class-per-folder image tree (or its test/ split, else validation/) at the "
        "model's input size; score explanation methods by a faithfulness metric on the first "
        "--limit images (methods.md, methods.json, methods.png) and write the confusion matrix "
        "(confusion_matrix.json, .png), the classification report (report.json) and the "
        "highest-loss images (top_losses.png).",
        run=run,
        output="explain",
        output_help="output folder",
    )
    p.add_argument("directory", metavar="DIR", help="class-per-folder image tree")
    p.add_argument("--methods", type=_methods, default=list(DEFAULT_METHODS),
                   help="comma-separated CAM variants or visionkit.gradcam attribution names "
                   f"(default: {','.join(DEFAULT_METHODS)})")
    p.add_argument("--metric", choices=list(METRICS), default=default_of(compare_methods, "metric"),
                   help="faithfulness metric (default: %(default)s)")
    p.add_argument("--limit", type=positive_int, default=16,
                   help="images used for the method comparison (default: %(default)s)")
    p.add_argument("--layer", default=None, help="layer of the CAM methods (default: the last 4-D layer)")
    p.add_argument("--top-k", type=positive_int, default=9, help="highest-loss images drawn (default: %(default)s)")
    p.add_argument("--batch-size", type=positive_int, default=default_of(compare_methods, "batch_size"),
                   help="images per step (default: %(default)s)")


def _dataset(model: Any, directory: str, *, batch_size: int, rescale: float) -> tuple[Any, list[str]]:
    """The unshuffled ``(images, labels)`` batches to interpret, and the folder's class names."""
    import tensorflow as tf

    from .. import _validate as V
    from ..data import folder_splits, image_folder

    shape = tuple(model.inputs[0].shape[1:]) if model.inputs else ()
    if len(shape) != 3 or None in shape[:2] or shape[-1] not in (1, 3):
        raise V.fail("MODEL", "a model taking images of a fixed size (H, W, 1 or 3)", f"input shape {shape}")
    size = (int(shape[0]), int(shape[1]))
    root = Path(directory)
    if (root / "train").is_dir():
        splits = folder_splits(root, image_size=size, batch_size=batch_size, validation_split=None, label_mode="int")
        ds = splits.test if splits.test is not None else splits.validation
        if ds is None:
            raise V.fail("DIR", "a class-per-folder tree, or splits with a test/ or validation/ folder", directory)
        names = list(splits.class_names)
    else:
        ds = image_folder(root, image_size=size, batch_size=batch_size, label_mode="int", shuffle=False)
        names = list(ds.class_names)
    grey = shape[-1] == 1

    def prepare(x: Any, y: Any) -> tuple[Any, Any]:
        x = tf.image.rgb_to_grayscale(x) if grey else x
        return x * rescale, y

    return ds.map(prepare), names


def _first(ds: Any, n: int) -> Any:
    import numpy as np

    out, count = [], 0
    for x, _y in ds:
        out.append(np.asarray(x))
        count += len(out[-1])
        if count >= n:
            break
    return np.concatenate(out)[:n]


def run(args: argparse.Namespace) -> int:
    from .. import _io
    from .._labels import class_names
    from ..interpret import interpret
    from ._model import load_model

    model = load_model(args.model)
    ds, folder_names = _dataset(model, args.directory, batch_size=args.batch_size, rescale=args.rescale)
    names = class_names(model) or folder_names
    out = Path(args.output)
    table = compare_methods(model, _first(ds, args.limit), methods=args.methods, metric=args.metric,
                            layer=args.layer, batch_size=args.batch_size)
    _write_text(out / "methods.md", table.to_markdown() + "\n")
    _io.write_json(out / "methods.json", table.to_dict())
    _io.save_figure(table.figure(), out / "methods.png")
    result = interpret(model, ds, class_names=names if len(names) == _n_classes(model, names) else None,
                       batch_size=args.batch_size, keep=args.top_k)
    cm = result.confusion_matrix()
    _io.write_json(out / "confusion_matrix.json", {
        "class_names": list(result.class_names), "matrix": cm,
        "most_confused": [list(p) for p in result.most_confused()],
    })
    _io.save_figure(result.plot_confusion_matrix(), out / "confusion_matrix.png")
    report = result.classification_report()
    _io.write_json(out / "report.json", {**report.to_dict(), "examples": len(result.labels),
                                         "top_losses": result.top_losses(args.top_k).to_rows()})
    _io.save_figure(result.plot_top_losses(args.top_k, layer=args.layer), out / "top_losses.png")
    print(table.to_markdown())
    print(f"\n{len(result.labels)} images, accuracy {report.accuracy:.3f}; most confused: "
          f"{result.most_confused()[:3] or 'none'}")
    print(f"wrote {out}/: methods.md methods.json methods.png confusion_matrix.json confusion_matrix.png "
          "report.json top_losses.png")
    return 0


def _n_classes(model: Any, names: list[str]) -> int:
    """The number of classes of the model's head (2 for one unit)."""
    units = int(model.outputs[0].shape[-1]) if model.outputs else len(names)
    return 2 if units == 1 else units


def _write_text(path: Path, text: str) -> None:
    from .. import _io

    with _io.atomic_path(path) as tmp:
        tmp.write_text(text)
