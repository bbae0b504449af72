"""``visionkit filters``: the patterns a layer's filters respond to, as one mosaic."""

from __future__ import annotations

import argparse

from ._common import add_progress, positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "filters",
        help="mosaic of the input patterns a layer's filters respond to most",
        description="Gradient ascent from noisy grey images, one per filter; writes the "
        "patterns as one PNG mosaic (8x8 for 64 filters).",
    )
    p.add_argument("model", metavar="MODEL", help="a .keras model file")
    p.add_argument("layer", metavar="LAYER", help="layer name ('outer/inner' for nested)")
    p.add_argument("-o", "--output", default="filters.png", help="output PNG (default: filters.png)")
    p.add_argument("--filters", type=positive_int, default=64, help="number of filters (default: 64)")
    p.add_argument("--size", type=positive_int, default=64,
                   help="pattern side in pixels (default: 64; models with a fixed input size use theirs)")
    p.add_argument("--steps", type=positive_int, default=40, help="gradient-ascent steps (default: 40)")
    p.add_argument("--margin", type=int, default=5, help="pixels between tiles (default: 5)")
    p.add_argument("--seed", type=int, default=0, help="seed of the starting noise (default: 0)")
    p.add_argument("--value-range", type=float, nargs=2, default=(0.0, 255.0), metavar=("LOW", "HIGH"),
                   help="range of the model's input values (default: 0 255)")
    add_progress(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .._viz_features import filter_grid
    from ..data import save_image
    from ._model import load_model

    model = load_model(args.model)
    grid = filter_grid(model, args.layer, filters=args.filters, size=args.size, margin=args.margin,
                       steps=args.steps, seed=args.seed, value_range=tuple(args.value_range),
                       progress=not args.quiet)
    dest = save_image(args.output, grid)
    print(f"{args.layer}: {grid.shape[1]}x{grid.shape[0]} mosaic -> {dest}")
    return 0
