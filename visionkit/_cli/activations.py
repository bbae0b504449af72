"""``visionkit activations``: every channel of the conv/pool layers for one image."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from .._viz_features import activations, plot_activations  # TensorFlow-free until called
from ._common import positive_int
from ._model import add_model_command, default_of


def register(sub: argparse._SubParsersAction) -> None:
    p = add_model_command(
        sub,
        "activations",
        help="plot the intermediate activations of a saved .keras model for one image",
        description="Write one PNG per layer (default: every conv/pool layer, nested ones "
        "included) showing each channel's activation as a tile.",
        run=run,
        output="activations",
        output_help="output folder",
    )
    p.add_argument("image", metavar="IMAGE", help="an image file")
    p.add_argument("--layers", nargs="+", default=default_of(activations, "layers"),
                   help="layer names (default: every conv/pool layer)")
    p.add_argument("--images-per-row", type=positive_int, default=default_of(plot_activations, "images_per_row"),
                   help="tiles per row (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    from .._io import save_figure
    from ._common import require_inputs
    from ._model import load_images, load_model

    require_inputs(("MODEL", args.model, "file"), ("IMAGE", args.image, "file"))
    model = load_model(args.model, unsafe=args.unsafe_load, command=args.command)
    image = load_images(model, [args.image], rescale=args.rescale)[0]
    figures = plot_activations(activations(model, image, layers=args.layers), images_per_row=args.images_per_row)
    out = Path(args.output)
    for i, (name, fig) in enumerate(figures.items()):
        dest = save_figure(fig, out / f"{i:02d}_{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png")
        print(f"{name} -> {dest}")
    return 0
