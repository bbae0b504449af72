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

import numpy as np

from . import _validate as V
from ._options import TrainOptions, augment_switch
from ._recipe_data import holdout, sample_cats_dogs, subset
from .errors import InvalidArgumentError

if TYPE_CHECKING:  # pragma: no cover
    import keras
    from typing_extensions import Unpack

    from .training import TrainOptionsKwargs, TrainResult

__all__ = [
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

#: Variants of [`mnist_convnet`][visionkit.convnets.mnist_convnet].
MNIST_VARIANTS: tuple[str, ...] = ("chollet", "cookbook")

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

# ----------------------------------------------------------------------------- models


def mnist_convnet(*, variant: str = "chollet") -> keras.Model:
    """The MNIST digit classifier, in one of two classic designs.

    Parameters
    ----------
    variant : {"chollet", "cookbook"}, default "chollet"
        ``"chollet"`` (*Deep Learning with Python*): Conv2D(32, 3×3, relu) → MaxPool 2
        → Conv2D(64, 3×3, relu) → MaxPool 2 → Conv2D(64, 3×3, relu) → Flatten →
        Dense(64, relu) → Dense(10, softmax); 93,322 parameters.
        ``"cookbook"`` (*TensorFlow Machine Learning Cookbook*): Conv2D(32, 5×5, SAME,
        relu) → MaxPool 2 → Conv2D(64, 5×5, SAME, relu) → MaxPool 2 → Flatten →
        Dense(1024, relu) → Dropout(0.15) → Dense(10) (logits); 3,274,634 parameters.

    Returns
    -------
    keras.Model
        Uncompiled. Input ``(batch, 28, 28, 1)`` pixels in ``[0, 255]`` (rescaled to
        ``[0, 1]`` inside); output ``(batch, 10)`` float32: probabilities
        (``"chollet"``) or logits (``"cookbook"``).

    Examples
    --------
    >>> from visionkit.convnets import mnist_convnet
    >>> mnist_convnet().count_params()
    93322
    """
    V.one_of("variant", variant, MNIST_VARIANTS)
    import keras
    from keras import layers

    inputs = keras.Input((28, 28, 1), name="image")
    x = layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    if variant == "chollet":
        x = layers.Conv2D(32, 3, activation="relu", name="conv1")(x)
        x = layers.MaxPooling2D(2, name="pool1")(x)
        x = layers.Conv2D(64, 3, activation="relu", name="conv2")(x)
        x = layers.MaxPooling2D(2, name="pool2")(x)
        x = layers.Conv2D(64, 3, activation="relu", name="conv3")(x)
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(64, activation="relu", name="dense")(x)
        outputs = layers.Dense(10, activation="softmax", dtype="float32", name="predictions")(x)
    else:
        x = layers.Conv2D(32, 5, padding="same", activation="relu", name="conv1")(x)
        x = layers.MaxPooling2D(2, name="pool1")(x)
        x = layers.Conv2D(64, 5, padding="same", activation="relu", name="conv2")(x)
        x = layers.MaxPooling2D(2, name="pool2")(x)
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(1024, activation="relu", name="dense")(x)
        x = layers.Dropout(0.15, name="dropout")(x)
        outputs = layers.Dense(10, dtype="float32", name="logits")(x)
    return keras.Model(inputs, outputs, name=f"mnist_{variant}")


def cifar10_convnet(
    *,
    normalization: Any = None,
    augment: bool = True,
    rotation: float = 0.0,
    translation: float = 0.1,
    seed: int | None = None,
) -> keras.Model:
    """The CIFAR-10 convnet, with normalisation and augmentation inside the model.

    Architecture: [augmentation] → normalisation → Conv2D(32, 3, relu) → MaxPool 2 →
    Conv2D(64, 3, relu) → Conv2D(64, 3, relu) → MaxPool 2 → Flatten → Dense(512, relu)
    → Dropout(0.5) → Dense(10, softmax). Convolutions use SAME padding: 2,159,114
    parameters (plus 7 non-trainable statistics with a standardisation layer).

    Parameters
    ----------
    normalization : None, keras.layers.Normalization, numpy.ndarray or tf.data.Dataset
        ``None``: rescale pixels to ``[0, 1]``. A ``Normalization`` layer: used as it
        is (e.g. from [`visionkit.preprocess.standardization`][visionkit.preprocess.standardization]). Training images
        ``(N, 32, 32, 3)`` or a dataset of them: a featurewise zero-centre / unit-std
        layer is adapted on them.
    augment : bool, default True
        Random augmentation in training (inactive at inference): a horizontal flip,
        a shift up to ``translation`` and a rotation up to ``rotation`` degrees.
    rotation : float, default 0.0
        Maximum rotation in degrees (either way); 0 for none. The classic design
        rotates up to 25° (and does not shift): ``rotation=25, translation=0``.
        Measured at 50 epochs, 25° rotations hold this small net below 0.80 test
        accuracy (it underfits them), while flips and shifts reach it; see the
        "Convnets" docs page.
    translation : float, default 0.1
        Maximum shift as a fraction of height and width (0.1 ≈ 3 pixels); 0 for
        none.
    seed : int, optional
        Seed of the augmentation layers.

    Returns
    -------
    keras.Model
        Uncompiled. Input ``(batch, 32, 32, 3)`` RGB in ``[0, 255]``; output
        ``(batch, 10)`` float32 class probabilities in the order of
        [`visionkit.data.CIFAR10_CLASSES`][visionkit.data.CIFAR10_CLASSES].

    Examples
    --------
    >>> from visionkit import convnets, data
    >>> (x, y), _ = data.load_cifar10(sample=True)
    >>> model = convnets.cifar10_convnet(normalization=x)
    >>> model.output_shape
    (None, 10)
    """
    augment = V.boolean("augment", augment)
    rotation, translation = _augment_ranges(rotation, translation)
    seed = V.integer("seed", seed, allow_none=True)
    import keras
    from keras import layers

    from .preprocess import augmentation, standardization

    if normalization is None:
        norm: Any = layers.Rescaling(1.0 / 255, name="rescale")
    elif isinstance(normalization, layers.Normalization):
        norm = normalization
    else:
        norm = standardization(_cifar_images(normalization))
    inputs = keras.Input((32, 32, 3), name="image")
    x = inputs
    if augment:
        x = augmentation(flip="horizontal", rotation=rotation, zoom=0.0, translation=translation, seed=seed)(x)
    x = norm(x)
    x = layers.Conv2D(32, 3, padding="same", activation="relu", name="conv1")(x)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.Conv2D(64, 3, padding="same", activation="relu", name="conv2")(x)
    x = layers.Conv2D(64, 3, padding="same", activation="relu", name="conv3")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(512, activation="relu", name="dense")(x)
    x = layers.Dropout(0.5, name="dropout")(x)
    outputs = layers.Dense(10, activation="softmax", dtype="float32", name="predictions")(x)
    return keras.Model(inputs, outputs, name="cifar10_convnet")


def _cifar_images(data: Any) -> Any:
    """``data`` if it holds CIFAR-sized images ``(N, 32, 32, 3)`` (or a dataset of them); raise otherwise."""
    spec = getattr(data, "element_spec", None)
    spec = spec[0] if isinstance(spec, tuple) else spec
    shape = tuple(spec.shape if spec is not None else np.shape(data))
    what = f"a dataset of images {shape}" if spec is not None else f"an array of shape {shape}"
    if len(shape) < 3 or any(g is not None and g != w for g, w in zip(shape[-3:], (32, 32, 3))):
        raise V.fail("normalization", "None, a keras.layers.Normalization, or CIFAR-10 training images "
                     "(N, 32, 32, 3) (or a tf.data.Dataset of them) to adapt one on", what)
    return data


def small_convnet(
    input_shape: tuple[int, int, int] = (150, 150, 3),
    *,
    num_classes: int = 2,
    dropout: float | None = 0.5,
    augment: bool = True,
    seed: int | None = None,
) -> keras.Model:
    """The small from-scratch convnet of the cats-vs-dogs recipe.

    [augmentation] → rescale → Conv2D 32/64/128/128 (3×3, relu), each followed by 2×2
    max-pooling → Flatten → [Dropout] → Dense(512, relu) → Dense(1, sigmoid) for two
    classes or Dense(``num_classes``, softmax). At 150×150×3 with two classes it has
    3,453,121 parameters (dropout and augmentation add none).

    Parameters
    ----------
    input_shape : (height, width, channels), default (150, 150, 3)
        Image size; height and width at least 46 (four 3×3 convolutions and poolings).
    num_classes : int, default 2
        Number of classes (≥ 2).
    dropout : float or None, default 0.5
        Dropout rate before the dense layer; ``None`` or 0 for none.
    augment : bool, default True
        The classic augmentation (flip, rotation 40°, shift, zoom 0.2), training only.
    seed : int, optional
        Seed of the augmentation layers.

    Returns
    -------
    keras.Model
        Uncompiled. Input ``(batch, height, width, channels)`` in ``[0, 255]``;
        output float32 ``(batch, 1)`` probability of class 1, or ``(batch,
        num_classes)`` probabilities.

    Examples
    --------
    >>> from visionkit.convnets import small_convnet
    >>> small_convnet(dropout=None, augment=False).count_params()
    3453121
    """
    if (
        not isinstance(input_shape, (tuple, list))
        or len(input_shape) != 3
        or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in input_shape)
        or min(input_shape[:2]) < 46
        or input_shape[2] < 1
    ):
        raise V.fail("input_shape", "a (height, width, channels) tuple of integers, height and width >= 46", input_shape)
    num_classes = V.integer("num_classes", num_classes, minimum=2)
    dropout = V.number("dropout", dropout, minimum=0.0, maximum=1.0, exclusive_maximum=True, allow_none=True)
    augment = V.boolean("augment", augment)
    seed = V.integer("seed", seed, allow_none=True)
    import keras
    from keras import layers

    from .preprocess import augmentation

    inputs = keras.Input(tuple(int(v) for v in input_shape), name="image")
    x = inputs
    if augment:
        x = augmentation(seed=seed)(x)
    x = layers.Rescaling(1.0 / 255, name="rescale")(x)
    for i, filters in enumerate((32, 64, 128, 128), start=1):
        x = layers.Conv2D(filters, 3, activation="relu", name=f"conv{i}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    x = layers.Dense(512, activation="relu", name="dense")(x)
    if num_classes == 2:
        outputs = layers.Dense(1, activation="sigmoid", dtype="float32", name="predictions")(x)
    else:
        outputs = layers.Dense(num_classes, activation="softmax", dtype="float32", name="predictions")(x)
    return keras.Model(inputs, outputs, name="small_convnet")


def fast_cifar10_convnet(
    *,
    whitening_images: Any = None,
    widths: tuple[int, int, int] = (64, 256, 256),
    whitening: bool = True,
    batchnorm_momentum: float = 0.6,
    logit_scale: float = 1 / 9,
    seed: int | None = None,
) -> keras.Model:
    """The airbench94 network of the fast CIFAR-10 recipe (Jordan, arXiv 2404.00498).

    Architecture: normalisation by CIFAR-10's channel means and deviations →
    ``PatchWhitening`` (a frozen 2×2 convolution with 24 filters: the eigenvectors of
    the training patches' covariance and their negatives, plus a trainable bias) →
    GELU → three blocks of [Conv2D(3×3, no bias) → MaxPool 2 → BatchNorm → GELU →
    Conv2D(3×3) → BatchNorm → GELU] of ``widths`` channels → MaxPool 3 → Flatten →
    Dense(10, no bias) → ×``logit_scale``. BatchNorms without scale (γ = 1), the reference's
    momentum, ε = 1e-12, fused when training on a CPU; GELUs compiled (both Keras layers at
    inference); convolutions that start as identities on their first channels. 1,973,944
    parameters at the default widths (2,592 of them the frozen whitening kernel).

    Parameters
    ----------
    whitening_images : numpy.ndarray, optional
        Training images ``(N, 32, 32, 3)`` in ``[0, 255]`` (the recipe uses 5,000): the
        whitening filters are computed from their 2×2 patches. ``None`` leaves them
        random; set them later with ``model.get_layer("whiten").adapt(normalised)``.
    widths : (int, int, int), default (64, 256, 256)
        Channels of the three blocks.
    whitening : bool, default True
        ``False``: a plain trainable 2×2 convolution of the same width instead (the
        ablation).
    batchnorm_momentum : float, default 0.6
        Keras' BatchNorm momentum (moving statistics = 0.6·old + 0.4·batch, PyTorch's
        momentum 0.4).
    logit_scale : float, default 1/9
        Factor of the logits.
    seed : int, optional
        Seed of the weight initialisation.

    Returns
    -------
    keras.Model
        Uncompiled. Input ``(batch, 32, 32, 3)`` RGB in ``[0, 255]``; output
        ``(batch, 10)`` float32 **logits** in the order of
        [`visionkit.data.CIFAR10_CLASSES`][visionkit.data.CIFAR10_CLASSES].

    Examples
    --------
    >>> from visionkit import convnets, data
    >>> (x, _), _ = data.load_cifar10(sample=True)
    >>> model = convnets.fast_cifar10_convnet(whitening_images=x[:500])
    >>> model.count_params(), model.output_shape
    (1973944, (None, 10))
    """
    if (not isinstance(widths, (tuple, list)) or len(widths) != 3
            or not all(isinstance(w, (int, np.integer)) and not isinstance(w, bool) and w >= 1 for w in widths)):
        raise V.fail("widths", "three positive integers", widths)
    whitening = V.boolean("whitening", whitening)
    batchnorm_momentum = V.number("batchnorm_momentum", batchnorm_momentum, minimum=0.0, maximum=1.0,
                                  exclusive_maximum=True)
    logit_scale = V.number("logit_scale", logit_scale, minimum=0.0, exclusive_minimum=True)
    seed = V.integer("seed", seed, minimum=0, allow_none=True)
    if whitening_images is not None:
        shape = np.shape(whitening_images)
        if len(shape) != 4 or tuple(shape[1:]) != (32, 32, 3) or shape[0] < 1:
            raise V.fail("whitening_images", "images of shape (N, 32, 32, 3)", f"an array of shape {shape}")
    from ._fast_cifar import build_model

    return build_model(whitening_images=whitening_images, widths=tuple(int(w) for w in widths), whitening=whitening,
                       batchnorm_momentum=float(batchnorm_momentum), logit_scale=float(logit_scale), seed=seed)


def predict_tta(model: keras.Model, images: Any, *, level: int = 2, batch_size: int = 500) -> np.ndarray:
    """Predict with airbench94's test-time augmentation: the mean output over flipped and shifted views.

    Parameters
    ----------
    model : keras.Model
        Takes images ``(batch, H, W, C)`` as ``images`` come (e.g. raw pixels).
    images : numpy.ndarray
        ``(N, H, W, C)``, any numeric dtype (cast to float32).
    level : {0, 1, 2}, default 2
        0: the images alone. 1: the mean over each image and its mirror.
        2: a weighted mean over six views: the image and its mirror (¼ each), and the
        mirrored pairs of the image shifted one pixel up-left and down-right with
        reflection padding (⅛ each).
    batch_size : int, default 500
        Images per call of the model (it sees up to 6× as many at once).

    Returns
    -------
    numpy.ndarray
        float32 ``(N, outputs)``: the weighted mean of the model's outputs (logits for
        [`fast_cifar10_convnet`][visionkit.convnets.fast_cifar10_convnet]).

    Examples
    --------
    >>> from visionkit import convnets, data
    >>> (x, _), (x_test, _) = data.load_cifar10(sample=True)
    >>> model = convnets.fast_cifar10_convnet(whitening_images=x[:500])
    >>> convnets.predict_tta(model, x_test[:8]).shape
    (8, 10)
    """
    import keras

    if not isinstance(model, keras.Model):
        raise V.fail("model", "a keras.Model", type(model).__name__)
    V.one_of("level", level, (0, 1, 2))
    batch_size = V.integer("batch_size", batch_size, minimum=1)
    shape = np.shape(images)
    if len(shape) != 4 or min(shape[1:3]) < 2:
        raise V.fail("images", "an array of shape (N, H, W, C) with H, W >= 2", f"an array of shape {shape}")
    from ._images import check_fits

    check_fits(model, images, argument="images")  # not Keras' error for an empty batch or another size
    from ._fast_cifar import predict_tta as tta

    return tta(model, images, level=level, batch_size=batch_size)


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
    rotation, translation = _augment_ranges(rotation, translation)
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
    ema: bool = True,
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
    Nesterov SGD (momentum 0.85) at 11.5 per 1024 examples with coupled weight
    decay 0.0153 per 1024 examples and a 64× rate on the BatchNorm biases, along a
    triangular schedule (from 0.2× up to the peak at 23 % of the steps, down to
    0.07×); label smoothing 0.2; a lookahead EMA of the weights from epoch 3 on;
    translations up to 2 pixels with reflection padding and alternating flips, done on
    whole batches in a compiled ``tf.data`` pipeline; test-time augmentation.
    See the "Fast CIFAR-10" docs page.

    Parameters
    ----------
    variant : {"94", "95"}, default "94"
        The budget. ``"94"``: airbench94 as above (widths 64/256/256, 10 epochs).
        ``"95"``: airbench95's longer budget, widths 128/384/384, rate 10.0 per 1024
        examples and 15 epochs by default (95.0 % on a GPU in the paper; about 2.2× the
        time of ``"94"`` per epoch as measured on a CPU, 3.3× in all), everything else alike.
    tta : bool, default True
        Report the accuracy with test-time augmentation
        ([`predict_tta`][visionkit.convnets.predict_tta], level 2) as ``metrics["accuracy"]``.
    whitening, ema, alternating_flip : bool, default True
        The recipe's parts, for ablations: ``whitening=False`` trains a plain 2×2
        convolution instead of the frozen whitening one; ``ema=False`` drops the
        lookahead EMA; ``alternating_flip=False`` flips each image at random every
        epoch instead.
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
        ``optimizer="sgd"``, ``precision="auto"``. With ``optimizer="sgd"`` the run
        uses the paper's optimizer above: ``learning_rate`` is then in its units (per
        1024 examples; ``None``: 11.5, 10.0 for ``"95"``) and rescaled for the global batch, and the
        schedule is the paper's triangle unless ``lr_schedule`` is given. Any other
        optimizer is used as in [`visionkit.training.train`][visionkit.training.train]. ``seed`` also seeds
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
                       else variant, ("94", "95"))
    parts = {name: V.boolean(name, value) for name, value in
             (("tta", tta), ("whitening", whitening), ("ema", ema), ("alternating_flip", alternating_flip))}
    label_smoothing = float(V.number("label_smoothing", label_smoothing, minimum=0.0, maximum=1.0, exclusive_maximum=True))
    translation = V.integer("translation", translation, minimum=0, maximum=8)
    validation_split = _split("validation_split", validation_split)
    limit = V.integer("limit", limit, minimum=1, allow_none=True)
    sample = V.boolean("sample", sample)
    opts = TrainOptions.from_kwargs(options, **{**RECIPE_DEFAULTS["train_cifar10_fast"], **({"epochs": 15} if variant == "95" else {})})
    if opts.augment != "none":
        raise V.fail("augment", "unset: the fast recipe has its own augmentation", opts.augment)
    if opts.lr_schedule == "one_cycle":
        raise V.fail("lr_schedule", "'constant', 'cosine' or unset (the recipe's triangle) in the fast recipe",
                     opts.lr_schedule)
    from ._fast_cifar_recipe import Parts, run
    from .data import load_cifar10

    (x_train, y_train), test = load_cifar10(path, sample=sample)
    x_train, y_train = subset(x_train, y_train, limit, opts.seed)
    train_part, val_part = holdout(x_train, y_train, validation_split)
    return run(train_part, val_part, test, options=opts, paper_schedule="lr_schedule" not in options,
               parts=Parts(label_smoothing=label_smoothing, translation=translation, variant=variant, **parts),
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


def _augment_ranges(rotation: Any, translation: Any) -> tuple[float, float]:
    """Check ``rotation`` (degrees, 0-180) and ``translation`` (fraction, 0-1)."""
    return (float(V.number("rotation", rotation, minimum=0.0, maximum=180.0)),
            float(V.number("translation", translation, minimum=0.0, maximum=1.0)))
