"""Write ``notebooks/06_calibration_and_export.ipynb`` (issue #23), without outputs.

    python scripts/make_ship_notebook.py
"""

from __future__ import annotations

from pathlib import Path

from make_notebook import write

CELLS = [
    ("md", "# Ship a classifier you can trust\n\nCalibrated probabilities, a robustness report, export to "
           "SavedModel / ONNX / LiteRT with a parity check, and batch prediction over files. "
           "With `VISIONKIT_QUICK=1` (as in CI) everything runs on the bundled MNIST sample in seconds; "
           "see the \"Calibration and robustness\" and \"Export and deploy\" pages for the measured CIFAR-10 numbers."),
    ("code", "import os\nimport tempfile\nfrom pathlib import Path\n\nimport numpy as np\n\n"
             "from visionkit import calibration, convnets, data, export, predict, robustness\n\n"
             "QUICK = os.environ.get('VISIONKIT_QUICK') == '1'\nSAMPLE = QUICK or data.data_dir() is None\n"
             "result = convnets.train_mnist(sample=SAMPLE, epochs=1 if QUICK else 3, progress=False, seed=0)\n"
             "model = result.model\n_, (x_test, y_test) = data.load_mnist(sample=SAMPLE)\n"
             "x_test = x_test[..., None]  # (N, 28, 28, 1) uint8\nprint(result.metrics)"),
    ("md", "## Calibration\n\nFit one temperature on half of the test set (minimising the NLL), report the "
           "expected calibration error before and after on the other half. The accuracy does not change."),
    ("code", "half = len(x_test) // 2\n"
             "cal = calibration.calibrate(model, (x_test[:half], y_test[:half]), test_data=(x_test[half:], y_test[half:]))\n"
             "print(cal.to_markdown())\ncal.plot()"),
    ("md", "## Robustness\n\nEleven corruptions generated on the fly at five severities (CIFAR-10-C-like, "
           "not the published images)."),
    ("code", "n = 200 if QUICK else 2000\n"
             "kinds = ['gaussian_noise', 'defocus_blur', 'contrast'] if QUICK else robustness.CORRUPTIONS\n"
             "rob = robustness.robustness_report(cal.model, (x_test[:n], y_test[:n]), corruptions=kinds, progress=False)\n"
             "print(rob)\nrob.plot()"),
    ("md", "## Export, parity check and batch prediction\n\nEach export is loaded by its own runtime and "
           "compared with the Keras model; a failed check raises. ONNX needs `pip install 'visionkit[export]'`."),
    ("code", "out = Path(tempfile.mkdtemp())\nformats = ['savedmodel', 'litert']\n"
             "try:\n    import onnxruntime, tf2onnx  # noqa: F401\n    formats.append('onnx')\nexcept ImportError:\n    pass\n"
             "for fmt in formats:\n    r = export.export(cal.model, out / fmt, format=fmt, parity_data=x_test[:256])\n"
             "    print(fmt, 'max |dp|', r.parity['max_abs_diff'], 'top-1 agreement', r.parity['top1_agreement'])"),
    ("code", "for i in range(8):\n    data.save_image(out / 'images' / f'{i}.png', np.repeat(x_test[i], 3, axis=-1))\n"
             "rows = predict.predict_files(out / 'litert', out / 'images', top_k=2, progress=False)\n"
             "for r, y in zip(rows, y_test[:8]):\n    print(Path(r['path']).name, 'true', y, '->', r['class_1'], round(r['probability_1'], 3))"),
]

if __name__ == "__main__":
    write(Path(__file__).resolve().parents[1] / "notebooks" / "06_calibration_and_export.ipynb", CELLS)
