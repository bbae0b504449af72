"""One report on a trained classifier: accuracy, calibration, robustness, confusion, and a model card.

[`model_report`][visionkit.report.model_report] evaluates a model on test data and
writes into one folder:

| file | what |
| --- | --- |
| ``report.json`` | every number below, and the model card (classes, training settings and data, metrics, calibration, robustness, versions; the parity check of an export when given) |
| ``report.md`` | the same as a Markdown page with the figures |
| ``confusion.png`` | the confusion matrix |
| ``reliability.png`` | reliability diagrams before and after temperature scaling |
| ``robustness.png`` | accuracy per corruption and severity |

Calibration: with ``calibration_data`` the temperature is fitted on it and ECE is
reported on the test data before and after; without it, a model that already carries a
temperature is reported as it is, and otherwise the test data is split in two halves
(seeded): the temperature is fitted on one and the numbers are reported on the other,
which the report says.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import _ship_core as core
from . import _validate as V
from ._io import save_figure, write_json

__all__ = ["ROBUSTNESS_EXAMPLES", "model_report", "training_record"]


def training_record(model_path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """What a recipe recorded beside a saved model: ``metrics.json`` (settings, test metrics, epochs).

    Parameters
    ----------
    model_path : str or os.PathLike
        A ``model.keras`` written by a recipe's ``TrainResult.save`` (or the CLI).

    Returns
    -------
    dict or None
        ``settings``, ``test`` metrics, ``epochs`` and ``class_names`` from the
        ``metrics.json`` beside it; None when there is none (or it is unreadable).
    """
    file = Path(model_path).with_name("metrics.json")
    try:
        record = json.loads(file.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict):
        return None
    return {k: record[k] for k in ("settings", "test", "epochs", "class_names") if k in record}


def _as_arrays(data: Any, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for xb, yb in core.batches(data, batch_size):
        xs.append(xb)
        ys.append(yb)
    if not xs:
        raise V.fail("data", "at least one example", data)
    x, y = np.concatenate(xs), np.concatenate(ys)
    if np.issubdtype(x.dtype, np.floating) and x.size and np.all(x == np.rint(x)) and x.min() >= 0 and x.max() <= 255:
        x = x.astype(np.uint8)  # whole-number pixels: a quarter of the memory
    return x, y


def _calibration(model: Any, x: np.ndarray, y: np.ndarray, calibration_data: Any, *, bins: int, batch_size: int,
                 seed: int) -> tuple[Any, dict[str, Any]]:
    from .calibration import calibrate, temperature_of

    if calibration_data is not None:
        result = calibrate(model, calibration_data, test_data=(x, y), bins=bins, batch_size=batch_size)
        return result, {**result.to_dict(), "fitted_on": "calibration_data"}
    if temperature_of(model) is not None:
        z, labels, _ = core.predict_logits(model, (x, y), batch_size=batch_size)
        from .calibration import reliability_diagram

        diagram = reliability_diagram(core.softmax(z), labels, bins=bins)
        return diagram, {"temperature": temperature_of(model), "fitted_on": "carried by the model",
                         "after": {"ece": diagram.ece}, "reliability": {"after": diagram.to_dict()}}
    order = np.random.default_rng(seed).permutation(len(x))
    half = len(x) // 2
    if half < 1:
        raise V.fail("data", "at least 2 examples to fit and check a temperature", f"{len(x)} example(s)")
    fit, held = order[:half], order[half:]
    result = calibrate(model, (x[fit], y[fit]), test_data=(x[held], y[held]), bins=bins, batch_size=batch_size)
    return result, {**result.to_dict(), "fitted_on": f"half of the test data ({half} images, seed {seed}); "
                                                      f"reported on the other half"}


#: Images the robustness part of [`model_report`][visionkit.report.model_report] runs on by default.
ROBUSTNESS_EXAMPLES = 2000


def model_report(
    model: Any,
    data: Any,
    output: str | os.PathLike[str],
    *,
    calibration_data: Any = None,
    corruptions: Sequence[str] | None = None,
    severities: Sequence[int] = (1, 2, 3, 4, 5),
    robustness_examples: int | None = ROBUSTNESS_EXAMPLES,
    bins: int = 15,
    batch_size: int = 256,
    seed: int = 0,
    metadata: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Evaluate a classifier and write ``report.json``, ``report.md`` and the figures into ``output``.

    Parameters
    ----------
    model : keras.Model
        A classifier taking images in ``[0, 255]``. Not modified.
    data : tuple or tf.data.Dataset
        Test data: ``(images, labels)`` arrays or a dataset of ``(images, labels)``
        batches (read into memory once).
    output : str or os.PathLike
        The folder to write (created).
    calibration_data : tuple or tf.data.Dataset, optional
        Validation data to fit the temperature on (see the module notes for without).
    corruptions : sequence of str, optional
        Default: all of [`robustness.CORRUPTIONS`][visionkit.robustness.CORRUPTIONS];
        an empty sequence skips the robustness part.
    severities : sequence of int, default 1-5
    robustness_examples : int or None, default 2000
        Run the robustness part on ``robustness_examples`` images only, a sample drawn
        with ``seed`` (not the first ones: a folder's images come sorted by class); None:
        all of them. It costs one pass per corruption and severity (55 passes for all),
        so on the 10,000 CIFAR-10 test images all of them take 5x the default's time;
        an accuracy on 2,000 images has a standard error of about 0.011. The report
        records the number.
    bins : int, default 15
        Bins of the ECE.
    batch_size : int, default 256
    seed : int, default 0
        Seeds the calibration split and the corruptions.
    metadata : mapping, optional
        JSON-able extras for the model card (``training``: settings and data; an
        export's ``parity``).
    progress : bool, default True

    Returns
    -------
    dict
        The contents of ``report.json``.
    """
    from .interpret import interpret
    from .robustness import CORRUPTIONS, robustness_report
    from .training import class_names

    batch_size = V.integer("batch_size", batch_size, minimum=1)
    seed = V.integer("seed", seed, minimum=0)
    out = Path(output)
    started = time.perf_counter()
    x, y = _as_arrays(data, batch_size)
    result = interpret(model, (x, y), batch_size=batch_size, keep=0)
    cal, cal_dict = _calibration(model, x, y, calibration_data, bins=bins, batch_size=batch_size, seed=seed)
    kinds = list(CORRUPTIONS if corruptions is None else corruptions)
    n_robust = len(y) if robustness_examples is None else V.integer("robustness_examples", robustness_examples,
                                                                     minimum=1)
    # a seeded sample, not the first images: a folder's data come sorted by class
    pick = np.sort(np.random.default_rng(seed).choice(len(y), n_robust, replace=False)) if n_robust < len(y) else slice(None)
    robust = robustness_report(model, (x[pick], y[pick]), corruptions=kinds, severities=severities, batch_size=batch_size,
                               seed=seed, progress=progress) if kinds else None
    figures = {"confusion": save_figure(result.plot_confusion_matrix(), out / "confusion.png"),
               "reliability": save_figure(cal.plot(), out / "reliability.png")}
    if robust is not None:
        figures["robustness"] = save_figure(robust.plot(), out / "robustness.png")
    from ._export_serving import versions

    card = {
        "model": {"name": model.name, "class_names": class_names(model) or list(result.class_names),
                  "input_shape": list(model.inputs[0].shape[1:]), "parameters": int(model.count_params())},
        "data": {"examples": len(y), "image_shape": list(x.shape[1:])},
        "accuracy": result.accuracy,
        "classification_report": result.classification_report().to_dict(),
        "confusion_matrix": result.confusion_matrix().tolist(),
        "calibration": cal_dict,
        "robustness": robust.to_dict() if robust is not None else None,
        "versions": versions(),
        "seconds": round(time.perf_counter() - started, 1),
        **dict(metadata or {}),
    }
    write_json(out / "report.json", card)
    _write_markdown(out / "report.md", card, result, cal, robust, figures)
    return card


