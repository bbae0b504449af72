"""``visionkit dream``: DeepDream on an image file.

Defaults come from [`visionkit.dream.deep_dream`][visionkit.dream.deep_dream] and its layer preset; that module
does not import TensorFlow until a dream runs, so ``visionkit --help`` stays cheap.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .._backbones import PRESETS
from ..dream import INCEPTION_V3_LAYERS, deep_dream
from ._common import (
    add_progress,
    check_image_output,
    defaults_of,
    positive_float,
    positive_int,
    require_inputs,
    weights_arg,
)


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
    d = defaults_of(deep_dream)
    preset = ",".join(f"{name}={weight:g}" for name, weight in INCEPTION_V3_LAYERS.items())
    p = sub.add_parser(
        "dream",
        help="DeepDream an image (InceptionV3 or --backbone, octaves, tiled gradients)",
        description="Amplify what InceptionV3's (or --backbone's) layers see in IMAGE by gradient ascent on its "
        "pixels, from the smallest octave up, tile by tile (any image size).",
    )
    p.add_argument("image", help="input image file")
    p.add_argument("-o", "--output", required=True, help="output image file (.png, .jpg, ...)")
    p.add_argument("--octaves", type=positive_int, default=d["octaves"], help="number of scales (default: %(default)s)")
    p.add_argument("--octave-scale", type=positive_float, default=d["octave_scale"],
                   help="size ratio between octaves (default: %(default)s)")
    p.add_argument("--steps", type=positive_int, default=d["steps"], help="gradient-ascent steps per octave (default: %(default)s)")
    p.add_argument("--step-size", type=positive_float, default=d["step_size"], help="step size (default: %(default)s)")
    p.add_argument("--layers", type=parse_layers, default=d["layers"],
                   help=f"layers and weights, name=weight,... (default: the backbone's preset; {preset} for inception_v3)")
    p.add_argument("--backbone", choices=sorted(PRESETS), default=d["backbone"],
                   help="network to dream with (default: inception_v3)")
    p.add_argument("--tile-size", type=positive_int, default=d["tile_size"],
                   help="gradient tile size in pixels (default: %(default)s)")
    p.add_argument("--max-loss", type=float, default=d["max_loss"], help="stop an octave once the loss exceeds this")
    p.add_argument("--max-dim", type=positive_int, help="resize the input so its longer side is this (default: no resize)")
    p.add_argument("--seed", type=int, default=d["seed"], help="seed of the random shifts")
    p.add_argument("--weights", type=weights_arg, default=d["weights"],
                   help="'imagenet' (default), 'none' (random) or a weights file")
    add_progress(p)
    p.set_defaults(func=run, parser=p)


def run(args: argparse.Namespace) -> int:
    from ..data import load_image, save_image

    if check_image_output(args.parser, args.output):  # a usage error, found before the long dream
        return 2
    require_inputs(("IMAGE", args.image, "file"), ("--weights", args.weights, "file"))
    image = load_image(args.image, max_dim=args.max_dim)
    out = deep_dream(
        image,
        backbone=args.backbone,
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
