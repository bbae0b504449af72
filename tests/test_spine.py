"""The spine: every training function takes the same options and returns the same result."""

from __future__ import annotations

import inspect

import keras
import numpy as np
import pytest

from visionkit import convnets, training, transfer
from visionkit.errors import InvalidArgumentError, UnexpectedArgumentError


def _tiny() -> keras.Model:
    return keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(1, activation="sigmoid")])


def _calls(tmp_path):
    """Each training function, called with only its own required arguments plus ``**options``."""
    folder = tmp_path / "tree"
    from PIL import Image

    for name in ("a", "b"):
        (folder / name).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(folder / name / f"{i}.png")
    x = np.zeros((8, 8, 8, 3), np.float32)
    y = np.zeros((8,), np.float32)
    return {
        "train": lambda **o: training.train(_tiny(), (x, y), **o),
        "train_mnist": lambda **o: convnets.train_mnist(sample=True, **o),
        "train_cifar10": lambda **o: convnets.train_cifar10(sample=True, **o),
        "train_image_folder": lambda **o: convnets.train_image_folder(sample=True, **o),
        "train_cifar10_fast": lambda **o: convnets.train_cifar10_fast(sample=True, **o),
        "fine_tune": lambda **o: transfer.fine_tune(_tiny(), (x, y), **o),
        "train_transfer": lambda **o: transfer.train_transfer(folder, weights=None, **o),
    }


RECIPES = ["train", "train_mnist", "train_cifar10", "train_image_folder", "train_cifar10_fast", "fine_tune",
           "train_transfer"]


@pytest.mark.parametrize("name", RECIPES)
def test_every_training_function_takes_the_shared_options(name):
    fn = {"train": training.train, "fine_tune": transfer.fine_tune, "train_transfer": transfer.train_transfer,
          **{n: getattr(convnets, n) for n in ("train_mnist", "train_cifar10", "train_image_folder",
                                                 "train_cifar10_fast")}}[name]
    params = inspect.signature(fn).parameters
    # the shared options are forwarded, not re-declared one by one; the exceptions widen one:
    # `augment` also takes the recipe's own in-model switch (True/False) besides a preset, and the
    # fast recipe's own parts (its flip-and-shift tta, its lookahead ema, its 0.2 smoothing)
    widened = {"train_cifar10": {"augment"}, "train_image_folder": {"augment"}, "train_transfer": {"augment"},
               "train_cifar10_fast": {"tta", "ema", "label_smoothing"}}.get(name, set())
    assert any(p.kind is p.VAR_KEYWORD for p in params.values()), name
    assert set(params) & set(training.TRAINING_OPTIONS) == widened, name


@pytest.mark.parametrize("name", RECIPES)
def test_misspelt_option_is_refused_everywhere(tmp_path, name):
    with pytest.raises(UnexpectedArgumentError, match="did you mean `epochs`"):
        _calls(tmp_path)[name](epoch=1)


@pytest.mark.parametrize("name", RECIPES)
@pytest.mark.parametrize(("option", "value"), [("seed", -1), ("batch_size", 0), ("lr_schedule", "step"),
                                               ("precision", "half"), ("progress", "no")])
def test_the_same_checks_everywhere(tmp_path, name, option, value):
    with pytest.raises(InvalidArgumentError, match=f"`{option}`"):
        _calls(tmp_path)[name](**{option: value})


def test_train_options_defaults_and_recipe_defaults():
    assert training.TrainOptions().seed is None and training.TrainOptions().progress is True
    opts = training.TrainOptions.from_kwargs({"seed": 3}, **convnets.RECIPE_DEFAULTS["train_mnist"])
    assert (opts.epochs, opts.batch_size, opts.seed) == (5, 64, 3)
    # a recipe's default rate is for its named optimizer, not an instance the caller brings
    opts = training.TrainOptions.from_kwargs({"optimizer": keras.optimizers.SGD(0.1)},
                                             **convnets.RECIPE_DEFAULTS["train_image_folder"])
    assert opts.learning_rate is None


def test_recipes_return_a_train_result_that_unpacks(tmp_path):
    result = convnets.train_mnist(sample=True, epochs=1, limit=128, progress=False, seed=0)
    assert isinstance(result, training.TrainResult)
    model, history, metrics = result
    assert model is result.model and history is result.history and metrics == result.metrics
    assert result.class_names == tuple(str(i) for i in range(10))
    assert result.settings["recipe"] == "mnist" and result.settings["seed"] == 0
    saved = result.save(tmp_path / "out")
    assert {"model", "curves", "metrics"} <= set(saved.paths)
    reloaded = keras.models.load_model(saved.paths["model"])
    assert training.class_names(reloaded) == [str(i) for i in range(10)]
    x = np.zeros((2, 28, 28, 1), np.float32)
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
