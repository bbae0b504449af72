"""Classic convnets and the recipes that train them: MNIST, CIFAR-10, folders of images.

Models
------
[`mnist_convnet`][visionkit.convnets.mnist_convnet], [`cifar10_convnet`][visionkit.convnets.cifar10_convnet] and [`small_convnet`][visionkit.convnets.small_convnet] return
uncompiled ``keras.Model`` objects that take **raw pixels in [0, 255]** and rescale
(or standardise) inside the model, so you, [`visionkit.gradcam`][visionkit.gradcam] and a saved
``.keras`` file all feed images as they come. Augmentation layers sit inside the model
too (active only in training), so they run on the accelerator. The last layer
computes in float32, so the models work under a mixed-precision policy.

Recipes
-------
[`train_mnist`][visionkit.convnets.train_mnist], [`train_cifar10`][visionkit.convnets.train_cifar10], [`train_cifar10_fast`][visionkit.convnets.train_cifar10_fast] and [`train_image_folder`][visionkit.convnets.train_image_folder] load the
data (offline with ``sample=True``), build the model and train it with [`visionkit.training.run_recipe`][visionkit.training.run_recipe]
(resumable with ``checkpoint_dir``). They take the shared training options
([`visionkit.training.TrainOptions`][visionkit.training.TrainOptions]) and return a
[`visionkit.training.TrainResult`][visionkit.training.TrainResult] that unpacks as ``model, history, metrics``.

Examples
--------
>>> from visionkit import convnets
>>> convnets.mnist_convnet().count_params()
93322
>>> model, history, metrics = convnets.train_mnist(sample=True, epochs=1, limit=256, progress=False)
>>> sorted(metrics)
['accuracy', 'loss']
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from . import _validate as V
from ._convnet_models import (
    MNIST_VARIANTS,
    augment_ranges,
    cifar10_convnet,
    fast_cifar10_convnet,
    mnist_convnet,
    predict_tta,
    small_convnet,
)
from ._options import TrainOptions, augment_switch
from ._recipe_data import holdout, sample_cats_dogs, subset
from .errors import InvalidArgumentError

if TYPE_CHECKING:  # pragma: no cover
    import keras
    from typing_extensions import Unpack

    from .training import TrainOptionsKwargs, TrainResult

__all__ = [
    "FAST_VARIANTS",
    "MNIST_VARIANTS",
    "RECIPE_DEFAULTS",
    "cifar10_convnet",
    "fast_cifar10_convnet",
    "mnist_convnet",
    "predict_tta",
    "small_convnet",
    "train_cifar10",
    "train_cifar10_fast",
    "train_image_folder",
    "train_mnist",
]

#: The training options each recipe sets differently from
#: [`visionkit.training.TrainOptions`][visionkit.training.TrainOptions]' defaults (the command line uses them too).
RECIPE_DEFAULTS: Mapping[str, Mapping[str, Any]] = MappingProxyType({
    "train_mnist": MappingProxyType({"epochs": 5, "batch_size": 64, "optimizer": "rmsprop"}),
    "train_cifar10": MappingProxyType({"epochs": 50, "batch_size": 64, "optimizer": "adam", "lr_schedule": "cosine"}),
    # measured by benchmarks/tricks.py (the "Training tricks" page): Adam on a one-cycle schedule with
    # label smoothing (and the recipe's augment="light") beat the former RMSprop at 1e-4 by 10 points
    "train_image_folder": MappingProxyType({"epochs": 30, "batch_size": 32, "optimizer": "adam", "learning_rate": 1e-3,
                                            "lr_schedule": "one_cycle", "label_smoothing": 0.1}),
    # "sgd" is airbench94's Nesterov SGD; learning_rate None is its 11.5 per 1024 examples and,
    # unless lr_schedule is given, its triangular warm-up and decay (see train_cifar10_fast)
    "train_cifar10_fast": MappingProxyType({"epochs": 10, "batch_size": 1024, "optimizer": "sgd", "precision": "auto"}),
})

# the fast recipe's budgets, each with where its defaults differ from the recipe's
# ("muon": airbench94_muon's optimizer)
_VARIANT_DEFAULTS: Mapping[str, Mapping[str, Any]] = MappingProxyType({
    "94": MappingProxyType({}),
    "95": MappingProxyType({"epochs": 15}),
    "94-muon": MappingProxyType({"epochs": 8, "batch_size": 2000, "optimizer": "muon"}),
})

#: The fast recipe's budgets (``train_cifar10_fast(variant=...)``).
FAST_VARIANTS: tuple[str, ...] = tuple(_VARIANT_DEFAULTS)

# ----------------------------------------------------------------------------- recipes


def train_mnist(
    *,
    variant: str = "chollet",
    validation_split: float = 0.1,
    limit: int | None = None,
    sample: bool = False,
    path: str | os.PathLike[str] | None = None,
    **options: Unpack[TrainOptionsKwargs],
) -> TrainResult:
    """Train [`mnist_convnet`][visionkit.convnets.mnist_convnet] on MNIST.

    The book's recipe: 5 epochs, batch 64, RMSprop, sparse categorical
    cross-entropy (reaches about 0.99 test accuracy on the full set; see
    ``benchmarks/convnets.py``).

    Parameters
    ----------
    variant : {"chollet", "cookbook"}, default "chollet"
        See [`mnist_convnet`][visionkit.convnets.mnist_convnet].
    validation_split : float, default 0.1
        Fraction of the training set held out (at random, the same for a given
        ``seed``) for the validation curves and the best checkpoint; 0 for none.
    limit : int, optional
        Train on ``limit`` training examples only, drawn at random (quick runs).
    sample : bool, default False
        Use the bundled sample (5,000 train / 1,000 test digits): no data, no network.
    path : str or os.PathLike, optional
        An ``mnist.npz``; by default [`visionkit.data.load_mnist`][visionkit.data.load_mnist] finds one.
    **options
        The shared training options ([`visionkit.training.TrainOptions`][visionkit.training.TrainOptions]);
        this recipe's defaults: ``epochs=5``, ``batch_size=64``,
        ``optimizer="rmsprop"``.

    Returns
    -------
    visionkit.training.TrainResult
        Unpacks as ``model, history, metrics``: the trained model (it carries the
        class names ``"0"`` to ``"9"``), its history, and ``{"loss", "accuracy"}``
        on the test set.

    Examples
    --------
    >>> from visionkit.convnets import train_mnist
    >>> model, history, metrics = train_mnist(sample=True, epochs=1, limit=512, progress=False)
    >>> sorted(metrics), len(history.epoch)
    (['accuracy', 'loss'], 1)
    """
    V.one_of("variant", variant, MNIST_VARIANTS)
    limit = V.integer("limit", limit, minimum=1, allow_none=True)
    validation_split = _split("validation_split", validation_split)
    sample = V.boolean("sample", sample)
    opts = TrainOptions.from_kwargs(options, **RECIPE_DEFAULTS["train_mnist"])
    from .data import load_mnist
    from .training import run_recipe

    (x_train, y_train), (x_test, y_test) = load_mnist(path, sample=sample)
    x_train, y_train = subset(x_train[..., None], y_train, limit, opts.seed)
    train_part, val_part = holdout(x_train, y_train, validation_split)
    return run_recipe(
        lambda: mnist_convnet(variant=variant), train_part, validation_data=val_part,
        test_data=(x_test[..., None], y_test), class_names=[str(i) for i in range(10)], options=opts,
        settings={"recipe": "mnist", "variant": variant, "validation_split": validation_split, "limit": limit,
                  "sample": sample, "path": str(path) if path is not None else None},
    )


def train_cifar10(
    *,
    augment: bool | str = True,
    translation: float = 0.1,
    rotation: float = 0.0,
    normalize: bool = True,
    validation_split: float = 0.1,
    limit: int | None = None,
    sample: bool = False,
    path: str | os.PathLike[str] | None = None,
    **options: Unpack[TrainOptionsKwargs],
) -> TrainResult:
    """Train [`cifar10_convnet`][visionkit.convnets.cifar10_convnet] on CIFAR-10.

    Parameters
    ----------
    augment : bool or str, default True
        Random flips, shifts up to ``translation`` and rotations up to ``rotation``
        inside the model (training only); or a preset name from
        [`visionkit.training.AUGMENT_PRESETS`][visionkit.training.AUGMENT_PRESETS], applied to whole batches in the
        ``tf.data`` pipeline instead (the shared ``augment`` option).
    translation, rotation : float, default 0.1 and 0.0
        See [`cifar10_convnet`][visionkit.convnets.cifar10_convnet]. The classic recipe is ``translation=0,
        rotation=25, lr_schedule="constant"``.
    normalize : bool, default True
        Featurewise standardisation adapted on the training images (else
        rescaling to ``[0, 1]``).
    validation_split : float, default 0.1
        Fraction of the training set held out (at random) for validation; 0 for none.
        The training set is shuffled once with ``seed`` (0 when ``None``) before the
        split, since some sources list the images sorted by class.
    limit : int, optional
        Train on ``limit`` training examples only, drawn at random.
    sample : bool, default False
        Use the bundled sample (1,000 train / 200 test images).
    path : str or os.PathLike, optional
        Where CIFAR-10 is (see [`visionkit.data.load_cifar10`][visionkit.data.load_cifar10]).
    **options
        The shared training options ([`visionkit.training.TrainOptions`][visionkit.training.TrainOptions]);
        this recipe's defaults: ``epochs=50``, ``batch_size=64``,
        ``optimizer="adam"`` (at its default rate 1e-3), ``lr_schedule="cosine"``.

    Returns
    -------
    visionkit.training.TrainResult
        Unpacks as ``model, history, metrics``; the model carries
        [`visionkit.data.CIFAR10_CLASSES`][visionkit.data.CIFAR10_CLASSES]; ``metrics`` are on the test set.

    Examples
    --------
    >>> from visionkit.convnets import train_cifar10
    >>> result = train_cifar10(sample=True, epochs=1, limit=256, progress=False)
    >>> result.class_names[:2], sorted(result.metrics)
    (('airplane', 'automobile'), ['accuracy', 'loss'])
    """
    in_model, preset = augment_switch(augment)
    rotation, translation = augment_ranges(rotation, translation)
    normalize = V.boolean("normalize", normalize)
    limit = V.integer("limit", limit, minimum=1, allow_none=True)
    validation_split = _split("validation_split", validation_split)
    sample = V.boolean("sample", sample)
    opts = TrainOptions.from_kwargs({**options, "augment": preset}, **RECIPE_DEFAULTS["train_cifar10"])
    from .data import CIFAR10_CLASSES, load_cifar10
    from .training import run_recipe

    (x_train, y_train), (x_test, y_test) = load_cifar10(path, sample=sample)
    x_train, y_train = subset(x_train, y_train, limit, opts.seed)
    train_part, val_part = holdout(x_train, y_train, validation_split)

    def build() -> keras.Model:
        return cifar10_convnet(normalization=train_part[0] if normalize else None, augment=in_model,
                               rotation=rotation, translation=translation, seed=opts.seed)

    return run_recipe(
        build, train_part, validation_data=val_part, test_data=(x_test, y_test), class_names=CIFAR10_CLASSES,
        options=opts,
        settings={"recipe": "cifar10", "augment": augment, "translation": translation, "rotation": rotation,
                  "normalize": normalize, "validation_split": validation_split, "limit": limit, "sample": sample,
                  "path": str(path) if path is not None else None},
    )


def train_cifar10_fast(
    *,
    variant: str = "94",
    tta: bool = True,
    whitening: bool = True,
    ema: bool | None = None,
    alternating_flip: bool = True,
    label_smoothing: float = 0.2,
    translation: int = 2,
    validation_split: float = 0.0,
    limit: int | None = None,
    sample: bool = False,
    path: str | os.PathLike[str] | None = None,
    **options: Unpack[TrainOptionsKwargs],
) -> TrainResult:
    """Train [`fast_cifar10_convnet`][visionkit.convnets.fast_cifar10_convnet] with airbench94's recipe (94 % in ten epochs on a GPU).

    The recipe of Jordan, *94% on CIFAR-10 in 3.29 seconds on a single GPU* (arXiv
    2404.00498), written with Keras pieces: the whitening layer adapted on 5,000
    training images, its bias trained for the first 3 epochs only; batch 1024;
    Nesterov SGD (momentum 0.85, PyTorch's form) at 11.5 per 1024 examples with coupled
    weight decay 0.0153 per 1024 examples and a 64× rate on the BatchNorm biases, along a
    triangular schedule (from 0.2× up to the peak at 23 % of the steps, down to
    0.07×); label smoothing 0.2; a lookahead EMA of the weights every 5 steps;
    translations up to 2 pixels with reflection padding and alternating flips, done on
    whole batches in a compiled ``tf.data`` pipeline; test-time augmentation.
    See the "Fast CIFAR-10" docs page.

    Parameters
    ----------
    variant : {"94", "95", "94-muon"}, default "94"
        The budget. ``"94"``: airbench94 as above (widths 64/256/256, 10 epochs).
        ``"95"``: airbench95's longer budget, widths 128/384/384, rate 10.0 per 1024
        examples and 15 epochs by default (95.0 % on a GPU in the paper; about 2.3× the
        time of ``"94"`` per epoch as measured on a CPU, 3.4× in all), everything else alike.
        ``"94-muon"``: airbench94_muon (the same repository): ``optimizer="muon"``, batch
        2000 and 8 epochs by default, no lookahead, the head rescaled to unit
        standard deviation and its logits divided by its width; 94 % on a GPU in about a
        fifth fewer training images than ``"94"`` (measured on a 2-core AVX512-BF16 CPU:
        0.9064 over 5 seeds in about 14 minutes, against 0.9069 in 17–19 for ``"94"``;
        with ``epochs=10``, 0.9106 in about 17 minutes, the most accurate in that time).
    tta : bool, default True
        Report the accuracy with test-time augmentation
        ([`predict_tta`][visionkit.convnets.predict_tta], level 2) as ``metrics["accuracy"]``.
    whitening, alternating_flip : bool, default True
        The recipe's parts, for ablations: ``whitening=False`` trains a plain 2×2
        convolution instead of the frozen whitening one; ``alternating_flip=False``
        flips each image at random every epoch instead.
    ema : bool, optional
        The lookahead EMA (``None``: on, but off for ``"94-muon"``, as in its reference);
        ``False`` drops it (an ablation).
    label_smoothing : float, default 0.2
        Label smoothing of the cross-entropy; 0 for none.
    translation : int, default 2
        Largest random shift in pixels (reflection padding); 0 for none.
    validation_split : float, default 0.0
        Fraction of the training set held out for validation curves (the reference
        holds out none).
    limit : int, optional
        Train on ``limit`` training examples only, drawn at random.
    sample : bool, default False
        Use the bundled sample (1,000 train / 200 test images).
    path : str or os.PathLike, optional
        Where CIFAR-10 is (see [`visionkit.data.load_cifar10`][visionkit.data.load_cifar10]).
    **options
        The shared training options ([`visionkit.training.TrainOptions`][visionkit.training.TrainOptions]);
        this recipe's defaults: ``epochs=10`` (15 for ``variant="95"``), ``batch_size=1024``,
        ``optimizer="sgd"``, ``precision="auto"`` (``"94-muon"``: ``epochs=8``,
        ``batch_size=2000``, ``optimizer="muon"``). With ``optimizer="sgd"`` the run
        uses the paper's optimizer above: ``learning_rate`` is then in its units (per
        1024 examples; ``None``: 11.5, 10.0 for ``"95"``) and rescaled for the global batch, and the
        schedule is the paper's triangle unless ``lr_schedule`` is given. With
        ``optimizer="muon"`` it uses airbench94_muon's: Muon (momentum 0.6, Nesterov,
        three Newton-Schulz steps) on the convolution filters at ``learning_rate``
        (``None``: 0.24), PyTorch's Nesterov SGD (momentum 0.85) on the BatchNorm biases
        and the whitening bias (0.053) and the head (0.67), rates scaled alike with
        ``learning_rate`` and decaying linearly to zero unless ``lr_schedule`` is given.
        Any other optimizer is used as in [`visionkit.training.train`][visionkit.training.train]. ``seed`` also seeds
        the weight initialisation here, so a seed reproduces a run.

    Returns
    -------
    visionkit.training.TrainResult
        Unpacks as ``model, history, metrics``; the model outputs logits and carries
        [`visionkit.data.CIFAR10_CLASSES`][visionkit.data.CIFAR10_CLASSES]; ``metrics`` on the test set:
        ``"loss"``, ``"accuracy"`` (with test-time augmentation when ``tta``) and
        ``"accuracy_no_tta"``.

    Examples
    --------
    >>> from visionkit.convnets import train_cifar10_fast
    >>> result = train_cifar10_fast(sample=True, epochs=1, limit=256, batch_size=128, progress=False)
    >>> sorted(result.metrics)
    ['accuracy', 'accuracy_no_tta', 'loss']
    """
    started = time.perf_counter()
    variant = V.one_of("variant", str(variant) if isinstance(variant, int) and not isinstance(variant, bool)
                       else variant, FAST_VARIANTS)
    parts = {name: V.boolean(name, value) for name, value in
             (("tta", tta), ("whitening", whitening), ("alternating_flip", alternating_flip))}
    ema = None if ema is None else V.boolean("ema", ema)
    label_smoothing = float(V.number("label_smoothing", label_smoothing, minimum=0.0, maximum=1.0, exclusive_maximum=True))
    translation = V.integer("translation", translation, minimum=0, maximum=8)
    validation_split = _split("validation_split", validation_split)
    limit = V.integer("limit", limit, minimum=1, allow_none=True)
    sample = V.boolean("sample", sample)
    opts = TrainOptions.from_kwargs(options, **{**RECIPE_DEFAULTS["train_cifar10_fast"], **_VARIANT_DEFAULTS[variant]})
    if opts.augment != "none":
        raise V.fail("augment", "unset: the fast recipe has its own augmentation", opts.augment)
    if opts.lr_schedule == "one_cycle":
        raise V.fail("lr_schedule", "'constant', 'cosine' or unset (the recipe's triangle) in the fast recipe",
                     opts.lr_schedule)
    from ._fast_cifar import VARIANTS
    from ._fast_cifar_recipe import Parts, run
    from .data import load_cifar10

    (x_train, y_train), test = load_cifar10(path, sample=sample)
    x_train, y_train = subset(x_train, y_train, limit, opts.seed)
    train_part, val_part = holdout(x_train, y_train, validation_split)
    return run(train_part, val_part, test, options=opts, paper_schedule="lr_schedule" not in options,
               parts=Parts(label_smoothing=label_smoothing, translation=translation, variant=variant,
                           ema=VARIANTS[variant]["ema"] if ema is None else ema, **parts),
               settings={"recipe": "cifar10_fast", "validation_split": validation_split, "limit": limit,
                         "sample": sample, "path": str(path) if path is not None else None},
               started=started)


def train_image_folder(
    directory: str | os.PathLike[str] | None = None,
    *,
    image_size: int | tuple[int, int] = (150, 150),
    validation_split: float = 0.2,
    test_directory: str | os.PathLike[str] | None = None,
    dropout: float | None = 0.5,
    augment: bool | str = "light",
    sample: bool = False,
    **options: Unpack[TrainOptionsKwargs],
) -> TrainResult:
    """Train [`small_convnet`][visionkit.convnets.small_convnet] on a folder of images.

    Parameters
    ----------
    directory : str or os.PathLike, optional
        A class-per-folder tree ``directory/<class>/<image>``, or a folder of
        ``train/``, ``validation/`` (or ``val/``) and ``test/`` trees: the layouts
        of [`visionkit.data.folder_splits`][visionkit.data.folder_splits], which reads it. Not needed with
        ``sample``.
    image_size : int or (height, width), default (150, 150)
        Images are resized to this; each side at least 46.
    validation_split : float, default 0.2
        Fraction held out for validation when there is no ``validation/`` folder.
    test_directory : str or os.PathLike, optional
        A class-per-folder tree to compute ``metrics`` on. Without it (and without a
        ``test/`` folder) ``metrics`` are computed on the validation split.
    dropout : float or None, default 0.5
        See [`small_convnet`][visionkit.convnets.small_convnet].
    augment : bool or str, default "light"
        A preset name from [`visionkit.training.AUGMENT_PRESETS`][visionkit.training.AUGMENT_PRESETS]: that preset on
        whole batches in the ``tf.data`` pipeline (the shared ``augment`` option; ``"light"``:
        flips and shifts up to 1/8); ``True``: the classic augmentation inside the model
        (flips, rotations, shifts, zooms; see [`small_convnet`][visionkit.convnets.small_convnet], the former
        default); ``False``: none.
    sample : bool, default False
        Train on a tiny bundled cats-vs-dogs tree (the cat and dog images of the
        CIFAR-10 sample: 200 train / 40 test), offline.
    **options
        The shared training options ([`visionkit.training.TrainOptions`][visionkit.training.TrainOptions]);
        this recipe's defaults: ``epochs=30``, ``batch_size=32``,
        ``optimizer="adam"``, ``learning_rate=1e-3``, ``lr_schedule="one_cycle"``,
        ``label_smoothing=0.1`` (chosen by ``benchmarks/tricks.py``; the former
        defaults were RMSprop at 1e-4, constant, no smoothing, in-model augmentation).

    Returns
    -------
    visionkit.training.TrainResult
        Unpacks as ``model, history, metrics``; the model carries the class names
        (the sub-folder names); ``metrics`` are on the test set (or the validation
        split, see ``test_directory``).

    Examples
    --------
    >>> from visionkit.convnets import train_image_folder
    >>> result = train_image_folder(sample=True, image_size=48, epochs=1, progress=False)
    >>> result.class_names
    ('cat', 'dog')
    """
    image_size = V.size2d("image_size", image_size)
    if min(image_size) < 46:
        raise V.fail("image_size", "at least 46 pixels on each side", image_size)
    validation_split = V.number("validation_split", validation_split, minimum=0.0, maximum=1.0,
                                exclusive_minimum=True, exclusive_maximum=True)
    sample = V.boolean("sample", sample)
    in_model, preset = augment_switch(augment)
    if directory is None and not sample:
        raise V.fail("directory", "a folder of class sub-folders (or pass sample=True)", directory)
    if directory is not None and sample:
        raise InvalidArgumentError(
            f"Pass either `directory` or `sample=True`, not both. Received: directory={str(directory)!r}, sample=True"
        )
    opts = TrainOptions.from_kwargs({**options, "augment": preset}, **RECIPE_DEFAULTS["train_image_folder"])
    from .data import folder_splits
    from .training import run_recipe

    resolved = opts.resolve()  # strategy, precision and global batch, once for the whole recipe
    opts = resolved.options
    with contextlib.ExitStack() as stack:
        root = stack.enter_context(sample_cats_dogs()) if sample else Path(directory)  # type: ignore[arg-type]
        splits = folder_splits(root, image_size=image_size, batch_size=resolved.global_batch,
                               validation_split=validation_split, test_directory=test_directory, seed=opts.seed,
                               progress=opts.progress)
        n = len(splits.class_names)
        return run_recipe(
            lambda: small_convnet((*image_size, 3), num_classes=n, dropout=dropout, augment=in_model, seed=opts.seed),
            splits.train, validation_data=splits.validation,
            test_data=splits.test if splits.test is not None else splits.validation,
            class_names=splits.class_names, options=opts,
            settings={"recipe": "image_folder", "directory": None if sample else str(directory), "sample": sample,
                      "image_size": list(image_size), "validation_split": validation_split,
                      "test_directory": str(test_directory) if test_directory is not None else None,
                      "dropout": dropout, "augment": augment},
        )


# ----------------------------------------------------------------------------- helpers


def _split(name: str, value: Any) -> float:
    return float(V.number(name, value, minimum=0.0, maximum=1.0, exclusive_maximum=True))
