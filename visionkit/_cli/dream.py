"""``visionkit dream``: DeepDream on an image file."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import add_progress, positive_float, positive_int, weights_arg


def parse_layers(text: str) -> dict[str, float]:
    """argparse type: ``name=weight,name2=weight2`` (a bare name weighs 1)."""
    layers: dict[str, float] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, weight = part.partition("=")
        name = name.strip()
        if not name:
            raise argparse.ArgumentTypeError(f"expected name=weight pairs separated by commas, got {text!r}")
        try:
            layers[name] = float(weight) if sep else 1.0
        except ValueError:
            raise argparse.ArgumentTypeError(f"layer {name!r}: expected a number after '=', got {weight!r}") from None
    if not layers:
        raise argparse.ArgumentTypeError(f"expected at least one layer name, got {text!r}")
    return layers


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "dream",
        help="DeepDream an image (InceptionV3, octaves, tiled gradients)",
        description="Amplify what InceptionV3's layers see in IMAGE by gradient ascent on its "
        "pixels, from the smallest octave up, tile by tile (any image size).",
    )
    p.add_argument("image", help="input image file")
    p.add_argument("-o", "--output", required=True, help="output image file (.png, .jpg, ...)")
    p.add_argument("--octaves", type=positive_int, default=3, help="number of scales (default: 3)")
    p.add_argument("--octave-scale", type=positive_float, default=1.4, help="size ratio between octaves (default: 1.4)")
    p.add_argument("--steps", type=positive_int, default=20, help="gradient-ascent steps per octave (default: 20)")
    p.add_argument("--step-size", type=positive_float, default=0.01, help="step size (default: 0.01)")
    p.add_argument("--layers", type=parse_layers, default=None,
                   help="layers and weights, e.g. mixed4=1,mixed5=1.5 (default: mixed4..mixed7)")
    p.add_argument("--tile-size", type=positive_int, default=512, help="gradient tile size in pixels (default: 512)")
    p.add_argument("--max-loss", type=float, default=None, help="stop an octave once the loss exceeds this")
    p.add_argument("--max-dim", type=positive_int, default=None, help="resize the input so its longer side is this")
    p.add_argument("--seed", type=int, default=None, help="seed of the random shifts")
    p.add_argument("--weights", type=weights_arg, default="imagenet",
                   help="'imagenet' (default), 'none' (random) or a weights file")
    add_progress(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .. import _validate as V
    from ..data import _SAVE_FORMATS, load_image, save_image
    from ..dream import deep_dream

    if Path(args.output).suffix.lower() not in _SAVE_FORMATS:  # fail before the long dream
        raise V.fail("--output", f"a file name ending in one of {sorted(_SAVE_FORMATS)}", args.output)
    image = load_image(args.image, max_dim=args.max_dim)
    out = deep_dream(
        image,
        weights=args.weights,
        layers=args.layers,
        octaves=args.octaves,
        octave_scale=args.octave_scale,
        steps=args.steps,
        step_size=args.step_size,
        max_loss=args.max_loss,
        tile_size=args.tile_size,
        seed=args.seed,
        progress=not args.quiet,
    )
    path = save_image(Path(args.output), out)
    print(f"wrote {path} ({out.shape[1]}x{out.shape[0]})")
    return 0
