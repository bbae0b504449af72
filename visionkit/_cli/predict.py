"""``visionkit predict``: top-k classes of image files for a .keras model or an exported one."""

from __future__ import annotations

import argparse

from ..predict import predict_files  # TensorFlow-free until called
from ._common import positive_int
from ._model import default_of


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="top-k classes and probabilities of images (files, folders, globs) into a CSV",
        description="Predict every image in the given files, folders (recursive) and glob patterns, in "
        "batches with a progress bar, and write path, class_1, probability_1, ... to a CSV. MODEL is a "
        ".keras file or an export (folder, SavedModel, .onnx, .tflite) written by 'visionkit export'. "
        "Probabilities are calibrated when the model carries a temperature.",
    )
    p.add_argument("model", metavar="MODEL", help="a .keras file or an export folder / file")
    p.add_argument("inputs", metavar="INPUT", nargs="+", help="image files, folders or glob patterns")
    p.add_argument("-o", "--output", default="predictions.csv", help="CSV file (default: %(default)s)")
    p.add_argument("--top-k", type=positive_int, default=default_of(predict_files, "top_k"),
                   help="classes per image (default: %(default)s)")
    p.add_argument("--batch-size", type=positive_int, default=default_of(predict_files, "batch_size"),
                   help="images per step (default: %(default)s)")
    p.add_argument("--on-error", choices=["raise", "skip"], default=default_of(predict_files, "on_error"),
                   help="an unreadable image: stop (raise) or skip it with a warning (default: %(default)s)")
    p.add_argument("--unsafe-load", action="store_true",
                   help="load a .keras model holding Python code (Lambda layers): only for files you trust")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ._common import require_inputs

    require_inputs(("MODEL", args.model, "any"))
    rows = predict_files(args.model, args.inputs, output=args.output, top_k=args.top_k, batch_size=args.batch_size,
                         on_error=args.on_error, progress=not args.quiet, safe_mode=not args.unsafe_load)
    print(f"{len(rows)} image(s) -> {args.output}")
    return 0
