"""``visionkit style``: neural style transfer of an image in the style of painting(s)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import add_progress, positive_int, weights_arg


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def _init(text: str) -> str | float:
    if text in ("content", "noise"):
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'content', 'noise' or a noise ratio in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a noise ratio in [0, 1], got {text!r}")
    return value


def _scales(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(s) for s in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated sizes such as 256,512, got {text!r}") from None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "style",
        help="repaint an image in the style of a painting (neural style transfer, VGG-19)",
        description="Neural style transfer (Gatys et al.) with VGG-19: optimise the pixels of "
        "CONTENT against content and Gram-matrix style losses of STYLE (several STYLE images "
        "are blended). Writes the result to OUT.",
    )
    p.add_argument("content", metavar="CONTENT", help="content image file")
    p.add_argument("style", metavar="STYLE", nargs="+", help="style image file(s)")
    p.add_argument("-o", "--output", metavar="OUT", required=True, help="result image (.png, .jpg, ...)")
    p.add_argument("--steps", type=positive_int, default=1000, help="optimisation steps per scale (default 1000)")
    p.add_argument("--max-dim", type=positive_int, default=512, help="longer side of the result (default 512)")
    p.add_argument("--scales", type=_scales, default=None, help="coarse-to-fine sizes, e.g. 256,512 (overrides --max-dim)")
    p.add_argument("--content-weight", type=_non_negative, default=1e4, help="content loss weight (default 1e4)")
    p.add_argument("--style-weight", type=_non_negative, default=1e-2, help="style loss weight (default 1e-2)")
    p.add_argument("--tv-weight", type=_non_negative, default=1e2, help="total-variation weight (default 1e2)")
    p.add_argument("--optimizer", choices=("adam", "lbfgs"), default="adam", help="adam (default) or lbfgs (needs scipy)")
    p.add_argument("--learning-rate", type=float, default=5.0, help="Adam step size in pixel units (default 5)")
    p.add_argument("--init", type=_init, default="content", help="content (default), noise, or a noise ratio such as 0.6")
    p.add_argument("--pooling", choices=("avg", "max"), default="avg", help="VGG pooling (default avg)")
    p.add_argument("--preserve-color", action="store_true", help="keep the content's colours (luminance-only transfer)")
    p.add_argument("--style-scale", type=float, default=1.0, help="style image size relative to the result (default 1)")
    p.add_argument("--style-blend-weights", type=lambda t: tuple(float(v) for v in t.split(",")), default=None,
                   help="comma-separated weights of several STYLE images")
    p.add_argument("--save-every", type=positive_int, default=None, help="write intermediate PNGs every N steps")
    p.add_argument("--output-dir", default=None, help="folder of the intermediate PNGs (default: OUT's name + '_steps')")
    p.add_argument("--weights", type=weights_arg, default="imagenet",
                   help="VGG-19 weights: imagenet (default), none (random), or a weights file")
    p.add_argument("--seed", type=int, default=None, help="seed of the initial noise")
    add_progress(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..data import save_image
    from ..style import style_transfer

    out = Path(args.output)
    output_dir = args.output_dir
    if args.save_every and output_dir is None:
        output_dir = out.with_name(out.stem + "_steps")
    image = style_transfer(
        args.content,
        args.style if len(args.style) > 1 else args.style[0],
        max_dim=args.max_dim,
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
