"""Calibrated probabilities: expected calibration error, reliability diagrams, temperature scaling.

A classifier is *calibrated* when, among the images it gives 80 % confidence, 80 %
are right. Modern networks are usually over-confident; temperature scaling (Guo et
al., *On Calibration of Modern Neural Networks*, ICML 2017) fixes most of it with one
number: the logits are divided by a temperature ``T`` fitted on validation data by
minimising the negative log-likelihood. The top-1 class, hence the accuracy, does not
change.

| function | what |
| --- | --- |
| [`expected_calibration_error`][visionkit.calibration.expected_calibration_error] | ECE of probabilities against labels (equal-width confidence bins) |
| [`reliability_diagram`][visionkit.calibration.reliability_diagram] | accuracy and confidence per bin, as numbers and a figure |
| [`fit_temperature`][visionkit.calibration.fit_temperature] | the NLL-minimising temperature of logits |
| [`calibrate`][visionkit.calibration.calibrate] | fit on validation data, report ECE before and after on held-out data, return the calibrated model |
| [`with_temperature`][visionkit.calibration.with_temperature] / [`temperature_of`][visionkit.calibration.temperature_of] | put a temperature on a model (a [`Temperature`][visionkit.calibration.Temperature] layer) / read it back |

Every head is handled, through the head inspection that Grad-CAM and ``interpret``
use: logits (also a ``Rescaling`` of them), softmax, or one sigmoid unit (two
classes). The [`Temperature`][visionkit.calibration.Temperature] layer is registered
with Keras, so a calibrated model keeps its temperature through ``model.save`` and
[`training.load_model`][visionkit.training.load_model], and
[`visionkit.export`][visionkit.export.export] carries it into every exported format.
Its output is what the head's output was (logits stay logits, probabilities stay
probabilities), only calibrated.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from . import _ship_core as core
from . import _validate as V
from ._temperature import HEADS, Temperature, positive_temperature
from .training import ClassNames, class_names, with_class_names

__all__ = [
    "Calibration",
    "ReliabilityDiagram",
    "Temperature",
    "calibrate",
    "expected_calibration_error",
    "fit_temperature",
    "reliability_diagram",
    "temperature_of",
    "with_temperature",
]



# ----------------------------------------------------------------------------- the layer


def _find_temperature(model: Any) -> Temperature | None:
    for layer in reversed(getattr(model, "layers", []) or []):
        if isinstance(layer, Temperature):
            return layer
        if isinstance(layer, keras.Model):
            inner = _find_temperature(layer)
            if inner is not None:
                return inner
    return None


def temperature_of(model: Any) -> float | None:
    """The temperature a model carries, or None.

    Parameters
    ----------
    model : keras.Model
        Nested models are searched too.

    Returns
    -------
    float or None

    Examples
    --------
    >>> m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> temperature_of(m) is None, temperature_of(with_temperature(m, 1.5))
    (True, 1.5)
    """
    layer = _find_temperature(model)
    return None if layer is None else float(layer.temperature)


def with_temperature(model: Any, temperature: float, *, head: str | None = None) -> keras.Model:
    """A new model, sharing ``model``'s weights, whose output is divided by ``temperature``.

    Parameters
    ----------
    model : keras.Model
        A built classifier with a known input. Not modified. A
        [`Temperature`][visionkit.calibration.Temperature] layer already at its end is
        replaced (not stacked); class names stay last.
    temperature : float
        ``T > 0``.
    head : {"logits", "softmax", "sigmoid"}, optional
        What the model returns; default: found by head inspection (a head it cannot
        name is an error: pass it here).

    Returns
    -------
    keras.Model
        Same input, same output shape and kind, the same top class per image.

    Raises
    ------
    InvalidArgumentError
        A model without a known input, a temperature that is not a finite number
        > 0, a head that cannot be named.

    Examples
    --------
    >>> m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> x = np.ones((1, 4), "float32")
    >>> bool(np.allclose(with_temperature(m, 2.0)(x), m(x) / 2.0))
    True
    """
    if not isinstance(model, keras.Model) or not getattr(model, "inputs", None) or len(model.outputs) != 1:
        raise V.fail("model", "a built keras.Model with one known input and one output (start it with keras.Input)",
                     model)
    temperature = positive_temperature(temperature)
    head = core.output_kind(model) if head is None else V.one_of("head", head, HEADS)
    names = class_names(model)
    out = model.outputs[0]
    last = model.layers[-1] if model.layers else None
    if isinstance(last, ClassNames):
        out = last.input
    producer = getattr(out, "_keras_history", None)
    if producer and isinstance(producer[0], Temperature):
        out = producer[0].input
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    calibrated = keras.Model(inputs, Temperature(temperature, head)(out), name=model.name)
    return with_class_names(calibrated, names) if names is not None else calibrated


# ----------------------------------------------------------------------------- the numbers


def _probs_labels(probabilities: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim == 1 or (p.ndim == 2 and p.shape[1] == 1):
        p = p.reshape(-1)
        p = np.stack([1.0 - p, p], axis=1)
    if p.ndim != 2 or len(p) == 0 or not np.isfinite(p).all() or p.min() < 0 or p.max() > 1:
        raise V.fail("probabilities", "an (N, K) array of probabilities in [0, 1] (or (N,) of one class), N >= 1",
                     f"shape {p.shape}" if p.ndim != 2 or len(p) == 0 else f"values in [{p.min()}, {p.max()}]")
    y = core.label_ints(labels, p.shape[1])
    if len(y) != len(p):
        raise V.fail("labels", f"{len(p)} labels (one per row of probabilities)", f"{len(y)} labels")
    return p, y


@dataclass(frozen=True, eq=False)
class ReliabilityDiagram:
    """Accuracy against confidence in equal-width bins, as [`reliability_diagram`][visionkit.calibration.reliability_diagram] returns it.

    Attributes
    ----------
    edges : numpy.ndarray
        float64 ``(bins + 1,)``: bin edges from 0 to 1; bin ``b`` holds confidences
        in ``(edges[b], edges[b + 1]]`` (the first bin also 0).
    confidence, accuracy : numpy.ndarray
        float64 ``(bins,)``: mean top-1 probability and fraction correct per bin
        (NaN for an empty bin).
    counts : numpy.ndarray
        int64 ``(bins,)``: examples per bin.
    ece : float
        Expected calibration error: ``sum(counts / N * |accuracy - confidence|)``.
    """

    edges: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    counts: np.ndarray
    ece: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-able numbers (empty bins as None)."""
        def clean(a: np.ndarray) -> list[Any]:
            return [None if not np.isfinite(v) else float(v) for v in a]

        return {"ece": self.ece, "edges": self.edges.tolist(), "confidence": clean(self.confidence),
                "accuracy": clean(self.accuracy), "counts": self.counts.tolist()}

    def plot(self, *, title: str = "Reliability diagram", ax: Any = None) -> Any:
        """Bars of accuracy per confidence bin over the diagonal of perfect calibration.

        Returns
        -------
        matplotlib.figure.Figure
            The figure drawn on (``ax``'s figure when given).
        """
        from matplotlib.figure import Figure

        if ax is None:
            fig = Figure(figsize=(4.2, 4.0), layout="constrained")
            ax = fig.add_subplot()
        else:
            fig = ax.figure
        width = np.diff(self.edges)
        acc = np.nan_to_num(self.accuracy)
        conf = np.where(self.counts > 0, np.nan_to_num(self.confidence), self.edges[:-1] + width / 2)
        ax.bar(self.edges[:-1], acc, width=width, align="edge", color="#4c72b0", edgecolor="white", label="accuracy")
        ax.bar(self.edges[:-1], conf - acc, bottom=acc, width=width, align="edge", color="#dd8452", alpha=0.45,
               edgecolor="white", label="gap")
        ax.plot([0, 1], [0, 1], "k--", lw=1, label="calibrated")
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence (top-1 probability)", ylabel="accuracy",
               title=f"{title}\nECE {self.ece:.4f}")
        ax.legend(loc="upper left", fontsize=8)
        return fig


