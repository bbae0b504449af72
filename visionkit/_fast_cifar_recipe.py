"""The fast CIFAR-10 recipe's run: airbench94's parts through ``training.run_recipe`` (private).

The parts (layers, optimizer, callbacks, data pipeline, test-time augmentation) are in
``_fast_cifar``; [`visionkit.convnets.train_cifar10_fast`][visionkit.convnets.train_cifar10_fast]
checks the arguments, loads the data and calls ``run``.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import keras
import numpy as np

from ._fast_cifar import (
    HYPER,
    VARIANTS,
    EpochVariable,
    Lookahead,
    WhiteningBiasFreeze,
    build_model,
    make_optimizer,
    predict_tta,
    train_dataset,
)
from ._fast_cifar_muon import MUON_HYPER, make_muon_optimizer

__all__ = ["Parts", "run"]


@dataclasses.dataclass(frozen=True)
class Parts:
    """Which of the recipe's parts are on (the ablation switches)."""

    whitening: bool = True
    ema: bool = True
    alternating_flip: bool = True
    label_smoothing: float = HYPER["label_smoothing"]
    translation: int = HYPER["translate"]
    tta: bool = True
    variant: str = "94"


def run(train: tuple[np.ndarray, np.ndarray], validation: tuple[np.ndarray, np.ndarray] | None,
        test: tuple[np.ndarray, np.ndarray], *, options: Any, parts: Parts, paper_schedule: bool,
        settings: dict[str, Any], started: float) -> Any:
    """Train the recipe on arrays (already loaded, subset and split); return the ``TrainResult``."""
    from .data import CIFAR10_CLASSES
    from .device import strategy_scope
    from .training import run_recipe

    variant = VARIANTS[parts.variant]
    resolved = options.resolve()  # strategy, precision and global batch, once; run_recipe keeps them
    strat, batch = resolved.strategy, resolved.global_batch
    seed = options.seed if options.seed is not None else int(np.random.default_rng().integers(2**31))
    counter = EpochVariable()
    ds, steps = train_dataset(train[0], train[1], batch_size=batch, seed=seed, epoch=counter.variable,
                              translate=parts.translation, flip="alternating" if parts.alternating_flip else "random")
    total = steps * options.epochs
    own: list[Any] = [counter, WhiteningBiasFreeze()]
    lookahead = Lookahead(steps_per_epoch=steps, total_steps=total) if parts.ema else None
    if lookahead is not None:
        own.append(lookahead)
    changes: dict[str, Any] = {"callbacks": (*own, *options.callbacks)}
    name = options.optimizer.lower() if isinstance(options.optimizer, str) else None
    paper_optimizer = name in ("sgd", "muon")
    lr = options.learning_rate
    if paper_optimizer:
        lr = lr if lr is not None else (variant["lr"] if name == "sgd" else MUON_HYPER["filter_lr"])
        schedule = None if paper_schedule else options.lr_schedule
        global_batch = min(batch, len(train[0]))
        with strategy_scope(strat):
            opt: Any = (make_optimizer(learning_rate=lr, total_steps=total, global_batch=global_batch,
                                       schedule=schedule) if name == "sgd" else
                        make_muon_optimizer(learning_rate=lr, total_steps=total, steps_per_epoch=steps,
                                            global_batch=global_batch, schedule=schedule))
        changes.update(optimizer=opt, learning_rate=None, lr_schedule="constant")
    opts = resolved.options.replace(**changes)

    def build() -> keras.Model:
        images = train[0][:HYPER["whiten_samples"]] if parts.whitening else None
        model = build_model(whitening_images=images, widths=variant["widths"], whitening=parts.whitening,
                            head_std=variant["head_std"], logit_scale=variant["logit_scale"], seed=options.seed)
        if lookahead is not None:
            lookahead.track(model)  # before the checkpoint is restored: it holds the EMA too
        return model

    def onehot(data: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        return data[0], np.eye(10, dtype=np.float32)[np.asarray(data[1]).reshape(-1)]

    loss = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=parts.label_smoothing)
    recorded = {**settings, **dataclasses.asdict(parts), "optimizer": options.to_dict()["optimizer"],
                "learning_rate": lr, "seed": options.seed,
                "lr_schedule": ("triangle" if name == "sgd" else "linear") if paper_optimizer and paper_schedule
                else options.lr_schedule}
    result = run_recipe(build, ds, options=opts, validation_data=onehot(validation) if validation else None,
                        test_data=onehot(test), class_names=CIFAR10_CLASSES, settings=recorded, loss=loss)
    metrics = {**result.metrics, "accuracy_no_tta": result.metrics["accuracy"]}
    if parts.tta:
        logits = predict_tta(result.model, test[0], level=2)
        metrics["accuracy"] = float(np.mean(logits.argmax(axis=1) == np.asarray(test[1]).reshape(-1)))
    return dataclasses.replace(result, metrics=metrics, seconds=time.perf_counter() - started)
