"""How a classifier holds up on worse images: common corruptions at five severities.

[`corrupt`][visionkit.robustness.corrupt] applies one of eleven common corruptions to a batch of
images, in TensorFlow, at severities 1 (mild) to 5 (strong);
[`robustness_report`][visionkit.robustness.robustness_report] runs a model over a
dataset once per corruption and severity, generating the corrupted images on the fly,
and reports the accuracy per corruption and severity, the mean corruption accuracy
and its relative drop from the clean accuracy, as a table and a figure.

| corruption | family | parameter at severity 1 … 5 |
| --- | --- | --- |
| ``gaussian_noise`` | noise | std 0.04 … 0.10 (of the range) |
| ``shot_noise`` | noise | Poisson, 500 … 50 photons |
| ``gaussian_blur`` | blur | sigma 0.4 … 1.0 px at 32 px |
| ``defocus_blur`` | blur | disk radius 0.6 … 2.0 px at 32 px |
| ``motion_blur`` | blur | line 3 … 11 px at 32 px, one random angle per batch |
| ``zoom_blur`` | blur | mean of zooms up to 1.06 … 1.26 |
| ``jpeg_compression`` | digital | quality 80 … 40 |
| ``pixelate`` | digital | down-scaled to 0.95 … 0.65 of the side |
| ``contrast`` | digital | contrast × 0.75 … 0.15 |
| ``brightness`` | weather | HSV value + 0.05 … 0.3 |
| ``fog`` | weather | smooth random haze, strength 0.2 … 1.5 |

The corruptions and their severities follow CIFAR-10-C / ImageNet-C (Hendrycks and
Dietterich, *Benchmarking Neural Network Robustness to Common Corruptions and
Perturbations*, ICLR 2019) with the CIFAR-10-C parameters; blur sizes are scaled by
``max(1, min(H, W) / 32)``. They are re-implemented in TensorFlow (no ImageMagick motion
blur, no plasma-fractal fog, no frost images), so the images are **not identical** to
the published sets and the numbers are not comparable with published CIFAR-10-C or
ImageNet-C results; they compare models and settings with each other. The mean
corruption accuracy here is a plain mean (ImageNet-C's mCE is instead normalised by
AlexNet's errors).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import _corruptions as C
from . import _ship_core as core
from . import _validate as V

__all__ = ["CORRUPTIONS", "SEVERITIES", "RobustnessReport", "corrupt", "plot_corruptions", "robustness_report"]

#: The corruptions, in the order of the table above.
CORRUPTIONS: tuple[str, ...] = C.CORRUPTIONS
#: The severities, 1 (mild) to 5 (strong).
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)


def _check_images(images: Any) -> tuple[np.ndarray, bool]:
    x = np.asarray(images)
    single = x.ndim == 3
    if single:
        x = x[None]
    numeric = np.issubdtype(x.dtype, np.number) and not np.issubdtype(x.dtype, np.complexfloating)
    if x.ndim != 4 or x.shape[-1] not in (1, 3) or not numeric or min(x.shape[1:3], default=0) < 1:
        raise V.fail("images", "an (N, H, W, C) or (H, W, C) numeric array with C = 1 or 3, values in [0, 255]",
                     f"an array of shape {x.shape} and dtype {x.dtype}")
    if x.size and (not np.isfinite(x).all() or x.min() < 0 or x.max() > 255):
        raise V.fail("images", "pixel values in [0, 255] (visionkit's image range)",
                     f"values in [{x.min()}, {x.max()}]")
    return x, single


def corrupt(images: Any, kind: str, *, severity: int = 3, seed: int = 0) -> np.ndarray:
    """Apply one common corruption to images.

    Parameters
    ----------
    images : array-like
        ``(N, H, W, C)`` or one ``(H, W, C)`` image, ``C`` = 1 or 3, values in
        ``[0, 255]`` (``uint8`` or float). Not modified.
    kind : str
        One of [`CORRUPTIONS`][visionkit.robustness.CORRUPTIONS].
    severity : int, default 3
        1 (mild) to 5 (strong).
    seed : int, default 0
        Seeds the random corruptions (noise, motion angle, fog): the same seed gives
        the same images.

    Returns
    -------
    numpy.ndarray
        Same shape and dtype as ``images``, values in ``[0, 255]`` (``uint8``
        rounded).

    Raises
    ------
    InvalidArgumentError
        An unknown ``kind``, a severity outside 1-5, images of another shape or range.

    Examples
    --------
    >>> x = np.full((2, 16, 16, 3), 128, np.uint8)
    >>> y = corrupt(x, "gaussian_noise", severity=5)
    >>> y.shape, y.dtype, bool((y != x).any())
    ((2, 16, 16, 3), dtype('uint8'), True)
    """
    V.one_of("kind", kind, CORRUPTIONS)
    severity = V.integer("severity", severity, minimum=1, maximum=5)
    seed = V.integer("seed", seed, minimum=0)
    x, single = _check_images(images)
    dtype = x.dtype
    import tensorflow as tf

    out = C.apply(tf.constant(x.astype(np.float32) / 255.0), kind, severity, seed).numpy() * 255.0
    out = np.clip(np.rint(out), 0, 255).astype(dtype) if np.issubdtype(dtype, np.integer) else out.astype(dtype)
    return out[0] if single else out


def plot_corruptions(image: Any, *, severities: Sequence[int] = (1, 3, 5), seed: int = 0) -> Any:
    """A grid of one image under every corruption (rows) at some severities (columns).

    Parameters
    ----------
    image : array-like
        One ``(H, W, C)`` image in ``[0, 255]``.
    severities : sequence of int, default (1, 3, 5)
    seed : int, default 0

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    x, _ = _check_images(image)
    sev = [V.integer("severities", s, minimum=1, maximum=5) for s in severities]
    fig = Figure(figsize=(1.5 * (len(sev) + 1), 1.4 * len(CORRUPTIONS)), layout="constrained")
    axes = fig.subplots(len(CORRUPTIONS), len(sev) + 1, squeeze=False)
    for r, kind in enumerate(CORRUPTIONS):
        shown = [x[0]] + [corrupt(x[:1], kind, severity=s, seed=seed)[0] for s in sev]
        for c, im in enumerate(shown):
            ax = axes[r, c]
            ax.imshow(np.asarray(im, np.float32).squeeze() / 255.0, cmap="gray" if im.shape[-1] == 1 else None,
                      vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title("clean" if c == 0 else f"severity {sev[c - 1]}", fontsize=8)
        axes[r, 0].set_ylabel(kind.replace("_", " "), fontsize=8)
    return fig


@dataclass(frozen=True, eq=False)
class RobustnessReport:
    """Accuracy under corruptions, as [`robustness_report`][visionkit.robustness.robustness_report] returns it.

    Attributes
    ----------
    clean_accuracy : float
        Accuracy on the images as given.
    accuracy : dict
        ``{corruption: [accuracy at each severity]}`` (floats in ``[0, 1]``).
    severities : tuple of int
    examples : int
        Images evaluated (each under every corruption and severity).
    seed : int
    """

    clean_accuracy: float
    accuracy: dict[str, list[float]]
    severities: tuple[int, ...]
    examples: int
    seed: int = field(default=0)

    @property
    def mean_corruption_accuracy(self) -> float:
        """The mean accuracy over every corruption and severity."""
        return float(np.mean([a for row in self.accuracy.values() for a in row]))

    @property
    def relative_drop(self) -> float:
        """``(clean - mean corruption accuracy) / clean``: the share of the accuracy lost (0 when clean is 0)."""
        return 0.0 if self.clean_accuracy == 0 else (self.clean_accuracy - self.mean_corruption_accuracy) / self.clean_accuracy

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: clean accuracy, accuracy per corruption and severity, the summaries."""
        return {"clean_accuracy": self.clean_accuracy, "accuracy": {k: list(v) for k, v in self.accuracy.items()},
                "severities": list(self.severities), "examples": self.examples, "seed": self.seed,
                "mean_corruption_accuracy": self.mean_corruption_accuracy, "relative_drop": self.relative_drop}

    def to_markdown(self) -> str:
        """A table: one row per corruption, one column per severity and the row mean."""
        head = "| corruption | " + " | ".join(f"s{s}" for s in self.severities) + " | mean |"
        rule = "| --- |" + " ---: |" * (len(self.severities) + 1)
        rows = [f"| {k} | " + " | ".join(f"{a:.3f}" for a in v) + f" | {np.mean(v):.3f} |"
                for k, v in self.accuracy.items()]
        summary = (f"clean accuracy {self.clean_accuracy:.4f}; mean corruption accuracy "
                   f"{self.mean_corruption_accuracy:.4f}; relative drop {self.relative_drop:.1%} "
                   f"({self.examples} images)")
        return "\n".join([head, rule, *rows, "", summary])

    def __str__(self) -> str:
        return self.to_markdown()

    def plot(self) -> Any:
        """Accuracy against severity, one line per corruption, the clean accuracy dashed."""
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6.4, 4.2), layout="constrained")
        ax = fig.add_subplot()
        styles = ["-", "--", ":", "-."]
        for i, (kind, acc) in enumerate(self.accuracy.items()):
            ax.plot(self.severities, acc, styles[i % 4], marker="o", ms=3, label=kind.replace("_", " "))
        ax.axhline(self.clean_accuracy, color="k", lw=1.2, ls=(0, (6, 3)), label="clean")
        ax.set(xlabel="severity", ylabel="accuracy", xticks=list(self.severities), ylim=(0, 1.02),
               title=f"mean corruption accuracy {self.mean_corruption_accuracy:.3f} "
                     f"(clean {self.clean_accuracy:.3f}, drop {self.relative_drop:.1%})")
        ax.legend(fontsize=7, ncol=2, loc="lower left")
        return fig


def robustness_report(
    model: Any,
    data: Any,
    *,
    corruptions: Sequence[str] = CORRUPTIONS,
    severities: Sequence[int] = SEVERITIES,
    batch_size: int = 256,
    seed: int = 0,
    progress: bool = True,
) -> RobustnessReport:
    """Accuracy of a classifier on corrupted copies of a dataset.

    Parameters
    ----------
    model : keras.Model
        A classifier taking images in ``[0, 255]`` (visionkit's models preprocess
        inside). Not modified.
    data : tuple or tf.data.Dataset
        ``(images, labels)`` arrays or a dataset of ``(images, labels)`` batches (read
        once), images ``(N, H, W, C)`` in ``[0, 255]`` at the model's input size.
    corruptions : sequence of str, default all of ``CORRUPTIONS``
    severities : sequence of int, default (1, 2, 3, 4, 5)
    batch_size : int, default 256
        Images per step (arrays; a dataset keeps its batches).
    seed : int, default 0
        Seeds the random corruptions: the same seed gives the same report.
    progress : bool, default True
        A progress bar over the batches.

    Returns
    -------
    RobustnessReport

    Examples
    --------
    >>> import keras
    >>> m = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Rescaling(1 / 255),
    ...                       keras.layers.Flatten(), keras.layers.Dense(2)])
    >>> x = np.random.default_rng(0).integers(0, 256, (8, 8, 8, 3)).astype("uint8")
    >>> r = robustness_report(m, (x, np.arange(8) % 2), corruptions=["contrast"], severities=[1, 5],
    ...                       progress=False)
    >>> list(r.accuracy), len(r.accuracy["contrast"])
    (['contrast'], 2)
    """
    if isinstance(corruptions, str) or not corruptions:
        raise V.fail("corruptions", f"a non-empty sequence of names from {list(CORRUPTIONS)}", corruptions)
    kinds = [V.one_of("corruptions", k, CORRUPTIONS) for k in corruptions]
    sevs = tuple(V.integer("severities", s, minimum=1, maximum=5) for s in severities)
    if not sevs:
        raise V.fail("severities", "a non-empty sequence of integers in 1-5", severities)
    batch_size = V.integer("batch_size", batch_size, minimum=1)
    seed = V.integer("seed", seed, minimum=0)
    import tensorflow as tf
    from tqdm.auto import tqdm

    run = core.forward(model)
    dtype = model.inputs[0].dtype if getattr(model, "inputs", None) else "float32"
    correct = {(k, s): 0 for k in kinds for s in sevs}
    clean, seen, kind = 0, 0, None
    total = -(-len(data[0]) // batch_size) if isinstance(data, (tuple, list)) else None
    for step, (xb, yb) in enumerate(tqdm(core.batches(data, batch_size), total=total, disable=not progress,
                                         desc="robustness", unit="batch")):
        x, _ = _check_images(xb)
        out = run(x)
        kind = kind or core.output_kind(model, out)
        y = core.label_ints(yb, out.shape[1])
        clean += int(np.sum(_top1(out, kind) == y))
        x01 = tf.constant(x.astype(np.float32) / 255.0)
        for k in kinds:
            for s in sevs:
                xc = C.apply(x01, k, s, seed + step) * 255.0
                if np.issubdtype(np.dtype(dtype), np.integer):
                    xc = tf.round(xc)
                correct[(k, s)] += int(np.sum(_top1(run(tf.cast(xc, dtype).numpy()), kind) == y))
        seen += len(y)
    if not seen:
        raise V.fail("data", "at least one example", data)
    acc = {k: [correct[(k, s)] / seen for s in sevs] for k in kinds}
    return RobustnessReport(clean / seen, acc, sevs, seen, seed)


def _top1(outputs: np.ndarray, kind: str) -> np.ndarray:
    return core.logits_from_outputs(outputs, kind).argmax(axis=1)
