"""``visionkit gradcam``: Grad-CAM heatmaps over images for a saved model."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..gradcam import METHODS, grad_cam, overlay  # TensorFlow-free until called
from ._common import number_in, positive_int
from ._model import add_model_command, default_of


def register(sub: argparse._SubParsersAction) -> None:
    p = add_model_command(
        sub,
        "gradcam",
        help="Grad-CAM heatmaps of a saved .keras classifier over images",
        description="Write one PNG per image: the image with the Grad-CAM heatmap of the "
        "predicted (or given) class painted over it. Models that carry class names have "
        "them printed.",
        run=run,
        output="gradcam",
        output_help="output folder",
    )
    p.add_argument("images", metavar="IMAGE", nargs="+", help="image files")
    p.add_argument("--layer", default=default_of(grad_cam, "layer"),
                   help="layer name ('outer/inner' for nested); default: a known backbone's preset layer (visionkit.backbones), else the last 4-D layer")
    p.add_argument("--class", dest="class_index", type=int, default=default_of(grad_cam, "class_index"),
                   help="class index (default: each image's top class)")
    p.add_argument("--method", choices=list(METHODS), default=default_of(grad_cam, "method"),
                   help="CAM method (default: %(default)s)")
    p.add_argument("--aug-smooth", action="store_true",
                   help="average the maps of flipped and zoomed-out copies (6x the work)")
    p.add_argument("--eigen-smooth", action="store_true",
                   help="first principal component of the weighted activations (not for fullgrad)")
    p.add_argument("--alpha", type=number_in(0.0, 1.0), default=default_of(overlay, "alpha"),
                   help="heatmap opacity in [0, 1] (default: %(default)s)")
    p.add_argument("--batch-size", type=positive_int, default=default_of(grad_cam, "batch_size"),
                   help="images per step (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from .._heads import is_logits
    from .._labels import class_names
    from ..data import save_image
    from ._common import output_names, require_inputs
    from ._model import load_images, load_model

    require_inputs(("MODEL", args.model, "file"), *(("IMAGE", image, "file") for image in args.images))
    model = load_model(args.model, unsafe=args.unsafe_load, command=args.command)
    names = class_names(model)
    threshold = 0.0 if is_logits(model) else 0.5  # one-unit head: its decision threshold

    def shown(c: int) -> str:
        return f"{c} ({names[c]})" if names is not None and 0 <= c < len(names) else str(c)

    images = load_images(model, args.images, rescale=args.rescale)
    batches = [images] if images.dtype != object else [im[None] for im in images]
    out_dir = Path(args.output)
    files = output_names(args.images, "_gradcam.png")  # one per input, never overwritten by another
    i = 0
    for batch in batches:
        maps = grad_cam(model, batch, class_index=args.class_index, layer=args.layer,
                        method=args.method, batch_size=args.batch_size,
                        aug_smooth=args.aug_smooth, eigen_smooth=args.eigen_smooth)
        scores = np.asarray(model(batch, training=False)).reshape(len(batch), -1)
        for img, heat, p in zip(batch, maps, scores):
            src = Path(args.images[i])
            top = int(p.argmax()) if p.size > 1 else int(p[0] > threshold)
            cls = args.class_index if args.class_index is not None else top
            dest = save_image(out_dir / files[i], overlay(img / args.rescale, heat, alpha=args.alpha))
            print(f"{src}: class {shown(cls)} (top class {shown(top)}) -> {dest}")
            i += 1
    return 0
