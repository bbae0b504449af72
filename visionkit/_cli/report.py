"""``visionkit report``: accuracy, calibration, robustness and confusion of a .keras classifier."""

from __future__ import annotations

import argparse

from ._common import non_negative_int, positive_int


def _ints(text: str) -> list[int]:
    try:
        values = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1 or max(values) > 5:
        raise argparse.ArgumentTypeError(f"expected severities in 1-5, got {text!r}")
    return values


def _limit(text: str) -> int | str:
    return "all" if text.strip().lower() == "all" else positive_int(text)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="accuracy, calibration (ECE, temperature), robustness to corruptions and a model card",
        description="Evaluate MODEL on DATA (a folder of class sub-folders, or 'cifar10' / 'mnist' for their "
        "test sets) and write report.json, report.md and the figures into the output folder.",
    )
    p.add_argument("model", metavar="MODEL", help="a .keras model file")
    p.add_argument("data", metavar="DATA", help="a folder of class sub-folders, or cifar10 / mnist")
    p.add_argument("-o", "--output", default="report", help="output folder (default: %(default)s)")
    p.add_argument("--calibration-data", metavar="FOLDER",
                   help="validation folder to fit the temperature on (default: half of DATA, or the model's own)")
    p.add_argument("--corruptions", default=None,
                   help="comma-separated corruptions (default: all); 'none' skips robustness")
    p.add_argument("--severities", type=_ints, default=[1, 2, 3, 4, 5], help="comma-separated, 1-5 (default: all)")
    p.add_argument("--limit", type=positive_int, default=None, help="use only the first N images of DATA")
    p.add_argument("--robustness-limit", type=_limit, default=None,
                   help="run the corruptions on N images only (a seeded sample; 55 passes over them), 'all' for "
                        "every image (default: 2000, visionkit.report.ROBUSTNESS_EXAMPLES)")
    p.add_argument("--batch-size", type=positive_int, default=256, help="(default: %(default)s)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="(default: %(default)s)")
    p.add_argument("--unsafe-load", action="store_true",
                   help="load a model holding Python code (Lambda layers): only for files you trust")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def _load(spec: str, model: object, limit: int | None, batch_size: int) -> tuple:
    import numpy as np

    from .. import data as D
    from ..training import class_names

    if spec in ("cifar10", "mnist"):
        _, (x, y) = D.load_cifar10() if spec == "cifar10" else D.load_mnist()
        if x.ndim == 3:
            x = x[..., None]
        return (x[:limit], y[:limit]) if limit else (x, y)
    shape = tuple(model.inputs[0].shape[1:])
    ds = D.image_folder(spec, image_size=shape[:2], batch_size=batch_size, shuffle=False,
                        color_mode="grayscale" if shape[-1] == 1 else "rgb", class_names=class_names(model))
    xs, ys, n = [], [], 0
    for xb, yb in ds:
        xs.append(np.asarray(xb))
        ys.append(np.asarray(yb))
        n += len(xs[-1])
        if limit and n >= limit:
            break
    x, y = np.concatenate(xs), np.concatenate(ys)
    return (x[:limit], y[:limit]) if limit else (x, y)


def run(args: argparse.Namespace) -> int:
    from ..report import model_report, training_record
    from ._common import require_inputs
    from ._model import load_model

    require_inputs(("MODEL", args.model, "file"), *(() if args.data in ("cifar10", "mnist") else
                                                    (("DATA", args.data, "folder"),)),
                   ("--calibration-data", args.calibration_data, "folder"))
    model = load_model(args.model, unsafe=args.unsafe_load, command=args.command)
    data = _load(args.data, model, args.limit, args.batch_size)
    calibration = _load(args.calibration_data, model, None, args.batch_size) if args.calibration_data else None
    kinds = None if args.corruptions is None else (
        [] if args.corruptions == "none" else [k.strip() for k in args.corruptions.split(",") if k.strip()])
    record = training_record(args.model)
    limit = {} if args.robustness_limit is None else {
        "robustness_examples": None if args.robustness_limit == "all" else args.robustness_limit}
    card = model_report(model, data, args.output, calibration_data=calibration, corruptions=kinds,
                        severities=args.severities, batch_size=args.batch_size, seed=args.seed, **limit,
                        metadata={"source_model": str(args.model), **({"training": record} if record else {})},
                        progress=not args.quiet)
    cal = card["calibration"]
    line = f"accuracy {card['accuracy']:.4f}; ECE after {cal.get('after', {}).get('ece', float('nan')):.4f}"
    if card["robustness"]:
        line += f"; mean corruption accuracy {card['robustness']['mean_corruption_accuracy']:.4f}"
    print(line)
    print(f"report -> {args.output}/report.md")
    return 0