def reliability_diagram(probabilities: Any, labels: Any, *, bins: int = 15) -> ReliabilityDiagram:
    """Accuracy and confidence in equal-width confidence bins.

    Parameters
    ----------
    probabilities : array-like
        ``(N, K)`` class probabilities (rows need not sum to 1 exactly), or ``(N,)`` /
        ``(N, 1)`` probabilities of class 1 of a two-class model.
    labels : array-like
        Integer classes ``(N,)``, one-hot ``(N, K)`` or ``(N, 1)`` 0/1 labels.
    bins : int, default 15
        Number of equal-width bins over ``[0, 1]``.

    Returns
    -------
    ReliabilityDiagram

    Examples
    --------
    >>> d = reliability_diagram([[0.9, 0.1], [0.3, 0.7]], [0, 0], bins=5)
    >>> d.counts.tolist(), round(d.ece, 3)
    ([0, 0, 0, 1, 1], 0.4)
    """
    p, y = _probs_labels(probabilities, labels)
    bins = V.integer("bins", bins, minimum=1)
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    index = np.clip(np.ceil(conf * bins).astype(np.int64) - 1, 0, bins - 1)
    counts = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(index, conf, minlength=bins) / counts
        mean_acc = np.bincount(index, correct, minlength=bins) / counts
    gaps = np.where(counts > 0, np.abs(np.nan_to_num(mean_acc) - np.nan_to_num(mean_conf)), 0.0)
    ece = float(np.sum(counts / len(p) * gaps))
    return ReliabilityDiagram(np.linspace(0.0, 1.0, bins + 1), mean_conf, mean_acc, counts.astype(np.int64), ece)


