"""``visionkit export``: a .keras classifier to SavedModel / ONNX / LiteRT, parity-checked."""

from __future__ import annotations

import argparse

from ._common import positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a .keras classifier to SavedModel, ONNX or LiteRT, with a parity check",
        description="Write an export folder: the model (uint8 images of any size in, class probabilities out, "
        "resize and preprocessing inside), labels.txt, metadata.json (model card) and parity.json. The "
        "written file is run by its own runtime against the Keras model on --images (else random images); "
        "a failed check exits 1.",
    )
    p.add_argument("model", metavar="MODEL", help="a .keras model file")
    p.add_argument("-o", "--output", default="export", help="export folder (default: %(default)s)")
    p.add_argument("--format", choices=["savedmodel", "onnx", "litert"], default="savedmodel",
                   help="(default: %(default)s)")
    p.add_argument("--quantize", choices=["int8"], default=None,
                   help="int8 LiteRT (needs --images: training images set the ranges)")
    p.add_argument("--images", nargs="+", metavar="IMAGES",
                   help="images (files, folders, globs) for the parity check and int8 ranges")
    p.add_argument("--limit", type=positive_int, default=200, help="at most this many --images (default: %(default)s)")
    p.add_argument("--unsafe-load", action="store_true",
                   help="load a model holding Python code (Lambda layers): only for files you trust")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ..export import export
    from ..predict import expand_inputs, load_predictor
    from ..report import training_record
    from ._common import require_inputs
    from ._model import load_model

    require_inputs(("MODEL", args.model, "file"))
    model = load_model(args.model, unsafe=args.unsafe_load, command=args.command)
    images = None
    if args.images:
        from ..data import load_image

        predictor = load_predictor(model)
        files = expand_inputs(args.images)[: args.limit]
        images = np.stack([np.clip(np.rint(load_image(f, size=predictor.size)), 0, 255).astype(np.uint8)
                           for f in files])
        if predictor.channels == 1:
            images = np.rint(images @ np.array([0.299, 0.587, 0.114]))[..., None].astype(np.uint8)
    record = training_record(args.model)
    result = export(model, args.output, format=args.format, quantize=args.quantize, representative_data=images,
                    metadata={"source_model": str(args.model), **({"training": record} if record else {})})
    print(f"exported -> {result.file}")
    return 0
