"""``visionkit gradcam``: Grad-CAM heatmaps over images for a saved model."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import positive_int
from ._model import add_model_options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "gradcam",
        help="Grad-CAM heatmaps of a saved .keras classifier over images",
        description="Write one PNG per image: the image with the Grad-CAM heatmap of the "
        "predicted (or given) class painted over it.",
    )
    p.add_argument("model", metavar="MODEL", help="a .keras model file")
    p.add_argument("images", metavar="IMAGE", nargs="+", help="image files")
    p.add_argument("-o", "--output", default="gradcam", help="output folder (default: gradcam)")
    p.add_argument("--layer", default=None, help="layer name ('outer/inner' for nested); default: the last 4-D layer")
    p.add_argument("--class", dest="class_index", type=int, default=None, help="class index (default: each image's top class)")
    p.add_argument("--method", default="gradcam", help="gradcam, gradcam++, layercam or hirescam (default: gradcam)")
    p.add_argument("--alpha", type=float, default=0.4, help="heatmap opacity (default: 0.4)")
    p.add_argument("--batch-size", type=positive_int, default=32, help="images per step (default: 32)")
    add_model_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from .._validate import one_of
    from ..data import save_image
    from ..gradcam import METHODS, grad_cam, overlay
    from ._model import load_images, load_model

    one_of("method", args.method, METHODS)
    model = load_model(args.model)
    images = load_images(model, args.images, rescale=args.rescale)
    batches = [images] if images.dtype != object else [im[None] for im in images]
    out_dir = Path(args.output)
    i = 0
    for batch in batches:
        maps = grad_cam(model, batch, class_index=args.class_index, layer=args.layer,
                        method=args.method, batch_size=args.batch_size)
        probs = np.asarray(model(batch, training=False)).reshape(len(batch), -1)
        for img, heat, p in zip(batch, maps, probs):
            src = Path(args.images[i])
            top = int(p.argmax()) if p.size > 1 else int(p[0] > 0.5)
            cls = args.class_index if args.class_index is not None else top
            dest = save_image(out_dir / f"{src.stem}_gradcam.png", overlay(img / args.rescale, heat, alpha=args.alpha))
            print(f"{src}: class {cls} (top class {top}) -> {dest}")
            i += 1
    return 0