def expected_calibration_error(probabilities: Any, labels: Any, *, bins: int = 15) -> float:
    """Expected calibration error (ECE) of top-1 probabilities, in ``[0, 1]``.

    The examples are put in ``bins`` equal-width bins by their top-1 probability;
    ECE is the mean over bins, weighted by their share of examples, of
    ``|accuracy - mean confidence|`` (Naeini et al. 2015; Guo et al. 2017).

    Parameters
    ----------
    probabilities, labels, bins
        As for [`reliability_diagram`][visionkit.calibration.reliability_diagram].

    Returns
    -------
    float

    Examples
    --------
    >>> round(expected_calibration_error([[0.9, 0.1], [0.8, 0.2]], [0, 1], bins=10), 3)
    0.45
    """
    return reliability_diagram(probabilities, labels, bins=bins).ece


def _nll(logits: np.ndarray, labels: np.ndarray, beta: float) -> float:
    z = logits * beta
    z = z - z.max(axis=1, keepdims=True)
    return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(z)), labels]))


def fit_temperature(logits: Any, labels: Any, *, bounds: tuple[float, float] = (0.01, 100.0)) -> float:
    """The temperature minimising the negative log-likelihood of ``softmax(logits / T)``.

    The NLL is convex in ``1 / T``, so a golden-section search over ``log(1 / T)``
    finds its minimum to about 1e-9 relative (float64, deterministic).

    Parameters
    ----------
    logits : array-like
        ``(N, K)`` class scores (softmax heads: log-probabilities). ``(N,)`` or
        ``(N, 1)`` is one sigmoid unit's logit.
    labels : array-like
        Integer classes ``(N,)``, one-hot ``(N, K)`` or ``(N, 1)`` 0/1 labels.
    bounds : (float, float), default (0.01, 100)
        The range searched; a result at an end means the data asks for more.

    Returns
    -------
    float

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(0, 3, (4000, 4))
    >>> y = np.array([rng.choice(4, p=np.exp(r / 2) / np.exp(r / 2).sum()) for r in z])
    >>> bool(abs(fit_temperature(z, y) - 2.0) < 0.15)  # the temperature the labels were drawn at
    True
    """
    z = np.asarray(logits, np.float64)
    if z.ndim == 1 or (z.ndim == 2 and z.shape[1] == 1):
        z = z.reshape(-1)
        z = np.stack([np.zeros_like(z), z], axis=1)
    if z.ndim != 2 or len(z) == 0 or not np.isfinite(z).all():
        raise V.fail("logits", "a non-empty (N, K) array of finite class scores", f"shape {z.shape}")
    y = core.label_ints(labels, z.shape[1])
    if len(y) != len(z):
        raise V.fail("labels", f"{len(z)} labels (one per row of logits)", f"{len(y)} labels")
    if not (isinstance(bounds, Sequence) and len(bounds) == 2 and 0 < bounds[0] < bounds[1]):
        raise V.fail("bounds", "(low, high) with 0 < low < high", bounds)
    lo, hi = -math.log(bounds[1]), -math.log(bounds[0])  # over log(beta), beta = 1 / T
    golden = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = lo, hi
    c, d = b - golden * (b - a), a + golden * (b - a)
    fc, fd = _nll(z, y, math.exp(c)), _nll(z, y, math.exp(d))
    for _ in range(80):
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - golden * (b - a)
            fc = _nll(z, y, math.exp(c))
        else:
            a, c, fc = c, d, fd
            d = a + golden * (b - a)
            fd = _nll(z, y, math.exp(d))
    return float(1.0 / math.exp((a + b) / 2.0))


# ----------------------------------------------------------------------------- calibrate a model


def _scores(logits: np.ndarray, labels: np.ndarray, temperature: float, bins: int) -> dict[str, Any]:
    p = core.softmax(logits, temperature)
    diagram = reliability_diagram(p, labels, bins=bins)
    nll = -float(np.mean(np.log(np.maximum(p[np.arange(len(p)), labels], core.TINY))))
    return {"ece": diagram.ece, "nll": nll, "accuracy": float(np.mean(p.argmax(axis=1) == labels)),
            "diagram": diagram}


