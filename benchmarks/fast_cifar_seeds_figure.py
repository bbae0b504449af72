"""Test accuracy seed by seed, recipe beside recipe: the fast CIFAR-10 docs' seed figure.

    python benchmarks/fast_cifar_seeds_figure.py docs/img/fast-cifar10-seeds.png \
        "before=benchmarks/records/fast-cifar10-smallmapconv" "now=benchmarks/records/fast-cifar10-torchsgd" \
        --reference "airbench94 (PyTorch)=benchmarks/records/airbench94-reference" --target 0.908

Each ``LABEL=DIR`` is a folder of the JSON records ``convnets.py --curves DIR`` writes
(``cifar10-fast-ep10-*-seedN.json``, the 94 budget's 10 epochs, or ``cifar10-fast-94-muon-ep*``,
the Muon budget's, one budget a folder: ``metrics.accuracy`` is the
accuracy with test-time augmentation); each ``--reference LABEL=DIR`` a folder of the JSON files
``_airbench_cpu.py --evaluate`` writes (``tta_val_acc``, ``seed``). One column per label:
a dot per seed (numbered), a bar at the mean, the standard deviation beside it. Only
what the files hold is drawn.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def _pair(text: str) -> tuple[str, Path]:
    label, sep, folder = text.partition("=")
    if not sep or not label or not folder:
        raise argparse.ArgumentTypeError(f"expected LABEL=DIR, got {text!r}")
    return label, Path(folder)


#: The records drawn: the 94 budget's 10 epochs and the Muon budget's runs (8 or 10 epochs).
BUDGETS = ("cifar10-fast-ep10-", "cifar10-fast-94-muon-ep")


def recipe_runs(folder: Path) -> dict[int, float]:
    """``{seed: accuracy with TTA}`` of the 94 network's default-budget records in ``folder``."""
    runs = {}
    for path in sorted(p for p in folder.glob("cifar10-fast-*seed*.json") if p.name.startswith(BUDGETS)):
        record = json.loads(path.read_text())
        seed = int(record["settings"]["seed"])
        if seed in runs:
            raise SystemExit(f"{folder}: two records of seed {seed} (one budget a folder): {path.name}")
        runs[seed] = float(record["metrics"]["accuracy"])
    return runs


def reference_runs(folder: Path) -> dict[int, float]:
    """``{seed: accuracy with TTA}`` of the reference's accuracy runs in ``folder``."""
    runs = {}
    for path in sorted(folder.glob("*.json")):
        record = json.loads(path.read_text())
        if "tta_val_acc" in record:
            runs[int(record["seed"])] = float(record["tta_val_acc"])
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="PNG to write")
    parser.add_argument("recipes", type=_pair, nargs="+", metavar="LABEL=DIR", help="folders of recipe records")
    parser.add_argument("--reference", type=_pair, action="append", default=[], metavar="LABEL=DIR",
                        help="folders of the reference's accuracy runs")
    parser.add_argument("--target", type=float, default=None, help="draw this accuracy as a line")
    args = parser.parse_args()
    columns = [(label, recipe_runs(folder)) for label, folder in args.recipes]
    columns += [(label, reference_runs(folder)) for label, folder in args.reference]
    empty = [label for label, runs in columns if not runs]
    if empty:
        parser.error(f"no runs found for {', '.join(empty)}")
    fig, ax = plt.subplots(figsize=(1.9 * len(columns) + 2.5, 4.2))
    for x, (_, runs) in enumerate(columns):
        values = list(runs.values())
        mean = statistics.fmean(values)
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        ax.plot([x] * len(values), values, "o", alpha=0.8)
        for seed, value in runs.items():
            ax.annotate(str(seed), (x, value), textcoords="offset points", xytext=(6, -3), fontsize=7)
        ax.hlines(mean, x - 0.25, x + 0.25, color="black")
        text = f"{mean:.4f} ± {spread:.4f}\n({len(values)} seeds)" if len(values) > 1 else f"{mean:.4f}\n(1 seed)"
        ax.annotate(text, (x + 0.27, mean), fontsize=8, va="center")
    if args.target is not None:
        ax.axhline(args.target, color="gray", linestyle="--", linewidth=1)
        ax.annotate(f"target {args.target}", (len(columns) - 0.5, args.target), fontsize=8, va="bottom",
                    ha="right", color="gray")
    ax.set_xticks(range(len(columns)), [label for label, _ in columns], fontsize=8)
    ax.set_xlim(-0.5, len(columns) - 0.2)
    ax.set(ylabel="test accuracy with TTA", title="CIFAR-10 (JPEG copy), the 94 network: one dot a seed, bar at the mean")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output, dpi=100)
    for label, runs in columns:
        print(f"{label}: " + ", ".join(f"seed {s} {v:.4f}" for s, v in sorted(runs.items())))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
