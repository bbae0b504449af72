"""Image folders: `image_folder`, its argument checks, the indexing walk with its link-loop
guards, the header check of every file (cached per folder state), and the deterministic split."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import _validate as V
from ..errors import DataNotFoundError, ImageReadError, InvalidArgumentError
from . import _headers as H
from . import _index as X
from . import _sources as S
from ._pipeline import COLOR_CHANNELS, files_dataset

if TYPE_CHECKING:  # pragma: no cover
    import tensorflow as tf

#: File extensions [`image_folder`][visionkit.data.image_folder] reads (the formats TensorFlow decodes).
IMAGE_EXTENSIONS: tuple[str, ...] = (".bmp", ".gif", ".jpeg", ".jpg", ".png")


def image_folder(
    directory: str | os.PathLike[str],
    *,
    labels: str | Sequence[int] | None = "inferred",
    label_mode: str | None = "int",
    class_names: Sequence[str] | None = None,
    color_mode: str = "rgb",
    image_size: int | tuple[int, int] = (150, 150),
    batch_size: int | None = 32,
    shuffle: bool = True,
    seed: int | None = None,
    validation_split: float | None = None,
    subset: str | None = None,
    follow_links: bool = False,
    crop_to_aspect_ratio: bool = False,
    pad_to_aspect_ratio: bool = False,
    on_error: str = "raise",
    check: str = "header",
    cache: bool | str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> tf.data.Dataset | tuple[tf.data.Dataset, tf.data.Dataset]:
    """Build a prefetched ``tf.data.Dataset`` from a folder of images.

    Follows the semantics of ``keras.utils.image_dataset_from_directory``: with
    ``labels="inferred"`` each sub-folder of ``directory`` is a class (in alphanumeric
    order, or the order of ``class_names``), and the images in it (``.bmp``, ``.gif``,
    ``.jpeg``, ``.jpg``, ``.png``, searched recursively; hidden files and folders
    skipped) are its examples. Files are listed folder by folder in alphanumeric order
    of their paths, as ``os.walk`` sorted gives them.

    What training reads is what [`load_image`][visionkit.data.load_image] reads:

    * every file's header is checked up front (format, size, every JPEG segment up to
      the pixels and the end marker, a PNG's ``IEND``, a GIF's trailer), and the files
      that fail are decoded by TensorFlow to confirm: a file TensorFlow cannot decode (a
      PNG without its end chunk, a cut GIF, a truncated JPEG, another format under an
      image extension) is named before training instead of failing an epoch half-way.
      What the header check learns is kept in an index in
      [`cache_dir`][visionkit.data.cache_dir], so a folder that did not change (same
      paths, sizes and modification times) is not read again;
    * a file whose header is whole but whose data is not (found only by decoding it)
      is caught when an epoch reads it: named in an ``ImageReadError``, or skipped with
      a warning under ``on_error="skip"``; the epoch goes on;
    * the EXIF orientation of each file (read from its header during that check) is
      applied, so a photo taken on its side is upright, as ``load_image`` shows it;
    * transparent images are composited on white (``"rgb"``, ``"grayscale"``).

    Parameters
    ----------
    directory : str or os.PathLike
        The root folder: ``directory/<class>/<image>`` with ``labels="inferred"``; any
        tree of images otherwise (read recursively from ``directory`` itself).
    labels : "inferred", None or sequence of int, default "inferred"
        ``"inferred"``: the label of an image is its class sub-folder; ``None``: no
        labels (the dataset yields images only); or one integer label ``>= 0`` per
        image file, in the alphanumeric order of the file paths (the order of
        ``file_paths`` with ``shuffle=False``). Explicit labels name their classes
        ``"0"``, ``"1"``, ... up to the largest label.
    label_mode : {"int", "categorical", "binary", None}, default "int"
        ``"int"``: int32 ``(batch,)``; ``"categorical"``: one-hot float32
        ``(batch, num_classes)``; ``"binary"``: float32 ``(batch, 1)``, exactly two
        classes (labels 0 and 1); ``None``: images only.
    class_names : sequence of str, optional
        With ``labels="inferred"`` only: the class sub-folders to read, in label order
        (others are left out). Default: every visible sub-folder, sorted.
    color_mode : {"rgb", "grayscale", "rgba"}, default "rgb"
        Channels of the images: 3, 1 or 4. ``"rgb"`` and ``"grayscale"`` composite a
        transparent image on white; ``"rgba"`` keeps the alpha (255 where the file has
        none).
    image_size : int or (height, width), default (150, 150)
        Images are resized (bilinear) to this size.
    batch_size : int or None, default 32
        Batch size; ``None`` yields single images. The last batch may be smaller.
    shuffle : bool, default True
        Shuffle the files, again every epoch (both subsets with ``subset="training"`` or
        ``"validation"``; the training one only with ``"both"``, as Keras). With
        ``False`` every dataset reads its files in alphanumeric order.
    seed : int, optional
        Seed of the shuffle and of the split.
    validation_split : float, optional
        Fraction in ``(0, 1)`` held out for validation; needs ``subset``. The split is
        deterministic (files are permuted with ``seed``, 0 when it is None, whatever
        ``shuffle`` is), so separate ``"training"`` and ``"validation"`` calls with the
        same ``seed`` never overlap.
    subset : {"training", "validation", "both"}, optional
        Which side of the split to return; ``"both"`` returns ``(train, val)``.
    follow_links : bool, default False
        Enter symbolic links to folders met inside the tree (class folders that are
        links are always read, as Keras). A folder is never read twice and a link back
        to ``directory`` or into another class's folder is skipped (with a warning):
        no loops, no image under two labels.
    crop_to_aspect_ratio : bool, default False
        Crop the centre of each image to the aspect ratio of ``image_size`` before
        resizing, instead of distorting it.
    pad_to_aspect_ratio : bool, default False
        Pad each image with zeros (black) to the aspect ratio of ``image_size``, as
        Keras. Not with ``crop_to_aspect_ratio``.
    on_error : {"raise", "skip"}, default "raise"
        For files TensorFlow cannot decode: ``"raise"`` an
        [`ImageReadError`][visionkit.errors.ImageReadError] naming them, or ``"skip"``
        them with one warning that lists them (files found while reading: one warning
        per file, the first time).
    check : {"header", "decode"}, default "header"
        The check before training: ``"header"`` reads the headers (work proportional
        to listing, cached per folder state); ``"decode"`` also decodes every file once
        (JPEGs at 1/8 scale), so that no damage at all is left for read time (about
        1 ms a photo on two cores, on every call).
    cache : bool, "memory", str or os.PathLike, optional
        Cache the decoded, resized images (``tf.data`` cache): ``True`` or ``"memory"``
        in memory, a path to cache on disk (files ``<path>-<key>.*``, the key a digest of
        the folder's state and of the options that change the images, so a changed
        folder never reads a stale cache). Later epochs then skip decoding; shuffling
        uses a buffer (all images in memory, 10,000 on disk) after a seeded permutation.
    progress : bool, default True
        Show a progress bar (``tqdm``, on stderr) while a folder that takes more than a
        second is listed and checked.

    Returns
    -------
    tf.data.Dataset or (tf.data.Dataset, tf.data.Dataset)
        Batches of ``(images, labels)`` (images float32 ``(batch, h, w, channels)`` in
        ``[0, 255]``), or images alone with ``labels=None`` or ``label_mode=None``. The
        dataset has ``class_names`` (``None`` with ``labels=None``) and ``file_paths``
        attributes.

    Warns
    -----
    UserWarning
        A class folder holds no (readable) image: it stays a label with no examples
        (the warning names it; pass ``class_names`` to leave it out); or folder links
        that lead back to ``directory``, into another class or to a folder already
        read were not followed (the warning names them).
    RuntimeWarning
        ``on_error="skip"`` skipped unreadable files (one warning listing them); while
        iterating, a file that failed to decode was skipped (one warning per file).

    Raises
    ------
    DataNotFoundError
        ``directory`` does not exist.
    ImageReadError
        Unreadable files with ``on_error="raise"``; the message lists them. While
        iterating, a file that fails to decode stops the iteration with TensorFlow's
        ``InvalidArgumentError`` (``tf.data`` raises only its own errors) whose message
        is the ``ImageReadError`` naming the file.
    InvalidArgumentError
        A bad argument, a folder without class sub-folders or images, ``labels`` of
        the wrong length, or a split that leaves a subset empty.

    Examples
    --------
    >>> import tempfile
    >>> from visionkit.data import image_folder, save_image, sample_image
    >>> root = tempfile.mkdtemp()
    >>> for name in ("painting", "photo"):
    ...     for i in range(5):
    ...         _ = save_image(f"{root}/{name}/{i}.png", sample_image(name, size=16))
    >>> train, val = image_folder(root, image_size=(8, 8), batch_size=4,
    ...                           validation_split=0.2, subset="both", seed=1)
    >>> train.class_names, len(train.file_paths), len(val.file_paths)
    (['painting', 'photo'], 8, 2)
    >>> images, labels = next(iter(train))
    >>> images.shape, images.dtype.name, labels.dtype.name
    (TensorShape([4, 8, 8, 3]), 'float32', 'int32')
    >>> gray = image_folder(root, labels=None, color_mode="grayscale", image_size=8, shuffle=False)
    >>> gray.class_names, [p[len(root):] for p in gray.file_paths[:2]], next(iter(gray)).shape
    (None, ['/painting/0.png', '/painting/1.png'], TensorShape([10, 8, 8, 1]))
    >>> import shutil; shutil.rmtree(root)
    """
    settings = _FolderSettings.validate(
        directory, labels=labels, label_mode=label_mode, class_names=class_names, color_mode=color_mode,
        image_size=image_size, batch_size=batch_size, shuffle=shuffle, seed=seed,
        validation_split=validation_split, subset=subset, follow_links=follow_links,
        crop_to_aspect_ratio=crop_to_aspect_ratio, pad_to_aspect_ratio=pad_to_aspect_ratio, on_error=on_error,
        check=check, cache=cache, progress=progress,
    )
    datasets = _folder_datasets(settings)
    return datasets if settings.subset == "both" else datasets[0]


@dataclasses.dataclass(frozen=True)
class _FolderSettings:
    """The arguments of [`image_folder`][visionkit.data.image_folder], validated once."""

    root: Path
    labels: str | tuple[int, ...] | None
    label_mode: str | None
    class_names: tuple[str, ...] | None
    color_mode: str
    image_size: tuple[int, int]
    batch_size: int | None
    shuffle: bool
    seed: int | None
    validation_split: float | None
    subset: str | None
    follow_links: bool
    crop_to_aspect_ratio: bool
    pad_to_aspect_ratio: bool
    on_error: str
    check: str
    cache: str | None
    progress: bool

    @classmethod
    def validate(cls, directory: Any, **kwargs: Any) -> _FolderSettings:
        """Validate every argument, then the folder; raise the standard errors."""
        V.one_of("label_mode", kwargs["label_mode"], ("int", "categorical", "binary", None))
        V.one_of("color_mode", kwargs["color_mode"], tuple(COLOR_CHANNELS))
        V.one_of("on_error", kwargs["on_error"], ("raise", "skip"))
        V.one_of("check", kwargs["check"], ("header", "decode"))
        kwargs["cache"] = _check_cache(kwargs["cache"])
        V.one_of("subset", kwargs["subset"], ("training", "validation", "both", None))
        for name in ("shuffle", "follow_links", "crop_to_aspect_ratio", "pad_to_aspect_ratio", "progress"):
            kwargs[name] = V.boolean(name, kwargs[name])
        if kwargs["crop_to_aspect_ratio"] and kwargs["pad_to_aspect_ratio"]:
            raise InvalidArgumentError(
                "Pass either `crop_to_aspect_ratio` or `pad_to_aspect_ratio`, not both. "
                "Received: crop_to_aspect_ratio=True, pad_to_aspect_ratio=True"
            )
        kwargs["labels"] = _check_labels(kwargs["labels"])
        kwargs["class_names"] = _check_class_names(kwargs["class_names"], kwargs["labels"])
        if kwargs["labels"] is None:
            kwargs["label_mode"] = None  # as Keras: no labels, images only
        kwargs["image_size"] = V.size2d("image_size", kwargs["image_size"])
        kwargs["batch_size"] = V.integer("batch_size", kwargs["batch_size"], minimum=1, allow_none=True)
        kwargs["seed"] = V.integer("seed", kwargs["seed"], minimum=0, allow_none=True)
        split = kwargs["validation_split"] = V.number(
            "validation_split", kwargs["validation_split"], minimum=0.0, maximum=1.0,
            exclusive_minimum=True, exclusive_maximum=True, allow_none=True,
        )
        if (split is None) != (kwargs["subset"] is None):
            raise InvalidArgumentError(
                "Arguments `validation_split` and `subset` go together: pass both or neither. "
                f"Received: validation_split={split!r}, subset={kwargs['subset']!r}"
            )
        return cls(root=existing_folder(directory), **kwargs)  # the folder after the arguments


def list_folder(
    directory: Any, *, labels: Any = "inferred", class_names: Any = None, follow_links: bool = False,
    on_error: str = "raise", check: str = "header", progress: bool = True,
) -> tuple[list[str], list[int], list[int], list[str] | None]:
    """The readable image files of a folder as ``image_folder`` lists and checks them.

    Returns ``(files, labels, orientations, class_names)``; raises or warns as
    [`image_folder`][visionkit.data.image_folder] does.
    """
    settings = _FolderSettings.validate(
        directory, labels=labels, label_mode="int" if labels is not None else None, class_names=class_names,
        color_mode="rgb", image_size=(1, 1), batch_size=None, shuffle=False, seed=None, validation_split=None,
        subset=None, follow_links=follow_links, crop_to_aspect_ratio=False, pad_to_aspect_ratio=False,
        on_error=on_error, check=check, cache=None, progress=progress,
    )
    with _progress(settings.progress, "listing") as bar:
        files, found_labels, names = _list_images(settings, bar)
    files, found_labels, orientations, _, _ = _drop_unreadable(settings, files, found_labels)
    return files, found_labels, orientations, names


def _check_cache(cache: Any) -> str | None:
    """``None`` (no cache), ``""`` (memory) or a file prefix."""
    if cache is None or cache is False:
        return None
    if cache is True or (isinstance(cache, str) and cache == "memory"):
        return ""
    if isinstance(cache, (str, os.PathLike)) and str(cache):
        return os.fspath(cache)
    raise V.fail("cache", 'None, True or "memory" (in memory), or a file path', cache)


def _check_labels(labels: Any) -> str | tuple[int, ...] | None:
    """``"inferred"``, ``None``, or the explicit labels as a tuple of ints >= 0."""
    if labels is None or (isinstance(labels, str) and labels == "inferred"):
        return labels
    allowed = '"inferred", None, or a list or tuple of integer labels >= 0, one per image file'
    if isinstance(labels, np.ndarray) and labels.ndim == 1:
        labels = labels.tolist()
    if not isinstance(labels, (list, tuple)):
        raise V.fail("labels", allowed, labels)
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 0 for v in labels):
        raise V.fail("labels", allowed, labels)
    return tuple(int(v) for v in labels)


def _check_class_names(class_names: Any, labels: Any) -> tuple[str, ...] | None:
    """``class_names`` as a tuple of distinct folder names; only with ``labels="inferred"``."""
    if class_names is None:
        return None
    if labels != "inferred":
        raise InvalidArgumentError(
            'Argument `class_names` can only be passed with labels="inferred" (explicit labels name '
            f'their classes "0", "1", ...). Received: class_names={class_names!r}, '
            f"labels={'None' if labels is None else 'a list of labels'}"
        )
    if (
        isinstance(class_names, str) or not isinstance(class_names, (list, tuple))
        or not class_names or not all(isinstance(c, str) and c for c in class_names)
        or len(set(class_names)) != len(class_names)
    ):
        raise V.fail("class_names", "a non-empty list of distinct class sub-folder names", class_names)
    return tuple(class_names)


def existing_folder(directory: Any, name: str = "directory") -> Path:
    """Return ``directory`` as a ``Path`` to an existing folder; raise otherwise."""
    root = Path(directory)
    if not root.exists():
        raise DataNotFoundError(f"Image folder not found: '{root}' (argument `{name}`).")
    if not root.is_dir():
        raise V.fail(name, "a folder with one sub-folder per class", str(root))
    return root


def subfolders(root: Path) -> list[str]:
    """Names of the visible (not dot-) sub-folders of ``root``, sorted."""
    return sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))


def class_folders(root: Path, chosen: Sequence[str] | None = None) -> list[str]:
    """The class sub-folders of ``root`` (``chosen`` ones, in that order); raise if there are none."""
    found = subfolders(root)
    if chosen is not None:
        missing = [c for c in chosen if c not in found]
        if missing:
            raise V.fail("class_names", f"names of sub-folders of '{root}' ({found}); {missing} are not", list(chosen))
        return list(chosen)
    if not found:
        raise V.fail("directory", "a folder with one sub-folder of images per class; it has no sub-folders", str(root))
    return found


def _folder_datasets(settings: _FolderSettings) -> tuple[tf.data.Dataset, ...]:
    """The datasets of ``settings.subset`` (two for ``"both"``): list, check, split, build.

    As Keras, ``shuffle`` shuffles a lone subset, but only the training side of ``"both"``.
    """
    with _progress(settings.progress, "listing") as bar:
        files, labels, class_names = _list_images(settings, bar)
    files, labels, orientations, digest, jpeg_only = _drop_unreadable(settings, files, labels)
    if settings.labels == "inferred" and class_names is not None:
        _warn_empty_classes(settings.root, class_names, labels)
    parts = _split_files(settings, len(files))
    cache = settings.cache
    if cache:
        key = hashlib.sha256(repr((
            digest, files, labels, settings.image_size, settings.color_mode, settings.crop_to_aspect_ratio,
            settings.pad_to_aspect_ratio, settings.label_mode, settings.seed, settings.validation_split,
        )).encode("utf-8", "surrogateescape")).hexdigest()[:16]
        Path(cache).parent.mkdir(parents=True, exist_ok=True)
    return tuple(
        files_dataset(
            [files[i] for i in idx], [labels[i] for i in idx], [orientations[i] for i in idx], class_names,
            shuffle=settings.shuffle and (name == "training" or settings.subset != "both"),
            seed=settings.seed, batch_size=settings.batch_size, label_mode=settings.label_mode,
            color_mode=settings.color_mode, image_size=settings.image_size,
            crop_to_aspect_ratio=settings.crop_to_aspect_ratio, pad_to_aspect_ratio=settings.pad_to_aspect_ratio,
            on_error=settings.on_error, cache=cache if not cache else f"{cache}-{key}-{name}", jpeg_only=jpeg_only,
        )
        for name, idx in parts.items()
    )


#: Seconds a folder must take to list or check before its progress bar shows.
PROGRESS_DELAY = 1.0


@contextlib.contextmanager
def _progress(enabled: bool, what: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
    """A ``tqdm`` bar on stderr (shown after ``PROGRESS_DELAY`` seconds), as a callback ``add(n)``."""
    if not enabled:
        yield lambda n: None
        return
    from tqdm.auto import tqdm

    with tqdm(total=total, desc=f"image_folder: {what}", unit=" files", delay=PROGRESS_DELAY, leave=False) as bar:
        yield bar.update


def _list_images(
    settings: _FolderSettings, bar: Callable[[int], None]
) -> tuple[list[str], list[int], list[str] | None]:
    """Every image file, its label and the class names, as Keras indexes a folder.

    Inferred labels: the files of each class folder, class by class. Otherwise every
    image under the root. Within a folder tree: folders by path, then files by name.
    """
    root, follow = settings.root, settings.follow_links
    skipped: list[str] = []
    files: list[str] = []
    labels: list[int] = []
    if settings.labels != "inferred":
        files = _walk_images(str(root), follow_links=follow, avoid=frozenset(), root=str(root), skipped=skipped)
        bar(len(files))
        labels, class_names = _explicit_labels(settings, len(files))
    else:
        class_names = class_folders(root, settings.class_names)
        resolve_label_mode(settings.label_mode, class_names, root)
        root_real = os.path.realpath(root)
        trees = {c: os.path.realpath(root / c) for c in subfolders(root)}
        for label, cls in enumerate(class_names):
            real = trees[cls]
            if real == root_real or root_real.startswith(real.rstrip(os.sep) + os.sep):
                skipped.append(str(root / cls))  # a class folder that is the root or holds it: a loop
                continue
            others = frozenset(t for c, t in trees.items() if c != cls)
            found = _walk_images(str(root / cls), follow_links=follow, avoid=others, root=str(root), skipped=skipped)
            files.extend(found)
            labels.extend([label] * len(found))
            bar(len(found))
    if skipped:
        warnings.warn(
            f"image_folder did not read {len(skipped)} folder link(s) that lead back to '{root}', into another "
            "class's folder or to a folder already read:\n" + "\n".join(f"  {s}" for s in skipped[:20]),
            UserWarning, stacklevel=4,
        )
    if not files:
        raise V.fail("directory", f"a folder holding images with extensions {list(IMAGE_EXTENSIONS)}; none found", str(root))
    return files, labels, class_names


def _explicit_labels(settings: _FolderSettings, n_files: int) -> tuple[list[int], list[str] | None]:
    """The labels and class names for ``labels=None`` or an explicit list of labels."""
    if settings.labels is None:
        return [0] * n_files, None
    labels = list(settings.labels)
    if len(labels) != n_files:
        raise InvalidArgumentError(
            f"Argument `labels` must hold one label per image file: '{settings.root}' has {n_files} image "
            f"files (in alphanumeric order of their paths). Received: labels of length {len(labels)}"
        )
    if settings.label_mode == "binary" and not set(labels) <= {0, 1}:
        raise V.fail("labels", 'labels 0 and 1 with label_mode="binary"', sorted(set(labels)))
    return labels, [str(i) for i in range(max(labels, default=0) + 1)]


def _walk_images(top: str, *, follow_links: bool, avoid: frozenset[str], root: str, skipped: list[str]) -> list[str]:
    """The image files under ``top``: folders sorted by path, then files by name (as Keras).

    Hidden files and folders are skipped. Links to folders are entered only with
    ``follow_links``, and then never into a folder already read (no loops), ``root``
    itself, nor into or below a folder in ``avoid`` (real paths of the other classes);
    those links are added to ``skipped``.
    """
    seen = {os.path.realpath(top), os.path.realpath(root)}
    folders: list[tuple[str, list[str]]] = []
    stack = [top]
    while stack:
        folder = stack.pop()
        names: list[str] = []
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            raise ImageReadError(f"Cannot list the image folder '{folder}': {S.first_line(exc)}.") from None
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                if follow_links:
                    real = os.path.realpath(entry.path)
                    if real in seen or any(real == a or real.startswith(a.rstrip(os.sep) + os.sep) for a in avoid):
                        skipped.append(entry.path)
                        continue
                    seen.add(real)
                elif entry.is_symlink():
                    continue  # as Keras: links to folders are read only with follow_links=True
                stack.append(entry.path)
            elif entry.name.lower().endswith(IMAGE_EXTENSIONS) and entry.is_file():
                names.append(entry.name)
        folders.append((folder, names))
    folders.sort(key=lambda f: f[0])
    return [os.path.join(folder, name) for folder, names in folders for name in names]


def _warn_empty_classes(root: Path, class_names: list[str], labels: list[int]) -> None:
    """Warn, naming them, about class folders left without a single image."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(class_names))
    empty = [c for c, n in zip(class_names, counts) if n == 0]
    if empty:
        kept = [c for c, n in zip(class_names, counts) if n > 0]
        warnings.warn(
            f"image_folder: the class folder(s) {empty} of '{root}' hold no readable image; they remain "
            f"classes (labels) with no examples. To leave them out, pass class_names={kept!r}.",
            UserWarning, stacklevel=4,
        )


