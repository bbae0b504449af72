"""visionkit.visualize.plot_history: one axes per metric, training and validation lines."""

from __future__ import annotations

import math

import pytest
from matplotlib.figure import Figure

from visionkit.errors import InvalidArgumentError
from visionkit.visualize import plot_history

HISTORY = {
    "loss": [0.9, 0.5, 0.3],
    "accuracy": [0.7, 0.8, 0.9],
    "val_loss": [1.0, 0.7, 0.6],
    "val_accuracy": [0.6, 0.75, 0.8],
    "learning_rate": [0.001, 0.001, 0.001],
}


def test_lines_per_metric():
    fig = plot_history(HISTORY)
    assert isinstance(fig, Figure)
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy"]
    for ax, name in zip(fig.axes, ("loss", "accuracy")):
        lines = {line.get_label(): line for line in ax.get_lines()}
        assert set(lines) == {"training", "validation"}
        assert list(lines["training"].get_xdata()) == [1, 2, 3]
        assert list(lines["training"].get_ydata()) == HISTORY[name]
        assert list(lines["validation"].get_ydata()) == HISTORY[f"val_{name}"]
        assert ax.get_xlabel() == "epoch"


def test_metric_selection_and_training_only():
    fig = plot_history(HISTORY, metrics=["accuracy"])
    assert [ax.get_title() for ax in fig.axes] == ["accuracy"]
    fig = plot_history({"loss": [2.0, 1.0]})
    assert [line.get_label() for line in fig.axes[0].get_lines()] == ["training"]


def test_keras_history_object_and_nan():
    import keras

    history = keras.callbacks.History()
    history.history = {"loss": [1.0, float("nan")], "val_loss": [1.2, 1.1]}
    history.epoch = [0, 1]
    fig = plot_history(history)
    ys = list(fig.axes[0].get_lines()[0].get_ydata())
    assert ys[0] == 1.0 and math.isnan(ys[1])


def test_errors():
    with pytest.raises(InvalidArgumentError, match="metrics"):
        plot_history(HISTORY, metrics=["precision"])
    with pytest.raises(InvalidArgumentError, match="metrics"):
        plot_history(HISTORY, metrics="loss")
    with pytest.raises(InvalidArgumentError, match="history"):
        plot_history({})
    with pytest.raises(InvalidArgumentError, match="history"):
        plot_history([1, 2])
