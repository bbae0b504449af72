"""The fast CIFAR-10 docs figure, from the runs ``convnets.py --curves DIR`` recorded.

    python benchmarks/convnets.py --only cifar10-fast --epochs 5 --curves runs/
    python benchmarks/convnets.py --only cifar10-fast --epochs 15 --curves runs/
    python benchmarks/convnets.py --only cifar10-fast --variant 95 --curves runs/
    python benchmarks/fast_cifar_figure.py runs/ docs/img/fast-cifar10-budget.png
    python benchmarks/fast_cifar_figure.py muon/ docs/img/fast-cifar10-muon.png --more runs/ --exclude=-95-

Left: training accuracy per epoch of each recorded run. Right: test accuracy (with and
without test-time augmentation) against training time (the sum of the epoch times),
one point per run. One colour a budget (the runs' seeds share it). Only what the JSON files hold is drawn; nothing is estimated.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def label(stem: str) -> str:
    """``cifar10-fast-ep15-auto-seed0`` -> ``94: 15 epochs, auto, seed 0``; ``cifar10-fast-95-ep15-...`` -> ``95: 15 epochs, ...``.

    A variant may hold hyphens (``cifar10-fast-94-muon-ep8-...`` -> ``94-muon: 8 epochs, ...``).
    """
    parts = stem.removeprefix("cifar10-fast-").split("-")
    head = []
    while parts and not (parts[0].startswith("ep") and parts[0][2:].isdigit()):
        head.append(parts.pop(0))
    variant = f"{'-'.join(head) or '94'}: "  # the records of the default budget name none
    epochs, precision, rest = parts[0].removeprefix("ep"), parts[1], parts[2:]
    off = "-".join(p for p in rest if not p.startswith("seed"))
    seed = next((p.removeprefix("seed") for p in rest if p.startswith("seed")), "?")
    return f"{variant}{epochs} epochs, {precision}{', ' + off.replace('no-', 'no ') if off else ''}, seed {seed}"


def budget(name: str) -> str:
    """A run's label without its seed: ``94-muon: 10 epochs, auto, seed 3`` -> ``94-muon: 10 epochs, auto``."""
    return name.rsplit(", seed ", 1)[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, help="the --curves folder")
    parser.add_argument("output", type=Path, help="PNG to write")
    parser.add_argument("--include", default="", help="only runs whose file name contains this")
    parser.add_argument("--exclude", action="append", default=[], help="leave out runs whose file name contains this")
    parser.add_argument("--more", type=Path, action="append", default=[], metavar="DIR",
                        help="another --curves folder to draw beside the first")
    args = parser.parse_args()
    files = sorted(p for folder in (args.runs, *args.more) for p in folder.glob("cifar10-fast-*.json")
                   if args.include in p.name and not any(x in p.name for x in args.exclude))
    if not files:
        parser.error(f"no cifar10-fast-*.json files in {args.runs}")
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    machines = set()  # benchmarks/_machine.describe() of each run: CPU flags and precision
    keys = {p: budget(label(p.stem)) for p in files}
    colours = {b: plt.get_cmap("tab10")(i % 10) for i, b in enumerate(dict.fromkeys(keys.values()))}  # one a budget
    runs = {b: list(keys.values()).count(b) for b in colours}
    labelled: set[str] = set()  # one legend entry a budget
    for path in files:
        record = json.loads(path.read_text())
        machines.add(record.get("machine", "machine not recorded").split("; precision")[0])
        accuracy = record["history"]["accuracy"]
        minutes = sum(record["epoch_seconds"]) / 60
        key, colour = keys[path], colours[keys[path]]
        legend = None if key in labelled else f"{key} ({runs[key]} runs)" if runs[key] > 1 else label(path.stem)
        labelled.add(key)
        left.plot(range(1, len(accuracy) + 1), accuracy, marker=".", color=colour, alpha=0.8, label=legend)
        tta, plain = record["metrics"]["accuracy"], record["metrics"]["accuracy_no_tta"]
        right.plot([minutes], [tta], marker="o", linestyle="none", color=colour)
        right.plot([minutes], [plain], marker="x", linestyle="none", color=colour)
        right.annotate(f"{tta:.4f}", (minutes, tta), textcoords="offset points", xytext=(5, 5), fontsize=8)
    left.set(title="training accuracy (augmented batches)", xlabel="epoch", ylabel="accuracy")
    right.set(title="test accuracy (o with TTA, x without)", xlabel="training time, minutes (sum of epoch times)",
              ylabel="test accuracy")
    for ax in (left, right):
        ax.grid(alpha=0.3)
    left.legend(fontsize=8)
    fig.suptitle("; ".join(sorted(machines)), fontsize=8)
    fig.tight_layout()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output, dpi=100)
    print(f"wrote {args.output} from {len(files)} runs measured on:", *sorted(machines), sep="\n  ")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