def _write_markdown(path: Path, card: dict[str, Any], result: Any, cal: Any, robust: Any,
                    figures: dict[str, Path]) -> None:
    from ._io import atomic_path

    m = card["model"]
    lines = [f"# Model report: {m['name']}", "", "## Model card", "",
             f"- classes ({len(m['class_names'])}): {', '.join(map(str, m['class_names']))}",
             f"- input: {m['input_shape']} (pixels in [0, 255]); {m['parameters']:,} parameters",
             f"- test data: {card['data']['examples']} images", f"- accuracy: {card['accuracy']:.4f}"]
    training = card.get("training")
    if training:  # caller's metadata: shown as far as it is the usual mapping, never trusted to be one
        training = training if isinstance(training, Mapping) else {"settings": training}
        settings = training.get("settings")
        shown = (", ".join(f"{k}={v}" for k, v in sorted(settings.items(), key=lambda kv: str(kv[0]))
                           if not isinstance(v, (dict, list)))
                 if isinstance(settings, Mapping) else str(settings or ""))
        lines += [f"- training settings: {shown or 'not recorded'}",
                  f"- training-time test metrics: {training.get('test', 'not recorded')}"]
    c = card["calibration"]
    lines.append(f"- calibration: temperature {c.get('temperature')}, fitted on {c.get('fitted_on')}")
    if robust is not None:
        lines.append(f"- robustness: mean corruption accuracy {robust.mean_corruption_accuracy:.4f}, relative drop "
                     f"{robust.relative_drop:.1%} ({len(robust.accuracy)} corruptions x {len(robust.severities)} "
                     "severities, generated: not CIFAR-10-C / ImageNet-C themselves)")
    if card.get("parity"):
        lines.append(f"- export parity: {json.dumps(card['parity'])}")
    lines.append("- versions: " + ", ".join(f"{k} {v}" for k, v in card["versions"].items()))
    lines += ["", "## Accuracy", "", result.classification_report().to_markdown(), "",
              f"![confusion matrix]({figures['confusion'].name})", "", "## Calibration", ""]
    lines += [cal.to_markdown() if hasattr(cal, "to_markdown") else f"ECE {cal.ece:.4f} (with the carried temperature)",
              "", f"![reliability]({figures['reliability'].name})"]
    if robust is not None:
        lines += ["", "## Robustness", "", robust.to_markdown(), "", f"![robustness]({figures['robustness'].name})"]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
