"""Figures and numbers of the "Calibration and robustness" and "Export and deploy" pages (issue #23).

Trains the fast CIFAR-10 recipe briefly (CPU settings by default), then measures on
the 10,000-image test set: accuracy, ECE before / after temperature scaling (fitted on
one half of the test set, reported on the other), robustness to the generated
corruptions (on the first ``--robustness-images``), the parity of every export format
(on ``--parity-images`` test images), and ``predict_files`` against batched
``model.predict`` on the same images written as PNG files. Writes the figures into
``docs/img/ship/`` and every number into ``docs/img/ship/results.json``.

    VISIONKIT_DATA=/path/to/data python scripts/ship_docs_images.py --epochs 2 --limit 20000
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "docs" / "img" / "ship"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--limit", type=int, default=20000, help="training images")
    p.add_argument("--robustness-images", type=int, default=None, help="default: model_report's (2,000)")
    p.add_argument("--parity-images", type=int, default=10000)
    p.add_argument("--representative-images", type=int, default=200, help="int8 calibration images")
    p.add_argument("--predict-images", type=int, default=10000)
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--model", type=Path, default=None,
                   help="a .keras file: loaded when it exists, else the trained model is saved there")
    args = p.parse_args()

    from visionkit import calibration, convnets, data, export, predict, report, robustness
    from visionkit._io import save_figure, write_json

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    results: dict = {"settings": vars(args) | {"out": str(out)}, "cpu_count": os.cpu_count(),
                     "load_average_start": os.getloadavg()}
    t = time.perf_counter()
    if args.model is not None and args.model.is_file():
        from visionkit.training import load_model

        model = load_model(args.model)
        record = report.training_record(args.model) or {}
        settings, metrics = record.get("settings", {}), record.get("test", {})
    else:
        trained = convnets.train_cifar10_fast(epochs=args.epochs, limit=args.limit, tta=False, precision="float32",
                                              seed=0, progress=False)
        model, settings, metrics = trained.model, trained.settings, trained.metrics
        if args.model is not None:
            trained.save(args.model.parent)
    results["train_seconds"] = time.perf_counter() - t
    (x_train, _), (x_test, y_test) = data.load_cifar10()
    print(f"trained in {results['train_seconds']:.0f}s: {metrics}", flush=True)

    t = time.perf_counter()
    limit = {} if args.robustness_images is None else {"robustness_examples": args.robustness_images}
    card = report.model_report(model, (x_test, y_test), out / "report", **limit,
                               seed=0, progress=False, metadata={"training": {"settings": settings,
                                                                              "test": metrics}})
    results["report_seconds"] = time.perf_counter() - t
    results["accuracy"] = card["accuracy"]
    results["calibration"] = {k: card["calibration"][k] for k in ("temperature", "before", "after", "sizes",
                                                                  "fitted_on")}
    results["robustness"] = {k: card["robustness"][k] for k in ("clean_accuracy", "mean_corruption_accuracy",
                                                                "relative_drop", "examples", "accuracy")}
    print(f"report in {results['report_seconds']:.0f}s: acc {card['accuracy']:.4f}, calibration "
          f"{results['calibration']}", flush=True)
    for name in ("reliability", "robustness", "confusion"):
        (out / f"{name}.png").write_bytes((out / "report" / f"{name}.png").read_bytes())
    save_figure(robustness.plot_corruptions(data.sample_image("chelsea", size=96), severities=(1, 3, 5)),
                out / "corruptions.png", dpi=50)

    calibrated = calibration.with_temperature(model, card["calibration"]["temperature"])
    parity_x = x_test[: args.parity_images]
    results["export"] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for fmt, quant in (("savedmodel", None), ("onnx", None), ("litert", None), ("litert", "int8")):
            t = time.perf_counter()
            try:
                r = export.export(calibrated, Path(tmp) / f"{fmt}{quant or ''}", format=fmt, quantize=quant,
                                  representative_data=x_train[:args.representative_images] if quant else None, parity_data=parity_x)
                entry = {**r.parity, "seconds": time.perf_counter() - t, "bytes": _size(r.file)}
            except Exception as exc:  # record, keep measuring the others
                entry = {"error": f"{type(exc).__name__}: {exc}"}
            results["export"][f"{fmt}{'-' + quant if quant else ''}"] = entry
            print(fmt, quant, entry, flush=True)
        results["predict"] = _predict_benchmark(calibrated, x_test[: args.predict_images], Path(tmp), predict)
    print("predict", results["predict"], flush=True)
    results["load_average_end"] = os.getloadavg()
    write_json(out / "results.json", results)
    print(json.dumps({k: v for k, v in results.items() if k != "robustness"}, indent=1, default=str))


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size


def _predict_benchmark(model, images: np.ndarray, tmp: Path, predict) -> dict:
    from visionkit.data import load_image, save_image

    folder = tmp / "png"
    for i, im in enumerate(images):
        save_image(folder / f"{i:05d}.png", im)
    files = sorted(folder.glob("*.png"))
    t = time.perf_counter()
    model.predict(images.astype("float32"), batch_size=64, verbose=0)
    in_memory = time.perf_counter() - t
    t = time.perf_counter()
    x = np.stack([load_image(f) for f in files])
    model.predict(x, batch_size=64, verbose=0)
    load_then_predict = time.perf_counter() - t
    t = time.perf_counter()
    predict.predict_files(model, folder, batch_size=64, progress=False)
    files_seconds = time.perf_counter() - t
    return {"images": len(images), "model_predict_in_memory_s": in_memory,
            "load_files_then_model_predict_s": load_then_predict, "predict_files_s": files_seconds,
            "ratio_vs_in_memory": files_seconds / in_memory, "ratio_vs_load_then_predict": files_seconds / load_then_predict}


if __name__ == "__main__":
    main()
