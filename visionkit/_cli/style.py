"""``visionkit style``: neural style transfer of an image in the style of painting(s).

Choices and defaults come from [`visionkit.style`][visionkit.style] (its constants and the defaults
of [`style_transfer`][visionkit.style.style_transfer]); that module does not import TensorFlow
until a transfer runs, so ``visionkit --help`` stays cheap.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from .._backbones import PRESETS
from ..style import INIT_MODES, OPTIMIZERS, POOLINGS, style_transfer
from ._common import (
    add_progress,
    check_image_output,
    defaults_of,
    number_in,
    positive_float,
    positive_int,
    require_inputs,
    weights_arg,
)

_non_negative = number_in(0.0, math.inf)
_noise_ratio = number_in(0.0, 1.0)



def _init(text: str) -> str | float:
    if text in INIT_MODES:
        return text
    try:
        return _noise_ratio(text)
    except argparse.ArgumentTypeError:
        shown = ", ".join(repr(m) for m in INIT_MODES)
        raise argparse.ArgumentTypeError(f"expected {shown} or a noise ratio in [0, 1], got {text!r}") from None


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(s) for s in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated sizes such as 256,512, got {text!r}") from None


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(s) for s in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers such as 2,1, got {text!r}") from None


def register(sub: argparse._SubParsersAction) -> None:
    d = defaults_of(style_transfer)
    p = sub.add_parser(
        "style",
        help="repaint an image in the style of a painting (neural style transfer, VGG-19 or --backbone)",
        description="Neural style transfer (Gatys et al.) with VGG-19 (or --backbone): optimise the pixels of "
        "CONTENT against content and Gram-matrix style losses of STYLE (several STYLE images "
        "are blended). Writes the result to OUT.",
    )
    p.add_argument("content", metavar="CONTENT", help="content image file")
    p.add_argument("style", metavar="STYLE", nargs="+", help="style image file(s)")
    p.add_argument("-o", "--output", metavar="OUT", required=True, help="result image (.png, .jpg, ...)")
    p.add_argument("--steps", type=positive_int, default=d["steps"], help="optimisation steps per scale (default %(default)s)")
    p.add_argument("--max-dim", type=positive_int, default=d["max_dim"], help="longer side of the result (default %(default)s)")
    p.add_argument("--scales", type=_ints, default=d["scales"], help="coarse-to-fine sizes, e.g. 256,512 (overrides --max-dim)")
    p.add_argument("--content-weight", type=_non_negative, default=d["content_weight"],
                   help="content loss weight (default %(default)g)")
    p.add_argument("--style-weight", type=_non_negative, default=d["style_weight"], help="style loss weight (default %(default)g)")
    p.add_argument("--tv-weight", type=_non_negative, default=d["tv_weight"], help="total-variation weight (default %(default)g)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=d["optimizer"],
                   help="%(choices)s (default %(default)s); lbfgs needs scipy")
    p.add_argument("--learning-rate", type=positive_float, default=d["learning_rate"],
                   help="Adam step size in pixel units (default %(default)g)")
    p.add_argument("--init", type=_init, default=d["init"],
                   help=f"{', '.join(INIT_MODES)} or a noise ratio such as 0.6 (default %(default)s)")
    p.add_argument("--pooling", choices=POOLINGS, default=d["pooling"], help="VGG pooling (default %(default)s)")
    p.add_argument("--preserve-color", action="store_true", help="keep the content's colours (luminance-only transfer)")
    p.add_argument("--style-scale", type=positive_float, default=d["style_scale"],
                   help="style image size relative to the result (default %(default)g)")
    p.add_argument("--style-blend-weights", type=_floats, default=d["style_blend_weights"],
                   help="comma-separated weights of several STYLE images")
    p.add_argument("--save-every", type=positive_int, default=d["save_every"], help="write intermediate PNGs every N steps")
    p.add_argument("--output-dir", default=d["output_dir"],
                   help="folder of the intermediate PNGs (default: OUT's name + '_steps')")
    p.add_argument("--backbone", choices=sorted(PRESETS), default=d["backbone"],
                   help="feature network; its preset layers (visionkit.backbones) are used (default %(default)s)")
    p.add_argument("--weights", type=weights_arg, default=d["weights"],
                   help="backbone weights: imagenet (default), none (random), or a weights file "
                   "(e.g. a VGG16 base with --backbone vgg16)")
    p.add_argument("--seed", type=int, default=d["seed"], help="seed of the initial noise")
    add_progress(p)
    p.set_defaults(func=run, parser=p)


def run(args: argparse.Namespace) -> int:
    from ..data import save_image

    if check_image_output(args.parser, args.output):  # a usage error, found before the long optimisation
        return 2
    require_inputs(("CONTENT", args.content, "file"), *(("STYLE", s, "file") for s in args.style),
                   ("--weights", args.weights, "file"))
    out = Path(args.output)
    output_dir = args.output_dir
    if args.save_every and output_dir is None:
        output_dir = out.with_name(out.stem + "_steps")
    image = style_transfer(
        args.content,
        args.style if len(args.style) > 1 else args.style[0],
        max_dim=args.max_dim,
        backbone=args.backbone,
        scales=args.scales,
        content_weight=args.content_weight,
        style_weight=args.style_weight,
        tv_weight=args.tv_weight,
        steps=args.steps,
        optimizer=args.optimizer,
        learning_rate=args.learning_rate,
        init=args.init,
        pooling=args.pooling,
        preserve_color=args.preserve_color,
        style_scale=args.style_scale,
        style_blend_weights=args.style_blend_weights,
        weights=args.weights,
        seed=args.seed,
        save_every=args.save_every,
        output_dir=output_dir,
        progress=not args.quiet,
    )
    save_image(out, image)
    print(f"wrote {out} ({image.shape[1]}x{image.shape[0]})")
    return 0
