"""Images and datasets: one place to get them, online or offline.

Where datasets come from, in order:

1. the ``path`` argument of the loader (a file or a folder);
2. the folder named by the ``VISIONKIT_DATA`` environment variable;
3. the Keras download cache (``$KERAS_HOME/datasets`` or ``~/.keras/datasets``);
4. a download into the Keras cache (needs the internet; hash-checked; each network wait
   bounded by ``$VISIONKIT_DOWNLOAD_TIMEOUT`` seconds, default 15).

When none works, [`DataNotFoundError`][visionkit.errors.DataNotFoundError] says where it looked and
what file to put where. ``sample=True`` returns a small real sample bundled inside the
package, so recipes and notebooks run with no network and no data at all.

Decoded JPEG datasets are cached as ``.npz`` files in [`cache_dir`][visionkit.data.cache_dir]
(``$VISIONKIT_CACHE`` or ``~/.cache/visionkit``) so the second load is fast.
"""

from __future__ import annotations

from ._cifar import load_cifar10
from ._cifar_readers import CIFAR10_CLASSES, MAX_ARCHIVE_MEMBER_BYTES
from ._folders import IMAGE_EXTENSIONS, image_folder
from ._image_io import (
    MAX_IMAGE_PIXELS,
    SAMPLE_IMAGES,
    SAVE_FORMATS,
    load_image,
    sample_image,
    sample_image_path,
    save_image,
)
from ._mnist import load_mnist
from ._npz import MAX_NPZ_ARRAY_BYTES
from ._pipeline import from_arrays
from ._sources import cache_dir, data_dir
from ._splits import FolderSplits, folder_splits
from ._tfrecords import read_tfrecords, write_tfrecords

__all__ = [
    "CIFAR10_CLASSES",
    "IMAGE_EXTENSIONS",
    "MAX_ARCHIVE_MEMBER_BYTES",
    "MAX_IMAGE_PIXELS",
    "MAX_NPZ_ARRAY_BYTES",
    "SAMPLE_IMAGES",
    "SAVE_FORMATS",
    "FolderSplits",
    "cache_dir",
    "data_dir",
    "folder_splits",
    "from_arrays",
    "image_folder",
    "load_cifar10",
    "load_image",
    "load_mnist",
    "read_tfrecords",
    "sample_image",
    "sample_image_path",
    "save_image",
    "write_tfrecords",
]