def _drop_unreadable(
    settings: _FolderSettings, files: list[str], labels: list[int]
) -> tuple[list[str], list[int], list[int], str, bool]:
    """Check every file's header (cached per folder state), as the dataset will read it.

    Returns the files TensorFlow decodes, their labels, their EXIF orientations, the
    digest of the listing and whether all are JPEGs. Raises on the others, or drops them
    with one warning.
    """
    root = settings.root
    with _progress(settings.progress, "checking", total=len(files)) as bar:
        info = X.file_index(root, files, confirm=H.tf_unreadable, progress=bar)
    digest = X.listing_digest(X.relative(files, root), X.stat_files(files)) if settings.cache else ""
    bad_mask = info[:, 3] == 1
    if settings.check == "decode":
        bad_mask[H.tf_unreadable(files)] = True
    bad = np.flatnonzero(bad_mask).tolist()
    orientations = info[:, 2].tolist()
    jpeg_only = bool((info[~bad_mask, 4] == H.KINDS["jpeg"]).all())
    if not bad:
        return files, labels, orientations, digest, jpeg_only
    listing = "\n".join(f"  {files[i]}: {H.bad_reason(files[i])}" for i in bad[:20])
    more = f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else ""
    if settings.on_error == "raise":
        raise ImageReadError(
            f"{len(bad)} image file(s) in '{root}' that TensorFlow cannot decode:\n{listing}{more}\n"
            "Remove or fix them, or pass on_error='skip'."
        )
    warnings.warn(f"image_folder skipped {len(bad)} unreadable file(s):\n{listing}{more}", RuntimeWarning, stacklevel=4)
    keep = np.flatnonzero(~bad_mask).tolist()
    if not keep:
        raise V.fail("directory", "a folder with at least one readable image", str(root))
    return [files[i] for i in keep], [labels[i] for i in keep], [orientations[i] for i in keep], digest, jpeg_only


