"""``visionkit filters``: the patterns a layer's filters respond to, as one mosaic."""

from __future__ import annotations

import argparse

from .._viz_features import filter_grid  # TensorFlow-free until called
from ._common import add_progress, positive_int
from ._model import add_model_command, default_of


def register(sub: argparse._SubParsersAction) -> None:
    p = add_model_command(
        sub,
        "filters",
        help="mosaic of the input patterns a layer's filters respond to most",
        description="Gradient ascent from noisy grey images, one per filter; writes the "
        "patterns as one PNG mosaic (8x8 for 64 filters).",
        run=run,
        output="filters.png",
        output_help="output PNG",
        rescale=False,
    )
    p.add_argument("layer", metavar="LAYER", help="layer name ('outer/inner' for nested)")
    p.add_argument("--filters", type=positive_int, default=default_of(filter_grid, "filters"),
                   help="number of filters (default: %(default)s)")
    p.add_argument("--size", type=positive_int, default=default_of(filter_grid, "size"),
                   help="pattern side in pixels (default: %(default)s; models with a fixed input size use theirs)")
    p.add_argument("--steps", type=positive_int, default=default_of(filter_grid, "steps"),
                   help="gradient-ascent steps (default: %(default)s)")
    p.add_argument("--margin", type=int, default=default_of(filter_grid, "margin"),
                   help="pixels between tiles (default: %(default)s)")
    p.add_argument("--seed", type=int, default=default_of(filter_grid, "seed"),
                   help="seed of the starting noise (default: %(default)s)")
    low, high = default_of(filter_grid, "value_range")
    p.add_argument("--value-range", type=float, nargs=2, default=(low, high), metavar=("LOW", "HIGH"),
                   help=f"range of the model's input values (default: {low:g} {high:g})")
    add_progress(p)


def run(args: argparse.Namespace) -> int:
    from ..data import save_image
    from ._common import require_inputs
    from ._model import load_model

    require_inputs(("MODEL", args.model, "file"))
    model = load_model(args.model, unsafe=args.unsafe_load, command=args.command)
    grid = filter_grid(model, args.layer, filters=args.filters, size=args.size, margin=args.margin,
                       steps=args.steps, seed=args.seed, value_range=tuple(args.value_range),
                       progress=not args.quiet)
    dest = save_image(args.output, grid)
    print(f"{args.layer}: {grid.shape[1]}x{grid.shape[0]} mosaic -> {dest}")
    return 0
