"""``visionkit cifar10``: the CIFAR-10 recipes (``--recipe fast``, the default, or ``classic``)."""

from __future__ import annotations

import argparse

from ..convnets import FAST_VARIANTS, RECIPE_DEFAULTS
from ._common import number_in, positive_int
from ._recipe import add_training_options

RECIPES = {"fast": "train_cifar10_fast", "classic": "train_cifar10"}
# options whose default depends on --recipe: left None in the parser, filled by the recipe
_PER_RECIPE = ("epochs", "batch_size", "optimizer", "learning_rate", "lr_schedule", "precision", "tta",
               "label_smoothing")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "cifar10", help="train a CIFAR-10 convnet: the fast airbench94 recipe (default) or the classic one",
        description="Train a CIFAR-10 convnet and write model.keras, curves.png and metrics.json into the "
        "output folder. --recipe fast (default): airbench94 written with Keras (whitening, lookahead, "
        "alternating flips, test-time augmentation; about 94% in 10 epochs on a GPU); --recipe classic: "
        "the small convnet with augmentation and standardisation inside the model. Data: --data, else "
        "VISIONKIT_DATA, the Keras cache or a download; --sample uses the bundled sample. "
        "Expected time of the fast recipe's 10 epochs on the full data, as measured: 14 to 20 min on a "
        "2-core CPU with AVX512-BF16 (where --precision auto picks mixed_bfloat16; hosts of that kind differ), "
        "about 21 min in float32 on the same CPU, and on an AVX2-only CPU (no bfloat16 units, so auto is "
        "float32) about 84 min on a Zen 3 before the recipe's CPU layers, which take 15% less CPU per float32 "
        "step (on emulated AVX2 kernels: 1.3x to 1.5x the PyTorch reference's speed); AMX and ARM CPUs were not "
        "measured. --variant 95 (15 epochs, about 58 min on the same AVX512-BF16 CPU) took 3.4x the training time "
        "and reached 0.9170 (2 seeds). --variant 94-muon (Muon, 8 epochs of batch 2000) reached 0.9064 "
        "(5 seeds; the 94 budget 0.9069) in about 14 min on the same CPU, quiet; --variant 94-muon --epochs 10 "
        "reached 0.9106 (5 seeds) in about 17 min, the 94 budget's time. "
        "See the Fast CIFAR-10 docs page.",
    )
    p.add_argument("--recipe", choices=tuple(RECIPES), default="fast", help="which recipe (default: fast)")
    p.add_argument("--sample", action="store_true", help="use the bundled sample (offline)")
    p.add_argument("--data", default=None, metavar="PATH", help="where CIFAR-10 is (pickles, JPEG tree or archive)")
    p.add_argument("--variant", choices=FAST_VARIANTS, default=None,
                   help="fast: the budget, 94 (widths 64/256/256, 10 epochs), 95 (airbench95: widths "
                   "128/384/384, 15 epochs, about 3.3x the time) or 94-muon (airbench94_muon: Muon on the "
                   "convolution filters, batch 2000, 8 epochs, no lookahead; default: 94)")
    p.add_argument("--no-augment", dest="augment", action="store_const", const=False, default=None,
                   help="classic: no random flips/rotations/shifts")
    p.add_argument("--translation", type=number_in(0, 1), default=None,
                   help="classic: largest random shift, a fraction of the image size; 0 for none (default: 0.1)")
    p.add_argument("--rotation", type=number_in(0, 180), default=None, metavar="DEG",
                   help="classic: largest random rotation in degrees; the classic recipe is --rotation 25 "
                   "--translation 0 --lr-schedule constant (default: 0)")
    p.add_argument("--limit", type=positive_int, default=None, help="train on N examples only, drawn at random")
    add_training_options(p, defaults=RECIPE_DEFAULTS["train_cifar10_fast"], output="visionkit-cifar10",
                         shown=_per_recipe_defaults())
    p.set_defaults(func=run, parser=p)


def _per_recipe_defaults() -> dict[str, str]:
    """The help text of each ``_PER_RECIPE`` option's default: the fast recipe's, then the classic one's."""
    fast, classic = RECIPE_DEFAULTS["train_cifar10_fast"], RECIPE_DEFAULTS["train_cifar10"]
    special = {("fast", "learning_rate"): "11.5 per 1024 examples with sgd (10.0 with --variant 95), "
               "0.24 for the filters with muon",
               ("fast", "epochs"): f"{fast['epochs']} (15 with --variant 95, 8 with 94-muon)",
               ("fast", "batch_size"): f"{fast['batch_size']} (2000 with --variant 94-muon)",
               ("fast", "optimizer"): f"{fast['optimizer']} (muon with --variant 94-muon)",
               ("fast", "lr_schedule"): "the paper's triangle with sgd, a linear decay with muon",
               ("classic", "precision"): "the global policy",
               ("fast", "tta"): "on (flips and shifts)", ("classic", "tta"): "off",
               ("fast", "label_smoothing"): "0.2", ("classic", "label_smoothing"): "0"}
    shown = {}
    for dest in _PER_RECIPE:
        unset = "the optimizer's" if dest == "learning_rate" else "unset"
        shown[dest] = ", ".join(f"{name} {special.get((name, dest), d.get(dest, unset))}"
                                for name, d in (("fast", fast), ("classic", classic)))
    return shown


def run(args: argparse.Namespace) -> int:
    from .. import convnets
    from ._common import require_inputs, usage_error
    from ._recipe import prepare_output, training_options, write_outputs

    options = training_options(args)
    for name in _PER_RECIPE:  # unset: the recipe's own default
        if options[name] is None:
            del options[name]
    common = {"limit": args.limit, "sample": args.sample, "path": args.data}
    classic = {"augment": args.augment_preset or args.augment, "translation": args.translation,
               "rotation": args.rotation, "ema": options.pop("ema")}
    if args.recipe == "classic" and args.variant is not None:
        return usage_error(args.parser, "--variant: an option of --recipe fast only")
    if args.recipe == "fast":
        given = [f"--{k.replace('_', '-')}" if k != "augment" else "--augment/--no-augment"
                 for k, v in classic.items() if v is not None]
        if given:  # a usage error: these options belong to the other recipe
            return usage_error(args.parser, f"{', '.join(given)}: option(s) of --recipe classic only "
                               "(the fast recipe has its own augmentation)")
    require_inputs(("--data", args.data, "any"))
    prepare_output(args.output)
    if args.recipe == "fast":
        result = convnets.train_cifar10_fast(variant=args.variant or "94", **common, **options)  # its own tta and label_smoothing
    else:
        result = convnets.train_cifar10(**{k: v for k, v in classic.items() if v is not None}, **common, **options)
    write_outputs(args.output, result, checkpoint_dir=args.checkpoint_dir)
    return 0