def _split_files(settings: _FolderSettings, n: int) -> dict[str, list[int]]:
    """Indices of the subsets asked for, ``{"training": ..., "validation": ...}``, in that order.

    Files are permuted with ``seed`` (0 when None) before the split, so the split is
    deterministic and the two subsets never overlap; with ``shuffle=False`` each subset
    is then put back in listing order.
    """
    order = np.random.default_rng(0 if settings.seed is None else settings.seed).permutation(n)
    if settings.validation_split is None:
        parts = {"training": order if settings.shuffle else np.arange(n)}
    else:
        n_train = n - int(settings.validation_split * n)
        parts = {"training": order[:n_train], "validation": order[n_train:]}
    wanted = ("training", "validation") if settings.subset == "both" else (settings.subset or "training",)
    for name in wanted:
        if not len(parts[name]):
            raise InvalidArgumentError(
                f"`validation_split={settings.validation_split}` leaves the {name} subset of '{settings.root}' "
                f"empty ({n} images in all). Use a split closer to 0.5 or add images. "
                f"Received: validation_split={settings.validation_split!r}"
            )
    return {name: (parts[name] if settings.shuffle else np.sort(parts[name])).tolist() for name in wanted}


# ----------------------------------------------------------------------------- folder splits


def resolve_label_mode(label_mode: str | None, class_names: list[str], root: Path) -> str | None:
    """``"auto"`` → ``"binary"`` for 2 classes, else ``"int"``; check ``"binary"`` has 2."""
    if label_mode == "auto":
        return "binary" if len(class_names) == 2 else "int"
    if label_mode == "binary" and len(class_names) != 2:
        raise InvalidArgumentError(
            f"`label_mode='binary'` needs exactly 2 classes, but '{root}' has {len(class_names)}: "
            f"{class_names}. Use label_mode='int' or 'categorical'. Received: label_mode='binary'"
        )
    return label_mode
