"""`folder_splits`: the train / validation / test datasets of an image folder, one rule for all."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import _validate as V
from ..errors import InvalidArgumentError
from ._folders import class_folders, existing_folder, image_folder, resolve_label_mode, subfolders
from ._pipeline import COLOR_CHANNELS

if TYPE_CHECKING:  # pragma: no cover
    import tensorflow as tf

#: Split sub-folders [`folder_splits`][visionkit.data.folder_splits] recognises, and the split each one is.
_SPLIT_FOLDERS = {"train": "train", "validation": "validation", "val": "validation", "test": "test"}


@dataclasses.dataclass(frozen=True)
class FolderSplits:
    """The splits of an image folder, as [`folder_splits`][visionkit.data.folder_splits] returns them.

    Attributes
    ----------
    train : tf.data.Dataset
        Shuffled batches of ``(images, labels)``; images float32
        ``(batch, h, w, channels)`` in ``[0, 255]`` (3 channels unless another
        ``color_mode``).
    validation : tf.data.Dataset or None
        Unshuffled batches like ``train``; ``None`` when there is no validation split.
    test : tf.data.Dataset or None
        Unshuffled batches like ``train``; ``None`` when there is no test folder.
    class_names : tuple of str
        The class sub-folders, in label order (the same in every split).
    label_mode : str
        ``"binary"`` (labels float32 ``(batch, 1)`` in ``{0, 1}``), ``"int"`` (int32
        ``(batch,)``) or ``"categorical"`` (one-hot float32 ``(batch, num_classes)``).
    directories : dict of str to pathlib.Path
        The folders read: ``"train"``, and ``"validation"`` / ``"test"`` when those
        splits are folders (not when validation is held out of ``train``).
    """

    train: tf.data.Dataset
    validation: tf.data.Dataset | None
    test: tf.data.Dataset | None
    class_names: tuple[str, ...]
    label_mode: str
    directories: dict[str, Path]


def folder_splits(
    directory: str | os.PathLike[str],
    *,
    image_size: int | tuple[int, int] = (150, 150),
    batch_size: int = 32,
    validation_split: float | None = 0.2,
    test_directory: str | os.PathLike[str] | None = None,
    label_mode: str = "auto",
    color_mode: str = "rgb",
    seed: int | None = None,
    follow_links: bool = False,
    on_error: str = "raise",
    progress: bool = True,
) -> FolderSplits:
    """Build the train / validation / test datasets of an image folder, one rule for all.

    Two layouts are read:

    * a class-per-folder tree ``directory/<class>/<image>``: a ``validation_split``
      fraction of it is held out for validation (deterministically, see ``seed``);
    * a folder whose visible sub-folders are only ``train/`` (required),
      ``validation/`` (or its alias ``val/``) and ``test/``, each a class-per-folder
      tree: those are the splits. ``validation_split`` applies to ``train/`` only when
      there is no validation folder.

    Parameters
    ----------
    directory : str or os.PathLike
        The folder, in one of the two layouts.
    image_size : int or (height, width), default (150, 150)
        Images are resized (bilinear) to this size.
    batch_size : int, default 32
        The batch size of every split (pass the global batch when training on several
        replicas). The last batch may be smaller.
    validation_split : float, default 0.2
        Fraction in ``[0, 1)`` of the training images held out for validation when
        there is no validation folder; ``0`` (or ``None``) means no validation split.
    test_directory : str or os.PathLike, optional
        A class-per-folder tree used as the test split (instead of ``test/``).
    label_mode : {"auto", "binary", "int", "categorical"}, default "auto"
        ``"auto"``: ``"binary"`` for exactly 2 classes (labels float32 ``(batch, 1)``,
        for a one-unit sigmoid head), else ``"int"`` (int32 ``(batch,)``).
        ``"binary"`` needs exactly 2 classes; ``"categorical"`` gives one-hot float32
        ``(batch, num_classes)``.
    color_mode : {"rgb", "grayscale", "rgba"}, default "rgb"
        Channels of the images (3, 1 or 4), as in
        [`image_folder`][visionkit.data.image_folder].
    seed : int, optional
        Seed of the training shuffle. The validation hold-out uses ``seed`` (0 when
        ``None``), so it is reproducible and never overlaps the training split.
        Validation and test are not shuffled.
    follow_links : bool, default False
        Enter links to folders inside the class folders, as in
        [`image_folder`][visionkit.data.image_folder] (never in a loop).
    on_error : {"raise", "skip"}, default "raise"
        For images TensorFlow cannot decode, as in
        [`image_folder`][visionkit.data.image_folder]: every file's header is checked
        before training, and what only a decode finds is named (or skipped) when it is
        read, so no file fails an epoch half-way without its name.
    progress : bool, default True
        Show the listing and header-check bars of a large folder, as in
        [`image_folder`][visionkit.data.image_folder]; ``False`` silences them.

    Returns
    -------
    FolderSplits
        The datasets (images float32 ``(batch, h, w, channels)`` in ``[0, 255]``), the class
        names, the label mode used and the folders read.

    Raises
    ------
    DataNotFoundError
        ``directory`` or ``test_directory`` does not exist.
    InvalidArgumentError
        A bad argument; both ``validation/`` and ``val/``; split folders without
        ``train/``; fewer than 2 classes; a split whose classes differ from the
        training classes (the message names the folder and both lists).
    ImageReadError
        Unreadable images with ``on_error="raise"``.

    See Also
    --------
    image_folder : one dataset from one class-per-folder tree.

    Examples
    --------
    >>> import tempfile
    >>> from visionkit.data import folder_splits, save_image, sample_image
    >>> root = tempfile.mkdtemp()
    >>> for split, n in (("train", 5), ("test", 2)):
    ...     for name in ("painting", "photo"):
    ...         for i in range(n):
    ...             _ = save_image(f"{root}/{split}/{name}/{i}.png", sample_image(name, size=16))
    >>> splits = folder_splits(root, image_size=8, batch_size=4, seed=0)
    >>> splits.class_names, splits.label_mode, sorted(splits.directories)
    (('painting', 'photo'), 'binary', ['test', 'train'])
    >>> len(splits.train.file_paths), len(splits.validation.file_paths), len(splits.test.file_paths)
    (8, 2, 4)
    >>> images, labels = next(iter(splits.test))
    >>> images.shape, labels.shape, labels.dtype.name
    (TensorShape([4, 8, 8, 3]), TensorShape([4, 1]), 'float32')
    >>> import shutil; shutil.rmtree(root)
    """
    V.one_of("label_mode", label_mode, ("auto", "binary", "int", "categorical"))
    V.one_of("on_error", on_error, ("raise", "skip"))
    common: dict[str, Any] = {
        "image_size": V.size2d("image_size", image_size),
        "batch_size": V.integer("batch_size", batch_size, minimum=1),
        "color_mode": V.one_of("color_mode", color_mode, tuple(COLOR_CHANNELS)),
        "seed": V.integer("seed", seed, minimum=0, allow_none=True),
        "follow_links": V.boolean("follow_links", follow_links),
        "on_error": on_error,
        "progress": V.boolean("progress", progress),
    }
    split = V.number("validation_split", validation_split, minimum=0.0, maximum=1.0, exclusive_maximum=True, allow_none=True)
    directories = _split_directories(directory, test_directory)
    class_names = _split_classes(directories, from_argument="directory" if test_directory is None else "test_directory")
    common["label_mode"] = resolve_label_mode(label_mode, class_names, directories["train"])
    if "validation" not in directories and split:
        train, validation = image_folder(directories["train"], validation_split=split, subset="both", **common)
    else:
        train = image_folder(directories["train"], **common)
        validation = image_folder(directories["validation"], shuffle=False, **common) if "validation" in directories else None
    test = image_folder(directories["test"], shuffle=False, **common) if "test" in directories else None
    return FolderSplits(
        train=train, validation=validation, test=test, class_names=tuple(class_names),
        label_mode=common["label_mode"], directories=directories,
    )


def _split_directories(directory: Any, test_directory: Any) -> dict[str, Path]:
    """The split folders, ``{"train": ..., "validation": ..., "test": ...}`` (those present)."""
    root = existing_folder(directory)
    test = None if test_directory is None else existing_folder(test_directory, "test_directory")
    subdirs = set(subfolders(root))
    directories = {"train": root}
    if subdirs and subdirs <= set(_SPLIT_FOLDERS):
        if "train" not in subdirs:
            raise InvalidArgumentError(
                f"Argument `directory` must be a class-per-folder tree or hold a `train/` split folder; "
                f"'{root}' has only the split folders {sorted(subdirs)}. Received: directory={str(root)!r}"
            )
        if {"validation", "val"} <= subdirs:
            raise InvalidArgumentError(
                f"Argument `directory` must hold one validation folder, `validation/` or `val/`; "
                f"'{root}' has both. Remove or rename one. Received: directory={str(root)!r}"
            )
        directories = {split: root / name for name, split in _SPLIT_FOLDERS.items() if name in subdirs}
    if test is not None:
        directories["test"] = test
    return directories


def _split_classes(directories: dict[str, Path], *, from_argument: str) -> list[str]:
    """The training classes (at least 2), checked to be those of every other split."""
    train_dir = directories["train"]
    class_names = class_folders(train_dir)
    if len(class_names) < 2:
        raise InvalidArgumentError(
            f"Argument `directory` must hold at least 2 class sub-folders; '{train_dir}' has "
            f"{len(class_names)}: {class_names}. Received: directory={str(train_dir)!r}"
        )
    for name in ("validation", "test"):
        folder = directories.get(name)
        if folder is None:
            continue
        found = subfolders(folder)
        if found != class_names:
            argument = from_argument if name == "test" else "directory"
            raise InvalidArgumentError(
                f"The {name} folder '{folder}' has the classes {found}, but the training folder "
                f"'{train_dir}' has {class_names}; every split must have the same class sub-folders. "
                f"Received: {argument}={str(folder)!r}"
            )
    return class_names
