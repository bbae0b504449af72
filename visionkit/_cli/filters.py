"""``visionkit filters``: the patterns a layer's filters respond to, as one mosaic."""

from __future__ import annotations

import argparse
from pathlib import Path

from .._backbones import PRESETS
from .._viz_features import filter_grid  # TensorFlow-free until called
from ._common import add_progress, positive_int, weights_arg
from ._model import add_model_command, default_of


def register(sub: argparse._SubParsersAction) -> None:
    p = add_model_command(
        sub,
        "filters",
        help="mosaic of the input patterns a layer's filters respond to most",
        description="Gradient ascent from noisy grey images, one per filter; writes the "
        "patterns as one PNG mosaic (8x8 for 64 filters). Either MODEL LAYER (a saved model), "
        "or --backbone NAME [LAYER] (a keras.applications backbone; without LAYER, one mosaic "
        "per filter layer of its preset, OUT's name + '_LAYER.png').",
        run=run,
        output="filters.png",
        output_help="output PNG",
        rescale=False,
        model_optional=True,
    )
    p.add_argument("layer", metavar="LAYER", nargs="?", help="layer name ('outer/inner' for nested)")
    p.add_argument("--backbone", choices=sorted(PRESETS), default=None,
                   help="use this keras.applications backbone instead of MODEL (its preset's input range)")
    p.add_argument("--weights", type=weights_arg, default="imagenet",
                   help="with --backbone: imagenet (default), none (random) or a weights file")
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
    p.add_argument("--value-range", type=float, nargs=2, default=None, metavar=("LOW", "HIGH"),
                   help=f"range of the model's input values (default: {low:g} {high:g}; "
                   "with --backbone its preset's input range)")
    add_progress(p)
    p.set_defaults(parser=p, default_value_range=(low, high))


def run(args: argparse.Namespace) -> int:
    from ..data import save_image
    from ._common import require_inputs

    if args.backbone is not None:
        if args.model is not None and args.layer is not None:
            args.parser.error("give either MODEL LAYER or --backbone NAME [LAYER], not both MODEL and --backbone")
        return _run_backbone(args, args.layer or args.model)
    if args.model is None or args.layer is None:
        args.parser.error("MODEL and LAYER are required without --backbone")
    from ._model import load_model

    require_inputs(("MODEL", args.model, "file"))
    model = load_model(args.model, unsafe=args.unsafe_load, command=args.command)
    grid = filter_grid(model, args.layer, filters=args.filters, size=args.size, margin=args.margin,
                       steps=args.steps, seed=args.seed, value_range=tuple(args.value_range or args.default_value_range),
                       progress=not args.quiet)
    dest = save_image(args.output, grid)
    print(f"{args.layer}: {grid.shape[1]}x{grid.shape[0]} mosaic -> {dest}")
    return 0


def _run_backbone(args: argparse.Namespace, layer: str | None) -> int:
    from .._backbones import preset
    from ..data import save_image
    from ._common import require_inputs

    require_inputs(("--weights", args.weights, "file"))
    record = preset(args.backbone)
    model = record.build(weights=args.weights, include_top=False, input_shape=(None, None, 3), float32=True)
    layers = [layer] if layer else list(record.filter_layers)
    out = Path(args.output)
    for name in layers:
        grid = filter_grid(model, name, filters=args.filters, size=max(args.size, record.min_size), margin=args.margin,
                           steps=args.steps, seed=args.seed,
                           value_range=tuple(args.value_range or record.input_range), progress=not args.quiet)
        dest = save_image(out if layer else out.with_name(f"{out.stem}_{name}{out.suffix or '.png'}"), grid)
        print(f"{record.name} {name}: {grid.shape[1]}x{grid.shape[0]} mosaic -> {dest}")
    return 0
