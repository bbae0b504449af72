"""The settings fingerprint of a training run (private; used when ``train`` opens a checkpoint folder).

``fingerprint`` describes what a checkpoint folder must be resumed with: the model (its
parameters, a digest of its architecture, input and output shapes), the optimizer and its
configuration, the loss, the metrics, the label shape and the batch size. ``train``
writes it to ``settings.json`` on the first run and compares it on every later one
([`Checkpoint.apply_settings`][visionkit.training.Checkpoint.apply_settings]).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import keras

__all__ = ["FORMAT", "fingerprint"]

#: The version of the fingerprint's layout.
FORMAT = 1


def fingerprint(
    model: keras.Model,
    optimizer: keras.optimizers.Optimizer,
    *,
    loss: Any,
    metrics: Any,
    label_shape: tuple[Any, ...],
    batch_size: int | None,
    lr_schedule: str | None = None,
) -> dict[str, Any]:
    """The settings a checkpoint folder must be resumed with (JSON-able)."""
    arch = _architecture(model)
    digest = hashlib.sha256(json.dumps(arch, sort_keys=True, default=str).encode()).hexdigest()[:16]
    opt_config = {k: v for k, v in _strip_names(optimizer.get_config()).items() if k != "name"}
    lr = opt_config.get("learning_rate")
    if isinstance(lr, dict):  # a schedule: show its class and starting rate
        lr = f"{lr.get('class_name')}({lr.get('config', {}).get('initial_learning_rate')})"
        if lr_schedule is not None:  # visionkit's own schedule: described by the "lr_schedule" entry
            opt_config.pop("learning_rate")
    output = tuple(model.outputs[0].shape[1:]) if model.outputs else ()
    return {
        "format": FORMAT,
        "model": f"{model.count_params():,} parameters in {len(arch)} layers, architecture {digest}",
        "input_shape": _fmt(tuple(model.inputs[0].shape[1:])),
        "output_shape": _fmt(output),
        "num_classes": int(output[-1]) if output and output[-1] is not None and output[-1] > 1 else 2,
        "label_shape": _fmt(tuple(label_shape)),
        "optimizer": f"{type(optimizer).__name__}(learning_rate={lr})",
        "optimizer_config": json.dumps(opt_config, sort_keys=True, default=str),
        "loss": str(loss),
        "metrics": [m if isinstance(m, str) else type(m).__name__ for m in (metrics or ())],
        "batch_size": batch_size,
    } | ({} if lr_schedule is None else {"lr_schedule": lr_schedule})


def _architecture(model: Any) -> list[dict[str, Any]]:
    """Layer classes and configs (without the auto-generated names), nested models flattened."""
    out: list[dict[str, Any]] = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            out.append({"class": type(layer).__name__, "layers": _architecture(layer)})
            continue
        try:
            config = layer.get_config()
        except (NotImplementedError, TypeError):
            config = {}
        out.append({"class": type(layer).__name__, "config": _strip_names(config),
                    "weights": [list(w.shape) for w in layer.weights], "trainable": bool(layer.trainable)})
    return out


def _strip_names(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _strip_names(v) for k, v in obj.items() if k not in ("name", "build_config")}
    if isinstance(obj, (list, tuple)):
        return [_strip_names(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return repr(obj)


def _fmt(shape: tuple[Any, ...]) -> str:
    return ", ".join("None" if s is None else str(s) for s in shape)
