"""Options and outputs shared by the training sub-commands (private)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from ._common import add_output, add_progress, positive_int

STRATEGY_NAMES = ("auto", "default", "one_device", "mirrored", "multi_worker", "tpu")


def add_training_options(p: argparse.ArgumentParser, *, epochs: int, batch_size: int, output: str,
                         lr_schedule: str = "constant") -> None:
    """Add the options every training sub-command shares."""
    p.add_argument("--epochs", type=positive_int, default=epochs, help=f"total epochs (default: {epochs})")
    p.add_argument("--batch-size", type=positive_int, default=batch_size,
                   help=f"batch size per replica; the global batch is this times the number of replicas (default: {batch_size})")
    p.add_argument("--lr-schedule", choices=("constant", "cosine"), default=lr_schedule,
                   help="learning rate constant, or decaying to 0 along a half cosine over --epochs "
                   f"(default: {lr_schedule})")
    add_output(p, output)
    p.add_argument("--checkpoint-dir", default=None,
                   help="folder for resumable checkpoints: rerun the same command to resume after a crash")
    p.add_argument("--log-dir", default=None, help="folder for TensorBoard logs and metrics.csv")
    p.add_argument("--strategy", choices=STRATEGY_NAMES, default=None,
                   help="tf.distribute strategy (default: none, a single device)")
    p.add_argument("--seed", type=int, default=None, help="seed of the data shuffling")
    add_progress(p)


def write_outputs(output: str | Path, model: Any, history: Any, metrics: dict[str, float],
                  settings: dict[str, Any], *, started: float) -> dict[str, Path]:
    """Write ``model.keras``, ``curves.png`` and ``metrics.json`` into ``output``; print them."""
    from .._io import save_figure, write_json
    from ..training import _atomic_keras_save
    from ..visualize import plot_history

    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"model": out / "model.keras", "curves": out / "curves.png", "metrics": out / "metrics.json"}
    _atomic_keras_save(paths["model"], model.save, ".keras")
    save_figure(plot_history(history), paths["curves"])
    write_json(paths["metrics"], {
        "test": metrics,
        "history": {k: [float(v) for v in vals] for k, vals in history.history.items()},
        "epochs": len(history.epoch),
        "settings": settings,
        "seconds": round(time.perf_counter() - started, 2),
    })
    shown = ", ".join(f"{k} {v:.4f}" for k, v in sorted(metrics.items()))
    print(f"test: {shown}")
    for name, path in paths.items():
        print(f"{name:<8} {path}")
    return paths
