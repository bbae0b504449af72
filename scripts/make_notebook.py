"""Write a notebook from a list of (kind, source) cells, without outputs.

Used to keep the notebooks in ``notebooks/`` reproducible: ``python scripts/make_notebook.py``
regenerates the getting-started notebook. Other notebooks may be edited directly.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat


def write(path: Path, cells: list[tuple[str, str]]) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell(src) if kind == "md" else nbformat.v4.new_code_cell(src)
        for kind, src in cells
    ]
    nbformat.write(nb, str(path))


GETTING_STARTED = [
    ("md", "# Getting started with visionkit\n\nLoad data (offline), look at images, run the demo. "
           "Set `VISIONKIT_DATA` to a folder of datasets to use the full sets; otherwise the bundled sample is used. "
           "`VISIONKIT_QUICK=1` (set in CI) keeps everything small."),
    ("code", "import os\nimport tempfile\n\nimport matplotlib.pyplot as plt\nimport numpy as np\n\n"
             "import visionkit\nfrom visionkit import data\n\n"
             "QUICK = os.environ.get('VISIONKIT_QUICK') == '1'\nprint('visionkit', visionkit.__version__)"),
    ("md", "## MNIST and CIFAR-10\n\n`sample=True` uses the small real sample inside the package; "
           "without it the loaders look at `VISIONKIT_DATA`, the Keras cache, then download."),
    ("code", "use_sample = QUICK or data.data_dir() is None\n"
             "(x_train, y_train), (x_test, y_test) = data.load_mnist(sample=use_sample)\n"
             "(cx_train, cy_train), _ = data.load_cifar10(sample=True)\n"
             "print('MNIST', x_train.shape, x_train.dtype, 'CIFAR-10 sample', cx_train.shape)\n"
             "assert y_test[0] == 7"),
    ("code", "fig, axes = plt.subplots(2, 8, figsize=(12, 3.4))\n"
             "for i, ax in enumerate(axes[0]):\n    ax.imshow(x_train[i], cmap='gray'); ax.set_title(int(y_train[i])); ax.axis('off')\n"
             "for i, ax in enumerate(axes[1]):\n    ax.imshow(cx_train[i * 100]); ax.set_title(data.CIFAR10_CLASSES[int(cy_train[i * 100, 0])], fontsize=8); ax.axis('off')\n"
             "plt.show()"),
    ("md", "## Images\n\n`load_image` returns float32 RGB in [0, 255] from a path, bytes, PIL image or array."),
    ("code", "painting = data.sample_image('painting', max_dim=256)\nphoto = data.sample_image('photo', max_dim=256)\n"
             "print(painting.shape, photo.shape, painting.dtype, painting.min(), painting.max())\n"
             "fig, axes = plt.subplots(1, 2, figsize=(8, 3))\n"
             "for ax, img in zip(axes, (painting, photo)):\n    ax.imshow(img.astype('uint8')); ax.axis('off')\nplt.show()"),
    ("md", "## Image folders, at any size\n\n`image_folder` reads a class-per-folder tree as Keras does. It checks every "
           "file's header before training (cached per folder state, so a second call on an unchanged folder reads no "
           "file), names or skips damaged files, and can cache the decoded images (`cache=True`) or go through "
           "sharded TFRecords (`write_tfrecords` / `read_tfrecords`). See the \"Large folders\" page."),
    ("code", "folder = tempfile.mkdtemp(prefix='visionkit-folder-')\n"
             "n = 4 if QUICK else 20\n"
             "for name in ('painting', 'photo'):\n"
             "    for i in range(n):\n"
             "        data.save_image(f'{folder}/{name}/{i:03d}.jpg', data.sample_image(name, size=64 + i))\n"
             "ds = data.image_folder(folder, image_size=32, batch_size=8, cache=True, seed=0, progress=False)\n"
             "images, labels = next(iter(ds))\n"
             "print(ds.class_names, len(ds.file_paths), images.shape, labels.numpy())\n"
             "records = tempfile.mkdtemp(prefix='visionkit-records-')\n"
             "data.write_tfrecords(folder, records, shard_size=8, progress=False)\n"
             "same = data.read_tfrecords(records, image_size=32, batch_size=8, shuffle=False)\n"
             "print(sorted(os.listdir(records)), int(same.cardinality()), 'batches')"),
    ("md", "## The demo\n\nThe same as `visionkit demo` on the command line: trains the MNIST convnet on the bundled sample."),
    ("code", "from visionkit.cli import main\n\nout = tempfile.mkdtemp(prefix='visionkit-demo-')\n"
             "status = main(['demo', '--epochs', '1' if QUICK else '3', '--output', out, '--quiet'])\n"
             "assert status == 0\nsorted(os.listdir(out))"),
]

if __name__ == "__main__":
    root = Path(__file__).resolve().parents[1]
    write(root / "notebooks" / "00_getting_started.ipynb", GETTING_STARTED)
    print("written", file=sys.stderr)