@dataclass(frozen=True, eq=False)
class Calibration:
    """A temperature fitted to a model, as [`calibrate`][visionkit.calibration.calibrate] returns it.

    Attributes
    ----------
    model : keras.Model
        The calibrated model (the input model with a
        [`Temperature`][visionkit.calibration.Temperature] layer).
    temperature : float
        The fitted temperature (the total, if the model carried one already).
    before, after : dict
        ``ece``, ``nll`` and ``accuracy`` on the evaluation data without and with the
        fitted temperature.
    diagrams : tuple of ReliabilityDiagram
        Before and after.
    evaluated_on : str
        ``"test"`` (held-out data) or ``"validation"`` (the fitting data itself: no
        held-out data was given, so ``after`` is optimistic).
    sizes : dict
        Examples used: ``validation``, ``test``.
    """

    model: Any = field(repr=False)
    temperature: float
    before: dict[str, float]
    after: dict[str, float]
    diagrams: tuple[ReliabilityDiagram, ReliabilityDiagram] = field(repr=False)
    evaluated_on: str
    sizes: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: temperature, before/after numbers and reliability bins, data sizes."""
        return {"temperature": self.temperature, "before": dict(self.before), "after": dict(self.after),
                "evaluated_on": self.evaluated_on, "sizes": dict(self.sizes),
                "reliability": {"before": self.diagrams[0].to_dict(), "after": self.diagrams[1].to_dict()}}

    def to_markdown(self) -> str:
        """A small table: ECE, NLL and accuracy before and after."""
        rows = [f"| {k} | {self.before[k]:.4f} | {self.after[k]:.4f} |" for k in ("ece", "nll", "accuracy")]
        return "\n".join([f"temperature {self.temperature:.4f} (evaluated on {self.evaluated_on}, "
                          f"{self.sizes['test']} examples)", "", "| metric | before | after |",
                          "| --- | ---: | ---: |", *rows])

    def plot(self) -> Any:
        """Reliability diagrams before and after, side by side (a matplotlib ``Figure``)."""
        from matplotlib.figure import Figure

        fig = Figure(figsize=(8.4, 4.0), layout="constrained")
        left, right = fig.subplots(1, 2)
        self.diagrams[0].plot(title="before", ax=left)
        self.diagrams[1].plot(title=f"after (T = {self.temperature:.2f})", ax=right)
        return fig


def calibrate(
    model: Any,
    validation_data: Any,
    *,
    test_data: Any = None,
    bins: int = 15,
    batch_size: int = 128,
) -> Calibration:
    """Fit a temperature on validation data; report ECE before and after on held-out data.

    Parameters
    ----------
    model : keras.Model
        A classifier (logits, softmax or one sigmoid unit). Not modified.
    validation_data : tuple or tf.data.Dataset
        ``(images, labels)`` arrays or a dataset of ``(images, labels)`` batches,
        images as the model takes them; the temperature is fitted on it.
    test_data : tuple or tf.data.Dataset, optional
        Held-out data for the before/after numbers; default: ``validation_data``
        (then ``evaluated_on`` says so: the numbers after are optimistic).
    bins : int, default 15
        Bins of the ECE.
    batch_size : int, default 128
        Images per forward pass (arrays; a dataset keeps its batches).

    Returns
    -------
    Calibration
        The calibrated model, the temperature, the numbers and diagrams.

    Examples
    --------
    >>> m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    >>> result = calibrate(m, (x, np.arange(64) % 3))
    >>> result.temperature > 0, temperature_of(result.model) == result.temperature
    (True, True)
    """
    bins = V.integer("bins", bins, minimum=1)
    batch_size = V.integer("batch_size", batch_size, minimum=1)
    z_val, y_val, kind = core.predict_logits(model, validation_data, batch_size=batch_size,
                                             argument="validation_data")
    fitted = fit_temperature(z_val, y_val)
    if test_data is None:
        z_test, y_test, evaluated_on = z_val, y_val, "validation"
    else:
        z_test, y_test, _ = core.predict_logits(model, test_data, batch_size=batch_size, argument="test_data")
        evaluated_on = "test"
    before, after = _scores(z_test, y_test, 1.0, bins), _scores(z_test, y_test, fitted, bins)
    total = fitted * (temperature_of(model) or 1.0)
    calibrated = with_temperature(model, total, head=kind if kind in HEADS else None)
    diagrams = (before.pop("diagram"), after.pop("diagram"))
    return Calibration(calibrated, float(total), before, after, diagrams, evaluated_on,
                       {"validation": len(y_val), "test": len(y_test)})
