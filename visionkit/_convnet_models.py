"""The model builders behind ``visionkit.convnets`` (its public front re-exports them).

Keras is imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from . import _validate as V

if TYPE_CHECKING:  # pragma: no cover
    import keras

__all__ = [
    "MNIST_VARIANTS", "augment_ranges", "cifar10_convnet", "fast_cifar10_convnet", "mnist_convnet", "predict_tta",
    "small_convnet",
]

#: Variants of [`mnist_convnet`][visionkit.convnets.mnist_convnet].
MNIST_VARIANTS: tuple[str, ...] = ("chollet", "cookbook")

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
    rotation, translation = augment_ranges(rotation, translation)
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


def augment_ranges(rotation: Any, translation: Any) -> tuple[float, float]:
    """Check ``rotation`` (degrees, 0-180) and ``translation`` (fraction, 0-1)."""
    return (float(V.number("rotation", rotation, minimum=0.0, maximum=180.0)),
            float(V.number("translation", translation, minimum=0.0, maximum=1.0)))
