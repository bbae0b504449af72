"""``visionkit activations``: every channel of the conv/pool layers for one image."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from .._backbones import PRESETS
from .._viz_features import activations, plot_activations  # TensorFlow-free until called
from ._common import positive_int, weights_arg
from ._model import add_model_command, default_of


def register(sub: argparse._SubParsersAction) -> None:
    p = add_model_command(
        sub,
        "activations",
        help="plot the intermediate activations of a saved .keras model (or a --backbone) for one image",
        description="Write one PNG per layer (default: every conv/pool layer, nested ones "
        "included) showing each channel's activation as a tile. With --backbone NAME instead "
        "of MODEL: a keras.applications backbone, the image preprocessed for it, and by "
        "default the filter layers of its preset (visionkit.backbones).",
        run=run,
        output="activations",
        output_help="output folder",
        model_optional=True,
    )
    p.add_argument("image", metavar="IMAGE", help="an image file")
    p.add_argument("--layers", nargs="+", default=default_of(activations, "layers"),
                   help="layer names (default: every conv/pool layer; with --backbone its preset's filter layers)")
    p.add_argument("--images-per-row", type=positive_int, default=default_of(plot_activations, "images_per_row"),
                   help="tiles per row (default: %(default)s)")
    p.add_argument("--backbone", choices=sorted(PRESETS), default=None,
                   help="use this keras.applications backbone instead of MODEL")
    p.add_argument("--weights", type=weights_arg, default="imagenet",
                   help="with --backbone: imagenet (default), none (random) or a weights file")
    p.add_argument("--max-dim", type=positive_int, default=224,
                   help="with --backbone: longer side of the image (default: %(default)s)")
    p.set_defaults(parser=p)


def run(args: argparse.Namespace) -> int:
    from .._io import save_figure
    from ._common import require_inputs
    from ._model import load_images, load_model

    if (args.backbone is None) == (args.model is None):
        args.parser.error("give either MODEL or --backbone NAME (not both)")
    if args.backbone is not None:
        require_inputs(("IMAGE", args.image, "file"), ("--weights", args.weights, "file"))
        model, image, layers = _backbone_input(args)
    else:
        require_inputs(("MODEL", args.model, "file"), ("IMAGE", args.image, "file"))
        model = load_model(args.model, unsafe=args.unsafe_load, command=args.command)
        image, layers = load_images(model, [args.image], rescale=args.rescale)[0], args.layers
    figures = plot_activations(activations(model, image, layers=layers), images_per_row=args.images_per_row)
    out = Path(args.output)
    for i, (name, fig) in enumerate(figures.items()):
        dest = save_figure(fig, out / f"{i:02d}_{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png")
        print(f"{name} -> {dest}")
    return 0


def _backbone_input(args: argparse.Namespace):
    import numpy as np

    from .._backbones import preset
    from ..data import load_image

    record = preset(args.backbone)
    model = record.build(weights=args.weights, include_top=False, input_shape=(None, None, 3))
    image = load_image(args.image, max_dim=max(args.max_dim, record.min_size))
    image = np.asarray(record.preprocess_input()(image[None].copy()))[0]
    return model, image, args.layers or list(record.filter_layers)
