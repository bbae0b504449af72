"""Options and outputs shared by the training sub-commands (private).

Every training command takes the shared training options of
[`visionkit.training.TrainOptions`][visionkit.training.TrainOptions] under the same names (``--epochs``,
``--batch-size``, ...), with the choices and defaults of the library itself, and writes
its outputs through [`visionkit.training.TrainResult.save`][visionkit.training.TrainResult.save].
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._options import AUGMENT_PRESETS, LR_SCHEDULES, OPTIMIZERS, TrainOptions
from ..device import PRECISIONS, STRATEGIES
from ..errors import VisionkitError
from ._common import (
    add_output,
    add_progress,
    non_negative_int,
    number_in,
    positive_float,
    positive_int,
)

_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainOptions)}


def add_training_options(p: argparse.ArgumentParser, *, defaults: Mapping[str, Any], output: str,
                         shown: Mapping[str, str] | None = None) -> None:
    """Add the options every training sub-command shares; ``defaults`` are the recipe's.

    ``shown`` maps an option's name to the text of its default in the help, for options
    whose default the command fills in later (it depends on another option, as
    ``visionkit cifar10 --recipe``): those are left ``None`` in the parser.
    """
    from .._options import RESUME_MODES  # (local: this function's own import)

    shown = dict(shown or {})
    d = {**_DEFAULTS, **defaults, **dict.fromkeys(shown)}

    def default(name: str, text: str) -> str:
        return f"(default: {shown.get(name, text)})".replace("%", "%%")

    p.add_argument("--epochs", type=positive_int, default=d["epochs"], help=f"total epochs {default('epochs', d['epochs'])}")
    p.add_argument("--batch-size", type=positive_int, default=d["batch_size"],
                   help="batch size per replica; the global batch is this times the number of replicas "
                   + default("batch_size", d["batch_size"]))
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=d["optimizer"], help=default("optimizer", d["optimizer"]))
    p.add_argument("--learning-rate", type=positive_float, default=d["learning_rate"],
                   help="learning rate " + default("learning_rate", f"{d['learning_rate']:g}" if d["learning_rate"]
                                                   else "the optimizer's"))
    p.add_argument("--lr-schedule", choices=LR_SCHEDULES, default=d["lr_schedule"],
                   help="learning rate constant, decaying to 0 along a half cosine over --epochs, or one cycle (up over "
                   "the first 30%% of the steps, then down) "
                   + default("lr_schedule", d["lr_schedule"]))
    add_output(p, output)
    p.add_argument("--checkpoint-dir", default=None,
                   help="folder for resumable checkpoints: rerun the same command to resume after a crash")
    p.add_argument("--resume", choices=RESUME_MODES, default=d["resume"],
                   help="with a --checkpoint-dir that holds a run: auto resumes it if the settings match and "
                   "refuses otherwise; weights continues from its last good weights with the new settings "
                   "(a lower --learning-rate after a NaN loss, say) and a fresh optimizer; never refuses it "
                   f"(default: {d['resume']})")
    p.add_argument("--restart-from-checkpoint", dest="resume", action="store_const", const="weights",
                   help="the same as --resume weights")
    p.add_argument("--log-dir", default=None, help="folder for TensorBoard logs and metrics.csv")
    p.add_argument("--strategy", choices=STRATEGIES, default=None,
                   help="tf.distribute strategy (default: none, a single device)")
    p.add_argument("--precision", choices=PRECISIONS, default=None,
                   help="Keras dtype policy to build the model under; auto picks the fastest for this machine "
                   + default("precision", "the global policy, float32"))
    p.add_argument("--seed", type=non_negative_int, default=None, help="seed of the data shuffling, splits and augmentation")
    add_trick_options(p, d, default)
    add_progress(p)


def add_trick_options(p: argparse.ArgumentParser, d: Mapping[str, Any], default: Any) -> None:
    """The training tricks of the shared options: --ema, --tta, --label-smoothing, --augment."""
    p.add_argument("--ema", type=number_in(0, 1, open_low=True, open_high=True), default=d["ema"], metavar="DECAY",
                   help="keep a moving average of the weights with this decay per step (e.g. 0.999) and end "
                   "with it " + default("ema", d["ema"] or "none"))
    p.add_argument("--tta", action=argparse.BooleanOptionalAction, default=d["tta"],
                   help="test metrics with flip test-time augmentation (and without, as *_no_tta) "
                   + default("tta", "on" if d["tta"] else "off"))
    p.add_argument("--label-smoothing", type=number_in(0, 1, open_high=True), default=d["label_smoothing"],
                   metavar="EPS", help="label smoothing of the default loss " + default("label_smoothing",
                                                                                  d["label_smoothing"]))
    p.add_argument("--augment", dest="augment_preset", choices=AUGMENT_PRESETS, default=None,
                   help="an augmentation preset on whole batches in the tf.data pipeline (replaces a "
                   "recipe's own in-model augmentation) " + default("augment", d["augment"]))


def training_options(args: argparse.Namespace) -> dict[str, Any]:
    """The shared training options from parsed arguments, as keyword arguments.

    ``--augment`` is left out for a command with its own ``augment`` switch (``--no-augment``):
    the command passes ``args.augment_preset`` or its switch as the recipe's ``augment``.
    """
    return {
        "epochs": args.epochs, "batch_size": args.batch_size, "optimizer": args.optimizer,
        "learning_rate": args.learning_rate, "lr_schedule": args.lr_schedule,
        "checkpoint_dir": args.checkpoint_dir, "resume": args.resume, "log_dir": args.log_dir,
        "strategy": args.strategy,
        "precision": args.precision, "seed": args.seed, "progress": not args.quiet,
        "ema": args.ema, "tta": args.tta, "label_smoothing": args.label_smoothing,
    } | ({} if args.augment_preset is None or hasattr(args, "augment") else {"augment": args.augment_preset})


def prepare_output(output: str) -> Path:
    """Check, before any training, that the output folder can be written; create it.

    A file in the way (at ``output`` or above it), a folder that cannot be created or
    one that refuses a probe file is an
    [`InvalidArgumentError`][visionkit.errors.InvalidArgumentError] naming ``--output``,
    so a command never trains for nothing.
    """
    from ..errors import InvalidArgumentError

    out = Path(output)
    if out.exists() and not out.is_dir():
        raise InvalidArgumentError(f"--output: '{out}' is a file, not a folder; nothing was trained.")
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".visionkit-probe-", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise InvalidArgumentError(
            f"--output: cannot write into '{out}' ({type(exc).__name__}: {exc.strerror or exc}); nothing was trained."
        ) from None
    return out


class OutputWriteError(VisionkitError, OSError):
    """The outputs could not be written where asked (they may have been saved elsewhere)."""


def write_outputs(output: str, result: Any, *, checkpoint_dir: str | None = None) -> Any:
    """Write ``model.keras``, ``curves.png`` and ``metrics.json`` into ``output``; print them.

    When that fails (a full disk, a folder made read-only during training), the
    outputs are saved to a fallback folder instead, ``checkpoint_dir`` when given, else
    a new temporary folder, and ``OutputWriteError`` says where (the command exits 1).
    """
    try:
        saved = result.save(output)
    except OSError as exc:
        raise OutputWriteError(_save_elsewhere(output, result, exc, checkpoint_dir)) from None
    shown = ", ".join(f"{k} {v:.4f}" for k, v in sorted(result.metrics.items()))
    print(f"test: {shown}")
    for name in ("model", "curves", "metrics"):
        if name in saved.paths:
            print(f"{name:<8} {saved.paths[name]}")
    return saved


def _save_elsewhere(output: str, result: Any, error: OSError, checkpoint_dir: str | None) -> str:
    """Save ``result`` to the first fallback folder that takes it; return the message to show."""
    reason = f"{type(error).__name__}: {error.strerror or error}"
    tried = []
    for folder in ([checkpoint_dir] if checkpoint_dir else []) + [None]:  # None: a new temporary folder
        try:
            saved = result.save(folder or tempfile.mkdtemp(prefix="visionkit-output-"))
        except OSError as exc:
            tried.append(f"{type(exc).__name__}: {exc.strerror or exc}")
            continue
        return (f"could not write the outputs into '{output}' ({reason}); the trained model was saved to "
                f"'{saved.paths['model']}' instead, with curves.png and metrics.json beside it.")
    return (f"could not write the outputs into '{output}' ({reason}), nor into a fallback folder "
            f"({'; '.join(tried)}); the trained model is lost" +
            (f" (the checkpoints in '{checkpoint_dir}' remain)." if checkpoint_dir else "."))
